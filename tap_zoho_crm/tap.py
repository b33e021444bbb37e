"""``TapZohoCRM``: settings, discovery, and a CLI that reports tap errors in one line."""

from __future__ import annotations

import functools
import sys
import typing as t

import click
import requests
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.plugin_base import SingerCommand
from typing_extensions import override

from tap_zoho_crm import metadata
from tap_zoho_crm.auth import ZohoAuth
from tap_zoho_crm.bulk import BulkReader, BulkSettings
from tap_zoho_crm.channel import ChannelError, ChannelSettings, client_request, ensure_channel
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.credits import CreditLedger
from tap_zoho_crm.datacenters import get_data_center
from tap_zoho_crm.errors import ConfigError, ZohoError
from tap_zoho_crm.schema import build_module_schema
from tap_zoho_crm.settings import CONFIG_SCHEMA, TapSettings
from tap_zoho_crm.store import EventStore, StoreError, open_store
from tap_zoho_crm.streams import ModuleStream
from tap_zoho_crm.writer import BufferedMsgSpecWriter

SECRETS = ("client_id", "client_secret", "refresh_token")


class ZohoCommand(SingerCommand):
    """The Singer CLI, with tap errors (``ZohoError``) logged as one line and exit code 1.

    Errors can surface while options are parsed (``--discover`` runs in a click callback)
    or while the command runs, so ``main`` is the one place that sees both.
    """

    @override
    def main(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return super().main(*args, **kwargs)
        except ZohoError as exc:
            self.logger.error("%s", exc)
            sys.exit(1)


class TapZohoCRM(Tap):
    """Copies Zoho CRM modules into a warehouse: Bulk Read for full and catch-up loads,
    Notification API webhooks (stored by tap-zoho-crm-webhook) for the changes between."""

    name = "tap-zoho-crm"
    package_name = "tap-zoho-crm"
    # No BATCH (records must keep their order against the tombstone SCHEMA) and no
    # ACTIVATE_VERSION (deletes arrive as _sdc_deleted_at, never by table version).
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]
    dynamic_catalog = True
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = CONFIG_SCHEMA
    #: Whether an earlier run reported a bookmark to the event store (set by the first stream).
    synced_before: bool | None = None

    @functools.cached_property
    def settings(self) -> TapSettings:
        """Typed view of the validated config."""
        return TapSettings.from_config(self.config)

    @functools.cached_property
    def client(self) -> ZohoClient:
        """The run's one API client (one session, one token)."""
        settings = self.settings
        session = requests.Session()
        session.headers["User-Agent"] = f"{self.name}/{self.plugin_version}"
        auth = ZohoAuth(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            refresh_token=settings.refresh_token,
            data_center=get_data_center(settings.data_center),
            accounts_url=settings.accounts_url,
            session=session,
            timeout_seconds=settings.request_timeout_seconds,
            max_retries=settings.max_retries,
        )
        client = ZohoClient(
            auth,
            session=session,
            timeout_seconds=settings.request_timeout_seconds,
            max_retries=settings.max_retries,
        )
        if settings.daily_credit_budget is not None:
            client.ledger = CreditLedger(self.event_store, settings.daily_credit_budget)
        return client

    @functools.cached_property
    def bulk_reader(self) -> BulkReader:
        """Bulk Read job runner shared by the streams."""
        settings = self.settings
        return BulkReader(
            self.client,
            BulkSettings(
                poll_initial_seconds=settings.bulk_poll_initial_seconds,
                poll_max_seconds=settings.bulk_poll_max_seconds,
                job_timeout_seconds=settings.bulk_job_timeout_seconds,
            ),
        )

    @functools.cached_property
    def event_store(self) -> EventStore:
        """The store the webhook receiver writes and the streams read."""
        try:
            return open_store(self.settings.event_store_url)
        except StoreError as exc:
            raise ConfigError(str(exc)) from None

    @functools.cached_property
    def channel_live(self) -> bool:
        """Subscribe or renew the Notification API channel, once per run, before any Bulk
        Read. False when there is no channel or events may have been missed (it lapsed,
        was re-created, or Zoho refused it): the streams then run a catch-up."""
        settings = self.settings
        if not settings.webhook_public_url:
            self.logger.info("No webhook_public_url: every sync runs a Bulk Read catch-up")
            return False
        try:
            channel_settings = ChannelSettings(
                modules=settings.modules,
                webhook_public_url=settings.webhook_public_url,
                channel_expiry_hours=settings.channel_expiry_hours,
                channel_renew_before_hours=settings.channel_renew_before_hours,
                webhook_token=settings.webhook_token,
            )
        except ChannelError as exc:
            raise ConfigError(str(exc)) from None
        try:
            result = ensure_channel(client_request(self.client), self.event_store, channel_settings)
        except ChannelError as exc:
            self.logger.warning("Notification channel not renewed (%s); catching up", exc)
            return False
        expiry = result.record.expiry.isoformat() if result.record.expiry else "unknown"
        self.logger.info(
            "Notification channel %s %s, live until %s",
            result.record.channel_id,
            result.action,
            expiry,
        )
        if result.gap:
            self.logger.warning("Events may be missing: %s", result.gap_reason)
        return not result.gap

    @override
    def discover_streams(self) -> list[ModuleStream]:
        """One stream per configured module, with a schema built from Zoho's fields."""
        modules = metadata.resolve_modules(self.client, self.settings.modules)
        streams = []
        for module in modules:
            fields = metadata.fetch_fields(self.client, module.api_name)
            streams.append(
                ModuleStream(
                    self,
                    module_schema=build_module_schema(module.api_name, fields),
                    name=module.api_name,
                    bulk_reader=self.bulk_reader,
                )
            )
        return streams

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate as the SDK does, but fail with one ConfigError naming every problem."""
        try:
            errors = super()._validate_config(raise_errors=raise_errors)
        except ConfigValidationError as exc:
            problems = "; ".join(exc.errors) or str(exc)
            msg = f"Invalid settings: {problems}. See --about for every setting."
            raise ConfigError(msg) from None
        if raise_errors:
            _check_settings(self.config)
        return errors

    @classmethod
    @override
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        return ZohoCommand(
            name=command.name,
            callback=command.callback,
            params=command.params,
            help=command.help,
            context_settings=command.context_settings,
            logger=cls.logger,
        )


def _check_settings(config: t.Mapping[str, t.Any]) -> None:
    """Checks JSON Schema cannot express: secrets must not be blank, DC must be known."""
    blank = [key for key in SECRETS if not str(config.get(key) or "").strip()]
    if blank:
        msg = f"Settings {', '.join(blank)} must not be empty: set them from Zoho's API console."
        raise ConfigError(msg)
    get_data_center(str(config.get("data_center") or "us"))


if __name__ == "__main__":
    TapZohoCRM.cli()
