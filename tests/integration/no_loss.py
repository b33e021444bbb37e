"""One small Zoho org, its webhook receiver and its PostgreSQL copy, driven step by step.

``World`` is what the randomized no-loss test (``test_no_loss.py``) and its kept examples
(``test_no_loss_examples.py``) act on. It changes records through the emulator's admin API,
injects faults, runs the pipeline (``pipeline.py``) and checks the loaded table.

The promise checked (``World.check``): once every fault is cleared, every callback that was
going to arrive has arrived, and one sync has completed, the table equals the emulator's
truth. Live rows equal it field by field; a deleted record's row is marked deleted and holds
one whole version the record really had (all-null only if no version of it was ever loaded).

Losses the tap cannot see (a dropped callback while the channel and receiver were fine) are
only caught by a catch-up Bulk Read; Zoho's answer is the periodic reconcile, and the test
stands in for the passing day by letting the channel lapse before the checking sync.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tap_zoho_crm.emulator import Emulator
from tests.integration import harness
from tests.integration.pipeline import (
    Pipeline,
    PluginConfigs,
    RunResult,
    TargetForkServer,
    discover_catalog,
)

MODULE = "Leads"
# The org's channel lives 24 h (channel_expiry_hours); moving the clock past it lapses it.
LAPSE_SECONDS = 25 * 3600
CALLBACK_TIMEOUT_SECONDS = 15.0
# Settings a test may change for speed; everything else is what meltano.yml resolves to.
FAST_TAP_SETTINGS = {
    "bulk_poll_initial_seconds": 0.05,
    "bulk_poll_max_seconds": 0.2,
    # The emulator shares the host's clock, so no skew margin is needed; a margin of minutes
    # would hide any loss window shorter than itself from a test that lasts seconds.
    "catchup_margin_seconds": 0,
}
DATA_COLUMNS_SKIPPED = ("id",)


@dataclass
class Parts:
    """What every example shares: resolved configs, the catalog, the target fork server."""

    configs: PluginConfigs
    fork_server: TargetForkServer
    workdir: Path
    catalog: dict[str, Any] | None = None


@contextmanager
def session_parts(workdir: Path) -> Iterator[Parts]:
    """Ask Meltano for the plugin configs once and keep a target fork server running."""
    harness.ensure_database()
    server = TargetForkServer()
    try:
        yield Parts(PluginConfigs.from_meltano(workdir), server, workdir)
    finally:
        server.close()


@pytest.fixture(scope="session")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Parts]:
    """Session-wide ``Parts`` for the no-loss tests."""
    with session_parts(tmp_path_factory.mktemp("no-loss")) as shared:
        yield shared


class EmulatorView(harness.Emulator):
    """The harness's emulator API over an in-process ``Emulator`` (no process to start)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.url = emulator.base_url
        self.http = requests.Session()

    def stop(self) -> None:
        """Stop the in-process server."""
        self.emulator.stop()

    def kill(self) -> None:
        """Same as stop: there is no process."""
        self.emulator.stop()


@dataclass
class Model:
    """What the test knows independently of the tap: every version of every record."""

    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    recycle: set[str] = field(default_factory=set)
    purged: set[str] = field(default_factory=set)
    # Ids that had a row with values in the table at some point.
    loaded: set[str] = field(default_factory=set)
    # Lost callbacks (World.losses) that a completed catch-up has covered.
    losses_covered: int = 0
    # (wall-clock start, losses so far) of every sync, to see what a catch-up covered.
    sync_starts: list[tuple[dt.datetime, int]] = field(default_factory=list)

    def cover_losses(self, catchup_at: dt.datetime) -> None:
        """A catch-up whose run started at ``catchup_at`` (whole seconds) completed: losses
        before the sync that started it are covered."""
        limit = catchup_at + dt.timedelta(seconds=1)
        started = [lost for moment, lost in self.sync_starts if moment <= limit]
        if started:
            self.losses_covered = max(self.losses_covered, started[-1])

    def add_version(self, record: dict[str, Any]) -> None:
        self.versions.setdefault(str(record["id"]), []).append(record)


