"""HTTP 429 against the emulator: retries outlast Zoho's one-minute download window.

Waits are real backoff waits, but the test's ``sleep`` moves the emulator's clock instead of
sleeping, so a minute of Zoho time passes in milliseconds.
"""

from __future__ import annotations

import json
import time
import typing as t
import urllib.request

import pytest

from tap_zoho_crm.client import BACKOFF_CAP_SECONDS, ZohoClient
from tap_zoho_crm.emulator import Emulator
from tap_zoho_crm.errors import ZohoAPIError
from tests import apiclient

BULK = "/crm/bulk/v8/read"


@pytest.fixture
def emulator() -> t.Iterator[Emulator]:
    with Emulator(leads=5, job_seconds=0, downloads_per_minute=1) as emu:
        yield emu


def make_client(emu: Emulator, waits: list[float], *, advance: bool) -> ZohoClient:
    """A client whose backoff sleeps move the emulator clock (or only record the wait)."""

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if advance:
            emu.state.clock.advance(seconds)

    auth = apiclient.make_auth(emu.base_url, sleep=sleep)
    return apiclient.make_client(auth, max_retries=5, sleep=sleep)


def add_fault(emu: Emulator, **fault: t.Any) -> None:
    request = urllib.request.Request(
        f"{emu.base_url}/__admin/faults",
        data=json.dumps(fault).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status in (200, 201)


def completed_job(client: ZohoClient) -> str:
    created = client.post_json(BULK, {"query": {"module": {"api_name": "Leads"}}})
    job_id = str(created["data"][0]["details"]["id"])
    deadline = time.monotonic() + 10
    while client.get_json(f"{BULK}/{job_id}")["data"][0]["state"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return job_id


def test_download_429_is_retried_past_the_one_minute_window(emulator: Emulator) -> None:
    waits: list[float] = []
    client = make_client(emulator, waits, advance=True)
    result = f"{BULK}/{completed_job(client)}/result"
    client.request("GET", result).close()

    # Another run used the minute's only download: five retries (about 30 s) were too few.
    answer = client.request("GET", result)
    answer.close()

    assert answer.status_code == 200
    assert sum(waits) >= 59
    assert len(waits) > 5
    assert max(waits) <= BACKOFF_CAP_SECONDS


def test_more_429s_than_max_retries_still_succeed(emulator: Emulator) -> None:
    waits: list[float] = []
    client = make_client(emulator, waits, advance=False)
    add_fault(emulator, fault="http_429", times=8, path="/crm/v8/settings/modules")

    assert client.get_json("/crm/v8/settings/modules")["modules"]
    assert client.calls["GET /crm/v8/settings/modules"] == 9


def test_endless_429_gives_up_after_minutes_and_says_what_to_do(emulator: Emulator) -> None:
    waits: list[float] = []
    client = make_client(emulator, waits, advance=False)
    client.backoff_base_seconds = 20.0
    add_fault(emulator, fault="http_429", times=-1, path="/crm/v8/settings/modules")

    with pytest.raises(ZohoAPIError) as caught:
        client.get_json("/crm/v8/settings/modules")

    message = str(caught.value)
    assert caught.value.code == "TOO_MANY_REQUESTS"
    assert f"Zoho refused calls for {sum(waits):.0f} s" in message
    assert "concurrency or daily credits may be exhausted" in message
    assert "retry later or lower the schedule frequency" in message
    assert client.throttle_patience_seconds <= sum(waits) < client.throttle_patience_seconds + 60
    assert max(waits) <= BACKOFF_CAP_SECONDS
