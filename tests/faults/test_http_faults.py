"""Throttling, server errors, broken connections and rejected tokens, met by the real tap CLI.

Each test starts an emulator of 300 leads in three pages of 100, queues one fault and runs
``tap-zoho-crm``; what it printed is compared with the emulator's truth.
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import job_ids, truth_ids

BULK = "/crm/bulk/v8/read"
# The emulator numbers jobs from this id up, one per create.
FIRST_JOB = 4876543000003000001


def result_path(job_number: int) -> str:
    """Download path of the emulator's ``job_number``-th job of a run."""
    return f"{BULK}/{FIRST_JOB + job_number - 1}/result"


def test_429_without_credit_header_is_retried_with_jittered_backoff(
    start_emulator, tap_for
) -> None:
    emulator = start_emulator(300)
    emulator.fault("http_429", times=2, path=BULK)

    run = tap_for(emulator).run(max_retries=3)

    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.latest()) == truth_ids(emulator)
    assert len(run.records()) == 300
    assert sum(emulator.stats()["errors"].values()) == 2
    waits = run.retry_waits()
    assert [attempt for attempt, _ in waits] == [1, 2]
    # Exponential from 1 s, each wait drawn from the upper half of its step (jitter).
    assert 0.5 <= waits[0][1] <= 1.0
    assert 1.0 <= waits[1][1] <= 2.0


def test_429_with_credits_left_is_the_concurrency_limit_and_is_retried(
    start_emulator, tap_for
) -> None:
    emulator = start_emulator(300)
    emulator.fault("http_429", times=1, path=BULK, credits_remaining=1200)

    run = tap_for(emulator).run()

    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.latest()) == truth_ids(emulator)
    assert "Zoho API credits remaining today: 1200" in run.stderr
    assert run.retry_waits()[0][0] == 1


def test_429_with_no_credits_left_stops_cleanly_and_the_next_run_resumes(
    start_emulator, tap_for, live_channel
) -> None:
    emulator = start_emulator(300)
    emulator.fault("http_429", times=1, path=result_path(2), credits_remaining=0)
    tap = tap_for(emulator)
    channel = live_channel(tap)

    stopped = tap.run(**channel)
    jobs_before = len(job_ids(emulator))
    resumed = tap.run(state=stopped.last_state(), **channel)

    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert stopped.retry_waits() == []
    assert "X-API-CREDITS-REMAINING: 0" in stopped.stderr
    assert "Stopping this sync here" in stopped.stderr
    assert len(stopped.records()) == 100
    assert stopped.last_state()["bookmarks"]["Leads"]["bulk"]["page"] == 2
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(resumed.records()) == 200
    assert set(stopped.latest()) | set(resumed.latest()) == truth_ids(emulator)
    # Page 2's job was reused; only page 3 needed a new one.
    assert len(job_ids(emulator)) - jobs_before == 1


def test_server_errors_and_connection_resets_are_retried(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("http_500", times=2, path=BULK)
    emulator.fault("connection_reset", times=2, path="/crm/v8/settings")

    run = tap_for(emulator).run(max_retries=2)

    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.latest()) == truth_ids(emulator)
    assert len(run.records()) == 300
    assert len(run.retry_waits()) == 4


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("http_500", "INTERNAL_ERROR (HTTP 500) on GET /crm/bulk/v8/read/{id}/result"),
        ("connection_reset", "GET /crm/bulk/v8/read/{id}/result failed: connection error"),
    ],
)
def test_lasting_failure_ends_with_one_error_and_state_of_delivered_pages_only(
    start_emulator, tap_for, fault: str, said: str
) -> None:
    emulator = start_emulator(300)
    emulator.fault(fault, times=-1, path=result_path(2))

    run = tap_for(emulator).run(max_retries=2)

    assert run.returncode == 1
    errors = run.error_lines()
    assert len(errors) == 1, errors
    assert "Traceback" not in run.stderr
    assert said in errors[0]
    assert "3 attempts" in errors[0]
    # Page 1 went out with its STATE; nothing after it was vouched for.
    assert len(run.records()) == 100
    assert run.records_before_last_state() == 100
    bookmark = run.last_state()["bookmarks"]["Leads"]
    assert bookmark["bulk"]["page"] == 2
    assert "last_sync_started_at" not in bookmark
    downloads = [d for d in emulator.stats()["downloads"] if d["job_id"] == str(FIRST_JOB + 1)]
    assert len(downloads) == (3 if fault == "http_500" else 0)


def test_invalid_token_mid_run_refreshes_once_and_carries_on(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("invalid_token", times=1, path=result_path(2))

    run = tap_for(emulator).run()

    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.latest()) == truth_ids(emulator)
    assert len(run.records()) == 300
    assert emulator.stats()["calls"]["token"] == 2
    assert run.stderr.count("Zoho rejected the access token as invalid; refreshing it") == 1


def test_a_refreshed_token_rejected_again_is_a_clear_error(start_emulator, tap_for) -> None:
    emulator = start_emulator(300)
    emulator.fault("invalid_token", times=2, path=result_path(2))

    run = tap_for(emulator).run()

    assert run.returncode == 1
    assert emulator.stats()["calls"]["token"] == 2
    errors = run.error_lines()
    assert len(errors) == 1
    assert "rejected a freshly refreshed access token" in errors[0]
    assert run.records_before_last_state() == len(run.records()) == 100
