"""Each column kind's cast from a Bulk Read CSV cell, and how failures are reported."""

from __future__ import annotations

import decimal

import pytest

from tap_zoho_crm.casting import RowCaster
from tap_zoho_crm.errors import CastError
from tap_zoho_crm.schema import DELETED_AT, Kind

KINDS = {
    "id": Kind.ID,
    "Name": Kind.TEXT,
    "Ref": Kind.BIGINT,
    "Count": Kind.INTEGER,
    "Amount": Kind.NUMBER,
    "Opt_Out": Kind.BOOLEAN,
    "Due": Kind.DATE,
    "Modified_Time": Kind.DATETIME,
    "Owner": Kind.LOOKUP,
    "Tags": Kind.MULTISELECT,
}
HEADER = ["Id", *list(KINDS)[1:]]


def cast_one(column: str, cell: str) -> object:
    row = ["4000000000001000001"] + [""] * (len(HEADER) - 1)
    row[HEADER.index(column)] = cell
    return RowCaster(HEADER, KINDS)(row)[column]


@pytest.mark.parametrize(
    ("column", "cell", "expected"),
    [
        ("Name", 'Ünïcode, "quoted"', 'Ünïcode, "quoted"'),
        ("Ref", "9007199254740993", "9007199254740993"),
        ("Ref", "-12", "-12"),
        ("Count", "250", 250),
        ("Amount", "12000.00", decimal.Decimal("12000.00")),
        ("Amount", "0.1", decimal.Decimal("0.1")),
        ("Opt_Out", "true", True),
        ("Opt_Out", "FALSE", False),
        ("Due", "2025-04-06", "2025-04-06"),
        ("Modified_Time", "2025-03-02T16:21:05-05:00", "2025-03-02T21:21:05+00:00"),
        ("Modified_Time", "2025-03-02T21:21:05Z", "2025-03-02T21:21:05+00:00"),
        ("Owner", "4000000000000300001", "4000000000000300001"),
        ("Tags", "Widgets;Gadgets; Support Plans", ["Widgets", "Gadgets", "Support Plans"]),
    ],
)
def test_each_kind_casts_to_the_stream_shape(column: str, cell: str, expected: object) -> None:
    assert cast_one(column, cell) == expected


def test_numbers_keep_every_digit_as_decimal() -> None:
    value = cast_one("Amount", "12345678901234567.123456789")
    assert isinstance(value, decimal.Decimal)
    assert str(value) == "12345678901234567.123456789"


@pytest.mark.parametrize("column", list(KINDS)[1:])
def test_empty_cell_is_null_for_every_kind(column: str) -> None:
    assert cast_one(column, "") is None


@pytest.mark.parametrize(
    ("column", "cell"),
    [
        ("Count", "12.5"),
        ("Amount", "12,5"),
        ("Amount", "NaN"),
        ("Opt_Out", "yes"),
        ("Due", "06/04/2025"),
        ("Modified_Time", "2025-03-02T16:21:05"),
        ("Owner", "User Alpha"),
        ("Ref", "4.0E18"),
    ],
)
def test_bad_cell_names_column_and_record_id_not_value(column: str, cell: str) -> None:
    with pytest.raises(CastError) as caught:
        cast_one(column, cell)
    message = str(caught.value)
    assert repr(column) in message
    assert "4000000000001000001" in message
    assert cell not in message


def test_id_header_matches_any_case_and_unknown_columns_are_skipped() -> None:
    caster = RowCaster(["ID", "Extra.Name", "Count"], {"id": Kind.ID, "Count": Kind.INTEGER})
    assert caster(["7", "ignored", "3"]) == {"id": "7", "Count": 3, DELETED_AT: None}


def test_missing_schema_columns_are_reported_not_invented() -> None:
    caster = RowCaster(["id"], {"id": Kind.ID, "Count": Kind.INTEGER})
    assert caster.missing == ("Count",)
    assert caster(["7"]) == {"id": "7", DELETED_AT: None}


def test_header_without_id_column_is_an_error() -> None:
    with pytest.raises(CastError, match="no id column"):
        RowCaster(["Name"], KINDS)


def test_row_with_wrong_cell_count_is_an_error() -> None:
    caster = RowCaster(["id", "Count"], {"id": Kind.ID, "Count": Kind.INTEGER})
    with pytest.raises(CastError, match="record id 7 has 3 cells"):
        caster(["7", "1", "2"])
