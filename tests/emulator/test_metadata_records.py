"""Modules, fields, Get Records by ids and the deleted-records list."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Client

EXAMPLES = Path("/work/shared/zoho-api/examples")


def test_modules_lists_api_and_non_api_modules(client: Client) -> None:
    modules = {m["api_name"]: m for m in client.get("/crm/v8/settings/modules").json()["modules"]}
    assert modules["Leads"]["api_supported"] is True
    assert modules["Home"]["api_supported"] is False
    assert modules["LeadsXProducts"]["generated_type"] == "linking"
    assert set(modules["Leads"]) >= {"id", "module_name", "plural_label", "status", "visible",
                                     "recycle_bin_on_delete", "generated_type"}


def test_leads_fields_cover_every_example_type(client: Client) -> None:
    fields = client.get("/crm/v8/settings/fields", params={"module": "Leads"}).json()["fields"]
    types = {f["data_type"] for f in fields}
    if EXAMPLES.exists():
        example = json.loads((EXAMPLES / "fields_response_leads.json").read_text())
        assert {f["data_type"] for f in example["fields"]} <= types
    names = {f["api_name"] for f in fields}
    assert {"Email", "Lead_Status", "Converted_Account", "Tag", "Owner", "Zip_Code"} <= names
    assert 35 <= len(fields) <= 50


def test_fields_of_unknown_module(client: Client) -> None:
    answer = client.get("/crm/v8/settings/fields", params={"module": "Nope"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_MODULE"


def test_records_by_ids_shape(client: Client) -> None:
    truth = client.truth()
    ids = [r["id"] for r in truth[:3]]
    answer = client.get("/crm/v8/Leads", params={"ids": ",".join(ids),
                                                 "fields": "Owner,Last_Name,Modified_Time"})
    data = answer.json()["data"]
    assert answer.status_code == 200
    assert {r["id"] for r in data} == set(ids)
    owner = data[0]["Owner"]
    assert set(owner) == {"name", "id", "email"}
    assert data[0]["Modified_Time"].endswith("-05:00")
    assert set(data[0]) == {"Owner", "Last_Name", "Modified_Time", "id"}


def test_records_need_fields_and_limit_them(client: Client) -> None:
    record_id = client.truth()[0]["id"]
    missing = client.get("/crm/v8/Leads", params={"ids": record_id})
    assert missing.status_code == 400
    assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    many = ",".join(["Last_Name"] * 51)
    limit = client.get("/crm/v8/Leads", params={"ids": record_id, "fields": many})
    assert limit.status_code == 400
    assert limit.json()["code"] == "LIMIT_EXCEEDED"
    none = client.get("/crm/v8/Leads", params={"ids": "1234567890123456789",
                                               "fields": "Last_Name"})
    assert none.status_code == 204
    assert none.content == b""


def test_list_call_with_if_modified_since(client: Client) -> None:
    first = client.get("/crm/v8/Leads", params={"fields": "Last_Name", "per_page": 50})
    assert first.json()["info"]["more_records"] is True
    later = "2999-01-01T00:00:00+00:00"
    answer = client.get("/crm/v8/Leads", params={"fields": "Last_Name"},
                        headers={"If-Modified-Since": later})
    assert answer.status_code == 304


def test_deleted_list_pages_and_filters(client: Client) -> None:
    ids = [r["id"] for r in client.truth()[:5]]
    for record_id in ids:
        client.admin("DELETE", f"/modules/Leads/records/{record_id}")
    client.admin("POST", "/clock", {"advance_seconds": 10})
    client.admin("DELETE", f"/modules/Leads/records/{client.truth()[0]['id']}?permanent=true")
    page1 = client.get("/crm/v8/Leads/deleted", params={"type": "all", "per_page": 4})
    page2 = client.get("/crm/v8/Leads/deleted", params={"type": "all", "per_page": 4,
                                                         "page": 2})
    assert page1.json()["info"] == {"per_page": 4, "count": 4, "page": 1, "more_records": True}
    assert page2.json()["info"]["count"] == 2
    assert page2.json()["info"]["more_records"] is False
    newest = page1.json()["data"][0]
    assert newest["type"] == "permanent"
    assert newest["deleted_by"] is None
    recycle = client.get("/crm/v8/Leads/deleted", params={"type": "recycle"}).json()["data"]
    assert sorted(r["id"] for r in recycle) == sorted(ids)
    assert recycle[0]["deleted_by"]["name"]
    assert recycle[0]["display_name"]
    empty = client.get("/crm/v8/Leads/deleted", params={"page": 9})
    assert empty.status_code == 204
    bad = client.get("/crm/v8/Leads/deleted", params={"type": "bin"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "PATTERN_NOT_MATCHED"


def test_deleted_if_modified_since_means_deleted_after(client: Client) -> None:
    first, second = (r["id"] for r in client.truth()[:2])
    client.admin("DELETE", f"/modules/Leads/records/{first}")
    client.admin("POST", "/clock", {"advance_seconds": 60})
    now = client.admin("POST", "/clock", {"advance_seconds": 0}).json()["now"]
    client.admin("POST", "/clock", {"advance_seconds": 5})
    client.admin("DELETE", f"/modules/Leads/records/{second}")
    answer = client.get("/crm/v8/Leads/deleted", headers={"If-Modified-Since": now})
    assert [r["id"] for r in answer.json()["data"]] == [second]


def test_admin_create_edit_restore_round_trip(client: Client) -> None:
    made = client.admin("POST", "/modules/Leads/records",
                        {"Last_Name": "Quote \"Test\"", "Company": "Zoë, Inc.",
                         "Referred_Account": {"id": "4876543000002000001"},
                         "Interests": ["Widgets", "Gadgets"]}).json()
    assert made["Referred_Account"] == {"name": "Example Co", "id": "4876543000002000001"}
    assert made["Interests"] == ["Widgets", "Gadgets"]
    assert made["Owner"]["email"]
    client.admin("POST", "/clock", {"advance_seconds": 120})
    edited = client.admin("PATCH", f"/modules/Leads/records/{made['id']}",
                          {"Lead_Status": "Contacted"}).json()
    assert edited["Modified_Time"] > made["Modified_Time"]
    client.admin("DELETE", f"/modules/Leads/records/{made['id']}")
    assert made["id"] not in {r["id"] for r in client.truth()}
    client.admin("POST", f"/modules/Leads/records/{made['id']}/restore")
    assert made["id"] in {r["id"] for r in client.truth()}
