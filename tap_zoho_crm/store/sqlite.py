"""SQLite event store: one file, no server, safe for several processes on one host.

The file is in WAL mode with ``synchronous=FULL``, so a commit has reached the disk before
``append`` returns. Writers open ``BEGIN IMMEDIATE`` transactions, which SQLite serializes:
seq order is commit order. ``AUTOINCREMENT`` keeps a seq from being reused after pruning.
Times are stored as fixed-width UTC text, which sorts like the instants it names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import typing as t
import uuid
from pathlib import Path

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

_CHANNEL_COLUMNS = "channel_id, modules, events, token, url_key, notify_url, expiry, updated_at"
_EVENT_COLUMNS = "seq, module, record_id, operation, server_time_ms, channel_id, received_at"


def _ts(value: dt.datetime) -> str:
    return as_utc(value).strftime(_TIME_FORMAT)


def _parse_ts(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.timezone.utc)


def _event(row: tuple[t.Any, ...]) -> Event:
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], _parse_ts(row[6]))


def _channel(row: tuple[t.Any, ...]) -> ChannelRecord:
    return ChannelRecord(
        channel_id=row[0],
        modules=tuple(json.loads(row[1])),
        events=tuple(json.loads(row[2])),
        token=row[3],
        url_key=row[4],
        notify_url=row[5],
        expiry=_parse_ts(row[6]) if row[6] else None,
        updated_at=_parse_ts(row[7]),
    )


class SqliteEventStore(EventStore):
    """Event store in one SQLite file; see the module docstring for its guarantees."""

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

    def _init_meta(self, cur: sqlite3.Cursor) -> None:
        cur.execute(
            "INSERT OR IGNORE INTO zoho_store_meta (key, value) VALUES (?, ?), (?, ?)",
            (META_STORE_ID, str(uuid.uuid4()), META_SCHEMA_VERSION, str(SCHEMA_VERSION)),
        )
        version = cur.execute(
            "SELECT value FROM zoho_store_meta WHERE key = ?", (META_SCHEMA_VERSION,)
        ).fetchone()[0]
        if int(version) > SCHEMA_VERSION:
            msg = (
                f"event store {self.path} has schema version {version}, newer than this "
                f"package's {SCHEMA_VERSION}; upgrade tap-zoho-crm"
            )
            raise StoreError(msg)

    # -- events -------------------------------------------------------------------------

    def append_events(
        self, events: Sequence[NewEvent], received_at: dt.datetime | None = None
    ) -> Appended:
        stamp = _ts(received_at or utc_now())
        seqs: list[int] = []
        with self._write() as cur:
            for event in dedupe(events):
                cur.execute(
                    "INSERT INTO zoho_events (module, record_id, operation, server_time_ms,"
                    " channel_id, received_at) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (*event.key, event.channel_id, stamp),
                )
                if cur.rowcount == 1 and cur.lastrowid is not None:
                    seqs.append(cur.lastrowid)
        if not seqs:
            return Appended(0)
        return Appended(len(seqs), seqs[0], seqs[-1])

    def high_water(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(seq), 0) FROM zoho_events")[0][0])

    def _read_chunk(self, after_seq: int, upto_seq: int, limit: int) -> list[Event]:
        rows = self._query(
            f"SELECT {_EVENT_COLUMNS} FROM zoho_events WHERE seq > ? AND seq <= ?"
            " ORDER BY seq LIMIT ?",
            (after_seq, upto_seq, limit),
        )
        return [_event(row) for row in rows]

    def prune(self, below_seq: int, older_than: dt.datetime) -> int:
        cutoff = _ts(older_than)
        with self._write() as cur:
            cur.execute(
                "DELETE FROM zoho_events WHERE seq < ? AND received_at < ?"
                " AND seq < (SELECT MAX(seq) FROM zoho_events)",
                (below_seq, cutoff),
            )
            deleted = cur.rowcount
            cur.execute("DELETE FROM zoho_receivers WHERE last_seen_at < ?", (cutoff,))
        return deleted

    def backlog(self, after_seq: int = 0) -> int:
        rows = self._query("SELECT COUNT(*) FROM zoho_events WHERE seq > ?", (after_seq,))
        return int(rows[0][0])

    def last_event_time(self) -> dt.datetime | None:
        value = self._query("SELECT MAX(received_at) FROM zoho_events")[0][0]
        return _parse_ts(value) if value else None

    # -- identity and bookmark ----------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM zoho_store_meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    @property
    def store_id(self) -> str:
        value = self._meta(META_STORE_ID)
        if value is None:
            msg = f"event store {self.path} lost its store id; was it reset while open?"
            raise StoreError(msg)
        return value

    def reset(self) -> str:
        with self._write() as cur:
            for statement in (_DROP + _SCHEMA).split(";"):
                if statement.strip():
                    cur.execute(statement)
            self._init_meta(cur)
        return self.store_id

    def committed_seq(self) -> int | None:
        value = self._meta(META_COMMITTED_SEQ)
        return int(value) if value is not None else None

    def set_committed_seq(self, seq: int) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO zoho_store_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (META_COMMITTED_SEQ, str(int(seq))),
            )

    # -- channel registry ---------------------------------------------------------------

    def get_channel(self, channel_id: str) -> ChannelRecord | None:
        rows = self._query(
            f"SELECT {_CHANNEL_COLUMNS} FROM zoho_channels WHERE channel_id = ?", (channel_id,)
        )
        return _channel(rows[0]) if rows else None

    def list_channels(self) -> list[ChannelRecord]:
        rows = self._query(f"SELECT {_CHANNEL_COLUMNS} FROM zoho_channels ORDER BY channel_id")
        return [_channel(row) for row in rows]

    def put_channel(self, record: ChannelRecord) -> ChannelRecord:
        now = utc_now()
        with self._write() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO zoho_channels (channel_id, modules, events, token,"
                " url_key, notify_url, expiry, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.channel_id,
                    json.dumps(list(record.modules)),
                    json.dumps(list(record.events)),
                    record.token,
                    record.url_key,
                    record.notify_url,
                    _ts(record.expiry) if record.expiry else None,
                    _ts(now),
                ),
            )
        stored = self.get_channel(record.channel_id)
        if stored is None:  # pragma: no cover - the row was just written
            raise StoreError("channel vanished right after it was stored")
        return stored

    def delete_channel(self, channel_id: str) -> bool:
        with self._write() as cur:
            cur.execute("DELETE FROM zoho_channels WHERE channel_id = ?", (channel_id,))
            return cur.rowcount > 0

    # -- heartbeats ---------------------------------------------------------------------

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

    def heartbeats(self, since: dt.datetime) -> list[HeartbeatRow]:
        rows = self._query(
            "SELECT instance_id, started_at, last_seen_at FROM zoho_receivers"
            " WHERE last_seen_at >= ? ORDER BY started_at",
            (_ts(since),),
        )
        return [HeartbeatRow(r[0], _parse_ts(r[1]), _parse_ts(r[2])) for r in rows]

    # -- API credit ledger --------------------------------------------------------------

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

    def credits_spent(self, since: dt.datetime) -> list[tuple[dt.datetime, int]]:
        rows = self._query(
            "SELECT spent_at, credits FROM zoho_credit_spend WHERE spent_at >= ? ORDER BY spent_at",
            (_ts(since),),
        )
        return [(_parse_ts(row[0]), int(row[1])) for row in rows]

    # -- deleted ids ----------------------------------------------------------------------

    def remember_deleted(self, module: str, deleted: Sequence[tuple[str, dt.datetime]]) -> None:
        with self._write() as cur:
            cur.executemany(
                "INSERT INTO zoho_deleted_ids (module, record_id, deleted_at) VALUES (?, ?, ?)"
                " ON CONFLICT (module, record_id) DO UPDATE SET deleted_at = excluded.deleted_at",
                [(module, record_id, _ts(moment)) for record_id, moment in deleted],
            )
            cur.execute(
                "DELETE FROM zoho_deleted_ids WHERE deleted_at < ?",
                (_ts(utc_now() - RESTORABLE_FOR),),
            )

    def deleted_ids(self, module: str) -> list[str]:
        rows = self._query(
            "SELECT record_id FROM zoho_deleted_ids WHERE module = ? AND deleted_at >= ?"
            " ORDER BY record_id",
            (module, _ts(utc_now() - RESTORABLE_FOR)),
        )
        return [str(row[0]) for row in rows]

    def forget_deleted(self, module: str, record_ids: Sequence[str]) -> None:
        with self._write() as cur:
            cur.executemany(
                "DELETE FROM zoho_deleted_ids WHERE module = ? AND record_id = ?",
                [(module, record_id) for record_id in record_ids],
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()
