"""What the performance read model answers: each outcome measure's and each agreement's
performance (targets against actuals by period, delivery volumes, payments and spend, cost per
outcome and RAG), worked out when read from the facts the projection keeps
(council.services.outcomes.projections.performance), by the council's published rule
(council.kernel.performance_rule)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.contracts.outcomes import (
    Direction,
    Periodicity,
)
from council.kernel.money import pounds
from council.kernel.performance_rule import (
    RAG_ORDER,
    Assessment,
    MeasureFacts,
    OutcomeCost,
    Rag,
    UnitVolume,
    assess,
    improvement,
    outcome_costs,
    volumes_by_unit,
)
from council.kernel.periods import Term, ended, overlaps, period_of, period_order, today_or_now
from council.platform.sql import Database, Row, Tx
from council.services.outcomes.projections.performance import as_decimal

PENNY = Decimal("0.01")
TENTH = Decimal("0.1")
HUNDRED = Decimal(100)
ZERO = Decimal(0)
_CHUNK = 500  # ids per IN (...) list


# ---------------------------------------------------------------------- views


class PeriodPoint(BaseModel):
    """One period of a measure: target against actual, and its RAG."""

    period: str
    target: Decimal | None = Field(description="from the measure's trajectory")
    actual: Decimal | None = Field(description="the latest measurement (revisions replace it)")
    revisions: int = Field(description="how many times the period's measurement was revised")
    source: str | None = Field(description="where the latest measurement came from")
    targeted_improvement: Decimal | None = Field(
        description="the target's improvement on the baseline, in the better direction")
    achieved_improvement: Decimal | None = Field(
        description="the actual's improvement on the baseline, in the better direction")
    rag: Rag | None
    provisional: bool = Field(description="the period has not ended: its figures are "
                                          "provisional and set no RAG")


class MeasurePerformance(BaseModel):
    measure_id: UUID
    name: str
    unit: str
    direction: Direction
    baseline: Decimal | None
    baseline_period: str | None
    rag: Rag | None = Field(description="of the latest ended period shown with a target and a "
                                        "measurement (a provisional period sets none)")
    rag_period: str | None
    series: list[PeriodPoint] = Field(description="every period with a target or a measurement")


class AttributedOutcome(MeasurePerformance):
    weight: Decimal = Field(description="the agreement's attributed share of the outcome")


class PeriodAchievement(BaseModel):
    period: str
    achievement_pct: Decimal | None = Field(
        description="weighted improvement achieved / targeted, in per cent (to 0.1)")
    rag: Rag | None
    provisional: bool = Field(description="the period has not ended: shown, but it does not "
                                          "set the agreement's RAG")
    measures: list[UUID] = Field(description="the measures with a target and a measurement")


class DeliveryVolume(BaseModel):
    period: str
    activity_type: str
    unit: str
    quantity: Decimal = Field(description="after corrections")
    reports: int = Field(description="reports that count (corrected reports do not)")


class ActivityTotal(BaseModel):
    activity_type: str
    unit: str
    quantity: Decimal


class PaymentChange(BaseModel):
    calculation_id: str
    total: Decimal
    previous_total: Decimal | None = Field(description="none for the first calculation")
    difference: Decimal | None
    reason: str | None
    achievement_pct: Decimal | None
    calculated_at: datetime


class PeriodPayment(BaseModel):
    period: str
    total: Decimal = Field(description="the latest calculation's total")
    achievement_pct: Decimal | None
    calculation_id: str
    history: list[PaymentChange] = Field(description="every calculation, oldest first")


class PeriodSpend(BaseModel):
    period: str
    amount: Decimal


class AgreementPerformanceSummary(BaseModel):
    agreement_id: UUID
    title: str | None = Field(description="none while the integrator's agreement is not known")
    status: str | None = Field(description="drafted, active or ended")
    provider_ids: list[UUID]
    starts_on: date | None
    ends_on: date | None = Field(description="the end of its term (earlier if it ended early)")
    budget: Decimal | None
    rag: Rag | None = Field(description="of the latest assessed period that has ended")
    rag_period: str | None
    latest_achievement_pct: Decimal | None = Field(description="in that period")
    payments_total: Decimal = Field(description="the latest total of every period")
    spend_total: Decimal
    delivery_volumes: list[UnitVolume] = Field(
        description="units delivered, after corrections, added up per unit only")
    outcome_costs: list[OutcomeCost] = Field(
        description="per attributed measure, the cost of a unit of its improvement in the "
                    "measure's own unit, and how it was worked out")


class AgreementPerformance(AgreementPerformanceSummary):
    periodicity: Periodicity = Field(description="the rate card's (quarterly if none)")
    outcomes: list[AttributedOutcome]
    achievement: list[PeriodAchievement]
    deliveries: list[DeliveryVolume]
    delivery_totals: list[ActivityTotal]
    payments: list[PeriodPayment]
    spend: list[PeriodSpend]


# ---------------------------------------------------------------------- reading


@dataclass
class _Measure:
    measure_id: str
    name: str
    unit: str
    direction: Direction
    baseline: Decimal | None
    baseline_period: str | None
    targets: dict[str, Decimal] = field(default_factory=dict)
    actuals: dict[str, Decimal] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def facts(self) -> MeasureFacts:
        return MeasureFacts(self.measure_id, self.direction is Direction.LOWER_IS_BETTER,
                            self.baseline, self.targets, self.actuals, self.name, self.unit,
                            self.baseline_period)


@dataclass
class _Agreement:
    agreement_id: str
    title: str | None = None
    status: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    budget: int | None = None
    providers: list[str] = field(default_factory=list)
    periodicity: Periodicity = Periodicity.QUARTERLY
    weights: dict[str, Decimal] = field(default_factory=dict)
    deliveries: list[tuple[str, str, Decimal, date]] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    spend: dict[str, int] = field(default_factory=dict)

    @property
    def term(self) -> Term | None:
        if self.starts_on is None or self.ends_on is None:
            return None
        return self.starts_on, self.ends_on


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _select(tx: Tx, sql: str, column: str, ids: Sequence[str] | None,
            tail: str = "") -> list[Row]:
    """`sql` (ending in WHERE-able text), for every id in `ids` (None: every row)."""
    if ids is None:
        return tx.execute(f"{sql}{tail}")
    rows: list[Row] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i:i + _CHUNK])
        joiner = " AND " if " WHERE " in sql else " WHERE "
        rows.extend(tx.execute(f"{sql}{joiner}{_in(column, chunk)}{tail}", chunk))
    return rows


def _measures(tx: Tx, measure_ids: Sequence[str] | None) -> dict[str, _Measure]:
    found = {
        str(m): _Measure(str(m), str(name), str(unit), Direction(direction), as_decimal(baseline),
                         period)
        for m, name, unit, direction, baseline, period in _select(
            tx, "SELECT measure_id, name, unit, direction, baseline, baseline_period"
                " FROM pf_measures", "measure_id", measure_ids)
    }
    for m, period, target in _select(tx, "SELECT measure_id, period, target FROM pf_targets",
                                     "measure_id", measure_ids):
        if str(m) in found:
            found[str(m)].targets[str(period)] = Decimal(str(target))
    for m, period, value, source in _select(
        tx, "SELECT measure_id, period, value, source FROM pf_measurements", "measure_id",
        measure_ids, " ORDER BY measure_id, period, position",
    ):
        measure = found.get(str(m))
        if measure is None:
            continue  # measurements of a measure not yet defined here (cannot happen in order)
        key = str(period)
        measure.revisions[key] = measure.revisions.get(key, -1) + 1
        measure.actuals[key] = Decimal(str(value))
        measure.sources[key] = str(source)
    return found


def _agreements(tx: Tx, agreement_ids: Sequence[str] | None) -> dict[str, _Agreement]:
    """Every agreement any fact names (or just `agreement_ids`), with its facts."""
    found: dict[str, _Agreement] = {}

    def get(agreement_id: Any) -> _Agreement:
        key = str(agreement_id)
        if key not in found:
            found[key] = _Agreement(key)
        return found[key]

    for a, title, status, starts_on, ends_on, ended_on, budget in _select(
        tx, "SELECT agreement_id, title, status, starts_on, ends_on, ended_on, budget_pence"
            " FROM pf_agreements", "agreement_id", agreement_ids,
    ):
        agreement = get(a)
        agreement.title, agreement.status, agreement.budget = str(title), str(status), int(budget)
        agreement.starts_on = date.fromisoformat(str(starts_on))
        end = date.fromisoformat(str(ends_on))
        agreement.ends_on = min(end, date.fromisoformat(str(ended_on))) if ended_on else end
    for a, p in _select(tx, "SELECT agreement_id, provider_id FROM pf_parties", "agreement_id",
                        agreement_ids, " ORDER BY agreement_id, ordinal"):
        get(a).providers.append(str(p))
    for a, periodicity in _select(tx, "SELECT agreement_id, periodicity FROM pf_rate_cards",
                                  "agreement_id", agreement_ids):
        get(a).periodicity = Periodicity(periodicity)
    for a, m, weight in _select(tx, "SELECT agreement_id, measure_id, weight FROM pf_attributions",
                                "agreement_id", agreement_ids):
        get(a).weights[str(m)] = Decimal(str(weight))
    rows = _select(
        tx, "SELECT d.agreement_id, d.activity_type, d.unit, d.quantity, d.period_end"
            " FROM pf_deliveries d"
            " WHERE NOT EXISTS (SELECT 1 FROM pf_deliveries c WHERE c.corrects = d.delivery_id"
            " AND c.delivery_id <> d.delivery_id)", "d.agreement_id", agreement_ids,
    )
    for a, activity, unit, quantity, period_end in rows:
        get(a).deliveries.append((str(activity), str(unit), Decimal(str(quantity)),
                                  date.fromisoformat(str(period_end))))
    for row in _select(
        tx, "SELECT agreement_id, period, calculation_id, total_pence, achievement_pct,"
            " previous_total_pence, difference_pence, reason, calculated_at FROM pf_payments",
        "agreement_id", agreement_ids, " ORDER BY agreement_id, terms_id, position",
    ):
        get(row[0]).payments.append(row[1:])
    for a, period, amount in _select(
        tx, "SELECT agreement_id, period, SUM(amount_pence) FROM pf_spend", "agreement_id",
        agreement_ids, " GROUP BY agreement_id, period",
    ):
        get(a).spend[str(period)] = int(amount)
    return found


def _series(measure: _Measure, periods: Iterable[str], today: date) -> list[PeriodPoint]:
    facts = measure.facts
    points: list[PeriodPoint] = []
    for period in periods:
        target, actual = measure.targets.get(period), measure.actuals.get(period)
        base = measure.baseline
        points.append(PeriodPoint(
            period=period, target=target, actual=actual,
            revisions=measure.revisions.get(period, 0), source=measure.sources.get(period),
            targeted_improvement=None if base is None or target is None else improvement(
                facts.lower_is_better, base, target),
            achieved_improvement=None if base is None or actual is None else improvement(
                facts.lower_is_better, base, actual),
            rag=facts.rag(period), provisional=not ended(period, today),
        ))
    return points


def _measure_fields(measure: _Measure, periods: Sequence[str], today: date) -> dict[str, Any]:
    rag, rag_period = measure.facts.latest_rag(today, periods)
    return {
        "measure_id": UUID(measure.measure_id), "name": measure.name, "unit": measure.unit,
        "direction": measure.direction, "baseline": measure.baseline,
        "baseline_period": measure.baseline_period, "rag": rag, "rag_period": rag_period,
        "series": _series(measure, periods, today),
    }


@dataclass(frozen=True)
class _Figures:
    assessment: Assessment
    payments_total: int | None  # None: nothing calculated
    spend_total: int | None  # None: nothing spent
    volumes: list[UnitVolume]
    costs: list[OutcomeCost]


def _figures(agreement: _Agreement, measures: Mapping[str, _Measure], today: date) -> _Figures:
    facts = {m: x.facts for m, x in measures.items()}
    assessment = assess(facts, agreement.weights, agreement.term, today)
    latest: dict[str, int] = {}
    for period, _, total, *_ in agreement.payments:
        latest[str(period)] = int(total)
    payments = sum(latest.values()) if latest else None
    spend = sum(agreement.spend.values()) if agreement.spend else None
    return _Figures(
        assessment, payments, spend,
        volumes_by_unit((a, u, q) for a, u, q, _ in agreement.deliveries),
        outcome_costs(facts, agreement.weights, agreement.term, today, payments, spend))


def _summary_fields(agreement: _Agreement, figures: _Figures) -> dict[str, Any]:
    a = figures.assessment
    return {
        "agreement_id": UUID(agreement.agreement_id), "title": agreement.title,
        "status": agreement.status, "provider_ids": [UUID(p) for p in agreement.providers],
        "starts_on": agreement.starts_on, "ends_on": agreement.ends_on,
        "budget": None if agreement.budget is None else pounds(agreement.budget),
        "rag": a.rag, "rag_period": a.rag_period, "latest_achievement_pct": a.achievement_pct,
        "payments_total": pounds(figures.payments_total or 0),
        "spend_total": pounds(figures.spend_total or 0),
        "delivery_volumes": figures.volumes, "outcome_costs": figures.costs,
    }


def _sort_key(summary: AgreementPerformanceSummary) -> tuple[Any, ...]:
    # By RAG, then title: costs per outcome are in each measure's own unit, so one agreement's
    # cannot be ranked against another's.
    return (RAG_ORDER[summary.rag], summary.title or "", str(summary.agreement_id))


def get_measure_performance(db: Database, measure_id: UUID,
                            today: date | None = None) -> MeasurePerformance | None:
    """A measure's target against actual over time, with the RAG of every period (`today`:
    the day read for, which decides what is provisional; default today in business time)."""
    with db.reading() as tx:
        measure = _measures(tx, [str(measure_id)]).get(str(measure_id))
    if measure is None:
        return None
    return MeasurePerformance(**_measure_fields(measure, measure.facts.periods(),
                                                today_or_now(today)))


def get_agreement_performance(db: Database, agreement_id: UUID,
                              today: date | None = None) -> AgreementPerformance | None:
    """One agreement: per attributed outcome target against actual over its term, achievement
    and RAG per period, delivery volumes, payments, spend and cost per outcome."""
    day = today_or_now(today)
    with db.reading() as tx:
        agreement = _agreements(tx, [str(agreement_id)]).get(str(agreement_id))
        if agreement is None:
            return None
        measures = _measures(tx, sorted(agreement.weights))
    figures = _figures(agreement, measures, day)
    outcomes = []
    for measure_id, weight in sorted(agreement.weights.items()):
        measure = measures.get(measure_id)
        if measure is None:
            continue  # attributed before its definition reached this view
        in_term = [p for p in measure.facts.periods() if overlaps(p, agreement.term)]
        outcomes.append(AttributedOutcome(**_measure_fields(measure, in_term, day),
                                          weight=weight))
    volumes: dict[tuple[str, str, str], tuple[Decimal, int]] = {}
    totals: dict[tuple[str, str], Decimal] = {}
    for activity, unit, quantity, period_end in agreement.deliveries:
        key = (period_of(period_end, agreement.periodicity), activity, unit)
        sofar, reports = volumes.get(key, (ZERO, 0))
        volumes[key] = (sofar + quantity, reports + 1)
        totals[(activity, unit)] = totals.get((activity, unit), ZERO) + quantity
    payments: dict[str, list[Row]] = defaultdict(list)
    for row in agreement.payments:
        payments[str(row[0])].append(row)
    return AgreementPerformance(
        **_summary_fields(agreement, figures), periodicity=agreement.periodicity,
        outcomes=outcomes,
        achievement=[
            PeriodAchievement(period=p.period, achievement_pct=p.achievement_pct, rag=p.rag,
                              provisional=p.provisional,
                              measures=[UUID(m) for m in p.measures])
            for p in figures.assessment.periods
        ],
        deliveries=[
            DeliveryVolume(period=period, activity_type=activity, unit=unit, quantity=quantity,
                           reports=reports)
            for (period, activity, unit), (quantity, reports) in sorted(
                volumes.items(), key=lambda item: (period_order(item[0][0]), item[0][1:]))
        ],
        delivery_totals=[ActivityTotal(activity_type=a, unit=u, quantity=q)
                         for (a, u), q in sorted(totals.items())],
        payments=[_period_payment(period, rows) for period, rows in sorted(
            payments.items(), key=lambda item: period_order(item[0]))],
        spend=[PeriodSpend(period=p, amount=pounds(a)) for p, a in sorted(
            agreement.spend.items(), key=lambda item: period_order(item[0]))],
    )


def _period_payment(period: str, rows: list[Row]) -> PeriodPayment:
    history = [
        PaymentChange(calculation_id=calc, total=pounds(total),
                      previous_total=None if previous is None else pounds(previous),
                      difference=None if difference is None else pounds(difference),
                      reason=reason, achievement_pct=as_decimal(pct), calculated_at=at)
        for _, calc, total, pct, previous, difference, reason, at in rows
    ]
    latest = history[-1]
    return PeriodPayment(period=period, total=latest.total, achievement_pct=latest.achievement_pct,
                         calculation_id=latest.calculation_id, history=history)


def list_agreement_performance(
    db: Database, *, rag: Rag | None = None, unrated: bool = False,
    provider_id: UUID | None = None, limit: int = 1000, offset: int = 0,
    today: date | None = None,
) -> list[AgreementPerformanceSummary]:
    """Every agreement the view knows of, best first: by RAG (green, amber, red, none), then
    title. `rag` keeps one RAG, `unrated` keeps those with none; `provider_id` keeps the
    agreements it is a party to."""
    day = today_or_now(today)
    with db.reading() as tx:
        ids: list[str] | None = None
        if provider_id is not None:
            ids = [str(a) for (a,) in tx.execute(
                "SELECT agreement_id FROM pf_parties WHERE provider_id = ?", (str(provider_id),))]
        agreements = _agreements(tx, ids)
        measures = _measures(tx, sorted({m for a in agreements.values() for m in a.weights}))
    found = [AgreementPerformanceSummary(**_summary_fields(a, _figures(a, measures, day)))
             for a in agreements.values()]
    if rag is not None or unrated:
        found = [s for s in found if s.rag == rag]
    found.sort(key=_sort_key)
    return found[offset:offset + limit]


def agreement_parties(db: Database, agreement_id: UUID) -> list[UUID]:
    """The agreement's parties, as the integrator's AgreementDrafted named them."""
    with db.reading() as tx:
        rows = tx.execute("SELECT provider_id FROM pf_parties WHERE agreement_id = ?"
                          " ORDER BY ordinal", (str(agreement_id),))
    return [UUID(str(p)) for (p,) in rows]


__all__ = [
    "ActivityTotal",
    "AgreementPerformance",
    "AgreementPerformanceSummary",
    "AttributedOutcome",
    "DeliveryVolume",
    "MeasurePerformance",
    "PaymentChange",
    "PeriodAchievement",
    "PeriodPayment",
    "PeriodPoint",
    "PeriodSpend",
    "agreement_parties",
    "get_agreement_performance",
    "get_measure_performance",
    "list_agreement_performance",
]
