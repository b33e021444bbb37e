"""The event store's interface, shared by the webhook receiver (writer) and the tap (reader).

Invariants every backend keeps:

- ``seq`` is assigned on insert, is never reused (not even after pruning or a crash), and
  writers are serialized so that sequence order is commit order: once a reader sees
  ``high_water() == n``, every event with ``seq <= n`` it will ever see is already visible.
  A tap bookmark "events up to ``n`` are in the target" is therefore exact.
- An event is unique on ``(module, record_id, operation, server_time_ms)``; appending the
  same callback twice inserts nothing the second time.
- ``append`` returns only after the events are durable (SQLite WAL fsync'd with
  ``synchronous=FULL``, or a committed PostgreSQL transaction).
- ``store_id`` is a UUID made when the store is created; a reset store gets a new one, so a
  bookmark taken against another store id is meaningless.
- ``prune`` never deletes the newest event, so ``high_water`` never goes backwards.
- The credit ledger (``record_credits``/``credits_spent``) is durable as soon as
  ``record_credits`` returns and survives ``reset``: Zoho still counts credits spent before
  a store reset. Rows older than ``CREDIT_LEDGER_KEEP`` are dropped as new ones arrive.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from typing_extensions import Self

OPERATIONS: tuple[str, ...] = ("insert", "update", "delete")
SCHEMA_VERSION = 1
READ_CHUNK_ROWS = 1000
# A receiver is counted as up until this long after its last heartbeat. It must exceed the
# heartbeat interval (webhook_heartbeat_seconds, default 5) by a comfortable margin.
DEFAULT_COVERAGE_TOLERANCE = dt.timedelta(seconds=30)

# The ledger only needs the last 24 hours; a day more helps an operator read it.
CREDIT_LEDGER_KEEP = dt.timedelta(hours=48)
# Zoho empties its recycle bin after 60 days; a record deleted longer ago cannot come back.
RESTORABLE_FOR = dt.timedelta(days=60)

META_STORE_ID = "store_id"
META_SCHEMA_VERSION = "schema_version"
META_COMMITTED_SEQ = "committed_seq"


class StoreError(Exception):
    """The event store cannot be opened or used; the message says what to fix."""


def utc_now() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` in UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class NewEvent:
    """One record id of one Zoho callback, before the store numbers it."""

    module: str
    record_id: str
    operation: str
    server_time_ms: int
    channel_id: str

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            msg = f"operation must be one of {', '.join(OPERATIONS)}, not {self.operation!r}"
            raise ValueError(msg)

    @property
    def key(self) -> tuple[str, str, str, int]:
        """The uniqueness key: a second event with the same key is a repeat."""
        return (self.module, self.record_id, self.operation, self.server_time_ms)


@dataclasses.dataclass(frozen=True)
class Event:
    """A stored event. ``received_at`` is the receiver's UTC clock at commit."""

    seq: int
    module: str
    record_id: str
    operation: str
    server_time_ms: int
    channel_id: str
    received_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Appended:
    """What one append did: how many events were new and the seq range they got."""

    inserted: int
    first_seq: int | None = None
    last_seq: int | None = None


@dataclasses.dataclass(frozen=True)
class ChannelRecord:
    """One Notification API channel as this install subscribed it.

    ``token`` and ``url_key`` are secrets (the callback's ``token`` and the ``key`` query
    parameter of ``notify_url``); they are left out of ``repr``. ``notify_url`` holds the key,
    so it is secret too. ``expiry`` is the expiry Zoho granted, in UTC, or None if unknown.
    """

    channel_id: str
    modules: tuple[str, ...]
    events: tuple[str, ...]
    token: str = dataclasses.field(repr=False)
    url_key: str = dataclasses.field(repr=False)
    notify_url: str = dataclasses.field(repr=False)
    expiry: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class HeartbeatRow:
    """One continuous stretch of one receiver: up from ``started_at`` to ``last_seen_at``."""

    instance_id: str
    started_at: dt.datetime
    last_seen_at: dt.datetime


def dedupe(events: Iterable[NewEvent]) -> list[NewEvent]:
    """Drop repeats of the same key inside one batch, keeping the first, in order."""
    seen: set[tuple[str, str, str, int]] = set()
    unique: list[NewEvent] = []
    for event in events:
        if event.key not in seen:
            seen.add(event.key)
            unique.append(event)
    return unique


