"""singer-sdk's standard tap tests, run against the bundled Zoho emulator.

The SDK discovers streams while pytest collects this module, so the emulator starts at
import time (loopback, free port) and stops when the interpreter exits.
"""

from __future__ import annotations

import atexit
import tempfile

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_zoho_crm.emulator import Emulator
from tap_zoho_crm.tap import TapZohoCRM

EMULATOR = Emulator(leads=120, page_size=50, job_seconds=0).start()
atexit.register(EMULATOR.stop)
SCRATCH = tempfile.TemporaryDirectory(prefix="tzc-core-")
atexit.register(SCRATCH.cleanup)

CONFIG = {
    "client_id": "emulator-client",
    "client_secret": "emulator-secret",
    "refresh_token": "emulator-refresh",
    "accounts_url": EMULATOR.base_url,
    "bulk_poll_initial_seconds": 0.01,
    "bulk_poll_max_seconds": 0.05,
    "event_store_url": f"sqlite:///{SCRATCH.name}/events.sqlite3",
}

TestTapZohoCRM = get_tap_test_class(
    tap_class=TapZohoCRM,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=150),
)
