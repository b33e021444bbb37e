"""The emulated org's modules and fields, in the shape of Zoho's metadata APIs.

A module's field list is fixed at import; a record is a tuple whose positions follow that
list (`Field.index`). Fields of the types Bulk Read does not export are kept in the metadata
(Zoho lists them) but are never written to a CSV and never filter a bulk job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

ORG = "4876543"
USER_IDS = ("4876543000000300001", "4876543000000300002", "4876543000000300003")

NOT_EXPORTED = frozenset(
    {"multiuserlookup", "multiselectlookup", "subform", "fileupload", "imageupload"}
)
_JSON_TYPE = {
    "bigint": "string", "text": "string", "textarea": "string", "email": "string",
    "phone": "string", "website": "string", "picklist": "string", "autonumber": "string",
    "profileimage": "string", "multiselectpicklist": "jsonarray", "integer": "integer",
    "double": "double", "currency": "double", "percent": "double", "boolean": "boolean",
    "date": "string", "datetime": "string", "lookup": "jsonobject",
    "ownerlookup": "jsonobject", "userlookup": "jsonobject", "layout": "jsonobject",
    "consent_lookup": "jsonobject", "multiuserlookup": "jsonarray",
    "multiselectlookup": "jsonarray", "subform": "jsonarray", "fileupload": "jsonarray",
    "imageupload": "jsonarray", "formula": "double", "rollup_summary": "string",
}
_KIND = {
    "integer": "int", "double": "num", "currency": "num", "percent": "num",
    "boolean": "bool", "date": "date", "datetime": "datetime", "lookup": "lookup",
    "ownerlookup": "user", "userlookup": "user", "layout": "layout",
    "consent_lookup": "consent", "multiselectpicklist": "multi", "formula": "num",
    "rollup_summary": "datetime",
}


@dataclass(frozen=True)
class Field:
    """One field of a module; `index` is its position in every record tuple."""

    api_name: str
    data_type: str
    kind: str
    index: int
    meta: dict[str, Any] = field(compare=False, repr=False)
    lookup_module: str | None = None

    @property
    def exported(self) -> bool:
        """True when Bulk Read writes this field to the CSV."""
        return self.data_type not in NOT_EXPORTED

    @property
    def filterable(self) -> bool:
        """True when Bulk Read criteria may use this field (textarea cannot be filtered)."""
        return self.exported and self.data_type != "textarea" and self.kind != "tag"


@dataclass(frozen=True)
class Module:
    """A module of the org: its metadata entry and (for API modules) its fields."""

    api_name: str
    id: str
    meta: dict[str, Any]
    fields: tuple[Field, ...] = ()
    bulk_supported: bool = False

    def field(self, api_name: str) -> Field | None:
        """Find a field by API name (exact spelling, as Zoho matches it)."""
        return self.by_name.get(api_name)

    @cached_property
    def by_name(self) -> dict[str, Field]:
        """Fields keyed by API name."""
        return {f.api_name: f for f in self.fields}


def _picks(*values: str) -> list[dict[str, Any]]:
    return [
        {"display_value": v, "actual_value": v, "reference_value": v, "sequence_number": n,
         "colour_code": None, "id": f"{ORG}000000007{n:03d}", "type": "used"}
        for n, v in enumerate(values, start=1)
    ]


LEAD_STATUS = ("-None-", "Attempted to Contact", "Contact in Future", "Contacted",
               "Junk Lead", "Lost Lead", "Not Contacted", "Pre-Qualified", "Qualified")
LEAD_SOURCE = ("-None-", "Advertisement", "Cold Call", "Employee Referral", "Online Store",
               "Partner", "Trade Show", "Web Download", "Chat")
INDUSTRY = ("-None-", "ASP (Application Service Provider)", "Data/Telecom OEM", "ERP",
            "Government/Military", "Large Enterprise", "Management ISV", "Non-management ISV",
            "Service Provider", "Small/Medium Enterprise", "Storage Equipment")
RATING = ("-None-", "Acquired", "Active", "Market Failed", "Project Cancelled", "Shut Down")
INTERESTS = ("Widgets", "Gadgets", "Support Plans", "Training", "Cloud, Hosted")

# (api_name, label, data_type, extra metadata)
_LEADS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("id", "Record Id", "bigint", {"read_only": True}),
    ("Owner", "Lead Owner", "ownerlookup", {}),
    ("Company", "Company", "text", {"system_mandatory": True, "length": 200}),
    ("First_Name", "First Name", "text", {"length": 40}),
    ("Last_Name", "Last Name", "text", {"system_mandatory": True, "length": 80}),
    ("Full_Name", "Lead Name", "text", {"read_only": True}),
    ("Email", "Email", "email", {"length": 100}),
    ("Phone", "Phone", "phone", {"length": 30}),
    ("Website", "Website", "website", {"length": 255}),
    ("Lead_Status", "Lead Status", "picklist", {"pick_list_values": _picks(*LEAD_STATUS)}),
    ("Lead_Source", "Lead Source", "picklist", {"pick_list_values": _picks(*LEAD_SOURCE)}),
    ("Industry", "Industry", "picklist", {"pick_list_values": _picks(*INDUSTRY)}),
    ("Annual_Revenue", "Annual Revenue", "currency",
     {"decimal_place": 2, "currency": {"rounding_option": "normal", "precision": 2}}),
    ("No_of_Employees", "No. of Employees", "integer", {"length": 9}),
    ("Rating", "Rating", "picklist", {"pick_list_values": _picks(*RATING)}),
    ("Email_Opt_Out", "Email Opt Out", "boolean", {}),
    ("Street", "Street", "text", {"length": 250}),
    ("City", "City", "text", {"length": 100}),
    ("State", "State", "text", {"length": 100}),
    ("Zip_Code", "Zip Code", "text", {"length": 30}),
    ("Country", "Country", "text", {"length": 100}),
    ("Description", "Description", "textarea", {"length": 32000, "textarea": {"type": "large"}}),
    ("Interests", "Interests", "multiselectpicklist",
     {"custom_field": True, "pick_list_values": _picks(*INTERESTS)}),
    ("External_Ref", "External Ref", "bigint", {"custom_field": True}),
    ("Score_Ratio", "Score Ratio", "double", {"custom_field": True, "decimal_place": 2}),
    ("Discount_Rate", "Discount Rate", "percent", {"custom_field": True, "decimal_place": 2}),
    ("Next_Follow_Up", "Next Follow Up", "date", {"custom_field": True}),
    ("Referred_Account", "Referred Account", "lookup", {"custom_field": True}),
    ("Converted_Account", "Converted Account", "lookup", {"read_only": True}),
    ("Reviewer", "Reviewer", "userlookup", {"custom_field": True}),
    ("Lead_Number", "Lead Number", "autonumber",
     {"custom_field": True, "read_only": True,
      "auto_number": {"prefix": "LD-", "suffix": None, "start_number": 1,
                      "starting_number_length": 4}}),
    ("Weighted_Revenue", "Weighted Revenue", "formula",
     {"custom_field": True, "read_only": True, "decimal_place": 2,
      "formula": {"return_type": "currency", "assume_default": False,
                  "expression": "${Leads.Annual Revenue}*${Leads.Discount Rate}/100"}}),
    ("Last_Activity_Roll", "Last Activity (Rollup)", "rollup_summary",
     {"custom_field": True, "read_only": True,
      "rollup_summary": {"return_type": "datetime", "rollup_based_on": "related_list",
                         "based_on_module": {"api_name": "Notes", "id": f"{ORG}000000002197"}}}),
    ("Record_Image", "Lead Image", "profileimage", {"length": 255}),
    ("Layout", "Layout", "layout", {}),
    ("Data_Processing_Basis_Details", "Data Processing Basis Details", "consent_lookup", {}),
    ("Tag", "Tag", "text", {"json_type": "jsonarray", "read_only": True}),
    ("Helpers", "Helpers", "multiuserlookup", {"custom_field": True, "virtual_field": True}),
    ("Products", "Products", "multiselectlookup", {"custom_field": True, "virtual_field": True}),
    ("Visits", "Visits", "subform", {"custom_field": True, "virtual_field": True}),
    ("Attachment_File", "Attachment File", "fileupload", {"custom_field": True}),
    ("Badge_Photo", "Badge Photo", "imageupload", {"custom_field": True}),
    ("Created_By", "Created By", "ownerlookup", {"read_only": True}),
    ("Modified_By", "Modified By", "ownerlookup", {"read_only": True}),
    ("Created_Time", "Created Time", "datetime", {"read_only": True}),
    ("Modified_Time", "Modified Time", "datetime", {"read_only": True}),
]

_CONTACTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("id", "Record Id", "bigint", {"read_only": True}),
    ("Owner", "Contact Owner", "ownerlookup", {}),
    ("First_Name", "First Name", "text", {"length": 40}),
    ("Last_Name", "Last Name", "text", {"system_mandatory": True, "length": 80}),
    ("Full_Name", "Contact Name", "text", {"read_only": True}),
    ("Email", "Email", "email", {"length": 100}),
    ("Phone", "Phone", "phone", {"length": 30}),
    ("Title", "Title", "text", {"length": 100}),
    ("Account_Name", "Account Name", "lookup", {}),
    ("Lead_Source", "Lead Source", "picklist", {"pick_list_values": _picks(*LEAD_SOURCE)}),
    ("Mailing_City", "Mailing City", "text", {"length": 100}),
    ("Mailing_Country", "Mailing Country", "text", {"length": 100}),
    ("Date_of_Birth", "Date of Birth", "date", {}),
    ("Email_Opt_Out", "Email Opt Out", "boolean", {}),
    ("Description", "Description", "textarea", {"length": 32000, "textarea": {"type": "large"}}),
    ("Tag", "Tag", "text", {"json_type": "jsonarray", "read_only": True}),
    ("Created_By", "Created By", "ownerlookup", {"read_only": True}),
    ("Modified_By", "Modified By", "ownerlookup", {"read_only": True}),
    ("Created_Time", "Created Time", "datetime", {"read_only": True}),
    ("Modified_Time", "Modified Time", "datetime", {"read_only": True}),
]

_NOTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("id", "Record Id", "bigint", {"read_only": True}),
    ("Owner", "Note Owner", "ownerlookup", {}),
    ("Note_Title", "Note Title", "text", {"length": 120}),
    ("Note_Content", "Note Content", "textarea", {"textarea": {"type": "large"}}),
    ("Created_By", "Created By", "ownerlookup", {"read_only": True}),
    ("Modified_By", "Modified By", "ownerlookup", {"read_only": True}),
    ("Created_Time", "Created Time", "datetime", {"read_only": True}),
    ("Modified_Time", "Modified Time", "datetime", {"read_only": True}),
]

_LOOKUP_TARGETS = {
    "Referred_Account": "Accounts", "Converted_Account": "Accounts", "Account_Name": "Accounts",
}
_MODULE_IDS = {
    "Leads": "002175", "Contacts": "002179", "Accounts": "002177", "Notes": "002197",
    "Home": "002171", "Feeds": "002209", "LeadsXProducts": "009201", "Visits": "009301",
}


def module_id(api_name: str) -> str:
    """The module's 19-digit id."""
    return f"{ORG}000000{_MODULE_IDS[api_name]}"


