"""End to end on loopback: emulator -> channel -> receiver -> event store.

The channel is managed through the tap's own OAuth client; records are changed through the
emulator's admin API and its callbacks land in the receiver.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_zoho_crm.channel import (
    ChannelError,
    ChannelSettings,
    CrmRequest,
    client_request,
    ensure_channel,
)
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.datacenters import DataCenter
from tap_zoho_crm.emulator import Emulator
from tap_zoho_crm.store import EventStore, open_store
from tap_zoho_crm.store.base import Event
from tap_zoho_crm.webhook.app import ReceiverConfig, create_app
from tests import apiclient
from tests.webhook.conftest import ServerThread

PATH = "/zoho/notifications"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(leads=5, seed=3, callback_batch_ms=50) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as opened:
        yield opened


@pytest.fixture
def receiver(store: EventStore) -> Iterator[ServerThread]:
    with ServerThread(create_app(store, ReceiverConfig(path=PATH))) as running:
        yield running


@pytest.fixture
def crm(emu: Emulator) -> CrmRequest:
    center = DataCenter("emulator", emu.base_url, emu.base_url)
    auth = apiclient.make_auth(emu.base_url, data_center=center, sleep=time.sleep)
    return client_request(ZohoClient(auth, max_retries=0))


def channel_settings(receiver: ServerThread) -> ChannelSettings:
    return ChannelSettings(modules=("Leads",), webhook_public_url=receiver.url + PATH)


def admin(emu: Emulator, method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(method, f"{emu.base_url}/__admin{path}", json=body, timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def wait_for(store: EventStore, count: int, emu: Emulator) -> list[Event]:
    emu.flush_callbacks()
    deadline = time.monotonic() + 10
    while store.backlog() < count:
        assert time.monotonic() < deadline, f"only {store.backlog()} of {count} events"
        time.sleep(0.02)
    return list(store.read(0))


def test_creates_edits_and_deletes_arrive_as_events(
    emu: Emulator, crm: CrmRequest, store: EventStore, receiver: ServerThread
) -> None:
    result = ensure_channel(crm, store, channel_settings(receiver))
    assert (result.action, result.gap) == ("subscribed", True)
    assert result.record.expiry is not None

    created = admin(emu, "POST", "/modules/Leads/records", {"Last_Name": "Receiver"})
    new_id = str(created.get("id") or created["data"][0]["id"])
    wait_for(store, 1, emu)
    admin(emu, "PATCH", f"/modules/Leads/records/{new_id}", {"Last_Name": "Edited"})
    wait_for(store, 2, emu)
    admin(emu, "DELETE", f"/modules/Leads/records/{new_id}")
    events = wait_for(store, 3, emu)

    assert [(e.record_id, e.operation) for e in events] == [
        (new_id, "insert"),
        (new_id, "update"),
        (new_id, "delete"),
    ]
    assert {e.channel_id for e in events} == {result.record.channel_id}


def test_duplicate_callbacks_are_stored_once(
    emu: Emulator, crm: CrmRequest, store: EventStore, receiver: ServerThread
) -> None:
    ensure_channel(crm, store, channel_settings(receiver))
    admin(emu, "POST", "/faults", {"fault": "duplicate_callbacks", "times": 1})
    lead = admin(emu, "GET", "/modules/Leads/records")["data"][0]
    admin(emu, "PATCH", f"/modules/Leads/records/{lead['id']}", {"Last_Name": "Twice"})
    wait_for(store, 1, emu)
    time.sleep(0.3)  # give the second copy time to arrive
    assert store.backlog() == 1


def test_renewal_lapse_and_refusal_against_the_emulator(
    emu: Emulator, crm: CrmRequest, store: EventStore, receiver: ServerThread
) -> None:
    wanted = channel_settings(receiver)
    now = dt.datetime.now(dt.timezone.utc)
    first = ensure_channel(crm, store, wanted, now=now)

    admin(emu, "POST", "/clock", {"advance_seconds": 13 * 3600})
    later = now + dt.timedelta(hours=13)
    renewed = ensure_channel(crm, store, wanted, now=later)
    assert (renewed.action, renewed.gap) == ("renewed", False)
    assert renewed.record.expiry is not None
    assert first.record.expiry is not None
    assert renewed.record.expiry > first.record.expiry

    admin(emu, "POST", "/clock", {"advance_seconds": 25 * 3600})
    lapsed = ensure_channel(crm, store, wanted, now=later + dt.timedelta(hours=25))
    assert (lapsed.action, lapsed.gap) == ("reenabled", True)

    admin(emu, "POST", "/faults", {"fault": "channel_refuse_renew", "times": 1})
    with pytest.raises(ChannelError) as caught:
        ensure_channel(crm, store, wanted, now=later + dt.timedelta(hours=25), force_renew=True)
    assert caught.value.code == "INVALID_DATA"
