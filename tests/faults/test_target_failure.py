"""target-postgres fails mid-run: Meltano keeps the last committed STATE, the next run repeats.

The fault is made on the test's own schema: a trigger that raises when one given lead is
updated. The catch-up of 250 edited leads is loaded in batches of 100, so two batches commit
before the third fails.
"""

from __future__ import annotations

import psycopg

from tests.integration import harness


def add_failing_trigger(schema: str, record_id: str) -> None:
    with psycopg.connect(harness.pg_url(), autocommit=True) as conn:
        conn.execute(
            f'CREATE FUNCTION "{schema}".refuse_row() RETURNS trigger LANGUAGE plpgsql AS '
            "$$ BEGIN RAISE EXCEPTION 'fault injected by the test'; END $$"
        )
        conn.execute(
            f'CREATE TRIGGER refuse_row BEFORE UPDATE ON "{schema}"."Leads" FOR EACH ROW '
            f"WHEN (NEW.id = '{record_id}') EXECUTE FUNCTION \"{schema}\".refuse_row()"
        )


def drop_failing_trigger(schema: str) -> None:
    with psycopg.connect(harness.pg_url(), autocommit=True) as conn:
        conn.execute(f'DROP TRIGGER refuse_row ON "{schema}"."Leads"')


def test_failed_target_commits_no_state_and_the_next_run_repeats(project_factory) -> None:
    emulator = harness.Emulator(leads=300, page_size=100, job_seconds=0.3)
    try:
        project = project_factory(emulator)
        project.run()
        committed = project.state()
        leads = sorted(emulator.truth(), key=lambda rec: int(rec["id"]))
        for lead in leads[:250]:
            emulator.admin(
                "PATCH", f"modules/Leads/records/{lead['id']}", json={"Last_Name": "Edited"}
            )
        add_failing_trigger(project.schema, leads[240]["id"])
        batches = {"TARGET_POSTGRES_BATCH_SIZE_ROWS": "100"}

        failed = project.run(check=False, env=batches)
        after_failure = project.state()
        edited_rows = sum(
            1 for row in harness.table_rows(project.schema).values() if row["Last_Name"] == "Edited"
        )
        drop_failing_trigger(project.schema)
        project.run(env=batches)

        assert failed.returncode != 0
        assert "fault injected by the test" in failed.stderr
        assert 0 < edited_rows < 250  # it failed mid-run, after some batches committed
        assert after_failure == committed
        harness.assert_table_matches(project.schema, emulator)
        final = project.state()["singer_state"]["bookmarks"]["Leads"]
        first = committed["singer_state"]["bookmarks"]["Leads"]
        assert final["last_sync_started_at"] > first["last_sync_started_at"]
    finally:
        emulator.stop()
