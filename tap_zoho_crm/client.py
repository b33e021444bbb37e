"""HTTP access to the Zoho CRM API: one session, retries, Zoho error bodies, call counts.

Invariants:

- Every call carries the current access token and goes to the token's ``api_domain``.
- HTTP 429, 5xx and connection failures are retried with exponential backoff and jitter,
  at most ``max_retries`` times; any other error status raises ``ZohoAPIError`` at once.
- A 401 ``INVALID_TOKEN`` refreshes the token once and repeats the call once.
- ``calls`` counts every request sent (retries included) per endpoint template, e.g.
  ``GET /crm/bulk/v8/read/{id}``.
- With a ``ledger`` (``daily_credit_budget``), every call is checked against the budget
  before it is sent and its cost recorded once it succeeded (``credits.py``).
- A 429 whose ``X-API-CREDITS-REMAINING`` is 0 means the org's daily credits are spent:
  waiting seconds cannot help, so it raises ``CreditsExhausted`` instead of retrying. A 429
  without the header, or with credits left, is the concurrency limit and is retried.
- JSON numbers with a fraction are parsed as ``Decimal`` so no value loses digits.
"""

from __future__ import annotations

import collections
import decimal
import json
import logging
import random
import re
import time
import typing as t

import requests

from tap_zoho_crm.credits import CreditsExhausted
from tap_zoho_crm.errors import ConfigError, ZohoAPIError, ZohoError

if t.TYPE_CHECKING:
    from tap_zoho_crm.auth import ZohoAuth
    from tap_zoho_crm.credits import CreditLedger

LOGGER = logging.getLogger("tap-zoho-crm.client")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
CREDITS_HEADER = "X-API-CREDITS-REMAINING"

_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    ConnectionResetError,
)
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def endpoint_label(method: str, path: str) -> str:
    """``GET /crm/bulk/v8/read/{id}`` for ``GET /crm/bulk/v8/read/4000000000003000001``."""
    path = path.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    return f"{method.upper()} {_ID_SEGMENT.sub('/{id}', path)}"


def parse_json(content: bytes) -> t.Any:
    """Parse a JSON body, keeping fractional numbers exact."""
    return json.loads(content, parse_float=decimal.Decimal)


def error_from_response(response: requests.Response, endpoint: str = "") -> ZohoAPIError:
    """Read Zoho's error object (top level, or first item of ``data``/``watch``)."""
    status = response.status_code
    try:
        body = parse_json(response.content) if response.content else None
    except ValueError:
        body = None
    found = _find_error_object(body)
    if found is None:
        text = response.text[:200].strip() if response.content else ""
        return ZohoAPIError(
            f"HTTP_{status}", text or response.reason or "", {}, status, endpoint=endpoint
        )
    details = found.get("details")
    return ZohoAPIError(
        str(found.get("code") or f"HTTP_{status}"),
        str(found.get("message") or ""),
        details if isinstance(details, dict) else {},
        status,
        endpoint=endpoint,
    )


def _find_error_object(body: t.Any) -> dict[str, t.Any] | None:
    if not isinstance(body, dict):
        return None
    if "code" in body:
        return body
    for key in ("data", "watch"):
        items = body.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            return items[0]
    return None


