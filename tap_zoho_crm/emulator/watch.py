"""`/crm/v8/actions/watch`: enable, details, patch, replace and disable channels.

Errors come back as HTTP 400 with the error object inside `watch[]`, and a request with
several channels is refused whole at its first bad channel *(choice)*. A requested expiry
more than one week ahead silently becomes one hour, as Zoho documents; an expiry in the
past is refused with INVALID_DATA *(choice)*.
"""

from __future__ import annotations

from typing import Any

from ._http import Request, Response
from ._time import parse_iso
from .errors import ZohoError, crm_error, error_object, required_param
from .notify import Channel, Notifier
from .state import State

DEFAULT_SECONDS = 3600
MAX_SECONDS = 7 * 24 * 3600
MAX_TOKEN = 50
OPERATIONS = ("create", "edit", "delete", "all")
WATCHABLE = ("Leads", "Contacts")
MSG_ENABLED = "Successfully subscribed for actions-watch of the given module"
MSG_UPDATED = "Successfully updated the subscribe details"
MSG_REMOVED = "Successfully removed the subscribe details"
MSG_DISABLED = "Successfully un-subscribed from actions-watch"


def _bad(code: str, message: str, position: int, key: str) -> ZohoError:
    details = {"api_name": key, "json_path": f"$.watch[{position}].{key}"}
    return crm_error(400, code, message, details, wrap="watch")


