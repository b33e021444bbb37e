"""Notification API channel: subscribe, renew, re-enable and unsubscribe (NOTES section 6).

One channel carries ``{Module}.create``, ``.edit`` and ``.delete`` for every synced module,
with ``notify_on_related_action`` off. Its secrets live in the event store's channel
registry, where the receiver reads them: the ``token`` Zoho echoes in each callback and the
``key`` query parameter of ``notify_url``. Both are made with ``secrets`` on first subscribe.

Invariants:

- The expiry recorded in the store is the one Zoho granted (read back from its answer), never
  the one asked for.
- ``ChannelResult.gap`` is True whenever callbacks may have been missed before this call: no
  channel existed, Zoho no longer knew it or it had expired, or its events or URL changed.
  The tap must then run a catch-up Bulk Read.
- Zoho reports per-item failures inside ``watch[]`` with HTTP 202 or 400; every answer body is
  read and any failure raises ``ChannelError``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import typing as t
import urllib.parse

from tap_zoho_crm.store.base import ChannelRecord, as_utc, utc_now

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_zoho_crm.client import ZohoClient
    from tap_zoho_crm.store.base import EventStore

LOGGER = logging.getLogger(__name__)

WATCH_PATH = "/crm/v8/actions/watch"
MAX_EXPIRY_HOURS = 7 * 24
MAX_TOKEN_CHARS = 50
OPERATIONS = ("create", "edit", "delete")
# A granted expiry this much shorter than the one asked for is reported as cut short.
_EXPIRY_SLACK = dt.timedelta(minutes=2)
# Per-item codes Zoho uses when it does not know a channel.
_UNKNOWN_CHANNEL_CODES = frozenset({"NOT_SUBSCRIBED", "RESOURCE_NOT_FOUND"})
# A GET with an unknown channel id may also be refused as bad data.
_UNKNOWN_ON_READ_CODES = _UNKNOWN_CHANNEL_CODES | {"INVALID_DATA"}


class CrmResponse(t.NamedTuple):
    """An answer from the CRM API: HTTP status and parsed JSON body (None if empty)."""

    status_code: int
    payload: t.Any


class CrmRequest(t.Protocol):
    """Send one authenticated request to ``{api_domain}{path}`` and return its answer.

    Implementations handle the access token (refresh on ``INVALID_TOKEN``) and transport
    retries; they return every HTTP answer, error statuses included, without raising.
    """

    def __call__(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: t.Any = None,
    ) -> CrmResponse: ...


class ChannelError(Exception):
    """Zoho refused a channel call, or the channel settings are unusable."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class ChannelSettings:
    """What the channel should look like. Validated on creation, with messages naming the
    setting to fix."""

    modules: tuple[str, ...]
    webhook_public_url: str
    channel_expiry_hours: float = 24
    channel_renew_before_hours: float = 12
    channel_id: str | None = None
    webhook_token: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.modules or not all(isinstance(m, str) and m for m in self.modules):
            raise ChannelError("modules must list at least one module API name")
        parts = urllib.parse.urlsplit(self.webhook_public_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            msg = "webhook_public_url must be an absolute http(s) URL Zoho can reach"
            raise ChannelError(msg)
        if not 1 <= self.channel_expiry_hours <= MAX_EXPIRY_HOURS:
            msg = f"channel_expiry_hours must be between 1 and {MAX_EXPIRY_HOURS} (one week)"
            raise ChannelError(msg)
        if not 0 < self.channel_renew_before_hours < self.channel_expiry_hours:
            msg = "channel_renew_before_hours must be above 0 and below channel_expiry_hours"
            raise ChannelError(msg)
        if self.webhook_token is not None and not 0 < len(self.webhook_token) <= 50:
            raise ChannelError(f"webhook_token must be 1 to {MAX_TOKEN_CHARS} characters")
        if self.channel_id is not None and not self.channel_id.isdigit():
            raise ChannelError("channel_id must be digits only (Zoho takes a long)")

    @property
    def events(self) -> tuple[str, ...]:
        """The Zoho event names subscribed: create, edit and delete of every module."""
        return tuple(f"{module}.{op}" for module in self.modules for op in OPERATIONS)


@dataclasses.dataclass(frozen=True)
class ChannelResult:
    """What ``ensure_channel`` did. ``action`` is one of subscribed, reenabled, updated,
    renewed, current."""

    record: ChannelRecord
    action: str
    gap: bool
    gap_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class ChannelStatus:
    """The registry's view and Zoho's view of one channel (secrets left out)."""

    channel_id: str
    registered: bool
    known_to_zoho: bool
    modules: tuple[str, ...]
    events: tuple[str, ...]
    expiry: dt.datetime | None
    zoho_expiry: dt.datetime | None

    def as_dict(self) -> dict[str, t.Any]:
        """JSON-ready form for the CLI."""
        out = dataclasses.asdict(self)
        for key in ("expiry", "zoho_expiry"):
            out[key] = out[key].isoformat() if out[key] else None
        out["modules"], out["events"] = list(self.modules), list(self.events)
        return out


# -- time and URL helpers -----------------------------------------------------------------


def parse_zoho_time(text: str) -> dt.datetime:
    """Parse Zoho's ISO 8601 time (any offset, or ``Z``) into UTC."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return as_utc(dt.datetime.fromisoformat(text))


def format_zoho_time(value: dt.datetime) -> str:
    """Format a time the way Zoho expects ``channel_expiry``: seconds and an offset."""
    return as_utc(value).replace(microsecond=0).isoformat()


def notify_url_with_key(public_url: str, url_key: str) -> str:
    """Return ``public_url`` with ``key=<url_key>`` added to its query string."""
    parts = urllib.parse.urlsplit(public_url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "key"]
    query.append(("key", url_key))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


# -- answers ------------------------------------------------------------------------------


def _watch_items(response: CrmResponse, what: str) -> list[dict[str, t.Any]]:
    """Return the ``watch[]`` items of a successful answer; raise ChannelError otherwise."""
    body = response.payload
    if isinstance(body, dict) and body.get("status") == "error":
        raise _error(what, body, response.status_code)
    items = body.get("watch") if isinstance(body, dict) else None
    if not isinstance(items, list):
        if response.status_code == 204:
            return []
        msg = f"Zoho answered {what} with HTTP {response.status_code} and no watch[] list"
        raise ChannelError(msg)
    for item in items:
        if not isinstance(item, dict) or item.get("status", "success") != "success":
            raise _error(what, item, response.status_code)
    if response.status_code >= 300:
        raise ChannelError(f"Zoho answered {what} with HTTP {response.status_code}")
    return items


def _error(what: str, item: t.Any, status: int) -> ChannelError:
    item = item if isinstance(item, dict) else {}
    code = str(item.get("code") or "UNKNOWN")
    message = item.get("message") or "no message"
    details = item.get("details") or {}
    msg = f"Zoho refused {what} (HTTP {status}): {code}: {message}"
    if details:
        msg += f" (details: {details})"
    return ChannelError(msg, code)


def _granted_expiry(items: list[dict[str, t.Any]]) -> dt.datetime | None:
    """Earliest ``channel_expiry`` in an enable/update answer (one per module) or GET answer."""
    found: list[dt.datetime] = []
    for item in items:
        details = item.get("details") if isinstance(item.get("details"), dict) else {}
        for event in (details or {}).get("events") or []:
            if isinstance(event, dict) and event.get("channel_expiry"):
                found.append(parse_zoho_time(event["channel_expiry"]))
        if item.get("channel_expiry"):
            found.append(parse_zoho_time(item["channel_expiry"]))
    return min(found) if found else None


# -- registry -----------------------------------------------------------------------------


def _registered(store: EventStore, channel_id: str | None) -> ChannelRecord | None:
    """The channel this install manages: by id if given, else the only one registered."""
    if channel_id is not None:
        return store.get_channel(channel_id)
    channels = store.list_channels()
    if len(channels) > 1:
        ids = ", ".join(c.channel_id for c in channels)
        raise ChannelError(f"several channels are registered ({ids}); set channel_id")
    return channels[0] if channels else None


def _desired(settings: ChannelSettings, current: ChannelRecord | None) -> ChannelRecord:
    """The record the channel should have, keeping existing secrets and id."""
    channel_id = settings.channel_id or (current.channel_id if current else None)
    url_key = current.url_key if current else secrets.token_urlsafe(32)
    token = settings.webhook_token or (current.token if current else secrets.token_urlsafe(32))
    return ChannelRecord(
        channel_id=channel_id or str(10**15 + secrets.randbelow(9 * 10**15)),
        modules=settings.modules,
        events=settings.events,
        token=token,
        url_key=url_key,
        notify_url=notify_url_with_key(settings.webhook_public_url, url_key),
        expiry=current.expiry if current else None,
    )


def _channel_body(record: ChannelRecord, expiry: dt.datetime) -> dict[str, t.Any]:
    return {
        "channel_id": record.channel_id,
        "events": list(record.events),
        "channel_expiry": format_zoho_time(expiry),
        "token": record.token,
        "notify_url": record.notify_url,
        "notify_on_related_action": False,
    }


# -- Zoho calls ---------------------------------------------------------------------------


def _remote(request: CrmRequest, channel_id: str) -> list[dict[str, t.Any]]:
    """Zoho's GET view of a channel: one item per module, empty if Zoho does not know it."""
    response = request("GET", WATCH_PATH, params={"channel_id": channel_id})
    try:
        items = _watch_items(response, f"reading channel {channel_id}")
    except ChannelError as exc:
        if exc.code in _UNKNOWN_ON_READ_CODES:
            return []
        raise
    return [i for i in items if str(i.get("channel_id")) == channel_id]


def _send(
    request: CrmRequest,
    method: str,
    record: ChannelRecord,
    expiry: dt.datetime,
    what: str,
) -> dt.datetime:
    """POST/PUT/PATCH the channel and return the expiry Zoho granted."""
    if method == "PATCH":
        body: dict[str, t.Any] = {
            "channel_id": record.channel_id,
            "events": list(record.events),
            "channel_expiry": format_zoho_time(expiry),
        }
    else:
        body = _channel_body(record, expiry)
    items = _watch_items(request(method, WATCH_PATH, json={"watch": [body]}), what)
    granted = _granted_expiry(items)
    if granted is None:
        granted = _granted_expiry(_remote(request, record.channel_id))
    if granted is None:
        msg = f"Zoho did not tell the expiry it granted channel {record.channel_id}"
        raise ChannelError(msg)
    if granted < expiry - _EXPIRY_SLACK:
        LOGGER.warning(
            "Zoho granted channel %s an expiry of %s, shorter than the %s asked for "
            "(Zoho silently gives one hour when a request exceeds its maximum)",
            record.channel_id,
            format_zoho_time(granted),
            format_zoho_time(expiry),
        )
    return granted


def ensure_channel(
    request: CrmRequest,
    store: EventStore,
    settings: ChannelSettings,
    *,
    now: dt.datetime | None = None,
    force_renew: bool = False,
) -> ChannelResult:
    """Make sure the channel exists at Zoho and lives long enough; record it in the store.

    Subscribes a new channel, re-enables one Zoho lost or let expire, replaces one whose
    events or URL changed, or renews (PATCH ``channel_expiry``) one with less than
    ``channel_renew_before_hours`` left (always, with ``force_renew``).
    """
    now = utc_now() if now is None else as_utc(now)
    wanted_expiry = now + dt.timedelta(hours=settings.channel_expiry_hours)
    current = _registered(store, settings.channel_id)
    record = _desired(settings, current)

    if current is None:
        return _enable(
            request, store, record, wanted_expiry, action="subscribed", reason="no channel existed"
        )
    remote = _remote(request, record.channel_id)
    zoho_expiry = _granted_expiry(remote)
    if not remote or zoho_expiry is None or zoho_expiry <= now:
        reason = "Zoho no longer knew the channel" if not remote else "the channel had expired"
        return _enable(request, store, record, wanted_expiry, action="reenabled", reason=reason)
    if _changed(remote, record) or record != dataclasses.replace(current, updated_at=None):
        what = f"updating channel {record.channel_id}"
        granted = _send(request, "PUT", record, wanted_expiry, what)
        return _stored(store, record, granted, "updated", "events, URL or token changed")
    if force_renew or zoho_expiry - now < dt.timedelta(hours=settings.channel_renew_before_hours):
        return _renew(request, store, record, wanted_expiry)
    return _stored(store, record, zoho_expiry, "current", None)


def _changed(remote: list[dict[str, t.Any]], record: ChannelRecord) -> bool:
    """Does Zoho's view differ from the record in events, notify_url or token?"""
    events = {e for item in remote for e in item.get("events") or []}
    urls = {item.get("notify_url") for item in remote if "notify_url" in item}
    tokens = {item.get("token") for item in remote if "token" in item}
    return (
        events != set(record.events)
        or bool(urls and urls != {record.notify_url})
        or bool(tokens and tokens != {record.token})
    )


def _enable(
    request: CrmRequest,
    store: EventStore,
    record: ChannelRecord,
    expiry: dt.datetime,
    *,
    action: str,
    reason: str,
) -> ChannelResult:
    granted = _send(request, "POST", record, expiry, f"enabling channel {record.channel_id}")
    return _stored(store, record, granted, action, reason)


def _renew(
    request: CrmRequest, store: EventStore, record: ChannelRecord, expiry: dt.datetime
) -> ChannelResult:
    try:
        what = f"renewing channel {record.channel_id}"
        granted = _send(request, "PATCH", record, expiry, what)
    except ChannelError as exc:
        # Zoho may drop the channel between our GET and PATCH; enabling it again is the fix.
        if exc.code not in _UNKNOWN_CHANNEL_CODES:
            raise
        return _enable(
            request, store, record, expiry, action="reenabled", reason="the channel lapsed"
        )
    return _stored(store, record, granted, "renewed", None)


def _stored(
    store: EventStore,
    record: ChannelRecord,
    expiry: dt.datetime,
    action: str,
    gap_reason: str | None,
) -> ChannelResult:
    stored = store.put_channel(dataclasses.replace(record, expiry=expiry))
    LOGGER.info(
        "Channel %s %s for %s until %s%s",
        record.channel_id,
        action,
        ", ".join(record.modules),
        format_zoho_time(expiry),
        f" (possible gap: {gap_reason})" if gap_reason else "",
    )
    return ChannelResult(stored, action, gap_reason is not None, gap_reason)


def status(request: CrmRequest, store: EventStore, channel_id: str | None = None) -> ChannelStatus:
    """Compare the registered channel with what Zoho reports for it."""
    record = _registered(store, channel_id)
    if record is None and channel_id is None:
        msg = "no channel is registered; run: tap-zoho-crm-webhook channel subscribe"
        raise ChannelError(msg)
    wanted_id = record.channel_id if record else t.cast("str", channel_id)
    remote = _remote(request, wanted_id)
    return ChannelStatus(
        channel_id=wanted_id,
        registered=record is not None,
        known_to_zoho=bool(remote),
        modules=record.modules if record else (),
        events=tuple(sorted({e for i in remote for e in i.get("events") or []})),
        expiry=record.expiry if record else None,
        zoho_expiry=_granted_expiry(remote),
    )


def unsubscribe(
    request: CrmRequest, store: EventStore, channel_id: str | None = None
) -> ChannelRecord:
    """Disable the channel at Zoho and forget it; a channel Zoho already lost is fine."""
    record = _registered(store, channel_id)
    if record is None:
        raise ChannelError("no channel is registered, nothing to unsubscribe")
    response = request("DELETE", WATCH_PATH, params={"channel_ids": record.channel_id})
    try:
        _watch_items(response, f"disabling channel {record.channel_id}")
    except ChannelError as exc:
        if exc.code not in _UNKNOWN_CHANNEL_CODES:
            raise
        LOGGER.info("Channel %s was already unknown to Zoho", record.channel_id)
    store.delete_channel(record.channel_id)
    LOGGER.info("Channel %s unsubscribed", record.channel_id)
    return record


def client_request(client: ZohoClient) -> CrmRequest:
    """Adapt the tap's ``ZohoClient`` (retries, token refresh) to ``CrmRequest``.

    The client raises on HTTP 400 and above; the error is turned back into Zoho's error body
    so ``watch[]`` failures read the same whichever way Zoho sends them.
    """
    from tap_zoho_crm.errors import ZohoAPIError  # noqa: PLC0415 - keep channel.py light

    def send(
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: t.Any = None,
    ) -> CrmResponse:
        try:
            response = client.request(method, path, params=params, json_body=json)
        except ZohoAPIError as exc:
            body = {
                "code": exc.code,
                "message": exc.message,
                "details": exc.details,
                "status": "error",
            }
            return CrmResponse(exc.status, body)
        payload = response.json() if response.content else None
        return CrmResponse(response.status_code, payload)

    return send
