"""Deciding, at the start of a sync, whether Bulk Read must run and over which window.

Webhooks are delivered at most once and channels lapse, so events alone never prove that
nothing was missed. A sync therefore re-reads, with a ``Modified_Time`` window, whenever
events may have been lost or the reconcile interval has passed.

The window starts where the previous catch-up (or full load) started, minus a safety margin,
not where the previous sync started: a dropped callback leaves no trace, so every sync since
the last Bulk Read may have missed a change, and only a window reaching back to that read
finds it again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tap_zoho_crm.changes import format_instant, parse_instant

LAST_SYNC = "last_sync_started_at"
LAST_CATCHUP = "last_catchup_at"
EVENT_SEQ = "event_seq"
STORE_ID = "event_store_id"
BULK = "bulk"


@dataclass(frozen=True)
class Health:
    """What the sync learned about the event path before deciding.

    ``channel_live`` is false when webhooks are not configured, the channel lapsed, or it
    could not be renewed. ``receiver_covered`` is true when a receiver heartbeat covers the
    whole time since the previous sync started.
    """

    channel_live: bool
    receiver_covered: bool
    store_id: str | None
    webhooks_configured: bool = True


@dataclass(frozen=True)
class Window:
    """A Bulk Read over records modified at or after ``start`` (everything when None)."""

    start: dt.datetime | None
    reason: str
    full: bool

    def describe(self) -> str:
        """Say what the window covers, for the log."""
        since = format_instant(self.start) if self.start else "the beginning"
        return f"{'full' if self.full else 'catch-up'} load since {since} ({self.reason})"


def plan_bulk(
    state: dict[str, Any],
    *,
    health: Health,
    now: dt.datetime,
    start_date: dt.datetime | None,
    reconcile_every: dt.timedelta,
    margin: dt.timedelta,
) -> Window | None:
    """Return the window to export, or None when the stored events are enough."""
    last_sync = state.get(LAST_SYNC)
    if not last_sync:
        return Window(start_date, "no earlier sync", full=True)
    reason = _catch_up_reason(state, health=health, now=now, reconcile_every=reconcile_every)
    if reason is None:
        return None
    start = parse_instant(state.get(LAST_CATCHUP) or last_sync) - margin
    if start_date and start < start_date:
        start = start_date
    return Window(start, reason, full=False)


def event_gap(store_id: str | None, health: Health) -> str | None:
    """Why events may be missing since the moment ``health`` was judged from, or None.

    ``store_id`` is the store the events read so far came from.
    """
    if not health.channel_live:
        return "no live notification channel"
    if store_id != health.store_id:
        return "event store is new or was reset"
    if not health.receiver_covered:
        return "webhook receiver was down"
    return None


def _catch_up_reason(
    state: dict[str, Any],
    *,
    health: Health,
    now: dt.datetime,
    reconcile_every: dt.timedelta,
) -> str | None:
    gap = event_gap(state.get(STORE_ID), health)
    if gap:
        return gap
    last_catchup = state.get(LAST_CATCHUP)
    if not last_catchup or now - parse_instant(last_catchup) >= reconcile_every:
        return "reconcile interval passed"
    return None


def committed_event_seq(state: dict[str, Any], store_id: str | None) -> int:
    """Events up to this sequence number are already in the target.

    Numbers from another store mean nothing here: a reset store starts again at zero.
    """
    if state.get(STORE_ID) != store_id:
        return 0
    return int(state.get(EVENT_SEQ) or 0)
