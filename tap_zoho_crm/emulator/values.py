"""Field values in their three spellings: stored, Get Records JSON, and Bulk Read CSV.

Stored values (the positions of a record tuple) are plain Python: text as `str`, integers
as `int`, decimals as `float`, booleans as `bool`, dates as `YYYY-MM-DD` text, date-times
as epoch seconds, lookups and users as the referenced id, multi-select picklists and tags
as tuples of text, and the never-exported types as whatever JSON the admin gave. `None`
is null everywhere. Names of referenced records come from the `Directory`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._time import Formatter, parse_iso
from .catalog import Field
from .seed import ACCOUNTS, CONSENTS, LAYOUTS, TAGS, USERS

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
USER_ATTRS = {"first_name": 0, "last_name": 1, "email": 2}


@dataclass
class Directory:
    """Names of the records and users that lookups point at (id -> name)."""

    users: dict[str, tuple[str, str, str]] = field(default_factory=lambda: dict(USERS))
    accounts: dict[str, str] = field(default_factory=lambda: dict(ACCOUNTS))
    layouts: dict[str, str] = field(default_factory=lambda: dict(LAYOUTS))
    consents: dict[str, str] = field(default_factory=lambda: dict(CONSENTS))
    tags: dict[str, str] = field(
        default_factory=lambda: {t: f"48765430000000980{n:02d}" for n, t in enumerate(TAGS)}
    )

    def user_json(self, user_id: str) -> dict[str, Any]:
        """A user reference as Get Records spells it: name, id, email."""
        first, last, email = self.users.get(user_id, ("", "Unknown User", None))
        return {"name": f"{first} {last}".strip(), "id": user_id, "email": email}

    def names_for(self, kind: str) -> dict[str, str]:
        """The id -> name table for a lookup-like kind."""
        return {"lookup": self.accounts, "layout": self.layouts,
                "consent": self.consents}[kind]


class ValueProblem(ValueError):
    """An admin-supplied value that does not fit its field's type."""


def to_stored(fld: Field, value: Any, directory: Directory) -> Any:
    """Convert an admin value (Get Records JSON shape, or a bare id) into its stored form."""
    if value is None or (value == "" and fld.kind not in ("text", "id")):
        return None
    kind = fld.kind
    if kind in ("text", "id"):
        return str(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueProblem("expected an integer")
        return int(value)
    if kind == "num":
        if isinstance(value, bool):
            raise ValueProblem("expected a number")
        return float(value)
    if kind == "bool":
        return _to_bool(value)
    if kind == "date":
        if not isinstance(value, str) or not _DATE_RE.match(value):
            raise ValueProblem("expected YYYY-MM-DD")
        return value
    if kind == "datetime":
        return int(value) if isinstance(value, (int, float)) else int(parse_iso(str(value)))
    if kind in ("user", "lookup", "layout", "consent"):
        return _reference(kind, value, directory)
    if kind in ("multi", "tag"):
        return _text_tuple(kind, value, directory)
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueProblem("expected true or false")


def _reference(kind: str, value: Any, directory: Directory) -> str:
    name = None
    if isinstance(value, dict):
        name, value = value.get("name"), value.get("id")
    if not isinstance(value, (str, int)) or not str(value).isdigit():
        raise ValueProblem("expected a record id")
    ref = str(value)
    if kind == "user":
        if ref not in directory.users:
            raise ValueProblem("unknown user id")
    elif name or ref not in directory.names_for(kind):
        directory.names_for(kind)[ref] = name or f"Record {ref}"
    return ref


def _text_tuple(kind: str, value: Any, directory: Directory) -> tuple[str, ...] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueProblem("expected a list")
    items: list[str] = []
    for item in value:
        text = item.get("name") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise ValueProblem("expected text items")
        items.append(text)
    if kind == "tag":
        for name in items:
            directory.tags.setdefault(name, f"48765430000000981{len(directory.tags):02d}")
    return tuple(items) or None


def to_json(fld: Field, value: Any, directory: Directory, fmt: Formatter) -> Any:
    """Spell a stored value the way Get Records answers it."""
    if value is None:
        return None
    kind = fld.kind
    if kind == "datetime":
        return fmt.iso(value)
    if kind == "user":
        return directory.user_json(value)
    if kind in ("lookup", "layout", "consent"):
        return {"name": directory.names_for(kind).get(value), "id": value}
    if kind == "multi":
        return list(value)
    if kind == "tag":
        return [{"name": t, "id": directory.tags.get(t), "color_code": None} for t in value]
    return value


def format_number(value: float | int) -> str:
    """A plain number as the CSV carries it: no grouping, no symbol, no trailing `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


Column = tuple[int, "Callable[[Any], Any] | None"]


def csv_column(fld: Field, fmt: Formatter, attr: str | None = None,
               directory: Directory | None = None) -> Column:
    """How one CSV column is made: the tuple position, and a converter for non-null values.

    A converter of None means the stored value is written as is (text, ids, dates and
    integers; the csv module writes null as the empty cell). `attr` is the part after the
    dot of a dot-notation column (`Owner.last_name`, `Referred_Account.Account_Name`).
    """
    i = fld.index
    if attr is not None and attr != "id" and directory is not None:
        return i, _dotted(fld, attr, directory)
    kind = fld.kind
    if kind in ("text", "id", "date", "lookup", "user", "layout", "consent", "int"):
        return i, None
    if kind == "num":
        places = fld.meta.get("decimal_place") if fld.data_type == "formula" else None
        return i, (lambda v: f"{v:.{places}f}") if places else format_number
    if kind == "bool":
        return i, lambda v: "true" if v else "false"
    if kind == "datetime":
        return i, fmt.iso
    if kind in ("multi", "tag"):
        return i, ";".join
    raise ValueError(f"{fld.api_name} is not exported")


def _dotted(fld: Field, attr: str, directory: Directory) -> Callable[[Any], Any]:
    if fld.kind == "user":
        if attr == "full_name":
            return lambda v: directory.user_json(v)["name"]
        pos = USER_ATTRS[attr]
        return lambda v: (directory.users.get(v) or ("", "", ""))[pos]
    return lambda v: directory.accounts.get(v, "")


def dotted_ok(fld: Field, attr: str) -> bool:
    """True when `field.attr` is a parent field Bulk Read can pull through this lookup."""
    if attr == "id":
        return fld.kind in ("user", "lookup")
    if fld.kind == "user":
        return attr in (*USER_ATTRS, "full_name")
    return fld.kind == "lookup" and fld.lookup_module == "Accounts" and attr == "Account_Name"
