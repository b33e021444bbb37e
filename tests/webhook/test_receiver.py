"""The receiver over real HTTP on loopback (uvicorn in a thread), on both store backends."""

from __future__ import annotations

import dataclasses
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
MAX_BODY = 256 * 1024  # room for JSON nested 100,000 levels deep


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
    server: ServerThread,
    body: Any,
    key: str | None = URL_KEY,
    content_type: str | None = "application/json",
) -> requests.Response:
    params = {"key": key} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return requests.post(server.url + PATH, params=params, data=data, headers=headers, timeout=10)


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

    answer = requests.post(
        server.url + PATH,
        params={"key": URL_KEY},
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
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


# -- refusals found by a new user: each answers 4xx and stores nothing --------------------


@pytest.mark.parametrize(
    "server_time",
    [10**20, 32503680000000, 0, -1, True, 1741600805123.0, "1741600805123", None],
    ids=["10^20", "year-3000", "zero", "negative", "bool", "float", "string", "null"],
)
def test_server_time_out_of_range_or_not_an_integer_gets_400(
    server: ServerThread, store: EventStore, server_time: Any
) -> None:
    answer = post(server, callback_body(["1"], server_time=server_time))
    assert answer.status_code == 400
    assert "server_time" in answer.json()["error"]
    assert store.high_water() == 0


def test_server_time_just_below_year_3000_is_stored(
    server: ServerThread, store: EventStore
) -> None:
    assert post(server, callback_body(["1"], server_time=32503679999999)).status_code == 200
    (event,) = store.read(0)
    assert event.server_time_ms == 32503679999999


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"channel_id": "1000000001", "ids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["bare", "inside-a-callback"],
)
def test_json_nested_100000_deep_gets_400_not_5xx(
    server: ServerThread, store: EventStore, body: bytes
) -> None:
    answer = post(server, body)
    assert answer.status_code == 400
    assert answer.json() == {"error": "body is nested too deeply"}
    assert store.high_water() == 0


def test_receiver_still_stores_after_a_deep_body(server: ServerThread, store: EventStore) -> None:
    assert post(server, b"[" * 100_000 + b"]" * 100_000).status_code == 400
    assert post(server, callback_body(["7"])).status_code == 200
    assert store.high_water() == 1


@pytest.mark.parametrize("module", [5, True, ["Leads"], ""], ids=["int", "bool", "list", "empty"])
def test_module_that_is_not_a_string_gets_400(
    server: ServerThread, store: EventStore, module: Any
) -> None:
    answer = post(server, callback_body(["1"], module=module))
    assert answer.status_code == 400
    assert answer.json() == {"error": "module is missing or not a string"}
    assert store.high_water() == 0


@pytest.mark.parametrize("module", ["Deals", "leads", "Leads "], ids=["other", "case", "space"])
def test_module_the_channel_did_not_subscribe_gets_422(
    server: ServerThread, store: EventStore, module: str
) -> None:
    answer = post(server, callback_body(["1"], module=module))
    assert answer.status_code == 422
    assert "did not subscribe" in answer.json()["error"]
    assert store.high_water() == 0


def test_operation_the_channel_did_not_subscribe_gets_422(
    server: ServerThread, store: EventStore
) -> None:
    record = register_channel(store)
    store.put_channel(dataclasses.replace(record, events=("Leads.create",)))
    assert post(server, callback_body(["1"], operation="update")).status_code == 422
    assert post(server, callback_body(["1"], operation="delete")).status_code == 422
    assert store.high_water() == 0
    assert post(server, callback_body(["1"], operation="insert")).status_code == 200
    assert [e.operation for e in store.read(0)] == ["insert"]


