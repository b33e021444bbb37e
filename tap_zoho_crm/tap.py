"""``TapZohoCRM``: settings, discovery, and a CLI that reports tap errors in one line."""

from __future__ import annotations

import functools
import io
import json
import logging
import pathlib
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
from tap_zoho_crm.configcheck import check_config
from tap_zoho_crm.credits import CreditLedger, CreditsExhausted
from tap_zoho_crm.datacenters import get_data_center
from tap_zoho_crm.errors import ConfigError, ZohoError
from tap_zoho_crm.schema import build_module_schema
from tap_zoho_crm.settings import CONFIG_SCHEMA, TapSettings
from tap_zoho_crm.statecheck import check_state_document
from tap_zoho_crm.store import EventStore, StoreError, open_store
from tap_zoho_crm.streams import ModuleStream
from tap_zoho_crm.writer import BufferedMsgSpecWriter

SDK_SYNC_FAILED = "An unhandled error occurred while syncing '%s'"
"""What singer-sdk's ``Stream.sync`` logs at ERROR before it re-raises any exception."""


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


class _OwnErrorFilter(logging.Filter):
    """Drops the SDK's "unhandled error" line while a ``ZohoError`` is on its way out.

    ``ZohoCommand`` logs that error as the run's one line; any other exception is a bug and
    keeps the SDK's line and its traceback.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != SDK_SYNC_FAILED:
            return True
        return not isinstance(sys.exc_info()[1], ZohoError)


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
    def synced_before(self) -> bool:
        """Whether an earlier run of this install reported a bookmark to the event store.

        Read once per run, when the first stream starts and before its housekeeping reports
        this run's bookmark: a full load over a table such a run wrote must read Zoho's
        deleted list, a first load into a new table need not.
        """
        return self.event_store.committed_seq() is not None

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
            stream = ModuleStream(
                self,
                module_schema=build_module_schema(module.api_name, fields),
                name=module.api_name,
                bulk_reader=self.bulk_reader,
            )
            stream.logger.addFilter(_OwnErrorFilter())
            streams.append(stream)
        return streams

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Refuse a malformed bookmark before any stream reads it (``statecheck.py``)."""
        check_state_document(state)
        super().load_state(state)

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
            check_config(self.config)
        return errors

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """Read ``--config`` files, reporting a missing or malformed one in one line."""
        for path in value:
            if path != "ENV":
                _read_json_file(pathlib.Path(path), "--config")
        return super().cb_config(ctx, param, value)

    @classmethod
    @override
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Sync, after checking ``--state`` and ``--catalog`` and before any call to Zoho.

        A budget (``daily_credit_budget``) used up before or during the sync is a clean stop
        with exit code 0, discovery included: the next scheduled run continues from the last
        STATE. Only ``--discover`` alone fails on it, as it cannot produce a catalog.
        """
        state_text = _read_option(state, "--state")
        if state_text is not None and not state_text.strip():
            state_text = None  # an empty state file holds no bookmarks
        if state_text is not None:
            check_state_document(_parse_json(state_text, "--state", state))
        catalog_text = _read_option(catalog, "--catalog")
        if catalog_text is not None:
            _parse_json(catalog_text, "--catalog", catalog)
        try:
            super().invoke(
                about=about,
                about_format=about_format,
                config=config,
                state=None if state_text is None else io.StringIO(state_text),
                catalog=None if catalog_text is None else io.StringIO(catalog_text),
            )
        except CreditsExhausted as exc:
            cls.logger.warning("%s. Stopping this run here; the next run continues.", exc)

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


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _read_json_file(path: pathlib.Path, option: str) -> t.Any:
    """Parse a JSON file named on the command line; a problem is a one-line ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{option} file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option} file {path} cannot be read: {exc}.") from None
    return _parse_json(text, option, path)


def _read_option(handle: t.IO[str] | None, option: str) -> str | None:
    if handle is None:
        return None
    try:
        return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        name = getattr(handle, "name", "?")
        raise ConfigError(f"{option} file {name} cannot be read: {exc}.") from None


def _parse_json(text: str, option: str, source: t.Any) -> t.Any:
    """A JSON object from ``text``; anything else is a ConfigError naming the file."""
    name = source if isinstance(source, pathlib.Path) else getattr(source, "name", "?")
    try:
        value = json.loads(text)
    except ValueError as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        msg = f"{option} file {name} is not valid JSON{where}; it must hold one JSON object."
        raise ConfigError(msg) from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), "value")
        msg = f"{option} file {name} holds a JSON {kind}, not an object."
        raise ConfigError(msg)
    return value


if __name__ == "__main__":
    TapZohoCRM.cli()
