"""The plugin definitions other teams use: current, consistent with meltano.yml, and working.

The last test is what another team does: a new Meltano project, the extractor added from
``plugin/extractors/tap-zoho-crm.yml`` and the receiver utility from
``plugin/utilities/tap-zoho-crm-webhook.yml`` (pip_url pointed at this checkout), target-postgres
added as a custom loader, the settings both plugins need set once as ``TAP_ZOHO_CRM_*``
variables in ``.env``, the receiver started with ``meltano invoke tap-zoho-crm-webhook:serve``,
the channel subscribed with ``meltano invoke tap-zoho-crm-webhook:channel-subscribe``, then
``meltano run`` against the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.integration import harness

REPO = harness.REPO
BIN = harness.BIN
sys.path.insert(0, str(REPO / "scripts"))

import plugin_definition  # noqa: E402
import readme_settings  # noqa: E402

LOADER_DEFINITION = {
    "name": "target-postgres",
    "namespace": "target_postgres",
    "pip_url": "meltanolabs-target-postgres==0.8.1",
    "executable": "target-postgres",
    "settings": [
        {"name": "sqlalchemy_url", "kind": "string", "sensitive": True},
        {"name": "default_target_schema", "kind": "string"},
        {"name": "add_record_metadata", "kind": "boolean"},
    ],
}


def _definition(path: Path = plugin_definition.DEFINITION) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def _utility_definition() -> dict[str, Any]:
    return _definition(plugin_definition.UTILITY_DEFINITION)


def _project_plugin(kind: str, name: str) -> dict[str, Any]:
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    return dict(next(p for p in project["plugins"][kind] if p["name"] == name))


def _dev_config(kind: str, name: str) -> dict[str, Any]:
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    dev = next(env for env in project["environments"] if env["name"] == "dev")
    plugins = dev["config"]["plugins"][kind]
    return dict(next(p for p in plugins if p["name"] == name)["config"])


def _signature(settings: list[dict[str, Any]]) -> dict[str, tuple[str, bool]]:
    return {
        item["name"]: (item.get("kind", "string"), bool(item.get("sensitive"))) for item in settings
    }


def test_definition_files_are_generated_from_the_tap_and_the_receiver() -> None:
    assert plugin_definition.main(["--check"]) == 0, "run make docs"


def test_readme_settings_table_is_generated_from_the_tap() -> None:
    assert readme_settings.main(["--check"]) == 0, "run make docs"


def test_meltano_yml_declares_the_same_settings_as_the_definitions() -> None:
    extractor = _project_plugin("extractors", "tap-zoho-crm")
    definition = _definition()
    # The SDK's own settings (stream maps, flattening, batch) need not be repeated there.
    sdk_settings = {"stream_maps", "stream_map_config", "faker_config", "batch_config"}
    wanted = {
        name: sig
        for name, sig in _signature(definition["settings"]).items()
        if name not in sdk_settings and not name.startswith("flattening_")
    }
    assert _signature(extractor["settings"]) == wanted
    assert extractor["settings_group_validation"] == definition["settings_group_validation"]
    # Receiver commands live on the utility: an extractor command run without arguments
    # would discover the catalog into the files of a sync running at the same time.
    assert "commands" not in extractor

    utility = _project_plugin("utilities", "tap-zoho-crm-webhook")
    utility_definition = _utility_definition()
    assert _signature(utility["settings"]) == _signature(utility_definition["settings"])
    assert utility["namespace"] == utility_definition["namespace"] == extractor["namespace"]
    assert utility["executable"] == utility_definition["executable"]
    assert {name: c["args"] for name, c in utility["commands"].items()} == {
        name: c["args"] for name, c in utility_definition["commands"].items()
    }


def test_the_receiver_reads_every_utility_setting_under_the_extractors_variable() -> None:
    utility = _utility_definition()
    variables = {f"TAP_ZOHO_CRM_{item['name'].upper()}" for item in utility["settings"]}
    assert variables == {item.env_var for item in plugin_definition.RECEIVER_SETTINGS}
    assert utility["namespace"] == "tap_zoho_crm"


def test_dev_environment_configures_the_utility_as_the_extractor() -> None:
    extractor = _dev_config("extractors", "tap-zoho-crm")
    utility = _dev_config("utilities", "tap-zoho-crm-webhook")
    assert utility == {name: value for name, value in extractor.items() if name in utility}
    shared = {item.name for item in plugin_definition.RECEIVER_SETTINGS}
    assert set(utility) == shared & set(extractor)


def test_schedules_run_jobs_whose_tasks_meltano_can_run() -> None:
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    jobs = {job["name"]: job["tasks"] for job in project["jobs"]}
    assert {schedule["job"] for schedule in project["schedules"]} <= set(jobs)
    assert jobs["zoho-channel-renew"] == ["tap-zoho-crm-webhook:channel-renew"]


def test_every_secret_is_sensitive() -> None:
    properties = plugin_definition.about()["settings"]["properties"]
    sensitive = {s["name"] for s in _definition()["settings"] if s.get("sensitive")}
    assert sensitive == {name for name, prop in properties.items() if prop.get("secret")}
    assert {"client_id", "client_secret", "refresh_token", "webhook_token"} <= sensitive
    utility = {s["name"] for s in _utility_definition()["settings"] if s.get("sensitive")}
    assert utility == {item.name for item in plugin_definition.RECEIVER_SETTINGS if item.secret}
    assert utility == sensitive


class NewProject:
    """A Meltano project made with ``meltano init`` in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "project"
        self.env = {
            **os.environ,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        }
        for key in [k for k in self.env if k.startswith(("TAP_ZOHO_CRM_", "TARGET_POSTGRES_"))]:
            del self.env[key]
        self.env.pop("MELTANO_ENVIRONMENT", None)
        self.env.pop("MELTANO_DATABASE_URI", None)
        self.env.pop("MELTANO_PROJECT_ROOT", None)
        subprocess.run(
            [str(BIN / "meltano"), "init", str(self.dir), "--no-usage-stats"],
            cwd=root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def meltano(self, *args: str, timeout: float = 300) -> str:
        """Run Meltano in the project; fail the test with its stderr when it fails."""
        done = subprocess.run(
            [str(BIN / "meltano"), *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            msg = f"meltano {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-6000:]}"
            raise AssertionError(msg)
        return done.stdout

    def add_from_ref(self, plugin_type: str, definition: dict[str, Any], path: Path) -> None:
        path.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
        self.meltano(
            "add",
            "--plugin-type",
            plugin_type,
            definition["name"],
            "--from-ref",
            str(path),
            "--no-install",
        )

    def configure(self, plugin: str, store: str = "auto", **settings: str) -> None:
        for name, value in settings.items():
            self.meltano("config", "set", "--store", store, plugin, name, value)


@pytest.mark.integration
def test_new_project_adds_installs_and_runs_the_extractor(tmp_path: Path, schema: str) -> None:
    project = NewProject(tmp_path)
    extractor = {**_definition(), "pip_url": str(REPO)}
    utility = {**_utility_definition(), "pip_url": str(REPO)}
    project.add_from_ref("extractor", extractor, tmp_path / "tap-zoho-crm.yml")
    project.add_from_ref("utility", utility, tmp_path / "tap-zoho-crm-webhook.yml")
    project.add_from_ref("loader", LOADER_DEFINITION, tmp_path / "target-postgres.yml")
    project.meltano("install")

    emulator = harness.Emulator(leads=600, page_size=250, job_seconds=0.2)
    receiver = None
    try:
        # Settings both plugins read go to .env as TAP_ZOHO_CRM_* variables (the secrets go
        # there anyway); the utility shares the extractor's namespace, so it reads them too.
        project.configure(
            "tap-zoho-crm",
            store="dotenv",
            accounts_url=emulator.url,
            client_id="emulator-client",
            client_secret="emulator-secret",
            refresh_token="emulator-refresh",
            event_store_url=f"sqlite:///{tmp_path}/events.sqlite3",
        )
        project.configure("tap-zoho-crm", bulk_poll_initial_seconds="1")
        project.configure(
            "target-postgres",
            sqlalchemy_url=harness.pg_sqlalchemy_url(),
            default_target_schema=schema,
            add_record_metadata="true",
        )
        # The receiver runs before the first load, so every later change has an event.
        receiver = harness.Process(
            [str(BIN / "meltano"), "invoke", "tap-zoho-crm-webhook:serve", "--port", "0"],
            env={**project.env, "MELTANO_PROJECT_ROOT": str(project.dir)},
        )
        project.configure(
            "tap-zoho-crm",
            store="dotenv",
            webhook_public_url=receiver.url + "/zoho/notifications",
        )
        assert '"action": "subscribed"' in project.meltano(
            "invoke", "tap-zoho-crm-webhook:channel-subscribe"
        )
        assert '"known_to_zoho": true' in project.meltano(
            "invoke", "tap-zoho-crm-webhook:channel-status"
        )

        project.meltano("run", "tap-zoho-crm", "target-postgres")
        harness.assert_table_matches(schema, emulator)

        lead = emulator.truth()[3]["id"]
        emulator.admin("PATCH", f"modules/Leads/records/{lead}", json={"Last_Name": "Renamed"})
        harness.wait_until(
            lambda: requests.get(receiver.url + "/healthz", timeout=10).json()["high_water"] > 0,
            what="the edit's callback in the event store",
        )
        jobs = len(emulator.stats()["jobs"])
        project.meltano("run", "tap-zoho-crm", "target-postgres")
        harness.assert_table_matches(schema, emulator)
        assert len(emulator.stats()["jobs"]) == jobs, "the edit should come through its event"
        assert harness.table_rows(schema)[lead]["Last_Name"] == "Renamed"
    finally:
        if receiver is not None:
            receiver.stop()
        emulator.stop()
