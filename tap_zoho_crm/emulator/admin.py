"""The admin API under `/__admin/`: change records, queue faults, read stats, move time.

Every record change first settles Bulk Read jobs whose time is up, so a job's snapshot
never sees a change made after it completed. Creates, edits, deletes and restores raise
notification callbacks (a restore is an `update`, with no affected fields).
"""

from __future__ import annotations

import logging
from typing import Any

from ._http import Request, Response
from .bulk import BulkService
from .catalog import Module
from .errors import ZohoError
from .notify import Notifier
from .records import deleted_rows, record_json
from .state import Config, State
from .values import ValueProblem, to_json

log = logging.getLogger(__name__)


def _problem(status: int, message: str) -> ZohoError:
    return ZohoError(status, {"status": "error", "message": message})


class AdminApi:
    """Handlers for the admin routes of one emulator."""

    def __init__(self, state: State, bulk: BulkService, notifier: Notifier) -> None:
        self.state = state
        self.bulk = bulk
        self.notifier = notifier

    def _module(self, request: Request) -> Module:
        module = self.state.modules.get(request.params["module"])
        if module is None or not module.fields:
            raise _problem(404, f"unknown module {request.params['module']}")
        return module

    def _values(self, request: Request) -> dict[str, Any]:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            raise _problem(400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise _problem(400, "body must be a JSON object of field values")
        return body

    def create(self, request: Request) -> Response:
        """Create a record; answers it as Get Records would."""
        module, values = self._module(request), self._values(request)
        with self.state.lock:
            self.bulk.settle()
            try:
                row = self.state.tables[module.api_name].create(values, int(self.state.now()))
            except (ValueProblem, ValueError) as exc:
                raise _problem(400, str(exc)) from None
            self.notifier.emit(module.api_name, "insert", row[0])
            return Response.json(record_json(self.state, module, row), 201)

    def edit(self, request: Request) -> Response:
        """Edit a record; `Modified_Time` moves to the emulator clock."""
        module, values = self._module(request), self._values(request)
        record_id = request.params["id"]
        with self.state.lock:
            self.bulk.settle()
            table = self.state.tables[module.api_name]
            try:
                row, changed = table.edit(record_id, values, int(self.state.now()))
            except KeyError:
                raise _problem(404, f"no live record {record_id}") from None
            except (ValueProblem, ValueError) as exc:
                raise _problem(400, str(exc)) from None
            fmt, directory = self.state.formatter, self.state.directory
            new_values = {n: to_json(module.by_name[n], row[module.by_name[n].index],
                                     directory, fmt) for n in changed}
            self.notifier.emit(module.api_name, "update", record_id, changed, new_values)
            return Response.json(record_json(self.state, module, row))

    def delete(self, request: Request) -> Response:
        """Delete a record to the recycle bin (`?permanent=true` skips the bin)."""
        module = self._module(request)
        record_id = request.params["id"]
        permanent = request.query.get("permanent") == "true"
        with self.state.lock:
            self.bulk.settle()
            try:
                entry = self.state.tables[module.api_name].delete(
                    record_id, int(self.state.now()), permanent=permanent)
            except KeyError:
                raise _problem(404, f"no live record {record_id}") from None
            self.notifier.emit(module.api_name, "delete", record_id)
            return Response.json({"id": record_id, "type": entry.kind,
                                  "deleted_time": self.state.formatter.iso(entry.deleted_time)})

    def restore(self, request: Request) -> Response:
        """Restore a recycle-bin record; it notifies as an `update`."""
        module = self._module(request)
        record_id = request.params["id"]
        with self.state.lock:
            self.bulk.settle()
            try:
                row = self.state.tables[module.api_name].restore(record_id)
            except KeyError:
                raise _problem(404, f"{record_id} is not in the recycle bin") from None
            self.notifier.emit(module.api_name, "update", record_id)
            return Response.json(record_json(self.state, module, row))

    def truth(self, request: Request) -> Response:
        """Every live record, in ascending id order, as Get Records spells it."""
        module = self._module(request)
        with self.state.lock:
            rows = list(self.state.tables[module.api_name].live().iter_rows())
            data = [record_json(self.state, module, row) for row in rows]
        return Response.json({"data": data, "count": len(data)})

    def deleted(self, request: Request) -> Response:
        """Every deleted id with its type and `deleted_time`, newest first."""
        module = self._module(request)
        return Response.json({"data": deleted_rows(self.state, module, "all", None)})

    def add_fault(self, request: Request) -> Response:
        """Queue a fault: `{"fault": NAME, "times": N, "path": PREFIX, ...}`."""
        try:
            fault = self.state.faults.add(self._values(request))
        except ValueError as exc:
            raise _problem(400, str(exc)) from None
        log.info("fault %s queued (%d times)", fault.name, fault.times)
        return Response.json(fault.as_json(), 201)

    def clear_faults(self, request: Request) -> Response:
        """Forget every queued fault."""
        self.state.faults.clear()
        return Response.json({"faults": []})

    def stats(self, request: Request) -> Response:
        """Counters, credits, jobs, downloads, callbacks and pending faults."""
        jobs = self.bulk.summaries(list(self.state.stats.job_ids))
        body = self.state.stats.as_json(jobs)
        body["faults"] = self.state.faults.pending()
        return Response.json(body)

    def reset_stats(self, request: Request) -> Response:
        """Zero the counters."""
        self.state.stats.reset()
        return Response.json({"reset": True})

    def config(self, request: Request) -> Response:
        """Change run-time settings; answers the settings now in force."""
        values = self._values(request)
        config = self.state.config
        unknown = [k for k in values if k not in Config.RUNTIME]
        if unknown:
            raise _problem(400, f"not run-time settings: {unknown}; allowed: {Config.RUNTIME}")
        with self.state.lock:
            previous = {k: getattr(config, k) for k in Config.RUNTIME}
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise _problem(400, f"{key} must be a number")
                setattr(config, key, type(previous[key])(value))
            try:
                config.check()
            except ValueError as exc:
                for key, value in previous.items():
                    setattr(config, key, value)
                raise _problem(400, str(exc)) from None
        return Response.json({k: getattr(config, k) for k in Config.RUNTIME})

    def clock(self, request: Request) -> Response:
        """Move the emulator clock forward by `advance_seconds`."""
        seconds = self._values(request).get("advance_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise _problem(400, "advance_seconds must be a number >= 0")
        offset = self.state.clock.advance(seconds)
        now = self.state.now()
        return Response.json({"now": self.state.formatter.iso(now), "offset_seconds": offset})
