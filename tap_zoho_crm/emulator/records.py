"""Metadata, Get Records and Get Deleted Records.

Get Records answers lookups as `{"name", "id"}`, owners and users with `email` too,
multi-select picklists as arrays and date-times in the org's offset. Values of the
multi-user-lookup, multi-select-lookup, subform, file and image types are left out of
these list answers: Zoho returns them only when a single record is fetched.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ._http import Request, Response
from ._time import parse_http_or_iso
from .catalog import Module
from .errors import crm_error, invalid_data, invalid_module, required_param
from .state import State
from .values import to_json

MAX_FIELDS = 50
MAX_IDS = 100
MAX_PER_PAGE = 200
MAX_PAGE_WITHOUT_TOKEN = 10
SORTABLE = ("id", "Created_Time", "Modified_Time")
TOKEN_SECONDS = 24 * 3600


def list_modules(state: State, request: Request) -> Response:
    """`GET /crm/v8/settings/modules`."""
    return Response.json({"modules": [m.meta for m in state.modules.values()]})


def list_fields(state: State, request: Request) -> Response:
    """`GET /crm/v8/settings/fields?module=X`; 204 for modules without field metadata."""
    name = request.query.get("module")
    if not name:
        raise required_param("module")
    module = state.modules.get(name)
    if module is None:
        raise invalid_module(name)
    if not module.fields:
        return Response.empty(204)
    return Response.json({"fields": [f.meta for f in module.fields]})


def record_json(state: State, module: Module, row: tuple, names: list[str] | None = None
                ) -> dict[str, Any]:
    """A record as Get Records spells it; `names` limits the fields (`id` always comes)."""
    fmt, directory = state.formatter, state.directory
    chosen = module.fields if names is None else [module.by_name[n] for n in names]
    out = {f.api_name: to_json(f, row[f.index], directory, fmt)
           for f in chosen if f.kind != "raw"}
    out["id"] = row[0]
    return out


def _api_module(state: State, name: str) -> Module:
    module = state.modules.get(name)
    if module is None or not module.fields:
        raise invalid_module(name)
    return module


def _int_param(request: Request, name: str, default: int, high: int | None = None) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < 1 or (high is not None and int(text) > high):
        raise invalid_data(name, f"invalid value for {name}", param=name)
    return int(text)


def _fields_param(module: Module, request: Request) -> list[str]:
    text = request.query.get("fields")
    if not text:
        raise required_param("fields")
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) > MAX_FIELDS:
        raise crm_error(400, "LIMIT_EXCEEDED", "fields limit exceeded",
                        {"limit": MAX_FIELDS, "limit_due_to": [{"api_name": "fields"}]})
    for name in names:
        if module.field(name) is None:
            raise invalid_data(name, "invalid field api name", param="fields")
    return names


def get_records(state: State, request: Request) -> Response:
    """`GET /crm/v8/{Module}`: by `ids`, or one page of the list."""
    module = _api_module(state, request.params["module"])
    names = _fields_param(module, request)
    ids_text = request.query.get("ids")
    if ids_text is not None:
        return _by_ids(state, module, names, ids_text)
    return _list_page(state, module, names, request)


def _by_ids(state: State, module: Module, names: list[str], ids_text: str) -> Response:
    ids = [i.strip() for i in ids_text.split(",") if i.strip()]
    if len(ids) > MAX_IDS:
        raise crm_error(400, "LIMIT_EXCEEDED", "ids limit exceeded",
                        {"limit": MAX_IDS, "limit_due_to": [{"api_name": "ids"}]})
    table = state.tables[module.api_name]
    with state.lock:
        rows = [row for row in (table.get(i) for i in dict.fromkeys(ids)) if row is not None]
        data = [record_json(state, module, row, names) for row in rows]
    if not data:
        return Response.empty(204)
    info = {"per_page": MAX_PER_PAGE, "count": len(data), "page": 1, "sort_by": "id",
            "sort_order": "desc", "more_records": False, "next_page_token": None,
            "previous_page_token": None, "page_token_expiry": None, "call": False,
            "email": False}
    return Response.json({"data": data, "info": info})


def _list_page(state: State, module: Module, names: list[str], request: Request
               ) -> Response:
    sort_by = request.query.get("sort_by", "id")
    order = request.query.get("sort_order", "desc")
    if sort_by not in SORTABLE:
        raise invalid_data("sort_by", "invalid sort_by", param="sort_by")
    if order not in ("asc", "desc"):
        raise invalid_data("sort_order", "invalid sort_order", param="sort_order")
    per_page = _int_param(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    offset, page = _list_offset(state, request, per_page, sort_by, order)
    since = _since(request)
    table = state.tables[module.api_name]
    with state.lock:
        rows = [r for r in table.live().iter_rows()
                if since is None or r[module.by_name["Modified_Time"].index] > since]
    key_index = module.by_name[sort_by].index
    rows.sort(key=lambda r: (r[key_index], r[0]), reverse=order == "desc")
    if since is not None and not rows:
        return Response.empty(304)
    chunk = rows[offset:offset + per_page]
    if not chunk:
        return Response.empty(204)
    more = offset + per_page < len(rows)
    info = {"per_page": per_page, "count": len(chunk), "page": page, "sort_by": sort_by,
            "sort_order": order, "more_records": more, "call": False, "email": False,
            "next_page_token": None, "previous_page_token": None, "page_token_expiry": None}
    if more:
        token, expiry = _list_token(state, offset + per_page, page + 1, sort_by, order)
        info.update(next_page_token=token, page_token_expiry=expiry)
    with state.lock:
        data = [record_json(state, module, row, names) for row in chunk]
    return Response.json({"data": data, "info": info})


def _since(request: Request) -> float | None:
    header = request.header("If-Modified-Since")
    if not header:
        return None
    try:
        return parse_http_or_iso(header)
    except (ValueError, TypeError):
        raise invalid_data("If-Modified-Since", "invalid If-Modified-Since") from None


def _list_offset(state: State, request: Request, per_page: int, sort_by: str, order: str
                 ) -> tuple[int, int]:
    token = request.query.get("page_token")
    if token is None:
        page = _int_param(request, "page", 1)
        if page > MAX_PAGE_WITHOUT_TOKEN:
            raise crm_error(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                            "You can only get the first 2000 records without using "
                            "page_token param.", {})
        return (page - 1) * per_page, page
    if "page" in request.query:
        raise crm_error(400, "AMBIGUITY_DURING_PROCESSING", "page and page_token together",
                        {"ambiguity_due_to": ["page", "page_token"]})
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, page, issued = payload["o"], payload["p"], payload["t"]
    except (ValueError, KeyError, TypeError):
        raise invalid_data("page_token", "invalid page token", param="page_token") from None
    if (payload.get("s"), payload.get("d")) != (sort_by, order):
        raise crm_error(400, "TOKEN_BOUND_DATA_MISMATCH", "the token belongs to other params",
                        {"param": "page_token"})
    if state.now() > issued + TOKEN_SECONDS:
        raise crm_error(400, "EXPIRED_VALUE", "The token given has expired.",
                        {"param": "page_token"})
    return offset, page


def _list_token(state: State, offset: int, page: int, sort_by: str, order: str
                ) -> tuple[str, str]:
    issued = int(state.now())
    payload = {"o": offset, "p": page, "t": issued, "s": sort_by, "d": order}
    raw = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return raw, state.formatter.iso(issued + TOKEN_SECONDS)


def get_deleted(state: State, request: Request) -> Response:
    """`GET /crm/v8/{Module}/deleted`: newest deletion first, 200 a page at most."""
    module = _api_module(state, request.params["module"])
    kind = request.query.get("type", "all")
    if kind not in ("all", "recycle", "permanent"):
        raise crm_error(400, "PATTERN_NOT_MATCHED", "Please check whether the input values "
                        "are correct", {"api_name": "type"})
    per_page = _int_param(request, "per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    page = _int_param(request, "page", 1)
    since = _since(request)
    return Response.page("data", deleted_rows(state, module, kind, since), page, per_page)


def deleted_rows(state: State, module: Module, kind: str, since: float | None
                 ) -> list[dict[str, Any]]:
    """Deleted-list rows, newest first (ties by id, descending)."""
    table = state.tables[module.api_name]
    fmt, directory = state.formatter, state.directory
    created_by = module.by_name["Created_By"].index
    with state.lock:
        entries = [(rid, e) for rid, e in table.deleted.items()
                   if kind in ("all", e.kind)
                   and (since is None or e.deleted_time > since)]
        entries.sort(key=lambda item: (item[1].deleted_time, item[0]), reverse=True)
        rows = []
        for rid, entry in entries:
            recycle = entry.kind == "recycle"
            rows.append({
                "deleted_by": _user_ref(directory, entry.deleted_by) if recycle else None,
                "id": rid,
                "display_name": table.display_name(entry.record) if recycle else None,
                "type": entry.kind,
                "created_by": _user_ref(directory, entry.record[created_by]) if recycle
                else None,
                "deleted_time": fmt.iso(entry.deleted_time)})
    return rows


def _user_ref(directory: Any, user_id: str | None) -> dict[str, Any] | None:
    if user_id is None:
        return None
    user = directory.user_json(user_id)
    return {"name": user["name"], "id": user_id}

