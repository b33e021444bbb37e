"""Zoho data centres: where to ask for tokens and which API host to expect.

Each data centre has its own accounts server (token endpoint) and its own API domain. The
tap always calls the ``api_domain`` returned with the token; the table's API domain is only
used to warn when the answer points elsewhere.
"""

from __future__ import annotations

import dataclasses

from tap_zoho_crm.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DataCenter:
    """One Zoho data centre."""

    code: str
    accounts_url: str
    api_domain: str


DATA_CENTERS: dict[str, DataCenter] = {
    dc.code: dc
    for dc in (
        DataCenter("us", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        DataCenter("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        DataCenter("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        DataCenter("au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        DataCenter("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        DataCenter("ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        DataCenter("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
        # The UK API host is only seen in third-party code so far (NOTES 2.1).
        DataCenter("uk", "https://accounts.zoho.uk", "https://www.zohoapis.uk"),
        DataCenter("cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    )
}


def get_data_center(code: str) -> DataCenter:
    """Return the data centre for ``code`` (case-insensitive) or raise a ConfigError."""
    found = DATA_CENTERS.get(code.strip().lower())
    if found is None:
        known = ", ".join(DATA_CENTERS)
        msg = f"Unknown data_center {code!r}: use one of {known}."
        raise ConfigError(msg)
    return found
