"""The council's published performance rule: how an agreement is judged red, amber or green on
its outcome measures, and what one unit of improvement has cost. The outcomes service and the
integrator both judge agreements by it, so they agree; it is pure (no I/O, no clock).

Periods are the kernel's (council.kernel.periods); money is the kernel's (council.kernel.money).

The RAG rule. With improvement(v) the change from the baseline in the better direction
(v - baseline where higher is better, baseline - v where lower is better):

- per measure and period:
  * none (grey): the period has no target, or no measurement;
  * GREEN: the actual meets or beats the target (actual >= target where higher is better,
    actual <= target where lower is better);
  * AMBER: the actual falls short of the target by no more than 10% of the targeted improvement,
    improvement(target): shortfall = improvement(target) - improvement(actual) <= 10% of it;
  * RED: further short than that; with no baseline, or a target that is no improvement on the
    baseline, there is no amber band and a miss is red.
  The measure's RAG is that of its latest ended period with both a target and a measurement.
- per agreement and period: achievement = sum of weight x improvement(actual) / sum of weight x
  improvement(target) over its attributed measures that have a baseline, a target and a
  measurement for the period, each improvement counted from zero as the payment rule counts it.
  GREEN at 100% or more, AMBER from 90% (i.e. within 10% of the targeted improvement), RED below;
  none if nothing is targeted. Only periods that overlap the agreement's term count (all of them
  while the term is not known). The agreement's RAG is that of its latest assessed period that
  has ended. (For one measure with a baseline and an improving target the two rules agree
  exactly.) The thresholds compare exact decimals; the percentage shown is rounded to 0.1, half
  up.

Cost per outcome is worked out per attributed measure, in the measure's own unit (an index
summed across measures of different units would mean nothing):

  cost = money / (weight x improvement), to the penny (half up), in "£ per <unit> reduced" (or
  "raised", by the measure's direction; a "%" measure's unit is the percentage point)

- money: the spend the integrator recorded for the agreement (what it has cost the council), or,
  while none is recorded, the latest total of every period's results payment; the same money is
  set against each of its measures (there is no fair way to split it between them);
- improvement: from the measure's baseline to its latest measurement in the latest ended period
  of the agreement's term, in the better direction;
- no cost when there is no money, no baseline, no measurement in the term, no attributed share,
  or no improvement (a measure that got worse has no cost per improvement): the explanation
  says which instead of a number.

Each cost carries its explanation: which money, over what improvement, from which baseline to
which value.

"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.money import pounds, to_penny
from council.kernel.periods import Term, ended, overlaps, period_order

TENTH = Decimal("0.1")
HUNDRED = Decimal(100)
ZERO = Decimal(0)


class Rag(StrEnum):
    """Red, amber or green; no RAG (grey, null) when there is nothing to judge."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


RAG_ORDER: dict[Rag | None, int] = {Rag.GREEN: 0, Rag.AMBER: 1, Rag.RED: 2, None: 3}


# ---------------------------------------------------------------------- the rule


def improvement(lower_is_better: bool, baseline: Decimal, value: Decimal) -> Decimal:
    """The change from the baseline in the better direction (negative if it is worse)."""
    return baseline - value if lower_is_better else value - baseline


def measure_rag(lower_is_better: bool, baseline: Decimal | None, target: Decimal | None,
                actual: Decimal | None) -> Rag | None:
    """One measure in one period, by the rule in the module docstring."""
    if target is None or actual is None:
        return None
    if (actual <= target) if lower_is_better else (actual >= target):
        return Rag.GREEN
    if baseline is not None:
        targeted = improvement(lower_is_better, baseline, target)
        shortfall = targeted - improvement(lower_is_better, baseline, actual)
        if targeted > 0 and 10 * shortfall <= targeted:
            return Rag.AMBER
    return Rag.RED


def achievement_rag(achieved: Decimal, targeted: Decimal) -> Rag | None:
    """Weighted improvement achieved against targeted: green from 100%, amber from 90%."""
    if targeted <= 0:
        return None
    if achieved >= targeted:
        return Rag.GREEN
    if 10 * achieved >= 9 * targeted:
        return Rag.AMBER
    return Rag.RED


