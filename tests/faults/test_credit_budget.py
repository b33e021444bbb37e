"""``daily_credit_budget``: the tap stops cleanly before a call would pass it, then resumes.

Costs (credits.py, the emulator charges the same): discovery 2, the channel subscription 1,
a Bulk Read job 50, each status poll and download 1. A budget of 125 pays for page 1's job
and page 2's job with their polls, but not page 3's job, created as soon as page 2 completes.
"""

from __future__ import annotations

import datetime as dt
import re

from tap_zoho_crm.store import open_store
from tests.faults.conftest import job_ids, truth_ids

BUDGET_LINE = re.compile(
    r"Daily credit budget reached: (\d+) of (\d+) credits spent in the last 24 hours.*"
    r"POST /crm/bulk/v8/read would cost 50\. The next run can continue from (\S+?\+00:00)"
)


def ledger_total(url: str) -> int:
    with open_store(url) as store:
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=24)
        return sum(credits for _, credits in store.credits_spent(since))


def test_budget_stops_before_a_job_it_cannot_pay_and_the_next_run_resumes(
    start_emulator, tap_for, live_channel
) -> None:
    emulator = start_emulator(300)
    tap = tap_for(emulator)
    channel = live_channel(tap)

    stopped = tap.run(daily_credit_budget=125, **channel)
    spent_first = emulator.stats()["credits_used"]
    jobs_first = len(job_ids(emulator))
    resumed = tap.run(state=stopped.last_state(), daily_credit_budget=260, **channel)

    assert stopped.returncode == 0, stopped.stderr[-3000:]
    found = BUDGET_LINE.search(stopped.stderr)
    assert found, stopped.stderr[-3000:]
    assert int(found[1]) == spent_first
    assert int(found[2]) == 125
    continue_at = dt.datetime.fromisoformat(found[3])
    assert dt.timedelta(hours=23) < continue_at - dt.datetime.now(dt.timezone.utc)
    assert "WARNING" in stopped.stderr.split(found[0])[0].splitlines()[-1]
    # Page 1 is delivered and bookmarked; page 3's job was never created.
    assert len(stopped.records()) == 100
    assert stopped.records_before_last_state() == 100
    assert stopped.last_state()["bookmarks"]["Leads"]["bulk"]["page"] == 2
    assert jobs_first == 2
    assert spent_first <= 125

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(resumed.records()) == 200
    assert set(stopped.latest()) | set(resumed.latest()) == truth_ids(emulator)
    assert len(job_ids(emulator)) == 3
    assert "last_sync_started_at" in resumed.last_state()["bookmarks"]["Leads"]
    # The ledger agrees with what Zoho (the emulator) charged, call for call.
    assert ledger_total(tap.event_store_url) == emulator.stats()["credits_used"]


def test_without_a_budget_nothing_is_recorded_or_refused(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    tap = tap_for(emulator)

    run = tap.run()

    assert run.returncode == 0
    assert len(run.records()) == 300
    assert ledger_total(tap.event_store_url) == 0
