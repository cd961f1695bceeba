"""The integrator's read models "as of" a past moment, rebuilt from the shared log.

The same projections the service runs live are built afresh in a temporary SQLite database from
every event on the log whose business time (`occurred_at`) is at or before the moment, and the
same queries then run on it. Historic records loaded later carry their real, earlier dates, so the
log is not in business-time order: every record is read and filtered, none is taken as the end.

A date means the end of that day (UTC); a date-time without a zone is taken as UTC.

This replays the whole log on each call, which is simple and right; checkpointed snapshots for
large logs are a later concern.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path

from shared.eventlog import EventLog
from shared.projection import Projection, ProjectionRunner
from shared.sql import Database

END_OF_DAY = time(23, 59, 59, 999999)


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
    from services.integrator.projections import projections

    return list(projections())


def build_as_of(db: Database, event_log: EventLog, topics: Sequence[str] | None,
                as_of: date | datetime | str,
                projections: Sequence[Projection] | None = None) -> int:
    """Build `projections` (default: the integrator's) into `db` from the events on `topics`
    (default: every topic they read) that occurred at or before `as_of`; returns how many events
    were applied. Duplicates on the log are passed over as the live runner passes them over."""
    moment = as_of_moment(as_of)
    chosen = list(projections) if projections is not None else default_projections()
    reads = {
        p.name: {event_log.topic_for(source) for source in p.sources} for p in chosen
    }
    wanted = list(topics) if topics is not None else sorted(set().union(*reads.values()))
    for projection in chosen:
        ProjectionRunner(projection, db, event_log)  # creates its tables and bookkeeping
    seen: dict[str, dict[tuple[str, str], int]] = {p.name: {} for p in chosen}
    applied = 0
    for records in event_log.read_all(wanted):
        with db.transaction() as tx:
            for record in records:
                event = record.envelope
                if event.occurred_at > moment:
                    continue
                stream = (event.source, event.stream_id)
                for projection in chosen:
                    if record.topic not in reads[projection.name]:
                        continue
                    positions = seen[projection.name]
                    if positions.get(stream, 0) >= event.stream_position:
                        continue  # a republished duplicate
                    projection.apply(tx, event)
                    positions[stream] = event.stream_position
                    applied += 1
    return applied


@contextmanager
def state_as_of(event_log: EventLog, topics: Sequence[str] | None,
                as_of: date | datetime | str,
                projections: Sequence[Projection] | None = None) -> Iterator[Database]:
    """A read-model database as it stood at `as_of`, for the block's duration:

        with state_as_of(runtime.event_log, None, "2025-03-31") as db:
            view = market_view(db)
    """
    with tempfile.TemporaryDirectory(prefix="council-as-of-") as folder:
        db = Database.sqlite(Path(folder) / "views.sqlite")
        try:
            build_as_of(db, event_log, topics, as_of, projections)
            yield db
        finally:
            db.close()
