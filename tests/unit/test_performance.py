"""The performance view, built from the shared log on both sides (the outcomes service's detailed
view and the integrator's compact one): every figure checked against values worked out by hand
(target against actual with revisions, corrections of delivery reports, weighted achievement,
cost per outcome, RAG exactly at its boundaries), the same answers whatever order the streams
arrive in and with republished duplicates, a rebuild from empty equal to the live view, the
integrator's view "as of" past dates equal to what it answered on those dates, and the HTTP
endpoints of both services in process.

The worked example (all periods calendar quarters of 2026 unless named):

M1 teenage obesity rate, lower is better, baseline 20.0; targets Q1 19.0, Q2 18.0, Q3 17.0,
Q4 16.0. Measured 2025-Q4 20.0; Q1 19.5 then revised to 19.0; Q2 18.2; Q3 17.31.
  Q1: 19.0 meets 19.0                              -> green (exactly at the target)
  Q2: targeted 2.0, achieved 1.8, short 0.2 = 10%   -> amber (exactly at the boundary)
  Q3: targeted 3.0, achieved 2.69, short 0.31 > 0.3 -> red
M2 people in work after support, higher is better, baseline 100; targets Q1 110, Q2 120, Q3 130.
Measured Q1 110 (green), Q2 119 (short 1 of 20: amber), Q3 140 (green).

AG1 (term 2026): M1 weight 0.5, M2 weight 0.25 (first attributed 0.3, then changed).
  Q1: achieved 0.5x1.0 + 0.25x10 = 3.0 of 3.0               -> 100.0% green
  Q2: achieved 0.5x1.8 + 0.25x19 = 5.65 of 0.5x2 + 0.25x20 = 6.0 -> 94.2% amber
  Q3: achieved 0.5x2.69 + 0.25x40 = 11.345 of 1.5 + 7.5 = 9.0     -> 126.1% green (overall)
  Payments Q1 1,000.00 recalculated to 1,200.00, Q2 1,500.00, Q3 3,298.50 = 5,998.50; spend
  500.00 + 700.00 = 1,200.00.
  Cost per outcome, per measure in its own unit, the money being the spend (1,200.00):
    M1: 20.0 (2025-Q4) to 17.31 (2026-Q3) = 2.69 points reduced x 0.5 = 1.345 attributed:
        1,200.00 / 1.345 = 892.1933... -> 892.19 per percentage point reduced
    M2: 100 (2025-Q4) to 140 (2026-Q3) = 40 people x 0.25 = 10: 1,200.00 / 10 = 120.00 per
        person raised
  Deliveries (quarterly rate card): Q1 sessions 10 + 12 corrected to 14 = 24 (two reports);
  Q2 people reached 30 (a report for 25 Mar - 5 Apr counts where it ends); Q2 sessions 8
  corrected to 5 corrected to 6 = 6. By unit: 30 people, 30 sessions (never added together).
AG2 (term 2026): M1 weight 1. Q1 100.0% green, Q2 1.8/2.0 = 90.0% amber (exactly at the
  boundary), Q3 2.69/3.0 = 89.7% red (overall). No payments: spend 1,000.00 + 372.50 =
  1,372.50 / (1 x 2.69) = 510.2230... -> 510.22 per percentage point reduced.
AG3: nothing from the outcomes service; spend 800.00 -> no RAG, nothing attributed to cost.
AG4 (ends 30 Sep 2026, ended early on 30 Jun): M2 weight 1, monthly rate card. Q1 green,
  Q2 19/20 = 95.0% amber (overall; Q3 is after it ended). No spend: payments 290.00 /
  (1 x 19, to 119 in 2026-Q2, the last measured period of its term) = 15.263... -> 15.26 per
  person raised. Delivery: meals 100 in 2026-05.
AG5 (term 2026): M2 weight 1. Q3 40/30 = 133.3% green. Payments 100 + 190 + 400 = 690.00 /
  (1 x 40) = 17.25 per person raised.
Which arrangements work, best first by RAG, then title (costs in different units do not rank
agreements): AG1 (green, "Active families"), AG5 (green, "Jobs club"), AG4 (amber), AG2 (red),
AG3 (none).

Every view is read for a fixed day, TODAY (1 December 2026: 2026-Q4 is still running), so what
is provisional does not depend on when the tests run.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from council.kernel.contracts import all_specs
from council.kernel.contracts import integrator as ci
from council.kernel.contracts import outcomes as co
from council.kernel.envelope import EventEnvelope
from council.kernel.performance_rule import (
    MeasureFacts,
    Rag,
    achievement_pct,
    achievement_rag,
    cost_unit,
    measure_rag,
    outcome_cost,
    volumes_by_unit,
)
from council.kernel.periods import period_bounds, period_of
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.projections import projections as integrator_projections
from council.services.integrator.projections.asof import as_of_moment, state_as_of
from council.services.integrator.projections.market import network_state
from council.services.integrator.projections.performance import (
    network_performance,
    performance_evidence,
    uuid_as_given,
)
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.domain.aggregates import terms_id_for
from council.services.outcomes.projections.performance import PerformanceProjection
from council.services.outcomes.projections.performance_views import (
    get_agreement_performance,
    get_measure_performance,
    list_agreement_performance,
)
from council.services.outcomes.service import SPEC as OUTCOMES
from tests.waiting import eventually

D = Decimal
GREEN, AMBER, RED = Rag.GREEN, Rag.AMBER, Rag.RED
TODAY = date(2026, 12, 1)
NS = UUID("5d7e1c3a-8b2f-4e6d-9a1c-0f3e5b7d9c21")
SPECS = {spec.data: spec for spec in all_specs()}


def uid(name: str) -> UUID:
    return uuid5(NS, name)


M1, M2 = uid("measure-obesity"), uid("measure-work")
AG1, AG2, AG3, AG4, AG5 = (uid(f"agreement-{i}") for i in range(1, 6))
P1, P2, P3 = (uid(f"provider-{i}") for i in range(1, 4))
N1 = uid("need-1")
DEL = {name: uid(f"delivery-{name}") for name in (
    "d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8")}


# --------------------------------------------------------------------------- the history


class History:
    """Envelopes built from the contract models, numbered per stream as the services number
    them. Build each stream's events in the order they happened."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []
        self._positions: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, day: str, data: BaseModel, actor: str = "commissioner:jo") -> None:
        spec = SPECS[type(data)]
        stream = str(getattr(data, spec.stream_field))
        self._positions[(spec.source, stream)] += 1
        position = self._positions[(spec.source, stream)]
        moment = datetime.fromisoformat(f"{day}T10:00:00+00:00")
        self.events.append(EventEnvelope(
            event_id=uid(f"{spec.source}/{stream}/{position}"), type=spec.type,
            schema_version=spec.version, source=spec.source, stream_id=stream,
            stream_position=position, occurred_at=moment, recorded_at=moment, actor=actor,
            data=data.model_dump(mode="json"),
        ))

    def in_time_order(self) -> list[EventEnvelope]:
        return sorted(self.events, key=lambda e: e.occurred_at)


