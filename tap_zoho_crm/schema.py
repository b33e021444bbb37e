"""Zoho field metadata → the stream's JSON Schema, value kinds and Bulk Read field list.

Each column gets a *kind* (see ``Kind``) that decides both its JSON Schema and how a CSV cell
or JSON value becomes a typed value (``casting.py``, ``records.py``). Invariants:

- ``id`` is a non-null string of digits; every other property is nullable.
- ``_sdc_deleted_at`` (nullable date-time) is always present.
- Fields Bulk Read does not export are left out of the schema, so the target never nulls
  a column because a full load could not fill it.
- The Bulk ``fields`` list holds at most ``MAX_BULK_FIELDS`` names (Zoho silently exports
  every field beyond that); ``id`` is not in it because the CSV always carries it.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import typing as t

if t.TYPE_CHECKING:
    from tap_zoho_crm.metadata import FieldInfo

LOGGER = logging.getLogger("tap-zoho-crm.schema")

MAX_BULK_FIELDS = 200
ID = "id"
REPLICATION_KEY = "Modified_Time"
DELETED_AT = "_sdc_deleted_at"


class Kind(str, enum.Enum):
    """How values of a column travel and are typed."""

    ID = "id"
    TEXT = "text"
    BIGINT = "bigint"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    LOOKUP = "lookup"
    MULTISELECT = "multiselect"


_BY_DATA_TYPE: dict[str, Kind] = {
    **dict.fromkeys(
        (
            "text",
            "textarea",
            "email",
            "phone",
            "website",
            "picklist",
            "autonumber",
            "profileimage",
            "mediumtext",
            "string",
        ),
        Kind.TEXT,
    ),
    "bigint": Kind.BIGINT,
    "long": Kind.BIGINT,
    "integer": Kind.INTEGER,
    **dict.fromkeys(("double", "currency", "percent", "decimal"), Kind.NUMBER),
    "boolean": Kind.BOOLEAN,
    "date": Kind.DATE,
    **dict.fromkeys(("datetime", "event_reminder"), Kind.DATETIME),
    **dict.fromkeys(
        ("lookup", "ownerlookup", "userlookup", "layout", "consent_lookup"), Kind.LOOKUP
    ),
    "multiselectpicklist": Kind.MULTISELECT,
}

NOT_EXPORTED = frozenset(
    {"multiuserlookup", "multiselectlookup", "subform", "fileupload", "imageupload"}
)
"""Types Bulk Read does not export (NOTES 9.1)."""

_BY_JSON_TYPE: dict[str, Kind] = {
    "string": Kind.TEXT,
    "integer": Kind.INTEGER,
    "double": Kind.NUMBER,
    "boolean": Kind.BOOLEAN,
}

_JSON_SCHEMA: dict[Kind, dict[str, t.Any]] = {
    Kind.ID: {"type": ["string"]},
    Kind.TEXT: {"type": ["string", "null"]},
    Kind.BIGINT: {"type": ["string", "null"]},
    Kind.INTEGER: {"type": ["integer", "null"]},
    Kind.NUMBER: {"type": ["number", "null"]},
    Kind.BOOLEAN: {"type": ["boolean", "null"]},
    Kind.DATE: {"type": ["string", "null"], "format": "date"},
    Kind.DATETIME: {"type": ["string", "null"], "format": "date-time"},
    Kind.LOOKUP: {"type": ["string", "null"]},
    Kind.MULTISELECT: {"type": ["array", "null"], "items": {"type": "string"}},
}


def field_kind(field: FieldInfo) -> tuple[Kind | None, str]:
    """The field's kind, or (None, reason) when the tap leaves it out."""
    if field.api_name == ID:
        return Kind.ID, ""
    data_type = field.data_type.lower()
    if data_type in NOT_EXPORTED:
        return None, f"Bulk Read does not export {data_type} fields"
    if data_type in ("formula", "rollup_summary"):
        return _return_type_kind(field)
    if field.json_type.lower() == "jsonarray" and data_type == "text":
        # Tags: Zoho calls them text but sends a list of {name, id}; the CSV joins the names.
        return Kind.MULTISELECT, ""
    kind = _BY_DATA_TYPE.get(data_type)
    if kind is not None:
        return kind, ""
    # An unknown scalar type still has a json_type we can trust; objects and arrays do not.
    kind = _BY_JSON_TYPE.get(field.json_type.lower())
    if kind is not None:
        return kind, ""
    return None, f"unsupported data_type {data_type!r} (json_type {field.json_type!r})"


def _return_type_kind(field: FieldInfo) -> tuple[Kind | None, str]:
    return_type = (field.return_type or "").lower()
    if return_type in ("text", "string"):
        return Kind.TEXT, ""
    kind = _BY_DATA_TYPE.get(return_type)
    if kind is None or kind in (Kind.LOOKUP, Kind.MULTISELECT):
        return None, f"{field.data_type} with unsupported return_type {return_type!r}"
    return kind, ""


@dataclasses.dataclass(frozen=True)
class ModuleSchema:
    """What the stream needs from a module's fields.

    ``kinds`` maps every schema property except ``_sdc_deleted_at`` to its kind;
    ``bulk_fields`` are the names to request from Bulk Read (``id`` excluded);
    ``left_out`` maps each field the tap skips to the reason.
    """

    schema: dict[str, t.Any]
    kinds: dict[str, Kind]
    bulk_fields: tuple[str, ...]
    left_out: dict[str, str]


def build_module_schema(module: str, fields: t.Sequence[FieldInfo]) -> ModuleSchema:
    """Build the schema; log once at INFO which fields are left out and why."""
    kinds: dict[str, Kind] = {ID: Kind.ID}
    left_out: dict[str, str] = {}
    for field in fields:
        kind, reason = field_kind(field)
        if kind is None:
            left_out[field.api_name] = reason
        elif field.api_name not in kinds:
            kinds[field.api_name] = kind
    bulk_fields = _limit_bulk_fields([name for name in kinds if name != ID], left_out)
    kinds = {name: kind for name, kind in kinds.items() if name == ID or name in bulk_fields}
    if left_out:
        LOGGER.info(
            "%s: %d fields left out of the stream: %s",
            module,
            len(left_out),
            "; ".join(f"{name} ({why})" for name, why in left_out.items()),
        )
    return ModuleSchema(
        schema=json_schema(kinds),
        kinds=kinds,
        bulk_fields=tuple(bulk_fields),
        left_out=left_out,
    )


def _limit_bulk_fields(names: list[str], left_out: dict[str, str]) -> list[str]:
    """Keep at most MAX_BULK_FIELDS names, system time columns first."""
    if len(names) <= MAX_BULK_FIELDS:
        return names
    first = [name for name in (REPLICATION_KEY, "Created_Time") if name in names]
    ordered = first + [name for name in names if name not in first]
    for name in ordered[MAX_BULK_FIELDS:]:
        left_out[name] = f"Bulk Read takes at most {MAX_BULK_FIELDS} fields per job"
    return ordered[:MAX_BULK_FIELDS]


def json_schema(kinds: t.Mapping[str, Kind]) -> dict[str, t.Any]:
    """The stream's JSON Schema for the given column kinds, plus ``_sdc_deleted_at``."""
    properties = {name: dict(_JSON_SCHEMA[kind]) for name, kind in kinds.items()}
    properties[DELETED_AT] = {"type": ["string", "null"], "format": "date-time"}
    return {"type": "object", "properties": properties, "required": [ID]}
