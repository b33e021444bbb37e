"""The tap's writer: RECORD lines wait in stdout's buffer, any other message flushes them."""

from __future__ import annotations

import io
import json
import sys
import typing as t

from singer_sdk.singerlib import RecordMessage, StateMessage

from tap_zoho_crm.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    import pytest


class _Stdout(io.TextIOWrapper):
    """A text stdout over a byte buffer that counts flushes."""

    def __init__(self) -> None:
        self.raw_bytes = io.BytesIO()
        super().__init__(io.BufferedWriter(self.raw_bytes, buffer_size=1 << 16))
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_records_wait_for_the_next_state(monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = _Stdout()
    monkeypatch.setattr(sys, "stdout", stdout)
    writer = BufferedMsgSpecWriter()

    for number in range(3):
        writer.write_message(RecordMessage(stream="Leads", record={"id": str(number)}))
    assert stdout.flushes == 0
    writer.write_message(StateMessage(value={"bookmarks": {}}))

    assert stdout.flushes == 1
    lines = [json.loads(line) for line in stdout.raw_bytes.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["RECORD", "RECORD", "RECORD", "STATE"]
    assert [line["record"]["id"] for line in lines[:3]] == ["0", "1", "2"]
