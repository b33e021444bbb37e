"""Module and field metadata from Zoho (``settings/modules``, ``settings/fields``).

Only modules with ``api_supported`` true and ``generated_type`` ``default`` or ``custom``
can be streams (NOTES 10); linking and subform modules are not offered yet. Zoho's module
metadata has no key saying whether Bulk Read can export a module, so the modules known to be
refused (``MODULE_NOT_SUPPORTED``, NOTES 5.9) are named in ``NOT_BULK_READABLE`` and refused at
discovery, before a sync would fail on its first job.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing as t

from tap_zoho_crm.errors import ConfigError

if t.TYPE_CHECKING:
    from tap_zoho_crm.client import ZohoClient

STREAMABLE_TYPES = frozenset({"default", "custom"})
NOT_BULK_READABLE = frozenset(
    {
        "Notes",
        "Attachments",
        "Emails",
        # Listed by settings/modules, yet refused by Bulk Read (NOTES 5.9, third-party finding).
        "CTI_Entry",
        "Email_Analytics",
        "Email_Template_Analytics",
        "Email_Sentiment",
        "Functions__s",
        "Locking_Information__s",
    }
)


@dataclasses.dataclass(frozen=True)
class ModuleInfo:
    """One CRM module as ``settings/modules`` describes it."""

    api_name: str
    generated_type: str
    api_supported: bool

    @property
    def bulk_readable(self) -> bool:
        """False for modules Bulk Read refuses to export."""
        return self.api_name not in NOT_BULK_READABLE

    @property
    def streamable(self) -> bool:
        """True when the tap can copy this module."""
        return self.api_supported and self.generated_type in STREAMABLE_TYPES and self.bulk_readable


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One field as ``settings/fields`` describes it.

    ``return_type`` is the formula's or roll-up summary's result type, else None.
    """

    api_name: str
    data_type: str
    json_type: str = ""
    return_type: str | None = None
    read_only: bool = False

    @classmethod
    def from_json(cls, item: t.Mapping[str, t.Any]) -> FieldInfo:
        """Build from one element of the ``fields`` array."""
        return_type = None
        for key in ("formula", "rollup_summary"):
            nested = item.get(key)
            if isinstance(nested, dict) and nested.get("return_type"):
                return_type = str(nested["return_type"])
        return cls(
            api_name=str(item["api_name"]),
            data_type=str(item.get("data_type") or ""),
            json_type=str(item.get("json_type") or ""),
            return_type=return_type,
            read_only=bool(item.get("read_only")),
        )


def list_modules(client: ZohoClient) -> list[ModuleInfo]:
    """Every module the org has, streamable or not."""
    body = client.get_json("/crm/v8/settings/modules")
    return [
        ModuleInfo(
            api_name=str(item["api_name"]),
            generated_type=str(item.get("generated_type") or ""),
            api_supported=bool(item.get("api_supported", True)),
        )
        for item in body.get("modules") or []
        if isinstance(item, dict) and item.get("api_name")
    ]


def resolve_modules(client: ZohoClient, names: t.Sequence[str]) -> list[ModuleInfo]:
    """The configured modules, in config order; a name Zoho cannot stream is a ConfigError."""
    if not names:
        msg = "Setting 'modules' is empty: list at least one module API name, e.g. Leads."
        raise ConfigError(msg)
    known = {module.api_name: module for module in list_modules(client)}
    resolved = []
    for name in dict.fromkeys(names):
        module = known.get(name)
        if module is None:
            raise ConfigError(_unknown_module_message(name, known))
        if module.api_supported and not module.bulk_readable:
            msg = f"module {name} cannot be exported by Bulk Read; remove it from modules."
            raise ConfigError(msg)
        if not module.streamable:
            msg = (
                f"Module {name!r} cannot be copied: api_supported={module.api_supported}, "
                f"generated_type={module.generated_type!r} (only default and custom modules "
                "reachable by the API are). Remove it from 'modules'."
            )
            raise ConfigError(msg)
        resolved.append(module)
    return resolved


def _unknown_module_message(name: str, known: t.Mapping[str, ModuleInfo]) -> str:
    streamable = sorted(api for api, module in known.items() if module.streamable)
    by_lower = {api.lower(): api for api in streamable}
    close = difflib.get_close_matches(name, streamable, n=3, cutoff=0.6)
    if name.lower() in by_lower and by_lower[name.lower()] not in close:
        close.insert(0, by_lower[name.lower()])
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (
        f"Zoho CRM has no module {name!r} in setting 'modules' (names are API names and "
        f"case-sensitive).{hint} Available: {', '.join(streamable)}."
    )


def fetch_fields(client: ZohoClient, module: str) -> list[FieldInfo]:
    """Field metadata of ``module``; an empty answer is a ConfigError (scope or module)."""
    body = client.get_json("/crm/v8/settings/fields", params={"module": module})
    fields = [
        FieldInfo.from_json(item)
        for item in body.get("fields") or []
        if isinstance(item, dict) and item.get("api_name")
    ]
    if not fields:
        msg = (
            f"Zoho returned no field metadata for module {module!r}; check the refresh "
            "token's ZohoCRM.settings.fields.READ scope."
        )
        raise ConfigError(msg)
    return fields
