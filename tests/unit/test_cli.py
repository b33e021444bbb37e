"""The real CLI on bad config: one readable error line, exit code 1, no traceback."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import typing as t

import pytest

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho

TAP = pathlib.Path(sys.executable).parent / "tap-zoho-crm"


def run_tap(
    tmp_path: pathlib.Path, config: dict[str, t.Any], *args: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [str(TAP), "--config", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ERROR lines a run wrote to stderr."""
    return [line for line in result.stderr.splitlines() if "ERROR" in line]


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ERROR line of a failed run that wrote nothing to stdout."""
    errors = error_lines(result)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert result.stdout == ""
    return errors[0]


CASES: dict[str, tuple[dict[str, t.Any], str]] = {
    "missing_secret": ({"client_secret": None}, "'client_secret' is a required property"),
    "blank_secret": ({"client_secret": " "}, "client_secret must not be empty"),
    "unknown_data_center": ({"data_center": "mars"}, "'mars' is not one of"),
    "unknown_module": ({"modules": ["Lead"]}, "no module 'Lead'.*Did you mean Leads"),
    "bad_credentials": ({"client_secret": "nope"}, "rejected the OAuth client"),
    "revoked_token": ({"refresh_token": "nope"}, "rejected refresh_token"),
}


@pytest.mark.parametrize("mode", [(), ("--discover",)], ids=["sync", "discover"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_gives_one_readable_line(
    fake: FakeZoho, tmp_path: pathlib.Path, case: str, mode: tuple[str, ...]
) -> None:
    changes, expected = CASES[case]
    config = {k: v for k, v in {**fake.config(), **changes}.items() if v is not None}
    result = run_tap(tmp_path, config, *mode)
    assert re.search(expected, one_error(result))


def test_sync_writes_typed_records_and_final_state(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    result = run_tap(tmp_path, fake.config())
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    assert len(records) == 10
    assert records[1]["Weighted_Revenue"] == 12000
    assert records[1]["Modified_Time"] == "2025-03-03T21:22:10+00:00"
    state = [m for m in messages if m["type"] == "STATE"][-1]["value"]
    bookmark = state["bookmarks"]["Leads"]
    assert bookmark["replication_key"] == "Modified_Time"
    assert "bulk" not in bookmark


def test_state_between_pages_keeps_next_job_and_token(
    fake: FakeZoho, tmp_path: pathlib.Path
) -> None:
    fake.pages = fake.pages * 2
    result = run_tap(tmp_path, fake.config())
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [m["type"] for m in messages]
    states = [i for i, kind in enumerate(kinds) if kind == "STATE"]
    began = messages[states[0]]["value"]["bookmarks"]["Leads"]["bulk"]
    assert states[0] == 1  # before any row: the load began, no page yet
    assert began["full"]
    assert "page_token" not in began
    first_state = messages[states[1]]["value"]["bookmarks"]["Leads"]["bulk"]
    assert states[1] == 12
    assert first_state["page_token"] == "token-1"
    assert first_state["page"] == 2
    assert first_state["job_id"] in fake.jobs
    assert first_state["window"] == {"start": None, "end": None}
    assert "bulk" not in messages[-1]["value"]["bookmarks"]["Leads"]
