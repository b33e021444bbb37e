"""Fixtures for tests that run Meltano, target-postgres and PostgreSQL against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import harness


@pytest.fixture(scope="session")
def database() -> str:
    """The PostgreSQL database the loads go to."""
    harness.ensure_database()
    return harness.PG_DATABASE


@pytest.fixture
def schema(database: str) -> Iterator[str]:
    """A fresh target schema, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    harness.drop_schema(name)


def start_emulator(leads: int, page_size: int, **flags: object) -> harness.Emulator:
    """Start an emulator process (caller stops it)."""
    return harness.Emulator(leads=leads, page_size=page_size, **flags)


@pytest.fixture
def project_factory(tmp_path: Path, schema: str):  # type: ignore[no-untyped-def]
    """Build an isolated view of the repository's Meltano project for one emulator."""

    def build(emulator: harness.Emulator) -> harness.MeltanoProject:
        return harness.MeltanoProject(tmp_path, schema, emulator.url)

    return build
