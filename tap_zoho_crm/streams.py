"""``ModuleStream``: one Zoho CRM module as a Singer stream.

What a sync emits, and in which order, is decided in ``sync.py``; this class holds the
stream's schema, the fast record path and the two messages only a stream can write (STATE
between pages, the tombstone SCHEMA).

Invariants:

- Records are fully typed by the casters (``casting.py``), so the SDK's per-record type
  conformance is switched off (``TYPE_CONFORMANCE_LEVEL = NONE``).
- Only selected properties are requested from Bulk Read, so no record carries a property
  that is deselected or absent from the (possibly user-edited) catalog schema.
- Stream state keys besides the SDK's are described in ``sync.py`` and ``plan.py``.
"""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage, SchemaMessage
from typing_extensions import override

from tap_zoho_crm.casting import RowCaster
from tap_zoho_crm.changes import parse_instant
from tap_zoho_crm.credits import CreditsExhausted
from tap_zoho_crm.plan import BULK, LAST_SYNC, Health, committed_event_seq
from tap_zoho_crm.schema import DELETED_AT, ID, REPLICATION_KEY, Kind, ModuleSchema
from tap_zoho_crm.sync import ModuleSync

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_zoho_crm.bulk import BulkReader
    from tap_zoho_crm.client import ZohoClient
    from tap_zoho_crm.settings import TapSettings
    from tap_zoho_crm.tap import TapZohoCRM


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

    @property
    def tap_settings(self) -> TapSettings:
        """The tap's typed settings."""
        return t.cast("TapZohoCRM", self._tap).settings

    @property
    def client(self) -> ZohoClient:
        """The tap's API client."""
        return t.cast("TapZohoCRM", self._tap).client

    @override
    def get_records(self, context: Context | None) -> t.Iterable[Record]:
        tap = t.cast("TapZohoCRM", self._tap)
        store = tap.event_store
        # A receiver gap matters since the last sync, or, when an interrupted load is to be
        # continued, since that load began: its remaining pages were exported before.
        interrupted = self.stream_state.get(BULK) or {}
        since = interrupted.get("run_started_at") or self.stream_state.get(LAST_SYNC)
        try:
            health = Health(
                channel_live=tap.channel_live,
                receiver_covered=bool(since)
                and store.receiver_coverage(since=parse_instant(str(since))),
                store_id=store.store_id,
                webhooks_configured=bool(self.tap_settings.webhook_public_url),
            )
            yield from ModuleSync(self, store, health).records()
        except CreditsExhausted as exc:
            # A clean stop: STATE already says how far the load got; the run exits 0.
            self.logger.warning("%s: %s. Stopping this sync here.", self.name, exc)

    @property
    def synced_before(self) -> bool:
        """Whether an earlier run of this install reported a bookmark (``TapZohoCRM``)."""
        return t.cast("TapZohoCRM", self._tap).synced_before

    def committed_event_floor(self) -> int:
        """The lowest committed event bookmark over every selected stream of the tap."""
        store_id = t.cast("TapZohoCRM", self._tap).event_store.store_id
        return min(
            (
                committed_event_seq(stream.stream_state, store_id)
                for stream in self._tap.streams.values()
                if stream.selected
            ),
            default=0,
        )

    def flush_state(self) -> None:
        """Emit STATE now (the SDK alone writes it only every 10,000 records)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def write_tombstone_schema(self) -> None:
        """Switch the stream to a SCHEMA of only ``id`` and ``_sdc_deleted_at``.

        target-postgres sets every column of the current SCHEMA that a record leaves out to
        NULL, but leaves columns outside it alone. Tombstones sent under this SCHEMA mark a
        row deleted and keep its last known values. They must come after every upsert of the
        run, and no id may be both upserted and tombstoned in one run (``ChangeSet``).
        """
        properties = self.schema["properties"]
        schema = {
            "type": "object",
            "properties": {ID: properties[ID], DELETED_AT: properties[DELETED_AT]},
            "required": [ID],
        }
        for stream_map in self.stream_maps:
            self._tap.write_message(SchemaMessage(stream_map.stream_alias, schema, [ID], None))

    @override
    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        """No per-record bookmark: ``sync.py`` sets it once the sync has emitted everything.

        Records arrive in id order, not ``Modified_Time`` order, and tombstones carry no
        ``Modified_Time``; the SDK's per-record tracking would cost time and mean nothing.
        """

    def caster_factory(
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
