"""The webhook receiver: a small Starlette app that stores Zoho callbacks as events.

Invariants:

- A callback is answered 2xx only after its events are committed durably in the store;
  anything that may have stored nothing gets a non-2xx answer so Zoho can send it again.
- A refused callback (4xx) stores nothing. Checks run in this order: JSON media type (415),
  body size (413), JSON with a ``channel_id`` (400), registered channel (404), ``key`` query
  secret (403), ``token`` (401), remaining keys (400), module and operation subscribed by
  the channel (422).
- 503 means the store could not be read or written, and nothing else: Zoho may send a 5xx
  callback again, so a body that can never be stored must get a 4xx. An unexpected error in
  the receiver's own code is answered 500 and logged with its traceback.
- Storing is idempotent, so a repeated callback is answered 200 and adds nothing.
- Blocking store calls run in a worker thread, never on the event loop.
- Neither the token nor the key is ever logged; the server's access log is off because
  request lines carry the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
import typing as t
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from tap_zoho_crm.store.base import DEFAULT_COVERAGE_TOLERANCE, Appended, utc_now
from tap_zoho_crm.webhook._callback import (
    Callback,
    Envelope,
    Rejected,
    authorize,
    check_media_type,
    check_subscribed,
    parse_callback,
    parse_envelope,
)

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from starlette.requests import Request

    from tap_zoho_crm.store.base import EventStore

LOGGER = logging.getLogger("tap_zoho_crm.webhook")

DEFAULT_PATH = "/zoho/notifications"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_HEARTBEAT_SECONDS = 5.0
MAX_HEARTBEAT_SECONDS = DEFAULT_COVERAGE_TOLERANCE.total_seconds() / 3


@dataclasses.dataclass(frozen=True)
class ReceiverConfig:
    """Receiver settings. ``answer_delay_seconds`` is a test hook: it holds every answer
    back after the commit, to simulate a crash between commit and answer."""

    path: str = DEFAULT_PATH
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    answer_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path == "/healthz":
            raise ValueError("webhook_path must start with / and not be /healthz")
        if self.max_body_bytes < 1024:
            raise ValueError("webhook_max_body_bytes must be at least 1024")
        if not 0 < self.heartbeat_seconds <= MAX_HEARTBEAT_SECONDS:
            msg = f"webhook_heartbeat_seconds must be above 0 and at most {MAX_HEARTBEAT_SECONDS}"
            raise ValueError(msg)


class Heartbeat:
    """Tells the store this receiver is up, as one stretch per unbroken run of beats.

    If a beat fails, or beats stop for longer than the coverage tolerance (the store was
    unreachable, the process was frozen), the next good beat starts a new stretch: callbacks
    may have been refused in between, and a sync must see that as a gap.
    """

    def __init__(self, store: EventStore, interval_seconds: float) -> None:
        self.store = store
        self.interval_seconds = interval_seconds
        self.instance_id = uuid.uuid4().hex
        self.started_at = utc_now()
        self.started_monotonic = time.monotonic()
        self._last_ok: dt.datetime | None = None

    def beat(self) -> None:
        """Write one heartbeat (blocking; run it in a thread)."""
        now = utc_now()
        if self._last_ok is None or now - self._last_ok > DEFAULT_COVERAGE_TOLERANCE:
            if self._last_ok is not None:
                LOGGER.warning(
                    "No heartbeat stored for %.0f s; starting a new uptime stretch",
                    (now - self._last_ok).total_seconds(),
                )
            self.started_at = now
        self.store.heartbeat(self.instance_id, self.started_at, now)
        self._last_ok = now

    async def run(self) -> None:
        """Beat every ``interval_seconds`` until cancelled; a failed beat is logged."""
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                await run_in_threadpool(self.beat)
            except Exception as exc:  # keep beating; the gap is recorded
                LOGGER.error("Heartbeat to the event store failed: %s", exc)


class _TooLarge(Exception):
    pass


class _StoreFailed(Exception):
    """A store call raised; the original exception is the cause."""


P = t.ParamSpec("P")
R = t.TypeVar("R")


def _store_call(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call the store, turning whatever it raises into ``_StoreFailed`` (answered 503)."""
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # any driver error means the store is unusable right now
        raise _StoreFailed(f"{type(exc).__name__}: {exc}") from exc


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, stopping as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


