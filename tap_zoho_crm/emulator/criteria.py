"""Bulk Read criteria: validation with Zoho's error codes, and a compiled row predicate.

A node is a leaf `{"field": {"api_name"}, "comparator", "value"}` (the flat v2 form
`{"api_name", "comparator", "value"}` is accepted too) or a group
`{"group_operator": "and"|"or", "group": [node, ...]}`. Validation stops at the first
problem, like Zoho. The compiled predicate takes a record tuple. A null stored value
satisfies only the negative comparators (`not_equal`, `not_in`, `not_contains`,
`not_between`) unless the value is `${EMPTY}`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._time import parse_iso
from .catalog import Field, Module
from .errors import ZohoError, crm_error

Predicate = Callable[[tuple], bool]
EMPTY = "${EMPTY}"
MAX_CRITERIA = 25
MAX_IN_VALUES = 20

_NUMBER = ("equal", "not_equal", "in", "not_in", "less_than", "less_equal", "greater_than",
           "greater_equal")
_TEXT = ("equal", "not_equal", "in", "not_in", "contains", "not_contains", "starts_with",
         "ends_with")
_DATE = ("equal", "not_equal", "in", "not_in", "between", "not_between", "greater_than",
         "greater_equal", "less_than", "less_equal")
_FAMILY = {
    "integer": "number", "double": "number", "currency": "number", "percent": "number",
    "bigint": "number", "formula": "number", "text": "text", "email": "text", "phone": "text",
    "website": "text", "picklist": "text", "multiselectpicklist": "text",
    "autonumber": "text", "profileimage": "text", "date": "date", "datetime": "datetime",
    "rollup_summary": "datetime", "boolean": "boolean", "lookup": "lookup",
    "ownerlookup": "lookup", "userlookup": "lookup",
}
_ALLOWED = {"number": _NUMBER, "text": _TEXT, "date": _DATE, "datetime": _DATE,
            "boolean": ("equal",), "lookup": ("equal", "not_equal", "in", "not_in")}
_NEGATIVE = ("not_equal", "not_in", "not_contains", "not_between")


def _bad(code: str, message: str, **details: Any) -> ZohoError:
    return crm_error(400, code, message, details, wrap="data")


def compile_criteria(module: Module, node: Any) -> tuple[Predicate, dict[str, Any]]:
    """Validate a criteria tree; return its predicate and its echo (field ids filled in)."""
    count = [0]
    predicate, echo = _node(module, node, count)
    if count[0] > MAX_CRITERIA:
        raise _bad("CRITERIA_LIMIT_EXCEEDED", "criteria limit exceeded",
                   max_limit=MAX_CRITERIA)
    return predicate, echo


def _node(module: Module, node: Any, count: list[int]) -> tuple[Predicate, dict]:
    if not isinstance(node, dict) or not node:
        raise _bad("INVALID_CRITERIA", "invalid criteria")
    is_group = "group" in node or "group_operator" in node
    is_leaf = "comparator" in node or "field" in node
    if is_group and is_leaf:
        raise _bad("AMBIGUOUS_CRITERIA", "ambiguous criteria")
    if is_group:
        return _group(module, node, count)
    return _leaf(module, node, count)


def _group(module: Module, node: dict, count: list[int]) -> tuple[Predicate, dict]:
    operator = node.get("group_operator")
    items = node.get("group")
    if not isinstance(operator, str) or operator.lower() not in ("and", "or"):
        raise _bad("GROUP_OPERATOR_NOT_SUPPORTED", "group operator not supported",
                   group_operator=operator)
    if not isinstance(items, list) or not items:
        raise _bad("AMBIGUOUS_GROUP_IN_CRITERIA", "group must hold criteria")
    compiled = [_node(module, item, count) for item in items]
    predicates = [p for p, _ in compiled]
    echo = {"group_operator": operator.lower(), "group": [e for _, e in compiled]}
    if operator.lower() == "and":
        return (lambda row: all(p(row) for p in predicates)), echo
    return (lambda row: any(p(row) for p in predicates)), echo


def _leaf(module: Module, node: dict, count: list[int]) -> tuple[Predicate, dict]:
    count[0] += 1
    ref = node.get("field") if "field" in node else {"api_name": node.get("api_name")}
    name = ref.get("api_name") if isinstance(ref, dict) else None
    comparator = node.get("comparator")
    if not isinstance(name, str) or not isinstance(comparator, str) or "value" not in node:
        raise _bad("INVALID_CRITERIA", "invalid criteria")
    fld = module.field(name)
    if fld is None:
        raise _bad("FIELD_IN_CRITERIA_NOT_AVAILABLE", "field not available", api_name=name)
    family = _FAMILY.get(fld.data_type)
    if family is None or not fld.filterable:
        raise _bad("FIELD_IN_CRITERIA_NOT_SUPPORTED", "field not supported in criteria",
                   api_name=name)
    if comparator not in _ALLOWED[family]:
        raise _bad("FIELD_COMPARATOR_IN_CRITERIA_NOT_SUPPORTED", "comparator not supported",
                   api_name=name, comparator=comparator, supported=list(_ALLOWED[family]))
    value = node["value"]
    predicate = _leaf_predicate(fld, family, comparator, value)
    echo = {"field": {"id": fld.meta["id"], "api_name": name}, "comparator": comparator,
            "value": value}
    return predicate, echo


def _leaf_predicate(fld: Field, family: str, comparator: str, value: Any) -> Predicate:
    i = fld.index
    if value == EMPTY:
        if comparator not in ("equal", "not_equal"):
            raise _bad("COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                       "comparator and value not compatible", api_name=fld.api_name)
        want_empty = comparator == "equal"
        return lambda row: (row[i] is None or row[i] == "") == want_empty
    operands = _operands(fld, family, comparator, value)
    test = _TESTS[family](comparator, operands)
    negative = comparator in _NEGATIVE

    def predicate(row: tuple) -> bool:
        stored = row[i]
        if stored is None or stored == "":
            return negative
        return test(stored)

    return predicate


def _operands(fld: Field, family: str, comparator: str, value: Any) -> list[Any]:
    if comparator in ("in", "not_in", "between", "not_between"):
        if not isinstance(value, list) or not value:
            raise _bad("COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                       "comparator and value not compatible", api_name=fld.api_name)
        if comparator.endswith("between") and len(value) != 2:
            raise _bad("COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                       "between takes two values", api_name=fld.api_name)
        if len(value) > MAX_IN_VALUES:
            raise _bad("VALUE_LIMIT_EXCEEDED_IN_CRITERIA", "too many values",
                       api_name=fld.api_name, max_limit=MAX_IN_VALUES)
        items = value
    else:
        if isinstance(value, list):
            raise _bad("COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                       "comparator and value not compatible", api_name=fld.api_name)
        items = [value]
    try:
        return [_CONVERT[family](item) for item in items]
    except (TypeError, ValueError):
        raise _bad("FIELD_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE",
                   "field and value not compatible", api_name=fld.api_name) from None


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("boolean")
    if isinstance(value, str) and len(value.lstrip("-")) > 19:
        raise ValueError("more than 19 digits")
    return float(value) if not str(value).lstrip("-").isdigit() else int(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 255:
        raise TypeError("text of at most 255 characters")
    return value.lower()


def _date(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise TypeError("YYYY-MM-DD")
    return value


def _datetime(value: Any) -> int:
    return int(parse_iso(value, allow_fraction=False))


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise TypeError("boolean")


def _lookup(value: Any) -> str:
    if not isinstance(value, (str, int)) or not str(value).isdigit():
        raise TypeError("record id")
    return str(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "number": _number, "text": _text, "date": _date, "datetime": _datetime,
    "boolean": _boolean, "lookup": _lookup,
}


def _ordered(comparator: str, operands: list[Any], key: Callable[[Any], Any]) -> Predicate:
    first = operands[0]
    tests: dict[str, Predicate] = {
        "equal": lambda v: key(v) == first,
        "not_equal": lambda v: key(v) != first,
        "in": lambda v: key(v) in operands,
        "not_in": lambda v: key(v) not in operands,
        "less_than": lambda v: key(v) < first,
        "less_equal": lambda v: key(v) <= first,
        "greater_than": lambda v: key(v) > first,
        "greater_equal": lambda v: key(v) >= first,
        "between": lambda v: operands[0] <= key(v) <= operands[1],
        "not_between": lambda v: not operands[0] <= key(v) <= operands[1],
    }
    return tests[comparator]


def _text_test(comparator: str, operands: list[str]) -> Predicate:
    first = operands[0]
    tests: dict[str, Callable[[str], bool]] = {
        "equal": lambda v: v == first,
        "not_equal": lambda v: v != first,
        "in": lambda v: v in operands,
        "not_in": lambda v: v not in operands,
        "contains": lambda v: first in v,
        "not_contains": lambda v: first not in v,
        "starts_with": lambda v: v.startswith(first),
        "ends_with": lambda v: v.endswith(first),
    }
    one = tests[comparator]
    negative = comparator in _NEGATIVE

    def test(stored: Any) -> bool:
        if isinstance(stored, tuple):  # multi-select: any chosen value decides
            hits = [one(item.lower()) for item in stored]
            return all(hits) if negative else any(hits)
        return one(str(stored).lower())

    return test


_TESTS: dict[str, Callable[[str, list[Any]], Predicate]] = {
    "number": lambda c, o: _ordered(c, o, lambda v: int(v) if isinstance(v, str) else v),
    "text": _text_test,
    "date": lambda c, o: _ordered(c, o, lambda v: v),
    "datetime": lambda c, o: _ordered(c, o, int),
    "boolean": lambda c, o: _ordered(c, o, bool),
    "lookup": lambda c, o: _ordered(c, o, str),
}
