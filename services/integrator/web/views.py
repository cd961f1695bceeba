"""Which read models a page reads: the live ones, or the ones rebuilt "as of" a date.

A rebuild replays the whole shared log (services.integrator.projections.asof). Two things keep
that within a page's time:
- the log's records are kept in memory as read (RememberedLog): a record never changes once
  appended, so a rebuild re-reads only what is new and never parses an event twice; a worker
  keeps it current from the service's start, so even the first rebuild does not wait for it;
- people flick between pages at one date, so each rebuilt database is kept for reuse while
  nothing new has reached the live read models (their log positions are the key: new events,
  even historic ones dated earlier, change them and so start a new build). The last few dates
  are kept; one still being read is never thrown away under its reader.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from fastapi import Request

from services.integrator.projections import projections
from services.integrator.projections.asof import state_as_of
from shared.envelope import EventEnvelope
from shared.eventlog import EventLog, LogPosition, LogRecord, open_event_log
from shared.sql import Database
from shared.web import Runtime

log = structlog.get_logger("web")

KEEP = 4  # rebuilt databases kept
REMEMBERED = 500_000  # records kept in memory at most; past that, rebuilds read the log itself


class RememberedLog(EventLog):
    """The shared log as read so far, in memory, topped up by `refresh()`; `read` answers from
    memory only (records of each partition in offset order, as the port promises)."""

    def __init__(self, inner: EventLog, topics: Sequence[str]) -> None:
        super().__init__(inner.topic_prefix)
        self.inner = inner
        self.topics = list(topics)
        self.position: LogPosition = {}
        self.partitions: dict[str, list[LogRecord]] = {}
        self.offsets: dict[str, list[int]] = {}
        self.lock = threading.RLock()  # held by refresh() and by rebuilds reading it
        self.full = False

    @property
    def url(self) -> str:
        return self.inner.url

    def ping(self) -> None:
        self.inner.ping()

    def append(self, envelopes: Sequence[EventEnvelope]) -> None:
        raise NotImplementedError("a remembered log is read only")

    def refresh(self) -> int:
        """Read what is new on the log (and parse it once); returns how many records."""
        with self.lock:
            added = 0
            for batch in self.inner.read_all(self.topics, self.position):
                for record in batch:
                    record.envelope  # noqa: B018 - parsed now, outside any page's time
                    key = record.partition_key
                    self.partitions.setdefault(key, []).append(record)
                    self.offsets.setdefault(key, []).append(record.offset)
                    self.position[key] = record.offset + 1
                added += len(batch)
            self.full = sum(len(r) for r in self.partitions.values()) > REMEMBERED
            return added

    def read(self, topics: Sequence[str], position: LogPosition, limit: int) -> list[LogRecord]:
        found: list[LogRecord] = []
        for key, records in self.partitions.items():
            if key.rsplit(":", 1)[0] not in topics:
                continue
            start = bisect.bisect_left(self.offsets[key], position.get(key, 0))
            found.extend(records[start:start + limit - len(found)])
            if len(found) >= limit:
                break
        return found

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Built:
    db: Database
    closer: ExitStack
    readers: int = 0
    evicted: bool = False


@dataclass
class AsOfViews:
    remembered: RememberedLog
    built: OrderedDict[tuple[str, tuple[tuple[str, int], ...]], _Built] = field(
        default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, runtime: Runtime) -> AsOfViews:
        """The runtime's (one each, made when first asked for)."""
        with _MADE:
            found = _VIEWS.get(runtime)
            if found is None:
                event_log = open_event_log(runtime.settings)
                topics = sorted({event_log.topic_for(source) for p in projections()
                                 for source in p.sources})
                found = _VIEWS[runtime] = cls(RememberedLog(event_log, topics))
            return found

    @contextmanager
    def reading(self, runtime: Runtime, moment: datetime) -> Iterator[Database]:
        positions = [(r.projection.name, r.position()) for r in runtime.runners]
        signature = tuple(sorted((f"{name}@{k}", v) for name, at in positions
                                 for k, v in at.items()))
        key = (moment.isoformat(), signature)
        with self.lock:  # one build at a time: they are CPU-bound anyway
            entry = self.built.get(key)
            if entry is None:
                with self.remembered.lock:
                    # At least as far as the live read models (a read of the log's end costs
                    # a broker round trip; the worker usually has it already).
                    if any(self.remembered.position.get(k, 0) < v for _, at in positions
                           for k, v in at.items()):
                        self.remembered.refresh()
                    source = runtime.event_log if self.remembered.full else self.remembered
                    closer = ExitStack()
                    db = closer.enter_context(state_as_of(source, None, moment))
                entry = self.built[key] = _Built(db, closer)
            self.built.move_to_end(key)
            entry.readers += 1
            self._evict()
        try:
            yield entry.db
        finally:
            with self.lock:
                entry.readers -= 1
                if entry.evicted and entry.readers == 0:
                    entry.closer.close()

    def _evict(self) -> None:
        while len(self.built) > KEEP:
            _, old = self.built.popitem(last=False)
            old.evicted = True
            if old.readers == 0:
                old.closer.close()

    def close(self) -> None:
        with self.lock:
            for entry in self.built.values():
                entry.closer.close()
            self.built.clear()
            self.remembered.close()


_VIEWS: weakref.WeakKeyDictionary[Runtime, AsOfViews] = weakref.WeakKeyDictionary()
_MADE = threading.Lock()


class LogMemory:
    """A service worker: keeps the remembered log current, so no page waits to read it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run(self, stop: threading.Event, idle_wait: float) -> None:
        views = AsOfViews.of(self.runtime)
        while not stop.is_set():
            try:
                views.remembered.refresh()
            except Exception as exc:  # the next round, or the next page, tries again
                log.warning("log_memory_refresh_failed", error=str(exc))
            stop.wait(max(idle_wait, 1.0))
        views.close()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@contextmanager
def read_models(request: Request, as_of: datetime | None) -> Iterator[Database]:
    """The live read models, or those rebuilt as of `as_of`, for the block's duration."""
    runtime = runtime_of(request)
    if as_of is None:
        yield runtime.views
        return
    with AsOfViews.of(runtime).reading(runtime, as_of) as db:
        yield db
