"""Failures the randomized no-loss test found, kept as plain tests after shrinking.

Each test replays one shrunk Hypothesis example step by step on a fresh ``World`` and ends
with the same check the property makes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.integration import harness
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


def test_a_record_deleted_after_a_killed_first_load_is_marked_deleted(world: World) -> None:
    """Found by the property: the first full load was killed inside its first page, so no
    STATE was committed but rows were; the retried full load never exported the record
    deleted meanwhile (its callback refused by a stopped receiver) and left its row live."""
    world.stop_receiver()
    killed = world.sync(kill_after=10)
    assert killed.killed
    world.delete(sorted(world.model.loaded)[0])

    world.settle_and_check()


def test_a_record_edited_while_a_resumed_load_waited_is_current(world: World) -> None:
    """An interrupted load resumed after a receiver gap: the pages still to come were
    exported before the gap, so the load is redone rather than continued."""
    killed = world.sync(kill_after=30)  # page 1 and its STATE are in, page 2 is not
    assert killed.killed
    world.stop_receiver()
    on_page_two = sorted(world.model.live)[40]  # exported before the kill, not yet loaded
    world.edit(on_page_two, {"Last_Name": "Edited while the receiver was down"})
    world.start_receiver()

    world.settle_and_check()


def test_a_record_restored_right_after_its_delete_stays_live_whatever_the_callback_order(
    world: World,
) -> None:
    """Found by the property with repeated callbacks: the delete's callback landed after the
    restore's, the tap took the last event as the truth and marked a live record deleted."""
    assert world.sync().ok
    lead = sorted(world.model.live)[3]
    world.fault("delay_callbacks", times=1, seconds=0.8)
    world.delete(lead)
    time.sleep(0.2)  # the delete's callback is composed, then held back
    world.restore(lead)
    world.settle_callbacks()

    assert world.sync().ok
    world.check()
    assert harness.table_rows(world.schema, "Leads")[lead]["_sdc_deleted_at"] is None
