"""``tap-zoho-crm-webhook``: settings precedence, one-line errors, channel commands."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tap_zoho_crm.store import open_store
from tap_zoho_crm.webhook.cli import cli
from tap_zoho_crm.webhook.settings import SettingsError, resolve
from tests.webhook.conftest import ServerThread
from tests.webhook.fake_zoho import CLIENT, FakeZoho

CLI = str(Path(sys.executable).parent / "tap-zoho-crm-webhook")


def run(args: list[str], **env: str) -> Result:
    """Invoke the CLI in-process with only the given TAP_ZOHO_CRM_* variables set."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TAP_ZOHO_CRM_")}
    cleared.update({f"TAP_ZOHO_CRM_{k.upper()}": v for k, v in env.items()})
    return CliRunner().invoke(cli, args, env=cleared)


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_flags_beat_env_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"webhook_path": "/from-file", "modules": ["Deals"]}))
    env = {"TAP_ZOHO_CRM_WEBHOOK_PATH": "/from-env", "TAP_ZOHO_CRM_MODULES": '["Leads","Calls"]'}
    assert resolve({}, str(config), env)["webhook_path"] == "/from-env"
    assert resolve({"webhook_path": "/flag"}, str(config), env)["webhook_path"] == "/flag"
    assert resolve({}, str(config), {})["webhook_path"] == "/from-file"
    assert resolve({}, None, {})["webhook_path"] == "/zoho/notifications"
    assert resolve({}, str(config), env)["modules"] == ["Leads", "Calls"]
    assert resolve({"modules": "Leads, Tasks"}, None, {})["modules"] == ["Leads", "Tasks"]


def test_a_malformed_list_names_the_setting_and_its_source() -> None:
    with pytest.raises(SettingsError, match=r"modules \(from TAP_ZOHO_CRM_MODULES\)"):
        resolve({}, None, {"TAP_ZOHO_CRM_MODULES": '["Leads"'})


def test_bad_number_in_env_is_one_clear_line() -> None:
    result = run(["serve", "--port", "0"], webhook_max_body_bytes="lots")
    assert_one_line_error(
        result, "webhook_max_body_bytes (from TAP_ZOHO_CRM_WEBHOOK_MAX_BODY_BYTES)"
    )


def test_unsupported_store_url_is_one_clear_line() -> None:
    result = run(["serve", "--port", "0", "--event-store-url", "mysql://db/events"])
    assert_one_line_error(result, "event_store_url scheme 'mysql' is not supported")


def test_bad_path_is_one_clear_line() -> None:
    assert_one_line_error(run(["serve", "--path", "no-slash"]), "webhook_path")


def test_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    result = run(["serve", "--config", str(tmp_path / "nope.json")])
    assert_one_line_error(result, "nope.json: cannot read it")


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        store = f"sqlite:///{tmp_path}/e.sqlite3"
        result = run(["serve", "--port", str(port), "--event-store-url", store])
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


def test_channel_command_without_credentials_names_them(tmp_path: Path) -> None:
    result = run(
        ["channel", "subscribe", "--webhook-public-url", "https://hooks.example.com/z"],
        event_store_url=f"sqlite:///{tmp_path}/e.sqlite3",
    )
    assert_one_line_error(result, "client_id (env TAP_ZOHO_CRM_CLIENT_ID)")
    assert "refresh_token" in result.stderr


def test_channel_command_without_a_data_centre_refuses_to_guess(tmp_path: Path) -> None:
    result = run(
        ["channel", "renew"],
        event_store_url=f"sqlite:///{tmp_path}/e.sqlite3",
        **CLIENT,
    )
    assert_one_line_error(result, "set data_center")


def test_real_process_prints_one_line_and_no_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_ZOHO_CRM_")}
    env["TAP_ZOHO_CRM_WEBHOOK_HEARTBEAT_SECONDS"] = "60"
    done = subprocess.run(
        [CLI, "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: webhook_heartbeat_seconds must be above 0 and at most 10.0"
    ]


NO_CHANNEL = (
    "no channel registered yet; run `channel subscribe` or a sync with webhook_public_url set"
)


def test_status_without_a_channel_says_so_and_exits_0(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/e.sqlite3"
    result = run(["channel", "status"], event_store_url=url)  # no credentials needed
    assert result.exit_code == 0, result.output
    assert result.stdout == NO_CHANNEL + "\n"
    with open_store(url) as store:
        assert store.list_channels() == []


def test_status_without_a_channel_exits_0_from_a_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_ZOHO_CRM_")}
    env["TAP_ZOHO_CRM_EVENT_STORE_URL"] = f"sqlite:///{tmp_path}/e.sqlite3"
    done = subprocess.run(
        [CLI, "channel", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, NO_CHANNEL + "\n", "")


def test_status_with_an_unopenable_sqlite_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/e.sqlite3"
    assert_one_line_error(run(["channel", "status"], event_store_url=url), "missing-dir")


def test_status_with_an_unreachable_postgres_store_is_one_line_and_exit_1() -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as closed:  # bound but not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"postgresql://postgres@127.0.0.1:{closed.getsockname()[1]}/events"
        result = run(["channel", "status"], event_store_url=url)
    assert_one_line_error(result, "event_store_url")


@pytest.fixture
def fake_zoho() -> Iterator[tuple[FakeZoho, str]]:
    fake = FakeZoho()
    with ServerThread(fake.app) as server:
        yield fake, server.url


def test_channel_commands_end_to_end_through_the_tap_client(
    fake_zoho: tuple[FakeZoho, str], tmp_path: Path
) -> None:
    fake, url = fake_zoho
    fake.now = dt.datetime.now(dt.timezone.utc)  # the CLI runs on the real clock
    env = {
        "event_store_url": f"sqlite:///{tmp_path}/e.sqlite3",
        "accounts_url": url,
        "webhook_public_url": "https://hooks.example.com/zoho/notifications",
        "modules": '["Leads"]',
        **CLIENT,
    }
    subscribed = run(["channel", "subscribe"], **env)
    assert subscribed.exit_code == 0, subscribed.output
    summary = json.loads(subscribed.stdout)
    assert (summary["action"], summary["gap"], summary["modules"]) == (
        "subscribed",
        True,
        ["Leads"],
    )
    assert summary["channel_id"] in fake.channels

    renewed = run(["channel", "renew"], **env)
    assert json.loads(renewed.stdout)["action"] == "renewed"

    shown = json.loads(run(["channel", "status"], **env).stdout)
    assert shown["known_to_zoho"] is True
    with open_store(env["event_store_url"]) as store:
        (record,) = store.list_channels()
    assert record.token not in subscribed.output + renewed.output + json.dumps(shown)
    assert record.url_key not in subscribed.output + renewed.output + json.dumps(shown)

    gone = run(["channel", "unsubscribe"], **env)
    assert gone.exit_code == 0
    assert fake.channels == {}


def test_channel_error_from_zoho_is_one_clear_line(
    fake_zoho: tuple[FakeZoho, str], tmp_path: Path
) -> None:
    fake, url = fake_zoho
    fake.fail_next("POST", 400, "INVALID_DATA", "invalid data", api_name="token")
    result = run(
        ["channel", "subscribe"],
        event_store_url=f"sqlite:///{tmp_path}/e.sqlite3",
        accounts_url=url,
        webhook_public_url="https://hooks.example.com/zoho/notifications",
        **CLIENT,
    )
    assert_one_line_error(result, "INVALID_DATA")
