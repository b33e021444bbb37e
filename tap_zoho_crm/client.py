"""HTTP access to the Zoho CRM API: one session, retries, Zoho error bodies, call counts.

Invariants:

- Every call carries the current access token and goes to the token's ``api_domain``.
- HTTP 5xx and connection failures are retried with exponential backoff and jitter, at most
  ``max_retries`` times; any other error status but 429 raises ``ZohoAPIError`` at once.
- HTTP 429 is retried with the same backoff (each wait at most ``BACKOFF_CAP_SECONDS``) until
  the waits add up to ``throttle_patience_seconds``, so a call outlasts Zoho's one-minute
  download window and a busy org's concurrency limit; the final error says how long Zoho
  refused and what to do.
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
import dataclasses
import decimal
import json
import logging
import random
import re
import time
import typing as t

import requests

from tap_zoho_crm.auth import SCOPES_HINT
from tap_zoho_crm.credits import CreditsExhausted
from tap_zoho_crm.errors import ConfigError, ZohoAPIError, ZohoError, attempts

if t.TYPE_CHECKING:
    from tap_zoho_crm.auth import ZohoAuth
    from tap_zoho_crm.credits import CreditLedger

LOGGER = logging.getLogger("tap-zoho-crm.client")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 60.0
THROTTLE_PATIENCE_SECONDS = 300.0
"""How long, in backoff waits, one call keeps retrying HTTP 429 before the run fails."""
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


@dataclasses.dataclass
class _Tries:
    """What one call has spent on retries: failures (5xx, connection) count against
    ``max_retries``; 429 waits add up against ``throttle_patience_seconds``."""

    failures: int = 0
    throttled: int = 0
    waited: float = 0.0


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
        backoff_base_seconds: float = BACKOFF_BASE_SECONDS,
        throttle_patience_seconds: float = THROTTLE_PATIENCE_SECONDS,
    ) -> None:
        self.auth = auth
        self.session = session or requests.Session()
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.backoff_base_seconds = backoff_base_seconds
        self.throttle_patience_seconds = throttle_patience_seconds
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
        tries = _Tries()
        token_refreshed = False
        while True:
            if self.ledger is not None:
                self.ledger.check(label)
            auth_header = self.auth.authorization_header()
            try:
                response = self._send(
                    label,
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    headers={**auth_header, **(headers or {})},
                    stream=stream,
                )
            except _TRANSPORT_ERRORS as exc:
                name = type(exc).__name__
                failure = ZohoError(
                    f"{label} failed: connection error ({name}) after "
                    f"{attempts(tries.failures + 1)}"
                )
                self._retry_failure(label, failure, f"connection error ({name})", tries)
                continue
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
            elif error.status == 429:
                self._wait_out_throttle(label, error, response, tries)
            elif _retryable(error.status):
                self._retry_failure(label, error, f"HTTP {error.status} {error.code}", tries)
            else:
                raise _with_hint(error)

    def _send(
        self,
        label: str,
        method: str,
        path: str,
        *,
        params: t.Mapping[str, t.Any] | None,
        json_body: t.Mapping[str, t.Any] | None,
        headers: t.Mapping[str, str],
        stream: bool,
    ) -> requests.Response:
        """One HTTP attempt, counted in ``calls``; transport errors propagate."""
        self.calls[label] += 1
        response = self.session.request(
            method,
            self.url(path),
            params=params,
            json=json_body,
            headers=headers,
            timeout=self.timeout_seconds,
            stream=stream,
        )
        self._note_credits(response)
        return response

    def _retry_failure(self, label: str, failure: ZohoError, reason: str, tries: _Tries) -> None:
        """Back off after a 5xx or connection error, or raise once ``max_retries`` are used."""
        tries.failures += 1
        if tries.failures > self.max_retries:
            raise _gave_up(failure, tries.failures)
        self._back_off(label, reason, tries.failures, self.max_retries)

    def _wait_out_throttle(
        self, label: str, error: ZohoAPIError, response: requests.Response, tries: _Tries
    ) -> None:
        """Back off after a 429, or raise once the waits reach ``throttle_patience_seconds``.

        A 429 saying the org has no credits left is not waited out: the day must pass.
        """
        if self._org_credits_spent(response):
            raise _credits_spent(label)
        if tries.waited >= self.throttle_patience_seconds:
            raise _throttled(error, tries.waited, tries.throttled + 1)
        tries.throttled += 1
        tries.waited += self._back_off(label, f"HTTP 429 {error.code}", tries.throttled, None)

    def _back_off(self, label: str, reason: str, attempt: int, limit: int | None) -> float:
        """Sleep before retry number ``attempt`` (jittered, capped); return the wait."""
        wait = min(self.backoff_base_seconds * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        wait *= 0.5 + random.random() / 2
        credits = (
            "" if self.credits_remaining is None else f"; credits left {self.credits_remaining}"
        )
        # A 429 has no retry limit, only a total wait (``throttle_patience_seconds``).
        of = "" if limit is None else f"/{limit}"
        total = self.throttle_patience_seconds
        patience = f" (waiting up to {total:.0f} s in all)" if limit is None else ""
        LOGGER.warning(
            "%s: %s; retry %d%s in %.1f s%s%s",
            label,
            reason,
            attempt,
            of,
            wait,
            patience,
            credits,
        )
        self._sleep(wait)
        return wait

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
    """A server error worth another try (429 is waited out apart, before this is asked)."""
    return status >= 500


def _credits_spent(label: str) -> CreditsExhausted:
    """The stop after a 429 whose credits header says the org's day is spent."""
    return CreditsExhausted(
        f"{label}: Zoho answered 429 with {CREDITS_HEADER}: 0, so the org's API credits for "
        "the last 24 hours are spent; the next run can continue once Zoho's rolling window "
        "frees credits",
        spent=0,
        resume_at=None,
    )


def _throttled(error: ZohoAPIError, waited: float, tries: int) -> ZohoAPIError:
    """The error that ends a call Zoho kept refusing with 429; says what to do about it."""
    return ZohoAPIError(
        error.code,
        f"Zoho refused calls for {waited:.0f} s ({attempts(tries)}): the org's concurrency "
        "or daily credits may be exhausted; retry later or lower the schedule frequency",
        error.details,
        error.status,
        endpoint=error.endpoint,
    )


def _gave_up(failure: ZohoError, tries: int) -> ZohoError:
    """The error that ends a call after its last retry; says how many attempts were made."""
    if not isinstance(failure, ZohoAPIError):
        return failure  # a connection error's message already counts the attempts
    return ZohoAPIError(
        failure.code,
        f"{failure.message} (gave up after {attempts(tries)})",
        failure.details,
        failure.status,
        endpoint=failure.endpoint,
    )


def _with_hint(error: ZohoAPIError) -> ZohoError:
    """Turn errors the operator must fix into ConfigErrors that say what to do."""
    if error.code == "OAUTH_SCOPE_MISMATCH":
        return ConfigError(
            f"The refresh token lacks a scope needed for {error.endpoint} "
            f"(OAUTH_SCOPE_MISMATCH). Grant {SCOPES_HINT} and use the new refresh token."
        )
    if error.code == "MODULE_NOT_SUPPORTED":
        return ConfigError(
            f"Zoho cannot export a module in setting 'modules' by Bulk Read ({error.code} on "
            f"{error.endpoint}: {error.message}); remove it from modules."
        )
    if error.code == "INVALID_TOKEN":
        return ConfigError(
            f"Zoho rejected a freshly refreshed access token on {error.endpoint} "
            "(INVALID_TOKEN). Check that data_center matches the CRM org."
        )
    return error
