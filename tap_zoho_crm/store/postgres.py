"""PostgreSQL event store, for several receiver replicas and a tap on different hosts.

``seq`` is an identity column. An identity value is taken when a row is inserted, not when
its transaction commits, so two writers could commit 6 before 5 and a reader at
``high_water() == 6`` would later find 5 behind its bookmark. Every write therefore takes one
transaction-scoped advisory lock first: writers run one at a time and seq order is commit
order. Callback batches are small, so the lock is held for a few milliseconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import typing as t
import uuid

from tap_zoho_crm.store.base import (
    CREDIT_LEDGER_KEEP,
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
    NewEvent,
    StoreError,
    as_utc,
    dedupe,
    utc_now,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

# Arbitrary fixed keys for pg_advisory_xact_lock: one for writers, one for schema changes.
_WRITE_LOCK_KEY = 0x7A6F686F_00000001
_SCHEMA_LOCK_KEY = 0x7A6F686F_00000002

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS zoho_events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        module TEXT NOT NULL,
        record_id TEXT NOT NULL,
        operation TEXT NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
        server_time_ms BIGINT NOT NULL,
        channel_id TEXT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        UNIQUE (module, record_id, operation, server_time_ms))""",
    "CREATE INDEX IF NOT EXISTS zoho_events_received_at ON zoho_events (received_at)",
    """CREATE TABLE IF NOT EXISTS zoho_channels (
        channel_id TEXT PRIMARY KEY,
        modules TEXT[] NOT NULL,
        events TEXT[] NOT NULL,
        token TEXT NOT NULL,
        url_key TEXT NOT NULL,
        notify_url TEXT NOT NULL,
        expiry TIMESTAMPTZ,
        updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS zoho_receivers (
        instance_id TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        last_seen_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (instance_id, started_at))""",
    """CREATE TABLE IF NOT EXISTS zoho_store_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS zoho_credit_spend (
        spent_at TIMESTAMPTZ NOT NULL,
        credits INTEGER NOT NULL,
        endpoint TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS zoho_credit_spend_at ON zoho_credit_spend (spent_at)",
    """CREATE TABLE IF NOT EXISTS zoho_deleted_ids (
        module TEXT NOT NULL,
        record_id TEXT NOT NULL,
        deleted_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (module, record_id))""",
)

_DROP = tuple(
    f"DROP TABLE IF EXISTS {name}"
    for name in ("zoho_events", "zoho_channels", "zoho_receivers", "zoho_store_meta")
)

_CHANNEL_COLUMNS = "channel_id, modules, events, token, url_key, notify_url, expiry, updated_at"
_EVENT_COLUMNS = "seq, module, record_id, operation, server_time_ms, channel_id, received_at"

_INSERT_EVENTS = """
INSERT INTO zoho_events (module, record_id, operation, server_time_ms, channel_id, received_at)
SELECT u.m, u.r, u.o, u.s, u.c, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[])
     WITH ORDINALITY AS u(m, r, o, s, c, n)
ORDER BY u.n
ON CONFLICT DO NOTHING
RETURNING seq
"""


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _libpq_url(url: str) -> str:
    """Turn a SQLAlchemy-style ``postgresql+psycopg://`` URL into one libpq accepts."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url)


def _event(row: tuple[t.Any, ...]) -> Event:
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], as_utc(row[6]))


def _channel(row: tuple[t.Any, ...]) -> ChannelRecord:
    return ChannelRecord(
        channel_id=row[0],
        modules=tuple(row[1]),
        events=tuple(row[2]),
        token=row[3],
        url_key=row[4],
        notify_url=row[5],
        expiry=as_utc(row[6]) if row[6] else None,
        updated_at=as_utc(row[7]),
    )


