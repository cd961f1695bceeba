"""Which read models a page reads: the live ones, or the ones rebuilt "as of" a date.

A rebuild replays the whole shared log (services.integrator.projections.asof), a few hundred
milliseconds on the demo data; people flick between pages at one date, so each rebuilt database
is kept for reuse while nothing new has reached the live read models (their log positions are
the key: new events, even historic ones dated earlier, change them and so start a new build).
The last few dates are kept; one still being read is never thrown away under its reader.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request

from services.integrator.projections.asof import state_as_of
from shared.sql import Database
from shared.web import Runtime

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

    @staticmethod
    def _signature(runtime: Runtime) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(
            (f"{r.projection.name}@{k}", v) for r in runtime.runners
            for k, v in r.position().items()))

    @contextmanager
    def reading(self, runtime: Runtime, moment: datetime) -> Iterator[Database]:
        key = (moment.isoformat(), self._signature(runtime))
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
    cache: AsOfViews | None = getattr(request.app.state, "web_as_of", None)
    if cache is None:
        cache = request.app.state.web_as_of = AsOfViews()
    with cache.reading(runtime, as_of) as db:
        yield db