def _target(period: str, value: str) -> co.TrajectoryPoint:
    return co.TrajectoryPoint(period=period, target=D(value))


def _measured(h: History, day: str, measure: UUID, mid: str, period: str, value: str,
              revises: str | None = None) -> None:
    h.add(day, co.MeasurementRecorded(measure_id=measure, measurement_id=mid, period=period,
                                      value=D(value), source="survey", revises=revises))


def _paid(h: History, day: str, agreement: UUID, period: str, total: str,
          pct: str | None = None) -> None:
    h.add(day, co.PaymentCalculated(
        terms_id=terms_id_for(agreement), agreement_id=agreement, period=period,
        calculation_id=f"{period}-1", total=D(total),
        lines=[co.PaymentLine(description="Outcome", basis="by hand", amount=D(total))],
        achievement_pct=D(pct) if pct else None))


def _delivered(h: History, day: str, name: str, agreement: UUID, provider: UUID,
               activity: str, unit: str, quantity: str, start: str, end: str,
               corrects: str | None = None) -> None:
    h.add(day, co.DeliveryReported(
        delivery_id=DEL[name], agreement_id=agreement, provider_id=provider,
        activity_type=activity, quantity=D(quantity), unit=unit,
        period_start=date.fromisoformat(start), period_end=date.fromisoformat(end),
        idempotency_key=name, corrects=DEL[corrects] if corrects else None,
        channel=co.Channel.HTTP), actor="provider:self")


def _spent(h: History, day: str, agreement: UUID, provider: UUID, spend_id: str, period: str,
           amount: str) -> None:
    h.add(day, ci.SpendRecorded(agreement_id=agreement, spend_id=spend_id, provider_id=provider,
                                amount=D(amount), period=period))


def history() -> History:
    """The worked example of the module docstring."""
    h = History()
    h.add("2025-11-01", ci.NeedDefined(
        need_id=N1, title="Healthy lives", service_area="weight-management",
        population=ci.Population(description="young people"),
        outcomes=[ci.OutcomeSought(outcome_id="o1", description="Less obesity")],
        budget_envelope=D("500000"), starts_on=date(2026, 1, 1), ends_on=date(2028, 12, 31),
        lead_organisation="Northshire County Council"))
    h.add("2025-12-01", co.OutcomeMeasureDefined(
        measure_id=M1, name="Teenage obesity rate", unit="%",
        direction=co.Direction.LOWER_IS_BETTER, baseline=D("20.0"), baseline_period="2025-Q4",
        trajectory=[_target("2026-Q1", "19.0"), _target("2026-Q2", "18.0"),
                    _target("2026-Q3", "17.0"), _target("2026-Q4", "16.0")]))
    h.add("2025-12-01", co.OutcomeMeasureDefined(
        measure_id=M2, name="People in work after support", unit="people",
        direction=co.Direction.HIGHER_IS_BETTER, baseline=D("100"), baseline_period="2025-Q4",
        trajectory=[_target("2026-Q1", "110"), _target("2026-Q2", "120"),
                    _target("2026-Q3", "130")]))
    agreements = (
        (AG1, "Active families", [(P1, "50000.00")], date(2026, 12, 31)),
        (AG2, "School nurses", [(P2, "30000.00")], date(2026, 12, 31)),
        (AG3, "Healthy cooking", [(P3, "20000.00")], date(2026, 12, 31)),
        (AG4, "Work coaching pilot", [(P2, "10000.00")], date(2026, 9, 30)),
        (AG5, "Jobs club", [(P1, "6000.00"), (P3, "4000.00")], date(2026, 12, 31)),
    )
    for agreement, title, parties, ends_on in agreements:
        budget = sum((D(a) for _, a in parties), D(0))
        h.add("2025-12-10", ci.AgreementDrafted(
            agreement_id=agreement, need_id=N1, title=title,
            arrangement_type=ci.ArrangementType.GRANT,
            parties=[ci.Party(provider_id=p, allocation=D(a)) for p, a in parties],
            starts_on=date(2026, 1, 1), ends_on=ends_on, budget=budget,
            exit_plan="hand back"))
        h.add("2025-12-20", ci.AgreementActivated(agreement_id=agreement,
                                                  activated_on=date(2026, 1, 1)))
    for agreement, measure, weight in ((AG1, M1, "0.5"), (AG1, M2, "0.3"), (AG2, M1, "1"),
                                       (AG4, M2, "1"), (AG5, M2, "1")):
        h.add("2026-01-05", co.OutcomeAttributed(
            terms_id=terms_id_for(agreement), agreement_id=agreement, measure_id=measure,
            weight=D(weight)))
    h.add("2026-01-06", co.RateCardAgreed(
        terms_id=terms_id_for(AG1), agreement_id=AG1, periodicity=co.Periodicity.QUARTERLY,
        delivery_rates=[co.DeliveryRateTerm(activity_type="sessions_delivered", rate=D("20"))]))
    h.add("2026-01-06", co.RateCardAgreed(
        terms_id=terms_id_for(AG4), agreement_id=AG4, periodicity=co.Periodicity.MONTHLY,
        delivery_rates=[co.DeliveryRateTerm(activity_type="meals", rate=D("2"))]))
    _measured(h, "2026-01-20", M1, "m1-2025q4", "2025-Q4", "20.0")
    h.add("2026-02-01", co.OutcomeAttributed(
        terms_id=terms_id_for(AG1), agreement_id=AG1, measure_id=M2, weight=D("0.25")))
    _delivered(h, "2026-02-02", "d1", AG1, P1, "sessions_delivered", "sessions", "10",
               "2026-01-05", "2026-01-31")
    _spent(h, "2026-02-28", AG1, P1, "s1", "2026-02", "500.00")
    h.add("2026-03-01", ci.AgreementVaried(
        agreement_id=AG1, variation_id="v1", kind=ci.VariationKind.GROWTH,
        budget_change=D("10000.00"), new_budget=D("60000.00"), reason="demand is up"))
    _delivered(h, "2026-03-02", "d2", AG1, P1, "sessions_delivered", "sessions", "12",
               "2026-02-01", "2026-02-28")
    _delivered(h, "2026-03-09", "d3", AG1, P1, "sessions_delivered", "sessions", "14",
               "2026-02-01", "2026-02-28", corrects="d2")
    _spent(h, "2026-03-31", AG2, P2, "s1", "2026-03", "1000.00")
    _delivered(h, "2026-04-06", "d4", AG1, P1, "people_reached", "people", "30",
               "2026-03-25", "2026-04-05")
    _measured(h, "2026-04-20", M1, "m1-q1a", "2026-Q1", "19.5")
    _measured(h, "2026-04-20", M2, "m2-q1", "2026-Q1", "110")
    _paid(h, "2026-04-25", AG1, "2026-Q1", "1000.00", "91.7")
    _paid(h, "2026-04-25", AG4, "2026-Q1", "290.00", "100.0")
    _paid(h, "2026-04-25", AG5, "2026-Q1", "100.00", "100.0")
    _spent(h, "2026-04-30", AG3, P3, "s1", "2026-04", "800.00")
    _delivered(h, "2026-05-02", "d5", AG1, P1, "sessions_delivered", "sessions", "8",
               "2026-04-01", "2026-04-30")
    _measured(h, "2026-05-10", M1, "m1-q1b", "2026-Q1", "19.0", revises="m1-q1a")
    h.add("2026-05-12", co.PaymentRecalculated(
        terms_id=terms_id_for(AG1), agreement_id=AG1, period="2026-Q1", calculation_id="q1-2",
        lines=[co.PaymentLine(description="Outcome", basis="by hand", amount=D("1200.00"))],
        total=D("1200.00"), achievement_pct=D("100.0"), previous_total=D("1000.00"),
        difference=D("200.00"), reason="the Q1 measurement was revised"))
    _delivered(h, "2026-05-20", "d6", AG1, P1, "sessions_delivered", "sessions", "5",
               "2026-04-01", "2026-04-30", corrects="d5")
    _spent(h, "2026-05-31", AG1, P1, "s2", "2026-05", "700.00")
    _delivered(h, "2026-06-01", "d8", AG4, P2, "meals", "meals", "100", "2026-05-01",
               "2026-05-31")
    _delivered(h, "2026-06-03", "d7", AG1, P1, "sessions_delivered", "sessions", "6",
               "2026-04-01", "2026-04-30", corrects="d6")
    _spent(h, "2026-06-30", AG2, P2, "s2", "2026-06", "372.50")
    h.add("2026-06-30", ci.AgreementEnded(
        agreement_id=AG4, how=ci.EndingKind.COMPLETED, ended_on=date(2026, 6, 30),
        reason="pilot over", exit_plan_executed=False))
    _measured(h, "2026-07-20", M1, "m1-q2", "2026-Q2", "18.2")
    _measured(h, "2026-07-20", M2, "m2-q2", "2026-Q2", "119")
    _paid(h, "2026-07-25", AG1, "2026-Q2", "1500.00", "94.2")
    _paid(h, "2026-07-25", AG5, "2026-Q2", "190.00", "95.0")
    _measured(h, "2026-10-20", M1, "m1-q3", "2026-Q3", "17.31")
    _measured(h, "2026-10-20", M2, "m2-q3", "2026-Q3", "140")
    _paid(h, "2026-10-25", AG1, "2026-Q3", "3298.50", "126.1")
    _paid(h, "2026-10-25", AG5, "2026-Q3", "400.00", "133.3")
    return h


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(("lower", "baseline", "target", "actual", "rag"), [
    # lower is better: baseline 20, target 18 (2.0 targeted, so the amber band is 0.2)
    (True, "20", "18", "18", GREEN),  # meets the target exactly
    (True, "20", "18", "17.5", GREEN),  # beats it
    (True, "20", "18", "18.1", AMBER),
    (True, "20", "18", "18.2", AMBER),  # short by exactly 10% of the targeted improvement
    (True, "20", "18", "18.2001", RED),  # just beyond
    (True, "20", "18", "21", RED),  # worse than the baseline
    # higher is better: baseline 100, target 120 (20 targeted, so the amber band is 2)
    (False, "100", "120", "120", GREEN),
    (False, "100", "120", "125", GREEN),
    (False, "100", "120", "118", AMBER),
    (False, "100", "120", "117.99", RED),
    # no baseline: no amber band, a miss is red
    (False, None, "80", "80", GREEN),
    (False, None, "80", "79.99", RED),
    # a target that is no improvement on the baseline: no amber band either
    (False, "100", "100", "100", GREEN),
    (False, "100", "100", "99.99", RED),
    # nothing to judge: no target, or no measurement
    (False, "100", None, "120", None),
    (False, "100", "120", None, None),
])
def test_rag_per_measure_and_period_at_its_boundaries(
    lower: bool, baseline: str | None, target: str | None, actual: str | None, rag: Rag | None,
) -> None:
    def d(value: str | None) -> Decimal | None:
        return None if value is None else D(value)

    assert measure_rag(lower, d(baseline), d(target), d(actual)) is rag


