"""Get Records by ids and the deleted list, with Zoho's example payloads."""

from __future__ import annotations

import datetime
import decimal
import json
import typing as t

import pytest

from tap_zoho_crm import records
from tap_zoho_crm.client import ZohoClient
from tap_zoho_crm.errors import CastError
from tap_zoho_crm.schema import DELETED_AT, Kind
from tests import apiclient
from tests.unit.fakezoho import example

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho

KINDS = {
    "id": Kind.ID,
    "Owner": Kind.LOOKUP,
    "Email": Kind.TEXT,
    "Annual_Revenue": Kind.NUMBER,
    "Modified_Time": Kind.DATETIME,
    "Interests": Kind.MULTISELECT,
    "No_of_Employees": Kind.INTEGER,
}


def make_client(fake: FakeZoho) -> ZohoClient:
    return ZohoClient(apiclient.make_auth(fake.url, fake.config()), sleep=apiclient.no_wait)


def parsed_example(name: str) -> t.Any:
    return json.loads(json.dumps(example(name)), parse_float=decimal.Decimal)


def test_example_records_normalise_to_csv_shapes() -> None:
    data = parsed_example("records_by_ids_response.json")["data"]
    first, second = (records.normalise_record(item, KINDS) for item in data)
    assert first["Owner"] == "4000000000000300001"
    assert first["Annual_Revenue"] == decimal.Decimal("250000.0")
    assert first["Modified_Time"] == "2025-03-10T09:02:03+00:00"
    assert second["Annual_Revenue"] is None
    assert first[DELETED_AT] is None
    assert "Interests" not in first


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Kind.LOOKUP, {"name": "Acme", "id": "42"}, "42"),
        (Kind.MULTISELECT, ["A", "B"], ["A", "B"]),
        (Kind.INTEGER, 12, 12),
        (Kind.BOOLEAN, True, True),
        (Kind.BIGINT, "9007199254740993", "9007199254740993"),
        (Kind.DATE, "2025-04-06", "2025-04-06"),
        (Kind.TEXT, "", None),
    ],
)
def test_json_values_take_the_stream_shape(kind: Kind, value: t.Any, expected: t.Any) -> None:
    assert records.normalise_value(kind, value) == expected


def test_bad_json_value_names_field_and_id() -> None:
    with pytest.raises(CastError, match=r"'No_of_Employees'.*record id 7"):
        records.normalise_record({"id": "7", "No_of_Employees": "many"}, KINDS)


def test_ids_and_fields_are_chunked_and_merged(fake: FakeZoho) -> None:
    kinds = {"id": Kind.ID, "Modified_Time": Kind.DATETIME}
    kinds |= {f"F{i}": Kind.INTEGER for i in range(60)}
    ids = [str(1000 + i) for i in range(150)]
    fake.records = {
        rid: {"Modified_Time": "2025-03-10T04:02:03-05:00", **{f"F{i}": i for i in range(60)}}
        for rid in ids[:-1]
    }
    got = records.fetch_records_by_ids(make_client(fake), "Leads", ids, kinds)
    assert [r["id"] for r in got] == ids[:-1]
    assert got[0]["F59"] == 59
    calls = [r["query"] for r in fake.requests if r["path"] == "/crm/v8/Leads"]
    assert len(calls) == 4
    assert max(len(c["ids"].split(",")) for c in calls) == 100
    assert max(len(c["fields"].split(",")) for c in calls) == 50


def test_deleted_list_is_read_to_the_last_page(fake: FakeZoho) -> None:
    page = example("deleted_records_response.json")
    first = {**page, "info": {**page["info"], "more_records": True}}
    fake.deleted_pages = [first, page]
    since = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
    got = list(records.fetch_deleted(make_client(fake), "Leads", since))
    assert len(got) == 6
    assert got[2].type == "permanent"
    assert got[0].deleted_time == "2025-03-10T10:04:04+00:00"
    calls = [r for r in fake.requests if r["path"] == "/crm/v8/Leads/deleted"]
    assert [c["query"]["page"] for c in calls] == ["1", "2"]
    assert calls[0]["query"]["type"] == "all"
    assert calls[0]["headers"]["If-Modified-Since"] == "2025-03-01T00:00:00+00:00"
