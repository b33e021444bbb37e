"""OAuth refresh grant, its HTTP-200 errors, and the CRM side's 401 answers."""

from __future__ import annotations

import requests

from tap_zoho_crm.emulator import Emulator

from .conftest import CREDENTIALS, Client


def test_refresh_grant_answers_token_and_own_api_domain(emu: Emulator) -> None:
    answer = requests.post(emu.token_url, data=CREDENTIALS)
    body = answer.json()
    assert answer.status_code == 200
    assert body["api_domain"] == emu.base_url
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    prefix, first, second = body["access_token"].split(".")
    assert prefix == "1000"
    assert int(first, 16) >= 0
    assert int(second, 16) >= 0


def test_grant_accepts_query_string(emu: Emulator) -> None:
    body = requests.post(emu.token_url, params=CREDENTIALS).json()
    assert "access_token" in body


def test_token_errors_are_http_200(emu: Emulator) -> None:
    cases = [({"client_secret": "wrong"}, "invalid_client"),
             ({"client_id": "other"}, "invalid_client"),
             ({"refresh_token": "revoked"}, "invalid_code")]
    for change, code in cases:
        answer = requests.post(emu.token_url, data={**CREDENTIALS, **change})
        assert answer.status_code == 200
        assert answer.json() == {"error": code}


def test_client_of_another_data_center_is_unknown(emu: Emulator) -> None:
    with Emulator(data_center="eu", client_id="eu-client") as other:
        answer = requests.post(other.token_url, data=CREDENTIALS)
        assert answer.json() == {"error": "invalid_client"}


def test_missing_and_bad_tokens_are_401(client: Client) -> None:
    path = f"{client.base}/crm/v8/settings/modules"
    missing = requests.get(path)
    assert missing.status_code == 401
    assert missing.json() == {"code": "AUTHENTICATION_FAILURE", "details": {},
                              "message": "Authentication failed", "status": "error"}
    bad = requests.get(path, headers={"Authorization": "Zoho-oauthtoken 1000.x.y"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "INVALID_TOKEN"
    assert client.get("/crm/v8/settings/modules").status_code == 200


def test_token_expires_on_the_emulator_clock(client: Client) -> None:
    client.admin("POST", "/clock", {"advance_seconds": 3601})
    answer = client.get("/crm/v8/settings/modules")
    assert answer.status_code == 401
    assert answer.json()["code"] == "INVALID_TOKEN"


def test_token_seconds_setting_shortens_lifetime() -> None:
    with Emulator(token_seconds=5) as emu:
        body = requests.post(emu.token_url, data=CREDENTIALS).json()
        assert body["expires_in"] == 5
