"""Queued faults: each fires on the next `times` requests it matches, then is gone.

A fault matches a request when its name is the one asked for and the request path starts
with the fault's `path` (any path when absent). `times = -1` keeps it until cleared.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_NAMES = frozenset({
    "http_429", "http_500", "connection_reset", "invalid_token", "bulk_job_failure",
    "bulk_job_stuck", "corrupt_zip", "truncated_zip", "page_token_expired",
    "page_range_exceeded", "channel_refuse_renew", "drop_callbacks", "duplicate_callbacks",
    "delay_callbacks",
})


@dataclass
class Fault:
    """One queued fault; `options` holds extra keys such as `credits_remaining`."""

    name: str
    times: int = 1
    path: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The fault as the admin API shows it."""
        return {"fault": self.name, "times": self.times, "path": self.path, **self.options}


class Faults:
    """The fault queue, safe to use from every request thread."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any]) -> Fault:
        """Queue a fault from an admin body; raises ValueError on an unknown name or bad times."""
        name = body.get("fault")
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(FAULT_NAMES)}")
        times = body.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times == 0 or times < -1:
            raise ValueError("times must be a positive integer or -1")
        path = body.get("path")
        if path is not None and not isinstance(path, str):
            raise ValueError("path must be a string")
        options = {k: v for k, v in body.items() if k not in ("fault", "times", "path")}
        fault = Fault(name, times, path, options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Forget every queued fault."""
        with self._lock:
            self._faults.clear()

    def take(self, name: str, path: str = "") -> Fault | None:
        """Consume one firing of the first matching fault, or return None."""
        with self._lock:
            for fault in self._faults:
                if fault.name != name or (fault.path and not path.startswith(fault.path)):
                    continue
                if fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Queued faults, for the stats answer."""
        with self._lock:
            return [f.as_json() for f in self._faults]
