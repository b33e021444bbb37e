"""Channel management against a loopback fake of Zoho's watch API."""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_zoho_crm.channel import (
    ChannelError,
    ChannelSettings,
    CrmRequest,
    CrmResponse,
    ensure_channel,
    status,
    unsubscribe,
)
from tap_zoho_crm.store import EventStore, open_store
from tests.webhook.conftest import ServerThread
from tests.webhook.fake_zoho import ACCESS_TOKEN, FakeZoho

HOUR = dt.timedelta(hours=1)
PUBLIC_URL = "https://hooks.example.com/zoho/notifications"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeZoho, ServerThread]]:
    fake = FakeZoho()
    with ServerThread(fake.app) as server:
        yield fake, server


@pytest.fixture
def fake(fake_server: tuple[FakeZoho, ServerThread]) -> FakeZoho:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture
def crm(fake_server: tuple[FakeZoho, ServerThread]) -> CrmRequest:
    """A plain authenticated requester aimed at the fake."""
    base = fake_server[1].url
    session = requests.Session()

    def send(method: str, path: str, *, params: Any = None, json: Any = None) -> CrmResponse:
        answer = session.request(
            method,
            base + path,
            params=params,
            json=json,
            headers={"Authorization": f"Zoho-oauthtoken {ACCESS_TOKEN}"},
            timeout=10,
        )
        return CrmResponse(answer.status_code, answer.json() if answer.content else None)

    return send


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as opened:
        yield opened


def settings(**overrides: Any) -> ChannelSettings:
    values: dict[str, Any] = {"modules": ("Leads", "Deals"), "webhook_public_url": PUBLIC_URL}
    values.update(overrides)
    return ChannelSettings(**values)


def test_first_subscribe_sends_every_event_with_fresh_secrets(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    result = ensure_channel(crm, store, settings(), now=fake.now)

    assert (result.action, result.gap) == ("subscribed", True)
    ((method, body),) = fake.calls
    item = body["watch"][0]
    assert method == "POST"
    assert item["events"] == [
        "Leads.create", "Leads.edit", "Leads.delete", "Deals.create", "Deals.edit", "Deals.delete"
    ]  # fmt: skip
    assert item["notify_on_related_action"] is False
    assert 20 <= len(item["token"]) <= 50
    assert dt.datetime.fromisoformat(item["channel_expiry"]) == fake.now + 24 * HOUR
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(item["notify_url"]).query)
    record = result.record
    assert item["notify_url"].startswith(PUBLIC_URL + "?key=")
    assert query["key"] == [record.url_key]
    assert item["token"] == record.token
    assert record.expiry == fake.now + 24 * HOUR
    assert store.get_channel(record.channel_id) == record


