"""Per-service event stores built on the `eventsourcing` library.

Each service's Application gets its persistence from our settings, never from the library's
silent in-memory default: SQLite under var/ when nothing is configured, PostgreSQL (one schema
per service) when COUNCIL_DATABASE_URL says so. The mapper stamps each stored event with the
command context (actor, organisation, correlation and causation ids, recorded time), so the
domain model stays free of request concerns while every event still says who and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType, get_topic, resolve_topic
from pydantic import ValidationError
from pydantic_core import from_json

from council.kernel.context import current_context
from council.kernel.contracts import EventSpec, spec_for
from council.kernel.envelope import (
    EventEnvelope,
    event_id_for,
    event_id_text,
    jsonable,
    utc_iso,
    uuid_text,
)
from council.kernel.errors import ContractViolation, PersistenceNotConfigured
from council.platform.recorders import ArrayInsertPostgresRecorder, BatchInsertSQLiteRecorder
from council.platform.settings import Settings
from council.platform.sql import Database

META = "_meta"
_INTERNAL = (
    "originator_id", "originator_version", "originator_topic", "timestamp", META, "class_version"
)
# Recorders that write a save's events a few hundred per statement (see council.platform.recorders).
_RECORDERS = {"eventsourcing.sqlite": BatchInsertSQLiteRecorder,
              "eventsourcing.postgres": ArrayInsertPostgresRecorder}


# The library's JSON transcodings undone into what the contract models read: ids and amounts
# as their text (the models parse them, and dump them as that same text), date-times as
# date-times (so a field of any type dumps them as it always did).
_PLAIN: dict[str, Callable[[str], Any]] = {
    "uuid_hex": uuid_text,
    "decimal_str": str,
    "datetime_iso": datetime.fromisoformat,
}


def _plain(value: Any) -> Any:
    """A value of a stored event's state as JSON values (see _PLAIN)."""
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return _PLAIN[value["_type_"]](value["_data_"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _meta() -> dict[str, Any]:
    ctx = current_context()
    return {
        "actor": ctx.actor,
        "organisation": ctx.organisation,
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id,
        "recorded_at": datetime.now(UTC).isoformat(),
    }


def stamp(events: Sequence[Any]) -> None:
    """Stamp events saved together with one command context and one recorded time."""
    meta = _meta()
    for event in events:
        if META not in vars(event):
            # Pending events are fresh frozen dataclasses nobody else holds yet.
            object.__setattr__(event, META, meta)


class StampingMapper(Mapper[UUID]):
    """Adds the current command context to every event as it is stored."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        if META not in vars(domain_event):
            stamp([domain_event])
        return super().to_stored_event(domain_event)


class CouncilApplication(Application[UUID]):
    """Base for each service's application: persistence from settings, events published to the
    shared log under the contract types named in `published`."""

    service: ClassVar[str]
    # aggregate event class -> catalogue type it is published as
    published: ClassVar[dict[type, str]] = {}
    # aggregate event classes kept in the store only (internal bookkeeping)
    unpublished: ClassVar[frozenset[type]] = frozenset()

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only what we pass: the library would otherwise let stray process variables such as
        PERSISTENCE_MODULE or <NAME>_SQLITE_DBNAME silently redirect a service's store. The
        store's recorder is ours (council.platform.recorders): many events per statement."""
        environment = Environment(name, {**type(self).env, **(env or {})})
        recorder = _RECORDERS.get(environment.get("PERSISTENCE_MODULE") or "")
        if recorder is not None and "APPLICATION_RECORDER_TOPIC" not in environment:
            environment["APPLICATION_RECORDER_TOPIC"] = get_topic(recorder)
        return environment

    def construct_transcoder(self) -> Transcoder:
        transcoder = super().construct_transcoder()
        if isinstance(transcoder, JSONTranscoder):
            # The same bytes without the encoder's check for circular references, which an
            # event's state (plain values) cannot have: a quarter of each event's encoding.
            transcoder.encoder = json.JSONEncoder(
                default=transcoder._encode_obj, separators=(",", ":"), ensure_ascii=False,
                check_circular=False)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        base: Mapper[UUID] = self.factory.mapper(transcoder=self.construct_transcoder())
        return StampingMapper(base.transcoder, base.compressor, base.cipher)

    def is_published(self, notification: StoredEvent) -> bool:
        return resolve_topic(notification.topic) not in self.unpublished

    def to_envelope(self, notification: StoredEvent) -> EventEnvelope:
        """The shared-log envelope of one stored event."""
        return EventEnvelope.model_validate(self.envelope_body(notification))

    def envelope_body(self, notification: StoredEvent) -> dict[str, Any]:
        """The shared-log envelope of one stored event as JSON values: what
        `to_envelope(...).model_dump(mode="json")` gives, read straight from the stored bytes.

        The relay's hot path: rebuilding the domain event (the library's JSON decoding, a UUID
        object per id) and then an envelope model only to dump it again was most of what
        publishing an event cost. The data still goes through its contract's model, as
        before; events outside the catalogue, and stores that compress or encrypt, take the
        long way."""
        event_class = resolve_topic(notification.topic)
        spec = self._spec_of(event_class)
        if spec is None or self.mapper.compressor is not None or self.mapper.cipher is not None:
            return self._envelope_of_event(notification).model_dump(mode="json")
        stored: dict[str, Any] = from_json(notification.state)
        meta: dict[str, Any] = stored.get(META) or {}
        occurred = utc_iso(stored["timestamp"]["_data_"])
        state = {k: _plain(v) for k, v in stored.items() if k not in _INTERNAL}
        stream_id = str(notification.originator_id)
        type_, version, data = self.contract_data(event_class, stream_id, state)
        return {
            "event_id": event_id_text(self.service, stream_id, notification.originator_version),
            "type": type_,
            "schema_version": version,
            "source": self.service,
            "stream_id": stream_id,
            "stream_position": notification.originator_version,
            "occurred_at": occurred,
            "recorded_at": utc_iso(meta["recorded_at"]) if meta else occurred,
            "correlation_id": meta.get("correlation_id"),
            "causation_id": meta.get("causation_id"),
            "actor": meta.get("actor"),
            "organisation": meta.get("organisation"),
            "data": data,
        }

    def _envelope_of_event(self, notification: StoredEvent) -> EventEnvelope:
        """The envelope through the rebuilt domain event (the long way, for any store)."""
        event = self.mapper.to_domain_event(notification)
        state: dict[str, Any] = dict(vars(event))
        meta: dict[str, Any] = state.get(META) or {}
        for key in _INTERNAL:
            state.pop(key, None)
        stream_id = str(notification.originator_id)
        type_, version, data = self.contract_data(type(event), stream_id, state)
        occurred: datetime = vars(event)["timestamp"]
        return EventEnvelope(
            event_id=event_id_for(self.service, stream_id, notification.originator_version),
            type=type_,
            schema_version=version,
            source=self.service,
            stream_id=stream_id,
            stream_position=notification.originator_version,
            occurred_at=occurred if occurred.tzinfo else occurred.replace(tzinfo=UTC),
            recorded_at=datetime.fromisoformat(meta["recorded_at"]) if meta else occurred,
            correlation_id=meta.get("correlation_id"),
            causation_id=meta.get("causation_id"),
            actor=meta.get("actor"),
            organisation=meta.get("organisation"),
            data=data,
        )

    def contract_data(
        self, event_class: type, stream_id: str, state: dict[str, Any]
    ) -> tuple[str, int, dict[str, Any]]:
        """The published type, schema version and data of an event with this state. Only the
        fields an event carries are published: an absent optional field stays absent."""
        spec = self._spec_of(event_class)
        if spec is None:
            # Not (yet) in the catalogue: carried through under its class name, never dropped.
            return event_class.__qualname__.replace(".", ""), 1, jsonable(state)
        state = self.event_data(event_class, state)
        model = spec.data.model_validate({spec.stream_field: stream_id, **state})
        return spec.type, spec.version, model.model_dump(mode="json", exclude_unset=True)

    def check_contract(self, event: Any) -> None:
        """Refuse an event its published contract would reject (ContractViolation): once
        stored, such an event could never be relayed, and would hold back every event after
        it. Only validates; the relay shapes the published data."""
        event_class = type(event)
        if event_class in self.unpublished:
            return
        spec = self._spec_of(event_class)
        if spec is None:
            return
        state = self.event_data(
            event_class, {k: v for k, v in vars(event).items() if k not in _INTERNAL}
        )
        try:
            spec.data.model_validate({spec.stream_field: str(event.originator_id), **state})
        except ValidationError as exc:
            raise ContractViolation(
                f"{event_class.__qualname__} does not match its published contract: {exc}"
            ) from exc

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        for event in processing_event.events:
            self.check_contract(event)
        return super()._record(processing_event)

    def save_batches(self, batches: Sequence[Sequence[Aggregate]]) -> list[bool]:
        """Save many aggregates' new events, one transaction per batch, batches in order: each
        is stored whole, or not at all if it clashes with a concurrent change (a version or an
        id already taken: False in the result, and the batches after it are still tried).

        The same as `save()` per batch, with the same contract check and stamping, but every
        batch is checked and encoded before the first is committed, and each is written with a
        few statements (see council.platform.recorders) rather than one per event: for thousands of
        events (a delivery batch, a data load) that is most of the time saved."""
        events = [[e for a in batch for e in a.collect_events()] for batch in batches]
        if self.repository.cache or (self.snapshots and self.snapshotting_intervals):
            # Not configured today; if it ever is, save() also caches or snapshots.
            return [self._save_or_clash(batch) for batch in events]
        encoded = [self._encode(batch) for batch in events]
        return [self._insert_or_clash(stored) for stored in encoded]

    def _encode(self, events: list[Any]) -> list[StoredEvent]:
        for event in events:
            self.check_contract(event)
        stamp(events)
        return [self.mapper.to_stored_event(event) for event in events]

    def _insert_or_clash(self, stored: list[StoredEvent]) -> bool:
        try:
            self.recorder.insert_events(stored)
        except IntegrityError:
            return False
        return True

    def _save_or_clash(self, events: list[Any]) -> bool:
        try:
            self.save(*events)
        except IntegrityError:
            return False
        return True

    def event_data(self, event_class: type, state: dict[str, Any]) -> dict[str, Any]:
        """Shape a stored event's state into its contract's data (override where they differ)."""
        return state

    def _spec_of(self, event_class: type) -> EventSpec | None:
        specs: dict[type, EventSpec | None] = self.__dict__.setdefault("_spec_cache", {})
        if event_class not in specs:
            type_ = self.published.get(event_class)
            specs[event_class] = spec_for(type_) if type_ else None
        return specs[event_class]


A = TypeVar("A", bound=CouncilApplication)


def persistence_env(settings: Settings, service: str) -> dict[str, str]:
    """The `eventsourcing` environment for one service's store."""
    if settings.uses_postgres:
        assert settings.database_url is not None
        url = urlsplit(settings.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_SCHEMA": settings.schema_of(service),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            # One connection kept, more opened while busy: a service is several processes
            # (council.platform.workers), and a PostgreSQL shared by them all has a connection
            # limit.
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "9",
            # Check a pooled connection before use: after PostgreSQL restarts, dead ones are
            # replaced rather than failing requests until they are recycled.
            "POSTGRES_PRE_PING": "y",
            "CREATE_TABLE": "y",
        }
    path = settings.sqlite_path(service)
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "CREATE_TABLE": "y",
    }


def store_database(settings: Settings, service: str) -> Database:
    """The database holding a service's event store (its relay position lives beside it)."""
    if settings.uses_postgres:
        assert settings.database_url is not None
        return Database(settings.database_url, schema=settings.schema_of(service))
    return Database.sqlite(settings.sqlite_path(service))


def open_application(cls: type[A], settings: Settings) -> A:
    """Construct a service application on its configured store; never on memory."""
    if settings.uses_postgres:
        # Reachability check with a clear message, and the service's schema, before the library
        # tries to create its tables there.
        store_database(settings, cls.service).close()
    app = cls(env=persistence_env(settings, cls.service))
    if type(app.recorder).__module__.startswith("eventsourcing.popo"):
        app.close()
        raise PersistenceNotConfigured(
            f"{cls.service} would keep its events in memory; configure COUNCIL_DATABASE_URL "
            "or leave it unset for SQLite under var/"
        )
    return app
