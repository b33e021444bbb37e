"""Failures the randomized no-loss test found, kept as plain tests after shrinking.

Each test replays one shrunk Hypothesis example step by step on a fresh ``World`` and ends
with the same check the property makes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration.no_loss import Parts, World, parts  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def world(parts: Parts) -> Iterator[World]:  # noqa: F811
    """A fresh small org with multi-page loads."""
    made = World(parts, leads=60, page_size=25)
    try:
        yield made
    finally:
        made.close()


def test_changes_whose_callbacks_were_dropped_before_a_quiet_sync_are_caught_up(
    world: World,
) -> None:
    """Found by the property: a catch-up read only from the previous sync's start, so a
    change whose callback was dropped before that sync was never read again."""
    assert world.sync().ok
    live = sorted(world.model.live)
    world.fault("drop_callbacks", times=2)
    world.delete(live[0])
    world.edit(live[1], {"Last_Name": "Edited, callback dropped"})
    world.settle_callbacks()
    time.sleep(1.1)  # the quiet sync starts in a later second than the changes

    quiet = world.sync()

    assert quiet.ok, quiet.describe()
    world.settle_and_check()
