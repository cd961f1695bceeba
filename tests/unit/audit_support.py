"""What the audit trail tests share: a provider registry publishing through the real relay to a
real log (embedded or Kafka), checkpoints, verification, and ways to tamper with stored logs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from council.kernel.context import CommandContext, command_context
from council.kernel.contracts.audit import AuditCheckpointSigned
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.envelope import canonical_json
from council.platform.audit.checkpoints import CheckpointWriter
from council.platform.audit.keys import load_signing_key
from council.platform.audit.stores import service_stores
from council.platform.audit.trail import verify_log
from council.platform.audit.verify import Break, Kind, Report, first_break
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventstore import CouncilApplication, open_application, store_database
from council.platform.relay import OutboxRelay
from council.platform.settings import SERVICE_NAMES, Settings
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.commands import NewProvider
from council.tools.console import service_applications

REGISTRY = "provider_registry"
KINDS = [k for k in OrganisationType if k not in (OrganisationType.SME,
                                                   OrganisationType.PARTNERSHIP)]


class Trail:
    """A provider registry whose events go through the outbox relay to the configured log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_application(ProviderRegistry, settings)
        self.db = store_database(settings, REGISTRY)
        self._logs: list[EventLog] = []

    def log(self) -> EventLog:
        self._logs.append(open_event_log(self.settings))
        return self._logs[-1]

    def relay(self, batch_size: int = 20) -> OutboxRelay:
        return OutboxRelay(self.registry, self.log(), self.db, batch_size=batch_size)

    def register(self, count: int, reviewed_every: int = 3) -> list[uuid.UUID]:
        """`count` providers, every `reviewed_every`-th (from the first; 0: none) also put
        under review (a second event in its stream)."""
        ids = []
        with command_context(CommandContext(actor="test:registrar")):
            for i in range(count):
                new = NewProvider.model_validate(
                    {"name": f"Provider {i}", "organisation_type": KINDS[i % len(KINDS)]})
                provider_id, _ = self.registry.register_provider(new)
                if reviewed_every and i % reviewed_every == 0:
                    self.registry.start_review(provider_id, "documents in order")
                ids.append(provider_id)
        return ids

    def checkpoint(self) -> AuditCheckpointSigned | None:
        return CheckpointWriter.for_service(self.settings, REGISTRY, self.db, self.log()).write(
            force=True)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return load_signing_key(self.settings).public_key()

    def verify(self, **options: Any) -> Report:
        options.setdefault("key", self.public_key)
        report, _ = verify_log(self.log(), sources=(REGISTRY,), **options)
        return report

    def close(self) -> None:
        for event_log in self._logs:
            event_log.close()
        self.registry.close()
        self.db.close()


def only_break(report: Report) -> Break:
    """The first break, checking there is one."""
    assert not report.intact, "the tampered log verified"
    found = first_break(report.breaks)
    assert found is not None
    return found


def kinds(report: Report) -> list[Kind]:
    return [b.kind for b in report.breaks]


def parsed(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def resealed(event: dict[str, Any]) -> bytes:
    """An altered event with its own hash recomputed (a careful forger's work)."""
    body = {k: v for k, v in event.items() if k != "hash"}
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    return canonical_json({**body, "hash": digest})


class EmbeddedLogFile:
    """Direct access to the embedded log's SQLite file, as someone with the file could have."""

    def __init__(self, settings: Settings, source: str = REGISTRY) -> None:
        self.path = Path(settings.var_dir) / "shared-log.sqlite"
        self.topic = f"{settings.topic_prefix}.{source}"

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        finally:
            conn.close()

    def values(self) -> list[bytes]:
        """The topic's records, in offset order."""
        with self._conn() as conn:
            rows = conn.execute('SELECT value FROM log_records WHERE topic = ? ORDER BY "offset"',
                                (self.topic,)).fetchall()
        return [bytes(v) for (v,) in rows]

    def replace(self, offset: int, value: bytes) -> None:
        with self._conn() as conn:
            conn.execute('UPDATE log_records SET value = ? WHERE topic = ? AND "offset" = ?',
                         (value, self.topic, offset))

    def delete(self, offset: int) -> None:
        with self._conn() as conn:
            conn.execute('DELETE FROM log_records WHERE topic = ? AND "offset" = ?',
                         (self.topic, offset))

    def swap(self, a: int, b: int) -> None:
        values = self.values()
        self.replace(a, values[b])
        self.replace(b, values[a])

    def insert(self, offset: int, value: bytes) -> None:
        """Put a record at `offset`, moving the later ones up by one. The embedded log reads in
        append order (`seq`), so the records are renumbered to read in their new order too."""
        event = json.loads(value)
        with self._conn() as conn:
            rows = conn.execute(
                'SELECT seq, stream_id, event_id, value FROM log_records WHERE topic = ?'
                ' ORDER BY "offset"', (self.topic,)).fetchall()
            (top,) = conn.execute("SELECT MAX(seq) FROM log_records").fetchone()
            seqs = sorted([seq for seq, *_ in rows] + [top + 1])
            records = [tuple(r[1:]) for r in rows]
            records.insert(offset, (event["stream_id"], event["event_id"], value))
            conn.execute("DELETE FROM log_records WHERE topic = ?", (self.topic,))
            conn.executemany(
                'INSERT INTO log_records (seq, topic, "offset", stream_id, event_id, value)'
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(seq, self.topic, i, *record) for i, (seq, record)
                 in enumerate(zip(seqs, records, strict=True))])


# --- the three services' stores ----------------------------------------------------------------


