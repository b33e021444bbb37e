"""Event store behaviour, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from tap_zoho_crm.store import NewEvent, StoreError, open_store
from tap_zoho_crm.store.base import EventStore
from tests.webhook.conftest import register_channel

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def events(
    ids: range | list[str], operation: str = "insert", server_time: int = 1
) -> list[NewEvent]:
    return [NewEvent("Leads", str(i), operation, server_time, "c1") for i in ids]


def test_append_numbers_new_events_and_ignores_repeats(store: EventStore) -> None:
    first = store.append_events(events(range(5)))
    again = store.append_events(events(range(5)))
    mixed = store.append_events(events(range(3, 8)) + events(range(2), "delete"))

    assert (first.inserted, first.first_seq, first.last_seq) == (5, 1, 5)
    assert again.inserted == 0
    assert mixed.inserted == 5
    stored = list(store.read(0))
    assert len(stored) == 10
    assert [e.seq for e in stored] == sorted({e.seq for e in stored})
    assert store.high_water() == stored[-1].seq


def test_same_id_and_operation_at_another_server_time_is_a_new_event(store: EventStore) -> None:
    store.append(events(["1"], "update", server_time=100))
    assert store.append(events(["1"], "update", server_time=200)) == 1
    assert store.append(events(["1", "1"], "update", server_time=300)) == 1


def test_read_returns_the_half_open_range_in_seq_order(store: EventStore) -> None:
    store.append(events(range(2500)))
    assert [e.seq for e in store.read(10, 15)] == [11, 12, 13, 14, 15]
    assert len(list(store.read(0))) == 2500  # several internal chunks
    assert list(store.read(2500)) == []
    assert store.backlog(2400) == 100
    assert store.backlog() == 2500


def test_read_bounds_itself_to_the_high_water_at_the_call(store: EventStore) -> None:
    store.append(events(range(3)))
    reader = store.read(0)
    first = next(reader)
    store.append(events(range(3, 6)))
    assert [first.seq, *(e.seq for e in reader)] == [1, 2, 3]


def test_events_keep_their_fields_and_receive_time(store: EventStore) -> None:
    at = dt.datetime(2026, 3, 1, 12, 30, 5, 123000, tzinfo=UTC)
    store.append_events([NewEvent("Deals", "77", "delete", 1741601044789, "c9")], at)
    (event,) = store.read(0)
    assert (event.module, event.record_id, event.operation) == ("Deals", "77", "delete")
    assert (event.server_time_ms, event.channel_id, event.received_at) == (
        1741601044789,
        "c9",
        at,
    )
    assert store.last_event_time() == at


def test_empty_store_answers_zero_and_none(store: EventStore) -> None:
    assert store.high_water() == 0
    assert store.backlog() == 0
    assert store.last_event_time() is None
    assert store.committed_seq() is None
    assert store.append([]) == 0


def test_prune_removes_only_old_events_below_the_bookmark(store: EventStore) -> None:
    store.append_events(events(range(10)), T0)
    store.append_events(events(range(10, 20)), T0 + dt.timedelta(days=10))

    deleted = store.prune(below_seq=15, older_than=T0 + dt.timedelta(days=1))

    assert deleted == 10
    assert next(e.seq for e in store.read(0)) == 11
    assert store.high_water() == 20


def test_prune_keeps_the_newest_event_so_high_water_never_drops(store: EventStore) -> None:
    store.append_events(events(range(5)), T0)
    assert store.prune(below_seq=100, older_than=T0 + dt.timedelta(days=1)) == 4
    assert store.high_water() == 5
    # A seq is never reused after pruning.
    assert store.append_events(events(["new"])).first_seq == 6


def test_seq_stays_gapless_for_a_reader_while_two_processes_write(
    store: EventStore, store_url: str
) -> None:
    """Two writer processes; a reader that only trusts high_water must miss nothing."""
    script = textwrap.dedent(
        """
        import sys
        from tap_zoho_crm.store import NewEvent, open_store
        url, name = sys.argv[1], sys.argv[2]
        with open_store(url) as store:
            for i in range(120):
                store.append([NewEvent("Leads", f"{name}-{i}", "insert", i, name)])
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, store_url, name]) for name in "ab"]
    seen: list[int] = []
    cursor = 0
    while True:
        running = any(w.poll() is None for w in writers)
        top = store.high_water()
        seen.extend(e.seq for e in store.read(cursor, top))
        cursor = top
        if not running:
            break
        time.sleep(0.005)
    assert all(w.returncode == 0 for w in writers)

    stored = list(store.read(0))
    assert len(stored) == 240
    assert seen == [e.seq for e in stored]
    for name in "ab":
        mine = [int(e.record_id.split("-")[1]) for e in stored if e.channel_id == name]
        assert mine == list(range(120))


def test_store_id_survives_reopen_and_changes_on_reset(store_url: str) -> None:
    with open_store(store_url) as store:
        first = store.store_id
        store.append(events(range(3)))
    with open_store(store_url) as store:
        assert store.store_id == first
        assert store.high_water() == 3
        new_id = store.reset()
        assert new_id != first
        assert store.store_id == new_id
        assert store.high_water() == 0


def test_deleted_sqlite_file_comes_back_as_a_new_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.sqlite3"
    with open_store(url) as store:
        first = store.store_id
    for path in tmp_path.iterdir():
        path.unlink()
    with open_store(url) as store:
        assert store.store_id != first


