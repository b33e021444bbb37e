"""Bulk Read faults: failed jobs, damaged downloads, Zoho's page cap, the download limit.

300 leads in pages of 100 unless a test says otherwise; the real tap CLI runs against the
emulator, and what it printed is compared with the emulator's truth.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import requests

from tap_zoho_crm.bulk import BulkReader, BulkSettings, BulkWindow
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.emulator import Emulator
from tests import apiclient
from tests.faults.conftest import job_ids, truth_ids, wait_for


def assert_every_lead_once(run, emulator) -> None:  # type: ignore[no-untyped-def]
    assert run.returncode == 0, run.stderr[-3000:]
    ids = [rec["id"] for rec in run.records()]
    assert Counter(ids).most_common(1)[0][1] == 1
    assert set(ids) == truth_ids(emulator)


def test_a_failed_job_is_created_again_once(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("bulk_job_failure", times=1)

    run = tap_for(emulator).run()

    assert_every_lead_once(run, emulator)
    states = [job["state"] for job in emulator.stats()["jobs"]]
    assert states == ["FAILURE", "COMPLETED", "COMPLETED", "COMPLETED"]
    assert "creating the job again" in run.stderr


def test_a_twice_failed_job_splits_the_window_in_halves(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("bulk_job_failure", times=2)

    run = tap_for(emulator).run()

    assert_every_lead_once(run, emulator)
    jobs = emulator.stats()["jobs"]
    assert [job["state"] for job in jobs[:2]] == ["FAILURE", "FAILURE"]
    # The older half holds no lead; the newer one all 300 in three pages.
    assert len(jobs) == 2 + 1 + 3
    assert "splitting the window at" in run.stderr


def test_a_split_open_window_keeps_records_modified_long_ago(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.admin("POST", "modules/Leads/records", json={
        "Last_Name": "Migrated", "Created_Time": "1995-01-02T00:00:00+00:00",
        "Modified_Time": "1995-01-02T00:00:00+00:00"})
    emulator.fault("bulk_job_failure", times=2)

    run = tap_for(emulator).run()

    assert_every_lead_once(run, emulator)
    assert len(truth_ids(emulator)) == 301


def test_a_job_that_keeps_failing_ends_in_an_error_naming_it(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("bulk_job_failure", times=-1)

    run = tap_for(emulator).run()

    assert run.returncode == 1
    jobs = job_ids(emulator)
    assert len(jobs) == 4  # the window's job and its retry, then the first half's two
    errors = run.error_lines()
    assert len(errors) == 1, errors
    assert f"Bulk Read job {jobs[-1]} failed: INTERNAL_SERVER_ERROR" in errors[0]
    assert run.records() == []
    # No STATE vouches for a page or for a finished sync.
    bookmarks = [s["bookmarks"].get("Leads", {}) for s in run.states()]
    assert all("page" not in b.get("bulk", {}) for b in bookmarks)
    assert all("last_sync_started_at" not in b for b in bookmarks)


def test_a_corrupt_zip_is_downloaded_again(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("corrupt_zip", times=1)

    run = tap_for(emulator).run()

    assert_every_lead_once(run, emulator)
    downloads = [d["job_id"] for d in emulator.stats()["downloads"]]
    assert len(downloads) == 4
    assert downloads[0] == downloads[1]
    assert "downloading job" in run.stderr


def test_a_zip_truncated_every_time_ends_in_a_clear_error(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("truncated_zip", times=3)

    run = tap_for(emulator).run()

    assert run.returncode == 1
    first_job = job_ids(emulator)[0]
    errors = run.error_lines()
    assert len(errors) == 1, errors
    assert f"gave up after 3 downloads of job {first_job}" in errors[0]
    assert run.records() == []
    assert len(emulator.stats()["downloads"]) == 3


def test_page_range_exceeded_splits_the_window_and_loads_everything(
    start_emulator, tap_for
) -> None:
    emulator = start_emulator(300, job_seconds=1.0)
    tap = tap_for(emulator).start()
    wait_for(lambda: len(job_ids(emulator)) >= 1, what="the first job")
    emulator.fault("page_range_exceeded", times=1)

    run = tap.wait()

    assert_every_lead_once(run, emulator)
    assert "PAGE_RANGE_EXCEEDED" in run.stderr
    assert "splitting the window at" in run.stderr
    # Page 2's job was refused; the halves took one (empty) and three jobs.
    assert len(job_ids(emulator)) == 1 + 1 + 3


class EmulatorTime:
    """A clock for the reader whose sleeps move the emulator's clock by as much."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.offset = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        answer = requests.post(
            self.base_url + "/__admin/clock", json={"advance_seconds": seconds}, timeout=10
        )
        answer.raise_for_status()


def read_all_pages(emulator: Emulator, limit: int) -> tuple[int, EmulatorTime, ZohoClient]:
    clock = EmulatorTime(emulator.base_url)
    auth = apiclient.make_auth(emulator.base_url, sleep=time.sleep)
    client = apiclient.make_client(auth, sleep=clock.sleep)
    reader = BulkReader(
        client,
        BulkSettings(poll_initial_seconds=0.05, poll_max_seconds=0.1, downloads_per_minute=limit),
        clock=clock.now,
        sleep=clock.sleep,
    )

    def caster(header: list[str]) -> Callable[[list[str]], dict[str, str]]:
        return lambda row: dict(zip(header, row, strict=True))

    rows = 0
    for _, page_rows in reader.pages("Leads", ["Last_Name"], BulkWindow(), caster):
        rows += sum(1 for _ in page_rows)
    return rows, clock, client


def test_downloads_keep_to_the_per_minute_limit() -> None:
    with Emulator(leads=500, page_size=100, job_seconds=0.05, downloads_per_minute=3) as emu:
        rows, clock, client = read_all_pages(emu, limit=3)
        stats = requests.get(emu.base_url + "/__admin/stats", timeout=10).json()

    assert rows == 500
    assert [d["status"] for d in stats["downloads"]] == [200] * 5
    assert stats["errors"] == {}
    # The fourth download waited for the first to leave the 60 s window.
    assert any(50 <= wait <= 60 for wait in clock.sleeps)
    assert client.calls["GET /crm/bulk/v8/read/{id}/result"] == 5


def test_without_the_limit_the_client_outwaits_zohos_download_window() -> None:
    # The control for the test above: a reader allowed more than Zoho (another run used the
    # minute) meets 429s, and the client's 429 backoff keeps going past the 60 s window.
    with Emulator(leads=500, page_size=100, job_seconds=0.05, downloads_per_minute=3) as emu:
        rows, clock, client = read_all_pages(emu, limit=10)
        stats = requests.get(emu.base_url + "/__admin/stats", timeout=10).json()

    statuses = [d["status"] for d in stats["downloads"]]
    assert rows == 500
    assert statuses[:4] == [200, 200, 200, 429]
    assert statuses.count(200) == 5
    assert sum(clock.sleeps) >= 59
    assert client.calls["GET /crm/bulk/v8/read/{id}/result"] == len(statuses)
