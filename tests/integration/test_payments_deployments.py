"""The payments process in both deployments (embedded: SQLite stores and the file log;
scale-out: PostgreSQL and Kafka with several partitions, where events of different streams may
arrive in any order). An agreement's terms, deliveries and measurements go in through the
outcomes application; the process settles the quarter, then recalculates it after a late
measurement and after a delivery correction, each with its difference worked out by hand; two
processes racing on the same read models (two service instances) record each payment once; and
the process running inside the service does the same on its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import pytest

from council.kernel.contracts.outcomes import Channel
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.runtime import Runtime
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import AgreementInfo
from council.services.outcomes.domain.aggregates import terms_id_for
from council.services.outcomes.domain.commands import (
    Attribution,
    DeliveryIn,
    NewMeasure,
    NewMeasurement,
    RateCardIn,
)
from council.services.outcomes.processes.payments import PaymentsProcess
from council.services.outcomes.projections.deliveries import DeliveriesProjection
from council.services.outcomes.service import SPEC
from tests.waiting import eventually

PROVIDER = UUID("0b6a7c1e-2f4d-4e8a-9c3b-5d7e9f1a2b3c")
AGREEMENT = UUID("6c5b4a3f-2e1d-4c0b-9a8f-7e6d5c4b3a29")
DEADLINE_SECONDS = 30.0


def lookup(agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]:
    """The agreement as the agreements read model would give it: active, its term 2025-26."""
    return {i: AgreementInfo(i, "active", frozenset({PROVIDER}), date(2025, 1, 1),
                             date(2026, 12, 31), "quarterly")
            for i in agreement_ids if i == AGREEMENT}


def payments(app: Outcomes) -> list[EventEnvelope]:
    stored = app.recorder.select_events(terms_id_for(AGREEMENT))
    return [e for e in (app.to_envelope(s) for s in stored if app.is_published(s))
            if e.type.startswith("Payment")]


def summary(app: Outcomes) -> list[tuple[str, str, D, D | None, str | None]]:
    return [(e.type, e.data["period"], D(e.data["total"]),
             D(e.data["difference"]) if "difference" in e.data else None,
             e.data.get("reason")) for e in payments(app)]


def define_obesity(app: Outcomes) -> UUID:
    measure_id, _ = app.define_measure(NewMeasure(
        name="Teenage obesity rate", unit="%", direction="lower_is_better",
        baseline=D("21.0"), baseline_period="2024-Q4",
        trajectory=[{"period": "2025-Q1", "target": D("20.0")}],
    ))
    return measure_id


def agree_terms(app: Outcomes, measure_id: UUID) -> None:
    """Quarterly: £25.00 a session from 40 sessions (cap £1,500.00); £10,000.00 a point of
    obesity improvement at weight 0.6; under 80% of target a £3,000.00 penalty, 40% of it the
    provider's; 110% and over a £2,000.00 bonus."""
    app.attribute(AGREEMENT, Attribution(measure_id=measure_id, weight=D("0.6")))
    app.agree_rate_card(AGREEMENT, RateCardIn.model_validate({
        "periodicity": "quarterly",
        "delivery_rates": [{"activity_type": "sessions_delivered", "rate": "25",
                            "threshold": "40", "cap": "1500"}],
        "outcome_rates": [{"measure_id": str(measure_id), "rate": "10000"}],
        "bands": [{"min_pct": "110", "adjustment": "2000", "label": "target exceeded"},
                  {"min_pct": "0", "max_pct": "80", "adjustment": "-3000",
                   "label": "below 80% of target"}],
        "provider_risk_pct": "40",
    }))


def deliver(app: Outcomes, key: str, quantity: int, start: str, end: str,
            corrects: UUID | None = None) -> UUID:
    report = DeliveryIn(idempotency_key=key, agreement_id=AGREEMENT,
                        activity_type="sessions_delivered", quantity=D(quantity),
                        period_start=date.fromisoformat(start),
                        period_end=date.fromisoformat(end), corrects=corrects)
    (outcome,) = app.report_deliveries(PROVIDER, [(0, report)], Channel.HTTP).outcomes
    assert outcome.error is None, outcome.error
    assert outcome.delivery_id is not None
    return outcome.delivery_id


@dataclass
class Parts:
    settings: Settings
    app: Outcomes
    relay: OutboxRelay
    views: Database
    deliveries: ProjectionRunner
    processes: list[PaymentsProcess]

    def process(self) -> PaymentsProcess:
        made = PaymentsProcess(self.app, self.views, open_event_log(self.settings),
                               today=lambda: date(2025, 4, 10))
        self.processes.append(made)
        return made

    def run(self, *processes: PaymentsProcess) -> None:
        self.relay.drain()
        # Kafka may hand a just-appended batch over a moment later: read until both the
        # deliveries read model and the process have seen everything the relay published.
        for _ in range(3):
            self.deliveries.catch_up()
            for process in processes:
                process.catch_up()
            time.sleep(0.2 if self.settings.log_url.startswith("kafka") else 0)
        self.deliveries.catch_up()
        for process in processes:
            process.catch_up()


