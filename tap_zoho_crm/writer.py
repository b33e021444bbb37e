"""The tap's Singer writer: msgspec encoding, without a flush after every RECORD.

singer-sdk's ``MsgSpecWriter`` flushes stdout after each message, which is one ``write``
system call (and, under ``meltano run``, one wake-up of the reader) per record. This writer
leaves RECORD lines in stdout's buffer and flushes after every other message.

Invariant: a STATE (or SCHEMA, or any non-RECORD) message is flushed together with every
RECORD written before it, so whatever a STATE bookmarks has reached the target first. Lines
are written whole and in order; only the moment they leave the process changes.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import SingerMessageType
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class BufferedMsgSpecWriter(MsgSpecWriter):
    """``MsgSpecWriter`` that flushes only after messages other than RECORD."""

    @override
    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if message.type != SingerMessageType.RECORD:
            sys.stdout.flush()
