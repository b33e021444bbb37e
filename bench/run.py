"""Throughput and memory of a 200,000-lead full load, against the bundled emulator.

    make bench            # or: .venv/bin/python bench/run.py --leads 200000 --repeat 3

Prints, per run and as medians: the tap alone writing to /dev/null (rows/s over its whole
wall clock and over its emit phase, peak RSS), target-postgres alone loading the tap's
captured output with the loader settings of meltano.yml, and the whole `meltano run`; then
the ratios the targets are stated in (see bench/README.md).

Every run uses the polling settings of meltano.yml, as a user's run would. The wait for the
Bulk Read export is Zoho's time, not the pipeline's: it is read from the tap's own log
("Bulk Read job ... completed in S s") and reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration import harness  # noqa: E402

TARGET = REPO / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"
TAP_ROWS_PER_S_TARGET = 20_000
TAP_PEAK_MB_TARGET = 100
MELTANO_VS_TARGET_TARGET = 0.8
JOB_WAIT = re.compile(r"Bulk Read job \S+ completed in ([\d.]+) s")
EMITTED = re.compile(r"page \d+ emitted: (\d+) rows in ([\d.]+) s")


@dataclass
class Results:
    """Every measurement of one benchmark, one list entry per repetition."""

    tap_wall: list[float] = field(default_factory=list)
    tap_emit: list[float] = field(default_factory=list)
    tap_mb: list[float] = field(default_factory=list)
    tap_cpu: list[float] = field(default_factory=list)
    tap_wait: list[float] = field(default_factory=list)
    target: list[float] = field(default_factory=list)
    target_mb: list[float] = field(default_factory=list)
    meltano_wall: list[float] = field(default_factory=list)
    meltano_net: list[float] = field(default_factory=list)
    meltano_wait: list[float] = field(default_factory=list)


def main() -> int:
    """Run every measurement and print a summary."""
    options = parse_args()
    harness.ensure_database()
    emulator = harness.Emulator(
        leads=options.leads, page_size=options.page_size, job_seconds=options.job_seconds
    )
    try:
        with tempfile.TemporaryDirectory(prefix="tzc-bench-") as scratch:
            results = measure_all(emulator, Path(scratch), options)
    finally:
        emulator.stop()
    report(results, options.leads)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=200_000)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args()


def measure_all(emulator: harness.Emulator, scratch: Path, options: argparse.Namespace) -> Results:
    """Tap alone (first run captured), then target alone on the capture, then meltano run."""
    config = write_tap_config(scratch, emulator.url)
    captured = scratch / "tap-output.singer"
    results = Results()
    for attempt in range(options.repeat):
        sink = captured if attempt == 0 else Path(os.devnull)
        measure_tap(config, sink, options.leads, results)
    for _ in range(options.repeat):
        in_fresh_schema(lambda schema: measure_target(scratch, captured, schema, results))
    for _ in range(options.repeat):
        in_fresh_schema(lambda schema: measure_meltano(scratch, emulator, schema, results))
    return results


def measure_tap(config: Path, sink: Path, leads: int, results: Results) -> None:
    """The tap alone, its RECORDs written to ``sink``."""
    args = [str(harness.BIN / "tap-zoho-crm"), "--config", str(config)]
    run = run_measured(args, sink)
    wall, peak_mb, cpu, log = run.seconds, run.peak_mb, run.cpu_seconds, run.log
    wait, emit_rows, emit_s = tap_phases(log)
    check_rows(emit_rows, leads, "the tap")
    results.tap_cpu.append(leads / cpu)
    results.tap_wall.append(leads / wall)
    results.tap_emit.append(emit_rows / emit_s)
    results.tap_mb.append(peak_mb)
    results.tap_wait.append(wait)
    print(
        f"tap alone: {leads / wall:,.0f} rows/s wall ({wall:.1f} s, of which {wait:.1f} s "
        f"waiting for the export), {emit_rows / emit_s:,.0f} rows/s emitting, "
        f"peak {peak_mb:.0f} MB, {leads / cpu:,.0f} rows per CPU second",
        flush=True,
    )


def write_tap_config(scratch: Path, url: str) -> Path:
    """The tap's settings as meltano.yml's dev environment gives them (default polling)."""
    path = scratch / "tap-config.json"
    path.write_text(
        json.dumps(
            {
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "refresh_token": "emulator-refresh",
                "accounts_url": url,
                "modules": ["Leads"],
                "event_store_url": f"sqlite:///{scratch}/events.sqlite3",
            }
        )
    )
    return path


@dataclass(frozen=True)
class Measured:
    """One finished process: wall seconds, peak RSS, user+system CPU seconds, its stderr."""

    seconds: float
    peak_mb: float
    cpu_seconds: float
    log: str


def run_measured(args: list[str], stdout_path: Path, **popen: t.Any) -> Measured:
    """Run a command to its end and measure that one process (not its children)."""
    with tempfile.TemporaryFile("w+") as err, stdout_path.open("wb") as sink:
        started = time.monotonic()
        proc = subprocess.Popen(args, stdout=sink, stderr=err, **popen)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        err.seek(0)
        log = err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{args[0]} failed:\n{log[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(seconds, usage.ru_maxrss / 1024, cpu, log)


def tap_phases(log: str) -> tuple[float, int, float]:
    """Seconds waited for exports, rows emitted and seconds spent emitting, from tap logs."""
    wait = sum(float(found) for found in JOB_WAIT.findall(log))
    pages = EMITTED.findall(log)
    return wait, sum(int(rows) for rows, _ in pages), sum(float(s) for _, s in pages)


def check_rows(rows: int, leads: int, who: str) -> None:
    if rows != leads:
        sys.exit(f"{who} emitted {rows} bulk rows, expected {leads}")


def in_fresh_schema(action: Callable[[str], None]) -> None:
    """Run ``action`` against a new schema of the test database, dropped afterwards."""
    schema = "bench_" + os.urandom(4).hex()
    try:
        action(schema)
    finally:
        harness.drop_schema(schema)


def target_config(scratch: Path, schema: str) -> Path:
    """The loader settings of meltano.yml, pointed at the benchmark schema."""
    path = scratch / "target-config.json"
    path.write_text(
        json.dumps(
            {
                "sqlalchemy_url": harness.pg_sqlalchemy_url(),
                "default_target_schema": schema,
                "use_copy": True,
                "validate_records": False,
                "add_record_metadata": True,
                "batch_size_rows": loader_batch_size(),
            }
        )
    )
    return path


def loader_batch_size() -> int:
    """batch_size_rows as meltano.yml sets it, so both runs load in the same batches."""
    found = re.search(r"^\s+batch_size_rows:\s*(\d+)", (REPO / "meltano.yml").read_text(), re.M)
    return int(found.group(1)) if found else 10_000


def measure_target(scratch: Path, captured: Path, schema: str, results: Results) -> None:
    """target-postgres alone, reading the captured tap output."""
    args = [str(TARGET), "--config", str(target_config(scratch, schema))]
    with captured.open("rb") as source:
        run = run_measured(args, Path(os.devnull), stdin=source, env={**os.environ, "PGTZ": "UTC"})
    seconds, peak_mb = run.seconds, run.peak_mb
    leads = assert_loaded(schema)
    results.target.append(leads / seconds)
    results.target_mb.append(peak_mb)
    print(
        f"target-postgres alone: {leads / seconds:,.0f} rows/s ({seconds:.1f} s), "
        f"peak {peak_mb:.0f} MB",
        flush=True,
    )


def measure_meltano(
    scratch: Path, emulator: harness.Emulator, schema: str, results: Results
) -> None:
    """``meltano run tap-zoho-crm target-postgres`` in the repository's project."""
    workdir = scratch / schema
    workdir.mkdir()
    project = harness.MeltanoProject(workdir, schema, emulator.url)
    env = harness.private_sys_dir(workdir)
    started = time.monotonic()
    done = project.run(env=env)
    seconds = time.monotonic() - started
    leads = assert_loaded(schema)
    wait, emit_rows, _ = tap_phases(done.stderr)
    check_rows(emit_rows, leads, "meltano run")
    results.meltano_wall.append(leads / seconds)
    results.meltano_net.append(leads / (seconds - wait))
    results.meltano_wait.append(wait)
    print(
        f"meltano run: {leads / seconds:,.0f} rows/s wall ({seconds:.1f} s), "
        f"{leads / (seconds - wait):,.0f} rows/s without the {wait:.1f} s export wait",
        flush=True,
    )


