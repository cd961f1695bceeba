"""The projection runner's exactly-once bookkeeping, on the embedded log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from council.kernel.envelope import EventEnvelope
from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.eventlog.findings import findings
from council.platform.parking import parked
from council.platform.projection import Projection, ProjectionRunner, Retried
from council.platform.sql import Database, Tx


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


# --------------------------------------------------------------------------- parked events


class Fussy(Tally):
    """Refuses an event whose data says `refuse`, as a read model whose database refuses a
    character (PostgreSQL and NUL) or whose code meets a field it did not expect would."""

    name = "test.fussy"
    fixed = False

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.data.get("refuse") and not type(self).fixed:
            raise ValueError(f"cannot store {event.data['refuse']}")
        super().apply(tx, event)


def counted(source: str, stream: str, position: int, **data: object) -> EventEnvelope:
    return envelope(source, stream, position).model_copy(update={"data": data})


class NotAnEvent:
    """A record on the log that is not an event envelope at all (a foreign producer's)."""

    source, stream_id, event_id = "integrator", "x", "not-an-event"

    def to_json(self) -> bytes:
        return b"\x00 not json"


def test_an_event_that_cannot_be_applied_is_parked_and_later_ones_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    bad = counted("integrator", "a", 2, refuse="Hall\x00")
    log.append([counted("integrator", "a", 1), bad, counted("integrator", "a", 3),
                counted("integrator", "b", 1)])
    log.append([NotAnEvent()])
    log.append([counted("integrator", "b", 2)])
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Fussy(), db, log)

    assert runner.catch_up() == 6
    # Every later event applied; only the bad one and the record that is no event parked.
    assert tally(db) == {("integrator", "a"): 2, ("integrator", "b"): 2}
    assert runner.position() == {"council.integrator:0": 6}
    found = parked(db)
    assert [(p.log_offset, p.event_type) for p in found] == [(1, "Counted"), (4, None)]
    assert found[0].event_id == str(bad.event_id)
    assert found[0].projection == "test.fussy"
    assert "ValueError" in found[0].reason
    assert "\\u0000" in found[0].reason  # as text: PostgreSQL refuses NUL in a reason too
    assert "JSON" in found[1].reason
    assert found[0].parked_at

    # A republished copy of the parked event is a duplicate, not parked again.
    log.append([bad])
    runner.catch_up()
    assert len(parked(db)) == 2

    # Retried before the fix: still parked, tried twice. After the fix: applied, removed.
    assert runner.retry_parked() == Retried(applied=0, still_parked=2)
    assert parked(db)[0].attempts == 2
    monkeypatch.setattr(Fussy, "fixed", True)
    assert runner.retry_parked() == Retried(applied=1, still_parked=1)
    assert tally(db) == {("integrator", "a"): 3, ("integrator", "b"): 2}
    assert [p.log_offset for p in parked(db)] == [4]
    runner.catch_up()
    assert tally(db) == {("integrator", "a"): 3, ("integrator", "b"): 2}


def test_only_the_failing_event_of_a_batch_is_parked(tmp_path: Path) -> None:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append([counted("integrator", f"s{i}", 1, refuse="x" if i == 57 else None)
                for i in range(100)])
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Fussy(), db, log)
    assert runner.run_once(limit=100) == 100
    assert len(tally(db)) == 99
    assert [p.log_offset for p in parked(db)] == [57]


class Unreachable(Tally):
    name = "test.unreachable"

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        raise InfrastructureUnavailable("PostgreSQL at postgresql://x is unreachable")


def test_a_failure_of_the_infrastructure_parks_nothing(tmp_path: Path) -> None:
    """Every event would fail alike: the runner tries again later instead."""
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append([counted("integrator", "a", 1)])
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Unreachable(), db, log)
    with pytest.raises(InfrastructureUnavailable):
        runner.run_once()
    assert parked(db) == []
    assert runner.position() == {}


def test_a_log_that_went_back_past_the_position_is_noticed_and_read_again(
        tmp_path: Path) -> None:
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append([counted("integrator", "a", n) for n in range(1, 6)])
    db = Database.sqlite(tmp_path / "views.sqlite")
    runner = ProjectionRunner(Tally(), db, log)
    runner.watch.every = 0
    runner.catch_up()
    assert runner.position() == {"council.integrator:0": 5}

    # The log comes back from an older copy: two records, then one new event.
    log.close()
    (tmp_path / "log.sqlite").unlink()
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append([counted("integrator", "a", 1), counted("integrator", "a", 2),
                counted("integrator", "a", 6)])
    runner.event_log = log
    runner.watch.find = lambda at: log.findings(runner.topics, at)
    for _ in range(3):
        runner.run_once()
    found = findings(db)
    assert [(f["reader"], f["about"]) for f in found] == [
        ("projection test.tally", "council.integrator:0")]
    assert "past the log's end 3" in found[0]["finding"]
    # Read again from the start: the two it had are duplicates; the new one is applied.
    runner.catch_up()
    assert tally(db) == {("integrator", "a"): 6}
    assert runner.position() == {"council.integrator:0": 3}
