"""SQLite event store: one file, no server, safe for several processes on one host.

The file is in WAL mode with ``synchronous=FULL``, so a commit has reached the disk before
``append`` returns. Writers open ``BEGIN IMMEDIATE`` transactions, which SQLite serializes:
seq order is commit order. ``AUTOINCREMENT`` keeps a seq from being reused after pruning.
Times are stored as fixed-width UTC text, which sorts like the instants it names. The
statements shared with PostgreSQL (in ``_sql``) write through ``_write`` as well.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import typing as t
from pathlib import Path

from tap_zoho_crm.store._sql import SqlEventStore
from tap_zoho_crm.store.base import CREDIT_LEDGER_KEEP, StoreError, as_utc, utc_now

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tap_zoho_crm.store.base import NewEvent

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS zoho_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    module TEXT NOT NULL,
    record_id TEXT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('insert', 'update', 'delete')),
    server_time_ms INTEGER NOT NULL,
    channel_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (module, record_id, operation, server_time_ms)
);
CREATE INDEX IF NOT EXISTS zoho_events_received_at ON zoho_events (received_at);
CREATE TABLE IF NOT EXISTS zoho_channels (
    channel_id TEXT PRIMARY KEY,
    modules TEXT NOT NULL,
    events TEXT NOT NULL,
    token TEXT NOT NULL,
    url_key TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    expiry TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS zoho_receivers (
    instance_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (instance_id, started_at)
);
CREATE TABLE IF NOT EXISTS zoho_store_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS zoho_credit_spend (
    spent_at TEXT NOT NULL,
    credits INTEGER NOT NULL,
    endpoint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS zoho_credit_spend_at ON zoho_credit_spend (spent_at);
CREATE TABLE IF NOT EXISTS zoho_deleted_ids (
    module TEXT NOT NULL,
    record_id TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (module, record_id)
);
"""

_DROP = """
DROP TABLE IF EXISTS zoho_events;
DROP TABLE IF EXISTS zoho_channels;
DROP TABLE IF EXISTS zoho_receivers;
DROP TABLE IF EXISTS zoho_store_meta;
"""


def _ts(value: dt.datetime) -> str:
    return as_utc(value).strftime(_TIME_FORMAT)


def _parse_ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


class SqliteEventStore(SqlEventStore):
    """Event store in one SQLite file; see the module docstring for its guarantees."""

    _PARAM = "?"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.url_for_display = f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._conn = self._connect(busy_timeout_ms)
        self._create_schema()

    # -- connection and transactions ----------------------------------------------------

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        """Open the file, creating it but never its directory: a missing directory is
        more likely a typo in ``event_store_url`` than a place meant to be made."""
        if not self.path.parent.is_dir():
            msg = (
                f"the directory {self.path.parent} of the SQLite event store does not exist; "
                "create it first or fix event_store_url"
            )
            raise StoreError(msg)
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
        except (OSError, sqlite3.Error) as exc:
            msg = f"cannot open SQLite event store {self.path}: {exc}; check event_store_url"
            raise StoreError(msg) from exc
        if str(mode).lower() != "wal":
            msg = f"SQLite event store {self.path} refused WAL mode (got {mode})"
            raise StoreError(msg)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """Run a block in one ``BEGIN IMMEDIATE`` transaction; roll back on any error."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _create_schema(self) -> None:
        with self._write() as cur:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            self._init_meta(cur)

    # -- column conversions: times as fixed-width UTC text, name lists as JSON ----------

    def _to_db_time(self, value: dt.datetime) -> str:
        return _ts(value)

    def _from_db_time(self, value: str) -> dt.datetime:
        return _parse_ts(value)

    def _to_db_names(self, names: Sequence[str]) -> str:
        return json.dumps(list(names))

    def _from_db_names(self, value: str) -> tuple[str, ...]:
        return tuple(json.loads(value))

    # -- writes whose SQL is SQLite's own -------------------------------------------------

    def _insert_events(self, events: Sequence[NewEvent], received_at: dt.datetime) -> list[int]:
        stamp = _ts(received_at)
        seqs: list[int] = []
        with self._write() as cur:
            for event in events:
                cur.execute(
                    "INSERT INTO zoho_events (module, record_id, operation, server_time_ms,"
                    " channel_id, received_at) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (*event.key, event.channel_id, stamp),
                )
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    seqs.append(cur.lastrowid)
        return seqs

    def reset(self) -> str:
        with self._write() as cur:
            for statement in (_DROP + _SCHEMA).split(";"):
                if statement.strip():
                    cur.execute(statement)
            self._init_meta(cur)
        return self.store_id

    def heartbeat(
        self, instance_id: str, started_at: dt.datetime, now: dt.datetime | None = None
    ) -> None:
        seen = _ts(now or utc_now())
        with self._write() as cur:
            cur.execute(
                "INSERT INTO zoho_receivers (instance_id, started_at, last_seen_at)"
                " VALUES (?, ?, ?) ON CONFLICT (instance_id, started_at)"
                " DO UPDATE SET last_seen_at = MAX(last_seen_at, excluded.last_seen_at)",
                (instance_id, _ts(started_at), seen),
            )

    def record_credits(self, credits: int, endpoint: str, at: dt.datetime | None = None) -> None:
        moment = as_utc(at or utc_now())
        with self._write() as cur:
            cur.execute(
                "INSERT INTO zoho_credit_spend (spent_at, credits, endpoint) VALUES (?, ?, ?)",
                (_ts(moment), int(credits), endpoint),
            )
            cur.execute(
                "DELETE FROM zoho_credit_spend WHERE spent_at < ?",
                (_ts(moment - CREDIT_LEDGER_KEEP),),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
