"""Token refresh, token-endpoint errors, retries and Zoho error bodies."""

from __future__ import annotations

import typing as t

import pytest

from tap_zoho_crm.auth import ZohoAuth
from tap_zoho_crm.client import ZohoClient, endpoint_label
from tap_zoho_crm.datacenters import DATA_CENTERS, get_data_center
from tap_zoho_crm.errors import AuthError, ConfigError, ZohoAPIError, ZohoError
from tests import apiclient

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho

RATE_LIMITED = {"code": "TOO_MANY_REQUESTS", "message": "limit", "status": "error"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_auth(fake: FakeZoho, clock: Clock | None = None, **overrides: t.Any) -> ZohoAuth:
    config = {**fake.config(), **overrides}
    center = config.get("data_center", "eu")
    return apiclient.make_auth(fake.url, config, data_center=center, clock=clock or Clock())


def make_client(fake: FakeZoho, auth: ZohoAuth | None = None) -> ZohoClient:
    return apiclient.make_client(auth or make_auth(fake))


def test_data_centre_table_has_every_zoho_dc() -> None:
    assert set(DATA_CENTERS) == {"us", "eu", "in", "au", "jp", "ca", "sa", "uk", "cn"}
    assert DATA_CENTERS["ca"].accounts_url == "https://accounts.zohocloud.ca"
    with pytest.raises(ConfigError, match="use one of us, eu"):
        get_data_center("mars")


def test_token_is_reused_then_refreshed_near_expiry(fake: FakeZoho) -> None:
    clock = Clock()
    auth = make_auth(fake, clock)
    first = auth.access_token()
    clock.now += 3000
    assert auth.access_token() == first
    clock.now += 301
    assert auth.access_token() != first
    assert auth.refresh_count == 2
    token_calls = [r for r in fake.requests if r["path"] == "/oauth/v2/token"]
    assert b"grant_type=refresh_token" in token_calls[0]["raw"]
    assert token_calls[0]["query"] == {}


def test_api_domain_comes_from_token_and_is_kept_when_omitted(fake: FakeZoho) -> None:
    auth = make_auth(fake)
    assert auth.api_domain == fake.url
    fake.send_api_domain = False
    auth.refresh()
    assert auth.api_domain == fake.url


def test_invalid_token_mid_run_refreshes_once_and_retries(fake: FakeZoho) -> None:
    auth = make_auth(fake)
    client = make_client(fake, auth)
    client.get_json("/crm/v8/settings/modules")
    fake.expire_tokens()
    assert client.get_json("/crm/v8/settings/modules")["modules"]
    assert auth.refresh_count == 2
    assert client.calls["GET /crm/v8/settings/modules"] == 3


def test_token_rejected_again_after_refresh_is_a_config_error(fake: FakeZoho) -> None:
    client = make_client(fake)
    client.get_json("/crm/v8/settings/modules")
    body = {"code": "INVALID_TOKEN", "message": "invalid oauth token", "status": "error"}
    fake.faults = [("/crm/v8/settings/modules", 401, body)] * 2
    with pytest.raises(ConfigError, match="data_center"):
        client.get_json("/crm/v8/settings/modules")


def test_wrong_client_with_accounts_url_names_that_setting(fake: FakeZoho) -> None:
    auth = make_auth(fake, client_secret="wrong", data_center="eu")
    with pytest.raises(AuthError) as caught:
        auth.access_token()
    message = str(caught.value)
    assert fake.url in message
    assert "invalid_client" in message
    assert "from accounts_url, which overrides data_center" in message
    assert "check accounts_url (it overrides data_center)" in message
    assert "now 'eu'" not in message
    assert "wrong" not in message


def test_wrong_client_without_accounts_url_names_the_data_centre() -> None:
    auth = ZohoAuth(
        client_id="c",
        client_secret="s",
        refresh_token="r",
        data_center=get_data_center("eu"),
    )
    message = auth._explain("invalid_client")  # no call: only loopback servers may be reached
    assert "https://accounts.zoho.eu (of data_center 'eu')" in message
    assert "check data_center (now 'eu')" in message
    assert "accounts_url" not in message


def test_revoked_refresh_token_lists_every_scope(fake: FakeZoho) -> None:
    with pytest.raises(AuthError, match=r"refresh_token.*invalid_code") as caught:
        make_auth(fake, refresh_token="revoked").access_token()
    for scope in (
        "ZohoCRM.bulk.READ",
        "ZohoCRM.modules.READ",
        "ZohoCRM.settings.modules.READ",
        "ZohoCRM.settings.fields.READ",
        "ZohoCRM.notifications.ALL",
    ):
        assert scope in str(caught.value)


def test_access_denied_is_retried_with_backoff(fake: FakeZoho) -> None:
    fake.token_errors = ["Access Denied", "Access Denied"]
    auth = make_auth(fake)
    assert auth.access_token()
    assert len([r for r in fake.requests if r["path"] == "/oauth/v2/token"]) == 3


def test_access_denied_forever_gives_up_with_clear_error(fake: FakeZoho) -> None:
    fake.token_errors = ["Access Denied"] * 10
    auth = apiclient.make_auth(fake.url, fake.config(), max_retries=2)
    with pytest.raises(ZohoError, match="throttled"):
        auth.access_token()


def test_429_is_retried_and_credits_header_read(fake: FakeZoho) -> None:
    client = make_client(fake)
    fake.faults = [("/crm/v8/settings/modules", 429, RATE_LIMITED)]
    assert client.get_json("/crm/v8/settings/modules")["modules"]
    assert client.calls["GET /crm/v8/settings/modules"] == 2


def test_5xx_past_max_retries_raises_zoho_error(fake: FakeZoho) -> None:
    client = make_client(fake)
    body = {"code": "INTERNAL_ERROR", "message": "boom", "status": "error"}
    fake.faults = [("/crm/v8/settings/modules", 500, body)] * 3
    with pytest.raises(ZohoAPIError) as caught:
        client.get_json("/crm/v8/settings/modules")
    assert (caught.value.code, caught.value.status) == ("INTERNAL_ERROR", 500)


def test_client_error_is_not_retried_and_wrapped_body_is_read(fake: FakeZoho) -> None:
    client = make_client(fake)
    body = {"data": [{"code": "INVALID_CRITERIA", "message": "bad", "details": {"x": 1}}]}
    fake.faults = [("/crm/bulk/v8/read", 400, body)]
    with pytest.raises(ZohoAPIError) as caught:
        client.post_json("/crm/bulk/v8/read", {"query": {}})
    assert caught.value.code == "INVALID_CRITERIA"
    assert caught.value.details == {"x": 1}
    assert client.calls["POST /crm/bulk/v8/read"] == 1


def test_204_is_an_empty_answer(fake: FakeZoho) -> None:
    assert make_client(fake).get_json("/crm/v8/Leads/deleted", params={"page": 1}) == {}


def test_scope_mismatch_is_a_config_error(fake: FakeZoho) -> None:
    body = {"code": "OAUTH_SCOPE_MISMATCH", "message": "scope", "status": "error"}
    fake.faults = [("/crm/v8/settings/fields", 401, body)]
    with pytest.raises(ConfigError, match=r"scope.*ZohoCRM\.notifications\.ALL"):
        make_client(fake).get_json("/crm/v8/settings/fields")


def test_5xx_gave_up_message_counts_attempts_in_english(fake: FakeZoho) -> None:
    body = {"code": "INTERNAL_ERROR", "message": "boom", "status": "error"}
    fake.faults = [("/crm/v8/settings/modules", 500, body)]
    client = ZohoClient(make_auth(fake), max_retries=0, sleep=lambda _: None)
    with pytest.raises(ZohoAPIError, match=r"gave up after 1 attempt\)"):
        client.get_json("/crm/v8/settings/modules")


def test_endpoint_labels_fold_ids() -> None:
    assert endpoint_label("get", "/crm/bulk/v8/read/400000/result") == (
        "GET /crm/bulk/v8/read/{id}/result"
    )
    assert endpoint_label("GET", "http://h:1/crm/v8/Leads?ids=1") == "GET /crm/v8/Leads"
