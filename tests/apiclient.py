"""Zoho API clients for tests, pointed at a loopback server: the emulator or the unit fake.

Each test used to spell out the same ``ZohoAuth`` and ``ZohoClient`` arguments; these two
functions hold the common ones (the emulator's credentials, the ``us`` centre, no real
waiting) and take whatever a test changes as keywords.
"""

from __future__ import annotations

import typing as t

from tap_zoho_crm.auth import ZohoAuth
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.datacenters import DataCenter, get_data_center

# What the emulator accepts unless started with other credentials.
EMULATOR_CREDENTIALS = {
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "refresh_token": "emulator-refresh",
}


def no_wait(_seconds: float) -> None:
    """A sleep that returns at once: backoff is counted, not waited."""


def make_auth(
    accounts_url: str,
    credentials: t.Mapping[str, t.Any] = EMULATOR_CREDENTIALS,
    *,
    data_center: str | DataCenter = "us",
    sleep: t.Callable[[float], None] = no_wait,
    **options: t.Any,
) -> ZohoAuth:
    """Token handling for the server at ``accounts_url``; ``credentials`` may be a whole
    tap config (only its client and token keys are read)."""
    center = get_data_center(data_center) if isinstance(data_center, str) else data_center
    return ZohoAuth(
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        refresh_token=credentials["refresh_token"],
        data_center=center,
        accounts_url=accounts_url,
        sleep=sleep,
        **options,
    )


def make_client(
    auth: ZohoAuth, *, max_retries: int = 2, sleep: t.Callable[[float], None] = no_wait
) -> ZohoClient:
    """An API client over ``auth``."""
    return ZohoClient(auth, max_retries=max_retries, sleep=sleep)
