"""A restore whose callback is lost still brings the record back.

A restore from the recycle bin leaves ``Modified_Time`` alone and takes the record off Zoho's
deleted list, so no export or list mentions it; the catch-up fetches the ids the install
marked deleted and finds it live. No webhooks here: every sync is a catch-up.
"""

from __future__ import annotations

from tests.integration import harness


def test_a_restored_record_comes_back_without_its_callback(project_factory) -> None:
    emulator = harness.Emulator(leads=120, page_size=100)
    try:
        project = project_factory(emulator)
        project.run()
        lead = emulator.truth()[5]
        emulator.admin("DELETE", f"modules/Leads/records/{lead['id']}")
        project.run()
        assert harness.table_rows(project.schema)[lead["id"]]["_sdc_deleted_at"] is not None

        emulator.admin("POST", f"modules/Leads/records/{lead['id']}/restore")
        project.run()

        harness.assert_table_matches(project.schema, emulator)
        assert harness.table_rows(project.schema)[lead["id"]]["_sdc_deleted_at"] is None
    finally:
        emulator.stop()


def test_a_record_deleted_before_the_first_load_comes_back_when_restored(
    project_factory,
) -> None:
    emulator = harness.Emulator(leads=120, page_size=100)
    try:
        lead = emulator.truth()[9]
        emulator.admin("DELETE", f"modules/Leads/records/{lead['id']}")
        project = project_factory(emulator)
        project.run()
        assert lead["id"] not in harness.table_rows(project.schema)

        emulator.admin("POST", f"modules/Leads/records/{lead['id']}/restore")
        project.run()

        harness.assert_table_matches(project.schema, emulator)
    finally:
        emulator.stop()
