"""``flush_callbacks(delivered=True)`` returns only once every callback has been delivered."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tap_zoho_crm.emulator import Emulator

from .conftest import Client

ANSWER_DELAY_SECONDS = 0.5


@pytest.fixture
def slow_sink() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback server that keeps each body but answers only after a delay."""
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            time.sleep(ANSWER_DELAY_SECONDS)
            bodies.append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/notify", bodies
    server.shutdown()
    server.server_close()


def test_flush_waits_for_a_slow_receiver_to_answer(
    emu: Emulator, client: Client, slow_sink: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = slow_sink
    channel = {"channel_id": "1000000001", "events": ["Leads.all"], "notify_url": url}
    client.send("POST", "/crm/v8/actions/watch", json={"watch": [channel]})
    client.admin("POST", "/modules/Leads/records", {"Last_Name": "Slowly told"})

    emu.flush_callbacks(timeout=10, delivered=True)

    assert [body["operation"] for body in bodies] == ["insert"]
    assert client.admin("GET", "/stats").json()["callbacks"]["sent"] == 1