class ZohoClient:
    """Sends CRM API calls for one run; safe to share between the run's streams."""

    def __init__(
        self,
        auth: ZohoAuth,
        *,
        session: requests.Session | None = None,
        timeout_seconds: float = 30.0,
        max_retries: int = 5,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self.auth = auth
        self.session = session or requests.Session()
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self._sleep = sleep
        self.calls: collections.Counter[str] = collections.Counter()
        self.credits_remaining: int | None = None
        self.ledger: CreditLedger | None = None

    def url(self, path: str) -> str:
        """Absolute URL: ``path`` as is when absolute, else joined to the API domain."""
        if path.startswith(("http://", "https://")):
            return path
        return self.auth.api_domain + "/" + path.lstrip("/")

    def get_json(
        self,
        path: str,
        *,
        params: t.Mapping[str, t.Any] | None = None,
        headers: t.Mapping[str, str] | None = None,
    ) -> dict[str, t.Any]:
        """GET and parse JSON; 204 and 304 (nothing to send) give ``{}``."""
        response = self.request("GET", path, params=params, headers=headers)
        return self._json_body(response)

    def post_json(self, path: str, body: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        """POST a JSON body and parse the JSON answer."""
        response = self.request("POST", path, json_body=body)
        return self._json_body(response)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: t.Mapping[str, t.Any] | None = None,
        json_body: t.Mapping[str, t.Any] | None = None,
        headers: t.Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one call with retries; return the response of a 1xx-3xx answer."""
        label = endpoint_label(method, path)
        attempt = 0
        token_refreshed = False
        while True:
            if self.ledger is not None:
                self.ledger.check(label)
            auth_header = self.auth.authorization_header()
            self.calls[label] += 1
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=json_body,
                    headers={**auth_header, **(headers or {})},
                    timeout=self.timeout_seconds,
                    stream=stream,
                )
            except _TRANSPORT_ERRORS as exc:
                failure: ZohoError = ZohoError(
                    f"{label} failed: connection error ({type(exc).__name__}) after "
                    f"{attempt + 1} attempts"
                )
                reason = f"connection error ({type(exc).__name__})"
            else:
                self._note_credits(response)
                if response.status_code < 400:
                    if self.ledger is not None:
                        self.ledger.spend(label)
                    return response
                error = error_from_response(response, label)
                response.close()
                if error.code == "INVALID_TOKEN" and not token_refreshed:
                    # Zoho expired the token early: refresh once and repeat the call once.
                    token_refreshed = True
                    self.auth.token_rejected(auth_header)
                    continue
                if not _retryable(error.status):
                    raise _with_hint(error)
                if error.status == 429 and self._org_credits_spent(response):
                    raise CreditsExhausted(
                        f"{label}: Zoho answered 429 with {CREDITS_HEADER}: 0, so the org's "
                        "API credits for the last 24 hours are spent; the next run can "
                        "continue once Zoho's rolling window frees credits",
                        spent=0,
                        resume_at=None,
                    )
                failure, reason = error, f"HTTP {error.status} {error.code}"
            attempt += 1
            if attempt > self.max_retries:
                raise _gave_up(failure, attempt)
            self._back_off(label, reason, attempt)

    def _back_off(self, label: str, reason: str, attempt: int) -> None:
        wait = min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        wait *= 0.5 + random.random() / 2
        credits = (
            "" if self.credits_remaining is None else f"; credits left {self.credits_remaining}"
        )
        LOGGER.warning(
            "%s: %s; retry %d/%d in %.1f s%s",
            label,
            reason,
            attempt,
            self.max_retries,
            wait,
            credits,
        )
        self._sleep(wait)

    @staticmethod
    def _org_credits_spent(response: requests.Response) -> bool:
        value = response.headers.get(CREDITS_HEADER, "").strip()
        return value.isdigit() and int(value) == 0

    def _note_credits(self, response: requests.Response) -> None:
        # Zoho only sends this header once half of the day's credits are used (NOTES 4.3).
        value = response.headers.get(CREDITS_HEADER)
        if value is None:
            return
        try:
            remaining = int(value)
        except ValueError:
            return
        if remaining != self.credits_remaining:
            LOGGER.info("Zoho API credits remaining today: %d", remaining)
        self.credits_remaining = remaining

    @staticmethod
    def _json_body(response: requests.Response) -> dict[str, t.Any]:
        if response.status_code in (204, 304) or not response.content:
            return {}
        body = parse_json(response.content)
        if not isinstance(body, dict):
            msg = f"Expected a JSON object from {response.url}, got {type(body).__name__}"
            raise ZohoError(msg)
        return body


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _gave_up(failure: ZohoError, attempts: int) -> ZohoError:
    """The error that ends a call after its last retry; says how many attempts were made."""
    if not isinstance(failure, ZohoAPIError):
        return failure  # a connection error's message already counts the attempts
    return ZohoAPIError(
        failure.code,
        f"{failure.message} (gave up after {attempts} attempts)",
        failure.details,
        failure.status,
        endpoint=failure.endpoint,
    )


def _with_hint(error: ZohoAPIError) -> ZohoError:
    """Turn errors the operator must fix into ConfigErrors that say what to do."""
    if error.code == "OAUTH_SCOPE_MISMATCH":
        return ConfigError(
            f"The refresh token lacks a scope needed for {error.endpoint} "
            "(OAUTH_SCOPE_MISMATCH). Grant ZohoCRM.bulk.READ, ZohoCRM.modules.READ, "
            "ZohoCRM.settings.modules.READ and ZohoCRM.settings.fields.READ and use the new "
            "refresh token."
        )
    if error.code == "INVALID_TOKEN":
        return ConfigError(
            f"Zoho rejected a freshly refreshed access token on {error.endpoint} "
            "(INVALID_TOKEN). Check that data_center matches the CRM org."
        )
    return error
