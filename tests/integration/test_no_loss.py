"""The randomized no-loss test: random changes, faults and syncs; the table never loses one.

Hypothesis drives a small emulated org through creates, edits, deletes and restores,
interleaved with syncs (some killed mid-run, some with changes made while they run) and
faults: dropped, repeated and late (overtaken) callbacks, a stopped receiver, a lapsed
channel, 429 storms, failed Bulk Read jobs. Whenever a sync starts with nothing pending
(every fault cleared, every callback landed, nothing dropped that a catch-up has not
covered) and completes, and once more at the end of every example, the table must equal the
emulator's truth (``World.check``).

``HYPOTHESIS_PROFILE=soak`` (``make soak``) runs the profile registered in
``tests/conftest.py``; the default runs a handful of examples so ``make test`` stays quick.
With ``NO_LOSS_PROGRESS=<file>`` every example appends one JSON line (outcome ``passed``,
``failed`` or ``discarded`` when Hypothesis abandoned it; seconds, syncs; a failed one also its
steps and error), so a long soak can be followed while it runs.
A failure is shrunk, printed with its steps, and replayed first by the next run (Hypothesis'
example database); keep it as a plain test in ``test_no_loss_examples.py``.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.errors import StopTest
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.integration.no_loss import Parts, World, parts  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
# An example costs about 0.2 s per step (a sync about 1 s, a 429 storm seconds): the default
# run takes about a minute, the soak's 500 examples of 40 steps about an hour.
FAST_EXAMPLES = 12
FAST_STEPS = 15
SOAK_STEPS = 40

_LETTERS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp", "Co", "Cn")
)
HAZARDS = st.sampled_from(
    ['Zoë, "Quoted" Ltd', "北京 🚀", "\ufeffBOM first", "a;b;c", "O'Brien", "trailing "]
)
NAMES = st.one_of(HAZARDS, st.text(_LETTERS, min_size=1, max_size=20))
NOTES = st.lists(
    st.one_of(st.text(_LETTERS, max_size=12), st.sampled_from(["\n", "\r\n", "\t", ",", '"'])),
    max_size=8,
).map("".join)
STATUSES = st.sampled_from([None, "Attempted to Contact", "Contacted", "Junk Lead", "Lost Lead"])
INTERESTS = st.lists(
    st.sampled_from(["Widgets", "Gadgets", "Support Plans", "Training", "Cloud, Hosted"]),
    unique=True,
    max_size=3,
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "First_Name": st.none() | NAMES,
    "Company": st.none() | NAMES,
    "Email": st.none() | st.from_regex(r"[a-z]{1,8}@example\.(com|org)", fullmatch=True),
    "Lead_Status": STATUSES,
    "Annual_Revenue": st.none() | st.integers(0, 10**9).map(lambda cents: cents / 100),
    "No_of_Employees": st.none() | st.integers(0, 999_999_999),
    "Email_Opt_Out": st.booleans(),
    "Interests": INTERESTS,
    "Description": st.none() | NOTES,
    "Next_Follow_Up": st.none()
    | st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)).map(dt.date.isoformat),
}
NEW_LEADS = st.fixed_dictionaries({"Last_Name": NAMES}, optional=OPTIONAL_FIELDS)
EDITS = st.fixed_dictionaries({}, optional={"Last_Name": NAMES, **OPTIONAL_FIELDS}).filter(bool)
# Paths a 429 storm may hit: Bulk Read, Get Records and the deleted list, the watch API,
# the token endpoint.
STORM_PATHS = st.sampled_from(
    ["/crm/bulk/v8/read", "/crm/v8/Leads", "/crm/v8/actions/watch", "/crm/", "/oauth/v2/token"]
)
CHANGE = st.tuples(st.sampled_from(["create", "edit", "delete"]), st.integers(0, 10**6), EDITS)


def _step(rule_body: Callable[..., None]) -> Callable[..., None]:
    """Keep the first error a step raises on its world, so the example's progress line and
    the failure report show it even if Hypothesis later replays the example differently."""

    @functools.wraps(rule_body)
    def run(machine: NoLossMachine, **arguments: Any) -> None:
        try:
            rule_body(machine, **arguments)
        except BaseException as exc:
            world = machine.world
            first = world is not None and world.step_error is None
            if world is not None and first and not isinstance(exc, StopTest):
                world.step_error = (
                    f"in step {rule_body.__name__}: {type(exc).__name__}: {exc}\n"
                    + "".join(traceback.format_exception(exc)[-6:])
                )
                note(world.describe())
            raise

    return run


class NoLossMachine(RuleBasedStateMachine):
    """One example: a fresh org, then random steps; checks after clean syncs and at the end."""

    def __init__(self, shared: Parts) -> None:
        super().__init__()
        self.shared = shared
        self.world: World | None = None

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @initialize(leads=st.integers(20, 160), page_size=st.sampled_from([30, 50, 80, 500]))
    def start(self, leads: int, page_size: int) -> None:
        self.world = World(self.shared, leads=leads, page_size=page_size)

    # -- changes ---------------------------------------------------------------------------

    @rule(values=NEW_LEADS)
    @_step
    def create(self, values: dict[str, Any]) -> None:
        self.w.create(values)

    @precondition(lambda self: self.world is not None and self.world.model.live)
    @rule(pick=st.integers(0, 10**6), values=EDITS)
    @_step
    def edit(self, pick: int, values: dict[str, Any]) -> None:
        self.w.edit(_pick(self.w.model.live, pick), values)

    @precondition(lambda self: self.world is not None and self.world.model.live)
    @rule(pick=st.integers(0, 10**6), permanent=st.sampled_from([False, False, False, True]))
    @_step
    def delete(self, pick: int, permanent: bool) -> None:
        self.w.delete(_pick(self.w.model.live, pick), permanent=permanent)

    @precondition(lambda self: self.world is not None and self.world.model.recycle)
    @rule(pick=st.integers(0, 10**6))
    @_step
    def restore(self, pick: int) -> None:
        # A restore keeps Modified_Time and leaves the deleted list; when its callback is
        # lost, the catch-up's re-check of ids marked deleted brings the record back.
        self.w.restore(_pick(self.w.model.recycle, pick))

    # -- faults ----------------------------------------------------------------------------

    @rule(times=st.integers(1, 3))
    @_step
    def drop_callbacks(self, times: int) -> None:
        self.w.fault("drop_callbacks", times)

    @rule(times=st.integers(1, 3))
    @_step
    def duplicate_callbacks(self, times: int) -> None:
        self.w.fault("duplicate_callbacks", times)

    # Zoho promises no order: a held-back callback lands after later ones.
    @rule(times=st.integers(1, 3), seconds=st.sampled_from([0.1, 0.5, 1.2]))
    @_step
    def delay_callbacks(self, times: int, seconds: float) -> None:
        self.w.fault("delay_callbacks", times, seconds=seconds)

    @precondition(lambda self: self.world is not None and self.world.receiver is not None)
    @rule()
    @_step
    def stop_receiver(self) -> None:
        self.w.stop_receiver()

    @precondition(lambda self: self.world is not None and self.world.receiver is None)
    @rule()
    @_step
    def start_receiver(self) -> None:
        self.w.start_receiver()

    @rule()
    @_step
    def lapse_channel(self) -> None:
        self.w.lapse_channel()

    # One storm at a time: stacked storms only add backoff waits of minutes. Whether one is
    # still queued depends on how far earlier syncs got, so it is decided in the step, not
    # in a precondition: which rules apply must never depend on timing, or a replay would
    # draw differently from the run it replays.
    @rule(times=st.integers(1, 3), path=STORM_PATHS)
    @_step
    def storm_429(self, times: int, path: str) -> None:
        if self.w.storm_pending():
            self.w.note("storm skipped: one is still queued")
            return
        self.w.fault("http_429", times, path)

    @rule(times=st.integers(1, 2))
    @_step
    def fail_bulk_jobs(self, times: int) -> None:
        self.w.fault("bulk_job_failure", times)

    # -- syncs -----------------------------------------------------------------------------

    @rule(settle=st.booleans())
    @_step
    def sync(self, settle: bool) -> None:
        world = self.w
        if settle:
            world.settle_callbacks()
        checkable = settle and world.clean()
        result = world.sync()
        if not checkable:
            return
        try:
            assert result.ok, f"a sync without faults failed: {result.describe()}"
            world.check()
        except AssertionError as exc:
            world.step_error = f"after sync #{world.pipeline.runs}: {exc}"
            raise

    @rule(after=st.integers(1, 400))
    @_step
    def sync_killed(self, after: int) -> None:
        self.w.sync(kill_after=after)

    @rule(
        changes=st.lists(CHANGE, min_size=1, max_size=4),
        delay=st.sampled_from([0.0, 0.4, 0.9, 1.6]),
    )
    @_step
    def sync_with_changes(
        self, changes: list[tuple[str, int, dict[str, Any]]], delay: float
    ) -> None:
        world = self.w

        def apply() -> None:
            for kind, pick, values in changes:
                _apply_change(world, kind, pick, values)

        world.sync(during=apply, delay=delay)

    def teardown(self) -> None:
        world = self.world
        if world is None:
            return
        if isinstance(sys.exc_info()[1], StopTest):
            # Hypothesis abandoned the example (it drew past its size limit): nothing to
            # judge, and it does not count towards the examples run.
            world.close()
            world.report_progress("discarded")
            return
        try:
            if world.step_error is None:
                world.settle_and_check()
        except BaseException as exc:
            world.step_error = f"at the end: {type(exc).__name__}: {exc}"
            note(world.describe())
            raise
        finally:
            world.close()
            error = world.step_error
            world.report_progress("failed" if error else "passed", error)


def _pick(ids: set[str], pick: int) -> str:
    ordered = sorted(ids)
    return ordered[pick % len(ordered)]


def _apply_change(world: World, kind: str, pick: int, values: dict[str, Any]) -> None:
    live = world.model.live
    if kind == "create" or not live:
        world.create({"Last_Name": "Made during a sync", **values})
    elif kind == "edit":
        world.edit(_pick(live, pick), values)
    else:
        world.delete(_pick(live, pick))


def _settings() -> settings:
    chosen = settings.get_profile(PROFILE)
    if PROFILE == "soak":
        return settings(chosen, stateful_step_count=SOAK_STEPS)
    return settings(
        chosen,
        max_examples=min(chosen.max_examples, FAST_EXAMPLES),
        stateful_step_count=FAST_STEPS,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_no_create_edit_or_delete_is_ever_lost(parts: Parts) -> None:  # noqa: F811
    run_state_machine_as_test(lambda: NoLossMachine(parts), settings=_settings())
