"""OAuth for Zoho CRM: the refresh-token grant, a cached access token and the API domain.

Invariants:

- One access token is shared by every call of a run and refreshed only when it is within
  ``REFRESH_MARGIN_SECONDS`` of expiry, or once after Zoho says ``INVALID_TOKEN``.
- Every CRM call goes to the ``api_domain`` of the latest token answer that had one.
- No token, secret or refresh token is ever logged or put into an error message.
"""

from __future__ import annotations

import logging
import random
import time
import typing as t

import requests

from tap_zoho_crm.errors import AuthError, ZohoError, attempts

if t.TYPE_CHECKING:
    from tap_zoho_crm.datacenters import DataCenter

LOGGER = logging.getLogger("tap-zoho-crm.auth")

REFRESH_MARGIN_SECONDS = 300.0
"""Refresh this long before the token's announced expiry."""

DEFAULT_EXPIRES_IN = 3600.0
"""Zoho access tokens live one hour; used when an answer omits ``expires_in``."""

SCOPES_HINT = (
    "ZohoCRM.bulk.READ, ZohoCRM.modules.READ, ZohoCRM.settings.modules.READ, "
    "ZohoCRM.settings.fields.READ and, when webhook_public_url is set, "
    "ZohoCRM.notifications.ALL"
)
"""Every scope the tap needs (README, "OAuth scopes"), for messages that ask to grant them."""


class ZohoAuth:
    """Holds the OAuth credentials and hands out a valid access token."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        data_center: DataCenter,
        accounts_url: str | None = None,
        session: requests.Session | None = None,
        timeout_seconds: float = 30.0,
        max_retries: int = 5,
        clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.data_center = data_center
        self.accounts_url = (accounts_url or data_center.accounts_url).rstrip("/")
        self.accounts_url_set = bool(accounts_url)
        self._session = session or requests.Session()
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._clock = clock
        self._sleep = sleep
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._api_domain: str | None = None
        self.refresh_count = 0

    @property
    def token_url(self) -> str:
        """The token endpoint of the accounts server in use."""
        return f"{self.accounts_url}/oauth/v2/token"

    @property
    def api_domain(self) -> str:
        """Base URL for CRM calls, from the token answer (fetches a token if needed)."""
        if self._api_domain is None:
            self.access_token()
        if self._api_domain is None:  # pragma: no cover - refresh() always sets it
            return self.data_center.api_domain
        return self._api_domain

    def access_token(self) -> str:
        """Return a token valid for at least ``REFRESH_MARGIN_SECONDS`` more."""
        if self._access_token is None or self._clock() >= self._expires_at:
            return self.refresh()
        return self._access_token

    def authorization_header(self) -> dict[str, str]:
        """The header every CRM call carries."""
        return {"Authorization": f"Zoho-oauthtoken {self.access_token()}"}

    def token_rejected(self, header: t.Mapping[str, str]) -> None:
        """Refresh after Zoho rejected the token sent in ``header`` (``INVALID_TOKEN``).

        Nothing happens if another call already replaced that token.
        """
        sent = header.get("Authorization", "").removeprefix("Zoho-oauthtoken ")
        if sent == self._access_token:
            LOGGER.info("Zoho rejected the access token as invalid; refreshing it")
            self.refresh()

    def refresh(self) -> str:
        """Run the refresh-token grant, keep the new token and API domain, return the token."""
        body = self._request_token()
        token = str(body["access_token"])
        self._access_token = token
        expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        lifetime = max(expires_in - REFRESH_MARGIN_SECONDS, expires_in / 2)
        self._expires_at = self._clock() + lifetime
        self.refresh_count += 1
        # Zoho sends api_domain with every grant; keep the previous one if an answer omits it.
        api_domain = body.get("api_domain")
        if api_domain:
            if api_domain != self._api_domain:
                LOGGER.info("CRM API domain: %s", api_domain)
            self._api_domain = str(api_domain).rstrip("/")
        elif self._api_domain is None:
            self._api_domain = self.data_center.api_domain
            LOGGER.warning(
                "Token answer had no api_domain; using %s for data centre %s",
                self._api_domain,
                self.data_center.code,
            )
        LOGGER.info("Access token refreshed; valid for %d s", int(expires_in))
        return token

    def _request_token(self) -> dict[str, t.Any]:
        """POST the grant; retry throttling and transport errors; map error bodies."""
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        attempt = 0
        while True:
            body, retry_reason = self._post_token_form(form)
            if body is not None and retry_reason is None:
                return body
            attempt += 1
            if attempt > self._max_retries:
                msg = (
                    f"Could not get an access token from {self.token_url} after "
                    f"{attempts(attempt)}: {retry_reason}."
                )
                raise ZohoError(msg)
            wait = min(2.0**attempt, 60.0) * (0.5 + random.random() / 2)
            LOGGER.warning(
                "Token request to %s: %s; retry %d/%d in %.1f s",
                self.accounts_url,
                retry_reason,
                attempt,
                self._max_retries,
                wait,
            )
            self._sleep(wait)

    def _post_token_form(self, form: dict[str, str]) -> tuple[dict[str, t.Any] | None, str | None]:
        """One token call: (body, None) on success, (None, reason) when worth a retry."""
        try:
            response = self._session.post(self.token_url, data=form, timeout=self._timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            return None, f"connection failed ({type(exc).__name__})"
        if response.status_code >= 500 or response.status_code == 429:
            return None, f"HTTP {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            msg = (
                f"The accounts server {self.accounts_url} answered HTTP "
                f"{response.status_code} without JSON; check data_center and accounts_url."
            )
            raise AuthError(msg) from None
        if not isinstance(body, dict):
            msg = f"Unexpected token answer from {self.accounts_url}; check accounts_url."
            raise AuthError(msg)
        error = body.get("error")
        # Zoho reports token errors with HTTP 200 and an "error" key (NOTES 2.4).
        if error == "Access Denied":
            return None, "throttled by Zoho (Access Denied: too many token requests)"
        if error or "access_token" not in body:
            raise AuthError(self._explain(str(error or "no access_token in the answer")))
        return body, None

    def _explain(self, error: str) -> str:
        """An operator-facing message for a token-endpoint error code."""
        server = self.accounts_url
        where = self._server_origin()
        if error == "invalid_client":
            return (
                f"Zoho accounts server {server} ({where}) rejected the OAuth client "
                "(invalid_client). A client is only known on the accounts server of the data "
                f"centre where the CRM org lives: check {self._server_setting()} and "
                "client_id / client_secret."
            )
        if error == "invalid_client_secret":
            return (
                f"Zoho accounts server {server} ({where}) rejected client_secret "
                "(invalid_client_secret). Check client_secret for this data centre."
            )
        if error == "invalid_code":
            return (
                f"Zoho accounts server {server} ({where}) rejected refresh_token "
                "(invalid_code): it is wrong, revoked, or from another client or data centre. "
                f"Generate a new one with the scopes {SCOPES_HINT}."
            )
        return (
            f"Zoho accounts server {server} ({where}) refused the token request ({error}). "
            f"Check {self._server_setting()}, client_id, client_secret and refresh_token."
        )

    def _server_origin(self) -> str:
        """Where the accounts server in use came from, for error messages."""
        if self.accounts_url_set:
            return "from accounts_url, which overrides data_center"
        return f"of data_center {self.data_center.code!r}"

    def _server_setting(self) -> str:
        """The setting that chose the accounts server."""
        if self.accounts_url_set:
            return "accounts_url (it overrides data_center)"
        return f"data_center (now {self.data_center.code!r})"