class WatchApi:
    """Handlers for the Notification API of one emulator."""

    def __init__(self, state: State, notifier: Notifier) -> None:
        self.state = state
        self.notifier = notifier

    def enable(self, request: Request) -> Response:
        """POST: subscribe (a known `channel_id` is replaced, which renews it)."""
        items = self._items(request)
        self._refuse_renew(request)
        with self.state.lock:
            channels = [self._channel(item, n, None) for n, item in enumerate(items)]
            for channel in channels:
                self.notifier.channels[channel.channel_id] = channel
        return self._answer(channels, MSG_ENABLED, 201)

    def replace(self, request: Request) -> Response:
        """PUT: replace known channels whole; omitted keys return to their defaults."""
        items = self._items(request)
        self._refuse_renew(request)
        with self.state.lock:
            channels = []
            for n, item in enumerate(items):
                self._existing(item, n)
                channels.append(self._channel(item, n, None))
            for channel in channels:
                self.notifier.channels[channel.channel_id] = channel
        return self._answer(channels, MSG_UPDATED, 200)

    def patch(self, request: Request) -> Response:
        """PATCH: change the given keys; `_delete_events: true` removes the given events."""
        items = self._items(request)
        self._refuse_renew(request)
        removed = any(isinstance(i, dict) and i.get("_delete_events") is True for i in items)
        with self.state.lock:
            channels = [self._patched(item, n) for n, item in enumerate(items)]
            for channel in channels:
                if channel.events:
                    self.notifier.channels[channel.channel_id] = channel
                else:
                    self.notifier.channels.pop(channel.channel_id, None)
        return self._answer(channels, MSG_REMOVED if removed else MSG_UPDATED, 200)

    def details(self, request: Request) -> Response:
        """GET: one entry per (channel, module); 204 when nothing matches."""
        wanted_id = request.query.get("channel_id")
        wanted_module = request.query.get("module")
        with self.state.lock:
            entries = [self._entry(ch, module)
                       for ch in self.notifier.live().values()
                       if wanted_id in (None, ch.channel_id)
                       for module in ch.modules() if wanted_module in (None, module)]
        per_page = int(request.query.get("per_page") or 200)
        page = int(request.query.get("page") or 1)
        return Response.page("watch", entries, page, per_page)

    def disable(self, request: Request) -> Response:
        """DELETE `?channel_ids=a,b`: one answer per (channel, module)."""
        text = request.query.get("channel_ids")
        if not text:
            raise required_param("channel_ids")
        answers, found = [], False
        with self.state.lock:
            live = self.notifier.live()
            for channel_id in [c.strip() for c in text.split(",") if c.strip()]:
                channel = live.pop(channel_id, None)
                if channel is None:
                    answers.append(error_object("NOT_SUBSCRIBED", "not subscribed",
                                                {"channel_id": channel_id}))
                    continue
                found = True
                answers += [{"code": "SUCCESS", "details": {
                    "resource_uri": self._uri(m), "resource_id": self._module_id(m),
                    "channel_id": channel_id}, "message": MSG_DISABLED, "status": "success"}
                    for m in channel.modules()]
        return Response.json({"watch": answers}, 200 if found else 400)

    # -- helpers ----------------------------------------------------------------------

    def _items(self, request: Request) -> list[Any]:
        try:
            body = request.json()
        except ValueError:
            raise crm_error(400, "INVALID_DATA", "body is not JSON", {}) from None
        items = body.get("watch") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise crm_error(400, "MANDATORY_NOT_FOUND", "watch is mandatory",
                            {"api_name": "watch", "json_path": "$.watch"})
        return items

    def _refuse_renew(self, request: Request) -> None:
        if self.state.faults.take("channel_refuse_renew", request.path):
            raise _bad("INVALID_DATA", "the channel cannot be renewed now", 0,
                       "channel_expiry")

    def _existing(self, item: Any, n: int) -> Channel:
        channel_id = str(item.get("channel_id", "")) if isinstance(item, dict) else ""
        if not channel_id:
            raise _bad("MANDATORY_NOT_FOUND", "required field not found", n, "channel_id")
        channel = self.notifier.live().get(channel_id)
        if channel is None:
            raise crm_error(400, "NOT_SUBSCRIBED", "not subscribed",
                            {"channel_id": channel_id}, wrap="watch")
        return channel

    def _patched(self, item: Any, n: int) -> Channel:
        old = self._existing(item, n)
        merged: dict[str, Any] = {"channel_id": old.channel_id, "notify_url": old.notify_url,
                  "token": old.token, "notify_on_related_action": old.notify_on_related_action,
                  "return_affected_field_values": old.return_affected_field_values}
        events = item.get("events")
        if item.get("_delete_events") is True:
            self._check_events(events, n)
            merged["events"] = [e for e in old.events if e not in events]
            return self._channel(merged, n, old.expiry, allow_empty=True)
        merged.update({k: v for k, v in item.items() if k != "events"})
        if events is not None:
            self._check_events(events, n)
        merged["events"] = list(dict.fromkeys([*old.events, *(events or [])]))
        keep = None if "channel_expiry" in item else old.expiry
        return self._channel(merged, n, keep)

    def _channel(self, item: Any, n: int, keep_expiry: float | None,
                 allow_empty: bool = False) -> Channel:
        if not isinstance(item, dict):
            raise _bad("INVALID_DATA", "invalid data", n, "watch")
        for key in ("channel_id", "events", "notify_url"):
            if item.get(key) in (None, "", []) and not (allow_empty and key == "events"):
                raise _bad("MANDATORY_NOT_FOUND", "required field not found", n, key)
        channel_id = item["channel_id"]
        if isinstance(channel_id, bool) or not str(channel_id).isdigit():
            raise _bad("INVALID_DATA", "invalid data", n, "channel_id")
        if not allow_empty:
            self._check_events(item["events"], n)
        url = item["notify_url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _bad("INVALID_DATA", "invalid data", n, "notify_url")
        token = item.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN):
            raise _bad("INVALID_DATA", "invalid data", n, "token")
        expiry = keep_expiry if keep_expiry is not None else self._expiry(item, n)
        return Channel(str(channel_id), list(item["events"]), url, expiry, token,
                       _flag(item, "notify_on_related_action", True),
                       _flag(item, "return_affected_field_values", False))

    def _check_events(self, events: Any, n: int) -> None:
        if not isinstance(events, list) or not events:
            raise _bad("INVALID_DATA", "invalid data", n, "events")
        for event in events:
            module, _, operation = str(event).partition(".")
            if module not in WATCHABLE or operation not in OPERATIONS:
                raise _bad("INVALID_DATA", "invalid data", n, "events")

    def _expiry(self, item: dict[str, Any], n: int) -> float:
        now = self.state.now()
        text = item.get("channel_expiry")
        if text is None:
            return now + DEFAULT_SECONDS
        try:
            expiry = parse_iso(text)
        except ValueError:
            raise _bad("INVALID_DATA", "invalid data", n, "channel_expiry") from None
        if expiry <= now:
            raise _bad("INVALID_DATA", "invalid data", n, "channel_expiry")
        # Zoho quirk: asking for more than a week silently gives the 1-hour default.
        return now + DEFAULT_SECONDS if expiry - now > MAX_SECONDS else expiry

    def _answer(self, channels: list[Channel], message: str, status: int) -> Response:
        answers = [{"code": "SUCCESS", "details": {"events": [
            {"channel_expiry": self.state.formatter.iso(ch.expiry),
             "resource_uri": self._uri(m), "resource_id": self._module_id(m),
             "resource_name": m, "channel_id": ch.channel_id} for m in ch.modules()]},
            "message": message, "status": "success"} for ch in channels]
        return Response.json({"watch": answers}, status)

    def _entry(self, channel: Channel, module: str) -> dict[str, Any]:
        return {"notify_on_related_action": channel.notify_on_related_action,
                "channel_expiry": self.state.formatter.iso(channel.expiry),
                "return_affected_field_values": channel.return_affected_field_values,
                "resource_uri": self._uri(module), "resource_id": self._module_id(module),
                "notify_url": channel.notify_url, "resource_name": module, "fields": None,
                "notification_condition": None, "channel_id": channel.channel_id,
                "events": [e for e in channel.events if e.startswith(f"{module}.")],
                "token": channel.token}

    def _uri(self, module: str) -> str:
        return f"{self.state.base_url}/crm/v8/{module}"

    def _module_id(self, module: str) -> str:
        return self.state.modules[module].id


def _flag(item: dict[str, Any], key: str, default: bool) -> bool:
    value = item.get(key)
    return default if value is None else bool(value)
