"""The tap's settings, in one place, grouped by subsystem.

``CONFIG_SCHEMA`` is what ``--about`` prints and what the SDK validates; ``TapSettings``
is the typed view of a validated config that the rest of the package reads. A new setting
goes into both.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from singer_sdk import typing as th

from tap_zoho_crm.datacenters import DATA_CENTERS

_AUTH = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType,
        required=True,
        secret=True,
        title="Client ID",
        description="OAuth client id from the Zoho API console. No default.",
    ),
    th.Property(
        "client_secret",
        th.StringType,
        required=True,
        secret=True,
        title="Client secret",
        description="OAuth client secret from the Zoho API console. No default.",
    ),
    th.Property(
        "refresh_token",
        th.StringType,
        required=True,
        secret=True,
        title="Refresh token",
        description=(
            "Refresh token granted with the bulk, modules and settings read scopes. No default."
        ),
    ),
    th.Property(
        "data_center",
        th.StringType,
        default="us",
        allowed_values=list(DATA_CENTERS),
        title="Data centre",
        description="Zoho data centre of the CRM org (us, eu, in, au, jp, ca, sa, uk, cn). "
        "Default: us.",
    ),
    th.Property(
        "accounts_url",
        th.StringType,
        title="Accounts server URL",
        description=(
            "Overrides the data centre's accounts server, e.g. for the local emulator or a "
            "private deployment. Default: the data centre's server."
        ),
    ),
)

_SCOPE = th.PropertiesList(
    th.Property(
        "modules",
        th.ArrayType(th.StringType),
        default=["Leads"],
        title="Modules",
        description='API names of the CRM modules to copy, one stream each. Default: ["Leads"].',
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "The first full load only takes records modified at or after this time. "
            "Default: none (every record)."
        ),
    ),
)

_BULK = th.PropertiesList(
    th.Property(
        "bulk_poll_initial_seconds",
        th.NumberType,
        default=2,
        title="Bulk job first poll (seconds)",
        description="Wait before the first Bulk Read job status poll; doubles after each "
        "poll. Default: 2.",
    ),
    th.Property(
        "bulk_poll_max_seconds",
        th.NumberType,
        default=60,
        title="Bulk job poll cap (seconds)",
        description="Longest wait between two job status polls. Default: 60.",
    ),
    th.Property(
        "bulk_job_timeout_seconds",
        th.NumberType,
        default=3600,
        title="Bulk job deadline (seconds)",
        description="A Bulk Read job not completed this long after its creation fails the "
        "run. Default: 3600.",
    ),
)

_HTTP = th.PropertiesList(
    th.Property(
        "request_timeout_seconds",
        th.NumberType,
        default=30,
        title="Request timeout (seconds)",
        description="Connect and read timeout of each HTTP call. Default: 30.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=5,
        title="Maximum retries",
        description="Retries of a call after HTTP 5xx or a connection error, with "
        "exponential backoff and jitter. HTTP 429 (Zoho throttling) is retried apart from "
        "this, for up to 5 minutes of waits. Default: 5.",
    ),
)

_EVENTS = th.PropertiesList(
    th.Property(
        "webhook_public_url",
        th.StringType,
        title="Public webhook URL",
        description="URL at which Zoho reaches the webhook receiver (tap-zoho-crm-webhook "
        "serve). Set it to subscribe a Notification API channel before the first Bulk Read "
        "and renew it every sync. Default: none (no channel: every sync is a Bulk Read "
        "catch-up).",
    ),
    th.Property(
        "webhook_token",
        th.StringType,
        secret=True,
        title="Channel token",
        description="Secret (at most 50 characters) Zoho echoes in every callback. "
        "Default: generated on first subscribe and kept in the event store.",
    ),
    th.Property(
        "event_store_url",
        th.StringType,
        default="sqlite:///zoho_events.sqlite3",
        title="Event store URL",
        description="Where the receiver stores events and the tap reads them: "
        "sqlite:///path (one host) or postgresql://user@host/db (several hosts). "
        "Default: sqlite:///zoho_events.sqlite3 (relative to the working directory, the "
        "Meltano project under Meltano).",
    ),
    th.Property(
        "channel_expiry_hours",
        th.NumberType,
        default=24,
        title="Channel lifetime (hours)",
        description="Expiry asked for the channel, at most 168 (Zoho silently gives one hour "
        "to a longer request). Default: 24.",
    ),
    th.Property(
        "channel_renew_before_hours",
        th.NumberType,
        default=12,
        title="Renew before (hours)",
        description="A sync renews the channel when less than this is left. Default: 12.",
    ),
    th.Property(
        "event_retention_hours",
        th.NumberType,
        default=168,
        title="Event retention (hours)",
        description="Events already committed to the target are deleted from the store after "
        "this long. Default: 168 (one week).",
    ),
)

_CATCHUP = th.PropertiesList(
    th.Property(
        "reconcile_interval_hours",
        th.NumberType,
        default=24,
        title="Reconcile interval (hours)",
        description="Run a Bulk Read catch-up at least this often even when no event was "
        "missed. Default: 24.",
    ),
    th.Property(
        "catchup_margin_seconds",
        th.IntegerType,
        default=300,
        title="Catch-up safety margin (seconds)",
        description="A catch-up re-reads from this long before the previous catch-up started, "
        "boundary second included. Default: 300.",
    ),
    th.Property(
        "daily_credit_budget",
        th.IntegerType,
        title="API credit budget per 24 hours",
        description="Stop a sync cleanly, with STATE written, before the tap's own calls in "
        "the last 24 hours would exceed this many Zoho API credits (a Bulk Read job costs "
        "50, other calls 1). Default: none (no limit).",
    ),
)

GROUPS: tuple[th.PropertiesList, ...] = (_AUTH, _SCOPE, _BULK, _HTTP, _EVENTS, _CATCHUP)


def _merge(groups: t.Iterable[th.PropertiesList]) -> dict[str, t.Any]:
    """Join property groups into one JSON schema, keeping declaration order."""
    merged = th.PropertiesList()
    for group in groups:
        for prop in group.wrapped.values():
            merged.append(prop)
    return merged.to_dict()


CONFIG_SCHEMA: dict[str, t.Any] = _merge(GROUPS)


@dataclasses.dataclass(frozen=True)
class TapSettings:
    """Typed, defaulted view of a validated config. Secrets are never part of ``repr``."""

    client_id: str = dataclasses.field(repr=False)
    client_secret: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    data_center: str = "us"
    accounts_url: str | None = None
    modules: tuple[str, ...] = ("Leads",)
    start_date: datetime.datetime | None = None
    bulk_poll_initial_seconds: float = 2.0
    bulk_poll_max_seconds: float = 60.0
    bulk_job_timeout_seconds: float = 3600.0
    request_timeout_seconds: float = 30.0
    max_retries: int = 5
    webhook_public_url: str | None = None
    webhook_token: str | None = dataclasses.field(default=None, repr=False)
    event_store_url: str = "sqlite:///zoho_events.sqlite3"
    channel_expiry_hours: float = 24.0
    channel_renew_before_hours: float = 12.0
    event_retention_hours: float = 168.0
    reconcile_interval_hours: float = 24.0
    catchup_margin_seconds: int = 300
    daily_credit_budget: int | None = None

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> TapSettings:
        """Build settings from a config mapping; missing optional keys take defaults."""

        def get(key: str, default: t.Any) -> t.Any:
            value = config.get(key)
            return default if value is None else value

        return cls(
            client_id=str(config.get("client_id") or ""),
            client_secret=str(config.get("client_secret") or ""),
            refresh_token=str(config.get("refresh_token") or ""),
            data_center=str(get("data_center", "us")),
            accounts_url=config.get("accounts_url") or None,
            modules=tuple(get("modules", ["Leads"])),
            start_date=parse_start_date(config.get("start_date")),
            bulk_poll_initial_seconds=float(get("bulk_poll_initial_seconds", 2)),
            bulk_poll_max_seconds=float(get("bulk_poll_max_seconds", 60)),
            bulk_job_timeout_seconds=float(get("bulk_job_timeout_seconds", 3600)),
            request_timeout_seconds=float(get("request_timeout_seconds", 30)),
            max_retries=int(get("max_retries", 5)),
            webhook_public_url=config.get("webhook_public_url") or None,
            webhook_token=config.get("webhook_token") or None,
            event_store_url=str(get("event_store_url", "sqlite:///zoho_events.sqlite3")),
            channel_expiry_hours=float(get("channel_expiry_hours", 24)),
            channel_renew_before_hours=float(get("channel_renew_before_hours", 12)),
            event_retention_hours=float(get("event_retention_hours", 168)),
            reconcile_interval_hours=float(get("reconcile_interval_hours", 24)),
            catchup_margin_seconds=int(get("catchup_margin_seconds", 300)),
            daily_credit_budget=_optional_int(config.get("daily_credit_budget")),
        )


def _optional_int(value: t.Any) -> int | None:
    return None if value in (None, "") else int(value)


def parse_start_date(value: t.Any) -> datetime.datetime | None:
    """Parse ``start_date``; a value without offset is taken as UTC. Raises ValueError."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)
