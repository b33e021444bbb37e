"""Reading and checking one Zoho notification callback (NOTES 6.5).

The body is parsed in two steps so that a caller who fails authentication learns nothing
about what a valid body looks like: ``parse_envelope`` only needs a JSON object with a
``channel_id``; ``parse_callback`` checks the rest once the caller is known.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import typing as t

from tap_zoho_crm.store.base import OPERATIONS, NewEvent

if t.TYPE_CHECKING:
    from tap_zoho_crm.store.base import ChannelRecord

MAX_TEXT_CHARS = 200


class Rejected(Exception):
    """The callback is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Envelope:
    """The parts of a body needed to authenticate it."""

    body: dict[str, t.Any]
    channel_id: str
    token: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Callback:
    """A checked callback: one module, one operation, one or more record ids."""

    channel_id: str
    module: str
    operation: str
    server_time_ms: int
    ids: tuple[str, ...]

    def events(self) -> list[NewEvent]:
        """One event per distinct id, in the order Zoho listed them."""
        unique = dict.fromkeys(self.ids)
        return [
            NewEvent(self.module, rid, self.operation, self.server_time_ms, self.channel_id)
            for rid in unique
        ]


def _text(value: t.Any) -> str | None:
    """A short non-empty string, or an integer given as a number; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_TEXT_CHARS:
        return value
    return None


def parse_envelope(raw: bytes) -> Envelope:
    """Parse the JSON body and pull out ``channel_id`` and ``token`` (400 when unusable)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, "body is not JSON") from exc
    if not isinstance(body, dict):
        raise Rejected(400, "body is not a JSON object")
    channel_id = _text(body.get("channel_id"))
    if channel_id is None:
        raise Rejected(400, "channel_id is missing or not a string")
    token = body.get("token")
    return Envelope(body, channel_id, token if isinstance(token, str) else "")


def authorize(envelope: Envelope, channel: ChannelRecord | None, url_key: str) -> None:
    """Check the channel is registered and both secrets match, in constant time.

    Unknown channel: 404. Wrong or missing ``key`` query parameter: 403. Wrong token: 401.
    """
    if channel is None:
        raise Rejected(404, "unknown channel")
    if not hmac.compare_digest(url_key.encode(), channel.url_key.encode()):
        raise Rejected(403, "wrong or missing key")
    if not hmac.compare_digest(envelope.token.encode(), channel.token.encode()):
        raise Rejected(401, "wrong or missing token")


def parse_callback(envelope: Envelope) -> Callback:
    """Check the remaining keys of an authenticated body (400 when something is off)."""
    body = envelope.body
    module = _text(body.get("module"))
    if module is None:
        raise Rejected(400, "module is missing or not a string")
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise Rejected(400, "operation must be insert, update or delete")
    server_time = body.get("server_time")
    if isinstance(server_time, bool) or not isinstance(server_time, int) or server_time < 0:
        raise Rejected(400, "server_time must be epoch milliseconds")
    ids = body.get("ids")
    if not isinstance(ids, list):
        raise Rejected(400, "ids is missing or not a list")
    texts = [_text(value) for value in ids]
    if None in texts:
        raise Rejected(400, "every id must be a non-empty string")
    return Callback(
        channel_id=envelope.channel_id,
        module=module,
        operation=str(operation),
        server_time_ms=server_time,
        ids=tuple(t.cast("list[str]", texts)),
    )