class World:
    """An emulator, a receiver, a schema and a pipeline for one example."""

    def __init__(self, parts: Parts, *, leads: int, page_size: int) -> None:
        self.workdir = parts.workdir / uuid.uuid4().hex[:10]
        self.workdir.mkdir()
        self.emulator = Emulator(
            leads=leads,
            page_size=page_size,
            job_seconds=0.05,
            callback_batch_ms=20,
            downloads_per_minute=10_000,
        ).start()
        self.view = EmulatorView(self.emulator)
        self.store_url = f"sqlite:///{self.workdir}/events.sqlite3"
        self.receiver_port = harness.free_port()
        self.receiver: harness.Receiver | None = harness.Receiver(
            self.store_url, port=self.receiver_port
        )
        self.schema = "t_noloss_" + uuid.uuid4().hex[:12]
        self.pipeline = self._pipeline(parts)
        self.model = Model()
        for record in self.view.truth(MODULE):
            self.model.add_version(record)
            self.model.live.add(str(record["id"]))
        self.fields = self.view.fields(MODULE)
        self.log: list[str] = []
        self.began = time.monotonic()
        # A check that failed in a step (teardown still runs and reports the example).
        self.step_error: str | None = None
        self.failed_while_down = 0
        self._failed_at_stop = 0

    def _pipeline(self, parts: Parts) -> Pipeline:
        assert self.receiver is not None
        tap = {
            **parts.configs.tap,
            **FAST_TAP_SETTINGS,
            "accounts_url": self.emulator.base_url,
            "event_store_url": self.store_url,
            "webhook_public_url": self.receiver.notify_url,
        }
        target = {
            **parts.configs.target,
            "sqlalchemy_url": harness.pg_sqlalchemy_url(),
            "default_target_schema": self.schema,
        }
        if parts.catalog is None:
            parts.catalog = discover_catalog(tap, self.workdir)
        return Pipeline(
            self.workdir / "pipeline",
            tap,
            target,
            parts.configs.target_env,
            parts.catalog,
            fork_server=parts.fork_server,
        )

    def close(self) -> None:
        """Stop everything this example started and drop its schema."""
        if self.receiver is not None:
            self.receiver.stop()
        self.emulator.stop()
        harness.drop_schema(self.schema)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def note(self, text: str) -> None:
        """Keep a line for the failure report."""
        self.log.append(text)

    # -- record changes --------------------------------------------------------------------

    def create(self, values: dict[str, Any]) -> str:
        """Create a record; returns its id."""
        record = self.view.admin("POST", f"modules/{MODULE}/records", json=values)
        record_id = str(record["id"])
        self.model.add_version(record)
        self.model.live.add(record_id)
        self.note(f"create {record_id}")
        return record_id

    def edit(self, record_id: str, values: dict[str, Any]) -> None:
        """Edit a live record."""
        record = self.view.admin("PATCH", f"modules/{MODULE}/records/{record_id}", json=values)
        self.model.add_version(record)
        self.note(f"edit {record_id} {sorted(values)}")

    def delete(self, record_id: str, *, permanent: bool = False) -> None:
        """Delete a live record to the recycle bin, or for good."""
        query = "?permanent=true" if permanent else ""
        self.view.admin("DELETE", f"modules/{MODULE}/records/{record_id}{query}")
        self.model.live.discard(record_id)
        (self.model.purged if permanent else self.model.recycle).add(record_id)
        self.note(f"delete {record_id}{' permanently' if permanent else ''}")

    def restore(self, record_id: str) -> None:
        """Restore a record from the recycle bin."""
        record = self.view.admin("POST", f"modules/{MODULE}/records/{record_id}/restore")
        self.model.add_version(record)
        self.model.recycle.discard(record_id)
        self.model.live.add(record_id)
        self.note(f"restore {record_id}")

    # -- faults ----------------------------------------------------------------------------

    def fault(self, name: str, times: int = 1, path: str | None = None, **options: Any) -> None:
        """Queue an emulator fault (``options`` such as a delay's ``seconds``)."""
        extra = {"path": path} if path else {}
        self.view.fault(name, times=times, **extra, **options)
        self.note(f"fault {name} x{times}{' on ' + path if path else ''} {options or ''}")

    def stop_receiver(self) -> None:
        """Stop the webhook receiver; callbacks fail until it is back."""
        if self.receiver is not None:
            self.settle_callbacks()
            self._failed_at_stop = self._callbacks()["failed"]
            self.receiver.stop()
            self.receiver = None
            self.note("receiver stopped")

    def start_receiver(self) -> None:
        """Start the receiver again on the channel's URL."""
        if self.receiver is None:
            self.settle_callbacks()
            self.failed_while_down += self._callbacks()["failed"] - self._failed_at_stop
            self.receiver = harness.Receiver(self.store_url, port=self.receiver_port)
            self.note("receiver started")

    def lapse_channel(self) -> None:
        """Move the emulator clock past the channel's expiry, so it lapses."""
        self.view.admin("POST", "clock", json={"advance_seconds": LAPSE_SECONDS})
        self.note("channel lapsed (clock +25 h)")

    def settle_callbacks(self) -> None:
        """Wait until every callback of the changes so far was posted, dropped or failed
        (the receiver answers only once the events are committed)."""
        self.emulator.flush_callbacks(timeout=CALLBACK_TIMEOUT_SECONDS, delivered=True)

    def storm_pending(self) -> bool:
        """True while queued 429s remain."""
        return any(fault["fault"] == "http_429" for fault in self.pending_faults())

    def pending_faults(self) -> list[Any]:
        """Faults still queued in the emulator."""
        return list(self.view.stats()["faults"])

    def losses(self) -> int:
        """Callbacks lost without a sign the tap can see: dropped by a fault, or failed while
        the receiver was up (a slow answer). Those refused while it was down are not
        counted: the heartbeat gap tells the tap."""
        counts = self._callbacks()
        expected = self.failed_while_down
        if self.receiver is None:
            expected += counts["failed"] - self._failed_at_stop
        return counts["dropped"] + counts["failed"] - expected

    def _callbacks(self) -> dict[str, int]:
        return {key: int(value) for key, value in self.view.stats()["callbacks"].items()}

    # -- syncs -----------------------------------------------------------------------------

    def sync(
        self,
        *,
        kill_after: int | None = None,
        during: Callable[[], None] | None = None,
        delay: float = 0.0,
    ) -> RunResult:
        """Run the pipeline once; ``during`` runs ``delay`` seconds after it started."""
        self.model.sync_starts.append((dt.datetime.now(dt.timezone.utc), self.losses()))
        catchup_before = self._bookmark("last_catchup_at")
        if during is None:
            result = self.pipeline.run(kill_after_records=kill_after)
        else:
            result = self._sync_with(during, delay, kill_after)
        catchup = self._bookmark("last_catchup_at")
        if result.ok and catchup and catchup != catchup_before:
            self.model.cover_losses(dt.datetime.fromisoformat(catchup))
        self._remember_loaded()
        self.note(
            f"sync #{self.pipeline.runs}: ok={result.ok} records={result.records} "
            f"killed={result.killed} {result.seconds:.1f}s"
        )
        return result

    def _sync_with(
        self, during: Callable[[], None], delay: float, kill_after: int | None
    ) -> RunResult:
        results: list[RunResult] = []
        runner = threading.Thread(
            target=lambda: results.append(self.pipeline.run(kill_after_records=kill_after))
        )
        runner.start()
        time.sleep(delay)
        try:
            during()
        finally:
            runner.join()
        return results[0]

    def _bookmark(self, key: str) -> Any:
        state = self.pipeline.state or {}
        return (state.get("bookmarks") or {}).get(MODULE, {}).get(key)

    def _remember_loaded(self) -> None:
        with psycopg.connect(harness.pg_url()) as conn:
            found = conn.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (self.schema, MODULE),
            ).fetchone()
            if not found:
                return
            rows = conn.execute(
                f'SELECT id FROM "{self.schema}"."{MODULE}" WHERE "Last_Name" IS NOT NULL'
            )
            self.model.loaded.update(str(row[0]) for row in rows)

    # -- the promise -----------------------------------------------------------------------

    def clean(self) -> bool:
        """True when nothing could keep the next sync from catching up fully."""
        return (
            self.receiver is not None
            and not self.pending_faults()
            and self.losses() == self.model.losses_covered
        )

    def settle_and_check(self) -> None:
        """Clear every fault, let callbacks land, sync once and check the table."""
        self.view.admin("DELETE", "faults")
        self.start_receiver()
        self.settle_callbacks()
        if self.losses() > self.model.losses_covered:
            # Only a catch-up finds what a dropped callback hid; Zoho's is the daily
            # reconcile, the test's is a lapsed channel.
            self.lapse_channel()
        result = self.sync()
        assert result.ok, f"a sync without faults failed: {result.describe()}"
        self.check()

    def check(self) -> None:
        """The table equals the truth: live rows field by field, deleted rows marked."""
        harness.assert_table_matches(self.schema, self.view, MODULE)
        rows = harness.table_rows(self.schema, MODULE)
        for record_id in sorted(self.model.recycle | self.model.purged):
            row = rows.get(record_id)
            if row is None:
                assert record_id not in self.model.loaded, f"deleted {record_id} lost its row"
                continue
            assert row["_sdc_deleted_at"] is not None, f"deleted {record_id} not marked"
            self._check_deleted_values(record_id, row)

    def _check_deleted_values(self, record_id: str, row: dict[str, Any]) -> None:
        expected = [harness.expected_row(v, self.fields) for v in self.model.versions[record_id]]
        got = {name: _normalise(row.get(name)) for name in expected[0]}
        data = {k: v for k, v in got.items() if k not in DATA_COLUMNS_SKIPPED}
        if all(value is None for value in data.values()):
            assert record_id not in self.model.loaded, (
                f"deleted {record_id} lost the values it had in the table"
            )
            return
        assert any(got == want for want in expected), (
            f"deleted {record_id} holds no version the record ever had: {got}"
        )

    def report_progress(self, outcome: str, error: str | None = None) -> None:
        """Append one JSON line per example to ``$NO_LOSS_PROGRESS``, if set (soak runs);
        a failed example also records its steps and the error."""
        path = os.environ.get("NO_LOSS_PROGRESS")
        if not path:
            return
        line: dict[str, Any] = {
            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "outcome": outcome,
            "seconds": round(time.monotonic() - self.began, 2),
            "syncs": self.pipeline.runs,
            "steps": len(self.log),
        }
        if error is not None:
            line["error"] = error[:4000]
            line["log"] = self.log
        with open(path, "a", encoding="utf-8") as progress:
            progress.write(json.dumps(line) + "\n")

    def describe(self) -> str:
        """The steps so far, for a failure message."""
        return "\n".join(self.log)


def _normalise(value: Any) -> Any:
    if value == [] or value == "":
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value
