"""The credit ledger in both event-store backends, and the budget arithmetic on top of it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tap_zoho_crm.credits import CreditLedger, CreditsExhausted, call_cost
from tap_zoho_crm.store import EventStore, open_store
from tests.integration import harness

NOON = dt.datetime(2025, 3, 2, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, tmp_path
) -> Iterator[EventStore]:
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/events.sqlite3")
        yield opened
        opened.close()
        return
    name = "ledger_" + uuid.uuid4().hex[:12]
    with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    opened = open_store(harness.pg_url(name))
    try:
        yield opened
    finally:
        opened.close()
        with psycopg.connect(harness.PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_costs_follow_zoho_price_list() -> None:
    assert call_cost("POST /crm/bulk/v8/read") == 50
    assert call_cost("GET /crm/bulk/v8/read/{id}") == 1
    assert call_cost("GET /crm/bulk/v8/read/{id}/result") == 1
    assert call_cost("GET /crm/v8/Leads/deleted") == 2
    assert call_cost("GET /crm/v8/Leads") == 1
    assert call_cost("POST /crm/v8/actions/watch") == 1


def test_ledger_keeps_spends_in_order_and_survives_a_reset(store: EventStore) -> None:
    store.record_credits(50, "POST /crm/bulk/v8/read", NOON)
    store.record_credits(1, "GET /crm/bulk/v8/read/{id}", NOON + dt.timedelta(minutes=1))
    store.record_credits(2, "GET /crm/v8/Leads/deleted", NOON + dt.timedelta(hours=2))
    store.reset()

    since_one = store.credits_spent(NOON + dt.timedelta(minutes=1))

    assert [credits for _, credits in store.credits_spent(NOON)] == [50, 1, 2]
    assert since_one == [
        (NOON + dt.timedelta(minutes=1), 1),
        (NOON + dt.timedelta(hours=2), 2),
    ]


def test_ledger_drops_rows_older_than_two_days(store: EventStore) -> None:
    store.record_credits(50, "POST /crm/bulk/v8/read", NOON - dt.timedelta(hours=49))
    store.record_credits(1, "GET /crm/v8/Leads", NOON)

    assert store.credits_spent(NOON - dt.timedelta(days=7)) == [(NOON, 1)]


def test_budget_refuses_the_call_that_would_pass_it(store: EventStore) -> None:
    now = [NOON]
    ledger = CreditLedger(store, 105, clock=lambda: now[0])
    store.record_credits(50, "POST /crm/bulk/v8/read", NOON - dt.timedelta(hours=23))
    store.record_credits(50, "POST /crm/bulk/v8/read", NOON - dt.timedelta(hours=1))
    store.record_credits(3, "GET /crm/v8/Leads", NOON - dt.timedelta(hours=25))  # aged out

    ledger.check("GET /crm/bulk/v8/read/{id}")
    ledger.spend("GET /crm/bulk/v8/read/{id}")
    with pytest.raises(CreditsExhausted) as refused:
        ledger.check("POST /crm/bulk/v8/read")

    assert refused.value.spent == 101
    # The job spent 23 hours ago leaves the window in one hour, freeing 50 credits.
    assert refused.value.resume_at == NOON + dt.timedelta(hours=1)
    assert "101 of 105 credits" in str(refused.value)
    now[0] = NOON + dt.timedelta(hours=1, seconds=1)
    ledger.check("POST /crm/bulk/v8/read")
