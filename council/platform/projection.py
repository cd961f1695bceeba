"""Projections: read models built from the shared log, exactly once in effect.

A runner reads records after the position it stored, applies them to the read model and stores
the new position in the same transaction as the rows, so a crash never double-counts or skips.
Duplicates on the log (from an at-least-once relay) are recognised by stream position: a stream's
events arrive in order, so an event at or below the position already applied is one we have seen.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from council.kernel.context import CommandContext, command_context
from council.kernel.envelope import EventEnvelope
from council.platform import parking
from council.platform.eventlog import EventLog, LogPosition, LogRecord, advance
from council.platform.eventlog.findings import LogWatch, forget_findings
from council.platform.sql import Database, Tx, insert_rows

log = structlog.get_logger("projection")

_TABLES = (
    "CREATE TABLE IF NOT EXISTS projection_position ("
    " projection TEXT NOT NULL, log_partition TEXT NOT NULL, next_offset BIGINT NOT NULL,"
    " PRIMARY KEY (projection, log_partition))",
    "CREATE TABLE IF NOT EXISTS projection_stream ("
    " projection TEXT NOT NULL, stream_id TEXT NOT NULL, position BIGINT NOT NULL,"
    " PRIMARY KEY (projection, stream_id))",
    parking.TABLE,
)


def _stream_key(event: EventEnvelope) -> str:
    # Streams are numbered per source: two services may use the same id for their own streams.
    return f"{event.source}/{event.stream_id}"


class Projection(ABC):
    """A read model. `apply` runs inside the runner's transaction and must only use `tx`. Its
    rows must depend only on each stream's own events in their order, never on how streams
    interleave: Kafka keeps order per stream only, and views "as of" a date are folded from
    snapshots in business-time order (council.platform.replay.snapshots)."""

    name: str
    sources: Sequence[str]
    # The event types `apply` uses (None: it looks at every one). The runner skips the others
    # without validating them: many read models share a topic mostly full of others' events.
    types: frozenset[str] | None = None

    @abstractmethod
    def create(self, tx: Tx) -> None:
        """Create the read model's tables if they do not exist."""

    @abstractmethod
    def drop(self, tx: Tx) -> None:
        """Drop the read model's tables."""

    @abstractmethod
    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        """Apply one event (types it does not know are ignored)."""

    def apply_all(self, tx: Tx, events: Sequence[EventEnvelope]) -> None:
        """Apply new events in log order, each as its own cause (its correlation id, caused
        by it). A read model that can write many events' rows in one statement overrides
        this: one statement per event is most of what applying a delivery batch costs."""
        for event in events:
            with command_context(event_context(event)):
                self.apply(tx, event)


def event_context(event: EventEnvelope) -> CommandContext:
    """The context of work an event causes: its correlation id, caused by it."""
    return CommandContext(
        actor=event.actor or "system",
        organisation=event.organisation,
        correlation_id=event.correlation_id or str(event.event_id),
        causation_id=str(event.event_id),
    )


class TableProjection(Projection):
    """A read model in tables of its own: made from `tables` (DDL, run in order) at the layout
    `version` recorded in the table `marker` (see ensure_layout); dropping it drops `dropped`,
    its tables and the marker."""

    marker: str
    version: int
    tables: Sequence[str]
    dropped: Sequence[str]

    def create(self, tx: Tx) -> None:
        ensure_layout(tx, self, self.marker, self.version)
        for ddl in self.tables:
            tx.execute(ddl)

    def drop(self, tx: Tx) -> None:
        for table in self.dropped:
            tx.execute(f"DROP TABLE IF EXISTS {table}")


