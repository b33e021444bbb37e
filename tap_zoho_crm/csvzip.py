"""Bulk Read results: download the ZIP to disk in chunks, then stream its CSV rows.

Invariants:

- The ZIP is never held whole in memory: it is written to a temporary file in
  ``CHUNK_BYTES`` pieces, and its CSV entry is read through a streaming text wrapper.
- The CSV is decoded as ``utf-8-sig`` (a BOM is dropped) with newline handling left to the
  csv module, so quoted line breaks, commas, quotes and any Unicode survive.
- A ZIP that is corrupt, truncated, or does not hold exactly one CSV raises
  ``CorruptFileError``, also when the damage is only found midway through the rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import sys
import typing as t
import zipfile
import zlib

from tap_zoho_crm.errors import CorruptFileError

if t.TYPE_CHECKING:
    import pathlib

    from tap_zoho_crm.client import ZohoClient

LOGGER = logging.getLogger("tap-zoho-crm.csvzip")

CHUNK_BYTES = 1 << 20
READ_BUFFER_BYTES = 1 << 20


def _raise_field_size_limit() -> None:
    """Zoho text areas hold up to 50,000 characters; csv's default limit is 131,072."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
        except OverflowError:  # pragma: no cover - C long is 32 bits on some platforms
            limit //= 2
        else:
            return


_raise_field_size_limit()


def download(client: ZohoClient, url: str, target: pathlib.Path) -> int:
    """Stream ``url`` into ``target`` in chunks; return the number of bytes written."""
    written = 0
    response = client.request("GET", url, stream=True)
    with response, target.open("wb") as sink:
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            sink.write(chunk)
            written += len(chunk)
    return written


_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


@contextlib.contextmanager
def open_csv(path: pathlib.Path) -> t.Iterator[tuple[list[str], t.Iterator[list[str]]]]:
    """Open the single CSV entry of the ZIP at ``path``: yields (header, row iterator)."""
    try:
        archive = zipfile.ZipFile(path)
    except _DAMAGE as exc:
        msg = f"Bulk Read result {path.name} is not a readable ZIP ({exc})"
        raise CorruptFileError(msg) from None
    with archive:
        entry = _single_csv_entry(archive, path.name)
        try:
            raw = archive.open(entry)
        except _DAMAGE as exc:
            msg = f"Bulk Read result {path.name}: cannot open {entry.filename} ({exc})"
            raise CorruptFileError(msg) from None
        # ZipExtFile answers TextIOWrapper's small reads one by one; a large buffer between
        # them halves the time spent reading a page.
        buffered = io.BufferedReader(t.cast("zipfile.ZipExtFile", raw), READ_BUFFER_BYTES)
        with raw, io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="") as text:
            rows = _guarded(csv.reader(text), path.name)
            header = next(rows, None)
            if header is None:
                msg = f"Bulk Read result {path.name}: {entry.filename} is empty (no header)"
                raise CorruptFileError(msg)
            yield header, rows


def _single_csv_entry(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    entries = [info for info in archive.infolist() if not info.is_dir()]
    if len(entries) != 1:
        msg = f"Bulk Read result {name} holds {len(entries)} files; expected one CSV"
        raise CorruptFileError(msg)
    return entries[0]


def _guarded(rows: t.Iterator[list[str]], name: str) -> t.Iterator[list[str]]:
    """Re-raise damage found while reading (bad CRC, truncated deflate) as CorruptFileError."""
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        msg = f"Bulk Read result {name} is not valid UTF-8 ({exc.reason})"
        raise CorruptFileError(msg) from None
    except (*_DAMAGE, csv.Error) as exc:
        msg = f"Bulk Read result {name} is damaged ({exc})"
        raise CorruptFileError(msg) from None
