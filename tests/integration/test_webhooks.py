"""Creates, edits and deletes reach PostgreSQL through the webhook path.

Emulator, receiver, Meltano, target-postgres and PostgreSQL are all real processes; the
emulator POSTs Zoho's callbacks to the receiver, which stores them for the next sync.
"""

from __future__ import annotations

import pytest

from tests.integration import harness
from tests.integration.conftest import start_emulator

pytestmark = pytest.mark.integration

NEW_LEAD = {"Last_Name": "Nuevo", "First_Name": "Zoë", "Company": "Ærø, \"Quoted\" Ltd",
            "Email": "nuevo@example.com", "Annual_Revenue": 1234.5}


def page_one_done(emulator: harness.Emulator) -> bool:
    jobs = emulator.stats()["jobs"]
    return len(jobs) >= 2 and jobs[0]["state"] == "COMPLETED"


def test_changes_during_and_after_a_load_end_up_newest(project_factory, tmp_path) -> None:
    emulator = start_emulator(leads=3000, page_size=1000, job_seconds=2)
    receiver = harness.Receiver(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        project = harness.MeltanoProject(
            tmp_path, project_factory(emulator).schema, emulator.url, receiver.notify_url
        )
        leads = sorted(emulator.truth(), key=lambda rec: int(rec["id"]))
        first_page, last_page = leads[:1000], leads[2000:]
        kept: dict[str, dict] = {}

        run = project.start_run()
        harness.wait_until(lambda: page_one_done(emulator), what="page 1 exported")
        for lead in first_page[:5]:
            emulator.admin("PATCH", f"modules/Leads/records/{lead['id']}",
                           json={"Lead_Status": "Contacted", "Last_Name": "Edited in flight"})
        kept[first_page[5]["id"]] = first_page[5]
        emulator.admin("DELETE", f"modules/Leads/records/{first_page[5]['id']}")
        emulator.admin("POST", "modules/Leads/records", json=NEW_LEAD)
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-4000:]
        assert stderr.index("Notification channel") < stderr.index("Bulk Read job")

        for lead in last_page[:3]:
            emulator.admin("PATCH", f"modules/Leads/records/{lead['id']}",
                           json={"Phone": "555-0199", "No_of_Employees": 7})
        for lead in (first_page[10], last_page[10]):
            kept[lead["id"]] = lead
            emulator.admin("DELETE", f"modules/Leads/records/{lead['id']}")
        emulator.admin("POST", "modules/Leads/records", json={**NEW_LEAD, "Last_Name": "Late"})
        harness.wait_until(lambda: receiver.health().get("backlog", 0) > 0, what="callbacks")

        project.run()

        harness.assert_table_matches(project.schema, emulator)
        rows = harness.table_rows(project.schema)
        for record_id, before in kept.items():
            assert rows[record_id]["_sdc_deleted_at"] is not None
            assert rows[record_id]["Last_Name"] == before["Last_Name"]
            assert rows[record_id]["Email"] == before.get("Email")
    finally:
        receiver.stop()
        emulator.stop()


def test_two_modules_share_one_channel_and_store(project_factory, tmp_path) -> None:
    emulator = start_emulator(leads=200, page_size=150, contacts=120)
    receiver = harness.Receiver(f"sqlite:///{tmp_path}/events.sqlite3")
    try:
        project = harness.MeltanoProject(
            tmp_path, project_factory(emulator).schema, emulator.url, receiver.notify_url
        )
        modules = {"TAP_ZOHO_CRM_MODULES": '["Leads", "Contacts"]',
                   "TAP_ZOHO_CRM_EVENT_RETENTION_HOURS": "0"}
        project.run(env=modules)
        lead, contact = emulator.truth("Leads")[3], emulator.truth("Contacts")[4]
        emulator.admin("PATCH", f"modules/Leads/records/{lead['id']}", json={"City": "Oslo"})
        emulator.admin("DELETE", f"modules/Contacts/records/{contact['id']}")
        harness.wait_until(lambda: receiver.health().get("backlog", 0) >= 2, what="callbacks")

        project.run(env=modules)
        project.run(env=modules)

        harness.assert_table_matches(project.schema, emulator, "Leads")
        harness.assert_table_matches(project.schema, emulator, "Contacts")
        rows = harness.table_rows(project.schema, "Contacts")
        assert rows[contact["id"]]["_sdc_deleted_at"] is not None
        assert rows[contact["id"]]["Last_Name"] == contact["Last_Name"]
    finally:
        receiver.stop()
        emulator.stop()