def ensure_layout(tx: Tx, projection: Projection, marker: str, version: int) -> None:
    """Keep a read model's tables at the layout `version`, recorded in the table `marker`. A new
    database, or tables of another layout, are dropped and the projection's log positions
    forgotten (in this transaction), so the runner rebuilds it from the log's beginning: the
    log is the source of truth; a read model is only a view of it."""
    tx.execute(f"CREATE TABLE IF NOT EXISTS {marker} (version INTEGER NOT NULL)")
    if [int(v) for (v,) in tx.execute(f"SELECT version FROM {marker}")] == [version]:
        return
    projection.drop(tx)
    tx.execute(f"CREATE TABLE {marker} (version INTEGER NOT NULL)")
    tx.execute(f"INSERT INTO {marker} (version) VALUES (?)", (version,))
    _forget_positions(tx, projection.name)


def _forget_positions(tx: Tx, name: str) -> None:
    """Forget where a projection is on the log, what it parked and what it found wrong with
    the log: it is about to read the log again from its beginning."""
    for table in ("projection_position", "projection_stream"):
        tx.execute(f"DELETE FROM {table} WHERE projection = ?", (name,))
    parking.forget(tx, name)
    forget_findings(tx, f"projection {name}")


@dataclass(frozen=True)
class Retried:
    """What `ProjectionRunner.retry_parked` did: items applied (or released to their worker)
    and items still parked."""

    applied: int
    still_parked: int


