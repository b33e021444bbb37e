"""Event store shared by the webhook receiver and the tap; ``open_store`` picks the backend.

URLs (setting ``event_store_url``):

- ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (SQLAlchemy's
  convention: three slashes then the path). One host, any number of processes.
- ``postgresql://user:password@host:5432/dbname`` (``postgres://`` and
  ``postgresql+psycopg://`` are accepted too). Several hosts; needs ``psycopg``.
"""

from __future__ import annotations

from tap_zoho_crm.store.base import (
    DEFAULT_COVERAGE_TOLERANCE,
    OPERATIONS,
    Appended,
    ChannelRecord,
    Event,
    EventStore,
    HeartbeatRow,
    NewEvent,
    StoreError,
)

DEFAULT_EVENT_STORE_URL = "sqlite:///zoho_events.sqlite3"

__all__ = [
    "DEFAULT_COVERAGE_TOLERANCE",
    "DEFAULT_EVENT_STORE_URL",
    "OPERATIONS",
    "Appended",
    "ChannelRecord",
    "Event",
    "EventStore",
    "HeartbeatRow",
    "NewEvent",
    "StoreError",
    "open_store",
]


def open_store(url: str = DEFAULT_EVENT_STORE_URL, *, timeout_seconds: int = 10) -> EventStore:
    """Open (creating if needed) the event store at ``url``.

    ``timeout_seconds`` is SQLite's busy timeout or PostgreSQL's connect timeout. Raises
    ``StoreError`` with a message naming ``event_store_url`` when the URL is unusable.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        msg = f"event_store_url {url!r} is not a URL; use sqlite:///path or postgresql://..."
        raise StoreError(msg)
    if scheme == "sqlite":
        from tap_zoho_crm.store.sqlite import SqliteEventStore  # noqa: PLC0415

        path = rest[1:] if rest.startswith("/") else ""
        if not path or path == ":memory:":
            msg = "event_store_url sqlite:/// needs a file path, e.g. sqlite:///events.sqlite3"
            raise StoreError(msg)
        return SqliteEventStore(path, busy_timeout_ms=timeout_seconds * 1000)
    if scheme in {"postgresql", "postgres"} or scheme.startswith("postgresql+"):
        from tap_zoho_crm.store.postgres import PostgresEventStore  # noqa: PLC0415

        return PostgresEventStore(url, connect_timeout_seconds=timeout_seconds)
    msg = f"event_store_url scheme {scheme!r} is not supported; use sqlite or postgresql"
    raise StoreError(msg)
