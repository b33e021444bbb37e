"""The receiver over real HTTP on loopback (uvicorn in a thread), on both store backends."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_zoho_crm.store import open_store
from tap_zoho_crm.store.base import EventStore
from tap_zoho_crm.webhook.app import ReceiverConfig, create_app
from tests.webhook.conftest import (
    CHANNEL_ID,
    TOKEN,
    URL_KEY,
    ServerThread,
    callback_body,
    register_channel,
)

EXAMPLES = Path("/work/shared/zoho-api/examples")
PATH = "/zoho/notifications"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventStore]:
    """One store per backend for the whole module (a server start costs 0.2 s)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('receiver')}/events.sqlite3"
    else:
        url = request.getfixturevalue("pg_database_url")
    with open_store(url) as opened:
        yield opened


@pytest.fixture(scope="module")
def running(module_store: EventStore) -> Iterator[ServerThread]:
    config = ReceiverConfig(path=PATH, max_body_bytes=MAX_BODY, heartbeat_seconds=0.2)
    with ServerThread(create_app(module_store, config)) as server:
        yield server


@pytest.fixture
def store(module_store: EventStore) -> EventStore:
    """The receiver's own store, emptied before each test."""
    module_store.reset()
    register_channel(module_store)
    return module_store


@pytest.fixture
def server(running: ServerThread, store: EventStore) -> ServerThread:
    return running


def post(
    server: ServerThread, body: Any, key: str | None = URL_KEY, **kw: Any
) -> requests.Response:
    params = {"key": key} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        server.url + PATH,
        params=params,
        data=data,
        headers={"Content-Type": "application/json"},
        timeout=10,
        **kw,
    )


def test_insert_callback_is_stored_and_answered_200(
    server: ServerThread, store: EventStore
) -> None:
    answer = post(server, callback_body(["4000000000001000011"]))
    assert answer.status_code == 200
    assert answer.json() == {"stored": 1, "ids": 1}
    (event,) = store.read(0)
    assert (event.module, event.record_id, event.operation) == (
        "Leads",
        "4000000000001000011",
        "insert",
    )
    assert (event.server_time_ms, event.channel_id) == (1741600805123, CHANNEL_ID)


@pytest.mark.parametrize(
    "name", ["notification_insert", "notification_update_multi", "notification_delete_multi"]
)
def test_zoho_example_bodies_are_stored(server: ServerThread, store: EventStore, name: str) -> None:
    body = json.loads((EXAMPLES / f"{name}.json").read_text())
    body.update(channel_id=CHANNEL_ID, token=TOKEN)
    assert post(server, body).status_code == 200
    stored = list(store.read(0))
    assert [e.record_id for e in stored] == body["ids"]
    assert {e.operation for e in stored} == {body["operation"]}


@pytest.mark.parametrize(
    ("change", "key", "status"),
    [
        ({"token": "wrong"}, URL_KEY, 401),
        ({"token": None}, URL_KEY, 401),
        ({"channel_id": "999"}, URL_KEY, 404),
        ({}, "wrong-key", 403),
        ({}, None, 403),
        ({}, URL_KEY[:-1], 403),
    ],
    ids=["bad-token", "no-token", "unknown-channel", "wrong-key", "no-key", "short-key"],
)
def test_unauthenticated_callbacks_are_refused_and_store_nothing(
    server: ServerThread, store: EventStore, change: dict[str, Any], key: str | None, status: int
) -> None:
    body = callback_body(["1"])
    body.update(change)
    assert post(server, body, key=key).status_code == status
    assert store.high_water() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"",
        json.dumps(callback_body(["1"], operation="create")).encode(),
        json.dumps({**callback_body(["1"]), "server_time": "soon"}).encode(),
        json.dumps({**callback_body(["1"]), "ids": "1"}).encode(),
        json.dumps(callback_body([""])).encode(),
        json.dumps(callback_body(["1"], module=None)).encode(),
        json.dumps({"channel_id": CHANNEL_ID, "token": TOKEN}).encode(),
        json.dumps(callback_body(["1"], channel_id=None)).encode(),
    ],
    ids=[
        "not-json",
        "not-object",
        "empty",
        "bad-operation",
        "bad-server-time",
        "ids-not-list",
        "empty-id",
        "no-module",
        "only-envelope",
        "no-channel",
    ],
)
def test_malformed_callbacks_get_400_and_store_nothing(
    server: ServerThread, store: EventStore, body: bytes
) -> None:
    assert post(server, body).status_code == 400
    assert store.high_water() == 0


