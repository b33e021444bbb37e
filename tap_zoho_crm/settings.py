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
        description="Retries of a call after HTTP 429, 5xx or a connection error, with "
        "exponential backoff and jitter. Default: 5.",
    ),
)

GROUPS: tuple[th.PropertiesList, ...] = (_AUTH, _SCOPE, _BULK, _HTTP)


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
            start_date=_parse_start_date(config.get("start_date")),
            bulk_poll_initial_seconds=float(get("bulk_poll_initial_seconds", 2)),
            bulk_poll_max_seconds=float(get("bulk_poll_max_seconds", 60)),
            bulk_job_timeout_seconds=float(get("bulk_job_timeout_seconds", 3600)),
            request_timeout_seconds=float(get("request_timeout_seconds", 30)),
            max_retries=int(get("max_retries", 5)),
        )


def _parse_start_date(value: t.Any) -> datetime.datetime | None:
    """Parse ``start_date``; a value without offset is taken as UTC."""
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)