class ProjectionRunner:
    """Follows the log into one read model. An event the read model cannot apply is parked
    (see council.platform.parking) and the runner goes on; a log that lost records it had read, or
    whose partitions changed, is noticed (see council.platform.eventlog.findings)."""

    def __init__(self, projection: Projection, db: Database, event_log: EventLog,
                 quiet: bool = False) -> None:
        """`quiet`: no line per event applied (bulk work such as loading the demo data)."""
        self.projection = projection
        self.db = db
        self.event_log = event_log
        self.quiet = quiet
        self.topics = [event_log.topic_for(source) for source in projection.sources]
        self.watch = LogWatch(f"projection {projection.name}", db,
                              lambda at: event_log.findings(self.topics, at))
        with db.transaction() as tx:
            for ddl in _TABLES:
                tx.execute(ddl)
            self.watch.create(tx)
            projection.create(tx)

    def position(self) -> LogPosition:
        with self.db.reading() as tx:
            rows = tx.execute(
                "SELECT log_partition, next_offset FROM projection_position WHERE projection = ?",
                (self.projection.name,),
            )
        return {str(key): int(offset) for key, offset in rows}

    def apply_batch(self, records: Sequence[LogRecord], position: LogPosition) -> int:
        """Apply records read from `position`; returns how many were new. All in one
        transaction; if that fails for anything but the infrastructure, one event at a time,
        each event that still fails parked (so only the bad one is)."""
        try:
            return self._apply(records, position)
        except Exception as exc:
            if parking.transient(exc):
                raise
            log.warning("projection_batch_failed", projection=self.projection.name,
                        records=len(records), error=parking.reason_of(exc))
        return self._apply_singly(records, position)

    def _relevant(self, record: LogRecord) -> bool:
        wanted = self.projection.types
        try:
            return wanted is None or record.type in wanted
        except ValueError:
            return True  # not even JSON: applying it fails, and parks it

    def _apply(self, records: Sequence[LogRecord], position: LogPosition) -> int:
        """Apply records read from `position` in one transaction; returns how many were new."""
        applied = 0
        relevant = [r for r in records if self._relevant(r)]
        done: dict[str, list[EventEnvelope]] = {}  # correlation id -> events applied
        # Pipelined: on PostgreSQL the read model's writes for the whole batch, its stream
        # positions and its log position go without a round trip each, and still commit
        # together or not at all (one statement a round trip held the network read model
        # to 0.07 of PostgreSQL's batched INSERT rate).
        with self.db.pipelined() as tx:
            seen = self._stream_positions(tx, {_stream_key(r.envelope) for r in relevant})
            new: list[EventEnvelope] = []
            for record in relevant:
                event = record.envelope
                key = _stream_key(event)
                if seen.get(key, 0) >= event.stream_position:
                    continue  # a republished duplicate
                new.append(event)
                # event_context(event).correlation_id, without making the context
                done.setdefault(event.correlation_id or str(event.event_id), []).append(event)
                seen[key] = event.stream_position
                applied += 1
            self.projection.apply_all(tx, new)
            self._save_streams(tx, seen)
            self._save_position(tx, position, advance(position, records))
        if not self.quiet:
            self._log_applied(done)
        return applied

    def _apply_singly(self, records: Sequence[LogRecord], position: LogPosition) -> int:
        """Each relevant record in a transaction of its own (with the others read before it,
        which only move the position); one that fails is parked in the transaction that moves
        the position past it."""
        applied, start, at = 0, 0, dict(position)
        for end, record in enumerate(records, 1):
            if not self._relevant(record) and end < len(records):
                continue
            part = records[start:end]
            try:
                applied += self._apply(part, at)
            except Exception as exc:
                if parking.transient(exc):
                    raise
                self._park(record, at, part, exc)
            at, start = advance(at, part), end
        return applied

    def _park(self, record: LogRecord, position: LogPosition, part: Sequence[LogRecord],
              exc: Exception) -> None:
        name = self.projection.name
        reason = parking.reason_of(exc)
        event = _envelope_or_none(record)
        event_id = str(event.event_id) if event is not None else _field(record, "event_id")
        event_type = event.type if event is not None else _field(record, "type")
        item = f"{record.partition_key}@{record.offset}" + (f" {event_id}" if event_id else "")
        with self.db.transaction() as tx:
            parking.park(tx, name, item, reason, log_partition=record.partition_key,
                         log_offset=record.offset, event_id=event_id, event_type=event_type,
                         record=record.value)
            if event is not None:  # a republished copy of it is a duplicate, not new
                key = _stream_key(event)
                seen = self._stream_positions(tx, {key})
                if seen.get(key, 0) < event.stream_position:
                    self._save_streams(tx, {key: event.stream_position})
            self._save_position(tx, position, advance(position, part))
        log.error("event_parked", projection=name, partition=record.partition_key,
                  offset=record.offset, event_id=event_id, type=event_type, reason=reason)

    def _save_streams(self, tx: Tx, seen: dict[str, int]) -> None:
        insert_rows(  # a key a row: `seen` is keyed by stream
            tx, "INSERT INTO projection_stream (projection, stream_id, position) VALUES",
            [(self.projection.name, stream, pos) for stream, pos in seen.items()],
            "ON CONFLICT (projection, stream_id) DO UPDATE SET position = excluded.position")

    def _save_position(self, tx: Tx, before: LogPosition, after: LogPosition) -> None:
        insert_rows(
            tx, "INSERT INTO projection_position (projection, log_partition, next_offset)"
            " VALUES",
            [(self.projection.name, k, offset) for k, offset in after.items()
             if before.get(k) != offset],
            "ON CONFLICT (projection, log_partition) DO UPDATE SET next_offset ="
            " excluded.next_offset")

    def retry_parked(self) -> Retried:
        """Apply again what this projection parked, in log order (after a fix): each applied
        is removed; one that still fails stays parked with its new reason. Parked work of
        other kinds (no record) is released to its worker, which tries it again."""
        name = self.projection.name
        applied = still = 0
        for item in parking.parked(self.db, [name]):
            try:
                with self.db.transaction() as tx:
                    if item.record is not None:
                        self._reapply(tx, item)
                    parking.unpark(tx, name, item.item)
            except Exception as exc:
                if parking.transient(exc):
                    raise
                with self.db.transaction() as tx:
                    parking.park(tx, name, item.item, parking.reason_of(exc))
                still += 1
                continue
            applied += 1
            log.info("parked_event_applied", projection=name, item=item.item,
                     event_id=item.event_id, type=item.event_type)
        return Retried(applied, still)

    def _reapply(self, tx: Tx, item: parking.Parked) -> None:
        """Apply a parked event: no duplicate check (later events of its stream may have been
        applied since; it never was), and its stream's position never goes back."""
        assert item.record is not None
        topic, _, partition = (item.log_partition or ":0").rpartition(":")
        event = LogRecord(topic, int(partition), item.log_offset or 0, item.record).envelope
        with command_context(event_context(event)):
            self.projection.apply_all(tx, [event])
        key = _stream_key(event)
        if self._stream_positions(tx, {key}).get(key, 0) < event.stream_position:
            self._save_streams(tx, {key: event.stream_position})

    def _log_applied(self, done: dict[str, list[EventEnvelope]]) -> None:
        """One line per event, or per correlation id for the many events of one request (a
        delivery batch): the trail of who caused what stays, without a line per event. At debug
        level only: a read model catching up applies thousands."""
        if not log.is_enabled_for(logging.DEBUG):
            return
        name = self.projection.name
        for correlation_id, events in done.items():
            first = events[0]
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id,
                                                         actor=first.actor or "system"):
                if len(events) == 1:
                    log.debug("event_applied", projection=name, type=first.type,
                              event_id=str(first.event_id), source=first.source)
                else:
                    log.debug("event_applied", projection=name, events=len(events),
                              types=sorted({e.type for e in events}),
                              event_id=str(first.event_id),
                              last_event_id=str(events[-1].event_id), source=first.source)

    def _stream_positions(self, tx: Tx, streams: set[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        ordered = sorted(streams)
        if self.db.dialect == "postgres" and ordered:
            # One array, one statement: IN lists of 500 text parameters each took PostgreSQL
            # tens of milliseconds to plan and run, a second per batch of 5,000 events.
            rows = tx.execute(
                "SELECT stream_id, position FROM projection_stream"
                " WHERE projection = ? AND stream_id = ANY(?)",
                (self.projection.name, ordered))
            return {str(s): int(p) for s, p in rows}
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = tx.execute(
                "SELECT stream_id, position FROM projection_stream"
                f" WHERE projection = ? AND stream_id IN ({marks})",
                (self.projection.name, *chunk),
            )
            found.update({str(s): int(p) for s, p in rows})
        return found

    def run_once(self, limit: int = 1000) -> int:
        """Read and apply the next batch; returns how many records were read."""
        position = self.position()
        records = self.event_log.read(self.topics, position, limit)
        if records:
            self.apply_batch(records, position)
        self.check_log(position, at_end=not records)
        return len(records)

    def check_log(self, position: LogPosition, at_end: bool) -> None:
        """Look for a log that went back past this read model's position, or whose partitions
        changed (now and then, and whenever a read finds nothing new): say so, and read such a
        partition again from its start (duplicates are recognised; see LogWatch)."""
        rewinds = self.watch.check(position, at_end)
        if rewinds:
            with self.db.transaction() as tx:
                self._save_position(tx, position, {**position, **rewinds})

    def catch_up(self, limit: int = 5000) -> int:
        """Apply everything the log has now."""
        total = 0
        while moved := self.run_once(limit):
            total += moved
        return total

    def rebuild(self) -> int:
        """Drop the read model and its positions, then replay the whole log into it."""
        with self.db.transaction() as tx:
            self.projection.drop(tx)
            _forget_positions(tx, self.projection.name)
            self.projection.create(tx)
        return self.catch_up()

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        keep_running(self.run_once, stop, idle_wait, "projection_failed",
                     projection=self.projection.name)


def keep_running(step: Callable[[], int], stop: threading.Event, idle_wait: float,
                 failed: str, **about: str) -> None:
    """Call `step` (how much it did) until `stop` is set: waiting `idle_wait` when it did
    nothing, and a second after a failure, logged as `failed` with `about`, so one bad round
    never ends a worker that the next round may find well again."""
    while not stop.is_set():
        try:
            moved = step()
        except Exception as exc:
            log.error(failed, error=str(exc), **about)
            stop.wait(1.0)
            continue
        if not moved:
            stop.wait(idle_wait)


def _envelope_or_none(record: LogRecord) -> EventEnvelope | None:
    try:
        return record.envelope
    except ValueError:
        return None


def _field(record: LogRecord, name: str) -> str | None:
    try:
        value = record.fields.get(name)
    except ValueError:
        return None
    return None if value is None else str(value)
