"""A sync with nothing new costs the same few calls for 300 leads as for 3,000.

With a live channel, a receiver that was up the whole time and a catch-up done less than
``reconcile_interval_hours`` ago, a sync has no reason to run Bulk Read: it reads the event
store and asks Zoho only for its token, the module list and the fields (discovery), and
for the channel's details.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.faults.conftest import TapRunner
from tests.integration import harness

# The token, discovery (module list, fields) and one GET of the channel to see it is live;
# nothing grows with the module. Three credits: the token call is free.
NO_CHANGE_CALLS = {"token": 1, "modules": 1, "fields": 1, "watch": 1}


def no_change_sync_calls(  # type: ignore[no-untyped-def]
    start_emulator, workdir: Path, leads: int
) -> dict[str, Any]:
    emulator = start_emulator(leads, page_size=1000, job_seconds=0.2)
    workdir.mkdir()
    tap = TapRunner(workdir, emulator)
    receiver = harness.Receiver(tap.event_store_url)
    # A sync's start is kept to the second; the receiver must be up before that second.
    time.sleep(1.1)
    try:
        first = tap.run(webhook_public_url=receiver.notify_url)
        assert first.returncode == 0, first.stderr[-3000:]
        assert len(first.records()) == leads
        emulator.admin("POST", "stats/reset")

        second = tap.run(state=first.last_state(), webhook_public_url=receiver.notify_url)
    finally:
        receiver.stop()
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.records() == []
    assert "events cover every change since the last sync" in second.stderr
    stats = emulator.stats()
    return {
        "calls": {kind: count for kind, count in stats["calls"].items() if count},
        "credits": stats["credits_used"],
        "jobs": len(stats["jobs"]),
    }


def test_no_change_sync_costs_a_constant_number_of_calls(start_emulator, tmp_path) -> None:
    small = no_change_sync_calls(start_emulator, tmp_path / "small", 300)
    large = no_change_sync_calls(start_emulator, tmp_path / "large", 3000)

    assert small == large
    assert small == {"calls": NO_CHANGE_CALLS, "credits": 3, "jobs": 0}
