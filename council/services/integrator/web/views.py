"""Which read models a page reads: the live ones, or the ones rebuilt "as of" a date.

A rebuild comes from the integrator's snapshot store (council.services.integrator.projections.asof
`state_as_of`: the latest snapshot at or before the date and the events it lacks). People flick
between pages at one date, so each rebuilt database is kept for reuse while nothing new has
reached the live read models (their log positions are the key: new events, even historic ones
dated earlier, change them and so start a new build). The last few dates are kept; one still
being read is never thrown away under its reader.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from fastapi import Request

from council.platform.runtime import Runtime
from council.platform.sql import Database
from council.services.integrator.projections.asof import state_as_of

log = structlog.get_logger("web")

KEEP = 4  # rebuilt databases kept


@dataclass
class _Built:
    db: Database
    closer: ExitStack
    readers: int = 0
    evicted: bool = False


@dataclass
class AsOfViews:
    built: OrderedDict[tuple[str, tuple[tuple[str, int], ...]], _Built] = field(
        default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, runtime: Runtime) -> AsOfViews:
        """The runtime's (one each, made when first asked for)."""
        with _MADE:
            found = _VIEWS.get(runtime)
            if found is None:
                found = _VIEWS[runtime] = cls()
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
                closer = ExitStack()
                db = closer.enter_context(state_as_of(runtime.event_log, None, moment))
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


_VIEWS: weakref.WeakKeyDictionary[Runtime, AsOfViews] = weakref.WeakKeyDictionary()
_MADE = threading.Lock()


class KeptViewsCloser:
    """A service worker with one job: when the service stops, close the kept as-of databases
    (each a temporary file)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run(self, stop: threading.Event, idle_wait: float) -> None:
        stop.wait()
        AsOfViews.of(self.runtime).close()


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
