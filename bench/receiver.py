"""Callbacks per second the webhook receiver stores durably, and their latency.

    make bench-receiver   # or: .venv/bin/python bench/receiver.py --callbacks 2000 --clients 8

For each event store (a SQLite file, then a PostgreSQL database made for the run and dropped
after it) a fresh `tap-zoho-crm-webhook serve` runs on a loopback port with a channel
registered in its store. A bounded number of client threads POST Zoho-shaped callbacks over
keep-alive connections: first callbacks of one id (Zoho's usual edit), then callbacks of 100
ids (a mass update). Each answer is 200 only once its events are committed, so answered
callbacks per second is the durable rate. Prints callbacks/s, events/s and the p50/p95/p99
latency per store and shape, and checks the store holds every event that was sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import typing as t
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tap_zoho_crm.store import ChannelRecord, open_store  # noqa: E402
from tests.integration import harness  # noqa: E402

MODULE = "Leads"
FIRST_ID = 4876543100000000000


@dataclass(frozen=True)
class Channel:
    """What a client needs to send callbacks the receiver accepts."""

    channel_id: str
    token: str
    url_key: str


@dataclass(frozen=True)
class Shape:
    """One kind of callback: how many ids each carries and how many to send."""

    name: str
    ids_per_callback: int
    callbacks: int


@dataclass
class Outcome:
    """Latencies (seconds) of answered callbacks and the wall time of the whole burst."""

    latencies: list[float]
    seconds: float
    failures: dict[str, int]


def main() -> int:
    """Measure each store and print a table."""
    options = parse_args()
    shapes = [
        Shape("1 id", 1, options.callbacks),
        Shape("100 ids", 100, max(1, options.callbacks // 10)),
    ]
    print(
        f"{options.clients} concurrent clients; {shapes[0].callbacks} callbacks of 1 id, "
        f"then {shapes[1].callbacks} of 100 ids, per store"
    )
    print(
        f"{'store':<10} {'callback':<8} {'callbacks/s':>11} {'events/s':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="tzc-bench-receiver-") as scratch:
        bench_store("sqlite", f"sqlite:///{scratch}/events.sqlite3", shapes, options)
    database = "tzc_bench_receiver_" + secrets.token_hex(4)
    create_database(database)
    try:
        bench_store("postgres", harness.pg_url(database), shapes, options)
    finally:
        drop_database(database)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--callbacks",
        type=int,
        default=2000,
        help="single-id callbacks per store (a tenth as many of 100 ids)",
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--max-seconds", type=float, default=120, help="stop sending after this long per burst"
    )
    return parser.parse_args()


def bench_store(label: str, url: str, shapes: list[Shape], options: argparse.Namespace) -> None:
    """Serve callbacks into the store at ``url`` and report each shape."""
    channel = register_channel(url)
    receiver = harness.Receiver(url)
    try:
        target = urllib.parse.urlsplit(receiver.notify_url)
        ids = itertools.count(FIRST_ID)
        sent_events = 0
        for shape in shapes:
            bodies = make_bodies(channel, shape, ids)
            outcome = burst(target, channel, bodies, options.clients, options.max_seconds)
            answered = len(outcome.latencies)
            sent_events += answered * shape.ids_per_callback
            print_row(label, shape, outcome)
    finally:
        receiver.stop()
    check_stored(url, sent_events)


def register_channel(url: str) -> Channel:
    """Put a channel in the store, as `tap-zoho-crm-webhook channel subscribe` would."""
    channel = Channel(
        channel_id=str(10**15 + secrets.randbelow(9 * 10**15)),
        token=secrets.token_urlsafe(32),
        url_key=secrets.token_urlsafe(32),
    )
    with open_store(url) as store:
        store.put_channel(
            ChannelRecord(
                channel_id=channel.channel_id,
                modules=(MODULE,),
                events=tuple(f"{MODULE}.{op}" for op in ("create", "edit", "delete")),
                token=channel.token,
                url_key=channel.url_key,
                notify_url=f"http://127.0.0.1/zoho/notifications?key={channel.url_key}",
                expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=24),
            )
        )
    return channel


def make_bodies(channel: Channel, shape: Shape, ids: t.Iterator[int]) -> list[bytes]:
    """Callback bodies shaped like Zoho's, each with new ids (so each stores new events)."""
    bodies = []
    for _ in range(shape.callbacks):
        batch = [str(next(ids)) for _ in range(shape.ids_per_callback)]
        body = {
            "server_time": int(time.time() * 1000),
            "query_params": {"key": channel.url_key},
            "module": MODULE,
            "resource_uri": f"https://www.zohoapis.com/crm/v2/{MODULE}",
            "ids": batch,
            "affected_fields": [{rid: ["Lead_Status", "Phone"]} for rid in batch],
            "operation": "update",
            "channel_id": channel.channel_id,
            "token": channel.token,
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def burst(
    target: urllib.parse.SplitResult,
    channel: Channel,
    bodies: list[bytes],
    clients: int,
    max_seconds: float,
) -> Outcome:
    """Send ``bodies`` from ``clients`` threads; each thread sends one at a time."""
    path = f"{target.path}?key={urllib.parse.quote(channel.url_key)}"
    queue = iter(bodies)
    lock = threading.Lock()
    latencies: list[float] = []
    failures: dict[str, int] = {}
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                started = time.perf_counter()
                status = post(conn, path, body)
                elapsed = time.perf_counter() - started
                with lock:
                    if status == "200":
                        latencies.append(elapsed)
                    else:
                        failures[status] = failures.get(status, 0) + 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Outcome(latencies, time.perf_counter() - started, failures)


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> str:
    """POST one callback on a keep-alive connection; return the status or the socket error."""
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        answer.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return type(exc).__name__
    return str(answer.status)


def print_row(label: str, shape: Shape, outcome: Outcome) -> None:
    answered = len(outcome.latencies)
    rate = answered / outcome.seconds
    p50, p95, p99 = percentiles(outcome.latencies)
    print(
        f"{label:<10} {shape.name:<8} {rate:>11,.0f} {rate * shape.ids_per_callback:>9,.0f} "
        f"{p50:>7.1f} {p95:>7.1f} {p99:>7.1f}",
        flush=True,
    )
    if outcome.failures or answered < shape.callbacks:
        failed = sum(outcome.failures.values())
        print(f"  {shape.callbacks - answered - failed} unsent; failed: {outcome.failures}")


def percentiles(latencies: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 in milliseconds."""
    if len(latencies) < 2:
        only = latencies[0] * 1000 if latencies else float("nan")
        return only, only, only
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def check_stored(url: str, expected: int) -> None:
    """Every answered callback's events are in the store."""
    with open_store(url) as store:
        stored = store.backlog(0)
    if stored != expected:
        sys.exit(f"the store holds {stored} events; {expected} were answered 200")


def create_database(name: str) -> None:
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