@pytest.fixture
def settings_options() -> dict[str, Any]:
    return {"relay_interval": 0.01}  # tests that wait on many relay round trips


@pytest.fixture
def parts(settings: Settings) -> Iterator[Parts]:
    app = open_application(Outcomes, settings)
    app.agreements = lookup
    views = open_database(settings, "outcomes_views")
    made = Parts(settings, app,
                 OutboxRelay(app, open_event_log(settings), store_database(settings, "outcomes")),
                 views, ProjectionRunner(DeliveriesProjection(), views, open_event_log(settings)),
                 [])
    try:
        yield made
    finally:
        for process in made.processes:
            process.runner.event_log.close()
        made.relay.event_log.close()
        made.deliveries.event_log.close()
        made.relay.db.close()
        views.close()
        app.close()


def wait_for(parts: Parts, count: int, *processes: PaymentsProcess) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    parts.run(*processes)
    while len(payments(parts.app)) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} payment events not reached; have {summary(parts.app)}")
        time.sleep(0.1)
        parts.run(*processes)


def test_payments_are_settled_and_recalculated_in_both_deployments(parts: Parts) -> None:
    app = parts.app
    measure_id = define_obesity(app)
    agree_terms(app, measure_id)
    deliver(app, "jan", 30, "2025-01-06", "2025-01-31")
    march = deliver(app, "mar", 22, "2025-03-03", "2025-03-28")
    process = parts.process()

    wait_for(parts, 1, process)
    # 52 sessions x £25.00 = £1,300.00; no Q1 measurement yet. Total £1,300.00
    assert summary(app) == [("PaymentCalculated", "2025-Q1", D("1300.00"), None, None)]

    # Late: 21.0 - 20.3 = 0.7 x £10,000.00 x 0.6 = £4,200.00; 70% of target: penalty
    # -£3,000.00 x 40% = -£1,200.00. £1,300.00 + £4,200.00 - £1,200.00 = £4,300.00 (+£3,000.00)
    app.record_measurement(measure_id, NewMeasurement(period="2025-Q1", value=D("20.3"),
                                                      source="NCMP"))
    wait_for(parts, 2, process)
    # Corrected: March had 8 sessions, not 22: 38 < 40, the sessions line pays nothing.
    # £4,200.00 - £1,200.00 = £3,000.00 (-£1,300.00)
    deliver(app, "mar-fixed", 8, "2025-03-03", "2025-03-28", corrects=march)
    wait_for(parts, 3, process)

    assert summary(app) == [
        ("PaymentCalculated", "2025-Q1", D("1300.00"), None, None),
        ("PaymentRecalculated", "2025-Q1", D("4300.00"), D("3000.00"),
         "late measurement for 2025-Q1"),
        ("PaymentRecalculated", "2025-Q1", D("3000.00"), D("-1300.00"), "delivery correction"),
    ]
    # Replaying the log into a fresh position recalculates everything and records nothing.
    before = payments(app)
    process.runner.rebuild()
    parts.run(process)
    assert payments(app) == before
    assert process.pending() == []


def test_two_processes_racing_record_each_payment_once(parts: Parts) -> None:
    app = parts.app
    measure_id = define_obesity(app)
    agree_terms(app, measure_id)
    deliver(app, "jan", 30, "2025-01-06", "2025-01-31")
    deliver(app, "mar", 22, "2025-03-03", "2025-03-28")
    app.record_measurement(measure_id, NewMeasurement(period="2025-Q1", value=D("19.9"),
                                                      source="NCMP"))
    parts.relay.drain()
    parts.deliveries.catch_up()
    one, two = parts.process(), parts.process()
    stop = threading.Event()
    threads = [threading.Thread(target=p.run, args=(stop, 0.01)) for p in (one, two)]
    for thread in threads:
        thread.start()
    try:
        eventually(lambda: (len(payments(app)), one.pending()),
                   lambda found: found[0] >= 1 and found[1] == [])
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    # £1,300.00 for 52 sessions; 21.0 - 19.9 = 1.1 x £10,000.00 x 0.6 = £6,600.00; 110% of
    # target: bonus £2,000.00. Total £9,900.00, recorded once.
    assert summary(app) == [("PaymentCalculated", "2025-Q1", D("9900.00"), None, None)]


def test_the_service_runs_the_process_itself(settings: Settings) -> None:
    runtime = Runtime(SPEC, settings)
    app = runtime.app
    assert isinstance(app, Outcomes)
    app.agreements = lookup
    try:
        runtime.start()
        measure_id = define_obesity(app)
        agree_terms(app, measure_id)
        deliver(app, "jan", 45, "2025-01-06", "2025-01-31")
        # 45 sessions x £25.00 = £1,125.00; no measurement: £1,125.00
        eventually(lambda: summary(app),
                   lambda found: found == [("PaymentCalculated", "2025-Q1", D("1125.00"),
                                            None, None)])
    finally:
        runtime.close()
