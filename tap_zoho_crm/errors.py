"""Errors the tap raises on purpose.

Every error here carries a message written for the operator: it says what went wrong and,
where the operator can fix it, what to check. The CLI prints that message as one log line and
exits with status 1 instead of showing a traceback (see ``tap.ZohoCommand``).
"""

from __future__ import annotations

import typing as t


class ZohoError(Exception):
    """Base class of every error the tap raises on purpose."""


class ConfigError(ZohoError):
    """The tap's settings are wrong or incomplete; the operator must change them."""


class StateError(ZohoError):
    """The input STATE holds a bookmark the tap cannot read; the operator must fix or clear it."""


class AuthError(ConfigError):
    """Zoho Accounts refused the credentials (or the data centre does not know them)."""


class ZohoAPIError(ZohoError):
    """A Zoho CRM API call answered with an error body.

    ``code`` is Zoho's error code (``INVALID_TOKEN``, ``TOO_MANY_REQUESTS`` ...) or
    ``HTTP_<status>`` when the body held none; ``status`` is the HTTP status code.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: t.Mapping[str, t.Any] | None = None,
        status: int = 0,
        *,
        endpoint: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.status = status
        self.endpoint = endpoint
        where = f" on {endpoint}" if endpoint else ""
        super().__init__(f"Zoho API error {code} (HTTP {status}){where}: {message}")


class BulkJobError(ZohoError):
    """A Bulk Read job failed or did not finish before its deadline.

    ``failed`` is True when Zoho reported ``FAILURE`` (worth another job), False when the
    job ran past the deadline.
    """

    def __init__(self, job_id: str, message: str, *, failed: bool = False) -> None:
        self.job_id = job_id
        self.failed = failed
        super().__init__(message)


class DataError(ZohoError):
    """Data from Zoho does not match what the tap expects; no value is invented for it."""


class CastError(DataError):
    """A CSV or JSON value could not be converted to its column's type."""


class CorruptFileError(DataError):
    """A downloaded Bulk Read result is not a readable ZIP with one CSV inside."""


def attempts(count: int) -> str:
    """``1 attempt``, ``3 attempts``: for messages that count tries."""
    return f"{count} attempt{'' if count == 1 else 's'}"
