"""Results payments across the real log, in both deployments (embedded: SQLite stores and the
file log; scale-out: PostgreSQL and Kafka with several partitions): the outcomes service's
payments process settles a quarter from its own store and publishes it; the integrator's
results payments process reads it from the outcomes topic and makes it due on the agreement
the integrator holds; the council pays it, and the integrator's commissioning read model,
fed from the integrator topic, counts the same pounds for the agreement, the need and the
partners' split. A late measurement and a correction recalculate the quarter: a further
amount due, then a credit recovered. Reading the outcomes topic again records nothing more.

The figures are those of tests/integration/test_payments_deployments.py, worked by hand there:
2025-Q1 £1,300.00, recalculated to £4,300.00 (+£3,000.00, late measurement), then to £3,000.00
(-£1,300.00, delivery correction). One party, so each due item is the provider's whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any
from uuid import UUID

import pytest

from council.kernel.context import CommandContext, command_context
from council.kernel.contracts.outcomes import Channel
from council.kernel.contracts.provider_registry import ProviderStatus
from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.identity import Principal, Role
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.application import Integrator
from council.services.integrator.domain.commands import (
    Activation,
    DelegationLimits,
    DuePayment,
    NewAgreement,
    NewContribution,
    NewDecision,
    NewNeed,
    OptionsAppraisal,
    Signature,
)
from council.services.integrator.processes.results_payments import ResultsPaymentsProcess
from council.services.integrator.projections.agreement_queries import get_agreement
from council.services.integrator.projections.commissioning import CommissioningProjection
from council.services.integrator.projections.need_queries import get_need, spend_by_partner
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.commands import (
    Attribution,
    DeliveryIn,
    NewMeasurement,
    RateCardIn,
)
from council.services.outcomes.processes.payments import PaymentsProcess
from council.services.outcomes.projections.agreements import AgreementsProjection, lookup_agreements
from council.services.outcomes.projections.deliveries import DeliveriesProjection
from tests.integration.test_payments_deployments import PROVIDER, define_obesity

LEAD = "Northshire County Council"
ADMIN = Principal("t1", Role.INTEGRATOR_ADMIN, "Lee Morgan (Finance)")
DEADLINE_SECONDS = 60.0
TODAY = datetime.now(UTC).date()


@dataclass
class Parts:
    settings: Settings
    integrator: Integrator
    outcomes: Outcomes
    integrator_relay: OutboxRelay
    outcomes_relay: OutboxRelay
    integrator_views: Database
    outcomes_views: Database
    commissioning: ProjectionRunner
    deliveries: ProjectionRunner
    agreements: ProjectionRunner
    payments: PaymentsProcess
    results: ResultsPaymentsProcess
    agreement_id: UUID
    need_id: UUID

    def run(self) -> None:
        """Once round: the outcomes side settles and publishes; the integrator side makes it
        due, publishes, and its read model applies it (Kafka may hand a batch over late)."""
        for _ in range(3):
            self.integrator_relay.drain()
            self.agreements.catch_up()
            self.outcomes_relay.drain()
            self.deliveries.catch_up()
            self.payments.catch_up()
            self.outcomes_relay.drain()
            self.results.catch_up()
            self.integrator_relay.drain()
            self.commissioning.catch_up()
            time.sleep(0.2 if self.settings.log_url.startswith("kafka") else 0)

    def until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE_SECONDS
        self.run()
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not reached; due items: "
                            f"{self.integrator.agreement(self.agreement_id).results_due}")
            time.sleep(0.1)
            self.run()


def commission(integrator: Integrator) -> tuple[UUID, UUID]:
    """A need pooled with the ICB (75% / 25%), one award to the provider, the agreement signed
    and in force today, its term 2025-26, its results paid quarterly."""
    integrator.provider_status = {PROVIDER: ProviderStatus.APPROVED}.get
    with command_context(CommandContext(actor=ADMIN.actor, organisation="council")):
        integrator.set_delegation_limits(LEAD, DelegationLimits.model_validate({
            "limits": [{"role": "integrator_admin", "kind": "spend"},
                       {"role": "integrator_admin", "kind": "award"}],
            "reason": "Financial regulations"}), ADMIN)
        need_id = integrator.define_need(NewNeed.model_validate({
            "title": "Healthy weight", "service_area": "weight-management",
            "population": {"description": "Young people"},
            "outcomes": [{"description": "Fewer teenagers living with obesity"}],
            "budget_envelope": "75000.00", "starts_on": "2025-01-01", "ends_on": "2027-03-31",
            "lead_organisation": LEAD}))
        integrator.pledge_contribution(need_id, NewContribution(partner="Northshire ICB",
                                                                amount=D("25000.00")))
        integrator.appraise_options(need_id, OptionsAppraisal.model_validate({
            "options": [{"option": "mixed", "description": "a contract"}],
            "recommended": "mixed", "rationale": "reaches families"}))
        _, (award_id,) = integrator.decide(need_id, NewDecision.model_validate({
            "awards": [{"title": "Programme", "arrangement_type": "formal_contract",
                        "provider_ids": [str(PROVIDER)], "allocation": "100000.00"}],
            "rationale": "best value", "decision_maker": "Cabinet"}), ADMIN)
        agreement_id = integrator.draft_agreement(NewAgreement.model_validate({
            "need_id": str(need_id), "award_id": award_id, "starts_on": "2025-01-01",
            "ends_on": "2026-12-31", "exit_plan": "hand over",
            "reward_terms": {"payment_by_results_share_pct": "10",
                             "payment_frequency": "quarterly"}}))
        integrator.sign_agreement(agreement_id, Signature(signed_on=TODAY,
                                                          signatories=["the council"]))
        integrator.activate(agreement_id, Activation(activated_on=TODAY))
    return need_id, agreement_id


@pytest.fixture
def settings_options() -> dict[str, Any]:
    return {"relay_interval": 0.01}  # tests that wait on many relay round trips


@pytest.fixture
def parts(settings: Settings) -> Iterator[Parts]:
    integrator = open_application(Integrator, settings)
    outcomes = open_application(Outcomes, settings)
    need_id, agreement_id = commission(integrator)

    integrator_views = open_database(settings, "integrator_views")
    outcomes_views = open_database(settings, "outcomes_views")
    # The agreement as the outcomes service learns it: from the integrator's topic.
    outcomes.agreements = lambda ids: lookup_agreements(outcomes_views, ids)
    made = Parts(
        settings, integrator, outcomes,
        OutboxRelay(integrator, open_event_log(settings), store_database(settings,
                                                                         "integrator")),
        OutboxRelay(outcomes, open_event_log(settings), store_database(settings, "outcomes")),
        integrator_views, outcomes_views,
        ProjectionRunner(CommissioningProjection(), integrator_views, open_event_log(settings)),
        ProjectionRunner(DeliveriesProjection(), outcomes_views, open_event_log(settings)),
        ProjectionRunner(AgreementsProjection(), outcomes_views, open_event_log(settings)),
        PaymentsProcess(outcomes, outcomes_views, open_event_log(settings),
                        today=lambda: date(2025, 4, 10)),
        ResultsPaymentsProcess(integrator, integrator_views, open_event_log(settings)),
        agreement_id, need_id)
    try:
        made.until("the agreement in force for the outcomes service", lambda: bool(
            outcomes.agreements([agreement_id])))
        yield made
    finally:
        for runner in (made.commissioning, made.deliveries, made.agreements,
                       made.payments.runner, made.results.runner):
            runner.event_log.close()
        for relay in (made.integrator_relay, made.outcomes_relay):
            relay.event_log.close()
            relay.db.close()
        integrator_views.close()
        outcomes_views.close()
        integrator.close()
        outcomes.close()


def agree_terms(app: Outcomes, agreement_id: UUID, measure_id: UUID) -> None:
    """As tests/integration/test_payments_deployments.py agrees them, for this agreement."""
    app.attribute(agreement_id, Attribution(measure_id=measure_id, weight=D("0.6")))
    app.agree_rate_card(agreement_id, RateCardIn.model_validate({
        "periodicity": "quarterly",
        "delivery_rates": [{"activity_type": "sessions_delivered", "rate": "25",
                            "threshold": "40", "cap": "1500"}],
        "outcome_rates": [{"measure_id": str(measure_id), "rate": "10000"}],
        "bands": [{"min_pct": "110", "adjustment": "2000", "label": "target exceeded"},
                  {"min_pct": "0", "max_pct": "80", "adjustment": "-3000",
                   "label": "below 80% of target"}],
        "provider_risk_pct": "40",
    }))


def deliver(app: Outcomes, agreement_id: UUID, key: str, quantity: int, start: str, end: str,
            corrects: UUID | None = None) -> UUID:
    report = DeliveryIn(idempotency_key=key, agreement_id=agreement_id,
                        activity_type="sessions_delivered", quantity=D(quantity),
                        period_start=date.fromisoformat(start),
                        period_end=date.fromisoformat(end), corrects=corrects)
    (outcome,) = app.report_deliveries(PROVIDER, [(0, report)], Channel.HTTP).outcomes
    assert outcome.error is None, outcome.error
    assert outcome.delivery_id is not None
    return outcome.delivery_id


def views_say(parts: Parts) -> dict[str, Any]:
    agreement = get_agreement(parts.integrator_views, parts.agreement_id)
    need = get_need(parts.integrator_views, parts.need_id)
    split = spend_by_partner(parts.integrator_views, parts.need_id)
    assert agreement is not None
    assert need is not None
    assert split is not None
    return {"agreement": agreement.spent, "need": need.spent,
            "split": [p.spent for p in split.partners],
            "due": [(d.due_id, d.amount, d.status) for d in agreement.results_due]}


def pay_everything_due(parts: Parts) -> None:
    for due_id, item in parts.integrator.agreement(parts.agreement_id).results_due.items():
        if not item["paid"]:
            with command_context(CommandContext(actor=ADMIN.actor, organisation="council")):
                parts.integrator.pay_results_due(parts.agreement_id, due_id,
                                                 DuePayment(reference=f"REM-{due_id}"), ADMIN)


def test_results_payments_flow_into_spend_across_the_log(parts: Parts) -> None:
    outcomes, agreement_id = parts.outcomes, parts.agreement_id
    measure_id = define_obesity(outcomes)
    agree_terms(outcomes, agreement_id, measure_id)
    deliver(outcomes, agreement_id, "jan", 30, "2025-01-06", "2025-01-31")
    march = deliver(outcomes, agreement_id, "mar", 22, "2025-03-03", "2025-03-28")

    # Settled by the outcomes service, due on the integrator's agreement.
    parts.until("the first due item", lambda: len(
        parts.integrator.agreement(agreement_id).results_due) == 1)
    (first,) = parts.integrator.agreement(agreement_id).results_due.values()
    assert (first["period"], first["amount"], first["reason"]) == (
        "2025-Q1", D("1300.00"), "results payment calculated")
    pay_everything_due(parts)
    parts.until("£1,300.00 spent in the read model",
                lambda: views_say(parts)["agreement"] == D("1300.00"))
    # The need and the partners' split (75% / 25%) count the same pounds.
    assert views_say(parts)["need"] == D("1300.00")
    assert views_say(parts)["split"] == [D("975.00"), D("325.00")]

    # A late measurement: £3,000.00 further due; a correction: £1,300.00 to recover.
    outcomes.record_measurement(measure_id, NewMeasurement(period="2025-Q1", value=D("20.3"),
                                                           source="NCMP"))
    parts.until("the second due item", lambda: len(
        parts.integrator.agreement(agreement_id).results_due) == 2)
    deliver(outcomes, agreement_id, "mar-fixed", 8, "2025-03-03", "2025-03-28",
            corrects=march)
    parts.until("the third due item", lambda: len(
        parts.integrator.agreement(agreement_id).results_due) == 3)
    pay_everything_due(parts)
    parts.until("£3,000.00 spent in the read model",
                lambda: views_say(parts)["agreement"] == D("3000.00"))
    said = views_say(parts)
    assert said["need"] == D("3000.00")
    assert said["split"] == [D("2250.00"), D("750.00")]
    assert [(amount, status) for _, amount, status in said["due"]] == [
        (D("1300.00"), "paid"), (D("3000.00"), "paid"), (D("-1300.00"), "recovered")]
    reasons = [d["reason"] for d in parts.integrator.agreement(agreement_id)
               .results_due.values()]
    assert reasons == ["results payment calculated", "late measurement for 2025-Q1",
                       "delivery correction"]

    # Reading the outcomes topic again (a rebuilt position) records nothing more.
    before = parts.integrator.recorder.max_notification_id()
    parts.results.runner.rebuild()
    parts.run()
    assert parts.integrator.recorder.max_notification_id() == before
    assert parts.results.filed() == []
