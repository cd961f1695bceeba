"""The projection runner's exactly-once bookkeeping, on the embedded log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from shared.envelope import EventEnvelope
from shared.eventlog.embedded import EmbeddedEventLog
from shared.projection import Projection, ProjectionRunner
from shared.sql import Database, Tx


class Tally(Projection):
    """Counts events per source and stream, by increments: a doubled or lost event shows."""

    name = "test.tally"
    sources = ("integrator", "outcomes")

    def create(self, tx: Tx) -> None:
        tx.execute("CREATE TABLE IF NOT EXISTS tally (source TEXT, stream TEXT, n INTEGER,"
                   " PRIMARY KEY (source, stream))")

    def drop(self, tx: Tx) -> None:
        tx.execute("DROP TABLE IF EXISTS tally")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        tx.execute("INSERT INTO tally VALUES (?, ?, 1) ON CONFLICT (source, stream)"
                   " DO UPDATE SET n = tally.n + 1", (event.source, event.stream_id))


def envelope(source: str, stream: str, position: int) -> EventEnvelope:
    now = datetime.now(UTC)
    return EventEnvelope(event_id=uuid.uuid4(), type="Counted", schema_version=1, source=source,
                         stream_id=stream, stream_position=position, occurred_at=now,
                         recorded_at=now, data={})


def tally(db: Database) -> dict[tuple[str, str], int]:
    with db.transaction() as tx:
        return {(s, t): n for s, t, n in tx.execute("SELECT source, stream, n FROM tally")}


def test_the_same_stream_id_in_two_sources_is_two_streams(tmp_path: Path) -> None:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    shared_id = str(uuid.uuid4())
    log.append([envelope("integrator", shared_id, 1), envelope("integrator", shared_id, 2)])
    log.append([envelope("outcomes", shared_id, 1)])
    db = Database.sqlite(tmp_path / "views.sqlite")
    ProjectionRunner(Tally(), db, log).catch_up()
    assert tally(db) == {("integrator", shared_id): 2, ("outcomes", shared_id): 1}


def test_republished_events_are_applied_once(tmp_path: Path) -> None:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    first, second = envelope("integrator", "s", 1), envelope("integrator", "s", 2)
    log.append([first, second])
    log.append([first, second])  # an at-least-once relay published them again
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Tally(), db, log)
    assert runner.catch_up() == 4
    assert tally(db) == {("integrator", "s"): 2}
