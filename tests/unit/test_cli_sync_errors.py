"""Failures during a sync: one line for the tap's own errors, a traceback for bugs, and a
clean stop when the daily credit budget is already used up."""

from __future__ import annotations

import datetime as dt
import json
import logging
import pathlib
import subprocess
import typing as t

import pytest

from tap_zoho_crm import sync
from tap_zoho_crm.errors import ZohoAPIError
from tap_zoho_crm.store import open_store
from tap_zoho_crm.tap import SDK_SYNC_FAILED, TapZohoCRM
from tests.unit.test_cli import error_lines, one_error, run_tap

if t.TYPE_CHECKING:
    from tests.unit.fakezoho import FakeZoho

SDK_LINE = SDK_SYNC_FAILED.split("'")[0]


def config(fake: FakeZoho, tmp_path: pathlib.Path, **extra: t.Any) -> dict[str, t.Any]:
    return fake.config(event_store_url=f"sqlite:///{tmp_path}/events.sqlite3", **extra)


def sync_refused_by_bulk_read(
    fake: FakeZoho, tmp_path: pathlib.Path, code: str
) -> subprocess.CompletedProcess[str]:
    """A sync whose Bulk Read job creation Zoho answers 400 ``code``."""
    body = {"data": [{"code": code, "message": "refused", "status": "error"}]}
    fake.faults = [("/crm/bulk/v8/read", 400, body)]
    return run_tap(tmp_path, config(fake, tmp_path))


def test_zoho_error_inside_a_sync_is_logged_once(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    result = sync_refused_by_bulk_read(fake, tmp_path, "INVALID_CRITERIA")
    errors = error_lines(result)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert "INVALID_CRITERIA" in errors[0]
    assert SDK_LINE not in result.stderr


def test_module_bulk_read_refuses_gets_a_hint(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    result = sync_refused_by_bulk_read(fake, tmp_path, "MODULE_NOT_SUPPORTED")
    errors = error_lines(result)
    assert result.returncode == 1
    assert len(errors) == 1, result.stderr
    assert "MODULE_NOT_SUPPORTED" in errors[0]
    assert "remove it from modules" in errors[0]


@pytest.mark.parametrize("mode", [(), ("--discover",)], ids=["sync", "discover"])
@pytest.mark.parametrize("module", ["Notes"])
def test_module_bulk_read_cannot_export_is_refused_at_discovery(
    fake: FakeZoho, tmp_path: pathlib.Path, module: str, mode: tuple[str, ...]
) -> None:
    result = run_tap(tmp_path, config(fake, tmp_path, modules=["Leads", module]), *mode)
    line = one_error(result)
    assert f"module {module} cannot be exported by Bulk Read; remove it from modules" in line
    assert "/crm/bulk/v8/read" not in fake.paths()


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("error", "sdk_line"),
    [(ZohoAPIError("INVALID_CRITERIA", "bad", status=400), False), (_Boom("bug"), True)],
    ids=["zoho_error", "bug"],
)
def test_sdk_failure_line_is_kept_only_for_bugs(
    fake: FakeZoho,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    sdk_line: bool,
) -> None:
    def fail(self: t.Any) -> t.Iterator[dict[str, t.Any]]:
        raise error
        yield {}

    monkeypatch.setattr(sync.ModuleSync, "records", fail)
    tap = TapZohoCRM(config=config(fake, tmp_path))
    with caplog.at_level(logging.ERROR), pytest.raises(type(error)):
        tap.sync_all()
    logged = [r for r in caplog.records if r.msg == SDK_SYNC_FAILED]
    assert bool(logged) is sdk_line


def spend_budget(tmp_path: pathlib.Path, credits: int) -> None:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as store:
        store.record_credits(credits, "POST /crm/bulk/v8/read", dt.datetime.now(dt.timezone.utc))


def test_sync_with_no_budget_left_stops_cleanly(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    spend_budget(tmp_path, 100)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"bookmarks": {"Leads": {"event_seq": 3}}}))
    result = run_tap(
        tmp_path, config(fake, tmp_path, daily_credit_budget=100), "--state", str(state)
    )
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []
    assert any("Daily credit budget reached: 100 of 100" in line for line in warnings)
    assert result.stdout == ""  # no records, and no STATE: Meltano keeps the one it has
    assert [p for p in fake.paths() if p.startswith("/crm/")] == []


def test_discover_with_no_budget_left_fails(fake: FakeZoho, tmp_path: pathlib.Path) -> None:
    spend_budget(tmp_path, 100)
    result = run_tap(tmp_path, config(fake, tmp_path, daily_credit_budget=100), "--discover")
    errors = error_lines(result)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(errors) == 1, result.stderr
    assert "Daily credit budget reached" in errors[0]
    assert "GET /crm/v8/settings/modules would cost 1" in errors[0]
    assert result.stdout == ""
