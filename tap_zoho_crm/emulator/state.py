"""Settings and the shared state every handler works on.

One `State` per emulator. Handlers hold `state.lock` while they read or change records,
jobs, channels or tokens; long work (writing a ZIP, POSTing callbacks) happens outside it
on data that no longer changes.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field

from ._time import Clock, Formatter, parse_offset
from .catalog import Module, build_modules
from .data import Table
from .faults import Faults
from .seed import SeededRows
from .stats import Stats
from .values import Directory


@dataclass
class Config:
    """Emulator settings; those marked run-time can change through `POST /__admin/config`."""

    host: str = "127.0.0.1"
    port: int = 0
    leads: int = 0
    contacts: int = 0
    seed: int = 1
    page_size: int = 200_000  # run-time
    job_seconds: float = 1.0  # run-time
    token_seconds: int = 3600  # run-time
    callback_batch_ms: int = 200  # run-time
    downloads_per_minute: int = 10  # run-time
    max_page: int = 500  # run-time; PAGE_RANGE_EXCEEDED above it
    tz_offset: str = "-05:00"
    data_center: str = "us"
    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"  # noqa: S105 - a fixed, documented test value
    refresh_token: str = "emulator-refresh"  # noqa: S105 - a fixed, documented test value
    anchor: int | None = None

    RUNTIME = ("page_size", "job_seconds", "token_seconds", "callback_batch_ms",
               "downloads_per_minute", "max_page")

    def check(self) -> None:
        """Refuse settings the emulator cannot honour, with a message naming the setting."""
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.job_seconds < 0 or self.token_seconds < 1:
            raise ValueError("job_seconds must be >= 0 and token_seconds >= 1")
        if self.callback_batch_ms < 0 or self.downloads_per_minute < 1:
            raise ValueError("callback_batch_ms must be >= 0, downloads_per_minute >= 1")
        if self.leads < 0 or self.contacts < 0:
            raise ValueError("record counts must not be negative")
        parse_offset(self.tz_offset)


@dataclass
class State:
    """Everything the handlers share."""

    config: Config
    base_url: str = ""
    clock: Clock = field(default_factory=Clock)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    directory: Directory = field(default_factory=Directory)
    tokens: dict[str, float] = field(default_factory=dict)
    token_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    download_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config.check()
        self.formatter = Formatter(parse_offset(self.config.tz_offset))
        self.modules: dict[str, Module] = build_modules()
        anchor = self.config.anchor or int(time.time()) // 60 * 60
        counts = {"Leads": self.config.leads, "Contacts": self.config.contacts}
        self.tables: dict[str, Table] = {
            name: Table(module, SeededRows(name, counts.get(name, 0), self.config.seed, anchor),
                        self.directory)
            for name, module in self.modules.items() if module.fields
        }
        self.workdir = tempfile.TemporaryDirectory(prefix="zoho-emulator-")

    def now(self) -> float:
        """The emulator clock."""
        return self.clock.now()

    def close(self) -> None:
        """Remove the temporary files (job results)."""
        self.workdir.cleanup()
