"""The HTTP server: routing, faults, auth and answers, plus the `Emulator` Python API.

Every request is served on its own thread (`ThreadingHTTPServer`, HTTP/1.1 keep-alive).
For CRM and token routes the order is: request-level faults, the token check (CRM only),
the handler, then the stats count. Admin routes skip faults, auth and stats.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._http import Request, Response, Router
from .admin import AdminApi
from .bulk import BulkService
from .errors import ZohoError, crm_error, internal_error, too_many_requests
from .notify import Notifier
from .oauth import check_token, expire_tokens, token_grant
from .records import get_deleted, get_records, list_fields, list_modules
from .state import Config, State
from .watch import WatchApi

log = logging.getLogger(__name__)
UNAUTHENTICATED = ("token", "admin")


def build_router(state: State, bulk: BulkService, notifier: Notifier) -> Router:
    """Every route the emulator serves, most specific first."""
    router = Router()
    watch = WatchApi(state, notifier)
    admin = AdminApi(state, bulk, notifier)
    add = router.add
    add("POST", "/oauth/v2/token", lambda r: token_grant(state, r), "token")
    add("GET", "/crm/v8/settings/modules", lambda r: list_modules(state, r), "modules")
    add("GET", "/crm/v8/settings/fields", lambda r: list_fields(state, r), "fields")
    add("POST", "/crm/bulk/v8/read", bulk.create, "bulk_create")
    add("GET", "/crm/bulk/v8/read/{job_id}", lambda r: bulk.details(r.params["job_id"]),
        "bulk_status")
    add("GET", "/crm/bulk/v8/read/{job_id}/result",
        lambda r: bulk.download(r, r.params["job_id"]), "bulk_download")
    add("POST", "/crm/v8/actions/watch", watch.enable, "watch")
    add("GET", "/crm/v8/actions/watch", watch.details, "watch")
    add("PATCH", "/crm/v8/actions/watch", watch.patch, "watch")
    add("PUT", "/crm/v8/actions/watch", watch.replace, "watch")
    add("DELETE", "/crm/v8/actions/watch", watch.disable, "watch")
    add("GET", "/crm/v8/{module}/deleted", lambda r: get_deleted(state, r), "deleted")
    add("GET", "/crm/v8/{module}", lambda r: get_records(state, r), "records")
    base = "/__admin/modules/{module}"
    add("POST", f"{base}/records", admin.create, "admin")
    add("GET", f"{base}/records", admin.truth, "admin")
    add("PATCH", f"{base}/records/{{id}}", admin.edit, "admin")
    add("DELETE", f"{base}/records/{{id}}", admin.delete, "admin")
    add("POST", f"{base}/records/{{id}}/restore", admin.restore, "admin")
    add("GET", f"{base}/deleted", admin.deleted, "admin")
    add("POST", "/__admin/faults", admin.add_fault, "admin")
    add("DELETE", "/__admin/faults", admin.clear_faults, "admin")
    add("GET", "/__admin/stats", admin.stats, "admin")
    add("POST", "/__admin/stats/reset", admin.reset_stats, "admin")
    add("POST", "/__admin/config", admin.config, "admin")
    add("POST", "/__admin/clock", admin.clock, "admin")
    return router


class App:
    """Turns a parsed request into a response, applying faults, auth and stats."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.notifier = Notifier(state)
        self.bulk = BulkService(state)
        self.router = build_router(state, self.bulk, self.notifier)

    def handle(self, request: Request) -> Response:
        """Answer one request."""
        route, params, other_method = self.router.match(request.method, request.path)
        if route is None:
            if other_method:
                return Response.from_error(crm_error(
                    405, "INVALID_REQUEST_METHOD",
                    "The http request method type is not a valid one", {}))
            return Response.from_error(crm_error(404, "INVALID_URL_PATTERN",
                                                 "Please check if the URL trying to access is "
                                                 "a correct one", {}))
        request.params = params
        if route.kind == "admin":
            return self._guarded(route.handler, request)
        response = self._faulted(request, route.kind) or self._checked(route, request)
        if response.reset:
            return response
        self.state.stats.call(route.kind, response.status)
        if route.kind == "bulk_download":
            size = response.file_bytes if response.file else len(response.body)
            self.state.stats.download(params["job_id"], response.status, size or 0)
        return response

    def _checked(self, route: Any, request: Request) -> Response:
        if route.kind not in UNAUTHENTICATED:
            try:
                check_token(self.state, request)
            except ZohoError as error:
                return Response.from_error(error)
        return self._guarded(route.handler, request)

    def _guarded(self, handler: Any, request: Request) -> Response:
        try:
            return handler(request)
        except ZohoError as error:
            return Response.from_error(error)
        except Exception:
            log.exception("handler failed for %s %s", request.method, request.path)
            return Response.from_error(internal_error())

    def _faulted(self, request: Request, kind: str) -> Response | None:
        faults, path = self.state.faults, request.path
        if faults.take("connection_reset", path):
            return Response(reset=True)
        if faults.take("http_500", path):
            return Response.from_error(internal_error())
        fault = faults.take("http_429", path)
        if fault is not None:
            if kind == "token":  # the accounts server throttles with 200 "Access Denied"
                return Response.json({"error_description": "You have made too many requests "
                                      "continuously. Please try again after some time.",
                                      "error": "Access Denied", "status": "failure"})
            response = Response.from_error(too_many_requests())
            if "credits_remaining" in fault.options:
                response.headers["X-API-CREDITS-REMAINING"] = str(
                    fault.options["credits_remaining"])
            return response
        if kind != "token" and faults.take("invalid_token", path):
            expire_tokens(self.state)
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "ZohoEmulator/1.0"
    app: App

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, path, Request.parse_query(query), self.headers, body)
        response = self.app.handle(request)
        if response.reset:
            self._reset()
            return
        self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _reset(self) -> None:
        """Close the socket with an RST and no answer (the `connection_reset` fault)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        size = response.file_bytes if response.file else len(response.body)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if response.status in (204, 304) or self.command == "HEAD":
            return
        if response.file:
            with open(response.file, "rb") as handle:
                _copy(handle, self.wfile, size or 0)
        else:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _copy(source: Any, target: Any, size: int) -> None:
    left = size
    while left > 0:
        chunk = source.read(min(1 << 20, left))
        if not chunk:
            return
        target.write(chunk)
        left -= len(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Emulator:
    """A running emulator; use as a context manager or call `start()` and `stop()`.

    `Emulator(leads=1000, page_size=500)` takes any `Config` field as a keyword. The
    server binds loopback on a free port unless told otherwise; `base_url` is valid once
    started.
    """

    def __init__(self, config: Config | None = None, **settings: Any) -> None:
        self.config = config or Config(**settings)
        self.state = State(self.config)
        self.app = App(self.state)
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._server = _Server((self.config.host, self.config.port), handler)
        port = self._server.server_address[1]
        self.base_url = f"http://{self.config.host}:{port}"
        self.state.base_url = self.base_url
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="zoho-emulator", daemon=True)
        self._thread.start()
        log.info("emulator listening on %s", self.base_url)
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until `stop()` is called from elsewhere."""
        self._server.serve_forever(0.05)

    def stop(self) -> None:
        """Stop serving and remove temporary files."""
        self._server.shutdown()
        self._server.server_close()
        self.app.notifier.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def token_url(self) -> str:
        """The accounts server's token endpoint."""
        return f"{self.base_url}/oauth/v2/token"

    def flush_callbacks(self, timeout: float = 5.0, *, delivered: bool = False) -> None:
        """Hand every open callback batch to a sender now-ish (waits for the batch window);
        with ``delivered``, also wait until each was posted, dropped or failed."""
        self.app.notifier.flush(timeout, delivered=delivered)


__all__ = ["Config", "Emulator"]