def test_oversized_body_gets_413_and_stores_nothing(
    server: ServerThread, store: EventStore
) -> None:
    ids = [str(4000000000001000000 + i) for i in range(MAX_BODY // 20)]
    assert post(server, callback_body(ids)).status_code == 413
    assert store.high_water() == 0


def test_oversized_chunked_body_is_cut_off_while_reading(
    server: ServerThread, store: EventStore
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"channel_id": "1000000001", "ids": ["'
        for _ in range(MAX_BODY // 1000 + 2):
            yield b"1" * 1000
        yield b'"]}'

    answer = requests.post(server.url + PATH, params={"key": URL_KEY}, data=chunks(), timeout=10)
    assert answer.status_code == 413
    assert store.high_water() == 0


def test_repeated_callback_is_stored_once(server: ServerThread, store: EventStore) -> None:
    body = callback_body(["1", "2"], operation="update")
    assert post(server, body).json() == {"stored": 2, "ids": 2}
    assert post(server, body).json() == {"stored": 0, "ids": 2}
    assert store.backlog() == 2


def test_hundred_ids_become_hundred_events(server: ServerThread, store: EventStore) -> None:
    ids = [str(4000000000001000000 + i) for i in range(100)]
    assert post(server, callback_body(ids, operation="update")).json()["stored"] == 100
    assert [e.record_id for e in store.read(0)] == ids


def test_delete_of_a_never_seen_id_is_stored(server: ServerThread, store: EventStore) -> None:
    assert post(server, callback_body(["4999999999999999999"], operation="delete")).ok
    (event,) = store.read(0)
    assert (event.record_id, event.operation) == ("4999999999999999999", "delete")


def test_get_on_the_callback_path_is_not_allowed(server: ServerThread) -> None:
    assert requests.get(server.url + PATH, timeout=10).status_code == 405


def test_healthz_reports_backlog_after_the_committed_seq(
    server: ServerThread, store: EventStore
) -> None:
    post(server, callback_body(["1", "2", "3"]))
    health = requests.get(server.url + "/healthz", timeout=10).json()
    assert health["status"] == "ok"
    assert health["store_id"] == store.store_id
    assert (health["backlog"], health["backlog_after_seq"], health["high_water"]) == (3, None, 3)
    assert health["last_event_time"] is not None
    assert health["uptime_seconds"] >= 0

    store.set_committed_seq(2)
    health = requests.get(server.url + "/healthz", timeout=10).json()
    assert (health["backlog"], health["backlog_after_seq"]) == (1, 2)


def test_receiver_heartbeats_cover_its_uptime(server: ServerThread, store: EventStore) -> None:
    started = dt.datetime.now(dt.timezone.utc)
    deadline = time.monotonic() + 5
    while not (beats := store.heartbeats(started - dt.timedelta(minutes=1))):
        assert time.monotonic() < deadline, "no heartbeat within 5 s"
        time.sleep(0.05)
    (beat,) = beats
    assert beat.started_at <= started
    assert store.receiver_coverage(beat.started_at)
    assert not store.receiver_coverage(beat.started_at - dt.timedelta(minutes=5))


def test_logs_name_the_callback_but_never_its_secrets(
    server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    post(server, callback_body(["1", "2"], operation="update"))
    post(server, callback_body(["3"]), key="bad")
    post(server, callback_body(["3"], token="bad"))
    # The CLI turns uvicorn's access log off; pytest hooks that logger anyway, so skip it
    # here (test_crash checks the real server's output).
    text = "\n".join(r.getMessage() for r in caplog.records if r.name != "uvicorn.access")
    assert "Leads update, 2 ids, 2 new events, seq 1-2" in text
    assert TOKEN not in text
    assert URL_KEY not in text


class _BrokenStore:
    """Delegates to a real store but cannot write events (a database outage)."""

    def __init__(self, inner: EventStore) -> None:
        self._inner = inner

    def append_events(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("disk I/O error")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_store_failure_is_answered_503_so_zoho_can_retry(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as real:
        register_channel(real)
        app = create_app(_BrokenStore(real), ReceiverConfig(path=PATH))  # type: ignore[arg-type]
        with ServerThread(app) as broken:
            answer = post(broken, callback_body(["1"]))
        assert answer.status_code == 503
        assert "disk" not in answer.text
        assert real.high_water() == 0
