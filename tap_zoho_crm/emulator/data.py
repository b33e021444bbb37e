"""The org's records: seeded rows, admin changes on top, and the recycle bin.

A module's live records are its seeded rows (see `seed.py`) with admin edits laid over
them (`overlay`), the records created through the admin API (`created`, ids above every
seeded id, in id order), minus the deleted ids. Record tuples are never changed in place:
an edit stores a new tuple. That lets a Bulk Read job freeze what it exports by copying
only the small overlay and the deleted-id set (`Table.freeze`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .catalog import USER_IDS, Module
from .seed import BLOCK, SeededRows, created_id
from .values import Directory, ValueProblem, to_stored

SYSTEM_FIELDS = ("id", "Created_Time", "Modified_Time", "Created_By", "Modified_By",
                 "Full_Name", "Lead_Number", "Weighted_Revenue")


@dataclass
class Deleted:
    """A deleted record: its last values (for a restore) and the deleted-list row facts."""

    record: tuple
    kind: str  # "recycle" or "permanent"
    deleted_time: int
    deleted_by: str


@dataclass(frozen=True)
class View:
    """A read-only picture of a module's live records, iterated in ascending id order."""

    seeded: SeededRows
    overlay: dict[str, tuple]
    created: list[str]
    deleted: frozenset[str] | set[str]

    def iter_rows(self, after_id: str | None = None) -> Iterator[tuple]:
        """Yield live record tuples with ids above `after_id`, in ascending id order."""
        overlay, deleted = self.overlay, self.deleted
        start = self._first_seeded_index(after_id)
        for number in range(start // BLOCK, (self.seeded.count + BLOCK - 1) // BLOCK):
            rows = self.seeded.block(number)
            offset = start - number * BLOCK if number == start // BLOCK else 0
            for row in rows[offset:] if offset > 0 else rows:
                rid = row[0]
                if rid in deleted:
                    continue
                yield overlay.get(rid, row)
        first = bisect.bisect_right(self.created, after_id) if after_id else 0
        for rid in self.created[first:]:
            if rid not in deleted:
                yield overlay[rid]

    def _first_seeded_index(self, after_id: str | None) -> int:
        if not after_id:
            return 0
        if len(after_id) != 19 or not after_id.isdigit():
            return self.seeded.count
        low, high = 0, self.seeded.count
        while low < high:  # first seeded row whose id is above after_id
            mid = (low + high) // 2
            if self.seeded.row(mid)[0] <= after_id:
                low = mid + 1
            else:
                high = mid
        return low


class Table:
    """One module's records; callers hold the emulator lock around every method."""

    def __init__(self, module: Module, seeded: SeededRows, directory: Directory) -> None:
        self.module = module
        self.seeded = seeded
        self.directory = directory
        self.overlay: dict[str, tuple] = {}
        self.created: list[str] = []
        self.deleted: dict[str, Deleted] = {}
        self._serial = 0

    def live(self) -> View:
        """A view over the current state (changes as the table changes)."""
        deleted = self.deleted.keys()
        return View(self.seeded, self.overlay, self.created, deleted)  # type: ignore[arg-type]

    def freeze(self) -> View:
        """A view that later changes do not affect (copies only the changed records)."""
        return View(self.seeded, dict(self.overlay), list(self.created),
                    frozenset(self.deleted))

    def get(self, record_id: str) -> tuple | None:
        """The live record with this id, or None."""
        if record_id in self.deleted:
            return None
        if record_id in self.overlay:
            return self.overlay[record_id]
        index = self.seeded.index_of(record_id)
        return None if index is None else self.seeded.row(index)

    def create(self, values: dict[str, Any], now: int) -> tuple:
        """Add a record from admin values; system fields are filled as Zoho fills them."""
        self._serial += 1
        record_id = created_id(self.module.api_name, self.seeded.count, self._serial)
        row: list[Any] = [None] * len(self.module.fields)
        defaults = {"id": record_id, "Owner": USER_IDS[0], "Created_By": USER_IDS[0],
                    "Modified_By": USER_IDS[0], "Created_Time": now, "Modified_Time": now,
                    "Email_Opt_Out": False, "Layout": "4876543000000091023",
                    "Lead_Number": f"LD-{self.seeded.count + self._serial:04d}"}
        for name, value in defaults.items():
            fld = self.module.field(name)
            if fld is not None:
                row[fld.index] = value
        self._apply(row, values, allow_times=True)
        record = self._derive(row)
        self.overlay[record_id] = record
        self.created.append(record_id)
        return record

    def edit(self, record_id: str, values: dict[str, Any], now: int) -> tuple[tuple, list[str]]:
        """Change a live record; returns the new tuple and the API names that changed.

        `Modified_Time` moves to `now` (second precision) unless the values set it.
        """
        old = self.get(record_id)
        if old is None:
            raise KeyError(record_id)
        row = list(old)
        modified = self.module.field("Modified_Time")
        if modified is not None:
            row[modified.index] = now
        self._apply(row, values, allow_times=True)
        record = self._derive(row)
        self.overlay[record_id] = record
        changed = [f.api_name for f in self.module.fields
                   if old[f.index] != record[f.index] and f.api_name not in SYSTEM_FIELDS]
        return record, changed

    def delete(self, record_id: str, now: int, *, permanent: bool = False) -> Deleted:
        """Move a live record to the recycle bin (or straight to permanently deleted)."""
        record = self.get(record_id)
        if record is None:
            raise KeyError(record_id)
        entry = Deleted(record, "permanent" if permanent else "recycle", now, USER_IDS[0])
        self.deleted[record_id] = entry
        return entry

    def restore(self, record_id: str) -> tuple:
        """Bring a recycle-bin record back with its id; it leaves the deleted list."""
        entry = self.deleted.get(record_id)
        if entry is None or entry.kind != "recycle":
            raise KeyError(record_id)
        del self.deleted[record_id]
        return entry.record

    def _apply(self, row: list[Any], values: dict[str, Any], *, allow_times: bool) -> None:
        for name, value in values.items():
            fld = self.module.field(name)
            if fld is None or name == "id" or name in ("Full_Name", "Lead_Number"):
                raise ValueProblem(f"{name}: not a writable field")
            if name in ("Created_Time", "Modified_Time") and not allow_times:
                raise ValueProblem(f"{name}: read only")
            row[fld.index] = to_stored(fld, value, self.directory)

    def _derive(self, row: list[Any]) -> tuple:
        """Recompute the read-only fields Zoho derives from others (name, formula)."""
        fields = self.module.by_name
        if "Full_Name" in fields:
            first = row[fields["First_Name"].index]
            last = row[fields["Last_Name"].index]
            row[fields["Full_Name"].index] = f"{first} {last}" if first else last
        if "Weighted_Revenue" in fields:
            revenue = row[fields["Annual_Revenue"].index]
            rate = row[fields["Discount_Rate"].index]
            weighted = round(revenue * rate / 100, 2) if revenue is not None and rate else None
            row[fields["Weighted_Revenue"].index] = weighted
        return tuple(row)

    def display_name(self, record: tuple) -> str | None:
        """The record's display name in the deleted list (full name, or the first text)."""
        fld = self.module.field("Full_Name") or self.module.field("Note_Title")
        return None if fld is None else record[fld.index]
