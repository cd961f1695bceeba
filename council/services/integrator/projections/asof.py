"""The integrator's read models "as of" a past moment, rebuilt from the shared log.

The view as of a moment is, by definition, the same projections the service runs live built
afresh from every event on the log whose business time (`occurred_at`) is at or before the
moment, applied in log order; the same queries then run on it. Historic records loaded later
carry their real, earlier dates, so the log is not in business-time order: every record counts,
none is taken as the end.

A date means the end of that day (UTC); a date-time without a zone is taken as UTC.

Two ways to get there, with the same answer (the tests compare them):
- `build_as_of` replays the whole log (council.platform.replay.fold: each record parsed and
validated
  once, duplicates and later events passed over, writes batched; a long log in two processes);
- `state_as_of`, when a snapshot store is registered for the log (the integrator service and
  `council audit replay` register one: council.services.integrator.projections.replay), copies the
  latest snapshot at or before the moment and applies only the events it lacks
  (council.platform.replay.snapshots). Without one, it replays the whole log.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path

from council.platform.eventlog import EventLog
from council.platform.projection import Projection
from council.platform.replay import replay
from council.platform.replay.fold import FoldCount, Folder, ReadModelFile, batched
from council.platform.replay.snapshots import SnapshotStore
from council.platform.sql import Database
from council.services.integrator.projections.network import IGNORED

END_OF_DAY = time(23, 59, 59, 999999)

# Event types a projection is known to pass over, skipped before they are even validated (a
# test applies each to its projection and checks that nothing changes).
SKIPPED: dict[str, frozenset[str]] = {
    "integrator.network": IGNORED,
    "integrator.performance": frozenset({"RateCardAgreed"}),
}


def as_of_moment(value: date | datetime | str) -> datetime:
    """The moment a view is wanted "as of": an ISO date (the end of that day, UTC) or date-time
    (UTC when it names no zone). Raises ValueError for anything else."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO date (2025-03-31) or date-time (2025-03-31T17:00:00Z)"
            ) from None
    if not isinstance(value, datetime):
        return datetime.combine(value, END_OF_DAY, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def default_projections() -> list[Projection]:
    from council.services.integrator.projections import projections

    return list(projections())


def folder_for(event_log: EventLog, projections: Sequence[Projection]) -> Folder:
    topic_of = {s: event_log.topic_for(s) for p in projections for s in p.sources}
    return Folder(projections, topic_of, SKIPPED)


def build_as_of(db: Database, event_log: EventLog, topics: Sequence[str] | None,
                as_of: date | datetime | str | None,
                projections: Sequence[Projection] | None = None) -> int:
    """Build `projections` (default: the integrator's) into `db` from the events on `topics`
    (default: every topic they read) that occurred at or before `as_of` (None: every event);
    returns how many events were applied. Duplicates on the log are passed over as the live
    runner passes them over. A full replay, whatever snapshots exist."""
    return replay_into(db, event_log, topics, as_of, projections).applied


def replay_into(db: Database, event_log: EventLog, topics: Sequence[str] | None,
                as_of: date | datetime | str | None,
                projections: Sequence[Projection] | None = None) -> FoldCount:
    chosen = list(projections) if projections is not None else default_projections()
    with db.transaction() as tx:
        ReadModelFile.prepare(tx, chosen)
    moment = as_of_moment(as_of) if as_of is not None else None
    return replay(event_log, folder_for(event_log, chosen), lambda: batched(db), moment, topics)


# ---------------------------------------------------------------------- snapshot stores

_stores: dict[tuple[str, str], SnapshotStore] = {}
_stores_lock = threading.Lock()


def _key(event_log: EventLog) -> tuple[str, str]:
    return (event_log.url, event_log.topic_prefix)


def register_snapshots(event_log: EventLog, store: SnapshotStore) -> None:
    """Views as of a moment read from `event_log` (any reader of the same log) use `store`."""
    with _stores_lock:
        _stores[_key(event_log)] = store


def unregister_snapshots(store: SnapshotStore) -> None:
    with _stores_lock:
        for key in [k for k, s in _stores.items() if s is store]:
            del _stores[key]


def snapshots_for(event_log: EventLog) -> SnapshotStore | None:
    with _stores_lock:
        return _stores.get(_key(event_log))


@contextmanager
def state_as_of(event_log: EventLog, topics: Sequence[str] | None,
                as_of: date | datetime | str,
                projections: Sequence[Projection] | None = None) -> Iterator[Database]:
    """A read-model database as it stood at `as_of`, for the block's duration:

        with state_as_of(runtime.event_log, None, "2025-03-31") as db:
            view = market_view(db)
    """
    moment = as_of_moment(as_of)
    store = snapshots_for(event_log) if topics is None and projections is None else None
    if store is not None:
        with store.as_of(moment) as found:
            yield found.db
        return
    chosen = list(projections) if projections is not None else default_projections()
    with tempfile.TemporaryDirectory(prefix="council-as-of-") as folder:
        model = ReadModelFile(Path(folder) / "views.sqlite", chosen)
        try:
            replay(event_log, folder_for(event_log, chosen), model.transaction, moment, topics)
        except BaseException:
            model.close()
            raise
        db = model.database()
        try:
            yield db
        finally:
            db.close()
