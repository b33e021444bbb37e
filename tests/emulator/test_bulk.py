"""Bulk Read: validation, the job state machine, paging, the CSV, criteria, downloads."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from tap_zoho_crm.emulator import Emulator

from .conftest import Client, read_zip

LEADS = {"module": {"api_name": "Leads"}}


def test_create_answers_201_added(client: Client) -> None:
    answer = client.send("POST", "/crm/bulk/v8/read", json={"query": LEADS})
    entry = answer.json()["data"][0]
    assert answer.status_code == 201
    assert entry["code"] == "ADDED_SUCCESSFULLY"
    assert entry["details"]["state"] == "ADDED"
    assert len(entry["details"]["id"]) == 19


def test_create_needs_json_content_type(client: Client) -> None:
    answer = client.send("POST", "/crm/bulk/v8/read", data="query=1",
                         headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert answer.json()["code"] == "MEDIA_TYPE_NOT_SUPPORTED"


@pytest.mark.parametrize(("query", "code"), [
    ({"module": {"api_name": "Nope"}}, "MODULE_NOT_AVAILABLE"),
    ({"module": {"api_name": "Notes"}}, "MODULE_NOT_SUPPORTED"),
    ({**LEADS, "fields": ["Last_Name", "Bogus"]}, "FIELD_NOT_AVAILABLE"),
    ({**LEADS, "fields": ["Attachment_File"]}, "FIELD_NOT_SUPPORTED"),
    ({**LEADS, "criteria": {"field": {"api_name": "Description"}, "comparator": "equal",
                            "value": "x"}}, "FIELD_IN_CRITERIA_NOT_SUPPORTED"),
    ({**LEADS, "criteria": {"field": {"api_name": "Email_Opt_Out"},
                            "comparator": "greater_than", "value": True}},
     "FIELD_COMPARATOR_IN_CRITERIA_NOT_SUPPORTED"),
    ({**LEADS, "criteria": {"group_operator": "xor", "group": []}},
     "GROUP_OPERATOR_NOT_SUPPORTED"),
    ({**LEADS, "criteria": {"field": {"api_name": "Modified_Time"},
                            "comparator": "greater_equal",
                            "value": "2025-01-01T00:00:00.123+00:00"}},
     "FIELD_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE"),
    ({**LEADS, "criteria": {"group_operator": "or", "group": [
        {"field": {"api_name": "City"}, "comparator": "equal", "value": str(n)}
        for n in range(26)]}}, "CRITERIA_LIMIT_EXCEEDED"),
])
def test_create_validation_errors(client: Client, query: dict, code: str) -> None:
    answer = client.send("POST", "/crm/bulk/v8/read", json={"query": query})
    assert answer.status_code == 400
    assert answer.json()["data"][0]["code"] == code


def test_state_machine_reaches_completed(client: Client) -> None:
    client.admin("POST", "/config", {"job_seconds": 0.8})
    job_id = client.create_job(LEADS)
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        details = client.job(job_id)
        if not seen or seen[-1] != details["state"]:
            seen.append(details["state"])
        if details["state"] == "COMPLETED":
            break
        assert "result" not in details
        time.sleep(0.02)
    assert seen[0] == "ADDED"
    assert seen[-1] == "COMPLETED"
    assert "IN PROGRESS" in seen
    assert "QUEUED" in seen
    result = details["result"]
    assert result["count"] == 25
    assert result["per_page"] == 25
    assert result["page"] == 1
    assert result["download_url"] == f"/crm/bulk/v8/read/{job_id}/result"
    assert result["more_records"] is True
    assert result["next_page_token"]


def test_failure_and_stuck_faults(client: Client) -> None:
    client.fault("bulk_job_failure")
    failed = client.wait_job(client.create_job(LEADS))
    assert failed["state"] == "FAILURE"
    assert failed["result"]["error_message"]["code"] == "INTERNAL_SERVER_ERROR"
    client.fault("bulk_job_stuck")
    stuck = client.create_job(LEADS)
    client.admin("POST", "/clock", {"advance_seconds": 1800})
    assert client.job(stuck)["state"] == "IN PROGRESS"
    early = client.get(f"/crm/bulk/v8/read/{stuck}/result")
    assert early.status_code == 400
    assert early.json()["code"] == "INVALID_REQUEST"


def test_unknown_job_is_404(client: Client) -> None:
    answer = client.get("/crm/bulk/v8/read/4876543000003099999")
    assert answer.status_code == 404
    assert answer.json()["code"] == "RESOURCE_NOT_FOUND"


def test_three_pages_by_token_have_no_gaps_or_overlaps(client: Client) -> None:
    truth_ids = [r["id"] for r in client.truth()]
    details, rows = client.export({**LEADS, "fields": ["Last_Name"]})
    pages = [rows]
    while details["result"]["more_records"]:
        token = details["result"]["next_page_token"]
        details, rows = client.export({"page_token": token})
        pages.append(rows)
    assert [len(p) - 1 for p in pages] == [25, 25, 10]
    assert [p[0] for p in pages] == [["Id", "Last_Name"]] * 3
    ids = [row[0] for page in pages for row in page[1:]]
    assert ids == truth_ids == sorted(ids)
    assert details["result"]["page"] == 3
    assert "next_page_token" not in details["result"]


def test_page_token_expires_after_24_hours(client: Client) -> None:
    details, _ = client.export(LEADS)
    client.admin("POST", "/clock", {"advance_seconds": 24 * 3600 + 1})
    client.refresh()
    answer = client.send("POST", "/crm/bulk/v8/read",
                         json={"query": {"page_token": details["result"]["next_page_token"]}})
    assert answer.status_code == 400
    assert answer.json()["data"][0]["code"] == "EXPIRED_VALUE"


def test_snapshot_is_taken_at_completion(client: Client) -> None:
    client.admin("POST", "/config", {"job_seconds": 0.6})
    job_id = client.create_job({**LEADS, "fields": ["Last_Name"]})
    first = client.truth()[0]["id"]
    client.admin("PATCH", f"/modules/Leads/records/{first}", {"Last_Name": "During"})
    client.wait_job(job_id)
    client.admin("PATCH", f"/modules/Leads/records/{first}", {"Last_Name": "After"})
    rows = client.rows(job_id)
    assert rows[1] == [first, "During"]


def test_csv_round_trips_hazards(client: Client) -> None:
    hazards = {"Last_Name": "Zoë Ærø 北京 🚀", "Company": 'Comma, "quoted" Co',
               "Description": "line one\nline two, with comma\r\nand \"quotes\"",
               "First_Name": "\ufeffBom", "Street": "x" * 120_000,
               "Interests": ["Widgets", "Cloud, Hosted"], "Email_Opt_Out": True,
               "Annual_Revenue": 1200.5, "No_of_Employees": 12,
               "Next_Follow_Up": "2025-04-06", "Owner": "4876543000000300002",
               "Referred_Account": "4876543000002000002", "Modified_Time":
               "2025-03-02T21:21:05+00:00"}
    made = client.admin("POST", "/modules/Leads/records", hazards).json()
    details, rows = client.export({**LEADS, "criteria": {
        "field": {"api_name": "id"}, "comparator": "equal", "value": made["id"]}})
    header, row = rows[0], rows[1]
    cell = dict(zip(header, row, strict=True))
    assert header[0] == "Id"
    assert details["result"]["count"] == 1
    assert cell["Last_Name"] == hazards["Last_Name"]
    assert cell["Company"] == hazards["Company"]
    assert cell["Description"] == hazards["Description"]
    assert cell["First_Name"] == "\ufeffBom"
    assert len(cell["Street"]) == 120_000
    assert cell["Interests"] == "Widgets;Cloud, Hosted"
    assert cell["Email_Opt_Out"] == "true"
    assert cell["Annual_Revenue"] == "1200.5"
    assert cell["Owner"] == "4876543000000300002"
    assert cell["Referred_Account"] == "4876543000002000002"
    assert cell["Modified_Time"] == "2025-03-02T16:21:05-05:00"
    assert cell["Website"] == ""
    assert "Attachment_File" not in header
    assert "Helpers" not in header


def test_seeded_csv_matches_truth(client: Client) -> None:
    _, rows = client.export({**LEADS, "fields": ["Email", "Full_Name", "Owner"]})
    truth = {r["id"]: r for r in client.truth()}
    for record_id, email, full_name, owner in rows[1:]:
        assert email == (truth[record_id]["Email"] or "")
        assert full_name == truth[record_id]["Full_Name"]
        assert owner == truth[record_id]["Owner"]["id"]


def test_modified_time_window_criteria(client: Client) -> None:
    truth = client.truth()
    stamps = sorted(r["Modified_Time"] for r in truth)
    low, high = stamps[10], stamps[40]
    details, rows = client.export({**LEADS, "fields": ["Modified_Time"], "criteria": {
        "group_operator": "and", "group": [
            {"field": {"api_name": "Modified_Time"}, "comparator": "greater_equal",
             "value": low},
            {"field": {"api_name": "Modified_Time"}, "comparator": "less_than",
             "value": high}]}})
    expected = [r["id"] for r in truth if low <= r["Modified_Time"] < high]
    assert [row[0] for row in rows[1:]] == expected[:25]
    assert details["query"]["criteria"]["group"][0]["field"]["id"]


def test_text_and_in_criteria(client: Client) -> None:
    truth = client.truth()
    _, rows = client.export({**LEADS, "criteria": {"group_operator": "or", "group": [
        {"field": {"api_name": "City"}, "comparator": "in", "value": ["Boston", "Austin"]},
        {"field": {"api_name": "Company"}, "comparator": "starts_with", "value": "blue"}]}})
    expected = [r["id"] for r in truth if r["City"] in ("Boston", "Austin")
                or r["Company"].lower().startswith("blue")]
    assert [row[0] for row in rows[1:]] == expected[:25]


def test_download_limit_is_ten_a_minute(client: Client) -> None:
    job_id = client.create_job(LEADS)
    client.wait_job(job_id)
    codes = [client.get(f"/crm/bulk/v8/read/{job_id}/result").status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    client.admin("POST", "/clock", {"advance_seconds": 61})
    assert client.get(f"/crm/bulk/v8/read/{job_id}/result").status_code == 200


def test_corrupt_and_truncated_zip_faults(client: Client) -> None:
    job_id = client.create_job(LEADS)
    client.wait_job(job_id)
    client.fault("corrupt_zip")
    corrupt = client.get(f"/crm/bulk/v8/read/{job_id}/result").content
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(corrupt))
    whole = client.get(f"/crm/bulk/v8/read/{job_id}/result").content
    assert read_zip(whole, job_id)
    client.fault("truncated_zip")
    cut = client.get(f"/crm/bulk/v8/read/{job_id}/result").content
    assert len(cut) == len(whole) // 2
    with pytest.raises(zipfile.BadZipFile):
        read_zip(cut, job_id)


def test_page_faults(client: Client) -> None:
    details, _ = client.export(LEADS)
    client.fault("page_token_expired")
    answer = client.send("POST", "/crm/bulk/v8/read",
                         json={"query": {"page_token": details["result"]["next_page_token"]}})
    assert answer.json()["data"][0]["code"] == "EXPIRED_VALUE"
    client.fault("page_range_exceeded")
    answer = client.send("POST", "/crm/bulk/v8/read", json={"query": LEADS})
    assert answer.status_code == 400
    assert answer.json() == {"code": "PAGE_RANGE_EXCEEDED", "details": {"max_limit": 500},
                             "message": "page range exceeded", "status": "error"}


def test_stats_count_calls_jobs_and_credits(client: Client) -> None:
    client.admin("POST", "/stats/reset")
    job_id = client.create_job(LEADS)
    client.wait_job(job_id)
    stats = client.admin("GET", "/stats").json()
    assert stats["calls"]["bulk_create"] == 1
    assert stats["calls"]["bulk_status"] >= 1
    assert stats["jobs"][0]["id"] == job_id
    assert stats["jobs"][0]["state"] == "COMPLETED"
    assert stats["credits_used"] == 50 + stats["calls"]["bulk_status"]


def test_page_of_200000_rows_is_quick() -> None:
    with Emulator(leads=200_000, job_seconds=0) as emu:
        client = Client(emu)
        started = time.monotonic()
        details = client.wait_job(client.create_job(LEADS), timeout=30)
        assert details["result"]["count"] == 200_000
        assert time.monotonic() - started < 15
