"""Receiver log lines carry one timestamp: their own, or under Meltano only Meltano's.

``meltano invoke`` logs every stderr line of the plugin again, stamped with its own time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from tap_zoho_crm.store import open_store
from tests.integration.harness import BIN, REPO, MeltanoProject
from tests.webhook.conftest import TOKEN, URL_KEY, callback_body, register_channel
from tests.webhook.test_crash import PATH, Receiver

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
NOT_MELTANO = {"MELTANO_UTILITY_NAME": "", "MELTANO_EXTRACTOR_NAME": ""}


def _store_with_channel(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/events.sqlite3"
    with open_store(url) as store:
        register_channel(store)
    return url


def _post_one(url: str) -> None:
    body = callback_body(["4000000000001000011"], operation="update")
    answer = requests.post(url, params={"key": URL_KEY}, json=body, timeout=10)
    assert answer.status_code == 200


def _callback_line(output: str) -> str:
    assert TOKEN not in output
    assert URL_KEY not in output
    (line,) = [line for line in output.splitlines() if "Callback channel" in line]
    return line


def test_outside_meltano_each_line_has_its_own_timestamp(tmp_path: Path) -> None:
    receiver = Receiver(_store_with_channel(tmp_path), extra_env=NOT_MELTANO)
    try:
        _post_one(receiver.url)
    finally:
        output = receiver.stop()
    line = _callback_line(output)
    assert TIMESTAMP.match(line), line
    assert " INFO tap_zoho_crm.webhook: Callback channel 1000000001: Leads update" in line


def test_run_by_meltano_lines_leave_the_timestamp_to_meltano(tmp_path: Path) -> None:
    as_utility = {**NOT_MELTANO, "MELTANO_UTILITY_NAME": "tap-zoho-crm-webhook"}
    receiver = Receiver(_store_with_channel(tmp_path), extra_env=as_utility)
    try:
        _post_one(receiver.url)
    finally:
        output = receiver.stop()
    assert _callback_line(output).startswith("INFO tap_zoho_crm.webhook: Callback channel")
    log_lines = [line for line in output.splitlines() if "listening on" not in line]
    assert not any(TIMESTAMP.search(line) for line in log_lines), log_lines


def test_meltano_invoke_shows_one_timestamp_per_line(tmp_path: Path) -> None:
    project = MeltanoProject(tmp_path, "unused", "http://127.0.0.1:9")
    _store_with_channel(tmp_path)  # the project's event_store_url is this file
    proc = subprocess.Popen(
        [str(BIN / "meltano"), "invoke", "tap-zoho-crm-webhook:serve", "--port", "0"],
        cwd=REPO,
        env={**os.environ, **NOT_MELTANO, **project.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        found = re.search(r"listening on (http://\S+)", proc.stdout.readline())
        assert found, "meltano invoke printed no listening line"
        _post_one(found.group(1) + PATH)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    line = _callback_line(err)
    assert len(TIMESTAMP.findall(line)) == 1, line
    assert "INFO tap_zoho_crm.webhook: Callback channel 1000000001: Leads update" in line
