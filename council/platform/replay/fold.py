"""Folding the shared log into read models fast, with the very Projection classes the live runners
use, so a replay gives the live projection's answer.

Each record of a replay is read from the log, its envelope parsed and validated, applied by
the projection (which validates the event's data and works out its statements' values), and
its statements run by SQLite (inserts into indexes of random keys). Parsing is most of what
validating the envelope costs, so reading the header first and validating later costs more for
a record that is applied; and a commit per batch would write every page the batch touched again
(random keys touch most of an index). Where the time goes is in docs/performance.md.

So: a replay parses and validates each record in one step (fold_batch); only the snapshot
store's index reads records' headers alone (type, stream, position, business time: `entries`),
to sort them by business time. Writes go through `BatchingTx`, which runs consecutive identical
statements as one executemany. Read models built here live in SQLite files tuned for bulk loading
(no journal, no fsync, a large page cache, one commit at the end): they are rebuilt from the log,
never the only copy. A long log is folded in two processes (council.platform.replay.parallel).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import LogRecord
from council.platform.eventlog.port import json_object
from council.platform.projection import _TABLES as BOOKKEEPING
from council.platform.projection import Projection
from council.platform.sql import Database, Row, Tx, is_write

ENVELOPE_FIELDS = frozenset(EventEnvelope.model_fields)
# EventEnvelope.model_validate_json without its Python wrapper, whose own cost adds to the
# validation's (this runs once per record of a replay)
_validate_json = EventEnvelope.__pydantic_validator__.validate_json
CACHE_KIB = 512 * 1024  # SQLite page cache per read model being built (a ceiling, not a grab)


class UnreadableRecord(ValueError):
    """A record on the log that is not an event envelope."""


def decode(value: bytes | str) -> dict[str, Any]:
    """A record's JSON object, parsed once (UnreadableRecord saying why if it is not one)."""
    try:
        return json_object(value)
    except ValueError as exc:
        raise UnreadableRecord(str(exc)) from None


def utc_text(moment: datetime) -> str:
    """A moment as fixed-width ISO text in UTC, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_time(text: str) -> str:
    """utc_text of an ISO date-time given as text (as canonical JSON writes it, said as is)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no timezone")
    if len(text) == 32 and text.endswith("+00:00") and text[10] == "T" and text[19] == ".":
        return text
    return utc_text(moment)


@dataclass(slots=True)
class Entry:
    """One log record with its envelope's header read and its body not yet validated."""

    topic: str
    type: str
    stream: str  # "<source>/<stream id>": streams are numbered per source
    position: int
    text_time: str | None  # business time as utc_text (None: from the envelope, when asked)
    fields: dict[str, Any] | None = field(repr=False)  # None: read through the envelope
    value: bytes | str = field(repr=False)  # the record as it is on the log
    validated: EventEnvelope | None = field(default=None, repr=False)

    @property
    def occurred(self) -> str:
        """Business time as utc_text."""
        if self.text_time is None:
            self.text_time = utc_text(self.envelope().occurred_at)
        return self.text_time

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.occurred)

    def envelope(self) -> EventEnvelope:
        """The validated envelope (see envelope_of)."""
        if self.validated is None:
            self.validated = envelope_of(self.value, self.fields)
        return self.validated


def envelope_of(value: bytes | str, fields: dict[str, Any] | None = None) -> EventEnvelope:
    """A record's validated envelope, parsed and validated in one step when it can be. Fields
    this version does not know (a newer producer's) are left out rather than refused: a replay
    must read every record the log holds."""
    try:
        return _validate_json(value)  # type: ignore[no-any-return]
    except ValueError:  # unknown fields, or escapes only json.loads reads: the slow way
        pass
    if fields is None:
        fields = decode(value)
    if not fields.keys() <= ENVELOPE_FIELDS:
        fields = {k: v for k, v in fields.items() if k in ENVELOPE_FIELDS}
    return EventEnvelope.model_validate(fields)


def entry_of(topic: str, value: bytes | str, where: str = "") -> Entry:
    """Read a record's header; raises UnreadableRecord naming the record and the field."""
    try:
        fields = decode(value)
        name = "type"
        kind = fields["type"]
        name = "source"
        source = fields["source"]
        name = "stream_id"
        stream = fields["stream_id"]
        name = "stream_position"
        position = fields["stream_position"]
        name = "occurred_at"
        occurred = _canonical_time(fields["occurred_at"])
        if not (isinstance(kind, str) and isinstance(source, str) and isinstance(stream, str)
                and type(position) is int):
            raise ValueError("wrong type")
    except UnreadableRecord as exc:
        raise UnreadableRecord(f"log record {where or topic}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableRecord(f"log record {where or topic}: bad or missing {name} ({exc})"
                               ) from None
    return Entry(topic, kind, f"{source}/{stream}", position, occurred, fields, value)


def entries(records: Iterable[LogRecord]) -> Iterator[Entry]:
    """Entries with only their header read (to pass some over before any validation)."""
    for record in records:
        yield entry_of(record.topic, record.value,
                       f"{record.topic}:{record.partition}@{record.offset}")


# ---------------------------------------------------------------------- writing