def assert_loaded(schema: str) -> int:
    """The number of rows loaded into the schema's Leads table; none is an error."""
    with psycopg.connect(harness.pg_url()) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}"."Leads"').fetchone()
    if not row or row[0] == 0:
        sys.exit(f"nothing was loaded into {schema}")
    return int(row[0])


def report(results: Results, leads: int) -> None:
    med = statistics.median
    tap, emit, peak = med(results.tap_wall), med(results.tap_emit), med(results.tap_mb)
    target, net = med(results.target), med(results.meltano_net)
    wall = med(results.meltano_wall)
    print(f"\nMedians over {len(results.tap_wall)} runs of {leads:,} leads:")
    print(
        f"  tap alone, wall        {tap:>9,.0f} rows/s   "
        f"(export wait {med(results.tap_wait):.1f} s included)"
    )
    print(
        f"  tap alone, emit phase  {emit:>9,.0f} rows/s   "
        f"{emit / TAP_ROWS_PER_S_TARGET:.2f}x the {TAP_ROWS_PER_S_TARGET:,} target"
    )
    print(
        f"  tap peak memory        {peak:>9,.0f} MB       "
        f"{peak / TAP_PEAK_MB_TARGET:.2f}x the {TAP_PEAK_MB_TARGET} MB ceiling"
    )
    print(
        f"  target alone           {target:>9,.0f} rows/s   peak {med(results.target_mb):,.0f} MB"
    )
    print(f"  meltano run, wall      {wall:>9,.0f} rows/s   {wall / target:.2f}x the target alone")
    print(
        f"  meltano run, net       {net:>9,.0f} rows/s   "
        f"{net / target:.2f}x the target alone (goal {MELTANO_VS_TARGET_TARGET}; "
        f"export wait {med(results.meltano_wait):.1f} s left out)"
    )


if __name__ == "__main__":
    sys.exit(main())