@pytest.mark.parametrize(("achieved", "targeted", "rag", "pct"), [
    ("100", "100", GREEN, "100.0"),
    ("90", "100", AMBER, "90.0"),  # exactly 10% short of the targeted improvement
    ("89.99", "100", RED, "90.0"),  # shown as 90.0 but judged on the exact figures
    ("5.65", "6.0", AMBER, "94.2"),
    ("11.345", "9.0", GREEN, "126.1"),
    ("2.69", "3.0", RED, "89.7"),
    ("1", "0", None, None),  # nothing targeted
])
def test_rag_per_agreement_from_weighted_achievement(achieved: str, targeted: str,
                                                     rag: Rag | None, pct: str | None) -> None:
    assert achievement_rag(D(achieved), D(targeted)) is rag
    assert achievement_pct(D(achieved), D(targeted)) == (D(pct) if pct else None)


def test_periods_are_months_and_calendar_quarters() -> None:
    assert period_bounds("2026-Q1") == (date(2026, 1, 1), date(2026, 3, 31))
    assert period_bounds("2026-Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    assert period_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert period_of(date(2026, 4, 5), co.Periodicity.QUARTERLY) == "2026-Q2"
    assert period_of(date(2026, 4, 5), co.Periodicity.MONTHLY) == "2026-04"


OBESITY_FACTS = MeasureFacts(
    str(M1), True, D("20.0"), {}, {"2026-Q1": D("19.0"), "2026-Q3": D("17.31"),
                                  "2026-Q4": D("15.0")},
    name="Teenage obesity rate", unit="%", baseline_period="2025-Q4")
YEAR_2026 = (date(2026, 1, 1), date(2026, 12, 31))


def test_cost_per_outcome_is_in_the_measures_own_unit_and_says_how() -> None:
    # 1,200.00 spent / (0.5 x (20.0 - 17.31 = 2.69) = 1.345) = 892.1933... -> 892.19; the Q4
    # figure (15.0) is provisional on 1 December 2026 and not used
    cost = outcome_cost(OBESITY_FACTS, D("0.5"), YEAR_2026, TODAY, 599_850, 120_000)
    assert (cost.cost, cost.cost_unit, cost.money, cost.money_basis, cost.improvement,
            cost.attributed_improvement, cost.latest, cost.latest_period) == (
        D("892.19"), "£ per percentage point reduced", D("1200.00"), "spend", D("2.69"),
        D("1.345"), D("17.31"), "2026-Q3")
    assert cost.how == (
        "£1,200.00 spent (recorded by the integrator) / (weight 0.5 x 2.69 percentage points "
        "reduced, from 20.0 in 2025-Q4 to 17.31 in 2026-Q3) = £892.19 per percentage point "
        "reduced")
    # No spend recorded: the results payments, 5,998.50 / 1.345 = 4,459.8513... -> 4,459.85
    paid = outcome_cost(OBESITY_FACTS, D("0.5"), YEAR_2026, TODAY, 599_850, None)
    assert (paid.cost, paid.money_basis) == (D("4459.85"), "payments")
    assert paid.how.startswith("£5,998.50 in results payments / (weight 0.5 x 2.69")
    # Once 2026-Q4 is over its figure counts: 20.0 - 15.0 = 5.0 x 0.5 = 2.5: 1,200.00 / 2.5
    later = outcome_cost(OBESITY_FACTS, D("0.5"), YEAR_2026, date(2027, 1, 1), None, 120_000)
    assert (later.cost, later.latest_period) == (D("480.00"), "2026-Q4")
    # 5p / 2 = 2.5p -> 3p (half up)
    assert outcome_cost(replace(OBESITY_FACTS, actuals={"2026-Q1": D("18.0")}), D(1),
                        YEAR_2026, TODAY, None, 5).cost == D("0.03")


def test_no_cost_per_outcome_without_an_improvement_and_it_says_why() -> None:
    worse = replace(OBESITY_FACTS, actuals={"2026-Q2": D("20.4")})
    found = outcome_cost(worse, D("0.5"), YEAR_2026, TODAY, None, 120_000)
    assert (found.cost, found.improvement) == (None, D("-0.4"))
    assert found.how == ("no improvement: from 20.0 in 2025-Q4 to 20.4 in 2026-Q2 (lower is "
                         "better), so no cost per improvement")
    unmeasured = replace(OBESITY_FACTS, actuals={})
    assert outcome_cost(unmeasured, D(1), YEAR_2026, TODAY, None, 120_000).how.startswith(
        "no measurement in an ended period of the agreement's term yet")
    assert outcome_cost(OBESITY_FACTS, D(0), YEAR_2026, TODAY, None, 1).how == (
        "attributed weight 0: none of the improvement is the agreement's")
    assert outcome_cost(OBESITY_FACTS, D(1), YEAR_2026, TODAY, None, None).how == (
        "no spend recorded and no results payment calculated yet")
    baseless = replace(OBESITY_FACTS, baseline=None)
    assert outcome_cost(baseless, D(1), YEAR_2026, TODAY, None, 1).cost is None
    # a measurement from before the term does not count for the agreement
    assert outcome_cost(replace(OBESITY_FACTS, actuals={"2025-Q4": D("19.0")}), D(1),
                        YEAR_2026, TODAY, None, 1).latest_period is None


@pytest.mark.parametrize(("unit", "lower", "says"), [
    ("%", True, "£ per percentage point reduced"),
    ("% of 13-17 year olds", True, "£ per percentage point of 13-17 year olds reduced"),
    ("people", False, "£ per person raised"),
    ("households per year", True, "£ per household per year reduced"),
    ("people per day", True, "£ per person per day reduced"),
    ("score out of 12", False, "£ per score out of 12 raised"),
])
def test_what_a_cost_per_outcome_is_per(unit: str, lower: bool, says: str) -> None:
    assert cost_unit(unit, lower) == says


def test_delivery_volumes_are_added_up_per_unit_only() -> None:
    assert [(v.unit, v.quantity, v.activity_types) for v in volumes_by_unit([
        ("sessions_delivered", "sessions", D(10)), ("people_reached", "people", D(30)),
        ("sessions_delivered", "sessions", D("6.5")), ("drop_ins", "sessions", D(2)),
    ])] == [("people", D(30), ["people_reached"]),
            ("sessions", D("18.5"), ["drop_ins", "sessions_delivered"])]


# --------------------------------------------------------------------------- the views


class Views:
    """The live read models over one embedded log: the outcomes service's performance view in
    its database, the integrator's projections (performance among them) in another."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = EmbeddedEventLog(folder / "log.sqlite")
        self.outcomes = Database.sqlite(folder / "outcomes_views.sqlite")
        self.integrator = Database.sqlite(folder / "integrator_views.sqlite")
        self.runners = [ProjectionRunner(PerformanceProjection(), self.outcomes, self.log)]
        self.runners += [ProjectionRunner(p, self.integrator, self.log)
                         for p in integrator_projections()]

    def feed(self, events: list[EventEnvelope]) -> None:
        self.log.append(events)
        for runner in self.runners:
            runner.catch_up()

    def close(self) -> None:
        self.outcomes.close()
        self.integrator.close()
        self.log.close()


def dump(value: Any) -> Any:
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def outcomes_snapshot(db: Database, today: date = TODAY) -> dict[str, Any]:
    return {
        "measures": {str(m): dump(get_measure_performance(db, m, today)) for m in (M1, M2)},
        "agreements": {str(a): dump(get_agreement_performance(db, a, today))
                       for a in (AG1, AG2, AG3, AG4, AG5)},
        "list": dump(list_agreement_performance(db, today=today)),
    }


def integrator_snapshot(db: Database, today: date = TODAY) -> dict[str, Any]:
    return {"performance": dump(network_performance(db, today=today)),
            "state": dump(network_state(db, today))}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Views]:
    views = Views(tmp_path / "live")
    views.feed(history().in_time_order())
    yield views
    views.close()


def test_a_measure_target_against_actual_over_time(live: Views) -> None:
    m1 = get_measure_performance(live.outcomes, M1, TODAY)
    assert m1 is not None
    assert (m1.name, m1.direction, m1.baseline, m1.baseline_period) == (
        "Teenage obesity rate", co.Direction.LOWER_IS_BETTER, D("20.0"), "2025-Q4")
    assert [(p.period, p.target, p.actual, p.revisions, p.targeted_improvement,
             p.achieved_improvement, p.rag, p.provisional) for p in m1.series] == [
        ("2025-Q4", None, D("20.0"), 0, None, D("0.0"), None, False),
        ("2026-Q1", D("19.0"), D("19.0"), 1, D("1.0"), D("1.0"), GREEN, False),  # 19.5 -> 19.0
        ("2026-Q2", D("18.0"), D("18.2"), 0, D("2.0"), D("1.8"), AMBER, False),
        ("2026-Q3", D("17.0"), D("17.31"), 0, D("3.0"), D("2.69"), RED, False),
        ("2026-Q4", D("16.0"), None, 0, D("4.0"), None, None, True),  # still running
    ]
    assert (m1.rag, m1.rag_period) == (RED, "2026-Q3")
    m2 = get_measure_performance(live.outcomes, M2, TODAY)
    assert m2 is not None
    assert [(p.period, p.actual, p.rag) for p in m2.series] == [
        ("2026-Q1", D("110"), GREEN), ("2026-Q2", D("119"), AMBER), ("2026-Q3", D("140"), GREEN)]
    assert (m2.rag, m2.rag_period) == (GREEN, "2026-Q3")
    assert get_measure_performance(live.outcomes, uid("no such measure")) is None


def test_an_agreement_worked_by_hand(live: Views) -> None:
    ag1 = get_agreement_performance(live.outcomes, AG1, TODAY)
    assert ag1 is not None
    assert (ag1.title, ag1.status, ag1.provider_ids, ag1.budget, ag1.starts_on, ag1.ends_on) == (
        "Active families", "active", [P1], D("60000.00"), date(2026, 1, 1), date(2026, 12, 31))
    # target against actual per attributed outcome, within the term (2025-Q4 is before it)
    by_measure = {o.measure_id: o for o in ag1.outcomes}
    assert {m: (o.weight, o.rag) for m, o in by_measure.items()} == {
        M1: (D("0.5"), RED), M2: (D("0.25"), GREEN)}
    assert [p.period for p in by_measure[M1].series] == [
        "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    # weighted achievement per period, the latest gives the overall RAG
    both = sorted([M1, M2], key=str)  # measures are listed by id
    assert [(a.period, a.achievement_pct, a.rag, a.measures, a.provisional)
            for a in ag1.achievement] == [
        ("2026-Q1", D("100.0"), GREEN, both, False),
        ("2026-Q2", D("94.2"), AMBER, both, False),
        ("2026-Q3", D("126.1"), GREEN, both, False),
    ]
    assert (ag1.rag, ag1.rag_period, ag1.latest_achievement_pct) == (GREEN, "2026-Q3", D("126.1"))
    # delivery volumes per quarter (the rate card's), corrections replacing what they correct
    assert ag1.periodicity is co.Periodicity.QUARTERLY
    assert [(v.period, v.activity_type, v.unit, v.quantity, v.reports)
            for v in ag1.deliveries] == [
        ("2026-Q1", "sessions_delivered", "sessions", D("24"), 2),
        ("2026-Q2", "people_reached", "people", D("30"), 1),
        ("2026-Q2", "sessions_delivered", "sessions", D("6"), 1),
    ]
    assert [(t.activity_type, t.unit, t.quantity) for t in ag1.delivery_totals] == [
        ("people_reached", "people", D("30")), ("sessions_delivered", "sessions", D("30"))]
    # never 60 of nothing: 30 people and 30 sessions
    assert [(v.unit, v.quantity) for v in ag1.delivery_volumes] == [
        ("people", D("30")), ("sessions", D("30"))]
    # payments: the latest total per period, with the history of differences
    assert [(p.period, p.total, p.calculation_id) for p in ag1.payments] == [
        ("2026-Q1", D("1200.00"), "q1-2"), ("2026-Q2", D("1500.00"), "2026-Q2-1"),
        ("2026-Q3", D("3298.50"), "2026-Q3-1")]
    assert [(c.total, c.previous_total, c.difference, c.reason)
            for c in ag1.payments[0].history] == [
        (D("1000.00"), None, None, None),
        (D("1200.00"), D("1000.00"), D("200.00"), "the Q1 measurement was revised")]
    assert [(s.period, s.amount) for s in ag1.spend] == [
        ("2026-02", D("500.00")), ("2026-05", D("700.00"))]
    assert (ag1.payments_total, ag1.spend_total) == (D("5998.50"), D("1200.00"))
    # cost per outcome per measure, in its unit, from the spend (as the docstring works out)
    assert [(c.measure_id, c.cost, c.cost_unit, c.money_basis, c.attributed_improvement)
            for c in ag1.outcome_costs] == [
        (M2, D("120.00"), "£ per person raised", "spend", D("10.00")),  # "People in work..."
        (M1, D("892.19"), "£ per percentage point reduced", "spend", D("1.345")),
    ]
    assert ag1.outcome_costs[0].how == (
        "£1,200.00 spent (recorded by the integrator) / (weight 0.25 x 40 people raised, from "
        "100 in 2025-Q4 to 140 in 2026-Q3) = £120.00 per person raised")


def costs(found: Any) -> list[tuple[UUID, Decimal | None, str | None]]:
    return [(c.measure_id, c.cost, c.money_basis) for c in found.outcome_costs]


def test_other_agreements_worked_by_hand(live: Views) -> None:
    ag2 = get_agreement_performance(live.outcomes, AG2, TODAY)
    assert ag2 is not None
    assert [(a.period, a.achievement_pct, a.rag) for a in ag2.achievement] == [
        ("2026-Q1", D("100.0"), GREEN), ("2026-Q2", D("90.0"), AMBER),
        ("2026-Q3", D("89.7"), RED)]
    assert (ag2.rag, ag2.payments_total, ag2.spend_total, costs(ag2)) == (
        RED, D("0.00"), D("1372.50"), [(M1, D("510.22"), "spend")])
    ag3 = get_agreement_performance(live.outcomes, AG3, TODAY)
    assert ag3 is not None
    assert (ag3.rag, ag3.outcomes, ag3.achievement, ag3.spend_total, ag3.outcome_costs,
            ag3.delivery_volumes) == (None, [], [], D("800.00"), [], [])
    ag4 = get_agreement_performance(live.outcomes, AG4, TODAY)
    assert ag4 is not None
    assert (ag4.status, ag4.ends_on) == ("ended", date(2026, 6, 30))  # ended early
    assert [(a.period, a.achievement_pct, a.rag) for a in ag4.achievement] == [
        ("2026-Q1", D("100.0"), GREEN), ("2026-Q2", D("95.0"), AMBER)]
    assert (ag4.rag, costs(ag4), ag4.outcome_costs[0].latest_period) == (
        AMBER, [(M2, D("15.26"), "payments")], "2026-Q2")
    assert [(v.unit, v.quantity) for v in ag4.delivery_volumes] == [("meals", D("100"))]
    assert [(v.period, v.activity_type, v.quantity) for v in ag4.deliveries] == [
        ("2026-05", "meals", D("100"))]  # monthly rate card
    (work,) = ag4.outcomes  # M2 within the term: Q3 (green) came after the agreement ended
    assert ([p.period for p in work.series], work.rag, work.rag_period) == (
        ["2026-Q1", "2026-Q2"], AMBER, "2026-Q2")
    ag5 = get_agreement_performance(live.outcomes, AG5, TODAY)
    assert ag5 is not None
    assert (ag5.provider_ids, ag5.rag, ag5.latest_achievement_pct, ag5.payments_total,
            costs(ag5)) == ([P1, P3], GREEN, D("133.3"), D("690.00"),
                            [(M2, D("17.25"), "payments")])
    assert get_agreement_performance(live.outcomes, uid("no such agreement")) is None


def test_the_summary_list_best_first_and_by_rag(live: Views) -> None:
    listed = list_agreement_performance(live.outcomes, today=TODAY)
    assert [(s.agreement_id, s.rag, s.title) for s in listed] == [
        (AG1, GREEN, "Active families"), (AG5, GREEN, "Jobs club"),
        (AG4, AMBER, "Work coaching pilot"), (AG2, RED, "School nurses"),
        (AG3, None, "Healthy cooking")]
    assert [s.agreement_id for s in list_agreement_performance(live.outcomes, rag=GREEN)] == [
        AG1, AG5]
    assert [s.agreement_id for s in list_agreement_performance(
        live.outcomes, unrated=True)] == [AG3]
    assert [s.agreement_id for s in list_agreement_performance(
        live.outcomes, provider_id=P1)] == [AG1, AG5]
    assert [s.agreement_id for s in list_agreement_performance(live.outcomes, limit=2,
                                                               offset=1)] == [AG5, AG4]


def test_the_integrator_sees_which_arrangements_work(live: Views) -> None:
    ranked = network_performance(live.integrator, today=TODAY)
    assert [(r.agreement_id, r.rag, r.latest_achievement_pct, r.payments_total, costs(r),
             [(v.unit, v.quantity) for v in r.delivery_volumes]) for r in ranked] == [
        (AG1, GREEN, D("126.1"), D("5998.50"),
         [(M2, D("120.00"), "spend"), (M1, D("892.19"), "spend")],
         [("people", D("30")), ("sessions", D("30"))]),
        (AG5, GREEN, D("133.3"), D("690.00"), [(M2, D("17.25"), "payments")], []),
        (AG4, AMBER, D("95.0"), D("290.00"), [(M2, D("15.26"), "payments")],
         [("meals", D("100"))]),
        (AG2, RED, D("89.7"), D("0.00"), [(M1, D("510.22"), "spend")], []),
        (AG3, None, None, D("0.00"), [], []),
    ]
    assert (ranked[0].title, ranked[0].need_title, ranked[0].service_area, ranked[0].budget,
            ranked[0].spend_total) == (
        "Active families", "Healthy lives", "weight-management", D("60000.00"), D("1200.00"))
    assert [r.agreement_id for r in network_performance(live.integrator, status="active")] == [
        AG1, AG5, AG2, AG3]
    assert [r.agreement_id for r in network_performance(live.integrator, rag=RED)] == [AG2]
    assert [r.agreement_id for r in network_performance(live.integrator, unrated=True)] == [AG3]
    # both sides judge alike
    outcomes_side = {s.agreement_id: s for s in list_agreement_performance(live.outcomes,
                                                                           today=TODAY)}
    for row in ranked:
        mine = outcomes_side[row.agreement_id]
        assert (row.rag, row.rag_period, row.latest_achievement_pct, row.payments_total,
                row.spend_total, row.delivery_volumes, row.outcome_costs) == (
            mine.rag, mine.rag_period, mine.latest_achievement_pct, mine.payments_total,
            mine.spend_total, mine.delivery_volumes, mine.outcome_costs)


def with_a_provisional_figure() -> list[EventEnvelope]:
    """The worked example, and an early figure for 2026-Q4 (still running until 31 December):
    M1 at 17.5, against the Q4 target of 16.0."""
    h = history()
    _measured(h, "2026-11-16", M1, "m1-q4", "2026-Q4", "17.5")
    return h.in_time_order()


def test_a_period_still_running_is_provisional_and_sets_no_rag(tmp_path: Path) -> None:
    views = Views(tmp_path / "provisional")
    views.feed(with_a_provisional_figure())
    # AG1 in 2026-Q4: M1 only (M2 has no Q4 target): 0.5 x 2.5 of 0.5 x 4.0 = 62.5%, red.
    # On 1 December the quarter is running: shown, marked provisional, but AG1 stays green on
    # 2026-Q3; and M1's cost still counts to 2026-Q3 (892.19).
    ag1 = get_agreement_performance(views.outcomes, AG1, TODAY)
    assert ag1 is not None
    assert [(a.period, a.achievement_pct, a.rag, a.provisional)
            for a in ag1.achievement][-1] == ("2026-Q4", D("62.5"), RED, True)
    assert (ag1.rag, ag1.rag_period, ag1.latest_achievement_pct) == (
        GREEN, "2026-Q3", D("126.1"))
    assert costs(ag1)[1] == (M1, D("892.19"), "spend")
    m1 = get_measure_performance(views.outcomes, M1, TODAY)
    assert m1 is not None
    assert ((m1.series[-1].period, m1.series[-1].provisional), m1.rag_period) == (
        ("2026-Q4", True), "2026-Q3")
    (row,) = [r for r in network_performance(views.integrator, today=TODAY)
              if r.agreement_id == AG1]
    assert (row.rag, row.rag_period, row.outcome_costs) == (GREEN, "2026-Q3", ag1.outcome_costs)
    # Once the quarter is over, the figure counts: AG1 red on 2026-Q4; M1 improved by
    # 20.0 - 17.5 = 2.5 x 0.5 = 1.25: 1,200.00 / 1.25 = 960.00 per percentage point reduced
    later = date(2027, 1, 5)
    ag1 = get_agreement_performance(views.outcomes, AG1, later)
    assert ag1 is not None
    assert (ag1.rag, ag1.rag_period, ag1.latest_achievement_pct, costs(ag1)[1]) == (
        RED, "2026-Q4", D("62.5"), (M1, D("960.00"), "spend"))
    (row,) = [r for r in network_performance(views.integrator, today=later)
              if r.agreement_id == AG1]
    assert (row.rag, row.rag_period) == (RED, "2026-Q4")
    views.close()


def test_the_network_state_shows_each_active_agreements_performance(live: Views) -> None:
    state = network_state(live.integrator, TODAY)
    held = {a.agreement_id: a.performance for p in state.providers for a in p.active_agreements}
    assert set(held) == {AG1, AG2, AG3, AG5}  # AG4 has ended
    ag1 = held[AG1]
    assert ag1 is not None
    assert (ag1.rag, ag1.latest_achievement_pct, ag1.payments_total, costs(ag1),
            [(v.unit, v.quantity) for v in ag1.delivery_volumes]) == (
        GREEN, D("126.1"), D("5998.50"),
        [(M2, D("120.00"), "spend"), (M1, D("892.19"), "spend")],
        [("people", D("30")), ("sessions", D("30"))])
    ag2 = held[AG2]
    assert ag2 is not None
    assert ag2.rag is RED
    assert held[AG3] is None  # the outcomes service has said nothing about it


def test_the_performance_data_that_justifies_an_extension(live: Views) -> None:
    """What the integrator holds of an agreement's performance, for its extensions: its RAG;
    else the latest measurement, after it started, of a measure its outcomes name; else
    nothing."""
    later = History()
    for agreement, starts in ((uid("agreement-6"), date(2026, 1, 1)),
                              (uid("agreement-7"), date(2026, 10, 1))):
        later.add("2026-10-21", ci.AgreementDrafted(
            agreement_id=agreement, need_id=N1, title="Work clubs",
            arrangement_type=ci.ArrangementType.GRANT,
            parties=[ci.Party(provider_id=P1, allocation=D("1000.00"))],
            starts_on=starts, ends_on=date(2027, 12, 31), budget=D("1000.00"),
            outcomes=[ci.AgreementOutcome(outcome_id="o1", measure_id=M2)],
            exit_plan="hand back"))
    live.feed(later.in_time_order())

    assert performance_evidence(live.integrator, AG1) == \
        "RAG green in 2026-Q3 (achievement 126.1% of target)"
    assert performance_evidence(live.integrator, AG2) == \
        "RAG red in 2026-Q3 (achievement 89.7% of target)"
    # No RAG, but its outcome's measure was measured (2026-Q3: 140 people) since it started.
    assert performance_evidence(live.integrator, uid("agreement-6")) == \
        "People in work after support: 140 people in 2026-Q3"
    # Started after the last measurement (2026-Q3 ended on 30 September): nothing yet.
    assert performance_evidence(live.integrator, uid("agreement-7")) is None
    assert performance_evidence(live.integrator, AG3) is None  # no measure, no RAG
    assert performance_evidence(live.integrator, uid("never-drafted")) is None


def test_a_database_without_the_performance_read_model_shows_none(tmp_path: Path) -> None:
    """Views built with only the network and commissioning projections (as older tests and
    tools build them) still answer: no performance."""
    events = history().in_time_order()
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append(events)
    db = Database.sqlite(tmp_path / "views.sqlite")
    for projection in integrator_projections()[:2]:
        ProjectionRunner(projection, db, log).catch_up()
    state = network_state(db)
    assert state.totals.active_agreements == 4
    assert all(a.performance is None for p in state.providers for a in p.active_agreements)
    db.close()
    log.close()


# --------------------------------------------------------------------------- order, rebuild, as of


def test_the_same_answers_whatever_order_the_streams_arrive_in(live: Views,
                                                               tmp_path: Path) -> None:
    """Each stream in order, streams interleaved anyhow (a correction before the report it
    corrects, payments before the agreement is drafted), and republished duplicates."""
    events = history().in_time_order()
    by_stream: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in events:
        by_stream[f"{event.source}/{event.stream_id}"].append(event)
    backwards = list(reversed(by_stream.values()))  # the streams begun last come first
    orders = {"backwards": backwards}
    for seed in (3, 11):
        orders[f"shuffled-{seed}"] = random.Random(seed).sample(backwards, len(backwards))
    for name, streams in orders.items():
        shuffled = [e for stream in streams for e in stream]
        other = Views(tmp_path / name)
        other.feed(shuffled)
        other.feed(shuffled[10:50])  # an at-least-once relay published these twice
        assert outcomes_snapshot(other.outcomes) == outcomes_snapshot(live.outcomes)
        assert integrator_snapshot(other.integrator) == integrator_snapshot(live.integrator)
        other.close()


def test_a_rebuild_from_an_empty_read_model_equals_the_live_one(live: Views) -> None:
    outcomes_before = outcomes_snapshot(live.outcomes)
    integrator_before = integrator_snapshot(live.integrator)
    for runner in live.runners:
        runner.rebuild()
    assert outcomes_snapshot(live.outcomes) == outcomes_before
    assert integrator_snapshot(live.integrator) == integrator_before


SNAPSHOT_DAYS = ("2026-01-31", "2026-04-30", "2026-05-15", "2026-06-30", "2026-08-01",
                 "2026-12-31")


def test_as_of_equals_the_live_integrator_view_on_each_date(tmp_path: Path) -> None:
    events = history().in_time_order()
    live = Views(tmp_path / "live")
    seen: dict[str, dict[str, Any]] = {}
    fed = 0
    for day in SNAPSHOT_DAYS:
        upto = as_of_moment(day)
        due = [e for e in events[fed:] if e.occurred_at <= upto]
        live.feed(due)
        fed += len(due)
        seen[day] = integrator_snapshot(live.integrator, upto.date())
    live.feed(events[fed:])
    for day in SNAPSHOT_DAYS:
        with state_as_of(live.log, None, day) as db:
            assert integrator_snapshot(db, as_of_moment(day).date()) == seen[day], day
    assert len({str(s) for s in seen.values()}) == len(SNAPSHOT_DAYS)  # each date differs
    # As of mid-May: Q1 paid and recalculated (AG1 1,200.00), only Q1 measured.
    with state_as_of(live.log, None, "2026-05-15") as db:
        ag1 = next(r for r in network_performance(db, today=date(2026, 5, 15))
                   if r.agreement_id == AG1)
        assert (ag1.rag, ag1.rag_period, ag1.latest_achievement_pct, ag1.payments_total) == (
            GREEN, "2026-Q1", D("100.0"), D("1200.00"))
        # spend so far 500.00: M1 20.0 to 19.0 in 2026-Q1, 1.0 x 0.5 = 0.5: 1,000.00;
        # M2 100 to 110, 10 x 0.25 = 2.5: 200.00 (2025-Q4 is before the term)
        assert costs(ag1) == [(M2, D("200.00"), "spend"), (M1, D("1000.00"), "spend")]
    live.close()


# --------------------------------------------------------------------------- HTTP

Auth = dict[str, str]


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[..., Auth]:
    def make(role: Role, provider_id: UUID | None = None) -> Auth:
        issued = tokens.create(role, f"{role.value}-user", provider_id)
        return {"Authorization": f"Bearer {issued.token}"}

    return make




def test_the_performance_endpoints(settings: Settings, auth: Callable[..., Auth]) -> None:
    # The envelopes go straight onto the log, not through the outcomes service's store, so its
    # payments process would have no terms to settle: it is left out here.
    outcomes_spec = replace(OUTCOMES, workers=None)
    staff, provider = auth(Role.COUNCIL_STAFF), auth(Role.PROVIDER, P1)
    with TestClient(create_service_app(outcomes_spec, settings)) as outcomes, \
            TestClient(create_service_app(INTEGRATOR, settings)) as integrator:
        runtime = outcomes.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append(history().in_time_order())

        ag1 = eventually(
            lambda: outcomes.get(f"/performance/agreements/{AG1}", headers=staff).json(),
            lambda body: body.get("payments_total") == "5998.50"
            and body.get("rag_period") == "2026-Q3" and len(body.get("deliveries", [])) == 3)
        assert (ag1["rag"], ag1["latest_achievement_pct"], ag1["budget"]) == (
            "green", "126.1", "60000.00")
        assert [(c["measure_name"], c["cost"], c["cost_unit"]) for c in ag1["outcome_costs"]] == [
            ("People in work after support", "120.00", "£ per person raised"),
            ("Teenage obesity rate", "892.19", "£ per percentage point reduced")]
        assert [(v["unit"], v["quantity"]) for v in ag1["delivery_volumes"]] == [
            ("people", "30"), ("sessions", "30")]
        assert [(p["period"], p["rag"]) for p in ag1["achievement"]] == [
            ("2026-Q1", "green"), ("2026-Q2", "amber"), ("2026-Q3", "green")]

        m1 = outcomes.get(f"/performance/measures/{M1}", headers=staff)
        assert m1.status_code == 200
        assert [(p["period"], p["target"], p["actual"], p["revisions"], p["rag"])
                for p in m1.json()["series"]][1:4] == [
            ("2026-Q1", "19.0", "19.0", 1, "green"), ("2026-Q2", "18.0", "18.2", 0, "amber"),
            ("2026-Q3", "17.0", "17.31", 0, "red")]

        listed = outcomes.get("/performance/agreements", headers=staff).json()
        assert [(s["agreement_id"], s["rag"]) for s in listed] == [
            (str(AG1), "green"), (str(AG5), "green"), (str(AG4), "amber"), (str(AG2), "red"),
            (str(AG3), None)]
        for rag, expected in (("amber", [AG4]), ("none", [AG3]), ("red", [AG2])):
            found = outcomes.get("/performance/agreements", params={"rag": rag}, headers=staff)
            assert [s["agreement_id"] for s in found.json()] == [str(a) for a in expected]
        assert outcomes.get("/performance/agreements", params={"rag": "grey"},
                            headers=staff).status_code == 422

        # A provider reads its own agreements only; to it the others do not exist.
        own = outcomes.get("/performance/agreements", headers=provider).json()
        assert [s["agreement_id"] for s in own] == [str(AG1), str(AG5)]
        assert outcomes.get(f"/performance/agreements/{AG1}", headers=provider).status_code == 200
        assert outcomes.get(f"/performance/agreements/{AG2}", headers=provider).status_code == 404
        assert outcomes.get(f"/performance/measures/{M1}", headers=provider).status_code == 403
        assert outcomes.get("/performance/agreements").status_code == 401
        missing = outcomes.get(f"/performance/measures/{uid('none')}", headers=staff)
        assert missing.status_code == 404
        assert outcomes.get(f"/performance/agreements/{uid('none')}",
                            headers=staff).status_code == 404

        # The integrator: which arrangements work, live and as of a date; the network state.
        ranked = eventually(
            lambda: integrator.get("/network/performance", headers=staff).json(),
            lambda body: [r.get("agreement_id") for r in body] == [
                str(a) for a in (AG1, AG5, AG4, AG2, AG3)]
            and body[0]["payments_total"] == "5998.50")
        assert [(r["rag"], [c["cost"] for c in r["outcome_costs"]]) for r in ranked] == [
            ("green", ["120.00", "892.19"]), ("green", ["17.25"]), ("amber", ["15.26"]),
            ("red", ["510.22"]), (None, [])]
        amber = integrator.get("/network/performance", params={"rag": "amber"}, headers=staff)
        assert [r["agreement_id"] for r in amber.json()] == [str(AG4)]
        then = integrator.get("/network/performance", params={"as_of": "2026-05-15"},
                              headers=staff).json()
        ag1_then = next(r for r in then if r["agreement_id"] == str(AG1))
        assert (ag1_then["payments_total"], [c["cost"] for c in ag1_then["outcome_costs"]]) == (
            "1200.00", ["200.00", "1000.00"])
        assert integrator.get("/network/performance", params={"as_of": "soon"},
                              headers=staff).status_code == 422
        assert integrator.get("/network/performance", headers=provider).status_code == 403
        state = integrator.get("/network/state", headers=staff).json()
        performance = {a["agreement_id"]: a["performance"]
                       for p in state["providers"] for a in p["active_agreements"]}
        assert performance[str(AG1)]["rag"] == "green"
        assert [c["cost"] for c in performance[str(AG1)]["outcome_costs"]] == [
            "120.00", "892.19"]
        assert performance[str(AG3)] is None


def test_the_pages_label_units_and_say_provisional(settings: Settings) -> None:
    """The integrator's outcomes and agreement pages, as of 1 December 2026 (2026-Q4 running,
    with an early figure for it): costs per outcome in each measure's unit with how they were
    worked out, deliveries per unit, the running quarter marked provisional."""
    from council.platform.accounts import UserStore
    from tests.unit.test_web_pages import PASSWORD, sign_in, text_of

    db = open_database(settings, "identity")
    UserStore(db).create("priya", Role.COUNCIL_STAFF, "Priya (staff)", PASSWORD)
    db.close()
    with TestClient(create_service_app(INTEGRATOR, settings),
                    follow_redirects=False) as integrator:
        runtime = integrator.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append(with_a_provisional_figure())
        sign_in(integrator, "priya")
        eventually(lambda: network_performance(runtime.views, today=TODAY),
                   lambda rows: any(r.agreement_id == AG1 and r.payments_total == D("5998.50")
                                    for r in rows))
        page = text_of(integrator.get(
            f"/ui/outcomes?as_of=2026-12-01&agreement_id={AG1}").text)
        # AG1 in 2026-Q4: M1 only, 0.5 x 4.0 = 2.00 targeted, 0.5 x 2.5 = 1.25 achieved
        assert "2026-Q4 2.00 1.25 62.5% Red Provisional" in page
        assert "Green 126.1% in 2026-Q3" in page  # Active families, rated on Q3
        assert "£892.19 per percentage point reduced (Teenage obesity rate)" in page
        assert ("£1,200.00 spent (recorded by the integrator) / (weight 0.5 x 2.69 percentage "
                "points reduced, from 20.0 in 2025-Q4 to 17.31 in 2026-Q3)") in page
        assert "£120.00 per person raised (People in work after support)" in page
        assert "Target (%) Actual (%)" in page
        assert "2026-Q4 16.0 17.5 Provisional" in page
        agreement = text_of(integrator.get(f"/ui/agreements/{AG1}?as_of=2026-12-01").text)
        assert "performance in 2026-Q3, the latest period ended" in agreement
        assert "Delivered: 30 people, 30 sessions" in agreement


UUID_FIELD = TypeAdapter(UUID)  # as a contract's UUID field validates


@given(raw=st.uuids(), form=st.sampled_from(["hyphenated", "upper", "simple", "braces", "urn",
                                             "mixed"]),
       noise=st.text(alphabet="0123456789abcdefABCDEF-{}:urnid ", min_size=30, max_size=40))
def test_uuid_text_is_the_uuid_as_str_whatever_the_text_it_was_read_from(
        raw: UUID, form: str, noise: str) -> None:
    """The performance projection takes a delivery report's ids as the log writes them when
    that text is already str(UUID): for any text a UUID validates from, the same answer."""
    text = {"hyphenated": str(raw), "upper": str(raw).upper(), "simple": raw.hex,
            "braces": f"{{{raw}}}", "urn": raw.urn,
            "mixed": str(raw)[:10].upper() + str(raw)[10:]}[form]
    for read_from in (text, noise):
        try:
            value = UUID_FIELD.validate_python(read_from)
        except ValueError:
            continue
        assert uuid_as_given(read_from, value) == str(value)
