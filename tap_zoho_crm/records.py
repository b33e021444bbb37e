"""Get Records by ids and Get Deleted Records, normalised to the stream's value shapes.

JSON values are brought to the same shapes as the Bulk Read CSV casts (``casting.py``):
lookups become the referenced id, date-times UTC ISO strings, numbers exact ``Decimal``,
multi-selects lists of strings. Invariants:

- At most ``MAX_IDS`` ids and ``MAX_FIELDS`` fields per call; field chunks are merged by id,
  and every chunk asks for ``Modified_Time`` so a record's parts can be checked to belong
  to one version.
- Only columns of the given kinds are kept; ``_sdc_deleted_at`` is ``None``.
- The deleted list is read page by page until ``more_records`` is false.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import typing as t

from tap_zoho_crm import casting
from tap_zoho_crm.errors import CastError, DataError
from tap_zoho_crm.schema import DELETED_AT, ID, REPLICATION_KEY, Kind

if t.TYPE_CHECKING:
    from tap_zoho_crm.client import ZohoClient

MAX_IDS = 100
MAX_FIELDS = 50
DELETED_PER_PAGE = 200
CONSISTENCY_ROUNDS = 3


def normalise_value(kind: Kind, value: t.Any) -> t.Any:
    """One JSON value → the stream's shape for ``kind``; raises ValueError/TypeError."""
    if value is None or value in ("", []):
        return None
    if kind in (Kind.LOOKUP, Kind.ID):
        if isinstance(value, dict):
            value = value.get("id")
            if value is None:
                return None
        return casting.cast_digits(str(value))
    if kind is Kind.BIGINT:
        return casting.cast_bigint(str(value))
    if kind is Kind.TEXT:
        return value if isinstance(value, str) else str(value)
    if kind is Kind.INTEGER:
        return _integer(value)
    if kind is Kind.NUMBER:
        return _number(value)
    if kind is Kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        return casting.cast_boolean(str(value))
    if kind is Kind.DATE:
        return casting.cast_date(str(value))
    if kind is Kind.DATETIME:
        return casting.cast_datetime(str(value))
    return _multiselect(value)


def _integer(value: t.Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
        return int(value)
    return casting.cast_integer(str(value))


def _number(value: t.Any) -> decimal.Decimal:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, decimal.Decimal):
        return value
    # An int or a numeric string; floats never reach here (client parses them as Decimal).
    return casting.cast_number(str(value))


def _multiselect(value: t.Any) -> list[str] | None:
    if isinstance(value, list):
        # Tags arrive as {"name", "id"} objects; the CSV carries their names.
        names = [str(item["name"]) if isinstance(item, dict) else str(item) for item in value]
        return [name for name in names if name] or None
    return casting.cast_multiselect(str(value))


def normalise_record(item: t.Mapping[str, t.Any], kinds: t.Mapping[str, Kind]) -> dict[str, t.Any]:
    """A Get Records row → a stream record holding only the kinds' columns."""
    record: dict[str, t.Any] = {}
    for name, kind in kinds.items():
        if name not in item:
            continue
        try:
            record[name] = normalise_value(kind, item[name])
        except (ValueError, TypeError, ArithmeticError):
            msg = (
                f"Cannot normalise field {name!r} ({kind.value}) of record id "
                f"{item.get(ID, '?')}: expected {casting.EXPECTED[kind]}"
            )
            raise CastError(msg) from None
    record[DELETED_AT] = None
    return record


def _chunks(items: t.Sequence[str], size: int) -> t.Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def fetch_records_by_ids(
    client: ZohoClient,
    module: str,
    ids: t.Sequence[str],
    kinds: t.Mapping[str, Kind],
) -> list[dict[str, t.Any]]:
    """Records for ``ids`` (≤ 100 per call) with every column of ``kinds``.

    Ids Zoho no longer has are absent from the result; order follows ``ids``. A record
    edited between two field chunks (its ``Modified_Time`` differs) is fetched again, up
    to ``CONSISTENCY_ROUNDS`` times, so its columns never mix two versions.
    """
    field_chunks = _field_chunks([name for name in kinds if name != ID])
    merged: dict[str, dict[str, t.Any]] = {}
    pending = list(dict.fromkeys(ids))
    for _ in range(CONSISTENCY_ROUNDS):
        torn: set[str] = set()
        for id_chunk in _chunks(pending, MAX_IDS):
            parts: dict[str, dict[str, t.Any]] = {}
            for field_chunk in field_chunks:
                _merge_chunk(
                    client, module, ids=id_chunk, fields=field_chunk, parts=parts, torn=torn
                )
            merged.update((key, value) for key, value in parts.items() if key not in torn)
        if not torn:
            break
        pending = [record_id for record_id in pending if record_id in torn]
    else:
        msg = (
            f"{len(pending)} {module} records kept changing while their fields were "
            f"fetched in chunks (e.g. id {pending[0]})"
        )
        raise DataError(msg)
    return [normalise_record(merged[key], kinds) for key in ids if key in merged]


def _field_chunks(fields: list[str]) -> list[list[str]]:
    """Chunks of at most MAX_FIELDS names, each with Modified_Time to tie parts together."""
    rest = [name for name in fields if name != REPLICATION_KEY]
    chunks = [[REPLICATION_KEY, *chunk] for chunk in _chunks(rest, MAX_FIELDS - 1)]
    return chunks or [[REPLICATION_KEY]]


def _merge_chunk(
    client: ZohoClient,
    module: str,
    *,
    ids: list[str],
    fields: list[str],
    parts: dict[str, dict[str, t.Any]],
    torn: set[str],
) -> None:
    params = {"ids": ",".join(ids), "fields": ",".join(fields)}
    answer = client.get_json(f"/crm/v8/{module}", params=params)
    for item in answer.get("data") or []:
        record_id = str(item.get(ID) or "")
        if not record_id:
            continue
        known = parts.setdefault(record_id, {})
        earlier = known.get(REPLICATION_KEY)
        if earlier is not None and earlier != item.get(REPLICATION_KEY):
            torn.add(record_id)
        known.update(item)


@dataclasses.dataclass(frozen=True)
class DeletedRecord:
    """One row of the deleted list. ``deleted_time`` is UTC ISO 8601."""

    id: str
    deleted_time: str
    type: str


def fetch_deleted(
    client: ZohoClient,
    module: str,
    since: datetime.datetime | None = None,
) -> t.Iterator[DeletedRecord]:
    """Deleted records of ``module`` (``type=all``), optionally modified since ``since``."""
    headers = {}
    if since is not None:
        headers["If-Modified-Since"] = casting.cast_datetime(since.isoformat())
    page = 1
    while True:
        params = {"type": "all", "page": page, "per_page": DELETED_PER_PAGE}
        answer = client.get_json(f"/crm/v8/{module}/deleted", params=params, headers=headers)
        for item in answer.get("data") or []:
            yield DeletedRecord(
                id=casting.cast_digits(str(item["id"])),
                deleted_time=casting.cast_datetime(str(item["deleted_time"])),
                type=str(item.get("type") or ""),
            )
        if not (answer.get("info") or {}).get("more_records"):
            return
        page += 1
