"""Checks of the input STATE, before any sync reads a bookmark from it.

Invariant: every bookmark key the tap writes (see ``plan.py`` and docs/design.md, "State") has
the type the tap wrote, or the run stops with one ``StateError`` naming the stream, the key
and how to recover. A malformed bookmark is never read as "no bookmark": that would silently
turn an incremental sync into a full load, or skip events. Keys the SDK owns and keys the tap
does not know are left alone.
"""

from __future__ import annotations

import typing as t

from tap_zoho_crm.changes import parse_instant
from tap_zoho_crm.errors import StateError
from tap_zoho_crm.plan import BULK, EVENT_SEQ, LAST_CATCHUP, LAST_SYNC, STORE_ID

RECOVERY = (
    "Fix the state file, or clear the stream's state (`meltano state clear <state_id>`, or "
    "`meltano run --full-refresh`) so the next sync starts with a full load"
)

_Check = t.Callable[[t.Any], str | None]


def _instant(value: t.Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parse_instant(value)
        except ValueError:
            pass
        else:
            return None
    return "an ISO 8601 date-time such as 2025-03-02T21:21:05+00:00"


def _whole_number(least: int) -> _Check:
    def check(value: t.Any) -> str | None:
        ok = value is None or (
            isinstance(value, int) and not isinstance(value, bool) and value >= least
        )
        return None if ok else f"a whole number, {least} or more"

    return check


_count = _whole_number(0)
_page = _whole_number(1)


def _text(value: t.Any) -> str | None:
    return None if value is None or isinstance(value, str) else "a string"


def _flag(value: t.Any) -> str | None:
    return None if value is None or isinstance(value, bool) else "true or false"


STREAM_KEYS: dict[str, _Check] = {
    EVENT_SEQ: _count,
    STORE_ID: _text,
    LAST_SYNC: _instant,
    LAST_CATCHUP: _instant,
    "replication_key_value": _instant,
}
BULK_KEYS: dict[str, _Check] = {
    "full": _flag,
    "run_started_at": _instant,
    STORE_ID: _text,
    "job_id": _text,
    "page": _page,
    "page_token": _text,
    "page_token_issued_at": _instant,
}
WINDOW_KEYS: dict[str, _Check] = {"start": _instant, "end": _instant}


def check_state_document(state: t.Any) -> None:
    """Check a whole STATE value (``{"bookmarks": {stream: {...}}}``)."""
    if not isinstance(state, dict):
        _fail("the state is not a JSON object", "")
    bookmarks = state.get("bookmarks")
    if bookmarks is None:
        return
    if not isinstance(bookmarks, dict):
        _fail("'bookmarks' is not a JSON object", "")
    for stream, stream_state in bookmarks.items():
        check_state(stream_state, stream=str(stream))


def check_state(stream_state: t.Any, *, stream: str = "") -> None:
    """Check one stream's bookmarks; raise ``StateError`` naming the first bad key."""
    if not isinstance(stream_state, dict):
        _fail("its bookmark is not a JSON object", stream)
    _check_keys(stream_state, STREAM_KEYS, "", stream)
    bulk = stream_state.get(BULK)
    if not bulk:
        return
    if not isinstance(bulk, dict):
        _fail(f"{BULK!r} must be a JSON object", stream)
    _check_keys(bulk, BULK_KEYS, f"{BULK}.", stream)
    window = bulk.get("window")
    if window is not None and not isinstance(window, dict):
        _fail(f"'{BULK}.window' must be a JSON object", stream)
    _check_keys(window or {}, WINDOW_KEYS, f"{BULK}.window.", stream)


def _check_keys(
    values: t.Mapping[str, t.Any], checks: t.Mapping[str, _Check], prefix: str, stream: str
) -> None:
    for key, check in checks.items():
        expected = check(values.get(key))
        if expected:
            _fail(f"{prefix + key!r} must be {expected}, got {values[key]!r}", stream)


def _fail(problem: str, stream: str) -> t.NoReturn:
    where = f"stream {stream!r}: " if stream else ""
    msg = f"Unusable STATE: {where}{problem}. {RECOVERY}."
    raise StateError(msg)
