"""Full load of Leads through the real `meltano run tap-zoho-crm target-postgres`."""

from __future__ import annotations

import pytest

from tests.integration import harness
from tests.integration.conftest import start_emulator

pytestmark = pytest.mark.integration


def test_full_load_over_three_pages_equals_truth(project_factory) -> None:
    emulator = start_emulator(leads=5000, page_size=2000)
    try:
        project = project_factory(emulator)

        project.run()

        harness.assert_table_matches(project.schema, emulator)
        stats = emulator.stats()
        assert len(stats["jobs"]) == 3, stats["jobs"]
        # A first load marks nothing deleted; it reads the recycle bin once to remember
        # what may be restored later.
        assert stats["calls"]["deleted"] == 1
        assert len(harness.table_rows(project.schema)) == 5000
    finally:
        emulator.stop()


def test_second_run_without_changes_loads_nothing_new(project_factory) -> None:
    emulator = start_emulator(leads=300, page_size=200)
    try:
        project = project_factory(emulator)
        project.run()
        first = harness.table_rows(project.schema)

        project.run()

        assert harness.table_rows(project.schema).keys() == first.keys()
        harness.assert_table_matches(project.schema, emulator)
    finally:
        emulator.stop()


def test_full_refresh_marks_records_deleted_while_events_were_lost(project_factory) -> None:
    emulator = start_emulator(leads=300, page_size=200)
    try:
        project = project_factory(emulator)
        project.run()
        gone = emulator.truth()[7]
        emulator.admin("DELETE", f"modules/Leads/records/{gone['id']}")

        project.meltano("run", "--full-refresh", "tap-zoho-crm", "target-postgres")

        harness.assert_table_matches(project.schema, emulator)
        row = harness.table_rows(project.schema)[gone["id"]]
        assert row["_sdc_deleted_at"] is not None
        assert row["Last_Name"] == gone["Last_Name"]
    finally:
        emulator.stop()
