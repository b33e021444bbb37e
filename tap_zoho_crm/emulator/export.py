"""Writing a Bulk Read result: one CSV, named `{job_id}.csv`, inside a ZIP file on disk.

The CSV follows RFC 4180 quoting (fields with a comma, a quote or a line break are quoted,
inner quotes doubled), ends lines with `\\n`, is UTF-8 without a BOM, and holds a header of
API names with `Id` first. Rows are streamed from a frozen view straight into the ZIP, so
only one row is in memory at a time.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from .data import View

Column = tuple[int, "Callable[[Any], Any] | None"]


@dataclass
class ExportResult:
    """What a finished export holds: `count` rows up to `last_id`; `more` if rows remain."""

    count: int
    last_id: str | None
    more: bool


def write_result(path: str, job_id: str, view: View, *, header: list[str], columns: list[Column],
                 predicate: Callable[[tuple], bool] | None, after_id: str | None,
                 skip: int, limit: int) -> ExportResult:
    """Export matching rows after `after_id`, skipping `skip` of them, at most `limit`."""
    count, last_id, more = 0, None, False
    pick = itemgetter(*(index for index, _ in columns))
    fixes = [(pos, convert) for pos, (_, convert) in enumerate(columns) if convert is not None]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive, \
            archive.open(f"{job_id}.csv", "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        for row in view.iter_rows(after_id):
            if predicate is not None and not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            if count == limit:
                more = True
                break
            values = list(pick(row)) if len(columns) > 1 else [pick(row)]
            for pos, convert in fixes:
                if values[pos] is not None:
                    values[pos] = convert(values[pos])
            writer.writerow(values)
            count += 1
            last_id = row[0]
        text.flush()
        text.detach()
    return ExportResult(count, last_id, more)


def corrupted_copy(source: str, target: str) -> str:
    """Copy a ZIP with its compressed data and its end record damaged (`corrupt_zip`)."""
    shutil.copyfile(source, target)
    size = os.path.getsize(target)
    with open(target, "r+b") as handle:
        handle.seek(min(120, size // 2))
        chunk = handle.read(32)
        handle.seek(min(120, size // 2))
        handle.write(bytes(b ^ 0xFF for b in chunk))
        handle.seek(max(0, size - 22))
        handle.write(b"XXXX")  # the end-of-central-directory signature
    return target