def _field_meta(module: str, seq: int, spec: tuple[str, str, str, dict[str, Any]]) -> dict:
    api_name, label, data_type, extra = spec
    lookup: dict[str, Any] = {}
    if data_type == "lookup":
        target = _LOOKUP_TARGETS[api_name]
        lookup = {"display_label": f"{module} ({label})", "api_name": f"{api_name}_{module}",
                  "module": {"api_name": target, "id": module_id(target)},
                  "id": f"{ORG}0000000090{seq:02d}", "query_details": {},
                  "revalidate_filter_during_edit": False, "show_fields": []}
    read_only = extra.get("read_only", False)
    meta: dict[str, Any] = {
        "api_name": api_name, "field_label": label, "display_label": label,
        "data_type": data_type, "json_type": _JSON_TYPE[data_type],
        "id": f"{ORG}{module_id(module)[-4:]}{seq:08d}", "custom_field": False,
        "system_mandatory": False, "read_only": read_only, "field_read_only": read_only,
        "virtual_field": False, "visible": True, "length": 120, "decimal_place": None,
        "lookup": lookup, "formula": {}, "multiselectlookup": {}, "auto_number": {},
        "currency": {}, "rollup_summary": {}, "associated_module": None,
        "pick_list_values": [],
        "operation_type": {"web_update": not read_only, "api_create": not read_only,
                           "web_create": not read_only, "api_update": not read_only},
    }
    meta.update({k: v for k, v in extra.items() if k != "read_only"})
    if data_type in ("subform", "fileupload", "imageupload"):
        meta["associated_module"] = {"module": f"{api_name}__s", "id": f"{ORG}0000000095{seq:02d}"}
    return meta