def achievement_pct(achieved: Decimal, targeted: Decimal) -> Decimal | None:
    """As the payment rule shows it: a percentage to 0.1, half up."""
    if targeted <= 0:
        return None
    return (achieved / targeted * HUNDRED).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MeasureFacts:
    """What the rule needs of one measure: direction, baseline, targets and actuals by period
    (and its name, unit and baseline period, to say what its cost per outcome is in)."""

    measure_id: str
    lower_is_better: bool
    baseline: Decimal | None
    targets: Mapping[str, Decimal]
    actuals: Mapping[str, Decimal]
    name: str = ""
    unit: str = ""
    baseline_period: str | None = None

    def periods(self) -> list[str]:
        return sorted(set(self.targets) | set(self.actuals), key=period_order)

    def rag(self, period: str) -> Rag | None:
        return measure_rag(self.lower_is_better, self.baseline, self.targets.get(period),
                           self.actuals.get(period))

    def achieved(self, period: str) -> Decimal:
        """Improvement in the period counted from zero (zero without a baseline or actual)."""
        actual = self.actuals.get(period)
        if self.baseline is None or actual is None:
            return ZERO
        return max(improvement(self.lower_is_better, self.baseline, actual), ZERO)

    def targeted(self, period: str) -> Decimal:
        target = self.targets.get(period)
        if self.baseline is None or target is None:
            return ZERO
        return max(improvement(self.lower_is_better, self.baseline, target), ZERO)

    def latest_rag(self, today: date, periods: Sequence[str] | None = None,
                   ) -> tuple[Rag | None, str | None]:
        """The RAG of the latest ended period (of `periods`, default all) with both a target
        and a measurement, and that period."""
        for period in reversed(self.periods() if periods is None else periods):
            if period in self.targets and period in self.actuals and ended(period, today):
                return self.rag(period), period
        return None, None

    def latest_measured(self, today: date, term: Term | None) -> str | None:
        """The latest ended period of the term with a measurement."""
        found = [p for p in self.actuals if ended(p, today) and overlaps(p, term)]
        return max(found, key=period_order) if found else None


@dataclass(frozen=True)
class PeriodAssessment:
    period: str
    achieved: Decimal  # weighted improvement achieved
    targeted: Decimal  # weighted improvement targeted
    achievement_pct: Decimal | None
    rag: Rag | None
    measures: tuple[str, ...]  # the measures assessed
    provisional: bool = False  # the period has not ended: it sets no RAG


@dataclass(frozen=True)
class Assessment:
    """An agreement judged on its attributed measures."""

    periods: tuple[PeriodAssessment, ...] = ()
    rag: Rag | None = None
    rag_period: str | None = None
    achievement_pct: Decimal | None = None


def assess(measures: Mapping[str, MeasureFacts], weights: Mapping[str, Decimal],
           term: Term | None, today: date) -> Assessment:
    """Per period, the weighted achievement of the attributed measures (`weights`: measure id ->
    weight) that have a baseline, a target and a measurement for it; the latest assessed period
    that has ended on `today` gives the agreement's RAG (later ones are provisional)."""
    attributed = [(measures[m], w) for m, w in sorted(weights.items()) if m in measures]
    periods = sorted({p for facts, _ in attributed for p in facts.periods() if overlaps(p, term)},
                     key=period_order)
    assessed: list[PeriodAssessment] = []
    for period in periods:
        achieved = targeted = ZERO
        names: list[str] = []
        for facts, weight in attributed:
            if facts.baseline is None or period not in facts.targets \
                    or period not in facts.actuals:
                continue
            achieved += weight * facts.achieved(period)
            targeted += weight * facts.targeted(period)
            names.append(facts.measure_id)
        if names:
            assessed.append(PeriodAssessment(period, achieved, targeted,
                                             achievement_pct(achieved, targeted),
                                             achievement_rag(achieved, targeted), tuple(names),
                                             provisional=not ended(period, today)))
    judged = [a for a in assessed if a.rag is not None and not a.provisional]
    latest = judged[-1] if judged else None
    return Assessment(
        periods=tuple(assessed), rag=latest.rag if latest else None,
        rag_period=latest.period if latest else None,
        achievement_pct=latest.achievement_pct if latest else None,
    )


# ---------------------------------------------------------------------- cost per outcome


class OutcomeCost(BaseModel):
    """What one unit of an attributed measure's improvement has cost, in the measure's unit,
    and how that was worked out (the rule is in the module docstring)."""

    measure_id: UUID
    measure_name: str
    unit: str = Field(description="the measure's unit")
    cost_unit: str = Field(description="what the cost is per, e.g. '£ per percentage point "
                                       "reduced'")
    cost: Decimal | None = Field(description="money / attributed improvement, to the penny; "
                                             "none when there is nothing to divide (see how)")
    money: Decimal | None = Field(description="the money set against the improvement")
    money_basis: str | None = Field(description="spend (recorded by the integrator) or payments "
                                                "(results payments, while no spend is recorded)")
    baseline: Decimal | None
    baseline_period: str | None
    latest: Decimal | None = Field(description="the latest measurement in the term (ended "
                                               "periods only)")
    latest_period: str | None
    improvement: Decimal | None = Field(description="from the baseline to the latest, in the "
                                                    "better direction (negative: worse)")
    weight: Decimal = Field(description="the agreement's attributed share of the outcome")
    attributed_improvement: Decimal | None = Field(description="weight x improvement")
    how: str = Field(description="how the cost was worked out, or why there is none")


def money_of(payments: int | None, spend: int | None) -> tuple[int | None, str | None]:
    """The money (pence) set against outcomes and which it is: the spend recorded, else the
    results payments calculated, else none."""
    if spend is not None:
        return spend, "spend"
    if payments is not None:
        return payments, "payments"
    return None, None


_PERCENT = ("%", "percent", "per cent")


