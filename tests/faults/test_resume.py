"""A load killed during page 2 of 3 resumes at page 2; a stale or refused token starts over.

A live channel and a receiver run throughout: events then cover the changes since the load
began, which is what lets a run continue saved pages rather than export the window again.

300 leads in pages of 100, jobs of 2 s so there is time to kill the tap while page 2's job
runs. The emulator's job list tells which pages each run asked for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import RunningTap, TapRunner, job_ids, truth_ids, wait_for
from tests.integration import harness

JOB_SECONDS = 2.0
PAGE_TWO_NEXT = re.compile(r'"page":\s*2\b')


def page_one_delivered(emulator: harness.Emulator) -> bool:
    """Page 1 is downloaded while page 2's job still runs."""
    stats = emulator.stats()
    jobs = stats["jobs"]
    downloaded = {d["job_id"] for d in stats["downloads"] if d["status"] == 200}
    return len(jobs) == 2 and jobs[0]["id"] in downloaded and jobs[1]["state"] != "COMPLETED"


def wait_for_page_two_polls(emulator: harness.Emulator) -> None:
    """Wait until the tap polls page 2's job after page 1's download.

    Under Meltano the tap's stdout is out of sight; the tap polls page 2's job only after
    page 1's rows and STATE are written, so a poll after the download proves them out
    (killing the tap while it writes a RECORD would tear the line and fail the target).
    Jobs take twice as long here so the job's second poll still finds it running.
    """
    wait_for(lambda: page_one_delivered(emulator), what="page 1 delivered")
    polls = emulator.stats()["calls"]["bulk_status"]
    wait_for(lambda: emulator.stats()["calls"]["bulk_status"] > polls, what="a poll of job 2")


def kill_during_page_two(emulator: harness.Emulator, tap: RunningTap) -> dict[str, Any]:
    """SIGKILL the tap once page 1's STATE is out; return that STATE."""
    wait_for(lambda: page_one_delivered(emulator), what="page 1 delivered")
    wait_for(lambda: PAGE_TWO_NEXT.search(tap.stdout_path.read_text()), what="page 1 STATE")
    run = tap.kill()
    assert run.returncode == -signal.SIGKILL
    assert emulator.stats()["jobs"][1]["state"] != "COMPLETED"
    state = run.last_state()
    assert state["bookmarks"]["Leads"]["bulk"]["page"] == 2
    return state


def first_pages(emulator: harness.Emulator, since: int) -> list[int]:
    """Page numbers of the jobs created after the first ``since`` jobs."""
    return [job["query"].get("page", 1) for job in emulator.stats()["jobs"][since:]]


def session_processes(session_id: int, name: str) -> list[int]:
    """Pids in ``session_id`` whose command line runs ``name`` (a console script)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        session = int(stat.rsplit(")", 1)[1].split()[3])  # state, ppid, pgrp, session
        scripts = [Path(arg.decode()).name for arg in argv[:2] if arg]
        if session == session_id and name in scripts and b"--discover" not in argv:
            found.append(int(entry.name))
    return found


def test_meltano_run_killed_during_page_two_resumes_at_page_two(project_factory, tmp_path) -> None:
    emulator = harness.Emulator(leads=300, page_size=100, job_seconds=2 * JOB_SECONDS)
    receiver = harness.Receiver(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        schema = project_factory(emulator).schema
        project = harness.MeltanoProject(tmp_path, schema, emulator.url, receiver.notify_url)
        time.sleep(1.1)  # the receiver is up before the first sync's start second
        run = project.start_run()
        wait_for_page_two_polls(emulator)
        taps = session_processes(run.pid, "tap-zoho-crm")
        assert len(taps) == 1, taps
        os.kill(taps[0], signal.SIGKILL)
        run.communicate(timeout=300)
        saved = project.state()["singer_state"]["bookmarks"]["Leads"]

        project.run()

        assert run.returncode != 0
        assert saved["bulk"]["page"] == 2
        assert saved["bulk"]["job_id"] == job_ids(emulator)[1]
        # Run 1 made jobs for pages 1 and 2; run 2 reused page 2's and made page 3's.
        assert first_pages(emulator, 0) == [1, 2, 3]
        harness.assert_table_matches(project.schema, emulator)
        assert len(harness.table_rows(project.schema)) == 300
    finally:
        receiver.stop()
        emulator.stop()


def test_without_webhooks_a_killed_load_resumes_and_the_next_sync_catches_up(
    project_factory, tmp_path
) -> None:
    emulator = harness.Emulator(leads=300, page_size=100, job_seconds=2 * JOB_SECONDS)
    try:
        project = project_factory(emulator)
        run = project.start_run()
        wait_for_page_two_polls(emulator)
        os.kill(session_processes(run.pid, "tap-zoho-crm")[0], signal.SIGKILL)
        run.communicate(timeout=300)
        changed = sorted(truth_ids(emulator), key=int)[:2]
        for record_id in changed:  # in page 1, already delivered, no event to tell
            emulator.admin("PATCH", f"modules/Leads/records/{record_id}", json={"City": "Bergen"})

        project.run()

        assert first_pages(emulator, 0) == [1, 2, 3]
        project.run()  # a catch-up from where the interrupted load started

        harness.assert_table_matches(project.schema, emulator)
        rows = harness.table_rows(project.schema)
        assert [rows[record_id]["City"] for record_id in changed] == ["Bergen", "Bergen"]
    finally:
        emulator.stop()


@dataclasses.dataclass
class Interrupted:
    """A direct tap run on a live channel, SIGKILLed during page 2, and its last STATE."""

    emulator: harness.Emulator
    tap: TapRunner
    channel: dict[str, Any]
    state: dict[str, Any]


@pytest.fixture
def interrupted(  # type: ignore[no-untyped-def]
    start_emulator, tap_for, live_channel
) -> Interrupted:
    """The run the page-token tests continue."""
    emulator = start_emulator(300, job_seconds=JOB_SECONDS)
    tap = tap_for(emulator)
    channel = live_channel(tap)
    state = kill_during_page_two(emulator, tap.start(**channel))
    return Interrupted(emulator, tap, channel, state)


def test_a_page_token_older_than_a_day_starts_the_window_again(interrupted: Interrupted) -> None:
    emulator, state = interrupted.emulator, interrupted.state
    bulk = state["bookmarks"]["Leads"]["bulk"]
    issued = dt.datetime.fromisoformat(bulk["page_token_issued_at"])
    bulk["page_token_issued_at"] = (issued - dt.timedelta(hours=25)).isoformat()
    emulator.admin("POST", "clock", json={"advance_seconds": 25 * 3600})

    run = interrupted.tap.run(state=state, **interrupted.channel)

    assert run.returncode == 0, run.stderr[-3000:]
    assert first_pages(emulator, 2) == [1, 2, 3]
    assert set(run.latest()) == truth_ids(emulator)
    assert "bulk" not in run.last_state()["bookmarks"]["Leads"]


def test_a_refused_page_token_starts_the_window_again(interrupted: Interrupted) -> None:
    emulator = interrupted.emulator
    emulator.fault("page_token_expired", times=1)

    run = interrupted.tap.run(state=interrupted.state, **interrupted.channel)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "EXPIRED_VALUE" in run.stderr
    assert "could not continue the load" in run.stderr
    # Page 2's saved job completed, its token was refused, so the window began again.
    assert first_pages(emulator, 2) == [1, 2, 3]
    assert set(run.latest()) == truth_ids(emulator)
    assert len(run.records()) == 300
