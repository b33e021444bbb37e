"""Notification channels and the callbacks Zoho POSTs to their `notify_url`.

Changes are batched per (channel, module, operation): the first change opens a batch, and
the batch is sent `callback_batch_ms` later (real time) or as soon as it holds 100 ids.
Bodies are POSTed from worker threads with a short timeout, never on the admin call's
thread. Delivery is at most once: a failed POST is counted and forgotten, like Zoho, which
documents no retries. Only channels live (unexpired on the emulator clock) when the change
happens receive it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .state import State

log = logging.getLogger(__name__)

MAX_IDS = 100
POST_TIMEOUT_SECONDS = 2.0
# How long the `delay_callbacks` fault holds a callback back unless it says `seconds`.
DELAY_SECONDS = 1.0
EVENT_OF = {"insert": "create", "update": "edit", "delete": "delete"}


@dataclass
class Channel:
    """A subscribed channel; `expiry` is epoch seconds on the emulator clock."""

    channel_id: str
    events: list[str]
    notify_url: str
    expiry: float
    token: str | None = None
    notify_on_related_action: bool = True
    return_affected_field_values: bool = False

    def modules(self) -> list[str]:
        """Modules the channel listens to, in the order first named."""
        return list(dict.fromkeys(e.split(".", 1)[0] for e in self.events))

    def wants(self, module: str, operation: str) -> bool:
        """True when the channel subscribed to this module's operation (or `all`)."""
        return f"{module}.{EVENT_OF[operation]}" in self.events or f"{module}.all" in self.events


@dataclass
class _Batch:
    channel: Channel
    module: str
    operation: str
    opened: float
    changes: dict[str, tuple[list[str], dict[str, Any]]] = field(default_factory=dict)


class Notifier:
    """Channel registry plus the batching sender; one per emulator."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.channels: dict[str, Channel] = {}
        self._batches: dict[tuple[str, str, str], _Batch] = {}
        self._ready: list[_Batch] = []
        self._in_flight = 0  # batches handed to a sender and not yet delivered
        self._wake = threading.Condition()
        self._stop = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="zoho-callback")
        self._thread = threading.Thread(target=self._run, name="zoho-notifier", daemon=True)
        self._thread.start()

    # -- registry ---------------------------------------------------------------------

    def live(self) -> dict[str, Channel]:
        """Channels whose expiry has not passed; lapsed ones are forgotten here."""
        now = self.state.now()
        for channel_id in [c for c, ch in self.channels.items() if ch.expiry <= now]:
            log.info("channel %s lapsed", channel_id)
            del self.channels[channel_id]
        return self.channels

    # -- changes ----------------------------------------------------------------------

    def emit(self, module: str, operation: str, record_id: str,
             fields: list[str] | None = None, values: dict[str, Any] | None = None) -> None:
        """Queue one change for every live channel subscribed to it (hold `state.lock`)."""
        targets = [ch for ch in self.live().values() if ch.wants(module, operation)]
        if not targets:
            return
        with self._wake:
            for channel in targets:
                key = (channel.channel_id, module, operation)
                batch = self._batches.get(key)
                if batch is None:
                    batch = _Batch(channel, module, operation, time.monotonic())
                    self._batches[key] = batch
                old_fields, old_values = batch.changes.get(record_id, ([], {}))
                merged = list(dict.fromkeys([*old_fields, *(fields or [])]))
                batch.changes[record_id] = (merged, {**old_values, **(values or {})})
                if len(batch.changes) >= MAX_IDS:
                    self._ready.append(self._batches.pop(key))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._stop:
                    return
                self._collect_due()
                ready, self._ready = self._ready, []
                if not ready:
                    self._wake.wait(timeout=0.02)
                    continue
                self._in_flight += len(ready)
            for batch in ready:
                self._pool.submit(self._deliver, batch)

    def _collect_due(self) -> None:
        window = self.state.config.callback_batch_ms / 1000
        now = time.monotonic()
        for key in [k for k, b in self._batches.items() if now - b.opened >= window]:
            self._ready.append(self._batches.pop(key))

    def flush(self, timeout: float = 5.0, *, delivered: bool = False) -> None:
        """Wait until every open batch has been handed to a sender (tests, shutdown), and
        with ``delivered`` until each was also posted, dropped or failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._wake:
                idle = not self._batches and not self._ready
                if idle and not (delivered and self._in_flight):
                    return
            time.sleep(0.01)

    # -- delivery ---------------------------------------------------------------------

    def _deliver(self, batch: _Batch) -> None:
        try:
            self._deliver_once(batch)
        finally:
            with self._wake:
                self._in_flight -= 1

    def _deliver_once(self, batch: _Batch) -> None:
        body = self._body(batch)
        faults = self.state.faults
        if faults.take("drop_callbacks"):
            self.state.stats.callback("dropped")
            log.debug("callback for channel %s dropped (fault)", batch.channel.channel_id)
            return
        held = faults.take("delay_callbacks")
        if held:
            # Zoho promises no order: later callbacks overtake this one while it waits.
            time.sleep(float(held.options.get("seconds", DELAY_SECONDS)))
        copies = 2 if faults.take("duplicate_callbacks") else 1
        for _ in range(copies):
            self._post(batch.channel, body)

    def _body(self, batch: _Batch) -> dict[str, Any]:
        channel = batch.channel
        query = urlsplit(channel.notify_url).query
        ids = list(batch.changes)
        body: dict[str, Any] = {
            "server_time": int(self.state.now() * 1000),
            "query_params": {k: v[-1] for k, v in parse_qs(query).items()},
            "module": batch.module,
            "resource_uri": f"{self.state.base_url}/crm/v2/{batch.module}",
            "ids": ids,
            "affected_fields": [{i: batch.changes[i][0]} for i in ids]
            if batch.operation == "update" else [],
            "operation": batch.operation,
            "channel_id": channel.channel_id,
        }
        if channel.token is not None:
            body["token"] = channel.token
        if channel.return_affected_field_values and batch.operation == "update":
            body["affected_values"] = [{"record_id": i, "values": batch.changes[i][1]}
                                       for i in ids]
        return body

    def _post(self, channel: Channel, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - the URL the channel subscribed
            channel.notify_url, data=data, method="POST",
            headers={"Content-Type": "application/json"})
        try:
            # The notify URL is whatever the channel registered; callbacks go only there.
            opened = urllib.request.urlopen(request, timeout=POST_TIMEOUT_SECONDS)  # noqa: S310
            with opened as answer:
                answer.read()
            self.state.stats.callback("sent")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.state.stats.callback("failed")
            log.warning("callback to channel %s failed: %s", channel.channel_id,
                        type(exc).__name__)

    def close(self) -> None:
        """Stop the sender; batches still open are dropped."""
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)
