"""PostgreSQL event store, for several receiver replicas and a tap on different hosts.

``seq`` is an identity column. An identity value is taken when a row is inserted, not when
its transaction commits, so two writers could commit 6 before 5 and a reader at
``high_water() == 6`` would later find 5 behind its bookmark. Every write therefore takes one
transaction-scoped advisory lock first: writers run one at a time and seq order is commit
order. Callback batches are small, so the lock is held for a few milliseconds. The statements
shared with SQLite (in ``_sql``) write through ``_write`` as well, so they take the same lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import typing as t

from tap_zoho_crm.store._sql import SqlEventStore
from tap_zoho_crm.store.base import CREDIT_LEDGER_KEEP, StoreError, as_utc, utc_now

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

    from tap_zoho_crm.store.base import NewEvent

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


class PostgresEventStore(SqlEventStore):
    """Event store in a PostgreSQL database; see the module docstring for its guarantees."""

    _PARAM = "%s"

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
        self._init_meta(cur)

    # -- column conversions: TIMESTAMPTZ and TEXT[] map to Python types as they are -----

    def _to_db_time(self, value: dt.datetime) -> dt.datetime:
        return as_utc(value)

    def _from_db_time(self, value: dt.datetime) -> dt.datetime:
        return as_utc(value)

    def _to_db_names(self, names: Sequence[str]) -> list[str]:
        return list(names)

    def _from_db_names(self, value: list[str]) -> tuple[str, ...]:
        return tuple(value)

    # -- writes whose SQL or locking is PostgreSQL's own ----------------------------------

    def _insert_events(self, events: Sequence[NewEvent], received_at: dt.datetime) -> list[int]:
        columns = list(zip(*(e.key for e in events), strict=True))
        channels = [e.channel_id for e in events]
        with self._write() as cur:
            cur.execute(_INSERT_EVENTS, (as_utc(received_at), *map(list, columns), channels))
            return sorted(row[0] for row in cur.fetchall())

    def reset(self) -> str:
        with self._write(_SCHEMA_LOCK_KEY) as cur:
            for statement in _DROP:
                cur.execute(statement)
            self._create_schema(cur)
        return self.store_id

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

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