def _kind(api_name: str, data_type: str, meta: dict[str, Any]) -> str:
    if api_name == "id":
        return "id"
    if meta.get("json_type") == "jsonarray" and data_type == "text":
        return "tag"
    if data_type in NOT_EXPORTED:
        return "raw"
    return _KIND.get(data_type, "text")


def _build_fields(module: str, specs: list) -> tuple[Field, ...]:
    fields = []
    for index, spec in enumerate(specs):
        meta = _field_meta(module, index + 1, spec)
        api_name, data_type = spec[0], spec[2]
        fields.append(Field(api_name, data_type, _kind(api_name, data_type, meta), index, meta,
                            _LOOKUP_TARGETS.get(api_name)))
    return tuple(fields)


def _module_meta(api_name: str, singular: str, generated: str, api_supported: bool) -> dict:
    return {
        "api_name": api_name, "module_name": api_name, "singular_label": singular,
        "plural_label": api_name, "generated_type": generated, "api_supported": api_supported,
        "id": module_id(api_name), "visible": True, "viewable": True,
        "creatable": api_supported, "editable": api_supported, "deletable": api_supported,
        "recycle_bin_on_delete": api_supported, "modified_time": None,
        "sequence_number": list(_MODULE_IDS).index(api_name) + 1,
        "status": "visible" if generated != "subform" else "system_hidden",
    }


def build_modules() -> dict[str, Module]:
    """Every module the emulated org lists, keyed by API name (order as listed)."""
    rows = [
        ("Leads", "Lead", "default", True, _LEADS, True),
        ("Contacts", "Contact", "default", True, _CONTACTS, True),
        ("Notes", "Note", "default", True, _NOTES, False),
        ("Home", "Home", "default", False, None, False),
        ("Feeds", "Feed", "default", False, None, False),
        ("LeadsXProducts", "LeadsXProduct", "linking", True, None, False),
        ("Visits", "Visit", "subform", True, None, False),
    ]
    modules = {}
    for api_name, singular, generated, supported, specs, bulk in rows:
        fields = _build_fields(api_name, specs) if specs else ()
        meta = _module_meta(api_name, singular, generated, supported)
        modules[api_name] = Module(api_name, module_id(api_name), meta, fields, bulk)
    return modules
