"""A tiny scriptable Zoho stand-in on 127.0.0.1 for unit tests (accounts + CRM in one).

Tests set attributes (``pages``, ``job_states``, ``faults`` ...) and read ``requests``.
It only serves what the tap's full-load path calls; the real emulator covers the rest.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
import pathlib
import threading
import typing as t
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXAMPLES = pathlib.Path("/work/shared/zoho-api/examples")
CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-secret"
REFRESH_TOKEN = "fake-refresh"


def example(name: str) -> t.Any:
    """Parsed JSON example payload."""
    return json.loads((EXAMPLES / name).read_text())


def zip_bytes(name: str, text: str | bytes) -> bytes:
    """A ZIP holding one entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


class FakeZoho:
    """State and behaviour of the fake; handler threads read it under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, t.Any]] = []
        self.token_errors: list[str] = []
        self.token_expires_in = 3600
        self.send_api_domain = True
        self.live_tokens: set[str] = set()
        self._token_numbers = itertools.count(1)
        self.modules = example("modules_response_excerpt.json")
        self.fields = example("fields_response_leads.json")
        self.pages: list[str | bytes] = [(EXAMPLES / "leads_bulk_read.csv").read_text()]
        self.page_counts: list[int] | None = None
        self.job_states: list[str] = ["ADDED", "IN PROGRESS", "COMPLETED"]
        self.jobs: dict[str, dict[str, t.Any]] = {}
        self._job_numbers = itertools.count(4000000000003000001)
        self.records: dict[str, dict[str, t.Any]] = {}
        self.deleted_pages: list[dict[str, t.Any]] = []
        self.faults: list[tuple[str, int, dict[str, t.Any] | None]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of both the accounts server and the API domain."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def config(self, **extra: t.Any) -> dict[str, t.Any]:
        """A tap config pointing at this fake, with fast polling."""
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "accounts_url": self.url,
            "bulk_poll_initial_seconds": 0.01,
            "bulk_poll_max_seconds": 0.02,
            "max_retries": 2,
            **extra,
        }

    def start(self) -> FakeZoho:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def expire_tokens(self) -> None:
        with self.lock:
            self.live_tokens.clear()

    def paths(self, method: str = "") -> list[str]:
        return [r["path"] for r in self.requests if not method or r["method"] == method]

    # Handlers, called with the lock held; each returns (status, body, headers).

    def token(self, form: dict[str, str]) -> tuple[int, t.Any]:
        if self.token_errors:
            error = self.token_errors.pop(0)
            return 200, {"error": error}
        if form.get("grant_type") != "refresh_token":
            return 200, {"error": "unsupported_grant_type"}
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 200, {"error": "invalid_client"}
        if form.get("refresh_token") != REFRESH_TOKEN:
            return 200, {"error": "invalid_code"}
        token = f"1000.fake.{next(self._token_numbers)}"
        self.live_tokens.add(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_expires_in}
        if self.send_api_domain:
            body["api_domain"] = self.url
        return 200, body

    def crm(self, method: str, path: str, query: dict[str, str], body: t.Any) -> tuple[int, t.Any]:
        if path == "/crm/v8/settings/modules":
            return 200, self.modules
        if path == "/crm/v8/settings/fields":
            return 200, self.fields
        if path == "/crm/bulk/v8/read" and method == "POST":
            return self.create_job(body)
        if path.startswith("/crm/bulk/v8/read/"):
            parts = path.split("/")
            return self.job(parts[5], result=len(parts) > 6)
        if path.endswith("/deleted"):
            page = int(query.get("page", "1"))
            if page > len(self.deleted_pages):
                return 204, None
            return 200, self.deleted_pages[page - 1]
        if path.startswith("/crm/v8/"):
            return self.get_records(query)
        return 404, {"code": "INVALID_URL_PATTERN", "message": "no such path", "status": "error"}

    def create_job(self, body: dict[str, t.Any]) -> tuple[int, t.Any]:
        query = body.get("query", {})
        page = int(query["page_token"].split("-")[1]) if "page_token" in query else 0
        job_id = str(next(self._job_numbers))
        self.jobs[job_id] = {"body": body, "page": page, "polls": 0}
        answer = copy.deepcopy(example("bulk_create_job_response.json"))
        answer["data"][0]["details"]["id"] = job_id
        return 201, answer

    def job(self, job_id: str, *, result: bool) -> tuple[int, t.Any]:
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {"code": "RESOURCE_NOT_FOUND", "message": "no job", "status": "error"}
        page = job["page"]
        if result:
            content = self.pages[page]
            return 200, content if isinstance(content, bytes) else zip_bytes(
                f"{job_id}.csv", content
            )
        state = self.job_states[min(job["polls"], len(self.job_states) - 1)]
        job["polls"] += 1
        details: dict[str, t.Any] = {"id": job_id, "operation": "read", "state": state}
        if state == "FAILURE":
            details["result"] = example("bulk_job_details_failure.json")["data"][0]["result"]
        elif state == "COMPLETED":
            more = page + 1 < len(self.pages)
            count = self.page_counts[page] if self.page_counts else _rows(self.pages[page])
            details["result"] = {
                "page": page + 1,
                "per_page": 200000,
                "count": count,
                "download_url": f"/crm/bulk/v8/read/{job_id}/result",
                "more_records": more,
            }
            if more:
                details["result"]["next_page_token"] = f"token-{page + 1}"
        return 200, {"data": [details]}

    def get_records(self, query: dict[str, str]) -> tuple[int, t.Any]:
        ids = query.get("ids", "").split(",")
        fields = query.get("fields", "").split(",")
        data = [
            {"id": rid, **{f: rec[f] for f in fields if f in rec}}
            for rid in ids
            if (rec := self.records.get(rid)) is not None
        ]
        return (200, {"data": data, "info": {}}) if data else (204, None)


def _rows(page: str | bytes) -> int:
    if isinstance(page, bytes):
        return 0
    return max(len(list(csv.reader(io.StringIO(page.lstrip("\ufeff"))))) - 1, 0)


def _handler(fake: FakeZoho) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: t.Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with fake.lock:
                fake.requests.append(
                    {
                        "method": method,
                        "path": parsed.path,
                        "query": query,
                        "raw": raw,
                        "headers": dict(self.headers),
                    }
                )
                status, body = self._answer(method, parsed.path, query, raw)
            self._send(status, body)

        def _answer(
            self, method: str, path: str, query: dict[str, str], raw: bytes
        ) -> tuple[int, t.Any]:
            for index, (prefix, status, body) in enumerate(fake.faults):
                if path.startswith(prefix):
                    del fake.faults[index]
                    return status, body
            if path == "/oauth/v2/token":
                return fake.token(dict(urllib.parse.parse_qsl(raw.decode())))
            token = self.headers.get("Authorization", "").removeprefix("Zoho-oauthtoken ")
            if token not in fake.live_tokens:
                return 401, {
                    "code": "INVALID_TOKEN",
                    "message": "invalid oauth token",
                    "details": {},
                    "status": "error",
                }
            body = json.loads(raw) if raw else None
            return fake.crm(method, path, query, body)

        def _send(self, status: int, body: t.Any) -> None:
            if isinstance(body, bytes):
                payload, kind = body, "application/x-download"
            elif body is None:
                payload, kind = b"", "application/json"
            else:
                payload, kind = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
