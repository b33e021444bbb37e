"""Notification API channels, and the callbacks POSTed to a local receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .conftest import Client


class Receiver:
    """A tiny loopback HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify?source=leads"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait(self, count: int, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # let any extra (unexpected) body arrive too
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def _enable(client: Client, url: str, **extra: Any) -> Any:
    channel = {"channel_id": "1000000001", "events": ["Leads.all"], "notify_url": url,
               "token": "tap-leads-9f8e7d6c", **extra}
    return client.send("POST", "/crm/v8/actions/watch", json={"watch": [channel]})


def test_enable_and_details(client: Client, receiver: Receiver) -> None:
    answer = _enable(client, receiver.url, events=["Leads.create", "Leads.edit"])
    entry = answer.json()["watch"][0]
    assert answer.status_code == 201
    assert entry["code"] == "SUCCESS"
    event = entry["details"]["events"][0]
    assert event["resource_name"] == "Leads"
    assert event["channel_id"] == "1000000001"
    assert event["channel_expiry"].endswith("-05:00")
    details = client.get("/crm/v8/actions/watch").json()
    assert details["info"]["count"] == 1
    assert details["watch"][0]["token"] == "tap-leads-9f8e7d6c"
    assert details["watch"][0]["events"] == ["Leads.create", "Leads.edit"]


def test_long_token_is_invalid_data(client: Client, receiver: Receiver) -> None:
    answer = _enable(client, receiver.url, token="x" * 51)
    assert answer.status_code == 400
    error = answer.json()["watch"][0]
    assert error["code"] == "INVALID_DATA"
    assert error["details"]["api_name"] == "token"


def test_expiry_default_and_over_a_week_fallback(client: Client, receiver: Receiver) -> None:
    far = (datetime.now(timezone.utc) + timedelta(days=8)).isoformat(timespec="seconds")
    expiry = _enable(client, receiver.url, channel_expiry=far).json()
    text = expiry["watch"][0]["details"]["events"][0]["channel_expiry"]
    left = datetime.fromisoformat(text) - datetime.now(timezone.utc)
    assert timedelta(minutes=55) < left <= timedelta(hours=1, seconds=5)


def test_channel_lapses_on_emulator_clock(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url)
    client.admin("POST", "/clock", {"advance_seconds": 3601})
    client.refresh()
    assert client.get("/crm/v8/actions/watch").status_code == 204
    client.admin("POST", "/modules/Leads/records", {"Last_Name": "Late"})
    assert receiver.wait(1, timeout=0.5) == []


def test_patch_renews_and_deletes_events(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url, events=["Leads.create", "Leads.delete"])
    later = (datetime.now(timezone.utc) + timedelta(hours=20)).isoformat(timespec="seconds")
    patched = client.send("PATCH", "/crm/v8/actions/watch", json={"watch": [
        {"channel_id": "1000000001", "channel_expiry": later}]})
    assert patched.json()["watch"][0]["message"] == "Successfully updated the subscribe details"
    removed = client.send("PATCH", "/crm/v8/actions/watch", json={"watch": [
        {"channel_id": "1000000001", "events": ["Leads.delete"], "_delete_events": True}]})
    assert removed.json()["watch"][0]["message"] == "Successfully removed the subscribe details"
    details = client.get("/crm/v8/actions/watch").json()["watch"][0]
    assert details["events"] == ["Leads.create"]
    assert datetime.fromisoformat(details["channel_expiry"]) > datetime.now(timezone.utc) + \
        timedelta(hours=19)


def test_disable(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url)
    missing = client.send("DELETE", "/crm/v8/actions/watch")
    assert missing.status_code == 400
    assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    answer = client.send("DELETE", "/crm/v8/actions/watch?channel_ids=1000000001")
    entry = answer.json()["watch"][0]
    assert entry["message"] == "Successfully un-subscribed from actions-watch"
    assert entry["details"]["channel_id"] == "1000000001"
    assert client.get("/crm/v8/actions/watch").status_code == 204


