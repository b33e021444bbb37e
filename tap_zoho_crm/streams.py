"""``ModuleStream``: one Zoho CRM module as a Singer stream.

A sync is a sequence of small, overridable steps so that the webhook merge can plug in:

1. ``plan_bulk_window(context)`` decides which ``Modified_Time`` window Bulk Read covers.
2. ``rows_from_bulk(window)`` is the one generator every Bulk Read row flows through; it
   calls ``write_state_between_pages(page)`` after each page.
3. ``get_records`` chains them. Nothing is emitted from any other source yet.

Invariants:

- Records are fully typed by the casters (``casting.py``), so the SDK's per-record type
  conformance is switched off (``TYPE_CONFORMANCE_LEVEL = NONE``).
- Only selected properties are requested from Bulk Read, so no record carries a property
  that is deselected or absent from the (possibly user-edited) catalog schema.
- While a load has more pages, stream state key ``bulk`` holds its window, the id of the
  job already created for the next page, that page's token and when the token was issued;
  the key is removed when the load finishes.
"""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_zoho_crm.bulk import BulkPage, BulkReader, BulkWindow
from tap_zoho_crm.casting import RowCaster
from tap_zoho_crm.schema import DELETED_AT, ID, REPLICATION_KEY, Kind, ModuleSchema

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

BULK_STATE_KEY = "bulk"


class ModuleStream(Stream):
    """Records of one CRM module, keyed by ``id``, bookmarked on ``Modified_Time``."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    is_sorted = False

    def __init__(
        self,
        tap: Tap,
        *,
        module_schema: ModuleSchema,
        name: str,
        bulk_reader: BulkReader,
    ) -> None:
        super().__init__(tap, schema=module_schema.schema, name=name)
        self.module_schema = module_schema
        self.bulk_reader = bulk_reader
        self.primary_keys = [ID]
        self.replication_key = REPLICATION_KEY

    @functools.cached_property
    def selected_kinds(self) -> dict[str, Kind]:
        """Kinds of the columns to emit: in the working schema and selected (id always)."""
        properties = self.schema.get("properties", {})
        return {
            name: kind
            for name, kind in self.module_schema.kinds.items()
            if name in properties and (name == ID or self.mask.get(("properties", name), True))
        }

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        window = self.plan_bulk_window(context)
        yield from self.rows_from_bulk(window)

    def plan_bulk_window(self, context: Context | None) -> BulkWindow:
        """The window of this sync's Bulk Read.

        Default: records modified at or after the bookmark, or ``start_date`` on a first
        run, or every record when neither exists; no upper bound.
        """
        return BulkWindow(start=self.get_starting_timestamp(context), end=None)

    def rows_from_bulk(self, window: BulkWindow) -> t.Iterator[Record]:
        """Every typed row of a Bulk Read over ``window``, page after page."""
        kinds = self.selected_kinds
        fields = [name for name in self.module_schema.bulk_fields if name in kinds]
        pages = self.bulk_reader.pages(self.name, fields, window, self._caster_factory(kinds))
        for page, rows in pages:
            yield from rows
            self.write_state_between_pages(page)

    def write_state_between_pages(self, page: BulkPage) -> None:
        """Record how to continue the load after ``page`` and emit STATE."""
        state = self.stream_state
        if page.more_records:
            state[BULK_STATE_KEY] = {
                "window": page.window.to_state(),
                "job_id": page.next_job_id,
                "page": page.number + 1,
                "page_token": page.next_page_token,
                "page_token_issued_at": (
                    page.token_received_at.isoformat() if page.token_received_at else None
                ),
            }
        else:
            state.pop(BULK_STATE_KEY, None)
        # The SDK only writes STATE every 10,000 records; force one at the page boundary.
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _caster_factory(
        self, kinds: dict[str, Kind]
    ) -> t.Callable[[list[str]], t.Callable[[list[str]], dict[str, t.Any]]]:
        def make(header: list[str]) -> RowCaster:
            caster = RowCaster(header, kinds)
            if caster.missing:
                self.logger.warning(
                    "%s: the Bulk Read CSV lacks %d selected columns, left null: %s",
                    self.name,
                    len(caster.missing),
                    ", ".join(caster.missing),
                )
            return caster

        return make

    @functools.cached_property
    def _records_need_pruning(self) -> bool:
        """True only if ``_sdc_deleted_at`` is deselected (every other column is handled)."""
        return not self.mask.get(("properties", DELETED_AT), True)

    @override
    def _generate_record_messages(self, record: Record) -> t.Generator[RecordMessage, None, None]:
        """The SDK's record messages without its per-record property pruning.

        Records already hold only selected, typed properties (see ``selected_kinds``), and
        pruning them again was the largest single cost of a full load. Stream maps and
        flattening still apply.
        """
        if self._records_need_pruning:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=utc_now(),
                )
