"""The real CLI on bad settings, files and STATE: exit 1 and one ERROR line naming the fix.

Every case here used to end in a traceback, an SDK error plus ours, or a silent full load.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import typing as t

import pytest

from tests.unit.test_cli import TAP, one_error

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TAP), *args], capture_output=True, text=True, timeout=60, check=False
    )


def write(path: pathlib.Path, value: t.Any) -> str:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return str(path)


def config_file(fake: FakeZoho, tmp_path: pathlib.Path, **changes: t.Any) -> str:
    config = {**fake.config(event_store_url=f"sqlite:///{tmp_path}/events.sqlite3"), **changes}
    return write(tmp_path / "config.json", {k: v for k, v in config.items() if v is not None})


SETTINGS: dict[str, tuple[dict[str, t.Any], str]] = {
    "start_date": ({"start_date": "yesterday"}, r"start_date 'yesterday' is not an ISO 8601"),
    "timeout": ({"request_timeout_seconds": 0}, r"request_timeout_seconds must be greater than 0"),
    "retries": ({"max_retries": -1}, r"max_retries must be 0 or more"),
    "poll": (
        {"bulk_poll_initial_seconds": 5, "bulk_poll_max_seconds": 1},
        r"bulk_poll_initial_seconds must not exceed bulk_poll_max_seconds",
    ),
    "poll_zero": ({"bulk_poll_initial_seconds": 0}, r"bulk_poll_initial_seconds must be greater"),
    "job_timeout": ({"bulk_job_timeout_seconds": -1}, r"bulk_job_timeout_seconds must be greater"),
    "reconcile": ({"reconcile_interval_hours": 0}, r"reconcile_interval_hours must be greater"),
    "retention": ({"event_retention_hours": -1}, r"event_retention_hours must be"),
    "margin": ({"catchup_margin_seconds": -1}, r"catchup_margin_seconds must be 0 or more"),
    "budget": ({"daily_credit_budget": 0}, r"daily_credit_budget must be greater than 0"),
    "accounts_url": ({"accounts_url": "not a url"}, r"accounts_url 'not a url' must be an abso"),
    "accounts_scheme": ({"accounts_url": "ftp://x"}, r"accounts_url 'ftp://x' must be an abso"),
    "webhook_url": ({"webhook_public_url": "example.com/hook"}, r"webhook_public_url .* abso"),
    "token": ({"webhook_token": "t" * 51}, r"webhook_token must be at most 50 characters"),
    "expiry": ({"channel_expiry_hours": 169}, r"channel_expiry_hours must be between 1 and 168"),
    "store_scheme": ({"event_store_url": "mysql://db"}, r"scheme 'mysql' is not supported"),
    "two_problems": (
        {"request_timeout_seconds": 0, "max_retries": -2},
        r"request_timeout_seconds must be .*; max_retries must be",
    ),
    "secret": ({"client_secret": " "}, r"Setting client_secret must not be empty: set it "),
    "secrets": (
        {"client_secret": " ", "refresh_token": ""},
        r"Settings client_secret and refresh_token must not be empty: set them ",
    ),
}


@pytest.mark.parametrize("mode", [(), ("--discover",)], ids=["sync", "discover"])
@pytest.mark.parametrize("case", list(SETTINGS))
def test_bad_setting_is_one_line_naming_it_before_any_call(
    fake: FakeZoho, tmp_path: pathlib.Path, case: str, mode: tuple[str, ...]
) -> None:
    changes, expected = SETTINGS[case]
    result = run("--config", config_file(fake, tmp_path, **changes), *mode)
    assert re.search(expected, one_error(result))
    assert fake.requests == []


def test_sqlite_store_in_a_missing_directory_is_refused(
    fake: FakeZoho, tmp_path: pathlib.Path
) -> None:
    missing = tmp_path / "no-such-dir"
    path = config_file(fake, tmp_path, event_store_url=f"sqlite:///{missing}/events.sqlite3")
    line = one_error(run("--config", path))
    assert f"directory {missing} does not exist; create it first" in line
    assert not missing.exists()


def test_missing_config_file_is_named(tmp_path: pathlib.Path) -> None:
    line = one_error(run("--config", str(tmp_path / "nowhere.json")))
    assert f"--config file {tmp_path / 'nowhere.json'} does not exist" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{bad", r"is not valid JSON \(line 1, column 2"), ("[1]", r"holds a JSON array, not")],
)
def test_malformed_config_file_is_named(tmp_path: pathlib.Path, text: str, expected: str) -> None:
    path = write(tmp_path / "config.json", text)
    line = one_error(run("--config", path))
    assert re.search(rf"--config file {re.escape(path)} {expected}", line)


def test_state_file_that_is_not_json_is_named(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    state = write(tmp_path / "state.json", "nope\n")
    line = one_error(run("--config", config_file(fake, tmp_path), "--state", state))
    assert f"--state file {state} is not valid JSON" in line
    assert fake.requests == []


BAD_BOOKMARKS: dict[str, tuple[dict[str, t.Any], str]] = {
    "event_seq": ({"event_seq": "abc"}, "'event_seq' must be a whole number, 0 or more"),
    "negative_seq": ({"event_seq": -1}, "'event_seq' must be a whole number"),
    "last_sync": ({"last_sync_started_at": "soon"}, "'last_sync_started_at' must be an ISO"),
    "catchup": ({"last_catchup_at": 5}, "'last_catchup_at' must be an ISO 8601"),
    "store_id": ({"event_store_id": 7}, "'event_store_id' must be a string"),
    "bulk": ({"bulk": "x"}, "'bulk' must be a JSON object"),
    "bulk_page": ({"bulk": {"page": 0}}, "'bulk.page' must be a whole number, 1 or more"),
    "bulk_window": (
        {"bulk": {"window": {"start": "now"}}},
        "'bulk.window.start' must be an ISO 8601",
    ),
    "not_object": ([], "its bookmark is not a JSON object"),
}


@pytest.mark.parametrize("case", list(BAD_BOOKMARKS))
def test_malformed_bookmark_stops_the_run_with_the_key_and_the_fix(
    fake: FakeZoho, tmp_path: pathlib.Path, case: str
) -> None:
    bookmark, expected = BAD_BOOKMARKS[case]
    state = write(tmp_path / "state.json", {"bookmarks": {"Leads": bookmark}})
    line = one_error(run("--config", config_file(fake, tmp_path), "--state", state))
    assert "stream 'Leads'" in line
    assert expected in line
    assert "meltano state clear" in line
    assert fake.requests == []


def test_wellformed_state_from_a_finished_sync_is_accepted(
    fake: FakeZoho, tmp_path: pathlib.Path
) -> None:
    config = config_file(fake, tmp_path)
    first = run("--config", config)
    assert first.returncode == 0, first.stderr
    states = [json.loads(line) for line in first.stdout.splitlines() if '"STATE"' in line]
    state = write(tmp_path / "state.json", states[-1]["value"])
    again = run("--config", config, "--state", state)
    assert again.returncode == 0, again.stderr
    assert "ERROR" not in again.stderr
