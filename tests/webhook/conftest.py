"""Fixtures for the webhook side: event stores on both backends and loopback servers.

PostgreSQL tests use one database created here with a random ``tzc_test_`` name on the local
server (``TZC_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``) and drop it
at the end; they are skipped when that server cannot be reached.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tap_zoho_crm.store import ChannelRecord, EventStore, open_store

PG_ADMIN_URL = os.environ.get("TZC_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHANNEL_ID = "1000000001"
TOKEN = "tok-" + "t" * 40
URL_KEY = "key-" + "k" * 40


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"local PostgreSQL not reachable: {exc}")
    name = f"tzc_test_{secrets.token_hex(6)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty event store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.sqlite3"
    url = request.getfixturevalue("pg_database_url")
    with open_store(url) as store:
        store.reset()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_store(store_url) as opened:
        yield opened


def register_channel(store: EventStore, channel_id: str = CHANNEL_ID) -> ChannelRecord:
    """Register a channel with the test secrets, as ``channel subscribe`` would."""
    return store.put_channel(
        ChannelRecord(
            channel_id=channel_id,
            modules=("Leads",),
            events=("Leads.create", "Leads.edit", "Leads.delete"),
            token=TOKEN,
            url_key=URL_KEY,
            notify_url=f"https://hooks.example.com/zoho/notifications?key={URL_KEY}",
        )
    )


def callback_body(
    ids: list[str],
    operation: str = "insert",
    server_time: int = 1741600805123,
    **overrides: Any,
) -> dict[str, Any]:
    """A callback body shaped like Zoho's (NOTES 6.5)."""
    body: dict[str, Any] = {
        "server_time": server_time,
        "query_params": {"key": URL_KEY},
        "module": "Leads",
        "resource_uri": "https://www.zohoapis.com/crm/v2/Leads",
        "ids": ids,
        "affected_fields": [],
        "operation": operation,
        "channel_id": CHANNEL_ID,
        "token": TOKEN,
    }
    body.update(overrides)
    return body


class ServerThread:
    """An ASGI app served by uvicorn in a thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