def test_committed_seq_round_trips(store: EventStore) -> None:
    store.set_committed_seq(41)
    store.set_committed_seq(42)
    assert store.committed_seq() == 42


def test_channel_registry_round_trips_and_hides_secrets(store: EventStore) -> None:
    stored = register_channel(store)
    assert store.get_channel(stored.channel_id) == stored
    assert stored.updated_at is not None
    assert "tok-" not in repr(stored)
    assert "key-" not in repr(stored)

    expiry = dt.datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    store.put_channel(replace(stored, expiry=expiry, modules=("Leads", "Deals")))
    again = store.get_channel(stored.channel_id)
    assert again is not None
    assert (again.expiry, again.modules) == (expiry, ("Leads", "Deals"))
    assert [c.channel_id for c in store.list_channels()] == [stored.channel_id]
    assert store.delete_channel(stored.channel_id)
    assert store.get_channel(stored.channel_id) is None
    assert not store.delete_channel(stored.channel_id)


def _beat(store: EventStore, instance: str, started: int, *seen: int) -> None:
    for minute in seen:
        store.heartbeat(
            instance, T0 + dt.timedelta(minutes=started), T0 + dt.timedelta(minutes=minute)
        )


def _covered(store: EventStore, since: float, now: float) -> bool:
    return store.receiver_coverage(
        T0 + dt.timedelta(minutes=since), now=T0 + dt.timedelta(minutes=now)
    )


def test_coverage_needs_a_receiver_up_since_the_start(store: EventStore) -> None:
    _beat(store, "a", 10, 10, 20, 30)
    assert _covered(store, 15, 30)
    assert not _covered(store, 5, 30)  # the receiver started after `since`
    assert not _covered(store, 15, 32)  # no beat for two minutes: it is down now


def test_coverage_joins_replicas_and_sees_gaps_between_them(store: EventStore) -> None:
    _beat(store, "a", 0, 0, 10)
    _beat(store, "b", 10, 10, 20)
    assert _covered(store, 1, 20)
    _beat(store, "c", 25, 25, 30)
    assert not _covered(store, 1, 30)  # nobody was up from 20 to 25
    assert _covered(store, 26, 30)


def test_a_quick_restart_is_a_gap_even_within_the_tolerance(store: EventStore) -> None:
    """Found by the no-loss property: callbacks sent during a restart of a few seconds
    were refused, and the 30 s tolerance used to join the two stretches over the hole."""
    _beat(store, "a", 0, 0, 10)
    _beat(store, "b", 10.25, 10.25, 20)  # started 15 s after a's last beat
    assert not _covered(store, 1, 20)
    assert _covered(store, 10.5, 20)


def test_a_new_stretch_of_the_same_receiver_leaves_the_gap_visible(store: EventStore) -> None:
    _beat(store, "a", 0, 0, 5)
    _beat(store, "a", 9, 9, 12)  # missed beats, so a new stretch from minute 9
    assert not _covered(store, 1, 12)
    assert _covered(store, 9.5, 12)


def test_prune_drops_old_heartbeats(store: EventStore) -> None:
    _beat(store, "a", 0, 0, 1)
    _beat(store, "b", 100, 100)
    store.prune(0, T0 + dt.timedelta(minutes=50))
    assert [h.instance_id for h in store.heartbeats(T0)] == ["b"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://host/db", "not supported"),
        ("events.sqlite3", "not a URL"),
        ("sqlite://", "needs a file path"),
        ("postgresql://nobody@127.0.0.1:1/none", "check event_store_url"),
    ],
)
def test_unusable_urls_raise_a_store_error_naming_the_setting(url: str, fragment: str) -> None:
    with pytest.raises(StoreError, match=fragment):
        open_store(url, timeout_seconds=2)


def test_password_never_appears_in_a_connection_error() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://user:s3cret@127.0.0.1:1/db", timeout_seconds=2)
    assert "s3cret" not in str(caught.value)
    assert "***" in str(caught.value)


def module_names() -> tuple[str, str]:
    """Module names no other test uses: the ids outlive a reset, and the PostgreSQL store
    is shared by the session."""
    suffix = uuid.uuid4().hex[:8]
    return f"Leads{suffix}", f"Contacts{suffix}"


def test_deleted_ids_are_remembered_per_module_until_restored(store: EventStore) -> None:
    leads, contacts = module_names()
    now = dt.datetime.now(dt.timezone.utc)
    store.remember_deleted(leads, [("11", now), ("12", now - dt.timedelta(days=1))])
    store.remember_deleted(contacts, [("21", now)])
    store.remember_deleted(leads, [("11", now)])  # again: still one row

    assert store.deleted_ids(leads) == ["11", "12"]
    store.forget_deleted(leads, ["11"])
    assert store.deleted_ids(leads) == ["12"]
    assert store.deleted_ids(contacts) == ["21"]


def test_deleted_ids_past_the_recycle_bin_are_dropped(store: EventStore) -> None:
    leads, _ = module_names()
    now = dt.datetime.now(dt.timezone.utc)
    store.remember_deleted(leads, [("31", now - dt.timedelta(days=61)), ("32", now)])

    assert store.deleted_ids(leads) == ["32"]


def test_deleted_ids_survive_a_reset(store: EventStore) -> None:
    leads, _ = module_names()
    store.remember_deleted(leads, [("41", dt.datetime.now(dt.timezone.utc))])

    store.reset()

    assert store.deleted_ids(leads) == ["41"]
