"""Bulk Read jobs: create, details, download, the state machine and page tokens.

A job moves ADDED -> QUEUED -> IN PROGRESS at quarter and half of its duration (the
`job_seconds` in force when it was created, on the emulator clock). At the full duration
it takes its snapshot (`Table.freeze`): edits before that instant are in the export, later
ones are not. The ZIP is then written on a worker thread and the job reads COMPLETED once
the file is ready. Faults make a job end in FAILURE or never leave IN PROGRESS.

A page token is self-contained: the module, fields and criteria of the first request, the
last exported id, the next page number and the issue time, signed with the emulator's
key. It is good for 24 hours of emulator time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ._http import Request, Response
from .catalog import ORG, USER_IDS, Module
from .criteria import Predicate, compile_criteria
from .data import View
from .errors import ZohoError, crm_error, too_many_requests
from .export import Column, ExportResult, corrupted_copy, write_result
from .state import State
from .values import csv_column, dotted_ok

log = logging.getLogger(__name__)

TOKEN_SECONDS = 24 * 3600
RESULT_SECONDS = 24 * 3600
MAX_FIELDS = 200
FAILURE_MESSAGE = {"status": "error", "code": "INTERNAL_SERVER_ERROR",
                   "message": "Internal server error occurred.", "details": {}}


@dataclass
class Job:
    """One Bulk Read job; `fate` is `complete`, `failure` or `stuck`."""

    id: str
    module: Module
    header: list[str]
    columns: list[Column]
    predicate: Predicate | None
    spec: dict[str, Any]
    after_id: str | None
    page: int
    skip: int
    page_size: int
    created_at: float
    duration: float
    fate: str
    query_echo: dict[str, Any]
    page_token: str | None = None
    view: View | None = None
    settled_at: float | None = None
    done: bool = False
    path: str | None = None
    export: ExportResult | None = None
    next_token: str | None = None

    def state_at(self, now: float) -> str:
        """The job state Zoho would report at `now`."""
        elapsed = now - self.created_at
        if self.fate == "stuck" or elapsed < self.duration:
            if elapsed < self.duration / 4:
                return "ADDED"
            return "QUEUED" if elapsed < self.duration / 2 else "IN PROGRESS"
        if self.fate == "failure":
            return "FAILURE"
        return "COMPLETED" if self.done else "IN PROGRESS"


class BulkService:
    """Owns the jobs of one emulator."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.jobs: dict[str, Job] = {}
        self._serial = 0

    # -- the state machine ------------------------------------------------------------

    def settle(self) -> None:
        """Freeze the snapshot of every job whose duration has passed (hold `state.lock`)."""
        now = self.state.now()
        for job in self.jobs.values():
            if job.settled_at is not None or job.fate == "stuck":
                continue
            if now < job.created_at + job.duration:
                continue
            job.settled_at = now
            if job.fate == "failure":
                log.info("bulk job %s failed (fault)", job.id)
                continue
            job.view = self.state.tables[job.module.api_name].freeze()
            threading.Thread(target=self._write, args=(job,), daemon=True,
                             name=f"bulk-{job.id}").start()

    def _write(self, job: Job) -> None:
        started = time.monotonic()
        path = os.path.join(self.state.workdir.name, f"{job.id}.zip")
        assert job.view is not None
        result = write_result(path, job.id, job.view, header=job.header, columns=job.columns,
                              predicate=job.predicate, after_id=job.after_id, skip=job.skip,
                              limit=job.page_size)
        with self.state.lock:
            job.path, job.export, job.view = path, result, None
            if result.more:
                job.next_token = self._token(job, result.last_id)
            job.done = True
        log.info("bulk job %s completed in %.1f s, %d rows, more_records=%s", job.id,
                 time.monotonic() - started, result.count, result.more)

    # -- create -----------------------------------------------------------------------

    def create(self, request: Request) -> Response:
        """`POST /crm/bulk/v8/read`."""
        body = _read_body(request)
        query = body.get("query")
        if not isinstance(query, dict):
            raise _wrapped("INVALID_REQUEST", "query is mandatory", api_name="query")
        _check_callback(body.get("callback"))
        file_type = body.get("file_type", query.get("file_type", "csv"))
        if file_type != "csv":
            raise _wrapped("INVALID_REQUEST", "only csv is supported for this module",
                           api_name="file_type")
        faults = self.state.faults
        if faults.take("page_range_exceeded", request.path):
            raise _page_range(self.state.config.max_page)
        with self.state.lock:
            self.settle()
            if "page_token" in query:
                spec, after_id, page = self._from_token(query["page_token"], request.path)
            else:
                spec, after_id, page = _spec_from_query(query), None, _page(query, self.state)
            job = self._new_job(spec, after_id, page, query.get("page_token"), request.path)
            self.jobs[job.id] = job
        self.state.stats.job(job.id)
        log.info("bulk job %s created for %s, page %d", job.id, job.module.api_name, page)
        details = {"id": job.id, "operation": "read", "state": "ADDED",
                   "created_by": _creator(), "created_time": self._iso(job.created_at)}
        return Response.json({"data": [{"status": "success", "code": "ADDED_SUCCESSFULLY",
                                        "message": "Added successfully.",
                                        "details": details}], "info": {}}, 201)

    def _new_job(self, spec: dict[str, Any], after_id: str | None, page: int,
                 token: str | None, path: str) -> Job:
        module = self._module(spec["module"])
        header, columns = self._columns(module, spec.get("fields"))
        predicate, echo = (None, None)
        if spec.get("criteria") is not None:
            predicate, echo = compile_criteria(module, spec["criteria"])
        fate = "complete"
        if self.state.faults.take("bulk_job_failure", path):
            fate = "failure"
        elif self.state.faults.take("bulk_job_stuck", path):
            fate = "stuck"
        self._serial += 1
        query_echo: dict[str, Any] = {"module": {"id": module.id, "api_name": module.api_name},
                                      "fields": header[1:], "page": page}
        if echo is not None:
            query_echo["criteria"] = echo
        if token:
            query_echo["page_token"] = token
        config = self.state.config
        skip = 0 if token else (page - 1) * config.page_size
        return Job(f"{ORG}0000030{self._serial:05d}", module, header, columns, predicate, spec,
                   after_id, page, skip, config.page_size, self.state.now(),
                   config.job_seconds, fate, query_echo, token)

    def _module(self, name: Any) -> Module:
        module = self.state.modules.get(name) if isinstance(name, str) else None
        if module is None or not module.meta["api_supported"]:
            raise _wrapped("MODULE_NOT_AVAILABLE", "the module is not available",
                           api_name="module")
        if not module.bulk_supported:
            raise _wrapped("MODULE_NOT_SUPPORTED", "the module is not supported for bulk read",
                           module=name)
        return module

    def _columns(self, module: Module, names: Any) -> tuple[list[str], list[Column]]:
        fmt, directory = self.state.formatter, self.state.directory
        if names is not None and not (isinstance(names, list)
                                      and all(isinstance(n, str) for n in names)):
            raise _wrapped("INVALID_REQUEST", "fields must be a list of API names",
                           api_name="fields")
        if not names or len(names) > MAX_FIELDS:  # Zoho exports every field past 200
            names = [f.api_name for f in module.fields if f.exported]
        header, columns = ["Id"], [csv_column(module.fields[0], fmt)]
        for name in names:
            if name in ("id", "Id") or name in header:
                continue
            base, _, attr = name.partition(".")
            fld = module.field(base)
            if fld is None or (attr and not dotted_ok(fld, attr)):
                raise _wrapped("FIELD_NOT_AVAILABLE", "field not available", api_name=name)
            if not fld.exported:
                raise _wrapped("FIELD_NOT_SUPPORTED", "the field type cannot be exported",
                               api_name=name)
            header.append(name)
            columns.append(csv_column(fld, fmt, attr or None, directory))
        return header, columns

    # -- page tokens ------------------------------------------------------------------

    def _token(self, job: Job, last_id: str | None) -> str:
        payload = {"m": job.module.api_name, "f": job.spec.get("fields"),
                   "c": job.spec.get("criteria"), "a": last_id, "p": job.page + 1,
                   "t": int(self.state.now())}
        raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        text = raw.decode().rstrip("=")
        return f"{text}.{self._sign(text)}"

    def _sign(self, text: str) -> str:
        return hmac.new(self.state.token_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _from_token(self, token: Any, path: str) -> tuple[dict[str, Any], str | None, int]:
        text, _, signature = str(token).partition(".")
        if not isinstance(token, str) or not hmac.compare_digest(signature, self._sign(text)):
            raise _wrapped("INVALID_DATA", "invalid page token", api_name="page_token")
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        expired = self.state.now() > payload["t"] + TOKEN_SECONDS
        if expired or self.state.faults.take("page_token_expired", path):
            raise _wrapped("EXPIRED_VALUE", "The token given has expired.",
                           api_name="page_token", json_path="$.query.page_token")
        spec = {"module": payload["m"], "fields": payload["f"], "criteria": payload["c"]}
        return spec, payload["a"], payload["p"]

    # -- details and download ---------------------------------------------------------

    def details(self, job_id: str) -> Response:
        """`GET /crm/bulk/v8/read/{job_id}`."""
        with self.state.lock:
            self.settle()
            job = self._job(job_id)
            return Response.json({"data": [self._job_json(job)]})

    def _job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise crm_error(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.",
                            {"resource": "job_id"})
        return job

    def _job_json(self, job: Job) -> dict[str, Any]:
        state = job.state_at(self.state.now())
        body: dict[str, Any] = {"id": job.id, "operation": "read", "state": state,
                                "query": job.query_echo, "created_by": _creator(),
                                "created_time": self._iso(job.created_at), "file_type": "csv"}
        if state == "FAILURE":
            body["result"] = {"error_message": dict(FAILURE_MESSAGE)}
        elif state == "COMPLETED" and job.export is not None:
            result: dict[str, Any] = {
                "page": job.page, "per_page": job.page_size, "count": job.export.count,
                "download_url": f"/crm/bulk/v8/read/{job.id}/result",
                "more_records": job.export.more}
            if job.next_token:
                result["next_page_token"] = job.next_token
            body["result"] = result
        return body

    def summaries(self, ids: list[str]) -> list[dict[str, Any]]:
        """Jobs for the stats answer: id, query or page token, and current state."""
        with self.state.lock:
            now = self.state.now()
            return [{"id": j.id, "module": j.module.api_name, "query": j.query_echo,
                     "page_token": j.page_token, "state": j.state_at(now)}
                    for j in (self.jobs[i] for i in ids if i in self.jobs)]

    def download(self, request: Request, job_id: str) -> Response:
        """`GET /crm/bulk/v8/read/{job_id}/result`: the ZIP, at most N calls a minute."""
        with self.state.lock:
            self.settle()
            self._count_download()
            job = self._job(job_id)
            state = job.state_at(self.state.now())
            if state != "COMPLETED" or job.path is None:
                raise crm_error(400, "INVALID_REQUEST", "The job is not completed.",
                                {"job_id": job.id, "state": state})
            if self.state.now() > (job.settled_at or 0) + RESULT_SECONDS:
                raise crm_error(404, "RESOURCE_NOT_FOUND", "The download has expired.",
                                {"resource": "download_url"})
            path = job.path
        return self._file_answer(request, job, path)

    def _count_download(self) -> None:
        now = self.state.now()
        recent = [t for t in self.state.download_times if now - t < 60]
        if len(recent) >= self.state.config.downloads_per_minute:
            self.state.download_times = recent
            raise too_many_requests()
        recent.append(now)
        self.state.download_times = recent

    def _file_answer(self, request: Request, job: Job, path: str) -> Response:
        faults = self.state.faults
        size = os.path.getsize(path)
        if faults.take("corrupt_zip", request.path):
            path = corrupted_copy(path, f"{path}.corrupt")
        elif faults.take("truncated_zip", request.path):
            size = size // 2
        headers = {"Content-Type": "application/x-download",
                   "Content-Disposition": f'attachment; filename="{job.id}.zip"'}
        return Response(200, headers=headers, file=path, file_bytes=size)

    def _iso(self, epoch: float) -> str:
        return self.state.formatter.iso(epoch)


def _creator() -> dict[str, str]:
    return {"id": USER_IDS[0], "name": "User Alpha"}


def _wrapped(code: str, message: str, **details: Any) -> ZohoError:
    return crm_error(400, code, message, details, wrap="data")


def _page_range(max_limit: int) -> ZohoError:
    return crm_error(400, "PAGE_RANGE_EXCEEDED", "page range exceeded", {"max_limit": max_limit})


def _read_body(request: Request) -> dict[str, Any]:
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise crm_error(415, "MEDIA_TYPE_NOT_SUPPORTED",
                        "The Content-Type of the request is not supported.", {})
    if not request.body.strip():
        raise crm_error(400, "REQUEST_BODY_IS_EMPTY", "The request body is empty.", {})
    try:
        body = request.json()
    except ValueError:
        raise crm_error(400, "REQUEST_BODY_NOT_READABLE", "The request body is not readable.",
                        {}) from None
    if not isinstance(body, dict):
        raise crm_error(400, "REQUEST_BODY_NOT_SUPPORTED", "The request body is not supported.",
                        {})
    return body


def _check_callback(callback: Any) -> None:
    if callback is None:
        return
    url = callback.get("url") if isinstance(callback, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _wrapped("INVALID_CALLBACK_URL", "invalid callback url", api_name="url")
    if callback.get("method") != "post":
        raise _wrapped("INVALID_CALLBACK_METHOD", "invalid callback method", api_name="method")


def _spec_from_query(query: dict[str, Any]) -> dict[str, Any]:
    module = query.get("module")
    name = module.get("api_name") if isinstance(module, dict) else None
    if not isinstance(name, str):
        raise _wrapped("INVALID_REQUEST", "module is mandatory", api_name="module")
    if query.get("cvid") is not None:
        raise _wrapped("CVID_NOT_SUPPORTED", "custom views are not supported", api_name="cvid")
    return {"module": name, "fields": query.get("fields"), "criteria": query.get("criteria")}


def _page(query: dict[str, Any], state: State) -> int:
    page = query.get("page", 1)
    if page is None:
        return 1
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise _wrapped("INVALID_REQUEST", "page must be a positive integer", api_name="page")
    if page > state.config.max_page:
        raise _page_range(state.config.max_page)
    return page
