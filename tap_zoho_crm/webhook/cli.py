"""``tap-zoho-crm-webhook``: run the receiver and manage the Notification API channel.

    tap-zoho-crm-webhook serve [--host 127.0.0.1] [--port 8080] [--path /zoho/notifications]
    tap-zoho-crm-webhook channel subscribe|renew|status|unsubscribe

Settings come from flags, else ``TAP_ZOHO_CRM_<SETTING>`` environment variables, else the
``--config`` JSON file (see ``settings.py``). A setting or Zoho error ends the command with one
``Error: ...`` line and exit status 1, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import sys
import typing as t

import click

from tap_zoho_crm.channel import (
    ChannelError,
    ChannelSettings,
    client_request,
    ensure_channel,
    format_zoho_time,
    status,
    unsubscribe,
)
from tap_zoho_crm.store import StoreError, open_store
from tap_zoho_crm.webhook.app import ReceiverConfig, create_app
from tap_zoho_crm.webhook.settings import SettingsError, require, resolve

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_zoho_crm.channel import ChannelResult, CrmRequest
    from tap_zoho_crm.store import EventStore

NO_CHANNEL_YET = (
    "no channel registered yet; run `channel subscribe` or a sync with webhook_public_url set"
)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MELTANO_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
# Set by Meltano for the plugin it invokes: this package runs as a utility (its commands) or,
# in older project files, as commands of the extractor.
MELTANO_PLUGIN_ENV = ("MELTANO_UTILITY_NAME", "MELTANO_EXTRACTOR_NAME")
# Test hook: hold every answer back this long after the commit (simulates a crash window).
TEST_DELAY_ENV = "TAP_ZOHO_CRM_TEST_ANSWER_DELAY_SECONDS"

P = t.ParamSpec("P")
R = t.TypeVar("R")


def _friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors an operator can fix into one ``Error:`` line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (SettingsError, StoreError, ChannelError) as exc:
            raise click.ClickException(_one_line(str(exc))) from exc
        except Exception as exc:
            if _is_zoho_error(exc):
                raise click.ClickException(_one_line(str(exc))) from exc
            raise

    return wrapper


def _one_line(message: str) -> str:
    """Join a multi-line message (libpq adds a hint line) into one line."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _is_zoho_error(exc: Exception) -> bool:
    try:
        from tap_zoho_crm.errors import ZohoError  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the tap's modules are part of the package
        return False
    return isinstance(exc, ZohoError)


def _setup_logging() -> None:
    """Log to stderr with time, level and logger; under Meltano, without the time.

    ``meltano invoke`` reads the plugin's stderr and logs each line again with its own
    timestamp (and as level info, so the level stays in the line). Meltano marks the plugin
    it runs with ``MELTANO_<TYPE>_NAME``, e.g. ``MELTANO_UTILITY_NAME``.
    """
    under_meltano = any(os.environ.get(name) for name in MELTANO_PLUGIN_ENV)
    log_format = MELTANO_LOG_FORMAT if under_meltano else LOG_FORMAT
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=log_format)


config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="JSON file with settings (used after flags and TAP_ZOHO_CRM_* variables).",
)
store_option = click.option("--event-store-url", help="sqlite:///path or postgresql://...")


@click.group()
def cli() -> None:
    """Receive Zoho CRM notifications into the event store, and manage the channel."""
    _setup_logging()


