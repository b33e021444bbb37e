"""Fixtures for fault tests: emulator processes and runs of the real ``tap-zoho-crm`` CLI.

A ``TapRunner`` writes a config (and optionally a state) file, runs the tap as a process
against an emulator the test started, and parses the Singer messages from its stdout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import harness
from tests.integration.conftest import database, project_factory, schema

__all__ = ["database", "project_factory", "schema"]  # fixtures shared with integration tests

pytestmark = pytest.mark.integration

FAST_CONFIG: dict[str, Any] = {
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "refresh_token": "emulator-refresh",
    "bulk_poll_initial_seconds": 0.1,
    "bulk_poll_max_seconds": 0.3,
    "max_retries": 2,
}
RETRY_LINE = re.compile(r"retry (\d+)(/\d+)? in ([\d.]+) s")  # 429s have no retry limit


@dataclasses.dataclass
class TapRun:
    """What one tap process printed and how it ended."""

    returncode: int
    messages: list[dict[str, Any]]
    stderr: str

    def records(self) -> list[dict[str, Any]]:
        """Every RECORD's record, in order."""
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last record emitted for each id."""
        return {rec["id"]: rec for rec in self.records()}

    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    def last_state(self) -> dict[str, Any]:
        """The last STATE value, or {} when none was written."""
        states = self.states()
        return states[-1] if states else {}

    def records_before_last_state(self) -> int:
        """How many RECORDs precede the last STATE (what that STATE vouches for)."""
        count = delivered = 0
        for message in self.messages:
            if message["type"] == "RECORD":
                count += 1
            elif message["type"] == "STATE":
                delivered = count
        return delivered

    def retry_waits(self) -> list[tuple[int, float]]:
        """(attempt, seconds) of every backoff the tap logged."""
        return [(int(m[1]), float(m[3])) for m in RETRY_LINE.finditer(self.stderr)]

    def error_lines(self) -> list[str]:
        """Log lines at ERROR, without the SDK's generic "unhandled error ... syncing" line."""
        return [
            line
            for line in self.stderr.splitlines()
            if "| ERROR" in line and "An unhandled error occurred while syncing" not in line
        ]


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    """Singer messages of a tap's stdout (a killed tap may leave a torn last line)."""
    messages = []
    for line in stdout.splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            continue
    return messages


class TapRunner:
    """Runs ``tap-zoho-crm`` against one emulator with one event store."""

    def __init__(self, workdir: Path, emulator: harness.Emulator) -> None:
        self.workdir = workdir
        self.emulator = emulator
        self.event_store_url = f"sqlite:///{workdir}/events.sqlite3"
        self._runs = 0

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The tap config used for a run."""
        return {
            **FAST_CONFIG,
            "accounts_url": self.emulator.url,
            "event_store_url": self.event_store_url,
            **overrides,
        }

    def _args(self, state: dict[str, Any] | None, overrides: dict[str, Any]) -> list[str]:
        self._runs += 1
        config_path = self.workdir / f"config-{self._runs}.json"
        config_path.write_text(json.dumps(self.config(**overrides)))
        args = [str(harness.BIN / "tap-zoho-crm"), "--config", str(config_path)]
        if state:
            state_path = self.workdir / f"state-{self._runs}.json"
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        return args

    def run(
        self, state: dict[str, Any] | None = None, timeout: float = 180, **overrides: Any
    ) -> TapRun:
        """Run the tap to its end."""
        done = subprocess.run(
            self._args(state, overrides),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return TapRun(done.returncode, parse_messages(done.stdout), done.stderr)

    def start(self, state: dict[str, Any] | None = None, **overrides: Any) -> RunningTap:
        """Start the tap without waiting; the caller kills it or waits."""
        stdout = (self.workdir / f"stdout-{self._runs + 1}.jsonl").open("w")
        proc = subprocess.Popen(
            self._args(state, overrides),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return RunningTap(proc, Path(stdout.name), stdout)


@dataclasses.dataclass
class RunningTap:
    """A tap process started in the background, its stdout going to a file."""

    proc: subprocess.Popen[str]
    stdout_path: Path
    stdout_file: Any

    def kill(self) -> TapRun:
        """SIGKILL the tap, as a crash or an OOM kill would, and read what it printed."""
        os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait()

    def wait(self, timeout: float = 180) -> TapRun:
        """Wait for the end and read what it printed."""
        _, stderr = self.proc.communicate(timeout=timeout)
        self.stdout_file.close()
        stdout = self.stdout_path.read_text()
        return TapRun(self.proc.returncode, parse_messages(stdout), stderr)


@pytest.fixture
def emulators() -> Iterator[list[harness.Emulator]]:
    """Emulator processes started by the test; stopped afterwards."""
    started: list[harness.Emulator] = []
    yield started
    for emulator in started:
        emulator.stop()


@pytest.fixture
def start_emulator(emulators: list[harness.Emulator]):  # type: ignore[no-untyped-def]
    """Start an emulator process: ``start_emulator(leads, page_size, **flags)``."""

    def start(leads: int, page_size: int = 100, **flags: Any) -> harness.Emulator:
        flags.setdefault("job_seconds", 0.3)
        emulator = harness.Emulator(leads=leads, page_size=page_size, **flags)
        emulators.append(emulator)
        return emulator

    return start


@pytest.fixture
def tap_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build a ``TapRunner`` for an emulator."""

    def build(emulator: harness.Emulator) -> TapRunner:
        return TapRunner(tmp_path, emulator)

    return build


@pytest.fixture
def live_channel():  # type: ignore[no-untyped-def]
    """Start a webhook receiver on a runner's event store; returns the config it needs.

    With a live channel and a receiver up the whole time, events cover the changes since
    an interrupted load began, so the next run may continue the load's saved pages.
    """
    started: list[harness.Receiver] = []

    def start(tap: TapRunner) -> dict[str, Any]:
        receiver = harness.Receiver(tap.event_store_url)
        started.append(receiver)
        time.sleep(1.1)  # a sync's start is kept to the second: be up before it
        return {"webhook_public_url": receiver.notify_url}

    yield start
    for receiver in started:
        receiver.stop()


def truth_ids(emulator: harness.Emulator) -> set[str]:
    """Ids of every live record of Leads in the emulator."""
    return {rec["id"] for rec in emulator.truth()}


def job_ids(emulator: harness.Emulator) -> list[str]:
    """Ids of the Bulk Read jobs the emulator created, in order."""
    return [job["id"] for job in emulator.stats()["jobs"]]


def wait_for(condition: Any, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition()`` every 20 ms until it is true."""
    harness.wait_until(condition, timeout, what, every=0.02)
