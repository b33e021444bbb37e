"""Keep a long-running helper process (emulator, receiver) from blocking on its own logs.

``harness.Process`` reads a child's stdout only until the "listening on" line and never
reads its stderr. A receiver logs one line per callback; once 64 KB of lines fill the pipe
its next log call blocks, and with it every answer. A benchmark that sends thousands of
callbacks must read those pipes to the end.
"""

from __future__ import annotations

import threading
import typing as t

if t.TYPE_CHECKING:
    from tests.integration import harness


def drain(process: harness.Process) -> None:
    """Read and discard the process's stdout and stderr on daemon threads until EOF."""
    for stream in (process.proc.stdout, process.proc.stderr):
        if stream is not None:
            threading.Thread(target=_discard, args=(stream,), daemon=True).start()


def _discard(stream: t.IO[str]) -> None:
    for _ in stream:
        pass
