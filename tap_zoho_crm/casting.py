"""CSV cell → typed value, one caster per column built once per page.

This is the hot path of a full load. ``RowCaster`` is built from a page's header and the
stream's column kinds, then turns each CSV row into a record with one list comprehension
over prebuilt callables.

Invariants:

- An empty cell is ``None`` for every kind (Zoho writes nulls and empty strings alike).
- Numbers are ``Decimal``: target-postgres stores ``numeric``, and Decimal keeps every
  digit Zoho sent (a float would turn ``9007199254740993`` or ``0.1`` into something else).
- Date-times become ISO 8601 in UTC (``+00:00``); a value without offset is an error.
- A cell that cannot be cast raises ``CastError`` naming the column and the record id,
  never the value itself (it may be personal data). No value is ever invented.
- The id column matches ``id`` case-insensitively (Zoho's docs say ``id``, its SDKs ``Id``).
"""

from __future__ import annotations

import datetime
import decimal
import operator
import sys
import typing as t

from tap_zoho_crm.errors import CastError
from tap_zoho_crm.schema import DELETED_AT, ID, Kind

Caster = t.Callable[[str], t.Any]

_UTC = datetime.timezone.utc
_BOOLEANS = {"true": True, "false": False}


def cast_digits(value: str) -> str:
    """Record ids and lookups: digits as text, never a number."""
    if value.isdigit() and value.isascii():
        return value
    msg = "expected digits"
    raise ValueError(msg)


def cast_bigint(value: str) -> str:
    """Zoho ``bigint``: optionally signed digits, kept as text."""
    digits = value[1:] if value[:1] == "-" else value
    if digits.isdigit() and digits.isascii():
        return value
    msg = "expected an integer"
    raise ValueError(msg)


def cast_integer(value: str) -> int:
    """Zoho ``integer``: plain ASCII digits, optionally signed."""
    if "_" in value or not value.isascii():
        msg = "expected an integer"
        raise ValueError(msg)
    return int(value)


def cast_number(value: str) -> decimal.Decimal:
    """Zoho ``double``/``currency``/``percent``: an exact, finite Decimal."""
    number = decimal.Decimal(value)
    if not number.is_finite() or "_" in value:
        msg = "expected a finite decimal number"
        raise ValueError(msg)
    return number


def cast_boolean(value: str) -> bool:
    """``true``/``false`` in any letter case."""
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        msg = "expected true or false"
        raise ValueError(msg) from None


def cast_date(value: str) -> str:
    """``YYYY-MM-DD``, validated."""
    return datetime.date.fromisoformat(value).isoformat()


def _parse_datetime(value: str) -> datetime.datetime:
    if value[-1:] in ("Z", "z") and sys.version_info < (3, 11):  # pragma: no cover
        value = value[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(value)


def cast_datetime(value: str) -> str:
    """ISO 8601 with an offset → ISO 8601 in UTC."""
    moment = _parse_datetime(value)
    if moment.tzinfo is None:
        msg = "expected a date-time with a UTC offset"
        raise ValueError(msg)
    return moment.astimezone(_UTC).isoformat()


def cast_multiselect(value: str) -> list[str]:
    """Values joined with ``;`` → list; blanks around each value are dropped."""
    return [part.strip() for part in value.split(";") if part.strip()]


CASTERS: dict[Kind, Caster | None] = {
    Kind.ID: cast_digits,
    Kind.TEXT: None,
    Kind.BIGINT: cast_bigint,
    Kind.INTEGER: cast_integer,
    Kind.NUMBER: cast_number,
    Kind.BOOLEAN: cast_boolean,
    Kind.DATE: cast_date,
    Kind.DATETIME: cast_datetime,
    Kind.LOOKUP: cast_digits,
    Kind.MULTISELECT: cast_multiselect,
}
"""Caster per kind; ``None`` means the text is kept as is."""

_CAST_FAILURES = (ValueError, TypeError, ArithmeticError, KeyError)

EXPECTED: dict[Kind, str] = {
    Kind.ID: "digits",
    Kind.TEXT: "text",
    Kind.BIGINT: "an integer kept as text",
    Kind.INTEGER: "an integer",
    Kind.NUMBER: "a finite decimal number",
    Kind.BOOLEAN: "true or false",
    Kind.DATE: "a date YYYY-MM-DD",
    Kind.DATETIME: "an ISO 8601 date-time with a UTC offset",
    Kind.LOOKUP: "a record id (digits)",
    Kind.MULTISELECT: "values joined with ';'",
}
"""What each kind expects, for error messages (Python's own messages quote the value)."""


class RowCaster:
    """Casts CSV rows of one page into records.

    Columns of the header that are not in ``kinds`` are skipped; columns of ``kinds`` that
    the header lacks are listed in ``missing`` and absent from the records.
    """

    def __init__(self, header: t.Sequence[str], kinds: t.Mapping[str, Kind]) -> None:
        self.width = len(header)
        names: list[str] = []
        indices: list[int] = []
        casters: list[Caster] = []
        self.kinds: list[Kind] = []
        self.id_index: int | None = None
        for index, column in enumerate(header):
            name = ID if column.lower() == ID else column
            kind = kinds.get(name)
            if kind is None or name in names:
                continue
            if name == ID:
                self.id_index = index
            names.append(name)
            indices.append(index)
            # ``str`` of a str is the str itself: the cheapest call that keeps text as is.
            casters.append(CASTERS[kind] or str)
            self.kinds.append(kind)
        if self.id_index is None:
            msg = "The Bulk Read CSV has no id column (neither 'Id' nor 'id')"
            raise CastError(msg)
        self.names = tuple(names)
        self.missing = tuple(name for name in kinds if name not in names)
        self._casters = tuple(casters)
        self._pick = _picker(indices, self.width)

    def __call__(self, row: list[str]) -> dict[str, t.Any]:
        """One typed record from one CSV row."""
        if len(row) != self.width:
            raise self._width_error(row)
        try:
            values = [
                cast(cell) if cell else None
                for cast, cell in zip(self._casters, self._pick(row), strict=True)
            ]
        except _CAST_FAILURES:
            raise self._explain(row) from None
        record = dict(zip(self.names, values, strict=True))
        record[DELETED_AT] = None
        return record

    def _width_error(self, row: list[str]) -> CastError:
        row_id = row[self.id_index] if self.id_index is not None and row else "?"
        msg = f"CSV row of record id {row_id} has {len(row)} cells; the header has {self.width}"
        return CastError(msg)

    def _explain(self, row: list[str]) -> CastError:
        """Find the first cell that fails and describe it without its value."""
        row_id = row[self.id_index] if self.id_index is not None else "?"
        for name, kind, cast, cell in zip(
            self.names, self.kinds, self._casters, self._pick(row), strict=True
        ):
            if not cell:
                continue
            try:
                cast(cell)
            except _CAST_FAILURES:
                msg = (
                    f"Cannot cast column {name!r} ({kind.value}) of record id {row_id}: "
                    f"expected {EXPECTED[kind]}, got a value of {len(cell)} characters"
                )
                return CastError(msg)
        return CastError(f"Cannot cast record id {row_id}")  # pragma: no cover


def _picker(indices: list[int], width: int) -> t.Callable[[list[str]], t.Sequence[str]]:
    """Fastest way to take the wanted cells of a row, in header order."""
    if indices == list(range(width)):
        return _identity_row
    if len(indices) == 1:
        index = indices[0]
        return lambda row: (row[index],)
    return t.cast("t.Callable[[list[str]], t.Sequence[str]]", operator.itemgetter(*indices))


def _identity_row(row: list[str]) -> list[str]:
    return row
