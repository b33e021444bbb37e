"""The emulator's clock and Zoho's date-time spelling.

Every time the emulator reasons about (token, channel and page-token expiry, job progress,
`Modified_Time` stamps, the download rate window) comes from one `Clock`, which is the real
wall clock plus an offset that the admin API can move forward. Instants are kept as epoch
seconds (float or int, always UTC); they are spelled in the org's fixed offset only at the
edge, the way Zoho answers in the org's time zone.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})$"
)


class Clock:
    """Wall clock plus an offset; the offset only ever grows (time never runs back)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Return the emulator's current instant in epoch seconds."""
        with self._lock:
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (negative values are refused by the caller)."""
        with self._lock:
            self._offset += seconds
            return self._offset


def parse_offset(text: str) -> timezone:
    """Turn `-05:00` (or `+0530`, or `Z`) into a fixed `timezone`."""
    if text in ("Z", "z", "+00:00", "UTC"):
        return timezone.utc
    match = _OFFSET_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a UTC offset: {text!r}")
    sign = -1 if match.group(1) == "-" else 1
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
    return timezone(sign * delta)


def offset_suffix(tz: timezone) -> str:
    """Spell a fixed zone the way Zoho does: `-05:00`, `+05:30`, `+00:00`."""
    seconds = int(tz.utcoffset(None).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class Formatter:
    """Spells epoch seconds as ISO 8601 in one fixed offset, seconds precision, no ms."""

    def __init__(self, tz: timezone) -> None:
        self.tz = tz
        self._shift = int(tz.utcoffset(None).total_seconds())
        self._suffix = offset_suffix(tz)

    def iso(self, epoch: float) -> str:
        """Format an instant; fractions of a second are dropped, as Zoho does."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(epoch) + self._shift))
        return stamp + self._suffix


def parse_iso(text: str, *, allow_fraction: bool = True) -> float:
    """Parse an ISO 8601 instant that carries an offset into epoch seconds.

    Raises ValueError for text without an offset, or with a fraction when not allowed
    (Bulk Read criteria refuse milliseconds).
    """
    if not isinstance(text, str):
        raise ValueError("not a string")
    match = _ISO_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 instant with offset: {text!r}")
    if match.group(7) and not allow_fraction:
        raise ValueError("fractions of a second are not accepted")
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.timestamp()


def parse_http_or_iso(text: str) -> float:
    """Parse an `If-Modified-Since` header: ISO 8601 (Zoho's form) or an RFC 1123 date."""
    try:
        return parse_iso(text)
    except ValueError:
        value = parsedate_to_datetime(text)
        if value is None:
            raise ValueError(f"not a date: {text!r}") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
