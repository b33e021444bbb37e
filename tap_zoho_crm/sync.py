"""One sync of one module: Bulk Read rows and stored webhook events, merged.

The steps, in order:

1. Read the committed bookmarks; prune events the target already has.
2. Decide the Bulk Read window (``plan.py``), or resume an interrupted load.
3. Wait for the first page's job. Its export is now fixed, so note the event store's
   high-water mark ``H``: every change after this moment leaves an event above ``H``.
4. Collect the ids that events up to ``H`` (and, on a catch-up, Zoho's deleted-records list)
   name, fetch them all, and hold them in a ``ChangeSet``: a record Get Records returns is
   live, in whatever order its callbacks came.
5. Emit bulk rows, holding back rows of pending ids; STATE after each page says how to
   continue the load.
6. Emit each pending id once, in its newest version (or marked deleted), then bare
   tombstones under a SCHEMA that holds only ``id`` and ``_sdc_deleted_at``, so
   target-postgres keeps every other column of those rows.
7. Final STATE: ``event_seq = H``, the store id, and this sync's start time. Meltano stores
   it only after the target has committed every record before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
import time
import typing as t

from tap_zoho_crm import records
from tap_zoho_crm.bulk import BulkPage, BulkWindow
from tap_zoho_crm.changes import DELETED_AT, ChangeSet, Outcome, format_instant, parse_instant
from tap_zoho_crm.errors import BulkJobError, ZohoAPIError, ZohoError
from tap_zoho_crm.plan import (
    BULK,
    EVENT_SEQ,
    LAST_CATCHUP,
    LAST_SYNC,
    STORE_ID,
    Health,
    committed_event_seq,
    event_gap,
    plan_bulk,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_zoho_crm.store import EventStore
    from tap_zoho_crm.streams import ModuleStream

LOGGER = logging.getLogger("tap-zoho-crm.sync")

PAGE_TOKEN_LIFETIME = dt.timedelta(hours=24)
PAGE_TOKEN_SAFETY = dt.timedelta(minutes=30)
# Where the middle of an open-started window is computed from when it must be split.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
# Windows are not split below this; a shorter one that Zoho still refuses is an error.
MIN_SPLIT = dt.timedelta(seconds=2)
PAGE_RANGE_EXCEEDED = "PAGE_RANGE_EXCEEDED"

Pages = t.Iterator[tuple[BulkPage, t.Iterator[dict[str, t.Any]]]]


@dataclasses.dataclass
class _Load:
    """The Bulk Read part of this sync: what it covers and where its pages come from."""

    window: BulkWindow
    full: bool
    pages: Pages
    run_started_at: dt.datetime
    continued: bool = False


class ModuleSync:
    """Runs steps 1-7 above for one stream; ``records()`` yields what the stream emits."""

    def __init__(self, stream: ModuleStream, store: EventStore, health: Health) -> None:
        self.stream = stream
        self.store = store
        self.health = health
        self.module = stream.name
        self.settings = stream.tap_settings
        self.started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.full = False
        self.synced_before = False

    def records(self) -> Iterator[dict[str, t.Any]]:
        """Every record (and tombstone) of this sync, each id at most once."""
        state = self.stream.stream_state
        committed = committed_event_seq(state, self.health.store_id)
        self.synced_before = self.stream.synced_before
        self._housekeeping()
        load = self._start_load(state)
        self.full = bool(load and load.full)
        if load:
            self._write_load_started(state, load)
        first = next(load.pages, None) if load else None

        high = self.store.high_water()
        changes = self._pending_changes(committed, high, load)
        emitted = 0
        if load and first:
            for record in self._bulk_rows(first, load.pages, changes):
                emitted += 1
                yield record
        outcome = changes.settle()
        yield from outcome.upserts
        if outcome.tombstones:
            self.stream.write_tombstone_schema()
            yield from outcome.tombstones
        self._note_deletions(outcome)
        LOGGER.info(
            "%s: %d bulk rows, %d changed and %d deleted records from events up to seq %d",
            self.module,
            emitted,
            sum(1 for rec in outcome.upserts if rec["_sdc_deleted_at"] is None),
            len(outcome.tombstones)
            + sum(1 for rec in outcome.upserts if rec["_sdc_deleted_at"] is not None),
            high,
        )
        self._finish(state, high, load)

    def _housekeeping(self) -> None:
        """Tell the store what the target has, and drop what every stream had long enough.

        The store is shared by all modules, so only events at or below the lowest committed
        bookmark of all selected streams may go.
        """
        floor = self.stream.committed_event_floor()
        self.store.set_committed_seq(floor)
        older_than = self.started - dt.timedelta(hours=self.settings.event_retention_hours)
        pruned = self.store.prune(floor + 1, older_than)
        if pruned:
            LOGGER.info("Pruned %d events at or below seq %d already in the target", pruned, floor)

    def _start_load(self, state: dict[str, t.Any]) -> _Load | None:
        resume = state.get(BULK)
        if resume:
            return self._resume(resume)
        window = plan_bulk(
            state,
            health=self.health,
            now=self.started,
            start_date=self.settings.start_date,
            reconcile_every=dt.timedelta(hours=self.settings.reconcile_interval_hours),
            margin=dt.timedelta(seconds=self.settings.catchup_margin_seconds),
        )
        if window is None:
            LOGGER.info("%s: events cover every change since the last sync", self.module)
            return None
        LOGGER.info("%s: %s", self.module, window.describe())
        bulk_window = BulkWindow(start=window.start)
        return _Load(bulk_window, window.full, self._window_pages(bulk_window), self.started)

    def _resume(self, resume: dict[str, t.Any]) -> _Load:
        """Continue an interrupted load from its next page, or redo its window.

        Its remaining pages were exported when it was interrupted; only events say what
        changed since. If webhooks are configured and events may be missing since the load
        began, the window is exported again instead. Without webhooks the load continues,
        and the next sync's catch-up, which starts where this load started, brings what
        changed meanwhile.
        """
        window = _window_from_state(resume.get("window") or {})
        run_started = parse_instant(resume.get("run_started_at") or format_instant(self.started))
        full = bool(resume.get("full"))
        issued = resume.get("page_token_issued_at")
        token = resume.get("page_token")
        fresh = issued and self.started - parse_instant(issued) < (
            PAGE_TOKEN_LIFETIME - PAGE_TOKEN_SAFETY
        )
        # Without webhooks there are no events to lose: every sync is a catch-up from the
        # interrupted load's start, so its remaining pages are simply continued.
        gap = self.health.webhooks_configured and event_gap(resume.get(STORE_ID), self.health)
        if token and gap:
            LOGGER.info(
                "%s: events may be missing since the interrupted load began (%s); loading %s again",
                self.module,
                gap,
                window.describe(),
            )
            pages = self._window_pages(window)
        elif token and fresh:
            LOGGER.info(
                "%s: resuming the load of %s at page %s (job %s)",
                self.module,
                window.describe(),
                resume.get("page"),
                resume.get("job_id"),
            )
            pages = self._resumed_pages(window, resume)
            return _Load(window, full, pages, run_started, continued=True)
        else:
            LOGGER.info(
                "%s: the interrupted load has no fresh page token; loading %s again",
                self.module,
                window.describe(),
            )
            pages = self._window_pages(window)
        return _Load(window, full, pages, run_started)

    def _resumed_pages(self, window: BulkWindow, resume: dict[str, t.Any]) -> Pages:
        """Pages from the saved job; if Zoho forgot it or refuses its token, redo the window."""
        reader, fields, caster = self._reader_parts()
        pages = reader.pages(
            self.module,
            fields,
            window,
            caster,
            start_job_id=resume.get("job_id"),
            start_page_token=resume.get("page_token"),
            first_number=int(resume.get("page") or 1),
        )
        try:
            page, rows = next(pages)
            # The download starts with the first row; an expired result fails only then.
            head = list(itertools.islice(rows, 1))
        except (ZohoAPIError, BulkJobError) as exc:
            LOGGER.warning(
                "%s: could not continue the load (%s); loading %s again",
                self.module,
                exc,
                window.describe(),
            )
            yield from self._window_pages(window)
            return
        yield page, itertools.chain(head, rows)
        yield from pages

    def _window_pages(self, window: BulkWindow, *, split_failures: bool = True) -> Pages:
        """Pages of ``window``, falling back to its two halves when Zoho cannot export it.

        A job that failed twice (bulk.py already retried it once) splits the window once:
        the halves' jobs do not split again, so a lasting failure ends in the error naming
        the job. ``PAGE_RANGE_EXCEEDED`` (NOTES 5.8) can only mean that one query's chain of
        page-token jobs reached Zoho's page cap; retrying or resuming would meet it again,
        so the window is split, as often as needed, into shorter chains. Rows already emitted
        are emitted again from the later export, never in an older version.
        """
        reader, fields, caster = self._reader_parts()
        pages = reader.pages(self.module, fields, window, caster)
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except BulkJobError as exc:
                if not (exc.failed and split_failures):
                    raise
                yield from self._split_pages(window, exc, split_failures=False)
                return
            except ZohoAPIError as exc:
                if exc.code != PAGE_RANGE_EXCEEDED:
                    raise
                yield from self._split_pages(window, exc, split_failures=split_failures)
                return
            yield page

    def _split_pages(self, window: BulkWindow, cause: ZohoError, *, split_failures: bool) -> Pages:
        start = window.start or self.settings.start_date or EARLIEST
        end = window.end or self.started
        if end - start < MIN_SPLIT:
            msg = f"{cause}; the window {window.describe()} is too short to split further"
            raise ZohoError(msg) from None
        middle = start + (end - start) / 2
        middle = middle.replace(microsecond=0)
        LOGGER.warning(
            "%s: %s; splitting the window at %s", self.module, cause, format_instant(middle)
        )
        # The lower half keeps the window's own start: an open start must stay open, or
        # records modified before EARLIEST (migrated data) would fall out of the load.
        for half in (BulkWindow(window.start, middle), BulkWindow(middle, window.end)):
            yield from self._window_pages(half, split_failures=split_failures)

    def _reader_parts(self) -> tuple[t.Any, list[str], t.Any]:
        stream = self.stream
        kinds = stream.selected_kinds
        fields = [name for name in stream.module_schema.bulk_fields if name in kinds]
        return stream.bulk_reader, fields, stream.caster_factory(kinds)

    def _pending_changes(self, committed: int, high: int, load: _Load | None) -> ChangeSet:
        """Ids that events (and, on a catch-up, the deleted list) have news of."""
        changes = ChangeSet()
        wanted, deleted_since = self._deleted_list_window(load)
        if wanted:
            # Zoho lists deletions strictly after If-Modified-Since; the first second
            # belongs to the window, so ask from one second earlier.
            since = deleted_since - dt.timedelta(seconds=1) if deleted_since else None
            for deleted in records.fetch_deleted(self.stream.client, self.module, since):
                changes.add_deleted(deleted.id, deleted.deleted_time)
        elif load and load.full:
            self._remember_recycle_bin()
        if load and not load.full:
            self._check_restores(changes)
        events = (e for e in self.store.read(committed, high) if e.module == self.module)
        read = changes.add_events(events)
        to_fetch = changes.ids_to_fetch()
        if to_fetch:
            started = time.monotonic()
            fetched = records.fetch_records_by_ids(
                self.stream.client, self.module, to_fetch, self.stream.selected_kinds
            )
            for record in fetched:
                changes.found(record)
            LOGGER.info(
                "%s: %d events after seq %d; fetched %d of %d changed records in %.1f s",
                self.module,
                read,
                committed,
                len(fetched),
                len(to_fetch),
                time.monotonic() - started,
            )
        return changes

    def _deleted_list_window(self, load: _Load | None) -> tuple[bool, dt.datetime | None]:
        """Whether to read Zoho's deleted-records list, and since when (None: all of it).

        Deletions matter where the target may hold rows that no export will mention again:
        a catch-up, since its window starts; a full load that an earlier attempt began,
        since that attempt began; a full load over a table an earlier sync of this install
        wrote (Meltano's ``--full-refresh``, or cleared state), the whole list, as far back as
        Zoho keeps it. A first full load reads none: the table is new.
        """
        if load is None:
            return False, None
        if not load.full:
            return True, load.window.start
        if load.run_started_at < self.started:
            margin = dt.timedelta(seconds=self.settings.catchup_margin_seconds)
            return True, load.run_started_at - margin
        return self.synced_before, None

    def _write_load_started(self, state: dict[str, t.Any], load: _Load) -> None:
        """STATE before the first row: a load interrupted before its first page's STATE
        still tells the next run when it began, and which rows may already be in.

        A load that continues saved pages keeps its saved place; one that starts its
        window (again) forgets any saved job and token.
        """
        if load.continued:
            return
        state[BULK] = {
            "window": load.window.to_state(),
            "full": load.full,
            "run_started_at": format_instant(load.run_started_at),
            STORE_ID: self.health.store_id,
        }
        self.stream.flush_state()

    def _check_restores(self, changes: ChangeSet) -> None:
        """On a catch-up, look again at every id this install marked deleted.

        A restore from Zoho's recycle bin leaves the record's ``Modified_Time`` as it was and
        takes it off the deleted list, so when its callback is lost no export or list says
        it is back; fetching the ids marked deleted within the recycle bin's 60 days does.

        Known cost: one Get Records call per 100 remembered ids on every catch-up, and
        without webhooks every sync is one. Checking only on reconcile catch-ups would bound
        it, at the price of restores arriving up to ``reconcile_interval_hours`` late.
        """
        remembered = self.store.deleted_ids(self.module)
        checked = changes.add_checks(remembered)
        if checked:
            LOGGER.info("%s: checking %d deleted records for restores", self.module, checked)

    def _remember_recycle_bin(self) -> None:
        """On a first full load, remember what sits in Zoho's recycle bin.

        Those records are in no export and get no row, but each may be restored later; if
        that callback is lost, only the catch-up's re-check of remembered ids finds it.
        """
        in_bin = [
            (deleted.id, parse_instant(deleted.deleted_time))
            for deleted in records.fetch_deleted(self.stream.client, self.module)
            if deleted.type == "recycle"
        ]
        if in_bin:
            self.store.remember_deleted(self.module, in_bin)
            LOGGER.info("%s: %d records in the recycle bin remembered", self.module, len(in_bin))

    def _note_deletions(self, outcome: Outcome) -> None:
        """Remember what this sync marked deleted; forget what it found live again."""
        deleted = [
            (rec["id"], parse_instant(rec[DELETED_AT]))
            for rec in (*outcome.upserts, *outcome.tombstones)
            if rec[DELETED_AT] is not None
        ]
        live = [rec["id"] for rec in outcome.upserts if rec[DELETED_AT] is None]
        if deleted:
            self.store.remember_deleted(self.module, deleted)
        if live:
            self.store.forget_deleted(self.module, live)

    def _bulk_rows(
        self,
        first: tuple[BulkPage, t.Iterator[dict[str, t.Any]]],
        pages: Pages,
        changes: ChangeSet,
    ) -> Iterator[dict[str, t.Any]]:
        """Rows of every page, minus those of pending ids; STATE after each page."""
        page, rows = first
        while True:
            for row in rows:
                if not changes.offer(row):
                    yield row
            self._write_page_state(page)
            following = next(pages, None)
            if following is None:
                return
            page, rows = following

    def _write_page_state(self, page: BulkPage) -> None:
        state = self.stream.stream_state
        if page.more_records:
            resume = state.get(BULK) or {}
            state[BULK] = {
                "window": page.window.to_state(),
                "full": self.full,
                "run_started_at": resume.get("run_started_at") or format_instant(self.started),
                STORE_ID: resume.get(STORE_ID) or self.health.store_id,
                "job_id": page.next_job_id,
                "page": page.number + 1,
                "page_token": page.next_page_token,
                "page_token_issued_at": (
                    format_instant(page.token_received_at) if page.token_received_at else None
                ),
            }
        else:
            state.pop(BULK, None)
        self.stream.flush_state()

    def _finish(self, state: dict[str, t.Any], high: int, load: _Load | None) -> None:
        """Bookmarks for a sync that emitted everything it read."""
        state.pop(BULK, None)
        state[EVENT_SEQ] = high
        state[STORE_ID] = self.health.store_id
        since = load.run_started_at if load else self.started
        state[LAST_SYNC] = format_instant(min(since, self.started))
        if load:
            state[LAST_CATCHUP] = format_instant(load.run_started_at)
        # The bookmark the SDK shows: every change before it is in the target.
        state["replication_key"] = "Modified_Time"
        state["replication_key_value"] = state[LAST_SYNC]


def _window_from_state(saved: dict[str, t.Any]) -> BulkWindow:
    start, end = saved.get("start"), saved.get("end")
    return BulkWindow(
        start=parse_instant(start) if start else None,
        end=parse_instant(end) if end else None,
    )
