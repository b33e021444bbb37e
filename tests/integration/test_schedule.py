"""The scheduled channel renewal, ``meltano run zoho-channel-renew``, alone and beside a sync.

The job's task is the ``tap-zoho-crm-webhook:channel-renew`` utility command. It must renew the
channel with the settings the extractor gets from the same ``TAP_ZOHO_CRM_*`` variables, and it
must leave a sync running at the same minute alone: no catalog discovery, nothing written to
the extractor's run directory.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from tap_zoho_crm.store import open_store
from tests.integration import harness

RENEW = ("run", "zoho-channel-renew")


def channel_expiry(event_store_url: str) -> dt.datetime:
    """The expiry of the one channel the event store registers."""
    with open_store(event_store_url) as store:
        (record,) = store.list_channels()
    assert record.expiry is not None
    return record.expiry


def watch_calls(emulator: harness.Emulator) -> int:
    """Notification API calls the emulator answered so far."""
    return int(emulator.stats()["calls"]["watch"])


@pytest.mark.integration
def test_channel_renew_job_renews_and_runs_beside_a_sync(tmp_path: Path, schema: str) -> None:
    # An eight-second Bulk Read job keeps the first sync busy while the renewal runs.
    emulator = harness.Emulator(leads=600, page_size=1000, job_seconds=8)
    receiver = None
    try:
        project = harness.MeltanoProject(tmp_path, schema, emulator.url)
        receiver = harness.Receiver(project.event_store_url)
        project.env["TAP_ZOHO_CRM_WEBHOOK_PUBLIC_URL"] = receiver.notify_url

        refused = project.meltano(*RENEW, check=False)
        assert refused.returncode != 0
        assert "no channel is registered" in refused.stderr

        project.meltano("invoke", "tap-zoho-crm-webhook:channel-subscribe")
        subscribed, calls = channel_expiry(project.event_store_url), watch_calls(emulator)
        time.sleep(1.1)  # Zoho's expiry has whole seconds
        project.meltano(*RENEW)
        assert channel_expiry(project.event_store_url) > subscribed
        assert watch_calls(emulator) > calls

        sync = project.start_run()
        catalog = tmp_path / ".meltano" / "run" / "tap-zoho-crm" / "tap.properties.json"
        harness.wait_until(
            lambda: emulator.stats()["calls"]["bulk_create"] > 0,
            what="the sync's Bulk Read job, after its catalog is written",
        )
        before = catalog.stat().st_mtime_ns, catalog.read_bytes()
        renewed = channel_expiry(project.event_store_url)
        time.sleep(1.1)
        project.meltano(*RENEW)
        assert sync.poll() is None, "the renewal should have run while the sync was loading"
        assert (catalog.stat().st_mtime_ns, catalog.read_bytes()) == before
        assert channel_expiry(project.event_store_url) > renewed

        _, stderr = sync.communicate(timeout=120)
        assert sync.returncode == 0, stderr[-6000:]
        harness.assert_table_matches(schema, emulator)
    finally:
        if receiver is not None:
            receiver.stop()
        emulator.stop()