def _percent(unit: str) -> str | None:
    """What follows the per cent sign of a percentage unit ("" for "%"), else None."""
    for sign in _PERCENT:
        if unit.startswith(sign):
            return unit[len(sign):]
    return None


def _one(unit: str) -> str:
    """One of a unit, for "£ per ...": people -> person, households per year -> household
    per year, a percentage -> percentage point."""
    rest = _percent(unit)
    if rest is not None:
        return f"percentage point{rest}"
    first, _, tail = unit.partition(" ")
    if first == "people":
        first = "person"
    elif len(first) > 3 and first.endswith("s") and not first.endswith("ss"):
        first = first[:-1]
    return f"{first} {tail}".strip()


def cost_unit(unit: str, lower_is_better: bool) -> str:
    """What a measure's cost per outcome is per: "£ per percentage point reduced"."""
    return f"£ per {_one(unit.strip())} {'reduced' if lower_is_better else 'raised'}"


def _amount(value: Decimal, unit: str) -> str:
    """A change in a measure with its unit: 2.69 percentage points, 40 households per year."""
    rest = _percent(unit.strip())
    if rest is not None:
        return f"{value} percentage point{'' if abs(value) == 1 else 's'}{rest}"
    return f"{value} {unit.strip()}"


def outcome_cost(facts: MeasureFacts, weight: Decimal, term: Term | None, today: date,
                 payments: int | None, spend: int | None) -> OutcomeCost:
    """One attributed measure's cost per unit of improvement, by the rule in the docstring."""
    money, basis = money_of(payments, spend)
    period = facts.latest_measured(today, term)
    latest = facts.actuals[period] if period is not None else None
    change = None if facts.baseline is None or latest is None else improvement(
        facts.lower_is_better, facts.baseline, latest)
    share = None if change is None else weight * change
    fields: dict[str, Any] = {
        "measure_id": UUID(facts.measure_id), "measure_name": facts.name or facts.measure_id,
        "unit": facts.unit, "cost_unit": cost_unit(facts.unit, facts.lower_is_better),
        "money": None if money is None else pounds(money), "money_basis": basis,
        "baseline": facts.baseline, "baseline_period": facts.baseline_period,
        "latest": latest, "latest_period": period, "improvement": change, "weight": weight,
        "attributed_improvement": share,
    }
    from_to = f"from {facts.baseline} in {facts.baseline_period or 'the baseline period'}" \
        f" to {latest} in {period}"
    direction = "lower" if facts.lower_is_better else "higher"
    if facts.baseline is None:
        return OutcomeCost(**fields, cost=None, how="the measure has no baseline: no "
                           "improvement to cost")
    if change is None:
        return OutcomeCost(**fields, cost=None, how="no measurement in an ended period of the "
                           f"agreement's term yet (baseline {facts.baseline})")
    if change <= 0:
        return OutcomeCost(**fields, cost=None, how=f"no improvement: {from_to} ({direction} "
                           "is better), so no cost per improvement")
    if weight <= 0:
        return OutcomeCost(**fields, cost=None, how="attributed weight 0: none of the "
                           "improvement is the agreement's")
    if money is None:
        return OutcomeCost(**fields, cost=None, how="no spend recorded and no results payment "
                           "calculated yet")
    assert share is not None
    cost = to_penny(pounds(money) / share)
    spent = "spent (recorded by the integrator)" if basis == "spend" else \
        "in results payments"
    return OutcomeCost(**fields, cost=cost, how=(
        f"£{pounds(money):,.2f} {spent} / (weight {weight} x "
        f"{_amount(change, facts.unit)} {'reduced' if facts.lower_is_better else 'raised'}, "
        f"{from_to}) = £{cost:,.2f} {cost_unit(facts.unit, facts.lower_is_better)[2:]}"))


def outcome_costs(measures: Mapping[str, MeasureFacts], weights: Mapping[str, Decimal],
                  term: Term | None, today: date, payments: int | None,
                  spend: int | None) -> list[OutcomeCost]:
    """The cost per outcome of each attributed measure known here, by name."""
    found = [outcome_cost(measures[m], w, term, today, payments, spend)
             for m, w in weights.items() if m in measures]
    return sorted(found, key=lambda c: (c.measure_name.casefold(), str(c.measure_id)))


# ---------------------------------------------------------------------- delivery volumes


class UnitVolume(BaseModel):
    """Units delivered of one kind: volumes are only ever added up within a unit."""

    unit: str
    quantity: Decimal = Field(description="after corrections")
    activity_types: list[str] = Field(description="the activities delivered in this unit")


def volumes_by_unit(deliveries: Iterable[tuple[str, str, Decimal]]) -> list[UnitVolume]:
    """(activity type, unit, quantity) summed per unit, by unit."""
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    activities: dict[str, set[str]] = defaultdict(set)
    for activity, unit, quantity in deliveries:
        totals[unit] += quantity
        activities[unit].add(activity)
    return [UnitVolume(unit=u, quantity=totals[u], activity_types=sorted(activities[u]))
            for u in sorted(totals)]
