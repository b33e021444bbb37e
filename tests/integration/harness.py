"""Real parts for integration tests: emulator process, Meltano runs, PostgreSQL reads.

Everything here talks to loopback servers the tests start themselves, plus the local
PostgreSQL named by ``TZC_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("TZC_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "zoho_test"
LISTEN_LINE = re.compile(r"listening on (http://\S+)")


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url(database: str = PG_DATABASE) -> str:
    """Return a libpq URL for ``database`` on the test server."""
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def ensure_database(database: str = PG_DATABASE) -> None:
    """Create the test database once."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if found.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')


def drop_schema(schema: str) -> None:
    """Drop a test schema and everything in it."""
    with psycopg.connect(pg_url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Process:
    """A child process whose first matching stdout line announces its URL.

    Its log goes to a temporary file and the rest of its stdout is drained by a thread, so a
    chatty process never blocks on a full pipe.
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.url = self._wait_for_url()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def log_text(self) -> str:
        """Everything the process logged so far."""
        self.log.seek(0)
        return self.log.read()

    def _wait_for_url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            found = LISTEN_LINE.search(line)
            if found:
                return found.group(1)
        self.stop()
        msg = f"{self.args[0]} did not start: {self.log_text()[-2000:]}"
        raise RuntimeError(msg)

    def kill(self) -> None:
        """Kill at once, as a crash would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Ask politely, then insist."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Emulator(Process):
    """The bundled Zoho emulator, run as its console script."""

    def __init__(self, *, leads: int, page_size: int = 200_000, **flags: Any) -> None:
        args = [
            str(BIN / "tap-zoho-crm-emulator"),
            "--port",
            str(flags.pop("port", 0)),
            "--leads",
            str(leads),
            "--page-size",
            str(page_size),
        ]
        for name, value in flags.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        super().__init__(args)
        self.http = requests.Session()

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the admin API and return its JSON answer."""
        answer = self.http.request(method, self.url + "/__admin/" + path, timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def truth(self, module: str = "Leads") -> list[dict[str, Any]]:
        """Every live record, as Get Records returns it."""
        return list(self.admin("GET", f"modules/{module}/records")["data"])

    def token(self) -> str:
        """An access token for the default emulator client."""
        answer = self.http.post(
            self.url + "/oauth/v2/token",
            timeout=30,
            data={
                "grant_type": "refresh_token",
                "client_id": "emulator-client",
                "client_secret": "emulator-secret",
                "refresh_token": "emulator-refresh",
            },
        )
        return str(answer.json()["access_token"])

    def fields(self, module: str = "Leads") -> list[dict[str, Any]]:
        """Field metadata, from the same endpoint the tap reads."""
        answer = self.http.get(
            self.url + "/crm/v8/settings/fields",
            params={"module": module},
            headers={"Authorization": "Zoho-oauthtoken " + self.token()},
            timeout=30,
        )
        answer.raise_for_status()
        return list(answer.json()["fields"])

    def stats(self) -> dict[str, Any]:
        """Call counters and jobs."""
        return dict(self.admin("GET", "stats"))

    def fault(self, name: str, times: int = 1, **extra: Any) -> None:
        """Queue a fault."""
        self.admin("POST", "faults", json={"fault": name, "times": times, **extra})

    def configure(self, **settings: Any) -> None:
        """Change run-time settings such as page_size or job_seconds."""
        self.admin("POST", "config", json=settings)


class Receiver(Process):
    """The webhook receiver, run as its console script on a free loopback port."""

    def __init__(self, event_store_url: str, port: int = 0) -> None:
        super().__init__(
            [
                str(BIN / "tap-zoho-crm-webhook"),
                "serve",
                "--port",
                str(port),
                "--event-store-url",
                event_store_url,
            ]
        )
        self.notify_url = self.url + "/zoho/notifications"

    def health(self) -> dict[str, Any]:
        """The receiver's health answer."""
        return dict(requests.get(self.url + "/healthz", timeout=10).json())


def private_sys_dir(workdir: Path) -> dict[str, str]:
    """Environment for Meltano runs whose system directory is ``workdir/.meltano``.

    Meltano writes each plugin's catalog, config and state files under
    ``.meltano/run/<plugin>/``, so two runs of one project at the same time overwrite each
    other's files. A fresh system directory whose plugin installations link to the project's
    keeps every run's files apart and runs the very same plugin versions.
    """
    sys_dir = workdir / ".meltano"
    sys_dir.mkdir(exist_ok=True)
    for kind in ("extractors", "loaders", "utilities"):
        link = sys_dir / kind
        if not link.exists():
            link.symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    return {"MELTANO_SYS_DIR_ROOT": str(sys_dir)}


class MeltanoProject:
    """The repository's own Meltano project, isolated per test by env settings."""

    def __init__(
        self, workdir: Path, schema: str, emulator_url: str, notify_url: str = ""
    ) -> None:
        self.workdir = workdir
        self.schema = schema
        self.event_store_url = f"sqlite:///{workdir}/events.sqlite3"
        self.env = {
            "MELTANO_DATABASE_URI": f"sqlite:///{workdir}/meltano.db",
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_ZOHO_CRM_ACCOUNTS_URL": emulator_url,
            "TAP_ZOHO_CRM_EVENT_STORE_URL": self.event_store_url,
            "TAP_ZOHO_CRM_WEBHOOK_PUBLIC_URL": notify_url,
            "TARGET_POSTGRES_SQLALCHEMY_URL": pg_sqlalchemy_url(),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            **private_sys_dir(workdir),
        }

    def meltano(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 600,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real Meltano CLI in the project."""
        done = subprocess.run(
            [str(BIN / "meltano"), *args],
            cwd=REPO,
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            msg = f"meltano {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-6000:]}"
            raise AssertionError(msg)
        return done

    def run(self, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """``meltano run tap-zoho-crm target-postgres``."""
        return self.meltano("run", "tap-zoho-crm", "target-postgres", **kwargs)

    def start_run(self) -> subprocess.Popen[str]:
        """Start ``meltano run`` without waiting for it."""
        return subprocess.Popen(
            [str(BIN / "meltano"), "run", "tap-zoho-crm", "target-postgres"],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def state(self) -> dict[str, Any]:
        """The state Meltano stored for the pipeline."""
        done = self.meltano("state", "get", "dev:tap-zoho-crm-to-target-postgres")
        text = done.stdout.strip() or "{}"
        return dict(json.loads(text))


def wait_until(
    condition: Any, timeout: float = 60.0, what: str = "condition", every: float = 0.1
) -> None:
    """Poll ``condition()`` every ``every`` seconds until it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    msg = f"timed out waiting for {what}"
    raise AssertionError(msg)


def pg_sqlalchemy_url() -> str:
    """target-postgres URL for the test database, session pinned to UTC."""
    base = pg_url().replace("postgresql://", "postgresql+psycopg://", 1)
    return base + "?options=-c%20timezone%3DUTC"


def table_rows(schema: str, table: str = "Leads") -> dict[str, dict[str, Any]]:
    """Rows of a loaded table keyed by id, with column values as psycopg reads them."""
    with psycopg.connect(pg_url()) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        cur = conn.execute(f'SELECT * FROM "{schema}"."{table}"')
        names = [col.name for col in cur.description or []]
        return {
            row[names.index("id")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()
        }


def expected_row(record: dict[str, Any], fields: list[dict[str, Any]]) -> dict[str, Any]:
    """What a Get Records JSON record must look like once loaded, written independently
    of the tap's own casting code so that a casting bug cannot hide itself."""
    expected: dict[str, Any] = {}
    for field in fields:
        name = field["api_name"]
        kind = _value_kind(field)
        if kind is None:
            continue
        expected[name] = _expected_value(kind, record.get(name))
    return expected


_LEFT_OUT = {"multiuserlookup", "multiselectlookup", "subform", "fileupload", "imageupload"}
_REFERENCES = {"lookup", "ownerlookup", "userlookup", "layout", "consent_lookup"}
_NUMBERS = {"double", "currency", "percent", "decimal"}


def _value_kind(field: dict[str, Any]) -> str | None:
    data_type = field["data_type"]
    if data_type in _LEFT_OUT:
        return None
    if data_type in ("formula", "rollup_summary"):
        return_type = (field.get(data_type) or {}).get("return_type", "text")
        return {
            "double": "number",
            "currency": "number",
            "integer": "integer",
            "boolean": "boolean",
            "date": "date",
            "datetime": "datetime",
        }.get(return_type, "text")
    if data_type == "text" and field.get("json_type") == "jsonarray":
        return "multiselectpicklist"  # tags: a list of {name, id}, kept as names
    if data_type in _REFERENCES:
        return "reference"
    if data_type in _NUMBERS:
        return "number"
    if data_type in ("integer", "boolean", "date", "datetime", "multiselectpicklist"):
        return data_type
    return "text"


def _expected_value(kind: str, value: Any) -> Any:
    if value is None or value == "" or value == []:
        return None
    if kind == "reference":
        return str(value["id"]) if isinstance(value, dict) else str(value)
    if kind == "number":
        return Decimal(str(value))
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "datetime":
        moment = dt.datetime.fromisoformat(value)
        return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if kind == "multiselectpicklist":
        return [item["name"] if isinstance(item, dict) else item for item in value]
    return str(value)


def assert_table_matches(schema: str, emulator: Emulator, module: str = "Leads") -> None:
    """The table's live rows equal the emulator's truth, field by field, and every row the
    emulator no longer has is marked deleted."""
    fields = emulator.fields(module)
    truth = {rec["id"]: expected_row(rec, fields) for rec in emulator.truth(module)}
    rows = table_rows(schema, module)
    live = {key: row for key, row in rows.items() if row.get("_sdc_deleted_at") is None}
    missing = sorted(set(truth) - set(live))[:5]
    extra = sorted(set(live) - set(truth))[:5]
    assert not missing, f"{len(set(truth) - set(live))} live records missing, e.g. {missing}"
    assert not extra, f"{len(set(live) - set(truth))} rows not deleted, e.g. {extra}"
    for key, want in truth.items():
        got = {name: _normalise(live[key].get(name)) for name in want}
        diff = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
        assert not diff, f"record {key} differs (table, truth): {diff}"


def _normalise(value: Any) -> Any:
    if value == [] or value == "":
        return None
    return value
