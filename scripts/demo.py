"""`make demo`: load Zoho CRM Leads into PostgreSQL with the real Meltano pipeline.

With TAP_ZOHO_CRM_CLIENT_ID, TAP_ZOHO_CRM_CLIENT_SECRET and TAP_ZOHO_CRM_REFRESH_TOKEN in the
environment it runs against real Zoho (Meltano environment ``prod``). Otherwise it starts the
bundled emulator and the webhook receiver on loopback, runs a full load, edits a lead through
the emulator's admin API, and runs again to show the edit arriving through the webhook path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = REPO / ".meltano" / "demo"
PG_ADMIN = os.environ.get("TZC_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "zoho"
SCHEMA = "zoho_crm"
LEADS = int(os.environ.get("DEMO_LEADS", "3000"))
REAL_ZOHO_KEYS = ("TAP_ZOHO_CRM_CLIENT_ID", "TAP_ZOHO_CRM_CLIENT_SECRET",
                  "TAP_ZOHO_CRM_REFRESH_TOKEN")


def main() -> int:
    """Run the demo; return the process exit code."""
    ensure_database()
    if all(os.environ.get(key) for key in REAL_ZOHO_KEYS):
        return run_against_zoho()
    return run_against_emulator()


def run_against_zoho() -> int:
    print("Real Zoho credentials found: running the prod environment.")
    meltano("run", "tap-zoho-crm", "target-postgres", env={"MELTANO_ENVIRONMENT": "prod"})
    show_table("after the load")
    return 0


def run_against_emulator() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    drop_schema()
    zoho_port, hook_port = free_port(), free_port()
    env = demo_env(zoho_port, hook_port)
    emulator = start([str(BIN / "tap-zoho-crm-emulator"), "--port", str(zoho_port),
                      "--leads", str(LEADS), "--page-size", "1000"], env)
    receiver = start([str(BIN / "tap-zoho-crm-webhook"), "serve", "--port", str(hook_port)], env)
    try:
        print(f"Emulator with {LEADS} leads at http://127.0.0.1:{zoho_port}; "
              f"webhook receiver at http://127.0.0.1:{hook_port}")
        timed_run(env, "1. Full load")
        show_table("after the full load")
        lead = edit_a_lead(zoho_port)
        timed_run(env, "2. Incremental run after editing a lead")
        show_lead(lead)
    finally:
        for proc in (receiver, emulator):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
    return 0


def demo_env(zoho_port: int, hook_port: int) -> dict[str, str]:
    return {
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_DATABASE_URI": f"sqlite:///{WORK}/meltano.db",
        "TAP_ZOHO_CRM_ACCOUNTS_URL": f"http://127.0.0.1:{zoho_port}",
        "TAP_ZOHO_CRM_WEBHOOK_PUBLIC_URL": f"http://127.0.0.1:{hook_port}/zoho/notifications",
        "TAP_ZOHO_CRM_EVENT_STORE_URL": f"sqlite:///{WORK}/events.sqlite3",
        "TARGET_POSTGRES_SQLALCHEMY_URL": sqlalchemy_url(),
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
    }


def timed_run(env: dict[str, str], title: str) -> None:
    print(f"\n{title}: meltano run tap-zoho-crm target-postgres")
    started = time.monotonic()
    log = meltano("run", "tap-zoho-crm", "target-postgres", env=env)
    print(f"   done in {time.monotonic() - started:.1f} s; the tap said how it got the rows:")
    for line in tap_lines(log):
        print(f"   | {line}")


# The tap's INFO lines that say where a sync's rows came from: a Bulk Read window, or the
# webhook events and the records fetched for them.
TAP_LINE = re.compile(
    r"(Leads: (?:events cover every change since the last sync"
    r"|(?:full|catch-up) load since [^()]*\([^)]*\)"
    r"|\d+ events after seq \d+; fetched .*? in [\d.]+ s"
    r"|\d+ bulk rows, .*? up to seq \d+))"
)


def tap_lines(log: str) -> list[str]:
    """The tap's own lines about where the rows came from, out of Meltano's log."""
    return [found.group(1) for found in map(TAP_LINE.search, log.splitlines()) if found]


def edit_a_lead(zoho_port: int) -> str:
    admin = f"http://127.0.0.1:{zoho_port}/__admin/modules/Leads/records"
    lead = requests.get(admin, timeout=30).json()["data"][0]
    new_status = "Contacted" if lead.get("Lead_Status") != "Contacted" else "Qualified"
    requests.patch(f"{admin}/{lead['id']}", json={"Lead_Status": new_status,
                                                  "Last_Name": "Edited-In-Demo"}, timeout=30)
    print(f"\nEdited lead {lead['id']} in the emulator: Lead_Status -> {new_status}")
    time.sleep(1.5)  # Zoho batches callbacks; give the receiver a moment to store it.
    return str(lead["id"])


def show_table(when: str) -> None:
    with connect() as conn:
        count = conn.execute(f'SELECT count(*) FROM {SCHEMA}."Leads"').fetchone()
        print(f"   {count[0] if count else 0} rows in {DATABASE}.{SCHEMA}.\"Leads\" {when}:")
        rows = conn.execute(
            f'SELECT id, "Last_Name", "Company", "Lead_Status", "Modified_Time" '
            f'FROM {SCHEMA}."Leads" ORDER BY id LIMIT 5').fetchall()
        for row in rows:
            print("   ", " | ".join("" if value is None else str(value) for value in row))


def show_lead(lead_id: str) -> None:
    columns = ("Last_Name", "Lead_Status", "Modified_Time")
    with connect() as conn:
        row = conn.execute(
            f'SELECT "Last_Name", "Lead_Status", "Modified_Time" FROM {SCHEMA}."Leads" '
            f"WHERE id = %s", (lead_id,)).fetchone()
    if row is None:
        print(f"   lead {lead_id} is not in PostgreSQL")
        return
    print(f"   lead {lead_id} in PostgreSQL now:")
    for name, value in zip(columns, row, strict=True):
        print(f"     {name:<14} {value}")


def meltano(*args: str, env: dict[str, str] | None = None) -> str:
    """Run Meltano in the project and return its log (stderr); exit when it fails."""
    command = [str(BIN / "meltano"), *args]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(f"meltano {' '.join(args)} failed with exit code {done.returncode}")
    return done.stderr


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(r"listening on http://", line):
            return proc
        if not line and proc.poll() is not None:
            break
    sys.exit(f"{Path(args[0]).name} did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlalchemy_url() -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{DATABASE}?options=-c%20timezone%3DUTC"


def connect() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE)


def ensure_database() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                        (DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")


def drop_schema() -> None:
    with connect() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


if __name__ == "__main__":
    sys.exit(main())
