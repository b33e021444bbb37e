"""Throughput and memory of a 200,000-lead full load, against the bundled emulator.

    make bench            # or: .venv/bin/python bench/run.py --leads 200000 --repeat 3

Prints medians of: the tap alone writing to /dev/null (rows/s, peak RSS), target-postgres
alone loading the tap's captured output with the tuned settings of meltano.yml, and the whole
`meltano run`; then the ratios the targets are stated in (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration import harness  # noqa: E402

TARGET = REPO / ".meltano" / "loaders" / "target-postgres" / "venv" / "bin" / "target-postgres"
TAP_ROWS_PER_S_TARGET = 20_000
TAP_PEAK_MB_TARGET = 100
MELTANO_VS_TARGET_TARGET = 0.8


def main() -> int:
    """Run every measurement and print a summary."""
    options = parse_args()
    harness.ensure_database()
    emulator = harness.Emulator(leads=options.leads, page_size=200_000, job_seconds=0.5)
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
    parser.add_argument("--repeat", type=int, default=3)
    return parser.parse_args()


def measure_all(emulator: harness.Emulator, scratch: Path,
                options: argparse.Namespace) -> dict[str, list[float]]:
    config = write_tap_config(scratch, emulator.url)
    captured = scratch / "tap-output.singer"
    results: dict[str, list[float]] = {"tap": [], "tap_mb": [], "target": [], "meltano": []}
    for attempt in range(options.repeat):
        seconds, peak_mb = run_measured(
            [str(harness.BIN / "tap-zoho-crm"), "--config", str(config)],
            stdout_path=captured if attempt == 0 else Path(os.devnull))
        results["tap"].append(options.leads / seconds)
        results["tap_mb"].append(peak_mb)
        print(f"tap alone: {options.leads / seconds:,.0f} rows/s, peak {peak_mb:.0f} MB")
    for _ in range(options.repeat):
        seconds = timed_in_fresh_schema(lambda schema: run_target(scratch, captured, schema))
        results["target"].append(options.leads / seconds)
        print(f"target-postgres alone: {options.leads / seconds:,.0f} rows/s")
    for _ in range(options.repeat):
        seconds = timed_in_fresh_schema(lambda schema: run_meltano(scratch, emulator, schema))
        results["meltano"].append(options.leads / seconds)
        print(f"meltano run: {options.leads / seconds:,.0f} rows/s")
    return results


def write_tap_config(scratch: Path, url: str) -> Path:
    path = scratch / "tap-config.json"
    path.write_text(json.dumps({
        "client_id": "emulator-client",
        "client_secret": "emulator-secret",
        "refresh_token": "emulator-refresh",
        "accounts_url": url,
        "modules": ["Leads"],
        "bulk_poll_initial_seconds": 0.2,
        "bulk_poll_max_seconds": 1,
        "event_store_url": f"sqlite:///{scratch}/events.sqlite3",
    }))
    return path


def run_measured(args: list[str], stdout_path: Path) -> tuple[float, float]:
    """Run a command; return wall seconds and the peak RSS of that one process in MB."""
    started = time.monotonic()
    with stdout_path.open("wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{args[0]} failed")
    return seconds, usage.ru_maxrss / 1024


def timed_in_fresh_schema(action: Callable[[str], None]) -> float:
    schema = "bench_" + os.urandom(4).hex()
    try:
        started = time.monotonic()
        action(schema)
        return time.monotonic() - started
    finally:
        harness.drop_schema(schema)


def target_config(scratch: Path, schema: str) -> Path:
    """The loader settings of meltano.yml, pointed at the benchmark schema."""
    path = scratch / "target-config.json"
    path.write_text(json.dumps({
        "sqlalchemy_url": harness.pg_sqlalchemy_url(),
        "default_target_schema": schema,
        "use_copy": True,
        "validate_records": False,
        "add_record_metadata": True,
        "batch_size_rows": 100_000,
    }))
    return path


def run_target(scratch: Path, captured: Path, schema: str) -> None:
    with captured.open("rb") as source:
        subprocess.run([str(TARGET), "--config", str(target_config(scratch, schema))],
                       stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**os.environ, "PGTZ": "UTC"}, check=True)
    assert_loaded(schema)


def run_meltano(scratch: Path, emulator: harness.Emulator, schema: str) -> None:
    workdir = scratch / schema
    workdir.mkdir()
    project = harness.MeltanoProject(workdir, schema, emulator.url)
    project.run(env={"TAP_ZOHO_CRM_BULK_POLL_INITIAL_SECONDS": "0.2",
                     "TAP_ZOHO_CRM_BULK_POLL_MAX_SECONDS": "1"})
    assert_loaded(schema)


def assert_loaded(schema: str) -> None:
    with psycopg.connect(harness.pg_url()) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}"."Leads"').fetchone()
    if not row or row[0] == 0:
        sys.exit(f"nothing was loaded into {schema}")


def report(results: dict[str, list[float]], leads: int) -> None:
    tap = statistics.median(results["tap"])
    peak = statistics.median(results["tap_mb"])
    target = statistics.median(results["target"])
    meltano = statistics.median(results["meltano"])
    print(f"\nMedians over {len(results['tap'])} runs of {leads:,} leads:")
    print(f"  tap alone        {tap:>10,.0f} rows/s   "
          f"{tap / TAP_ROWS_PER_S_TARGET:.2f}x the {TAP_ROWS_PER_S_TARGET:,} target")
    print(f"  tap peak memory  {peak:>10,.0f} MB       "
          f"{peak / TAP_PEAK_MB_TARGET:.2f}x the {TAP_PEAK_MB_TARGET} MB ceiling")
    print(f"  target alone     {target:>10,.0f} rows/s")
    print(f"  meltano run      {meltano:>10,.0f} rows/s   "
          f"{meltano / target:.2f}x the target alone (goal {MELTANO_VS_TARGET_TARGET})")


if __name__ == "__main__":
    sys.exit(main())
