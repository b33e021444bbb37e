"""Bulk Read: create jobs, poll them, download each page and hand its rows over.

A load is a chain of jobs, one per page of at most 200,000 rows. ``BulkReader.pages``
yields ``(page, rows)`` for each: ``page`` says which job it was and how to continue
(``next_page_token``, ``next_job_id``), ``rows`` yields the page's typed records.

Invariants:

- The next page's job is created as soon as its token is known, before the current page
  is downloaded, so Zoho prepares page N+1 while page N is read and emitted.
- A next-page job body holds only ``{"query": {"page_token": ...}}`` (NOTES 5.8).
- Polling waits ``poll_initial_seconds``, doubling up to ``poll_max_seconds``; a job not
  completed ``job_timeout_seconds`` after its creation raises ``BulkJobError``, as does
  ``FAILURE`` (with Zoho's error code and message).
- When a page's rows are exhausted their number must equal ``result.count``.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import pathlib
import tempfile
import time
import typing as t

from tap_zoho_crm import csvzip
from tap_zoho_crm.errors import BulkJobError, CorruptFileError, DataError, ZohoAPIError
from tap_zoho_crm.schema import REPLICATION_KEY

if t.TYPE_CHECKING:
    from tap_zoho_crm.client import ZohoClient

LOGGER = logging.getLogger("tap-zoho-crm.bulk")

BULK_PATH = "/crm/bulk/v8/read"
STATE_COMPLETED = "COMPLETED"
STATE_FAILURE = "FAILURE"
STATES_RUNNING = frozenset({"ADDED", "QUEUED", "IN PROGRESS"})

RowCasterFactory = t.Callable[[list[str]], t.Callable[[list[str]], dict[str, t.Any]]]


def format_criteria_time(moment: datetime.datetime) -> str:
    """UTC ISO 8601 without fractions, as Bulk Read criteria want it."""
    return moment.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat()


@dataclasses.dataclass(frozen=True)
class BulkWindow:
    """Records with ``start <= Modified_Time < end``; a missing bound is open."""

    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    def criteria(self) -> dict[str, t.Any] | None:
        """The Bulk Read criteria for this window, or None for every record."""
        leaves = [
            {
                "field": {"api_name": REPLICATION_KEY},
                "comparator": comparator,
                "value": format_criteria_time(bound),
            }
            for comparator, bound in (("greater_equal", self.start), ("less_than", self.end))
            if bound is not None
        ]
        if not leaves:
            return None
        if len(leaves) == 1:
            return leaves[0]
        return {"group_operator": "and", "group": leaves}

    def describe(self) -> str:
        """Human-readable window for logs."""
        start = format_criteria_time(self.start) if self.start else "the beginning"
        end = format_criteria_time(self.end) if self.end else "now"
        return f"{start} to {end}"

    def to_state(self) -> dict[str, str | None]:
        """JSON form kept in STATE."""
        return {
            "start": format_criteria_time(self.start) if self.start else None,
            "end": format_criteria_time(self.end) if self.end else None,
        }


@dataclasses.dataclass(frozen=True)
class BulkSettings:
    """Polling and deadline settings (seconds)."""

    poll_initial_seconds: float = 2.0
    poll_max_seconds: float = 60.0
    job_timeout_seconds: float = 3600.0
    failure_retries: int = 1
    download_attempts: int = 3
    downloads_per_minute: int = 10


@dataclasses.dataclass(frozen=True)
class BulkPage:
    """One completed job of a load.

    ``next_page_token`` is set when more pages follow; ``next_job_id`` is the job already
    created from it; ``token_received_at`` is when Zoho handed the token out (UTC; it lives
    24 hours). ``count`` is Zoho's row count for this page.
    """

    module: str
    window: BulkWindow
    number: int
    job_id: str
    count: int
    job_seconds: float
    next_page_token: str | None = None
    next_job_id: str | None = None
    token_received_at: datetime.datetime | None = None

    @property
    def more_records(self) -> bool:
        """True when another page follows this one."""
        return self.next_page_token is not None


class BulkReader:
    """Runs Bulk Read jobs through one client."""

    def __init__(
        self,
        client: ZohoClient,
        settings: BulkSettings | None = None,
        *,
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
        workdir: str | None = None,
    ) -> None:
        self.client = client
        self.settings = settings or BulkSettings()
        self._clock = clock
        self._sleep = sleep
        self._workdir = workdir
        self._created_at: dict[str, float] = {}
        self._downloads: collections.deque[float] = collections.deque()

    def create_job(
        self, module: str, fields: t.Sequence[str], window: BulkWindow | None = None
    ) -> str:
        """Create the first job of a load; return its id."""
        query: dict[str, t.Any] = {"module": {"api_name": module}, "fields": list(fields)}
        criteria = (window or BulkWindow()).criteria()
        if criteria is not None:
            query["criteria"] = criteria
        job_id = self._post_job({"query": query})
        LOGGER.info(
            "Bulk Read job %s created for %s (%d fields, window %s)",
            job_id,
            module,
            len(fields),
            (window or BulkWindow()).describe(),
        )
        return job_id

    def create_next_job(self, page_token: str) -> str:
        """Create the job for the next page from its token; return its id."""
        job_id = self._post_job({"query": {"page_token": page_token}})
        LOGGER.info("Bulk Read job %s created for the next page", job_id)
        return job_id

    def _post_job(self, body: dict[str, t.Any]) -> str:
        answer = self.client.post_json(BULK_PATH, body)
        item = (answer.get("data") or [{}])[0]
        details = item.get("details") or {}
        if item.get("status") != "success" or not details.get("id"):
            raise ZohoAPIError(
                str(item.get("code") or "UNEXPECTED_ANSWER"),
                str(item.get("message") or "no job id in the create-job answer"),
                details,
                201,
                endpoint=f"POST {BULK_PATH}",
            )
        job_id = str(details["id"])
        self._created_at[job_id] = self._clock()
        return job_id

    def job_details(self, job_id: str) -> dict[str, t.Any]:
        """The job's details object (``data[0]``)."""
        answer = self.client.get_json(f"{BULK_PATH}/{job_id}")
        data = answer.get("data") or []
        if not data or not isinstance(data[0], dict):
            msg = f"Bulk Read job {job_id}: details answer holds no job"
            raise DataError(msg)
        return t.cast("dict[str, t.Any]", data[0])

    def wait_for_job(self, job_id: str) -> dict[str, t.Any]:
        """Poll until COMPLETED and return ``result``; FAILURE or the deadline raise."""
        created = self._created_at.setdefault(job_id, self._clock())
        deadline = created + self.settings.job_timeout_seconds
        delay = self.settings.poll_initial_seconds
        while True:
            details = self.job_details(job_id)
            state = str(details.get("state") or "")
            if state == STATE_COMPLETED:
                return t.cast("dict[str, t.Any]", details.get("result") or {})
            if state == STATE_FAILURE:
                raise _failure(job_id, details)
            if state not in STATES_RUNNING:
                LOGGER.warning("Bulk Read job %s has unknown state %r; polling on", job_id, state)
            remaining = deadline - self._clock()
            if remaining <= 0:
                msg = (
                    f"Bulk Read job {job_id} did not complete within "
                    f"{self.settings.job_timeout_seconds:g} s (last state {state!r}); "
                    "raise bulk_job_timeout_seconds or retry later"
                )
                raise BulkJobError(job_id, msg)
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, self.settings.poll_max_seconds)

    def pages(
        self,
        module: str,
        fields: t.Sequence[str],
        window: BulkWindow,
        make_caster: RowCasterFactory,
        *,
        start_job_id: str | None = None,
        start_page_token: str | None = None,
        first_number: int = 1,
    ) -> t.Iterator[tuple[BulkPage, t.Iterator[dict[str, t.Any]]]]:
        """Yield (page, typed rows) for every page of the load, in order.

        ``start_job_id`` continues with an existing job instead of creating the first one;
        ``start_page_token`` is the token that job came from (used to re-create it after a
        FAILURE). Read each page's rows before asking for the next page.
        """
        token = start_page_token
        job_id: str | None = start_job_id or self._create(module, fields, window, token)
        number = first_number - 1
        while job_id is not None:
            number += 1
            page = self._complete_with_retry(
                module, fields, window, number, job_id, page_token=token
            )
            rows = self._page_rows(page, make_caster)
            try:
                yield page, rows
            finally:
                rows.close()
            job_id, token = page.next_job_id, page.next_page_token

    def _create(
        self,
        module: str,
        fields: t.Sequence[str],
        window: BulkWindow,
        page_token: str | None,
    ) -> str:
        """A job for the window's first page, or for the page ``page_token`` points at."""
        if page_token:
            return self.create_next_job(page_token)
        return self.create_job(module, fields, window)

    def _complete_with_retry(
        self,
        module: str,
        fields: t.Sequence[str],
        window: BulkWindow,
        number: int,
        job_id: str,
        *,
        page_token: str | None,
    ) -> BulkPage:
        """Complete the job; a FAILURE gets ``failure_retries`` fresh jobs of the same query."""
        attempts_left = self.settings.failure_retries
        while True:
            try:
                return self._complete_page(module, window, number, job_id)
            except BulkJobError as exc:
                if not exc.failed or attempts_left <= 0:
                    raise
                attempts_left -= 1
                LOGGER.warning("%s; creating the job again", exc)
                job_id = self._create(module, fields, window, page_token)

    def _complete_page(self, module: str, window: BulkWindow, number: int, job_id: str) -> BulkPage:
        """Wait for the job, log it, and start the next page's job right away."""
        result = self.wait_for_job(job_id)
        job_seconds = self._clock() - self._created_at.get(job_id, self._clock())
        count = int(result.get("count") or 0)
        LOGGER.info(
            "Bulk Read job %s completed in %.1f s: %s page %d, %d rows",
            job_id,
            job_seconds,
            module,
            number,
            count,
        )
        token = result.get("next_page_token") if result.get("more_records") else None
        if result.get("more_records") and not token:
            msg = f"Bulk Read job {job_id} says more_records but gives no next_page_token"
            raise DataError(msg)
        next_job_id = self.create_next_job(str(token)) if token else None
        return BulkPage(
            module=module,
            window=window,
            number=number,
            job_id=job_id,
            count=count,
            job_seconds=job_seconds,
            next_page_token=str(token) if token else None,
            next_job_id=next_job_id,
            token_received_at=datetime.datetime.now(datetime.timezone.utc) if token else None,
        )

    def _page_rows(
        self, page: BulkPage, make_caster: RowCasterFactory
    ) -> t.Generator[dict[str, t.Any], None, None]:
        """Yield the page's typed rows; a damaged download is fetched again.

        Rows already yielded are not yielded again after a re-download: the result of a
        completed job does not change, so the first ``emitted`` rows are skipped.
        """
        started = time.perf_counter()
        emitted = 0
        for attempt in range(1, self.settings.download_attempts + 1):
            try:
                for row in self._download_rows(page, make_caster, skip=emitted):
                    yield row
                    emitted += 1
                break
            except CorruptFileError as exc:
                if attempt == self.settings.download_attempts:
                    msg = (
                        f"{exc}; gave up after {attempt} downloads of job {page.job_id}. "
                        "The run stops without STATE for this page; run again later"
                    )
                    raise CorruptFileError(msg) from None
                LOGGER.warning("%s; downloading job %s again", exc, page.job_id)
        _check_count(page, emitted)
        seconds = max(time.perf_counter() - started, 1e-9)
        LOGGER.info(
            "%s page %d emitted: %d rows in %.1f s (%.0f rows/s)",
            page.module,
            page.number,
            emitted,
            seconds,
            emitted / seconds,
        )

    def _download_rows(
        self, page: BulkPage, make_caster: RowCasterFactory, *, skip: int
    ) -> t.Generator[dict[str, t.Any], None, None]:
        """Download the page's ZIP to a temporary file and yield typed rows after ``skip``."""
        with tempfile.TemporaryDirectory(prefix="tzc-bulk-", dir=self._workdir) as scratch:
            path = pathlib.Path(scratch) / f"{page.job_id}.zip"
            self._respect_download_limit()
            size = csvzip.download(self.client, f"{BULK_PATH}/{page.job_id}/result", path)
            LOGGER.debug("Downloaded %d bytes for job %s", size, page.job_id)
            with csvzip.open_csv(path) as (header, raw_rows):
                cast = make_caster(header)
                for index, raw in enumerate(raw_rows):
                    if index >= skip:
                        yield cast(raw)

    def _respect_download_limit(self) -> None:
        """Zoho allows ``downloads_per_minute`` result downloads; wait rather than get 429."""
        window = 60.0
        limit = self.settings.downloads_per_minute
        now = self._clock()
        while self._downloads and now - self._downloads[0] >= window:
            self._downloads.popleft()
        if len(self._downloads) >= limit:
            wait = window - (now - self._downloads[0])
            LOGGER.info("Waiting %.1f s: Zoho allows %d downloads a minute", wait, limit)
            self._sleep(wait)
            self._downloads.popleft()
        self._downloads.append(self._clock())


def _check_count(page: BulkPage, rows: int) -> None:
    if rows != page.count:
        msg = (
            f"Bulk Read job {page.job_id} ({page.module} page {page.number}) announced "
            f"{page.count} rows but its CSV held {rows}"
        )
        raise DataError(msg)


def _failure(job_id: str, details: t.Mapping[str, t.Any]) -> BulkJobError:
    error = (details.get("result") or {}).get("error_message") or {}
    code = error.get("code") or "no code"
    message = error.get("message") or "no message"
    return BulkJobError(job_id, f"Bulk Read job {job_id} failed: {code}: {message}", failed=True)