class Stack:
    """The three services' event stores, each publishing through its relay (which signs a
    checkpoint after every batch, as in a running service) to one log, and ways to tamper with
    a store as someone with its database could."""

    def __init__(self, settings: Settings) -> None:
        from council.services.integrator.application import Integrator
        from council.services.outcomes.application import Outcomes

        self.settings = settings
        self.apps: dict[str, CouncilApplication] = {
            REGISTRY: open_application(ProviderRegistry, settings),
            "integrator": open_application(Integrator, settings),
            "outcomes": open_application(Outcomes, settings)}
        self.dbs = {name: store_database(settings, name) for name in self.apps}
        self._logs: list[EventLog] = []

    def log(self) -> EventLog:
        self._logs.append(open_event_log(self.settings))
        return self._logs[-1]

    def write(self, round_: int = 0) -> None:
        """A few events in every store: providers registered and reviewed, audit reads, an
        outcome measure with a measurement."""
        from council.services.integrator.application import Integrator
        from council.services.outcomes.application import Outcomes
        from council.services.outcomes.domain.commands import NewMeasure, NewMeasurement

        registry, integrator, outcomes = (self.apps[REGISTRY], self.apps["integrator"],
                                          self.apps["outcomes"])
        assert isinstance(registry, ProviderRegistry)
        assert isinstance(integrator, Integrator)
        assert isinstance(outcomes, Outcomes)
        with command_context(CommandContext(actor="test:clerk")):
            for i in range(2):
                new = NewProvider.model_validate({"name": f"Provider {round_}-{i}",
                                                  "organisation_type": "vcse"})
                provider_id, _ = registry.register_provider(new)
                registry.start_review(provider_id, "documents in order")
                read = integrator.start_audit_read("t0k3n", "regulator", "CQC inspector",
                                                   "events", {"provider": str(provider_id)}, {})
                integrator.finish_audit_read(read, 3 + i, True)
            measure_id, _ = outcomes.define_measure(NewMeasure.model_validate({
                "name": f"Repeat homelessness {round_}", "unit": "households",
                "direction": "lower_is_better"}))
            outcomes.record_measurement(measure_id, NewMeasurement.model_validate({
                "period": "2026-Q1", "value": "42", "source": "housing register"}))

    def publish(self) -> None:
        """Every store's events onto the log, a checkpoint signed after each batch."""
        for name, app in self.apps.items():
            writer = CheckpointWriter.for_service(self.settings, name, self.dbs[name],
                                                  self.log())
            OutboxRelay(app, self.log(), self.dbs[name], batch_size=3,
                        checkpoints=writer).drain()

    def verify(self, stores: bool = True, sources: tuple[str, ...] = SERVICE_NAMES) -> Report:
        event_log = self.log()
        key = load_signing_key(self.settings).public_key()
        if not stores:
            return verify_log(event_log, sources=sources, key=key)[0]
        with service_stores(self.settings, service_applications(sources),
                            event_log) as opened:
            report, _ = verify_log(event_log, sources=sources, key=key, stores=opened)
        return report

    def stored(self, service: str, nth: int) -> tuple[int, dict[str, Any]]:
        """The `nth` (from 1) event in a service's store: its notification id and envelope."""
        app = self.apps[service]
        notification = app.recorder.select_notifications(start=nth, limit=1)[0]
        return notification.id, app.envelope_body(notification)

    def _table(self, service: str) -> tuple[str, str]:
        recorder: Any = self.apps[service].recorder
        key = "rowid" if self.dbs[service].dialect == "sqlite" else "notification_id"
        return recorder.events_table_name, key

    def edit(self, service: str, notification_id: int, old: bytes, new: bytes) -> None:
        """Change a stored event's state in place, in the store's own table."""
        table, key = self._table(service)
        with self.dbs[service].transaction() as tx:
            ((state,),) = tx.execute(f"SELECT state FROM {table} WHERE {key} = ?",
                                     (notification_id,))
            state = bytes(state)
            assert old in state, state
            tx.execute(f"UPDATE {table} SET state = ? WHERE {key} = ?",
                       (state.replace(old, new, 1), notification_id))

    def delete(self, service: str, notification_id: int) -> None:
        table, key = self._table(service)
        with self.dbs[service].transaction() as tx:
            tx.execute(f"DELETE FROM {table} WHERE {key} = ?", (notification_id,))

    def close(self) -> None:
        for event_log in self._logs:
            event_log.close()
        for app in self.apps.values():
            app.close()
        for db in self.dbs.values():
            db.close()


def forged_tip(stack: Stack, service: str = REGISTRY) -> dict[str, Any]:
    """An event forged onto a service's log topic at its chain's tip, correctly sealed (the
    next sequence, linked to the tip's hash): all a forger without the signing key can do."""
    event_log = stack.log()
    topic = event_log.topic_for(service)
    events = [json.loads(r.value) for batch in event_log.read_all([topic]) for r in batch]
    tip = max(events, key=lambda e: e["sequence"])
    forged = {**tip, "event_id": str(uuid.uuid4()), "stream_id": str(uuid.uuid4()),
              "stream_position": 1, "sequence": tip["sequence"] + 1, "prev_hash": tip["hash"],
              "actor": "forger:x"}
    raw = resealed(forged)
    event_log.append([_Raw(forged["source"], forged["stream_id"], forged["event_id"], raw)])
    return json.loads(raw)


class _Raw:
    """Bytes put on the log as they are (council.platform.eventlog.Appendable)."""

    def __init__(self, source: str, stream_id: str, event_id: str, raw: bytes) -> None:
        self.source, self.stream_id, self.event_id, self.raw = source, stream_id, event_id, raw

    def to_json(self) -> bytes:
        return self.raw