class BatchingTx:
    """A Tx that holds back writes and runs each run of consecutive identical statements as one
    executemany. Statements still run in the order they were issued (a read, or a different
    statement, first runs what is held back), so the effect is that of running them one by one;
    a write's result, always empty, is answered at once."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self._sql: str | None = None
        self._rows: list[Sequence[Any]] = []
        self._writes: dict[str, bool] = {}

    def _writes_(self, sql: str) -> bool:
        known = self._writes.get(sql)
        if known is None:
            known = self._writes[sql] = is_write(sql)
        return known

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if sql is self._sql:  # the statement of the run held back (most often, and cheapest)
            self._rows.append(params)
            return []
        write = self._writes.get(sql)  # _writes_, written out: this runs once per statement
        if write is None:
            write = self._writes[sql] = is_write(sql)
        if write:
            if sql != self._sql:
                self.flush()
                self._sql = sql
            self._rows.append(params)
            return []
        self.flush()
        return self._tx.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not self._writes_(sql):
            self.flush()
            self._tx.executemany(sql, rows)
            return
        if sql != self._sql:
            self.flush()
            self._sql = sql
        self._rows.extend(rows)

    def flush(self) -> None:
        if self._rows and self._sql is not None:
            self._tx.executemany(self._sql, self._rows)
        self._rows = []
        self._sql = None


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class ReadModelFile:
    """A read model being built in an SQLite file (or in memory, ":memory:"), tuned for bulk
    loading; `database()` then opens it for the projections' queries."""

    def __init__(self, path: Path | str, projections: Sequence[Projection],
                 source: Path | None = None) -> None:
        self.path = path
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}",
                       "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        if source is not None:
            with sqlite3.connect(str(source)) as given:
                given.backup(self.conn)
        with self.transaction() as tx:
            self.prepare(tx, projections)

    @staticmethod
    def prepare(tx: Tx, projections: Sequence[Projection]) -> None:
        """Create the projections' tables (and the runners' bookkeeping they expect)."""
        for ddl in BOOKKEEPING:
            tx.execute(ddl)
        for projection in projections:
            projection.create(tx)

    @contextmanager
    def transaction(self) -> Iterator[BatchingTx]:
        """Statements of one batch. The model is built in one long transaction, committed when
        it is saved, opened for queries or closed: a commit per batch would write every page a
        batch touched (random keys touch most of an index) once per batch. A failure leaves a
        model to throw away, which is all a model being built can be."""
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")
        tx = BatchingTx(_SqliteTx(self.conn))
        yield tx
        tx.flush()

    def commit(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def save(self, path: Path) -> None:
        """Write a copy to `path` (atomically: a reader sees the old file or the whole new one)."""
        self.commit()
        part = path.with_name(f"{path.name}.part")
        part.unlink(missing_ok=True)
        with sqlite3.connect(str(part)) as copy:
            self.conn.backup(copy)
        copy.close()
        part.replace(path)

    def close(self) -> None:
        self.commit()
        self.conn.close()

    def database(self) -> Database:
        """The finished read model for the projections' queries (closes the builder)."""
        if isinstance(self.path, str) and self.path == ":memory:":
            raise ValueError("an in-memory read model cannot be reopened")
        self.close()
        return Database.sqlite(Path(self.path))


# ---------------------------------------------------------------------- applying


class Folder:
    """Routes events to the projections that read their topic."""

    def __init__(self, projections: Sequence[Projection], topic_of: Mapping[str, str],
                 skipped: Mapping[str, frozenset[str]] | None = None) -> None:
        """`topic_of` maps a source service to its topic; `skipped` names, per projection, event
        types it is known to ignore (passed over before validation)."""
        self.routes: dict[str, list[tuple[Projection, frozenset[str]]]] = {}
        for projection in projections:
            ignored = (skipped or {}).get(projection.name, frozenset())
            for source in projection.sources:
                self.routes.setdefault(topic_of[source], []).append((projection, ignored))
        self.topics = sorted(self.routes)

    def apply_record(self, tx: Tx, topic: str, value: bytes | str) -> None:
        """Apply a record known to be wanted, validated at once (see fold_batch)."""
        event = envelope_of(value)
        for projection, ignored in self.routes.get(topic, ()):
            if event.type not in ignored:
                projection.apply(tx, event)


@dataclass
class FoldCount:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    later: int = 0  # occurred after the "as of" moment

    def add(self, other: FoldCount) -> None:
        self.read += other.read
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.later += other.later


# A log record as it crosses a pipe (council.platform.replay.parallel): topic, partition, offset,
# value.
Raw = tuple[str, int, int, bytes]


def raw(records: Iterable[LogRecord]) -> list[Raw]:
    return [(r.topic, r.partition, r.offset, r.value) for r in records]


def fold_batch(tx: Tx, folder: Folder, records: Iterable[Raw], seen: dict[str, int],
               moment: datetime | None = None) -> FoldCount:
    """Fold one batch of a replay in log order, as the live runner does: an event at or below
    the stream position already applied is a republished duplicate; with `moment`, events
    whose business time is later are passed over (and do not count as seen). Written out for
    speed, it runs once per record of a replay: each record is parsed and validated in one
    step (reading its header first would parse it twice, and most records are applied)."""
    read = applied = duplicates = later = 0
    routes = folder.routes
    known = seen.get
    for topic, partition, offset, value in records:
        try:
            event = envelope_of(value)
        except ValueError as exc:
            raise UnreadableRecord(f"log record {topic}:{partition}@{offset}: {exc}") from None
        read += 1
        if moment is not None and event.occurred_at > moment:
            later += 1
            continue
        stream = f"{event.source}/{event.stream_id}"
        position = event.stream_position
        if known(stream, 0) >= position:
            duplicates += 1
            continue
        readers = routes.get(topic)
        if readers is None:
            continue
        kind = event.type
        for projection, ignored in readers:
            if kind not in ignored:
                projection.apply(tx, event)
        applied += 1
        seen[stream] = position
    return FoldCount(read, applied, duplicates, later)


@contextmanager
def batched(db: Database) -> Iterator[BatchingTx]:
    """A transaction of `db` whose writes are batched (see BatchingTx)."""
    with db.transaction() as raw:
        tx = BatchingTx(raw)
        yield tx
        tx.flush()
