"""The real ``tap-zoho-crm-webhook serve`` process, killed between commit and answer."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tap_zoho_crm.store import open_store
from tap_zoho_crm.webhook.cli import TEST_DELAY_ENV
from tests.webhook.conftest import TOKEN, URL_KEY, callback_body, register_channel

CLI = str(Path(sys.executable).parent / "tap-zoho-crm-webhook")
PATH = "/zoho/notifications"
JSON = {"Content-Type": "application/json;charset=UTF-8"}


class Receiver:
    """``tap-zoho-crm-webhook serve --port 0`` in its own process group."""

    def __init__(
        self, store_url: str, delay: float = 0.0, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {**os.environ, "TAP_ZOHO_CRM_EVENT_STORE_URL": store_url, **(extra_env or {})}
        env.pop(TEST_DELAY_ENV, None)
        if delay:
            env[TEST_DELAY_ENV] = str(delay)
        self.proc = subprocess.Popen(
            [CLI, "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"listening on (http://\S+)", line)
        assert found, f"no listening line, got {line!r}"
        self.url = found.group(1) + PATH
        self._wait_healthy(found.group(1))

    def _wait_healthy(self, base: str) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/healthz", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("receiver never became healthy")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> str:
        """Stop gracefully and return everything the process wrote."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        out, err = self.proc.communicate(timeout=15)
        return out + err


@pytest.fixture
def receiver_url(store_url: str) -> str:
    with open_store(store_url) as store:
        register_channel(store)
    return store_url


def test_kill_between_commit_and_answer_keeps_the_event_once(receiver_url: str) -> None:
    body = json.dumps(callback_body(["4000000000001000011"], operation="update")).encode()
    slow = Receiver(receiver_url, delay=30)
    outcome: dict[str, object] = {}

    def zoho_sends() -> None:
        try:
            outcome["status"] = requests.post(
                slow.url, params={"key": URL_KEY}, data=body, headers=JSON, timeout=60
            ).status_code
        except requests.RequestException as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=zoho_sends)
    sender.start()
    with open_store(receiver_url) as store:
        deadline = time.monotonic() + 15
        while store.high_water() == 0:
            assert time.monotonic() < deadline, "the callback was never committed"
            time.sleep(0.02)
        slow.kill()
        sender.join(timeout=15)
        assert "status" not in outcome, "Zoho got an answer it should never have seen"
        assert store.backlog() == 1

        # Zoho saw no answer, so it sends the same body again to a restarted receiver.
        fresh = Receiver(receiver_url)
        try:
            again = requests.post(
                fresh.url, params={"key": URL_KEY}, data=body, headers=JSON, timeout=10
            )
        finally:
            output = fresh.stop()
        assert again.status_code == 200
        assert again.json()["stored"] == 0
        assert store.backlog() == 1
    assert "Leads update, 1 ids, 0 new events" in output
    assert TOKEN not in output
    assert URL_KEY not in output
