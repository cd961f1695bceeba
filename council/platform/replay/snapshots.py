"""Snapshots of read models in business time, so a view "as of" a date needs no full replay.

A view as of a moment T is, by definition, the read model built by applying in log order every
event whose business time (`occurred_at`) is at or before T. Historic data loaded late makes the
log far from business-time order, so no prefix of the log is the state at any date. Two facts of
the projections make snapshots possible all the same:

1. a read model depends only on each stream's own events, in the stream's order, never on how
   different streams interleave (each row is written by the events of one stream; cross-stream
   figures are joined or counted when read). Kafka keeps order per stream only, so every
   projection of this platform is written that way; the tests hold each to it;
2. within a stream, business time normally moves forward with the stream position.

Then the view as of T is also the fold, in business-time order, of the events at or before T, and
that is a prefix of one sorted sequence. This store keeps the sequence: an index of the log's
events by (business time, arrival), read incrementally from the log (duplicates from an
at-least-once relay dropped as the runners drop them). Along it, it saves read-model snapshots at
the ends of UTC days, every `interval` events or so. A view as of T copies the latest snapshot at
or before T and applies only the events between its day's end and T: at most about `interval`.

What invalidates what:
- a late event (business time t, arriving now) belongs before every snapshot whose day ends at or
  after t: those are deleted and taken again from the last one still valid;
- a stream whose business time goes backwards (an event dated before an earlier event of its own
  stream) breaks fact 2 from that event's date: snapshots from then on are deleted and never
  taken, and views as of that date or later are folded in log order (exact, as slow as a full
  replay). The platform's services never write such a stream;
- any change to the projections' code: snapshots are keyed by a fingerprint of their modules.

The store is a cache under var/, derived from the log only; deleting it loses nothing. It trusts
the log to be append-only (the platform's contract): a log replaced under the same address and
topic prefix needs `reset()` (`council audit replay --rebuild-snapshots`).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from council.platform.eventlog import EventLog, LogPosition, LogRecord, advance
from council.platform.projection import Projection
from council.platform.replay.fold import (
    Entry,
    FoldCount,
    Folder,
    ReadModelFile,
    entries,
    utc_text,
)
from council.platform.sql import Database

log = structlog.get_logger("snapshots")

LAYOUT = 1  # bump when the index's tables change shape: the cache is then built again
BATCH = 5000
DEFAULT_INTERVAL = 50_000
MAX_SNAPSHOTS = 40
ABANDONED_AFTER_S = 3600.0
BULK = 100_000  # records behind from which a bulk reader (read ahead) is worth starting
Progress = Callable[[str, int, int], None]
BulkReader = Callable[[Sequence[str], LogPosition], Iterable[Sequence[LogRecord]]]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cache_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cache_position ("
    " log_partition TEXT PRIMARY KEY, next_offset INTEGER NOT NULL)",
    # per stream: the last position indexed and the latest business time seen in it
    "CREATE TABLE IF NOT EXISTS cache_streams ("
    " stream TEXT PRIMARY KEY, position INTEGER NOT NULL, latest TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS cache_events ("
    " seq INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL, topic TEXT NOT NULL,"
    " value BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cache_events_time ON cache_events (occurred_at)",
    # the earliest business time of each batch indexed, so a snapshot folded while later
    # batches arrived can tell whether one of them belongs before it
    "CREATE TABLE IF NOT EXISTS cache_batches ("
    " last_seq INTEGER PRIMARY KEY, earliest TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cache_snapshots ("
    " fingerprint TEXT NOT NULL, boundary TEXT NOT NULL, events INTEGER NOT NULL,"
    " file TEXT NOT NULL, PRIMARY KEY (fingerprint, boundary))",
)
_TABLES = ("cache_meta", "cache_position", "cache_streams", "cache_events", "cache_batches",
           "cache_snapshots")


def day_end(occurred: str) -> str:
    """The last microsecond of the UTC day of a moment given as utc_text."""
    return f"{occurred[:10]}T23:59:59.999999+00:00"


def fingerprint(projections: Sequence[Projection], skipped: Mapping[str, frozenset[str]]) -> str:
    """Changes whenever the code of a projection (its module) or what is skipped changes."""
    digest = hashlib.sha256(f"layout {LAYOUT}".encode())
    for projection in sorted(projections, key=lambda p: p.name):
        digest.update(projection.name.encode())
        module = sys.modules[type(projection).__module__]
        source = getattr(module, "__file__", None)
        digest.update(Path(source).read_bytes() if source else repr(type(projection)).encode())
        digest.update(repr(sorted(skipped.get(projection.name, ()))).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    boundary: str  # every event at or before this moment (utc_text) is in it
    events: int
    file: Path


@dataclass
class AsOf:
    """A read model as of a moment, and how it was made."""

    db: Database
    moment: datetime
    snapshot: str | None  # the boundary of the snapshot it started from
    count: FoldCount
    in_log_order: bool  # folded in log order (a stream went back in time), not from a snapshot


@dataclass(frozen=True)
class CacheStatus:
    events: int
    snapshots: list[Snapshot]
    inexact_from: str | None


class _Missing(Exception):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(str(snapshot.file))
        self.snapshot = snapshot


class _Index:
    """The index database: one connection per thread, short transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-131072"):
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent view (WAL snapshot isolation) for the block's duration."""
        conn = self.conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class SnapshotStore:
    def __init__(self, folder: Path, event_log: EventLog, projections: Sequence[Projection],
                 *, interval: int = DEFAULT_INTERVAL,
                 skipped: Mapping[str, frozenset[str]] | None = None,
                 bulk_reader: BulkReader | None = None, bulk_from: int = BULK) -> None:
        self.folder = Path(folder)
        self.event_log = event_log
        self.projections = list(projections)
        self.interval = max(1, interval)
        self.skipped = dict(skipped or {})
        self.bulk_reader = bulk_reader
        self.bulk_from = bulk_from
        self.folder_of_snapshots = self.folder / "snapshots"
        self.folder_of_snapshots.mkdir(parents=True, exist_ok=True)
        self.folder_ = Folder(self.projections,
                              {s: event_log.topic_for(s) for p in self.projections
                               for s in p.sources}, self.skipped)
        self.topics = self.folder_.topics
        self.fingerprint = fingerprint(self.projections, self.skipped)
        self.index = _Index(self.folder / "index.sqlite")
        self._refreshing = threading.Lock()
        self._checkpointing = threading.Lock()
        self._open()

    # ------------------------------------------------------------------ the index

    def _open(self) -> None:
        with self.index.write() as conn:
            tables = {name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            layout = None
            if "cache_meta" in tables:
                rows = conn.execute("SELECT value FROM cache_meta WHERE key = 'layout'")
                layout = next((int(v) for (v,) in rows), None)
            if layout != LAYOUT:
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            for ddl in _SCHEMA:
                conn.execute(ddl)
            conn.execute("INSERT OR IGNORE INTO cache_meta (key, value) VALUES ('layout', ?)",
                         (str(LAYOUT),))
            stale = conn.execute("SELECT file FROM cache_snapshots WHERE fingerprint <> ?",
                                 (self.fingerprint,)).fetchall()
            conn.execute("DELETE FROM cache_snapshots WHERE fingerprint <> ?",
                         (self.fingerprint,))
        kept = {str(f) for (f,) in self.index.conn().execute("SELECT file FROM cache_snapshots")}
        for (name,) in stale:
            self._unlink(str(name))
        settled = time.time() - ABANDONED_AFTER_S  # younger ones may be another process's
        for path in self.folder_of_snapshots.iterdir():  # left by a process that stopped
            with contextlib.suppress(FileNotFoundError):
                if path.name not in kept and path.stat().st_mtime < settled:
                    path.unlink()

    def _unlink(self, name: str) -> None:
        (self.folder_of_snapshots / name).unlink(missing_ok=True)

    def reset(self) -> None:
        """Forget everything: the index and every snapshot (built again from the log)."""
        with self._refreshing, self._checkpointing:
            with self.index.write() as conn:
                for table in _TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            shutil.rmtree(self.folder_of_snapshots, ignore_errors=True)
            self.folder_of_snapshots.mkdir(parents=True, exist_ok=True)
            self._open()

    def _position(self, conn: sqlite3.Connection) -> LogPosition:
        return {str(k): int(v) for k, v in conn.execute(
            "SELECT log_partition, next_offset FROM cache_position")}

    @staticmethod
    def _meta(conn: sqlite3.Connection, key: str) -> str | None:
        rows = conn.execute("SELECT value FROM cache_meta WHERE key = ?", (key,)).fetchall()
        return str(rows[0][0]) if rows else None

    def refresh(self, progress: Progress | None = None) -> int:
        """Index what the log holds beyond what was indexed; returns how many records were
        read. Safe to call from several threads and processes at once. A long way behind, the
        log is read ahead by `bulk_reader` when the store has one. How far behind is asked of
        the log only with `progress` or after a full first batch: a broker answers it a
        partition at a time, slowly, and a view as of a date refreshes first."""
        with self._refreshing:
            expected = self._expected_total() if progress else None
            shown = progress if progress and expected else None
            total = self._plainly(0, expected, shown, batches=1)
            if total >= BATCH and self.bulk_reader is not None:
                if expected is None:
                    expected = total + (self._expected_total() or 0)
                if expected - total >= self.bulk_from:
                    total = self._in_bulk(self.bulk_reader, total, expected, shown)
            total = self._plainly(total, expected, shown)
            if shown is not None and expected:
                shown("indexing the log", expected, expected)
            return total

    def _plainly(self, total: int, expected: int | None, progress: Progress | None,
                 batches: int | None = None) -> int:
        """Index a batch at a time (`batches` of them, or until the log's end); the total."""
        while batches is None or batches > 0:
            with self.index.read() as conn:
                position = self._position(conn)
            records = self.event_log.read(self.topics, position, BATCH)
            if not records:
                break
            if self._index(position, records):
                total += len(records)
            if progress is not None and expected:
                progress("indexing the log", min(total, expected), expected)
            batches = None if batches is None else batches - 1
        return total

    def _in_bulk(self, reader: BulkReader, total: int, expected: int,
                 progress: Progress | None) -> int:
        """Index what `reader` reads ahead, until it ends or another process indexes too."""
        with self.index.read() as conn:
            position = self._position(conn)
        for records in reader(self.topics, position):
            if not self._index(position, records):
                break  # another process is indexing too: go on one batch at a time
            position = advance(position, records)
            total += len(records)
            if progress is not None:
                progress("indexing the log", min(total, expected), expected)
        return total

    def _index(self, position: LogPosition, records: Sequence[LogRecord]) -> bool:
        """Index records read from `position`; False if the index had moved on meanwhile."""
        with self.index.write() as conn:
            if self._position(conn) != position:
                return False  # another process indexed them meanwhile
            stale = self._add(conn, list(entries(records)))
            moved = advance(position, records)
            conn.executemany(
                "INSERT INTO cache_position (log_partition, next_offset) VALUES (?, ?)"
                " ON CONFLICT (log_partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(k, v) for k, v in moved.items() if position.get(k) != v])
        for name in stale:
            self._unlink(name)  # a reader that has it open keeps its copy
        return True

    def _expected_total(self) -> int | None:
        end = self.event_log.end_position(self.topics)
        if end is None:
            return None
        with self.index.read() as conn:
            position = self._position(conn)
        return sum(max(0, offset - position.get(key, 0)) for key, offset in end.items())

    def _add(self, conn: sqlite3.Connection, batch: list[Entry]) -> list[str]:
        """Index a batch; returns the files of the snapshots it made stale (to delete once the
        transaction has committed)."""
        streams: dict[str, tuple[int, str]] = {}
        names = sorted({e.stream for e in batch})
        for i in range(0, len(names), 500):
            chunk = names[i:i + 500]
            streams.update({str(s): (int(p), str(t)) for s, p, t in conn.execute(
                "SELECT stream, position, latest FROM cache_streams WHERE stream IN"
                f" ({','.join('?' * len(chunk))})", chunk)})
        seq = int(self._meta(conn, "next_seq") or 1)
        inexact = self._meta(conn, "inexact_from")
        was_inexact = inexact
        rows: list[tuple[int, str, str, bytes]] = []
        changed: dict[str, tuple[int, str]] = {}
        earliest: str | None = None
        for entry in batch:
            known = streams.get(entry.stream)
            if known is not None and entry.position <= known[0]:
                continue  # a republished duplicate, as the runners see it
            occurred = entry.occurred
            latest = occurred
            if known is not None:
                if occurred < known[1]:  # this stream goes back in business time
                    inexact = occurred if inexact is None else min(inexact, occurred)
                    log.warning("stream_back_in_time", stream=entry.stream,
                                position=entry.position, occurred_at=occurred)
                latest = max(known[1], occurred)
            streams[entry.stream] = changed[entry.stream] = (entry.position, latest)
            value = entry.value
            rows.append((seq, occurred, entry.topic,
                         value.encode("utf-8", "surrogatepass") if isinstance(value, str)
                         else value))
            seq += 1
            earliest = occurred if earliest is None else min(earliest, occurred)
        if not rows:
            return []
        conn.executemany(
            "INSERT INTO cache_events (seq, occurred_at, topic, value) VALUES (?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO cache_streams (stream, position, latest) VALUES (?, ?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET position = excluded.position,"
            " latest = excluded.latest", [(s, p, t) for s, (p, t) in changed.items()])
        conn.execute("INSERT OR REPLACE INTO cache_meta (key, value) VALUES ('next_seq', ?)",
                     (str(seq),))
        conn.execute("INSERT INTO cache_batches (last_seq, earliest) VALUES (?, ?)",
                     (seq - 1, earliest))
        if inexact != was_inexact and inexact is not None:
            conn.execute("INSERT OR REPLACE INTO cache_meta (key, value)"
                         " VALUES ('inexact_from', ?)", (inexact,))
        assert earliest is not None
        cut = earliest if inexact is None else min(earliest, inexact)
        dropped = [str(f) for (f,) in conn.execute(
            "SELECT file FROM cache_snapshots WHERE boundary >= ?", (cut,))]
        conn.execute("DELETE FROM cache_snapshots WHERE boundary >= ?", (cut,))
        return dropped

    # ------------------------------------------------------------------ reading the index

    def _sorted(self, conn: sqlite3.Connection, after: str | None, until: str | None, *,
                inclusive: bool, upto_seq: int | None = None,
                ) -> Iterator[list[tuple[str, int, str, bytes]]]:
        """Chunks of indexed events (occurred_at, seq, topic, value) with business time after
        `after` and up to `until` (before it, unless `inclusive`), in business-time order."""
        last: tuple[str, int] = (after, sys.maxsize) if after is not None else ("", -1)
        bound = "<=" if inclusive else "<"
        where = f" AND occurred_at {bound} ?" if until is not None else ""
        where += " AND seq <= ?" if upto_seq is not None else ""
        extra = [v for v in (until, upto_seq) if v is not None]
        while True:
            rows = conn.execute(
                "SELECT occurred_at, seq, topic, value FROM cache_events"
                f" WHERE (occurred_at, seq) > (?, ?){where}"
                " ORDER BY occurred_at, seq LIMIT ?", (*last, *extra, BATCH)).fetchall()
            if not rows:
                return
            yield rows
            last = (rows[-1][0], rows[-1][1])

    def _count(self, conn: sqlite3.Connection, after: str | None, until: str | None, *,
               inclusive: bool, upto_seq: int | None = None) -> int:
        sql = "SELECT COUNT(*) FROM cache_events WHERE occurred_at > ?"
        params: list[Any] = [after or ""]
        if until is not None:
            sql += f" AND occurred_at {'<=' if inclusive else '<'} ?"
            params.append(until)
        if upto_seq is not None:
            sql += " AND seq <= ?"
            params.append(upto_seq)
        return int(conn.execute(sql, params).fetchone()[0])

    def _fold(self, model: ReadModelFile, rows: Sequence[tuple[str, int, str, bytes]]) -> None:
        with model.transaction() as tx:
            for *_, topic, value in rows:
                self.folder_.apply_record(tx, topic, value)

    def _latest(self, conn: sqlite3.Connection, upto: str | None) -> Snapshot | None:
        sql = "SELECT boundary, events, file FROM cache_snapshots WHERE fingerprint = ?"
        params: list[Any] = [self.fingerprint]
        if upto is not None:
            sql += " AND boundary <= ?"
            params.append(upto)
        rows = conn.execute(f"{sql} ORDER BY boundary DESC LIMIT 1", params).fetchall()
        if not rows:
            return None
        boundary, events, name = rows[0]
        return Snapshot(str(boundary), int(events), self.folder_of_snapshots / str(name))

    def _forget(self, snapshot: Snapshot) -> None:
        with self.index.write() as conn:
            conn.execute("DELETE FROM cache_snapshots WHERE fingerprint = ? AND file = ?",
                         (self.fingerprint, snapshot.file.name))

    def status(self) -> CacheStatus:
        with self.index.read() as conn:
            (events,) = conn.execute("SELECT COUNT(*) FROM cache_events").fetchone()
            snapshots = [
                Snapshot(str(b), int(n), self.folder_of_snapshots / str(f))
                for b, n, f in conn.execute(
                    "SELECT boundary, events, file FROM cache_snapshots WHERE fingerprint = ?"
                    " ORDER BY boundary", (self.fingerprint,))
            ]
            inexact = self._meta(conn, "inexact_from")
        return CacheStatus(int(events), snapshots, inexact)

    # ------------------------------------------------------------------ taking snapshots

    def spacing(self, events: int) -> int:
        """Events between snapshots: `interval`, or more on a log so long that there would be
        more than MAX_SNAPSHOTS (each a whole read model: disk grows with their count times the
        log's length, so their count is bounded and views as of a date slow down instead)."""
        return max(self.interval, -(-events // MAX_SNAPSHOTS))

    def checkpoint(self, progress: Progress | None = None,
                   stop: threading.Event | None = None) -> int:
        """Take the snapshots the index calls for (one at the end of a UTC day every `interval`
        events), from the latest one still valid; returns how many were taken."""
        with self._checkpointing:
            with self.index.read() as conn:
                upto_seq = int(self._meta(conn, "next_seq") or 1) - 1
                inexact = self._meta(conn, "inexact_from")
                start = self._latest(conn, None)
                after = start.boundary if start else None
                pending = self._count(conn, after, inexact, inclusive=False, upto_seq=upto_seq)
            spacing = self.spacing(upto_seq)
            if pending < spacing:
                return 0
            try:
                model = ReadModelFile(":memory:", self.projections,
                                      source=start.file if start else None)
            except (FileNotFoundError, sqlite3.Error):
                return 0  # made stale meanwhile: the next checkpoint starts from an earlier one
            try:
                return self._take(model, after, inexact, upto_seq, start, pending, spacing,
                                  progress, stop)
            finally:
                model.close()

    def _take(self, model: ReadModelFile, after: str | None, inexact: str | None,
              upto_seq: int, start: Snapshot | None, pending: int, spacing: int,
              progress: Progress | None, stop: threading.Event | None) -> int:
        taken = since = done = 0
        folded = start.events if start else 0
        day: str | None = None
        held: list[tuple[str, int, str, bytes]] = []
        conn = self.index.conn()
        for rows in self._sorted(conn, after, inexact, inclusive=False, upto_seq=upto_seq):
            if stop is not None and stop.is_set():
                return taken
            for row in rows:
                today = row[0][:10]
                if day is not None and today != day and since >= spacing:
                    self._fold(model, held)
                    held = []
                    if not self._save(model, day_end(day), folded, upto_seq):
                        return taken  # a late event arrived before it: next time
                    taken += 1
                    since = 0
                held.append(row)
                day = today
                since += 1
                folded += 1
            if len(held) >= BATCH:
                self._fold(model, held)
                held = []
            done += len(rows)
            if progress:
                progress("taking snapshots", min(done, pending), pending)
        # The last day is left open: more of its events may still arrive.
        return taken

    def _save(self, model: ReadModelFile, boundary: str, events: int, upto_seq: int) -> bool:
        name = f"{boundary[:10]}-{uuid.uuid4().hex[:8]}.sqlite"
        model.save(self.folder_of_snapshots / name)
        with self.index.write() as conn:
            inexact = self._meta(conn, "inexact_from")
            (later,) = conn.execute("SELECT MIN(earliest) FROM cache_batches WHERE last_seq > ?",
                                    (upto_seq,)).fetchone()
            stale = (inexact is not None and boundary >= inexact) or (
                later is not None and str(later) <= boundary)
            if not stale:
                stale = conn.execute(
                    "INSERT OR IGNORE INTO cache_snapshots (fingerprint, boundary, events, file)"
                    " VALUES (?, ?, ?, ?)", (self.fingerprint, boundary, events, name),
                ).rowcount == 0
        if stale:
            self._unlink(name)
            return False
        log.info("snapshot_taken", boundary=boundary, events=events)
        return True

    # ------------------------------------------------------------------ views as of a moment

    @contextmanager
    def as_of(self, moment: datetime, progress: Progress | None = None) -> Iterator[AsOf]:
        """The read model as it stood at `moment` (business time), for the block's duration:
        the latest snapshot at or before it plus the events it lacks."""
        self.refresh()
        folder = Path(tempfile.mkdtemp(prefix="council-as-of-"))
        try:
            while True:
                try:
                    result = self._build(moment.astimezone(UTC), folder / "views.sqlite",
                                         progress)
                    break
                except _Missing as missing:  # gone stale meanwhile, or lost: an earlier one
                    self._forget(missing.snapshot)
            try:
                yield result
            finally:
                result.db.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _build(self, moment: datetime, path: Path, progress: Progress | None) -> AsOf:
        until = utc_text(moment)
        count = FoldCount()
        path.unlink(missing_ok=True)
        with self.index.read() as conn:
            inexact = self._meta(conn, "inexact_from")
            if inexact is not None and until >= inexact:
                model = ReadModelFile(path, self.projections)
                try:
                    self._fold_in_log_order(conn, model, until, count, progress)
                except BaseException:
                    model.close()
                    raise
                return AsOf(model.database(), moment, None, count, in_log_order=True)
            start = self._latest(conn, until)
            if start is not None:
                try:
                    shutil.copyfile(start.file, path)
                except FileNotFoundError:
                    raise _Missing(start) from None
            model = ReadModelFile(path, self.projections)
            try:
                after = start.boundary if start else None
                total = self._count(conn, after, until, inclusive=True) if progress else 0
                for rows in self._sorted(conn, after, until, inclusive=True):
                    self._fold(model, rows)
                    count.read += len(rows)
                    if progress:
                        progress("applying events", min(count.read, total), total)
            except BaseException:
                model.close()
                raise
        count.applied = count.read
        return AsOf(model.database(), moment, start.boundary if start else None, count,
                    in_log_order=False)

    def _fold_in_log_order(self, conn: sqlite3.Connection, model: ReadModelFile, until: str,
                           count: FoldCount, progress: Progress | None) -> None:
        total = int(conn.execute("SELECT COUNT(*) FROM cache_events").fetchone()[0])
        last = 0
        while rows := conn.execute(
            "SELECT occurred_at, seq, topic, value FROM cache_events WHERE seq > ?"
            " ORDER BY seq LIMIT ?", (last, BATCH)).fetchall():
            last = int(rows[-1][1])
            count.read += len(rows)
            due = [r for r in rows if r[0] <= until]
            count.later += len(rows) - len(due)
            count.applied += len(due)
            self._fold(model, due)
            if progress:
                progress("applying events in log order", min(count.read, total), total)

    def close(self) -> None:
        self.index.close()
