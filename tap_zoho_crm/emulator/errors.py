"""Zoho's error bodies, raised as exceptions by handlers and answered by the server.

Zoho's CRM error object is always `{"code", "details", "message", "status": "error"}`;
array endpoints put the same object inside `data[]` (Bulk Read) or `watch[]` (Notification
API). `ZohoError` carries the HTTP status and the finished body so that handlers can stop
at the first problem they find, as Zoho does.
"""

from __future__ import annotations

from typing import Any


class ZohoError(Exception):
    """An answer that ends a request with Zoho's error status and body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("code") or body.get("error") or status)
        self.status = status
        self.body = body


def error_object(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    """Build one Zoho error object."""
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


def crm_error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    *,
    wrap: str | None = None,
) -> ZohoError:
    """Make a `ZohoError`; `wrap` names the array key (`data`, `watch`) when Zoho wraps it."""
    body = error_object(code, message, details)
    if wrap:
        return ZohoError(status, {wrap: [body]})
    return ZohoError(status, body)


def auth_missing() -> ZohoError:
    """No `Authorization: Zoho-oauthtoken ...` header (or an unreadable one)."""
    return crm_error(401, "AUTHENTICATION_FAILURE", "Authentication failed")


def invalid_token() -> ZohoError:
    """An unknown, malformed or expired access token."""
    return crm_error(401, "INVALID_TOKEN", "invalid oauth token")


def too_many_requests() -> ZohoError:
    """Credits or concurrency exhausted (Zoho's status alone does not say which)."""
    return crm_error(429, "TOO_MANY_REQUESTS", "The number of API requests exceeded the limit")


def internal_error() -> ZohoError:
    """A server-side failure."""
    return crm_error(500, "INTERNAL_ERROR", "Internal Server Error")


def invalid_module(module: str) -> ZohoError:
    """A module API name the org does not have (settings and records APIs)."""
    return crm_error(
        400,
        "INVALID_MODULE",
        "the module name given seems to be invalid",
        {"api_name": module} if module else {},
    )


def required_param(name: str) -> ZohoError:
    """A mandatory query parameter is absent."""
    return crm_error(
        400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
        {"param_name": name},
    )


def invalid_data(api_name: str, message: str = "invalid data", **extra: Any) -> ZohoError:
    """A parameter or key with a value Zoho refuses."""
    details: dict[str, Any] = {"api_name": api_name, **extra}
    return crm_error(400, "INVALID_DATA", message, details)
