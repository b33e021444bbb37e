"""Modules Bulk Read cannot export are refused by name; a SQLite store needs its directory."""

from __future__ import annotations

import pathlib
import typing as t

import pytest

from tap_zoho_crm import metadata
from tap_zoho_crm.errors import ConfigError
from tap_zoho_crm.store import StoreError, open_store


class ModulesOnly:
    """Answers ``settings/modules`` with the given default, API-supported modules."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def get_json(self, path: str, **_: t.Any) -> dict[str, t.Any]:
        assert path == "/crm/v8/settings/modules"
        modules = [
            {"api_name": name, "generated_type": "default", "api_supported": True}
            for name in self.names
        ]
        return {"modules": modules}


@pytest.mark.parametrize("name", ["Notes", "Attachments", "Emails", "Email_Analytics"])
def test_module_bulk_read_refuses_is_refused_at_discovery(name: str) -> None:
    client = t.cast("t.Any", ModulesOnly("Leads", name))
    with pytest.raises(ConfigError) as caught:
        metadata.resolve_modules(client, ["Leads", name])
    assert str(caught.value) == (
        f"module {name} cannot be exported by Bulk Read; remove it from modules."
    )


def test_unknown_module_hint_offers_only_exportable_modules() -> None:
    client = t.cast("t.Any", ModulesOnly("Leads", "Notes", "Contacts"))
    with pytest.raises(ConfigError, match=r"Available: Contacts, Leads\.$"):
        metadata.resolve_modules(client, ["Deals"])


def test_sqlite_store_is_not_created_in_a_missing_directory(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "typo"
    with pytest.raises(StoreError, match=rf"directory {missing} .* does not exist; create it"):
        open_store(f"sqlite:///{missing}/events.sqlite3")
    assert not missing.exists()


def test_sqlite_store_is_created_in_an_existing_directory(tmp_path: pathlib.Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/events.sqlite3") as store:
        assert store.store_id
    assert (tmp_path / "events.sqlite3").exists()