def test_an_all_event_covers_every_operation_of_its_module(
    server: ServerThread, store: EventStore
) -> None:
    record = register_channel(store)
    events = ("Leads.all", "Deals.delete")
    store.put_channel(dataclasses.replace(record, modules=("Leads", "Deals"), events=events))
    for operation in ("insert", "update", "delete"):
        assert post(server, callback_body(["1"], operation=operation)).status_code == 200
    assert post(server, callback_body(["2"], "delete", module="Deals")).status_code == 200
    assert post(server, callback_body(["3"], "insert", module="Deals")).status_code == 422
    assert [(e.module, e.record_id) for e in store.read(0)][-1] == ("Deals", "2")
    assert store.high_water() == 4


@pytest.mark.parametrize(
    "ids",
    [
        ["abc; drop"],
        ["4000000000001000011", "abc; drop"],
        ["1" * 21],
        ["-5"],
        [-5],
        ["12 "],
        ["12\n"],
        ["\u0663\u0664"],  # Arabic-Indic digits: str.isdigit() says yes, Zoho never sends them
        ["1.5"],
        [1.5],
        [True],
        [None],
        [["1"]],
        [],
        [str(n) for n in range(1001)],
    ],
    ids=[
        "injection",
        "one-bad-among-good",
        "21-digits",
        "negative-text",
        "negative-int",
        "trailing-space",
        "trailing-newline",
        "non-ascii-digits",
        "decimal-text",
        "float",
        "bool",
        "null",
        "nested-list",
        "empty-list",
        "1001-ids",
    ],
)
def test_bad_ids_refuse_the_whole_body_with_400(
    server: ServerThread, store: EventStore, ids: list[Any]
) -> None:
    answer = post(server, callback_body(ids))
    assert answer.status_code == 400
    assert "ids" in answer.json()["error"] or "id must" in answer.json()["error"]
    assert store.high_water() == 0


def test_thousand_ids_and_integer_ids_are_stored(server: ServerThread, store: EventStore) -> None:
    ids: list[Any] = [str(4000000000001000000 + n) for n in range(999)] + [4000000000001999999]
    answer = post(server, callback_body(ids, operation="update"))
    assert answer.json() == {"stored": 1000, "ids": 1000}
    stored = [e.record_id for e in store.read(0)]
    assert stored[-2:] == ["4000000000001000998", "4000000000001999999"]


def test_empty_ids_are_refused_not_logged_as_a_repeat(
    server: ServerThread, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = post(server, callback_body([]))
    assert (answer.status_code, answer.json()) == (400, {"error": "ids is empty"})
    assert "repeat" not in caplog.text
    assert store.high_water() == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "",
        None,
    ],
    ids=["text", "form", "multipart", "xml", "jsonx", "empty", "missing"],
)
def test_body_not_declared_json_gets_415(
    server: ServerThread, store: EventStore, content_type: str | None
) -> None:
    answer = post(server, callback_body(["1"]), content_type=content_type)
    assert answer.status_code == 415
    assert answer.json()["error"].startswith("Content-Type must be application/json")
    assert store.high_water() == 0


def test_form_encoded_body_gets_415(server: ServerThread, store: EventStore) -> None:
    form = {k: json.dumps(v) for k, v in callback_body(["1"]).items()}
    answer = requests.post(server.url + PATH, params={"key": URL_KEY}, data=form, timeout=10)
    assert answer.status_code == 415
    assert store.high_water() == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json;charset=UTF-8",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.zoho+json",
    ],
)
def test_json_media_types_are_accepted(
    server: ServerThread, store: EventStore, content_type: str
) -> None:
    assert post(server, callback_body(["1"]), content_type=content_type).status_code == 200
    assert store.high_water() == 1


class _UnreadableStore(_BrokenStore):
    """Cannot even read the channel registry."""

    def get_channel(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("connection refused")


def test_registry_read_failure_is_answered_503(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as real:
        register_channel(real)
        unreadable = _UnreadableStore(real)
        app = create_app(unreadable, ReceiverConfig(path=PATH))  # type: ignore[arg-type]
        with ServerThread(app) as broken:
            answer = post(broken, callback_body(["1"]))
        assert (answer.status_code, answer.json()) == (503, {"error": "event store unavailable"})
        assert real.high_water() == 0
