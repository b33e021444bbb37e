"""Small request/response types and a path router for the stdlib HTTP server."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from .errors import ZohoError


@dataclass
class Request:
    """One parsed request; `query` keeps the first value of each parameter."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse_query(cls, text: str) -> dict[str, str]:
        """First value of each query parameter (blank values kept)."""
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        """A header value, case-insensitively."""
        return self.headers.get(name)

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """An answer: JSON or bytes, a file to stream, or a reset connection."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    file_bytes: int | None = None
    reset: bool = False

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> Response:
        """A JSON answer."""
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json;charset=UTF-8",
                                  **(headers or {})})

    @classmethod
    def empty(cls, status: int) -> Response:
        """An answer without a body (204, 304)."""
        return cls(status)

    @classmethod
    def from_error(cls, error: ZohoError) -> Response:
        """Zoho's error answer."""
        return cls.json(error.body, error.status)

    @classmethod
    def page(cls, key: str, entries: list[Any], page: int, per_page: int) -> Response:
        """Page ``page`` of a listing in Zoho's shape (``{key: [...], "info": {...}}``);
        204 past the end."""
        chunk = entries[(page - 1) * per_page : page * per_page]
        if not chunk:
            return cls.empty(204)
        info = {
            "per_page": per_page,
            "count": len(chunk),
            "page": page,
            "more_records": page * per_page < len(entries),
        }
        return cls.json({key: chunk, "info": info})


Handler = Callable[[Request], Response]


@dataclass
class Route:
    """A method and a path pattern; `kind` names the stats counter and the auth rule."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    kind: str


class Router:
    """Match a request to the first route whose method and full path fit."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, kind: str) -> None:
        """Register a route; `{name}` segments become parameters."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self.routes.append(Route(method, re.compile(f"^{regex}$"), handler, kind))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route, its path parameters, and whether another method would have matched."""
        other_method = False
        for route in self.routes:
            found = route.pattern.match(path)
            if not found:
                continue
            if route.method == method:
                return route, found.groupdict(), False
            other_method = True
        return None, {}, other_method
