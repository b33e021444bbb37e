"""A small stand-in for Zoho's token endpoint and ``/crm/v8/actions/watch`` (NOTES 6).

It keeps channels in memory with Zoho's expiry rules: default one hour, at most
``max_expiry``, and a request beyond the maximum silently gets one hour. Expiries are echoed
at offset -05:00, as Zoho echoes them in the org's time zone. ``fail_next`` queues one
wrapped per-item error. ``now`` is the fake's clock; tests pass the same time to the code
under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ACCESS_TOKEN = "fake-access-token"
CLIENT = {"client_id": "fake-client", "client_secret": "fake-secret", "refresh_token": "fake-rt"}
ECHO_ZONE = dt.timezone(dt.timedelta(hours=-5))


@dataclasses.dataclass
class FakeChannel:
    events: list[str]
    notify_url: str
    token: str | None
    expiry: dt.datetime
    notify_on_related_action: bool


class FakeZoho:
    """State and handlers of the fake; ``app`` is the ASGI app to serve."""

    def __init__(self) -> None:
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/oauth/v2/token", self.token, methods=["POST"]),
                Route(
                    "/crm/v8/actions/watch",
                    self.watch,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                ),
            ]
        )

    def reset(self) -> None:
        """Forget every channel, call and queued failure; set the clock back."""
        self.now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
        self.max_expiry = dt.timedelta(days=7)
        self.channels: dict[str, FakeChannel] = {}
        self.calls: list[tuple[str, Any]] = []
        self.failures: list[tuple[str, int, dict[str, Any]]] = []

    def fail_next(self, method: str, status: int, code: str, message: str, **details: Any) -> None:
        """Answer the next ``method`` watch call with one wrapped per-item error."""
        item = {"code": code, "details": details, "message": message, "status": "error"}
        self.failures.append((method, status, item))

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    async def token(self, request: Request) -> JSONResponse:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
        if any(form.get(k) != v for k, v in CLIENT.items()):
            return JSONResponse({"error": "invalid_client"})
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"access_token": ACCESS_TOKEN, "api_domain": base, "expires_in": 3600})

    async def watch(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Zoho-oauthtoken {ACCESS_TOKEN}":
            return JSONResponse({"code": "INVALID_TOKEN", "status": "error"}, 401)
        body: Any = await request.json() if request.method in {"POST", "PUT", "PATCH"} else {}
        self.calls.append((request.method, body or dict(request.query_params)))
        for queued in self.failures:
            if queued[0] == request.method:
                self.failures.remove(queued)
                return JSONResponse({"watch": [queued[2]]}, queued[1])
        if request.method == "GET":
            return self._get(request.query_params.get("channel_id"))
        if request.method == "DELETE":
            return self._delete(request.query_params.get("channel_ids", ""))
        return self._write(request.method, body["watch"][0])

    def _live(self, channel_id: str) -> FakeChannel | None:
        found = self.channels.get(channel_id)
        if found is not None and found.expiry <= self.now:
            del self.channels[channel_id]  # an expired channel is gone
            return None
        return found

    def _granted(self, asked: str | None) -> dt.datetime:
        if asked is None:
            return self.now + dt.timedelta(hours=1)
        wanted = dt.datetime.fromisoformat(asked)
        if wanted - self.now > self.max_expiry:
            return self.now + dt.timedelta(hours=1)  # Zoho's silent fallback
        return wanted

    def _write(self, method: str, item: dict[str, Any]) -> JSONResponse:
        channel_id = str(item["channel_id"])
        current = self._live(channel_id)
        if method == "PATCH" and current is None:
            return _error(400, "NOT_SUBSCRIBED", "the channel is not subscribed")
        if method != "PATCH" and len(item.get("token") or "") > 50:
            return _error(400, "INVALID_DATA", "invalid data", api_name="token")
        expiry = self._granted(item.get("channel_expiry"))
        if method == "PATCH" and current is not None:
            current.expiry = expiry
        else:
            self.channels[channel_id] = FakeChannel(
                events=list(item["events"]),
                notify_url=item["notify_url"],
                token=item.get("token"),
                expiry=expiry,
                notify_on_related_action=item.get("notify_on_related_action", True),
            )
        events = self.channels[channel_id].events
        modules = sorted({e.split(".")[0] for e in events})
        details = [
            {
                "channel_expiry": expiry.astimezone(ECHO_ZONE).isoformat(),
                "resource_name": module,
                "channel_id": channel_id,
            }
            for module in modules
        ]
        status = 201 if method == "POST" else 200
        answer = {"code": "SUCCESS", "status": "success", "details": {"events": details}}
        return JSONResponse({"watch": [answer]}, status)

    def _get(self, channel_id: str | None) -> Response:
        found = self._live(channel_id or "")
        if found is None:
            return Response(status_code=204)
        items = [
            {
                "channel_id": channel_id,
                "events": [e for e in found.events if e.startswith(module + ".")],
                "notify_url": found.notify_url,
                "token": found.token,
                "channel_expiry": found.expiry.astimezone(ECHO_ZONE).isoformat(),
                "resource_name": module,
            }
            for module in sorted({e.split(".")[0] for e in found.events})
        ]
        return JSONResponse({"watch": items, "info": {"count": len(items)}})

    def _delete(self, channel_ids: str) -> JSONResponse:
        items = []
        for channel_id in channel_ids.split(","):
            if self.channels.pop(channel_id, None) is None:
                return _error(400, "NOT_SUBSCRIBED", "the channel is not subscribed")
            items.append({"code": "SUCCESS", "status": "success", "details": {}})
        return JSONResponse({"watch": items})


def _error(status: int, code: str, message: str, **details: Any) -> JSONResponse:
    item = {"code": code, "details": details, "message": message, "status": "error"}
    return JSONResponse({"watch": [item]}, status)
