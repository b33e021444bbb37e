"""When a sync must run Bulk Read, and from when."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_zoho_crm.plan import Health, committed_event_seq, plan_bulk

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
HEALTHY = Health(channel_live=True, receiver_covered=True, store_id="s1")
DAY = dt.timedelta(hours=24)
MARGIN = dt.timedelta(minutes=5)


def settled_state(**extra: str) -> dict:
    state = {
        "last_sync_started_at": "2025-03-10T11:00:00+00:00",
        "last_catchup_at": "2025-03-10T06:00:00+00:00",
        "event_store_id": "s1",
        "event_seq": 42,
    }
    return {**state, **extra}


def plan(state: dict, health: Health = HEALTHY, start_date: dt.datetime | None = None):
    return plan_bulk(state, health=health, now=NOW, start_date=start_date,
                     reconcile_every=DAY, margin=MARGIN)


def test_first_sync_is_a_full_load_from_start_date() -> None:
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    window = plan({}, start_date=start)

    assert window is not None
    assert window.full
    assert window.start == start


def test_healthy_event_path_needs_no_bulk() -> None:
    assert plan(settled_state()) is None


@pytest.mark.parametrize(
    ("health", "reason"),
    [
        (Health(False, True, "s1"), "channel"),
        (Health(True, False, "s1"), "receiver"),
        (Health(True, True, "s2"), "reset"),
    ],
)
def test_each_gap_in_the_event_path_runs_a_catch_up(health: Health, reason: str) -> None:
    window = plan(settled_state(), health)

    assert window is not None
    assert not window.full
    assert reason in window.reason
    assert window.start == dt.datetime(2025, 3, 10, 5, 55, tzinfo=dt.timezone.utc)


def test_catch_up_reaches_back_to_the_previous_catch_up_not_the_previous_sync() -> None:
    """A callback dropped before the 11:00 sync left no trace; only a window from the last
    Bulk Read (06:00) reads that change again."""
    window = plan(settled_state(last_catchup_at="2025-03-09T11:59:59+00:00"))

    assert window is not None
    assert window.start == dt.datetime(2025, 3, 9, 11, 54, 59, tzinfo=dt.timezone.utc)


def test_state_without_a_catch_up_bookmark_starts_at_the_previous_sync() -> None:
    state = settled_state()
    del state["last_catchup_at"]

    window = plan(state, Health(False, True, "s1"))

    assert window is not None
    assert window.start == dt.datetime(2025, 3, 10, 10, 55, tzinfo=dt.timezone.utc)


def test_reconcile_interval_forces_a_catch_up() -> None:
    window = plan(settled_state(last_catchup_at="2025-03-09T11:59:59+00:00"))

    assert window is not None
    assert "reconcile" in window.reason


def test_catch_up_never_starts_before_start_date() -> None:
    late_start = dt.datetime(2025, 3, 10, 11, 0, tzinfo=dt.timezone.utc)

    window = plan(settled_state(), Health(False, True, "s1"), start_date=late_start)

    assert window is not None
    assert window.start == late_start


def test_offsets_in_state_compare_as_instants() -> None:
    state = settled_state(last_catchup_at="2025-03-10T06:00:00-05:00")

    window = plan(state, Health(False, True, "s1"))

    assert window is not None
    assert window.start == dt.datetime(2025, 3, 10, 10, 55, tzinfo=dt.timezone.utc)


def test_event_numbers_from_another_store_restart_at_zero() -> None:
    assert committed_event_seq(settled_state(), "s1") == 42
    assert committed_event_seq(settled_state(), "s2") == 0