class Receiver:
    """Request handlers bound to one store and one config."""

    def __init__(self, store: EventStore, config: ReceiverConfig) -> None:
        self.store = store
        self.config = config
        self.heartbeat = Heartbeat(store, config.heartbeat_seconds)

    def _store(self, envelope: Envelope, url_key: str) -> tuple[Callback, Appended]:
        """Authenticate, check and store one callback (blocking; runs in a thread)."""
        registered = _store_call(self.store.get_channel, envelope.channel_id)
        channel = authorize(envelope, registered, url_key)
        callback = parse_callback(envelope)
        check_subscribed(callback, channel)
        return callback, _store_call(self.store.append_events, callback.events())

    async def notify(self, request: Request) -> JSONResponse:
        """POST handler for Zoho callbacks."""
        try:
            check_media_type(request.headers.get("content-type"))
            raw = await _read_body(request, self.config.max_body_bytes)
            envelope = parse_envelope(raw)
            url_key = request.query_params.get("key", "")
            callback, appended = await run_in_threadpool(self._store, envelope, url_key)
        except _TooLarge:
            LOGGER.warning("Refused a callback: body over %d bytes", self.config.max_body_bytes)
            return JSONResponse({"error": "body too large"}, status_code=413)
        except Rejected as exc:
            LOGGER.warning("Refused a callback (HTTP %d): %s", exc.status, exc.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except _StoreFailed as exc:  # answer 503 so Zoho may retry
            LOGGER.error("Could not store a callback: %s", exc)
            return JSONResponse({"error": "event store unavailable"}, status_code=503)
        except Exception:  # a bug here, not a bad body and not the store
            LOGGER.exception("Receiver error while handling a callback")
            return JSONResponse({"error": "internal error"}, status_code=500)
        self._log(callback, appended)
        if self.config.answer_delay_seconds:
            await asyncio.sleep(self.config.answer_delay_seconds)
        return JSONResponse({"stored": appended.inserted, "ids": len(callback.ids)})

    @staticmethod
    def _log(callback: Callback, appended: Appended) -> None:
        seqs = f"{appended.first_seq}-{appended.last_seq}" if appended.inserted else "none (repeat)"
        LOGGER.info(
            "Callback channel %s: %s %s, %d ids, %d new events, seq %s",
            callback.channel_id,
            callback.module,
            callback.operation,
            len(callback.ids),
            appended.inserted,
            seqs,
        )

    def _health(self) -> dict[str, t.Any]:
        committed = self.store.committed_seq()
        last = self.store.last_event_time()
        return {
            "status": "ok",
            "store_id": self.store.store_id,
            "backlog": self.store.backlog(committed or 0),
            "backlog_after_seq": committed,
            "high_water": self.store.high_water(),
            "last_event_time": last.isoformat() if last else None,
            "uptime_seconds": round(time.monotonic() - self.heartbeat.started_monotonic, 1),
            "instance_id": self.heartbeat.instance_id,
        }

    async def healthz(self, request: Request) -> JSONResponse:
        """GET /healthz: store id, backlog, last event time, uptime (503 if the store fails)."""
        try:
            return JSONResponse(await run_in_threadpool(self._health))
        except Exception as exc:  # a health check reports, never raises
            LOGGER.error("Health check could not read the event store: %s", exc)
            return JSONResponse({"status": "error", "error": "event store unavailable"}, 503)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Beat once before serving, keep beating while serving."""
        await run_in_threadpool(self.heartbeat.beat)
        if self.config.answer_delay_seconds:
            LOGGER.warning(
                "Test hook active: answers are delayed %.1f s after each commit",
                self.config.answer_delay_seconds,
            )
        task = asyncio.create_task(self.heartbeat.run())
        LOGGER.info(
            "Webhook receiver %s up: callbacks at %s, store %s (id %s)",
            self.heartbeat.instance_id,
            self.config.path,
            self.store.url_for_display,
            self.store.store_id,
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_app(store: EventStore, config: ReceiverConfig | None = None) -> Starlette:
    """Build the ASGI app: ``POST {config.path}`` for Zoho and ``GET /healthz``."""
    receiver = Receiver(store, config or ReceiverConfig())
    routes = [
        Route(receiver.config.path, receiver.notify, methods=["POST"]),
        Route("/healthz", receiver.healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=receiver.lifespan)
