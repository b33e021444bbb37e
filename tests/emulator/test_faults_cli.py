"""Request-level faults, the admin config, and the console script."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests

from .conftest import CREDENTIALS, Client


def test_http_429_with_credits_header(client: Client) -> None:
    client.fault("http_429", credits_remaining=42, path="/crm/v8/settings")
    limited = client.get("/crm/v8/settings/modules")
    assert limited.status_code == 429
    assert limited.json()["code"] == "TOO_MANY_REQUESTS"
    assert limited.headers["X-API-CREDITS-REMAINING"] == "42"
    assert client.get("/crm/v8/settings/modules").status_code == 200


def test_http_500_times_and_path(client: Client) -> None:
    client.fault("http_500", times=2, path="/crm/bulk")
    assert client.get("/crm/v8/settings/modules").status_code == 200
    codes = [client.get("/crm/bulk/v8/read/1").status_code for _ in range(3)]
    assert codes == [500, 500, 404]


def test_until_cleared(client: Client) -> None:
    client.fault("http_500", times=-1)
    assert client.get("/crm/v8/settings/modules").status_code == 500
    assert client.get("/crm/v8/settings/modules").status_code == 500
    client.admin("DELETE", "/faults")
    assert client.get("/crm/v8/settings/modules").status_code == 200


def test_connection_reset(client: Client) -> None:
    client.fault("connection_reset")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{client.base}/crm/v8/settings/modules", headers=client.headers())
    assert client.get("/crm/v8/settings/modules").status_code == 200


def test_invalid_token_fault_expires_live_tokens(client: Client) -> None:
    client.fault("invalid_token")
    answer = client.get("/crm/v8/settings/modules")
    assert answer.status_code == 401
    assert answer.json()["code"] == "INVALID_TOKEN"
    client.refresh()
    assert client.get("/crm/v8/settings/modules").status_code == 200


def test_token_endpoint_throttle_is_access_denied(client: Client) -> None:
    client.fault("http_429", path="/oauth")
    answer = requests.post(client.emu.token_url, data=CREDENTIALS)
    assert answer.status_code == 200
    assert answer.json()["error"] == "Access Denied"


def test_unknown_fault_and_config_are_refused(client: Client) -> None:
    assert client.admin("POST", "/faults", {"fault": "meteor"}).status_code == 400
    assert client.admin("POST", "/config", {"colour": 1}).status_code == 400
    assert client.admin("POST", "/config", {"page_size": 0}).status_code == 400
    assert client.admin("POST", "/config", {"page_size": 7}).json()["page_size"] == 7


def test_cli_prints_one_line_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_zoho_crm.emulator.cli", "--port", "0", "--leads", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        line = process.stdout.readline().strip() if process.stdout else ""
        assert line.startswith("emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        token = requests.post(f"{url}/oauth/v2/token", data=CREDENTIALS).json()
        assert token["api_domain"] == url
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
