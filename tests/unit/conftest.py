"""Fixtures for unit tests: a fresh fake Zoho per test."""

from __future__ import annotations

import typing as t

import pytest

from tests.unit.fakezoho import FakeZoho


@pytest.fixture
def fake() -> t.Iterator[FakeZoho]:
    server = FakeZoho().start()
    try:
        yield server
    finally:
        server.stop()
