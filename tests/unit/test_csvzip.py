"""CSV hazards inside the Bulk Read ZIP, and damaged ZIPs."""

from __future__ import annotations

import csv
import io
import pathlib
import zipfile

import pytest

from tap_zoho_crm import csvzip
from tap_zoho_crm.errors import CorruptFileError
from tests.unit.fakezoho import zip_bytes


def write_zip(tmp_path: pathlib.Path, text: str | bytes) -> pathlib.Path:
    path = tmp_path / "job.zip"
    path.write_bytes(zip_bytes("job.csv", text))
    return path


def read_all(path: pathlib.Path) -> tuple[list[str], list[list[str]]]:
    with csvzip.open_csv(path) as (header, rows):
        return header, list(rows)


def test_hazardous_values_survive(tmp_path: pathlib.Path) -> None:
    values = [
        "line one\nline two\r\nline three",
        "a, b, and c",
        'she said "call after 5pm"',
        "Ünïcödé ✓ 日本語 🙂",
        "x" * 200_000,
        "",
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Id", *[f"C{i}" for i in range(len(values))]])
    writer.writerow(["1", *values])
    header, rows = read_all(write_zip(tmp_path, buffer.getvalue()))
    assert header[0] == "Id"
    assert rows == [["1", *values]]


def test_byte_order_mark_is_dropped(tmp_path: pathlib.Path) -> None:
    header, rows = read_all(write_zip(tmp_path, "\ufeffId,Name\n1,x\n".encode()))
    assert header == ["Id", "Name"]
    assert rows == [["1", "x"]]


def test_empty_cells_stay_empty_strings(tmp_path: pathlib.Path) -> None:
    _, rows = read_all(write_zip(tmp_path, "Id,A,B\n1,,\n"))
    assert rows == [["1", "", ""]]


def test_not_a_zip_is_corrupt(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "job.zip"
    path.write_bytes(b"this is not a zip file")
    with pytest.raises(CorruptFileError, match="not a readable ZIP"):
        read_all(path)


def test_truncated_zip_is_corrupt(tmp_path: pathlib.Path) -> None:
    data = zip_bytes("job.csv", "Id,Name\n" + "1,abcdefgh\n" * 50_000)
    path = tmp_path / "job.zip"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError):
        read_all(path)


def test_damaged_deflate_stream_is_found_while_reading(tmp_path: pathlib.Path) -> None:
    data = bytearray(
        zip_bytes("job.csv", "Id,Name\n" + "".join(f"{i},v{i}\n" for i in range(9999)))
    )
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path = tmp_path / "job.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        read_all(path)


def test_zip_with_two_files_is_rejected(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "job.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "Id\n1\n")
        archive.writestr("b.csv", "Id\n2\n")
    with pytest.raises(CorruptFileError, match="holds 2 files"):
        read_all(path)
