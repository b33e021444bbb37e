"""The SQL both event store backends run alike, written once.

A backend supplies how to talk to its database: ``_query`` for reads, ``_write`` for a
transaction that keeps the store's ordering and durability guarantees (see ``base``), and
the schema, ``_insert_events`` (an append's insert, with its uniqueness and ordering),
``reset`` and anything else whose SQL or locking differs. What differs inside otherwise
equal statements goes through small hooks:

- ``_PARAM``: the driver's placeholder; shared statements are written with ``?`` and
  ``_sql`` swaps it in. No shared statement contains a literal ``?`` or ``%``.
- ``_to_db_time``/``_from_db_time``: how an instant is stored and read back. Whatever the
  stored form, comparing two stored instants must order them like the instants.
- ``_to_db_names``/``_from_db_names``: how a channel's module and event lists are stored.
"""

from __future__ import annotations

import abc
import typing as t
import uuid

from tap_zoho_crm.store.base import (
    META_COMMITTED_SEQ,
    META_SCHEMA_VERSION,
    META_STORE_ID,
    RESTORABLE_FOR,
    SCHEMA_VERSION,
    Appended,
    ChannelRecord,
    Event,
    EventStore,
    HeartbeatRow,
    StoreError,
    dedupe,
    utc_now,
)

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from tap_zoho_crm.store.base import NewEvent

CHANNEL_COLUMNS = "channel_id, modules, events, token, url_key, notify_url, expiry, updated_at"
EVENT_COLUMNS = "seq, module, record_id, operation, server_time_ms, channel_id, received_at"


