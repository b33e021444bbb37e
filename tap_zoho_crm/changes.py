"""Changes known from outside a Bulk Read export, and the rules that merge them into it.

target-postgres keeps whichever version of a row arrives last, whatever its ``Modified_Time``.
So a sync must never emit an older version of a record after a newer one, and the simplest way
to guarantee that is to emit every record at most once per run, in its newest known version.

A ``ChangeSet`` holds the ids that webhook events or the deleted-records list point at. Bulk
rows for those ids are held back rather than emitted; fetched versions are offered the same way.
When the export is done, ``settle()`` returns one outcome per id: the newest version seen, that
version marked deleted, or a bare tombstone when no version was ever seen.

Callbacks arrive at most once and in no promised order (a repeated delete may land after the
restore that undid it), so events only say *which* ids to look at, never whether a record is
live. That is decided by Get Records, which runs after every event the set holds was stored:
an id it returns is live now, whatever the events said; one it does not return is deleted if
an event or the deleted list says so. This rests on Get Records leaving out records in the
recycle bin, as the emulator does; Zoho documents it as reading a module's records and shows
deleted ones only through the deleted-records list, but does not say so outright.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

LOGGER = logging.getLogger(__name__)

DELETED_AT = "_sdc_deleted_at"
MODIFIED_TIME = "Modified_Time"


class Event(Protocol):
    """What the change set reads from a stored webhook event."""

    @property
    def record_id(self) -> str: ...

    @property
    def operation(self) -> str: ...

    @property
    def server_time_ms(self) -> int: ...


def parse_instant(value: str) -> dt.datetime:
    """Parse an ISO 8601 date-time into an aware UTC datetime (naive input is UTC)."""
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def format_instant(moment: dt.datetime) -> str:
    """Format an aware datetime the way the stream carries date-times: UTC, seconds."""
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class _Pending:
    """What is known of one id: its newest version so far and whether it was deleted."""

    deleted_at: dt.datetime | None = None
    version: dict[str, Any] | None = None
    version_time: dt.datetime | None = None
    # Get Records returned it, after every event read: the record is live now.
    found: bool = False


@dataclass
class Outcome:
    """What a settled change set asks the stream to emit."""

    upserts: list[dict[str, Any]] = field(default_factory=list)
    tombstones: list[dict[str, Any]] = field(default_factory=list)


class ChangeSet:
    """Ids with news from events or the deleted list, and the versions offered for them.

    Invariant: an id is either absent (bulk rows for it flow straight through) or pending
    (every version of it is held until ``settle``), so no id is emitted twice in a run.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._pending

    def add_events(self, events: Iterable[Event]) -> int:
        """Make every id an event names pending; a delete also keeps its time (the latest
        of an id's deletions). Returns the number of events read.
        """
        count = 0
        for event in events:
            count += 1
            pending = self._pending.setdefault(event.record_id, _Pending())
            if event.operation == "delete":
                moment = dt.datetime.fromtimestamp(event.server_time_ms / 1000, dt.timezone.utc)
                pending.deleted_at = _latest(pending.deleted_at, moment)
        return count

    def add_deleted(self, record_id: str, deleted_time: str) -> None:
        """Record a deletion seen in Zoho's deleted-records list."""
        pending = self._pending.setdefault(record_id, _Pending())
        pending.deleted_at = _latest(pending.deleted_at, parse_instant(deleted_time))

    def add_checks(self, record_ids: Iterable[str]) -> int:
        """Make ids pending that nothing says changed, so they are fetched and their newest
        version (if Zoho still has them) is emitted. Ids already pending keep what is known.

        Returns how many ids became pending.
        """
        added = 0
        for record_id in record_ids:
            if record_id not in self._pending:
                self._pending[record_id] = _Pending()
                added += 1
        return added

    def ids_to_fetch(self) -> list[str]:
        """Ids to read with Get Records: every pending one, deleted or not, since only that
        read tells whether the record is live now."""
        return list(self._pending)

    def found(self, record: dict[str, Any]) -> None:
        """Take a version Get Records returned: the record is live, whatever events said."""
        pending = self._pending.get(record["id"])
        if pending is not None:
            pending.found = True
            self.offer(record)

    def offer(self, record: dict[str, Any]) -> bool:
        """Hold ``record`` if its id is pending; keep it only if it is the newest so far.

        Returns True when the record was taken (the caller must not emit it). Ties on
        ``Modified_Time`` keep the version offered first: fetched versions are offered before
        the export is read, and an edit after the fetch leaves a newer event for the next run.
        """
        pending = self._pending.get(record["id"])
        if pending is None:
            return False
        raw_time = record.get(MODIFIED_TIME)
        moment = parse_instant(raw_time) if raw_time else None
        if pending.version is None or _newer(moment, pending.version_time):
            pending.version = record
            pending.version_time = moment
        return True

    def settle(self) -> Outcome:
        """Decide what to emit for every pending id; the set is empty afterwards."""
        outcome = Outcome()
        for record_id, pending in self._pending.items():
            for kind, record in _settle_one(record_id, pending):
                getattr(outcome, kind).append(record)
        self._pending.clear()
        return outcome


def _newer(candidate: dt.datetime | None, current: dt.datetime | None) -> bool:
    if candidate is None:
        return False
    return current is None or candidate > current


def _latest(current: dt.datetime | None, moment: dt.datetime) -> dt.datetime:
    return moment if current is None or moment > current else current


def _settle_one(record_id: str, pending: _Pending) -> Iterator[tuple[str, dict[str, Any]]]:
    version, deleted_at = pending.version, pending.deleted_at
    if pending.found and version is not None:
        # Live now: a restore, or a delete event that arrived after the restore's.
        yield "upserts", {**version, DELETED_AT: None}
        return
    if deleted_at is None:
        if version is None:
            # Fetch found nothing: deleted since the event. Its delete event or the
            # deleted-records list brings the tombstone; nothing to say now.
            LOGGER.debug("Changed record %s is gone from Zoho; awaiting its deletion", record_id)
            return
        yield "upserts", {**version, DELETED_AT: None}
        return
    if version is not None:
        # Deleted, and a version is at hand: keep its values, marked deleted.
        yield "upserts", {**version, DELETED_AT: format_instant(deleted_at)}
        return
    yield "tombstones", {"id": record_id, DELETED_AT: format_instant(deleted_at)}