# -- serve --------------------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="0 picks a free port.")
@click.option("--path", "webhook_path", help="Callback path (default /zoho/notifications).")
@store_option
@config_option
@_friendly_errors
def serve(
    host: str,
    port: int,
    webhook_path: str | None,
    event_store_url: str | None,
    config_file: str | None,
) -> None:
    """Run the receiver under uvicorn until SIGINT or SIGTERM."""
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    flags = {"webhook_path": webhook_path, "event_store_url": event_store_url}
    settings = resolve(flags, config_file)
    receiver_config = _receiver_config(settings)
    store = open_store(settings["event_store_url"])
    sock = _listen(host, port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"webhook receiver listening on http://{shown_host}:{bound_port}")
    sys.stdout.flush()
    server_config = uvicorn.Config(
        create_app(store, receiver_config),
        log_config=None,
        access_log=False,  # request lines carry the secret key
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    try:
        uvicorn.Server(server_config).run(sockets=[sock])
    finally:
        store.close()


def _receiver_config(settings: dict[str, t.Any]) -> ReceiverConfig:
    delay = os.environ.get(TEST_DELAY_ENV, "")
    try:
        return ReceiverConfig(
            path=settings["webhook_path"],
            max_body_bytes=settings["webhook_max_body_bytes"],
            heartbeat_seconds=settings["webhook_heartbeat_seconds"],
            answer_delay_seconds=float(delay) if delay else 0.0,
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror}; choose another --host/--port"
        raise SettingsError(msg) from exc


# -- channel ------------------------------------------------------------------------------


@cli.group()
def channel() -> None:
    """Manage the Zoho Notification API channel that feeds the receiver."""


def _channel_options(func: Callable[..., None]) -> t.Any:
    """Options, setting sources and one-line errors shared by the channel subcommands."""

    @click.option("--webhook-public-url", help="Public URL Zoho POSTs to (path included).")
    @click.option("--modules", help="Comma-separated module API names, e.g. Leads,Contacts.")
    @store_option
    @config_option
    @_friendly_errors
    @functools.wraps(func)
    def command(config_file: str | None, **flags: t.Any) -> None:
        func(resolve(flags, config_file))

    return command


def _channel_command(func: Callable[[CrmRequest, EventStore, dict[str, t.Any]], None]) -> t.Any:
    """Setup of the channel subcommands that talk to Zoho: credentials first, then the store."""

    @_channel_options
    @functools.wraps(func)
    def command(settings: dict[str, t.Any]) -> None:
        request = _crm_request(settings)
        with open_store(settings["event_store_url"]) as store:
            func(request, store, settings)

    return command


def _channel_settings(settings: dict[str, t.Any]) -> ChannelSettings:
    require(settings, "webhook_public_url", "modules")
    return ChannelSettings(
        modules=tuple(settings["modules"]),
        webhook_public_url=settings["webhook_public_url"],
        channel_expiry_hours=settings["channel_expiry_hours"],
        channel_renew_before_hours=settings["channel_renew_before_hours"],
        channel_id=settings["channel_id"],
        webhook_token=settings["webhook_token"],
    )


def _crm_request(settings: dict[str, t.Any]) -> CrmRequest:
    """A CRM requester from the OAuth settings, using the tap's own client."""
    from tap_zoho_crm.auth import ZohoAuth  # noqa: PLC0415 - only channel commands need it
    from tap_zoho_crm.client import ZohoClient  # noqa: PLC0415
    from tap_zoho_crm.datacenters import DataCenter, get_data_center  # noqa: PLC0415

    require(settings, "client_id", "client_secret", "refresh_token")
    accounts_url, code = settings["accounts_url"], settings["data_center"]
    if not accounts_url and not code:
        raise SettingsError("set data_center (e.g. us, eu) or accounts_url")
    center = get_data_center(code) if code else DataCenter("custom", accounts_url, accounts_url)
    auth = ZohoAuth(
        client_id=settings["client_id"],
        client_secret=settings["client_secret"],
        refresh_token=settings["refresh_token"],
        data_center=center,
        accounts_url=accounts_url or None,
        timeout_seconds=settings["request_timeout_seconds"],
    )
    return client_request(ZohoClient(auth, timeout_seconds=settings["request_timeout_seconds"]))


def _echo_result(result: ChannelResult) -> None:
    record = result.record
    summary = {
        "channel_id": record.channel_id,
        "action": result.action,
        "gap": result.gap,
        "gap_reason": result.gap_reason,
        "modules": list(record.modules),
        "expiry": format_zoho_time(record.expiry) if record.expiry else None,
    }
    click.echo(json.dumps(summary, indent=2))


@channel.command()
@_channel_command
def subscribe(request: CrmRequest, store: EventStore, settings: dict[str, t.Any]) -> None:
    """Subscribe the channel, or renew, re-enable or update it as needed."""
    _echo_result(ensure_channel(request, store, _channel_settings(settings)))


@channel.command()
@_channel_command
def renew(request: CrmRequest, store: EventStore, settings: dict[str, t.Any]) -> None:
    """Renew the registered channel now, whatever time it has left."""
    wanted = _channel_settings(settings)
    if not store.list_channels():
        raise ChannelError("no channel is registered; run: tap-zoho-crm-webhook channel subscribe")
    _echo_result(ensure_channel(request, store, wanted, force_renew=True))


@channel.command(name="status")
@_channel_options
def status_command(settings: dict[str, t.Any]) -> None:
    """Show the registered channel next to what Zoho reports (no secrets).

    Status is informational: with no channel registered (and no ``channel_id`` set) it says
    so and exits 0 without asking Zoho. Only a store that cannot be opened, or a failing
    Zoho call, exits 1.
    """
    with open_store(settings["event_store_url"]) as store:
        if settings["channel_id"] is None and not store.list_channels():
            click.echo(NO_CHANNEL_YET)
            return
        request = _crm_request(settings)
        shown = status(request, store, settings["channel_id"]).as_dict()
    click.echo(json.dumps(shown, indent=2))


@channel.command(name="unsubscribe")
@_channel_command
def unsubscribe_command(request: CrmRequest, store: EventStore, settings: dict[str, t.Any]) -> None:
    """Disable the channel at Zoho and remove it from the registry."""
    record = unsubscribe(request, store, settings["channel_id"])
    click.echo(json.dumps({"channel_id": record.channel_id, "action": "unsubscribed"}))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="tap-zoho-crm-webhook")
