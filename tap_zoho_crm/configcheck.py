"""Checks of a config that JSON Schema cannot express, run before any call to Zoho.

Invariant: a config that passes ``check_config`` builds a ``TapSettings`` without error, gives
the HTTP stack only usable timeouts and URLs, and holds channel settings Zoho would accept, so a
mistake is reported at start-up in one line naming the setting, never as a traceback or after
login and discovery. Every problem found is reported at once.
"""

from __future__ import annotations

import pathlib
import typing as t
import urllib.parse

from tap_zoho_crm.channel import MAX_EXPIRY_HOURS, MAX_TOKEN_CHARS
from tap_zoho_crm.datacenters import get_data_center
from tap_zoho_crm.errors import ConfigError
from tap_zoho_crm.settings import TapSettings, parse_start_date

SECRETS = ("client_id", "client_secret", "refresh_token")

_ABOVE_ZERO = (
    "request_timeout_seconds",
    "bulk_poll_initial_seconds",
    "bulk_poll_max_seconds",
    "bulk_job_timeout_seconds",
    "channel_renew_before_hours",
    "reconcile_interval_hours",
    "daily_credit_budget",
)
# A retention of 0 prunes events as soon as every stream's bookmark has passed them.
_ZERO_OR_MORE = ("max_retries", "catchup_margin_seconds", "event_retention_hours")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def check_config(config: t.Mapping[str, t.Any]) -> None:
    """Raise one ``ConfigError`` listing every problem of an already schema-valid config."""
    _check_secrets(config)
    get_data_center(str(config.get("data_center") or "us"))
    problems = [
        *_url_problems(config),
        *_date_problems(config),
        *_range_problems(TapSettings.from_config({**config, "start_date": None})),
        *_store_problems(str(config.get("event_store_url") or "")),
    ]
    if problems:
        raise ConfigError(f"Invalid settings: {'; '.join(problems)}.")


def _check_secrets(config: t.Mapping[str, t.Any]) -> None:
    blank = [key for key in SECRETS if not str(config.get(key) or "").strip()]
    if len(blank) == 1:
        msg = f"Setting {blank[0]} must not be empty: set it from Zoho's API console."
        raise ConfigError(msg)
    if blank:
        names = f"{', '.join(blank[:-1])} and {blank[-1]}"
        msg = f"Settings {names} must not be empty: set them from Zoho's API console."
        raise ConfigError(msg)


def _url_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    problems = []
    for key in ("accounts_url", "webhook_public_url"):
        value = config.get(key)
        if value and not _is_http_url(str(value)):
            problems.append(f"{key} {value!r} must be an absolute http(s) URL")
    return problems


def _is_http_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in {"http", "https"} and bool(host) and " " not in value.strip()


def _date_problems(config: t.Mapping[str, t.Any]) -> list[str]:
    value = config.get("start_date")
    try:
        parse_start_date(value)
    except (TypeError, ValueError):
        return [f"start_date {value!r} is not an ISO 8601 date-time, e.g. 2024-01-31T00:00:00Z"]
    return []


def _range_problems(settings: TapSettings) -> list[str]:
    values = {key: getattr(settings, key) for key in (*_ABOVE_ZERO, *_ZERO_OR_MORE)}
    problems = [
        f"{key} must be greater than 0 (got {values[key]:g})"
        for key in _ABOVE_ZERO
        if values[key] is not None and values[key] <= 0
    ]
    problems += [
        f"{key} must be 0 or more (got {values[key]:g})" for key in _ZERO_OR_MORE if values[key] < 0
    ]
    if settings.bulk_poll_initial_seconds > settings.bulk_poll_max_seconds:
        problems.append("bulk_poll_initial_seconds must not exceed bulk_poll_max_seconds")
    problems += _channel_problems(settings)
    return problems


def _channel_problems(settings: TapSettings) -> list[str]:
    """Zoho's limits on a channel (NOTES 6.2), checked at start-up, not after discovery."""
    problems = []
    if not 1 <= settings.channel_expiry_hours <= MAX_EXPIRY_HOURS:
        problems.append(
            f"channel_expiry_hours must be between 1 and {MAX_EXPIRY_HOURS} (one week; "
            f"got {settings.channel_expiry_hours:g})"
        )
    elif (
        settings.webhook_public_url
        and settings.channel_renew_before_hours >= settings.channel_expiry_hours
    ):
        problems.append("channel_renew_before_hours must be below channel_expiry_hours")
    token = settings.webhook_token
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        problems.append(
            f"webhook_token must be at most {MAX_TOKEN_CHARS} characters (it has {len(token)})"
        )
    return problems


def _store_problems(url: str) -> list[str]:
    """The event store URL's scheme, and for SQLite that the file's directory exists."""
    if not url:
        return []
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        return [f"event_store_url {url!r} is not a URL; use sqlite:///path or postgresql://..."]
    if scheme in _POSTGRES_SCHEMES or scheme.startswith("postgresql+"):
        return []
    if scheme != "sqlite":
        return [f"event_store_url scheme {scheme!r} is not supported; use sqlite or postgresql"]
    path = rest[1:] if rest.startswith("/") else ""
    if not path:
        return ["event_store_url sqlite:/// needs a file path, e.g. sqlite:///events.sqlite3"]
    parent = pathlib.Path(path).parent
    if path != ":memory:" and not parent.is_dir():
        return [f"event_store_url directory {parent} does not exist; create it first"]
    return []
