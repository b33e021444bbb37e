"""`tap-zoho-crm-emulator`: run the emulator as a process until SIGTERM or SIGINT.

It prints exactly one line to stdout when ready, `emulator listening on URL`, so scripts
can wait for it and read the port.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .server import Emulator
from .state import Config


def build_parser() -> argparse.ArgumentParser:
    """The command line; every flag maps to a `Config` field."""
    parser = argparse.ArgumentParser(prog="tap-zoho-crm-emulator",
                                     description="Local stand-in for the Zoho CRM API.")
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    add("--leads", type=int, default=0, help="seeded Leads (default 0)")
    add("--contacts", type=int, default=0, help="seeded Contacts (default 0)")
    add("--seed", type=int, default=1, help="seed of the fake data (default 1)")
    add("--page-size", type=int, default=200_000, help="rows per Bulk Read job (200000)")
    add("--job-seconds", type=float, default=1.0, help="Bulk Read job duration (1.0)")
    add("--token-seconds", type=int, default=3600, help="access token lifetime (3600)")
    add("--callback-batch-ms", type=int, default=200, help="callback batch window (200)")
    add("--downloads-per-minute", type=int, default=10, help="result downloads a minute (10)")
    add("--max-page", type=int, default=500, help="highest Bulk Read `page` (500)")
    add("--tz-offset", default="-05:00", help="org time zone offset (default -05:00)")
    add("--data-center", default="us", help="data centre label (default us)")
    add("--client-id", default="emulator-client", help="accepted OAuth client id")
    add("--client-secret", default="emulator-secret", help="accepted OAuth client secret")
    add("--refresh-token", default="emulator-refresh", help="accepted refresh token")
    add("--log-level", default="WARNING", help="logging level; requests log at DEBUG")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start, print the ready line, serve until a signal, stop cleanly."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = {k: v for k, v in vars(args).items() if k != "log_level"}
    try:
        emulator = Emulator(Config(**settings))
    except (ValueError, OSError) as exc:
        print(f"tap-zoho-crm-emulator: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    print(f"emulator listening on {emulator.base_url}", flush=True)
    while not stopping.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
