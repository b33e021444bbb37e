"""Delay from an edit in Zoho to the edited row in PostgreSQL, with a one-minute schedule.

    make bench-latency    # or: .venv/bin/python bench/latency.py --minutes 5 --edits 5

Starts the emulator, the webhook receiver and the repository's Meltano project pointed at
both, then behaves like cron `* * * * *` (meltano.yml's `zoho-crm-every-minute` schedule):
`meltano run tap-zoho-crm target-postgres` starts at the top of every minute, unless the
previous run is still going (as `flock -n` in a crontab would). The first run is the full
load. During the next `--minutes` minutes, `--edits` admin edits happen at random moments;
each writes a unique marker into a lead, and the table is polled until the marker shows.
Prints each edit's delay and the min/median/max.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration import harness  # noqa: E402

POLL_SECONDS = 0.25
RUN_TIMEOUT_SECONDS = 300


@dataclass
class Edit:
    """One admin edit: which lead, the marker written, when, and when it became visible."""

    record_id: str
    marker: str
    at: float
    seen: float | None = None


class Cron:
    """Starts `meltano run` at every minute boundary, never two at once."""

    def __init__(self, project: harness.MeltanoProject) -> None:
        self.project = project
        self.env = {**os.environ, **project.env, **harness.private_sys_dir(project.workdir)}
        self.current: subprocess.Popen[bytes] | None = None
        self.log_path = project.workdir / "meltano-run.log"
        self.durations: list[float] = []
        self.runs = 0
        self.skipped = 0
        self.next_tick = next_minute(time.time())
        self.started_at = 0.0

    def tick(self) -> None:
        """Start a run if a minute boundary has passed; reap a finished one."""
        self.reap()
        if time.time() < self.next_tick:
            return
        self.next_tick = next_minute(time.time())
        if self.current is not None:
            self.skipped += 1
            return
        self.current = self.start_run()
        self.started_at = time.monotonic()
        self.runs += 1

    def start_run(self) -> subprocess.Popen[bytes]:
        """`meltano run`, its output to a log file so that no pipe can fill up and stall it."""
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [str(harness.BIN / "meltano"), "run", "tap-zoho-crm", "target-postgres"],
                cwd=harness.REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def reap(self) -> None:
        run = self.current
        if run is None:
            return
        if run.poll() is None:
            if time.monotonic() - self.started_at > RUN_TIMEOUT_SECONDS:
                run.kill()
                sys.exit(f"a meltano run took longer than {RUN_TIMEOUT_SECONDS} s")
            return
        self.current = None
        self.durations.append(time.monotonic() - self.started_at)
        if run.returncode != 0:
            log = self.log_path.read_text(errors="replace")
            sys.exit(f"meltano run failed ({run.returncode}):\n{log[-4000:]}")

    def wait_idle(self) -> None:
        while self.current is not None:
            time.sleep(POLL_SECONDS)
            self.reap()


def next_minute(now: float) -> float:
    """The next wall-clock second that is a multiple of 60 (cron's tick)."""
    return (int(now) // 60 + 1) * 60.0


def main() -> int:
    """Set everything up, run the schedule, print the delays."""
    options = parse_args()
    harness.ensure_database()
    schema = "bench_latency_" + os.urandom(4).hex()
    emulator = harness.Emulator(leads=options.leads, page_size=200_000, job_seconds=1)
    try:
        with tempfile.TemporaryDirectory(prefix="tzc-bench-latency-") as scratch:
            edits = run_schedule(emulator, Path(scratch), schema, options)
    finally:
        emulator.stop()
        harness.drop_schema(schema)
    report(edits)
    return 0 if all(edit.seen for edit in edits) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5, help="how long edits are made")
    parser.add_argument("--edits", type=int, default=5, help="edits at random moments")
    parser.add_argument("--leads", type=int, default=2000, help="leads in the emulator")
    parser.add_argument("--seed", type=int, default=None, help="seed for the edit moments")
    return parser.parse_args()


def run_schedule(
    emulator: harness.Emulator, scratch: Path, schema: str, options: argparse.Namespace
) -> list[Edit]:
    """Full load first; then edits at random moments while cron runs every minute."""
    receiver = harness.Receiver(f"sqlite:///{scratch}/events.sqlite3")
    try:
        project = harness.MeltanoProject(scratch, schema, emulator.url, receiver.notify_url)
        print(f"full load of {options.leads:,} leads ...", flush=True)
        started = time.monotonic()
        project.run(env=harness.private_sys_dir(scratch))
        print(f"full load done in {time.monotonic() - started:.1f} s", flush=True)
        cron = Cron(project)
        rng = random.Random(options.seed)
        window = options.minutes * 60
        offsets = sorted(rng.uniform(0, window) for _ in range(options.edits))
        leads = rng.sample([rec["id"] for rec in emulator.truth()], options.edits)
        edits = drive(cron, emulator, schema, list(zip(offsets, leads, strict=True)), window)
        cron.wait_idle()
        print(
            f"{cron.runs} scheduled runs of {statistics.median(cron.durations or [0]):.1f} s "
            f"(median), {cron.skipped} ticks skipped while a run was busy"
        )
        return edits
    finally:
        receiver.stop()


def drive(
    cron: Cron,
    emulator: harness.Emulator,
    schema: str,
    plan: list[tuple[float, str]],
    window: float,
) -> list[Edit]:
    """Make the planned edits and poll until each is visible or the deadline passes."""
    start = time.time()
    deadline = start + window + 3 * 60
    edits: list[Edit] = []
    with psycopg.connect(harness.pg_url(), autocommit=True) as conn:
        while time.time() < deadline:
            cron.tick()
            now = time.time()
            while plan and now - start >= plan[0][0]:
                _, record_id = plan.pop(0)
                edits.append(make_edit(emulator, record_id))
            for edit in edits:
                if edit.seen is None and visible(conn, schema, edit):
                    edit.seen = time.time()
                    print(
                        f"edit of {edit.record_id} at {clock(edit.at)} visible after "
                        f"{edit.seen - edit.at:.1f} s",
                        flush=True,
                    )
            if not plan and all(edit.seen for edit in edits):
                break
            time.sleep(POLL_SECONDS)
    return edits


def make_edit(emulator: harness.Emulator, record_id: str) -> Edit:
    marker = "bench-" + os.urandom(6).hex()
    at = time.time()
    emulator.admin("PATCH", f"modules/Leads/records/{record_id}", json={"Last_Name": marker})
    return Edit(record_id, marker, at)


def visible(conn: psycopg.Connection[tuple[object, ...]], schema: str, edit: Edit) -> bool:
    """The marker is in the loaded row (the table may not exist before the first load)."""
    try:
        row = conn.execute(
            f'SELECT "Last_Name" FROM "{schema}"."Leads" WHERE id = %s', (edit.record_id,)
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        return False
    return bool(row and row[0] == edit.marker)


def clock(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment).strftime("%H:%M:%S")


def report(edits: list[Edit]) -> None:
    delays = [edit.seen - edit.at for edit in edits if edit.seen is not None]
    missing = len(edits) - len(delays)
    print(f"\nEdit to row in PostgreSQL, one-minute schedule, {len(edits)} edits:")
    if delays:
        print(
            f"  min {min(delays):.1f} s   median {statistics.median(delays):.1f} s   "
            f"max {max(delays):.1f} s"
        )
    if missing:
        print(f"  {missing} edits never became visible")


if __name__ == "__main__":
    sys.exit(main())
