"""Call counters, API credits and callback outcomes, as `GET /__admin/stats` shows them.

Credits follow Zoho's published costs where known: a Bulk Read job costs 50, the deleted
records list 2, every other CRM call 1; token calls cost nothing (they go to the accounts
server). Only calls that succeed (2xx, 204, 304) spend credits *(choice)*.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

KINDS = ("token", "modules", "fields", "bulk_create", "bulk_status", "bulk_download",
         "records", "deleted", "watch")
CREDITS = {"bulk_create": 50, "deleted": 2, "token": 0}


class Stats:
    """Counters kept since start or the last reset; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget recorded jobs and downloads."""
        with getattr(self, "_lock", threading.Lock()):
            self.calls: Counter[str] = Counter(dict.fromkeys(KINDS, 0))
            self.errors: Counter[str] = Counter()
            self.credits = 0
            self.callbacks: Counter[str] = Counter({"sent": 0, "dropped": 0, "failed": 0})
            self.job_ids: list[str] = []
            self.downloads: list[dict[str, Any]] = []

    def call(self, kind: str, status: int) -> None:
        """Count one answered call of `kind` and charge its credits when it succeeded."""
        with self._lock:
            self.calls[kind] += 1
            if status < 400:
                self.credits += CREDITS.get(kind, 1)
            else:
                self.errors[kind] += 1

    def job(self, job_id: str) -> None:
        """Remember a created Bulk Read job."""
        with self._lock:
            self.job_ids.append(job_id)

    def download(self, job_id: str, status: int, size: int) -> None:
        """Remember one download attempt."""
        with self._lock:
            self.downloads.append({"job_id": job_id, "status": status, "bytes": size})

    def callback(self, outcome: str) -> None:
        """Count a callback body: `sent`, `dropped` (fault) or `failed` (POST error)."""
        with self._lock:
            self.callbacks[outcome] += 1

    def as_json(self, jobs: list[dict[str, Any]]) -> dict[str, Any]:
        """The stats answer; `jobs` are the recorded jobs' current summaries."""
        with self._lock:
            return {"calls": dict(self.calls), "errors": dict(self.errors),
                    "credits_used": self.credits, "jobs": jobs,
                    "downloads": list(self.downloads), "callbacks": dict(self.callbacks)}
