"""Merge rules for records that have news from events or the deleted-records list."""

from __future__ import annotations

from dataclasses import dataclass

from tap_zoho_crm.changes import ChangeSet, parse_instant

T0 = "2025-03-01T10:00:00+00:00"
T1 = "2025-03-01T10:00:05+00:00"
T2 = "2025-03-01T10:00:09+00:00"


@dataclass
class Ev:
    seq: int
    record_id: str
    operation: str
    server_time_ms: int


def ms(instant: str) -> int:
    return int(parse_instant(instant).timestamp() * 1000)


def row(record_id: str, modified: str, name: str = "x") -> dict:
    return {"id": record_id, "Modified_Time": modified, "Last_Name": name}


def test_id_without_news_flows_straight_through() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "update", ms(T1))])

    assert changes.offer(row("b", T0)) is False


def test_older_csv_row_loses_to_the_fetched_version() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "update", ms(T1))])
    changes.found(row("a", T1, "fetched"))

    assert changes.offer(row("a", T0, "csv"))

    outcome = changes.settle()
    assert [r["Last_Name"] for r in outcome.upserts] == ["fetched"]
    assert outcome.upserts[0]["_sdc_deleted_at"] is None


def test_newer_csv_row_beats_an_older_fetch() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "update", ms(T0))])
    changes.found(row("a", T0, "fetched"))

    changes.offer(row("a", T2, "page-two"))

    assert [r["Last_Name"] for r in changes.settle().upserts] == ["page-two"]


def test_equal_times_keep_the_first_offer() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "insert", ms(T1))])
    changes.found(row("a", T1, "fetched"))
    changes.offer(row("a", T1, "csv"))

    assert [r["Last_Name"] for r in changes.settle().upserts] == ["fetched"]


def test_times_compare_as_instants_not_strings() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "update", ms(T1))])
    changes.offer(row("a", "2025-03-01T05:00:09-05:00", "later"))  # 10:00:09 UTC
    changes.offer(row("a", "2025-03-01T10:00:05+00:00", "earlier"))

    assert [r["Last_Name"] for r in changes.settle().upserts] == ["later"]


def test_delete_with_a_known_version_keeps_its_values() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "delete", ms(T2))])
    assert changes.ids_to_fetch() == ["a"]  # Get Records returns nothing for it
    changes.offer(row("a", T0, "last known"))

    outcome = changes.settle()

    assert outcome.tombstones == []
    assert outcome.upserts == [{**row("a", T0, "last known"), "_sdc_deleted_at": T2}]


def test_delete_of_an_unseen_id_is_a_bare_tombstone() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "never-seen", "delete", ms(T2))])

    outcome = changes.settle()

    assert outcome.upserts == []
    assert outcome.tombstones == [{"id": "never-seen", "_sdc_deleted_at": T2}]


def test_restore_after_delete_comes_back_live() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "delete", ms(T1)), Ev(2, "a", "update", ms(T2))])
    assert changes.ids_to_fetch() == ["a"]
    changes.found(row("a", T2, "restored"))

    outcome = changes.settle()

    assert outcome.upserts == [{**row("a", T2, "restored"), "_sdc_deleted_at": None}]


def test_a_repeated_delete_callback_after_the_restore_does_not_delete_it_again() -> None:
    """Found by the no-loss property: callbacks come in no promised order, and a delete's
    repeated callback landed after the restore's. The restore kept the old Modified_Time."""
    changes = ChangeSet()
    events = [Ev(1, "a", "delete", ms(T2)), Ev(2, "a", "update", ms(T2) + 40)]
    changes.add_events([*events, Ev(3, "a", "delete", ms(T2))])
    assert changes.ids_to_fetch() == ["a"]
    changes.found(row("a", T0, "restored"))

    outcome = changes.settle()

    assert outcome.upserts == [{**row("a", T0, "restored"), "_sdc_deleted_at": None}]
    assert outcome.tombstones == []


def test_a_record_get_records_does_not_return_stays_deleted_at_its_latest_deletion() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "delete", ms(T2)), Ev(2, "a", "delete", ms(T1))])
    changes.add_deleted("a", T0)
    changes.offer(row("a", T1, "row exported before the second delete"))

    outcome = changes.settle()

    expected = row("a", T1, "row exported before the second delete")
    assert outcome.upserts == [{**expected, "_sdc_deleted_at": T2}]


def test_deleted_list_entry_of_a_record_get_records_returns_is_a_restore() -> None:
    changes = ChangeSet()
    changes.add_deleted("a", T1)
    changes.found(row("a", T0, "restored"))

    assert changes.settle().upserts[0]["_sdc_deleted_at"] is None


def test_change_whose_record_vanished_emits_nothing() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "update", ms(T1))])

    outcome = changes.settle()

    assert outcome.upserts == []
    assert outcome.tombstones == []


def test_each_id_settles_once_and_the_set_empties() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(s, "a", "update", ms(T1)) for s in range(1, 4)])
    changes.offer(row("a", T1))

    assert len(changes.settle().upserts) == 1
    assert len(changes) == 0


def test_checked_ids_are_fetched_and_come_back_live_only_if_found() -> None:
    changes = ChangeSet()
    changes.add_events([Ev(1, "a", "delete", ms(T2))])

    assert changes.add_checks(["a", "b", "c"]) == 2  # "a" keeps its known deletion
    assert sorted(changes.ids_to_fetch()) == ["a", "b", "c"]
    changes.found(row("b", T0, "restored"))

    outcome = changes.settle()
    assert outcome.upserts == [{**row("b", T0, "restored"), "_sdc_deleted_at": None}]
    assert outcome.tombstones == [{"id": "a", "_sdc_deleted_at": T2}]