def test_a_second_call_inside_the_window_only_reads(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    first = ensure_channel(crm, store, settings(), now=fake.now)
    fake.now += 2 * HOUR
    again = ensure_channel(crm, store, settings(), now=fake.now)
    assert (again.action, again.gap) == ("current", False)
    assert fake.methods() == ["POST", "GET"]
    assert again.record.channel_id == first.record.channel_id


def test_renews_with_patch_and_records_the_granted_expiry(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    first = ensure_channel(crm, store, settings(), now=fake.now)
    fake.now += 13 * HOUR
    renewed = ensure_channel(crm, store, settings(), now=fake.now)

    assert (renewed.action, renewed.gap) == ("renewed", False)
    assert fake.methods() == ["POST", "GET", "PATCH"]
    patch = fake.calls[-1][1]["watch"][0]
    assert set(patch) == {"channel_id", "events", "channel_expiry"}
    assert renewed.record.expiry == fake.now + 24 * HOUR
    stored = store.get_channel(first.record.channel_id)
    assert stored is not None
    assert stored.expiry == fake.now + 24 * HOUR
    assert (stored.token, stored.url_key) == (first.record.token, first.record.url_key)


def test_force_renew_patches_at_once(crm: CrmRequest, store: EventStore, fake: FakeZoho) -> None:
    ensure_channel(crm, store, settings(), now=fake.now)
    result = ensure_channel(crm, store, settings(), now=fake.now, force_renew=True)
    assert result.action == "renewed"
    assert fake.methods() == ["POST", "GET", "PATCH"]


def test_one_hour_fallback_is_detected_and_recorded(
    crm: CrmRequest, store: EventStore, fake: FakeZoho, caplog: pytest.LogCaptureFixture
) -> None:
    fake.max_expiry = 12 * HOUR  # an org whose maximum is below what we ask
    result = ensure_channel(crm, store, settings(), now=fake.now)
    assert result.record.expiry == fake.now + HOUR
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("shorter than" in r.getMessage() for r in warnings)
    # An hour later the short channel is renewed, not left to lapse.
    fake.now += 30 * dt.timedelta(minutes=1)
    assert ensure_channel(crm, store, settings(), now=fake.now).action == "renewed"


@pytest.mark.parametrize("how", ["forgotten", "expired"])
def test_a_lapsed_channel_is_reenabled_with_a_gap(
    crm: CrmRequest, store: EventStore, fake: FakeZoho, how: str
) -> None:
    first = ensure_channel(crm, store, settings(), now=fake.now)
    if how == "forgotten":
        fake.channels.clear()
    else:
        fake.now += 25 * HOUR
    result = ensure_channel(crm, store, settings(), now=fake.now)

    assert (result.action, result.gap) == ("reenabled", True)
    assert result.gap_reason
    assert fake.methods()[-2:] == ["GET", "POST"]
    assert result.record.channel_id == first.record.channel_id
    assert result.record.token == first.record.token
    assert result.record.expiry == fake.now + 24 * HOUR


def test_renewal_refused_as_not_subscribed_reenables(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    ensure_channel(crm, store, settings(), now=fake.now)
    fake.now += 13 * HOUR
    fake.fail_next("PATCH", 400, "NOT_SUBSCRIBED", "the channel is not subscribed")
    result = ensure_channel(crm, store, settings(), now=fake.now)
    assert (result.action, result.gap) == ("reenabled", True)
    assert fake.methods()[-3:] == ["GET", "PATCH", "POST"]


@pytest.mark.parametrize("http_status", [400, 202])
def test_a_per_item_error_is_raised_with_its_code_and_details(
    crm: CrmRequest, store: EventStore, fake: FakeZoho, http_status: int
) -> None:
    fake.fail_next("POST", http_status, "INVALID_DATA", "invalid data", api_name="notify_url")
    with pytest.raises(ChannelError) as caught:
        ensure_channel(crm, store, settings(), now=fake.now)
    assert caught.value.code == "INVALID_DATA"
    assert f"HTTP {http_status}" in str(caught.value)
    assert "notify_url" in str(caught.value)
    assert store.list_channels() == []


def test_a_top_level_error_is_raised(crm: CrmRequest, store: EventStore) -> None:
    def refuses(method: str, path: str, **_: Any) -> CrmResponse:
        body = {"code": "OAUTH_SCOPE_MISMATCH", "message": "invalid oauth scope", "status": "error"}
        return CrmResponse(401, body)

    with pytest.raises(ChannelError, match="OAUTH_SCOPE_MISMATCH"):
        ensure_channel(refuses, store, settings())


def test_adding_a_module_replaces_the_channel_and_reports_a_gap(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    first = ensure_channel(crm, store, settings(modules=("Leads",)), now=fake.now)
    result = ensure_channel(crm, store, settings(), now=fake.now)
    assert (result.action, result.gap) == ("updated", True)
    assert fake.methods() == ["POST", "GET", "PUT"]
    assert "Deals.delete" in fake.channels[first.record.channel_id].events
    assert result.record.modules == ("Leads", "Deals")


def test_a_configured_token_and_channel_id_are_used(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    chosen = settings(webhook_token="my-own-token", channel_id="5550001")
    result = ensure_channel(crm, store, chosen, now=fake.now)
    assert (result.record.channel_id, result.record.token) == ("5550001", "my-own-token")
    assert fake.channels["5550001"].token == "my-own-token"


def test_status_and_unsubscribe(crm: CrmRequest, store: EventStore, fake: FakeZoho) -> None:
    first = ensure_channel(crm, store, settings(), now=fake.now)
    shown = status(crm, store).as_dict()
    assert shown["known_to_zoho"] is True
    assert shown["channel_id"] == first.record.channel_id
    assert "Deals.edit" in shown["events"]
    assert first.record.token not in str(shown)

    gone = unsubscribe(crm, store)
    assert gone.channel_id == first.record.channel_id
    assert fake.channels == {}
    assert store.list_channels() == []
    with pytest.raises(ChannelError, match="no channel is registered"):
        unsubscribe(crm, store)


def test_unsubscribe_of_a_channel_zoho_already_lost_still_forgets_it(
    crm: CrmRequest, store: EventStore, fake: FakeZoho
) -> None:
    ensure_channel(crm, store, settings(), now=fake.now)
    fake.channels.clear()
    unsubscribe(crm, store)
    assert store.list_channels() == []


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"channel_expiry_hours": 200}, "channel_expiry_hours"),
        ({"channel_expiry_hours": 0.5}, "channel_expiry_hours"),
        ({"channel_renew_before_hours": 24}, "channel_renew_before_hours"),
        ({"webhook_token": "x" * 51}, "webhook_token"),
        ({"channel_id": "abc"}, "channel_id"),
        ({"modules": ()}, "modules"),
        ({"webhook_public_url": "hooks.example.com/zoho"}, "webhook_public_url"),
    ],
)
def test_bad_channel_settings_name_the_setting(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ChannelError, match=fragment):
        settings(**overrides)