def covered(
    rows: Iterable[HeartbeatRow],
    since: dt.datetime,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> bool:
    """Return True if the stretches in ``rows`` cover ``[since, now]`` without a hole.

    A stretch counts from its ``started_at`` (no earlier: before that the receiver was not
    serving) to its ``last_seen_at``. Two stretches join only if they overlap: a receiver
    that stopped and started again, however quickly, refused callbacks in between.
    ``tolerance`` only bridges the newest beat to ``now``, since a live receiver beats
    every few seconds.
    """
    cursor, joined = as_utc(since), False
    for row in sorted(rows, key=lambda r: r.started_at):
        if row.started_at > cursor:
            return False
        joined = True
        cursor = max(cursor, row.last_seen_at)
    return joined and cursor + tolerance >= as_utc(now)


class EventStore(abc.ABC):
    """Durable, shared log of notification events plus the channel registry.

    Safe to use from several threads of one process and from several processes at once.
    """

    url_for_display: str

    # -- events ---------------------------------------------------------------------------

    def append(self, events: Sequence[NewEvent]) -> int:
        """Store ``events`` durably and return how many were new (repeats insert nothing)."""
        return self.append_events(events).inserted

    @abc.abstractmethod
    def append_events(
        self, events: Sequence[NewEvent], received_at: dt.datetime | None = None
    ) -> Appended:
        """Like ``append`` but also tell the seq range the new events got."""

    @abc.abstractmethod
    def high_water(self) -> int:
        """Return the highest committed seq, or 0 for a store that never held an event."""

    def read(self, after_seq: int, upto_seq: int | None = None) -> Iterator[Event]:
        """Yield events with ``after_seq < seq <= upto_seq`` in seq order.

        ``upto_seq`` defaults to ``high_water()`` at the call, so the iteration is bounded
        even while the receiver keeps writing. Rows are fetched in chunks, so a long read
        never holds one snapshot open.
        """
        limit = self.high_water() if upto_seq is None else upto_seq
        cursor = after_seq
        while cursor < limit:
            chunk = self._read_chunk(cursor, limit, READ_CHUNK_ROWS)
            if not chunk:
                return
            yield from chunk
            cursor = chunk[-1].seq

    @abc.abstractmethod
    def _read_chunk(self, after_seq: int, upto_seq: int, limit: int) -> list[Event]:
        """Return at most ``limit`` events after ``after_seq`` up to ``upto_seq``, by seq."""

    @abc.abstractmethod
    def prune(self, below_seq: int, older_than: dt.datetime) -> int:
        """Delete events with ``seq < below_seq`` received before ``older_than``.

        Also drops heartbeat stretches last seen before ``older_than``. The newest event is
        always kept so ``high_water`` never goes back. Returns the number of events deleted.
        """

    @abc.abstractmethod
    def backlog(self, after_seq: int = 0) -> int:
        """Return how many stored events have ``seq > after_seq``."""

    @abc.abstractmethod
    def last_event_time(self) -> dt.datetime | None:
        """Return when the newest stored event was received (UTC), or None if none."""

    # -- store identity -------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def store_id(self) -> str:
        """The UUID made when this store was created (or last reset)."""

    @abc.abstractmethod
    def reset(self) -> str:
        """Drop every event, channel and heartbeat, make a new store id and return it."""

    @abc.abstractmethod
    def committed_seq(self) -> int | None:
        """The tap's committed event bookmark as last reported with ``set_committed_seq``."""

    @abc.abstractmethod
    def set_committed_seq(self, seq: int) -> None:
        """Record the tap's committed bookmark (used for ``/healthz`` backlog and pruning)."""

    # -- channel registry -----------------------------------------------------------------

    @abc.abstractmethod
    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        """Return the registered channel with this id, or None."""

    @abc.abstractmethod
    def list_channels(self) -> list[ChannelRecord]:
        """Return every registered channel, ordered by channel id."""

    @abc.abstractmethod
    def put_channel(self, record: ChannelRecord) -> ChannelRecord:
        """Insert or replace a channel; ``updated_at`` is set to now. Returns what was stored."""

    @abc.abstractmethod
    def delete_channel(self, channel_id: str) -> bool:
        """Forget a channel; return True if it was registered."""

    # -- receiver heartbeats --------------------------------------------------------------

    @abc.abstractmethod
    def heartbeat(
        self, instance_id: str, started_at: dt.datetime, now: dt.datetime | None = None
    ) -> None:
        """Record that receiver ``instance_id``, up since ``started_at``, is alive at ``now``.

        A receiver that missed beats (it could not reach the store) must pass a new
        ``started_at``: each ``(instance_id, started_at)`` pair is one unbroken stretch.
        """

    @abc.abstractmethod
    def heartbeats(self, since: dt.datetime) -> list[HeartbeatRow]:
        """Return the stretches last seen at or after ``since``."""

    def receiver_coverage(
        self,
        since: dt.datetime,
        now: dt.datetime | None = None,
        tolerance: dt.timedelta = DEFAULT_COVERAGE_TOLERANCE,
    ) -> bool:
        """Was some receiver continuously up from ``since`` until ``now``?

        Judged from heartbeats: stretches of any receivers, each extended by ``tolerance``
        past its last beat, must join into one that starts at or before ``since`` and reaches
        ``now``. Receiver and tap clocks must agree to well within ``tolerance`` (use NTP).
        A True answer says the receiver could take callbacks, not that Zoho sent them all.
        """
        now = utc_now() if now is None else as_utc(now)
        rows = self.heartbeats(as_utc(since) - tolerance)
        return covered(rows, since, now, tolerance)

    # -- API credit ledger ----------------------------------------------------------------

    @abc.abstractmethod
    def record_credits(self, credits: int, endpoint: str, at: dt.datetime | None = None) -> None:
        """Note that the tap spent ``credits`` on one call of ``endpoint`` at ``at`` (now)."""

    @abc.abstractmethod
    def credits_spent(self, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        """Return ``(spent_at, credits)`` of every call at or after ``since``, oldest first."""

    # -- deleted ids, to notice restores whose callback was lost -------------------------

    @abc.abstractmethod
    def remember_deleted(self, module: str, deleted: Sequence[tuple[str, dt.datetime]]) -> None:
        """Note ids the tap marked deleted, with when; forget ones deleted ``RESTORABLE_FOR``
        ago. Kept across ``reset``: they describe the target's rows, not the events."""

    @abc.abstractmethod
    def deleted_ids(self, module: str) -> list[str]:
        """Ids of ``module`` marked deleted within ``RESTORABLE_FOR``, still restorable."""

    @abc.abstractmethod
    def forget_deleted(self, module: str, record_ids: Sequence[str]) -> None:
        """Forget ids that are live again."""

    # -- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
