"""Bulk Read job state machine, paging by token, and page checks, against the fake Zoho."""

from __future__ import annotations

import datetime
import json
import typing as t

import pytest

from tap_zoho_crm.bulk import BulkReader, BulkSettings, BulkWindow
from tap_zoho_crm.casting import RowCaster
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.errors import BulkJobError, CorruptFileError, DataError
from tap_zoho_crm.schema import Kind
from tests import apiclient

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho

KINDS = {"id": Kind.ID, "Last_Name": Kind.TEXT, "Modified_Time": Kind.DATETIME}
PAGE = "Id,Last_Name,Modified_Time\n{0},N{0},2025-03-02T16:21:05-05:00\n"


def make_client(fake: FakeZoho) -> ZohoClient:
    auth = apiclient.make_auth(fake.url, fake.config())
    return apiclient.make_client(auth, max_retries=1)


def make_reader(fake: FakeZoho, **settings: float) -> BulkReader:
    options = {"poll_initial_seconds": 0.001, "poll_max_seconds": 0.002, **settings}
    return BulkReader(make_client(fake), BulkSettings(**options))


def caster(header: list[str]) -> RowCaster:
    return RowCaster(header, KINDS)


def job_bodies(fake: FakeZoho) -> list[dict[str, t.Any]]:
    return [
        json.loads(r["raw"])
        for r in fake.requests
        if r["method"] == "POST" and r["path"] == "/crm/bulk/v8/read"
    ]


def test_three_pages_follow_tokens_and_next_job_starts_before_download(fake: FakeZoho) -> None:
    fake.pages = [PAGE.format(i) for i in (1, 2, 3)]
    reader = make_reader(fake)
    seen = []
    for page, rows in reader.pages("Leads", ["Last_Name"], BulkWindow(), caster):
        seen.append((page.number, page.more_records, [row["id"] for row in rows]))
    assert seen == [(1, True, ["1"]), (2, True, ["2"]), (3, False, ["3"])]
    bodies = job_bodies(fake)
    assert bodies[0] == {"query": {"module": {"api_name": "Leads"}, "fields": ["Last_Name"]}}
    assert bodies[1:] == [
        {"query": {"page_token": "token-1"}},
        {"query": {"page_token": "token-2"}},
    ]
    paths = fake.paths()
    first_download = next(i for i, p in enumerate(paths) if p.endswith("/result"))
    creates_before = [p for p in paths[:first_download] if p == "/crm/bulk/v8/read"]
    assert len(creates_before) == 2


def test_page_exposes_job_and_token_for_resume(fake: FakeZoho) -> None:
    fake.pages = [PAGE.format(1), PAGE.format(2)]
    pages = make_reader(fake).pages("Leads", [], BulkWindow(), caster)
    page, rows = next(pages)
    list(rows)
    assert page.next_page_token == "token-1"
    assert page.next_job_id is not None
    assert page.token_received_at is not None
    pages.close()


def test_window_becomes_modified_time_criteria_in_utc_without_fractions() -> None:
    start = datetime.datetime(2025, 3, 1, 1, 2, 3, 456789, tzinfo=datetime.timezone.utc)
    end = datetime.datetime(2025, 3, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert BulkWindow(start, end).criteria() == {
        "group_operator": "and",
        "group": [
            {
                "field": {"api_name": "Modified_Time"},
                "comparator": "greater_equal",
                "value": "2025-03-01T01:02:03+00:00",
            },
            {
                "field": {"api_name": "Modified_Time"},
                "comparator": "less_than",
                "value": "2025-03-09T22:00:00+00:00",
            },
        ],
    }
    assert BulkWindow(start).criteria()["comparator"] == "greater_equal"  # type: ignore[index]
    assert BulkWindow().criteria() is None


def test_criteria_are_sent_only_with_a_window(fake: FakeZoho) -> None:
    start = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
    reader = make_reader(fake)
    for _, rows in reader.pages("Leads", ["Last_Name"], BulkWindow(start), caster):
        list(rows)
    assert job_bodies(fake)[0]["query"]["criteria"]["value"] == "2025-03-01T00:00:00+00:00"


def test_queued_and_in_progress_are_polled_until_completed(fake: FakeZoho) -> None:
    fake.job_states = ["ADDED", "QUEUED", "IN PROGRESS", "IN PROGRESS", "COMPLETED"]
    reader = make_reader(fake)
    job_id = reader.create_job("Leads", ["Last_Name"])
    assert reader.wait_for_job(job_id)["count"] == 10
    assert fake.jobs[job_id]["polls"] == 5


def test_failure_names_job_and_zoho_error(fake: FakeZoho) -> None:
    fake.job_states = ["ADDED", "FAILURE"]
    reader = make_reader(fake)
    with pytest.raises(BulkJobError) as caught:
        next(reader.pages("Leads", [], BulkWindow(), caster))
    assert caught.value.job_id in str(caught.value)
    assert "INTERNAL_SERVER_ERROR" in str(caught.value)
    assert "Internal server error occurred." in str(caught.value)


def test_job_that_never_finishes_hits_the_deadline(fake: FakeZoho) -> None:
    fake.job_states = ["ADDED", "IN PROGRESS"]
    reader = make_reader(fake, job_timeout_seconds=0.05)
    with pytest.raises(BulkJobError, match=r"did not complete within 0\.05 s.*IN PROGRESS"):
        next(reader.pages("Leads", [], BulkWindow(), caster))


def test_poll_delay_doubles_up_to_the_cap(fake: FakeZoho) -> None:
    fake.job_states = ["ADDED"] * 6 + ["COMPLETED"]
    sleeps: list[float] = []
    reader = BulkReader(
        make_client(fake),
        BulkSettings(poll_initial_seconds=2, poll_max_seconds=5, job_timeout_seconds=1000),
        sleep=sleeps.append,
    )
    reader.wait_for_job(reader.create_job("Leads", []))
    assert sleeps == [2, 4, 5, 5, 5, 5]


def test_row_count_different_from_result_count_is_an_error(fake: FakeZoho) -> None:
    fake.page_counts = [11]
    pages = make_reader(fake).pages("Leads", [], BulkWindow(), caster)
    page, rows = next(pages)
    with pytest.raises(DataError, match=f"{page.job_id}.*announced 11 rows.*held 10"):
        list(rows)


def test_corrupt_download_raises_clear_error(fake: FakeZoho) -> None:
    fake.pages = [b"PK\x03\x04 definitely not a zip"]
    pages = make_reader(fake).pages("Leads", [], BulkWindow(), caster)
    _, rows = next(pages)
    with pytest.raises(CorruptFileError):
        list(rows)
