"""The performance view in both deployments (embedded: SQLite and the file log; scale-out:
PostgreSQL and Kafka with several partitions, so streams arrive interleaved): the worked example
of tests/unit/test_performance.py goes onto the shared log in the order it happened; the outcomes
service's performance view and the integrator's projections follow it live, and what the
integrator answers at intermediate dates is captured. The figures worked out by hand must come
out the same; then every read model is rebuilt from empty and must answer exactly as the live
one did, and the integrator's view rebuilt "as of" each captured date must equal what it
answered on that date."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from council.kernel.envelope import EventEnvelope
from council.kernel.performance_rule import Rag
from council.platform.eventlog import EventLog, open_event_log
from council.platform.projection import Projection, ProjectionRunner
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.projections import projections as integrator_projections
from council.services.integrator.projections.asof import as_of_moment, state_as_of
from council.services.integrator.projections.performance import network_performance
from council.services.outcomes.projections.performance import PerformanceProjection
from council.services.outcomes.projections.performance_views import (
    get_agreement_performance,
    list_agreement_performance,
)
from tests.unit.test_performance import (
    AG1,
    AG2,
    AG3,
    AG4,
    AG5,
    M1,
    M2,
    SNAPSHOT_DAYS,
    TODAY,
    costs,
    history,
    integrator_snapshot,
    outcomes_snapshot,
)

D = Decimal


class Live:
    """The shared log, the outcomes service's performance view and the integrator's
    projections, each runner with its own reader of the log, as the services run them."""

    def __init__(self, settings: Settings) -> None:
        self.writer = open_event_log(settings)
        self.outcomes = open_database(settings, "outcomes_views")
        self.integrator = open_database(settings, "integrator_views")
        self.logs: list[EventLog] = [self.writer]
        self.runners: list[ProjectionRunner] = []
        chosen: list[tuple[Projection, Database]] = [(PerformanceProjection(), self.outcomes)]
        chosen += [(p, self.integrator) for p in integrator_projections()]
        for projection, db in chosen:
            self.logs.append(open_event_log(settings))
            self.runners.append(ProjectionRunner(projection, db, self.logs[-1]))
        self.appended = {runner.projection.name: 0 for runner in self.runners}

    def append(self, events: list[EventEnvelope]) -> None:
        self.writer.append(events)
        for runner in self.runners:
            self.appended[runner.projection.name] += sum(
                e.source in runner.projection.sources for e in events)

    def sync(self) -> None:
        """Until every runner has read everything appended for it (a Kafka fetch may answer
        empty while the newest records are on their way)."""
        for runner in self.runners:
            wanted = self.appended[runner.projection.name]
            deadline = time.monotonic() + 30
            while sum(runner.position().values()) < wanted:
                assert time.monotonic() < deadline, f"{runner.projection.name} fell behind"
                runner.catch_up()

    def close(self) -> None:
        for event_log in self.logs:
            event_log.close()
        self.outcomes.close()
        self.integrator.close()


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    built = Live(settings)
    yield built
    built.close()


def test_the_performance_view_in_each_deployment(live: Live, settings: Settings) -> None:
    events = history().in_time_order()
    seen: dict[str, dict[str, Any]] = {}
    fed = 0
    for day in SNAPSHOT_DAYS:
        upto = as_of_moment(day)
        due = [e for e in events[fed:] if e.occurred_at <= upto]
        live.append(due)
        fed += len(due)
        live.sync()
        seen[day] = integrator_snapshot(live.integrator, upto.date())
    live.append(events[fed:])
    live.sync()

    # The figures worked out by hand.
    ag1 = get_agreement_performance(live.outcomes, AG1, TODAY)
    assert ag1 is not None
    assert (ag1.rag, ag1.rag_period, ag1.latest_achievement_pct, ag1.payments_total,
            ag1.spend_total, ag1.budget, [(v.unit, v.quantity) for v in ag1.delivery_volumes],
            costs(ag1)) == (
        Rag.GREEN, "2026-Q3", D("126.1"), D("5998.50"), D("1200.00"), D("60000.00"),
        [("people", D("30")), ("sessions", D("30"))],
        [(M2, D("120.00"), "spend"), (M1, D("892.19"), "spend")])
    assert [(a.period, a.achievement_pct, a.rag) for a in ag1.achievement] == [
        ("2026-Q1", D("100.0"), Rag.GREEN), ("2026-Q2", D("94.2"), Rag.AMBER),
        ("2026-Q3", D("126.1"), Rag.GREEN)]
    assert [(v.period, v.activity_type, v.quantity) for v in ag1.deliveries] == [
        ("2026-Q1", "sessions_delivered", D("24")), ("2026-Q2", "people_reached", D("30")),
        ("2026-Q2", "sessions_delivered", D("6"))]
    expected = [(AG1, Rag.GREEN, [(M2, D("120.00"), "spend"), (M1, D("892.19"), "spend")]),
                (AG5, Rag.GREEN, [(M2, D("17.25"), "payments")]),
                (AG4, Rag.AMBER, [(M2, D("15.26"), "payments")]),
                (AG2, Rag.RED, [(M1, D("510.22"), "spend")]), (AG3, None, [])]
    assert [(s.agreement_id, s.rag, costs(s))
            for s in list_agreement_performance(live.outcomes, today=TODAY)] == expected
    assert [(r.agreement_id, r.rag, costs(r))
            for r in network_performance(live.integrator, today=TODAY)] == expected
    final_outcomes = outcomes_snapshot(live.outcomes)
    final_integrator = integrator_snapshot(live.integrator)
    assert len({str(s) for s in (*seen.values(), final_integrator)}) == len(SNAPSHOT_DAYS)

    # Rebuilt from empty read models over the full log: the same answers.
    for runner in live.runners:
        runner.rebuild()
    live.sync()
    assert outcomes_snapshot(live.outcomes) == final_outcomes
    assert integrator_snapshot(live.integrator) == final_integrator

    # As of each date: what the live integrator answered on that date.
    reader = open_event_log(settings)
    live.logs.append(reader)
    for day, then in seen.items():
        with state_as_of(reader, None, day) as db:
            assert integrator_snapshot(db, as_of_moment(day).date()) == then, day
    with state_as_of(reader, None, "2030-01-01") as db:
        assert integrator_snapshot(db) == final_integrator