def test_refuse_renew_fault(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url)
    client.fault("channel_refuse_renew")
    answer = client.send("PATCH", "/crm/v8/actions/watch", json={"watch": [
        {"channel_id": "1000000001", "channel_expiry": "2999-01-01T00:00:00+00:00"}]})
    assert answer.status_code == 400
    assert answer.json()["watch"][0]["code"] == "INVALID_DATA"


def test_callbacks_batch_ids_by_operation(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url, return_affected_field_values=True)
    made = [client.admin("POST", "/modules/Leads/records", {"Last_Name": f"N{n}"}).json()["id"]
            for n in range(3)]
    bodies = receiver.wait(1)
    assert len(bodies) == 1
    insert = bodies[0]
    assert insert["operation"] == "insert"
    assert insert["ids"] == made
    assert insert["query_params"] == {"source": "leads"}
    assert insert["module"] == "Leads"
    assert insert["token"] == "tap-leads-9f8e7d6c"
    assert insert["channel_id"] == "1000000001"
    assert insert["affected_fields"] == []
    assert isinstance(insert["server_time"], int)
    client.admin("PATCH", f"/modules/Leads/records/{made[0]}", {"Lead_Status": "Contacted"})
    client.admin("DELETE", f"/modules/Leads/records/{made[1]}")
    client.admin("POST", f"/modules/Leads/records/{made[1]}/restore")
    bodies = receiver.wait(3)
    by_operation = {b["operation"]: b for b in bodies[1:]}
    update = by_operation["update"]
    assert sorted(update["ids"]) == sorted([made[0], made[1]])
    assert {made[0]: ["Lead_Status"]} in update["affected_fields"]
    assert {"record_id": made[0], "values": {"Lead_Status": "Contacted"}} in \
        update["affected_values"]
    assert by_operation["delete"]["ids"] == [made[1]]


def test_at_most_100_ids_a_body(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url)
    client.admin("POST", "/config", {"callback_batch_ms": 1500})
    for n in range(130):
        client.admin("POST", "/modules/Leads/records", {"Last_Name": f"B{n}"})
    bodies = receiver.wait(2)
    assert sorted(len(b["ids"]) for b in bodies) == [30, 100]
    assert len({i for b in bodies for i in b["ids"]}) == 130


def test_drop_and_duplicate_faults(client: Client, receiver: Receiver) -> None:
    _enable(client, receiver.url)
    client.fault("drop_callbacks")
    client.admin("POST", "/modules/Leads/records", {"Last_Name": "Dropped"})
    assert receiver.wait(1, timeout=0.6) == []
    client.fault("duplicate_callbacks")
    client.admin("POST", "/modules/Leads/records", {"Last_Name": "Twice"})
    bodies = receiver.wait(2)
    assert len(bodies) == 2
    assert bodies[0] == bodies[1]
    callbacks = client.admin("GET", "/stats").json()["callbacks"]
    assert callbacks == {"sent": 2, "dropped": 1, "failed": 0}


def test_a_delayed_callback_is_overtaken_by_a_later_one(
    client: Client, receiver: Receiver
) -> None:
    _enable(client, receiver.url)
    client.fault("delay_callbacks", seconds=0.8)
    created = client.admin("POST", "/modules/Leads/records", {"Last_Name": "Held"}).json()
    time.sleep(0.2)  # its batch is closed and waiting
    client.admin("DELETE", f"/modules/Leads/records/{created['id']}")

    bodies = receiver.wait(2)

    assert [body["operation"] for body in bodies] == ["delete", "insert"]
    assert bodies[1]["server_time"] < bodies[0]["server_time"]


def test_failed_post_is_counted(client: Client) -> None:
    _enable(client, "http://127.0.0.1:9/nowhere")
    client.admin("POST", "/modules/Leads/records", {"Last_Name": "Lost"})
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.admin("GET", "/stats").json()["callbacks"]["failed"] == 1:
            return
        time.sleep(0.05)
    raise AssertionError("failed callback not counted")
