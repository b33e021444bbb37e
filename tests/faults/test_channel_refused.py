"""Zoho refuses to renew the channel: the sync trusts no events and runs a catch-up.

Callbacks are dropped after the first load, so the event store never hears of the edits;
only the catch-up Bulk Read and the deleted-records list can bring them.
"""

from __future__ import annotations

import time

from tests.faults.conftest import TapRunner
from tests.integration import harness


def test_refused_renewal_falls_back_to_a_catch_up_and_changes_arrive(
    start_emulator, tmp_path
) -> None:
    emulator = start_emulator(300, page_size=1000, job_seconds=0.2)
    tap = TapRunner(tmp_path, emulator)
    receiver = harness.Receiver(tap.event_store_url)
    time.sleep(1.1)  # the receiver is up before the first sync's start second
    try:
        first = tap.run(webhook_public_url=receiver.notify_url)
        assert first.returncode == 0, first.stderr[-3000:]
        emulator.fault("drop_callbacks", times=-1)
        leads = sorted(emulator.truth(), key=lambda rec: int(rec["id"]))
        edited, deleted = leads[7]["id"], leads[150]["id"]
        emulator.admin("PATCH", f"modules/Leads/records/{edited}", json={"Last_Name": "Renamed"})
        emulator.admin("DELETE", f"modules/Leads/records/{deleted}")
        created = emulator.admin("POST", "modules/Leads/records", json={"Last_Name": "Nueva"})
        emulator.fault("channel_refuse_renew", times=1)

        second = tap.run(
            state=first.last_state(),
            webhook_public_url=receiver.notify_url,
            # The 24 h channel has less than 30 h left: the sync asks Zoho to renew it.
            channel_expiry_hours=48,
            channel_renew_before_hours=30,
        )
    finally:
        receiver.stop()

    assert second.returncode == 0, second.stderr[-3000:]
    assert "Notification channel not renewed" in second.stderr
    assert "(no live notification channel)" in second.stderr
    assert receiver.proc.returncode is not None
    latest = second.latest()
    assert latest[edited]["Last_Name"] == "Renamed"
    assert latest[edited]["_sdc_deleted_at"] is None
    assert latest[created["id"]]["Last_Name"] == "Nueva"
    assert latest[deleted]["_sdc_deleted_at"] is not None
    assert set(latest) == {edited, deleted, created["id"]}
    assert emulator.stats()["callbacks"]["dropped"] == 3