class PostgresEventStore(EventStore):
    """Event store in a PostgreSQL database; see the module docstring for its guarantees."""

    def __init__(self, url: str, *, connect_timeout_seconds: int = 10) -> None:
        self._url = _libpq_url(url)
        self.url_for_display = redact_url(url)
        self._connect_timeout = connect_timeout_seconds
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[t.Any] | None = None
        with self._write(_SCHEMA_LOCK_KEY) as cur:
            self._create_schema(cur)

    # -- connection and transactions ----------------------------------------------------

    def _connection(self) -> psycopg.Connection[t.Any]:
        """Return a live connection, reconnecting if the last one broke."""
        try:
            import psycopg  # noqa: PLC0415 - optional dependency, only for this backend
        except ImportError as exc:
            msg = "a postgresql:// event_store_url needs psycopg: install tap-zoho-crm[postgres]"
            raise StoreError(msg) from exc
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        try:
            self._conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout
            )
        except psycopg.Error as exc:
            msg = f"cannot open event store {self.url_for_display}: {exc}".strip()
            raise StoreError(f"{msg}; check event_store_url") from exc
        return self._conn

    @contextlib.contextmanager
    def _write(self, lock_key: int = _WRITE_LOCK_KEY) -> Iterator[psycopg.Cursor[t.Any]]:
        """Run a block in one transaction holding the writers' advisory lock."""
        with self._lock:
            conn = self._connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                yield cur

    def _query(self, sql: str, params: Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        with self._lock:
            return self._connection().execute(sql, params).fetchall()

    def _create_schema(self, cur: psycopg.Cursor[t.Any]) -> None:
        for statement in _SCHEMA:
            cur.execute(statement)
        cur.execute(
            "INSERT INTO zoho_store_meta (key, value) VALUES (%s, %s), (%s, %s)"
            " ON CONFLICT (key) DO NOTHING",
            (META_STORE_ID, str(uuid.uuid4()), META_SCHEMA_VERSION, str(SCHEMA_VERSION)),
        )
        cur.execute("SELECT value FROM zoho_store_meta WHERE key = %s", (META_SCHEMA_VERSION,))
        row = cur.fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            msg = (
                f"event store {self.url_for_display} has schema version {version}, newer "
                f"than this package's {SCHEMA_VERSION}; upgrade tap-zoho-crm"
            )
            raise StoreError(msg)

    # -- events -------------------------------------------------------------------------

    def append_events(
        self, events: Sequence[NewEvent], received_at: dt.datetime | None = None
    ) -> Appended:
        unique = dedupe(events)
        if not unique:
            return Appended(0)
        columns = list(zip(*(e.key for e in unique), strict=True))
        channels = [e.channel_id for e in unique]
        with self._write() as cur:
            cur.execute(
                _INSERT_EVENTS,
                (as_utc(received_at or utc_now()), *map(list, columns), channels),
            )
            seqs = sorted(row[0] for row in cur.fetchall())
        if not seqs:
            return Appended(0)
        return Appended(len(seqs), seqs[0], seqs[-1])

    def high_water(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM zoho_events")[0][0])

    def _read_chunk(self, after_seq: int, upto_seq: int, limit: int) -> list[Event]:
        rows = self._query(
            f"SELECT {_EVENT_COLUMNS} FROM zoho_events WHERE seq > %s AND seq <= %s"
            " ORDER BY seq LIMIT %s",
            (after_seq, upto_seq, limit),
        )
        return [_event(row) for row in rows]

    def prune(self, below_seq: int, older_than: dt.datetime) -> int:
        cutoff = as_utc(older_than)
        with self._write() as cur:
            cur.execute(
                "DELETE FROM zoho_events WHERE seq < %s AND received_at < %s"
                " AND seq < (SELECT MAX(seq) FROM zoho_events)",
                (below_seq, cutoff),
            )
            deleted = cur.rowcount
            cur.execute("DELETE FROM zoho_receivers WHERE last_seen_at < %s", (cutoff,))
        return deleted

    def backlog(self, after_seq: int = 0) -> int:
        rows = self._query("SELECT COUNT(*) FROM zoho_events WHERE seq > %s", (after_seq,))
        return int(rows[0][0])

    def last_event_time(self) -> dt.datetime | None:
        value = self._query("SELECT MAX(received_at) FROM zoho_events")[0][0]
        return as_utc(value) if value else None

    # -- identity and bookmark ----------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM zoho_store_meta WHERE key = %s", (key,))
        return rows[0][0] if rows else None

    @property
    def store_id(self) -> str:
        value = self._meta(META_STORE_ID)
        if value is None:
            msg = f"event store {self.url_for_display} lost its store id; reset while open?"
            raise StoreError(msg)
        return value

    def reset(self) -> str:
        with self._write(_SCHEMA_LOCK_KEY) as cur:
            for statement in _DROP:
                cur.execute(statement)
            self._create_schema(cur)
        return self.store_id

    def committed_seq(self) -> int | None:
        value = self._meta(META_COMMITTED_SEQ)
        return int(value) if value is not None else None

    def set_committed_seq(self, seq: int) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO zoho_store_meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (META_COMMITTED_SEQ, str(int(seq))),
            )

    # -- channel registry ---------------------------------------------------------------

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        rows = self._query(
            f"SELECT {_CHANNEL_COLUMNS} FROM zoho_channels WHERE channel_id = %s",
            (channel_id,),
        )
        return _channel(rows[0]) if rows else None

    def list_channels(self) -> list[ChannelRecord]:
        rows = self._query(f"SELECT {_CHANNEL_COLUMNS} FROM zoho_channels ORDER BY channel_id")
        return [_channel(row) for row in rows]

    def put_channel(self, record: ChannelRecord) -> ChannelRecord:
        with self._write() as cur:
            cur.execute(
                f"INSERT INTO zoho_channels ({_CHANNEL_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (channel_id) DO UPDATE SET modules = excluded.modules,"
                " events = excluded.events, token = excluded.token,"
                " url_key = excluded.url_key, notify_url = excluded.notify_url,"
                " expiry = excluded.expiry, updated_at = excluded.updated_at",
                (
                    record.channel_id,
                    list(record.modules),
                    list(record.events),
                    record.token,
                    record.url_key,
                    record.notify_url,
                    as_utc(record.expiry) if record.expiry else None,
                    utc_now(),
                ),
            )
        stored = self.get_channel(record.channel_id)
        if stored is None:  # pragma: no cover - the row was just written
            raise StoreError("channel vanished right after it was stored")
        return stored

    def delete_channel(self, channel_id: str) -> bool:
        with self._write() as cur:
            cur.execute("DELETE FROM zoho_channels WHERE channel_id = %s", (channel_id,))
            return cur.rowcount > 0

    # -- heartbeats ---------------------------------------------------------------------

    def heartbeat(
        self, instance_id: str, started_at: dt.datetime, now: dt.datetime | None = None
    ) -> None:
        # Heartbeats do not need the writers' lock: they never touch seq.
        with self._lock:
            self._connection().execute(
                "INSERT INTO zoho_receivers (instance_id, started_at, last_seen_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (instance_id, started_at)"
                " DO UPDATE SET last_seen_at ="
                " GREATEST(zoho_receivers.last_seen_at, excluded.last_seen_at)",
                (instance_id, as_utc(started_at), as_utc(now or utc_now())),
            )

    def heartbeats(self, since: dt.datetime) -> list[HeartbeatRow]:
        rows = self._query(
            "SELECT instance_id, started_at, last_seen_at FROM zoho_receivers"
            " WHERE last_seen_at >= %s ORDER BY started_at",
            (as_utc(since),),
        )
        return [HeartbeatRow(r[0], as_utc(r[1]), as_utc(r[2])) for r in rows]

    # -- API credit ledger --------------------------------------------------------------

    def record_credits(self, credits: int, endpoint: str, at: dt.datetime | None = None) -> None:
        moment = as_utc(at or utc_now())
        # No advisory lock: the ledger needs no ordering with the event writers.
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO zoho_credit_spend (spent_at, credits, endpoint)"
                    " VALUES (%s, %s, %s)",
                    (moment, int(credits), endpoint),
                )
                conn.execute(
                    "DELETE FROM zoho_credit_spend WHERE spent_at < %s",
                    (moment - CREDIT_LEDGER_KEEP,),
                )

    def credits_spent(self, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        rows = self._query(
            "SELECT spent_at, credits FROM zoho_credit_spend WHERE spent_at >= %s"
            " ORDER BY spent_at",
            (as_utc(since),),
        )
        return [(as_utc(row[0]), int(row[1])) for row in rows]

    # -- deleted ids ----------------------------------------------------------------------

    def remember_deleted(self, module: str, deleted: Sequence[tuple[str, dt.datetime]]) -> None:
        with self._write() as cur:
            cur.executemany(
                "INSERT INTO zoho_deleted_ids (module, record_id, deleted_at)"
                " VALUES (%s, %s, %s) ON CONFLICT (module, record_id)"
                " DO UPDATE SET deleted_at = EXCLUDED.deleted_at",
                [(module, record_id, as_utc(moment)) for record_id, moment in deleted],
            )
            cur.execute(
                "DELETE FROM zoho_deleted_ids WHERE deleted_at < %s",
                (utc_now() - RESTORABLE_FOR,),
            )

    def deleted_ids(self, module: str) -> list[str]:
        rows = self._query(
            "SELECT record_id FROM zoho_deleted_ids WHERE module = %s AND deleted_at >= %s"
            " ORDER BY record_id",
            (module, utc_now() - RESTORABLE_FOR),
        )
        return [str(row[0]) for row in rows]

    def forget_deleted(self, module: str, record_ids: Sequence[str]) -> None:
        with self._write() as cur:
            cur.executemany(
                "DELETE FROM zoho_deleted_ids WHERE module = %s AND record_id = %s",
                [(module, record_id) for record_id in record_ids],
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
