"""Zoho API credits: what each call costs, and the daily budget the tap keeps to.

Zoho counts credits per org over a rolling 24 hours (NOTES 4.1): a Bulk Read job costs 50,
the deleted-records list 2, every other CRM call 1; token calls go to the accounts server
and cost nothing. Only calls that succeed are charged here, as the emulator charges them
(Zoho leaves open whether refused calls cost).

Where the ledger lives: in the event store (table ``zoho_credit_spend``), one row per call,
written as soon as the call succeeded. Not in STATE, because Meltano keeps STATE only once
the target has committed: a run that fails or is killed would forget the credits it spent
and the next run would overspend. The event store is durable per call, shared by every
pipeline and process of the install, and survives an event-store reset (Zoho does not
forget spending when our store does). The budget counts only calls recorded since it was
first set: the ledger is written only while ``daily_credit_budget`` is set.

Exit code: a sync stopped by the budget exits **0**. The stop is the operator's own limit
working as set, the data delivered so far is consistent and bookmarked, and the next
scheduled run continues by itself; a failure code would only make schedulers alert and
retry at once, into the same budget. The WARNING line says how many credits were spent and
from when the next run can continue. This holds from the first call of a sync run: when the
budget is already used up, the run stops during its discovery with the same WARNING, exit 0,
no records and no STATE (Meltano keeps the STATE it has). Only ``--discover`` on its own
exits 1 with the message, as it cannot produce a catalog.

Invariant: ``CreditLedger.check`` is called before every CRM call is sent, so the tap's own
recorded spending in any 24 hours never exceeds the budget.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

from tap_zoho_crm.errors import ZohoError

if t.TYPE_CHECKING:
    from tap_zoho_crm.store import EventStore

LOGGER = logging.getLogger("tap-zoho-crm.credits")

WINDOW = dt.timedelta(hours=24)
BULK_CREATE_COST = 50
DELETED_LIST_COST = 2
DEFAULT_COST = 1


def call_cost(label: str) -> int:
    """Credits a successful call costs, from its endpoint label (``client.endpoint_label``)."""
    method, _, path = label.partition(" ")
    if method == "POST" and path.rstrip("/") == "/crm/bulk/v8/read":
        return BULK_CREATE_COST
    if method == "GET" and path.startswith("/crm/v8/") and path.endswith("/deleted"):
        return DELETED_LIST_COST
    return DEFAULT_COST


class CreditsExhausted(ZohoError):
    """No more calls may be sent now: our budget is used up, or Zoho says the org's is.

    A sync that meets this stops cleanly: every page already emitted has its STATE, and the
    next run resumes from there. ``resume_at`` is when calls may go out again, if known.
    """

    def __init__(self, message: str, *, spent: int, resume_at: dt.datetime | None) -> None:
        self.spent = spent
        self.resume_at = resume_at
        super().__init__(message)


class CreditLedger:
    """Checks each call against ``budget`` and records what successful calls cost."""

    def __init__(
        self,
        store: EventStore,
        budget: int,
        *,
        clock: t.Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.budget = budget
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.spent_this_run = 0

    def check(self, label: str) -> None:
        """Raise ``CreditsExhausted`` if ``label`` would take the last 24 hours past budget."""
        cost = call_cost(label)
        now = self._clock()
        spends = self.store.credits_spent(now - WINDOW)
        spent = sum(credits for _, credits in spends)
        if spent + cost <= self.budget:
            return
        resume_at = _resume_time(spends, spent, cost, self.budget)
        when = _instant(resume_at) if resume_at else "never (the call costs more than it)"
        msg = (
            f"Daily credit budget reached: {spent} of {self.budget} credits spent in the last "
            f"24 hours ({self.spent_this_run} by this run); {label} would cost {cost}. "
            f"The next run can continue from {when}"
        )
        raise CreditsExhausted(msg, spent=spent, resume_at=resume_at)

    def spend(self, label: str) -> None:
        """Record the cost of one successful call."""
        cost = call_cost(label)
        self.store.record_credits(cost, label, self._clock())
        self.spent_this_run += cost


def _resume_time(
    spends: list[tuple[dt.datetime, int]], spent: int, cost: int, budget: int
) -> dt.datetime | None:
    """When enough of today's spending has aged out of the window for a call of ``cost``."""
    if cost > budget:
        return None
    freed = 0
    for spent_at, credits in spends:
        freed += credits
        if spent - freed + cost <= budget:
            return spent_at + WINDOW
    return None


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()