class Cursor(t.Protocol):
    """The part of a DB-API cursor the shared statements use."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Sequence[t.Any], /) -> t.Any: ...

    def executemany(self, query: str, params_seq: Sequence[Sequence[t.Any]], /) -> t.Any: ...

    def fetchone(self) -> t.Any: ...


class SqlEventStore(EventStore):
    """An ``EventStore`` whose dialect-independent methods run through the hooks above."""

    _PARAM: t.ClassVar[str]

    # -- hooks each backend provides ------------------------------------------------------

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        """Run one read and return all its rows."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """Run a block in one writers' transaction: serialized, so seq order is commit order,
        durable when the block ends, rolled back if it raises."""

    @abc.abstractmethod
    def _insert_events(self, events: Sequence[NewEvent], received_at: dt.datetime) -> list[int]:
        """Insert ``events`` (non-empty, no key twice) in one writers' transaction, skipping
        any already stored; return the seqs of the new rows in ascending order."""

    @abc.abstractmethod
    def _to_db_time(self, value: dt.datetime) -> object:
        """Return ``value`` as a statement parameter for a time column."""

    @abc.abstractmethod
    def _from_db_time(self, value: t.Any) -> dt.datetime:
        """Return the aware UTC datetime a time column holds."""

    @abc.abstractmethod
    def _to_db_names(self, names: Sequence[str]) -> object:
        """Return a channel's module or event names as a statement parameter."""

    @abc.abstractmethod
    def _from_db_names(self, value: t.Any) -> tuple[str, ...]:
        """Return the names a channel's ``modules`` or ``events`` column holds."""

    # -- row conversion -------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        """Return ``statement`` with each ``?`` replaced by this driver's placeholder."""
        return statement.replace("?", self._PARAM)

    def _event(self, row: tuple[t.Any, ...]) -> Event:
        return Event(row[0], row[1], row[2], row[3], row[4], row[5], self._from_db_time(row[6]))

    def _channel(self, row: tuple[t.Any, ...]) -> ChannelRecord:
        return ChannelRecord(
            channel_id=row[0],
            modules=self._from_db_names(row[1]),
            events=self._from_db_names(row[2]),
            token=row[3],
            url_key=row[4],
            notify_url=row[5],
            expiry=self._from_db_time(row[6]) if row[6] else None,
            updated_at=self._from_db_time(row[7]),
        )

    def _init_meta(self, cur: Cursor) -> None:
        """Give a new store its id and schema version; refuse a store newer than this code."""
        cur.execute(
            self._sql(
                "INSERT INTO zoho_store_meta (key, value) VALUES (?, ?), (?, ?)"
                " ON CONFLICT (key) DO NOTHING"
            ),
            (META_STORE_ID, str(uuid.uuid4()), META_SCHEMA_VERSION, str(SCHEMA_VERSION)),
        )
        cur.execute(
            self._sql("SELECT value FROM zoho_store_meta WHERE key = ?"), (META_SCHEMA_VERSION,)
        )
        row = cur.fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            msg = (
                f"event store {self.url_for_display} has schema version {version}, newer "
                f"than this package's {SCHEMA_VERSION}; upgrade tap-zoho-crm"
            )
            raise StoreError(msg)

    # -- events ---------------------------------------------------------------------------

    def append_events(
        self, events: Sequence[NewEvent], received_at: dt.datetime | None = None
    ) -> Appended:
        unique = dedupe(events)
        seqs = self._insert_events(unique, received_at or utc_now()) if unique else []
        if not seqs:
            return Appended(0)
        return Appended(len(seqs), seqs[0], seqs[-1])

    def high_water(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM zoho_events")[0][0])

    def _read_chunk(self, after_seq: int, upto_seq: int, limit: int) -> list[Event]:
        rows = self._query(
            self._sql(
                f"SELECT {EVENT_COLUMNS} FROM zoho_events WHERE seq > ? AND seq <= ?"
                " ORDER BY seq LIMIT ?"
            ),
            (after_seq, upto_seq, limit),
        )
        return [self._event(row) for row in rows]

    def prune(self, below_seq: int, older_than: dt.datetime) -> int:
        cutoff = self._to_db_time(older_than)
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "DELETE FROM zoho_events WHERE seq < ? AND received_at < ?"
                    " AND seq < (SELECT MAX(seq) FROM zoho_events)"
                ),
                (below_seq, cutoff),
            )
            deleted = cur.rowcount
            cur.execute(self._sql("DELETE FROM zoho_receivers WHERE last_seen_at < ?"), (cutoff,))
        return deleted

    def backlog(self, after_seq: int = 0) -> int:
        rows = self._query(
            self._sql("SELECT COUNT(*) FROM zoho_events WHERE seq > ?"), (after_seq,)
        )
        return int(rows[0][0])

    def last_event_time(self) -> dt.datetime | None:
        value = self._query("SELECT MAX(received_at) FROM zoho_events")[0][0]
        return self._from_db_time(value) if value else None

    # -- identity and bookmark ------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = self._query(self._sql("SELECT value FROM zoho_store_meta WHERE key = ?"), (key,))
        return rows[0][0] if rows else None

    @property
    def store_id(self) -> str:
        value = self._meta(META_STORE_ID)
        if value is None:
            msg = f"event store {self.url_for_display} lost its store id; was it reset while open?"
            raise StoreError(msg)
        return value

    def committed_seq(self) -> int | None:
        value = self._meta(META_COMMITTED_SEQ)
        return int(value) if value is not None else None

    def set_committed_seq(self, seq: int) -> None:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO zoho_store_meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (META_COMMITTED_SEQ, str(int(seq))),
            )

    # -- channel registry -----------------------------------------------------------------

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        rows = self._query(
            self._sql(f"SELECT {CHANNEL_COLUMNS} FROM zoho_channels WHERE channel_id = ?"),
            (channel_id,),
        )
        return self._channel(rows[0]) if rows else None

    def list_channels(self) -> list[ChannelRecord]:
        rows = self._query(f"SELECT {CHANNEL_COLUMNS} FROM zoho_channels ORDER BY channel_id")
        return [self._channel(row) for row in rows]

    def put_channel(self, record: ChannelRecord) -> ChannelRecord:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    f"INSERT INTO zoho_channels ({CHANNEL_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (channel_id) DO UPDATE SET modules = excluded.modules,"
                    " events = excluded.events, token = excluded.token,"
                    " url_key = excluded.url_key, notify_url = excluded.notify_url,"
                    " expiry = excluded.expiry, updated_at = excluded.updated_at"
                ),
                (
                    record.channel_id,
                    self._to_db_names(record.modules),
                    self._to_db_names(record.events),
                    record.token,
                    record.url_key,
                    record.notify_url,
                    self._to_db_time(record.expiry) if record.expiry else None,
                    self._to_db_time(utc_now()),
                ),
            )
        stored = self.get_channel(record.channel_id)
        if stored is None:  # pragma: no cover - the row was just written
            raise StoreError("channel vanished right after it was stored")
        return stored

    def delete_channel(self, channel_id: str) -> bool:
        with self._write() as cur:
            cur.execute(self._sql("DELETE FROM zoho_channels WHERE channel_id = ?"), (channel_id,))
            return cur.rowcount > 0

    # -- heartbeats and the API credit ledger ---------------------------------------------

    def heartbeats(self, since: dt.datetime) -> list[HeartbeatRow]:
        rows = self._query(
            self._sql(
                "SELECT instance_id, started_at, last_seen_at FROM zoho_receivers"
                " WHERE last_seen_at >= ? ORDER BY started_at"
            ),
            (self._to_db_time(since),),
        )
        return [
            HeartbeatRow(r[0], self._from_db_time(r[1]), self._from_db_time(r[2])) for r in rows
        ]

    def credits_spent(self, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        rows = self._query(
            self._sql(
                "SELECT spent_at, credits FROM zoho_credit_spend WHERE spent_at >= ?"
                " ORDER BY spent_at"
            ),
            (self._to_db_time(since),),
        )
        return [(self._from_db_time(row[0]), int(row[1])) for row in rows]

    # -- deleted ids ----------------------------------------------------------------------

    def remember_deleted(self, module: str, deleted: Sequence[tuple[str, dt.datetime]]) -> None:
        with self._write() as cur:
            cur.executemany(
                self._sql(
                    "INSERT INTO zoho_deleted_ids (module, record_id, deleted_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (module, record_id)"
                    " DO UPDATE SET deleted_at = excluded.deleted_at"
                ),
                [(module, record_id, self._to_db_time(at)) for record_id, at in deleted],
            )
            cur.execute(
                self._sql("DELETE FROM zoho_deleted_ids WHERE deleted_at < ?"),
                (self._to_db_time(utc_now() - RESTORABLE_FOR),),
            )

    def deleted_ids(self, module: str) -> list[str]:
        rows = self._query(
            self._sql(
                "SELECT record_id FROM zoho_deleted_ids WHERE module = ? AND deleted_at >= ?"
                " ORDER BY record_id"
            ),
            (module, self._to_db_time(utc_now() - RESTORABLE_FOR)),
        )
        return [str(row[0]) for row in rows]

    def forget_deleted(self, module: str, record_ids: Sequence[str]) -> None:
        with self._write() as cur:
            cur.executemany(
                self._sql("DELETE FROM zoho_deleted_ids WHERE module = ? AND record_id = ?"),
                [(module, record_id) for record_id in record_ids],
            )
