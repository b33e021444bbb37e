"""Settings of ``tap-zoho-crm-webhook``: where each comes from and what it must look like.

Precedence: command-line flag, else environment variable ``TAP_ZOHO_CRM_<NAME>`` (what
Meltano exports from the ``tap-zoho-crm-webhook`` utility's settings, which share the
extractor's namespace), else the ``--config`` JSON file, else the default. Names match the
tap's settings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing as t
from pathlib import Path

from tap_zoho_crm.store import DEFAULT_EVENT_STORE_URL
from tap_zoho_crm.webhook.app import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PATH,
)

if t.TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "TAP_ZOHO_CRM_"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its name, kind (str, int, float, list) and default."""

    name: str
    kind: str = "str"
    default: t.Any = None
    secret: bool = False

    @property
    def env_var(self) -> str:
        """The environment variable Meltano sets for this setting."""
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("event_store_url", default=DEFAULT_EVENT_STORE_URL),
    Setting("webhook_path", default=DEFAULT_PATH),
    Setting("webhook_public_url"),
    Setting("webhook_max_body_bytes", "int", DEFAULT_MAX_BODY_BYTES),
    Setting("webhook_heartbeat_seconds", "float", DEFAULT_HEARTBEAT_SECONDS),
    Setting("channel_expiry_hours", "float", 24.0),
    Setting("channel_renew_before_hours", "float", 12.0),
    Setting("channel_id"),
    Setting("webhook_token", secret=True),
    Setting("modules", "list", ["Leads"]),
    Setting("client_id", secret=True),
    Setting("client_secret", secret=True),
    Setting("refresh_token", secret=True),
    Setting("data_center"),
    Setting("accounts_url"),
    Setting("request_timeout_seconds", "float", 30.0),
)
BY_NAME = {s.name: s for s in SETTINGS}


def _convert(setting: Setting, value: t.Any, source: str) -> t.Any:
    """Coerce a raw value (text from flags and env, JSON from the file) to the setting's kind."""
    where = f"{setting.name} (from {source})"
    try:
        if setting.kind == "int":
            return int(value)
        if setting.kind == "float":
            return float(value)
        if setting.kind == "list":
            return _as_list(value)
    except (TypeError, ValueError) as exc:
        kinds = {"int": "whole number", "float": "number", "list": "list"}
        msg = f"{where} must be a {kinds.get(setting.kind, setting.kind)}, got "
        msg += _shown(setting, value)
        raise SettingsError(msg) from exc
    if not isinstance(value, str):
        raise SettingsError(f"{where} must be a string, got {_shown(setting, value)}")
    return value


def _as_list(value: t.Any) -> list[str]:
    """A JSON array (Meltano exports arrays as JSON) or comma-separated text."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split(",")
    if not isinstance(value, list):
        raise TypeError("not a list")
    items = [str(item).strip() for item in value]
    return [item for item in items if item]


def _shown(setting: Setting, value: t.Any) -> str:
    return "(hidden)" if setting.secret else repr(value)


def load_config_file(path: str | None) -> dict[str, t.Any]:
    """Read the ``--config`` JSON object, or nothing when no file is given."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    except ValueError as exc:
        raise SettingsError(f"--config {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"--config {path}: must hold a JSON object")
    return data


def resolve(
    flags: Mapping[str, t.Any],
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, t.Any]:
    """Return every setting's value, taken from flags, env, file, then default."""
    environ = os.environ if environ is None else environ
    file_values = load_config_file(config_file)
    resolved: dict[str, t.Any] = {}
    for setting in SETTINGS:
        if flags.get(setting.name) is not None:
            value = _convert(setting, flags[setting.name], "flag")
        elif environ.get(setting.env_var, "") != "":
            value = _convert(setting, environ[setting.env_var], setting.env_var)
        elif file_values.get(setting.name) is not None:
            value = _convert(setting, file_values[setting.name], "--config")
        else:
            value = setting.default
        resolved[setting.name] = value
    return resolved


def require(settings: Mapping[str, t.Any], *names: str) -> None:
    """Raise one SettingsError naming every missing setting and how to set it."""
    missing = [name for name in names if settings.get(name) in (None, "", [])]
    if missing:
        hints = ", ".join(f"{n} (env {BY_NAME[n].env_var})" for n in missing)
        raise SettingsError(f"missing setting: {hints}")
