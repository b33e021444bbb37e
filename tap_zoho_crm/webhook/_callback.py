"""Reading and checking one Zoho notification callback (NOTES 6.5).

The body is parsed in two steps so that a caller who fails authentication learns nothing
about what a valid body looks like: ``parse_envelope`` only needs a JSON object with a
``channel_id``; ``parse_callback`` checks the rest once the caller is known, and
``check_subscribed`` that the registered channel asked for this module and operation.

Every check here is all-or-nothing per body: one bad id refuses the whole callback, so a
refused callback never leaves part of itself in the store. These functions raise nothing
but ``Rejected``; an answer of 5xx is kept for a store that cannot be read or written.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
import typing as t

from tap_zoho_crm.store.base import OPERATIONS, NewEvent

if t.TYPE_CHECKING:
    from tap_zoho_crm.store.base import ChannelRecord

MAX_TEXT_CHARS = 200
# Zoho batches at most 100 ids per callback as far as observed (NOTES 6.6: undocumented);
# ten times that leaves room without letting one body grow without bound.
MAX_IDS_PER_CALLBACK = 1000
# Record ids are 19-digit numbers sent as strings (NOTES 3); 1 to 20 digits leaves room.
_RECORD_ID = re.compile(r"[0-9]{1,20}")
# server_time is epoch milliseconds (NOTES 6.5): after 1970 and before the year 3000.
MAX_SERVER_TIME_MS = 32_503_680_000_000
# The Zoho event name each callback operation answers to (NOTES 6.2 and 6.5).
EVENT_OF_OPERATION = {"insert": "create", "update": "edit", "delete": "delete"}


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
    """A checked callback: one module, one operation, 1 to ``MAX_IDS_PER_CALLBACK`` ids,
    each a string of 1 to 20 ASCII digits."""

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


def check_media_type(content_type: str | None) -> None:
    """Refuse (415) a body not declared as JSON: ``application/json`` with or without
    parameters such as ``charset=UTF-8``, or an ``application/*+json`` type."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return
    if media_type.startswith("application/") and media_type.endswith("+json"):
        return
    shown = repr(content_type[:60]) if content_type else "none"
    raise Rejected(415, f"Content-Type must be application/json, not {shown}")


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
    except RecursionError as exc:  # nesting deeper than the parser's recursion limit
        raise Rejected(400, "body is nested too deeply") from exc
    if not isinstance(body, dict):
        raise Rejected(400, "body is not a JSON object")
    channel_id = _text(body.get("channel_id"))
    if channel_id is None:
        raise Rejected(400, "channel_id is missing or not a string")
    token = body.get("token")
    return Envelope(body, channel_id, token if isinstance(token, str) else "")


def authorize(envelope: Envelope, channel: ChannelRecord | None, url_key: str) -> ChannelRecord:
    """Check the channel is registered and both secrets match, in constant time; return it.

    Unknown channel: 404. Wrong or missing ``key`` query parameter: 403. Wrong token: 401.
    """
    if channel is None:
        raise Rejected(404, "unknown channel")
    if not hmac.compare_digest(url_key.encode(), channel.url_key.encode()):
        raise Rejected(403, "wrong or missing key")
    if not hmac.compare_digest(envelope.token.encode(), channel.token.encode()):
        raise Rejected(401, "wrong or missing token")
    return channel


def parse_callback(envelope: Envelope) -> Callback:
    """Check the remaining keys of an authenticated body (400 when something is off)."""
    body = envelope.body
    module = body.get("module")
    if not isinstance(module, str) or not 0 < len(module) <= MAX_TEXT_CHARS:
        raise Rejected(400, "module is missing or not a string")
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise Rejected(400, "operation must be insert, update or delete")
    return Callback(
        channel_id=envelope.channel_id,
        module=module,
        operation=str(operation),
        server_time_ms=_server_time(body.get("server_time")),
        ids=_record_ids(body.get("ids")),
    )


def _server_time(value: t.Any) -> int:
    """Epoch milliseconds as a JSON integer (not a boolean) between 1970 and 3000."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(400, "server_time must be an integer (epoch milliseconds)")
    if not 0 < value < MAX_SERVER_TIME_MS:
        raise Rejected(400, f"server_time must be epoch milliseconds below {MAX_SERVER_TIME_MS}")
    return value


def _record_ids(value: t.Any) -> tuple[str, ...]:
    """1 to ``MAX_IDS_PER_CALLBACK`` record ids, each 1 to 20 digits.

    An id may come as a JSON integer (Zoho sends strings, NOTES 3); Python parses JSON
    integers exactly, so its digits are the id. Any bad id refuses the whole list.
    """
    if not isinstance(value, list):
        raise Rejected(400, "ids is missing or not a list")
    if not value:
        raise Rejected(400, "ids is empty")
    if len(value) > MAX_IDS_PER_CALLBACK:
        raise Rejected(400, f"ids holds more than {MAX_IDS_PER_CALLBACK} ids")
    ids = tuple(_record_id(item) for item in value)
    if None in ids:
        raise Rejected(400, "every id must be a string of 1 to 20 digits")
    return t.cast("tuple[str, ...]", ids)


def _record_id(item: t.Any) -> str | None:
    if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
        item = str(item)
    if isinstance(item, str) and _RECORD_ID.fullmatch(item):
        return item
    return None


def check_subscribed(callback: Callback, channel: ChannelRecord) -> None:
    """Refuse (422) a callback for a module or operation the channel did not subscribe to.

    The channel record lists Zoho event names, ``{Module}.create|edit|delete|all``; the
    callback's ``insert``, ``update`` and ``delete`` answer to create, edit and delete.
    """
    wanted = f"{callback.module}.{EVENT_OF_OPERATION[callback.operation]}"
    if wanted not in channel.events and f"{callback.module}.all" not in channel.events:
        msg = f"channel {channel.channel_id} did not subscribe to {wanted!r}"
        raise Rejected(422, msg)
