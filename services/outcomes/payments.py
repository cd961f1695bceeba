"""Payment by results: an agreement's rate card turns one period's delivery and outcome data into
a payment, with the calculation shown line by line. Pure functions, Decimal pounds, no I/O.

How a period's payment is worked out (each amount rounded to the penny, half up):

1. Delivery lines: for each activity type on the rate card, the units delivered in the period
   (after corrections). Below the line's threshold the line pays nothing; at or above it every
   unit is paid at the rate. The line's cap limits its amount.
2. Outcome lines: for each measure, the improvement on the baseline in the period (baseline minus
   actual where lower is better, actual minus baseline where higher is better; never below
   zero), times the rate, times the agreement's attribution weight for that measure. Below the
   line's threshold of improvement it pays nothing; its cap limits it.
3. Performance band: achievement is the weighted improvement against the target improvement for
   the period (from the measure's trajectory), as a percentage. The band it falls in adds a bonus
   (a positive amount) or a penalty (a negative one).
4. Risk share: the provider bears its agreed share (`provider_risk_pct`) of a penalty; the council
   bears the rest. Bonuses are paid in full.
5. The total is the sum of the lines, never below zero, and no more than the period cap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

PENNY = Decimal("0.01")
HUNDRED = Decimal(100)


def pounds(value: Decimal) -> Decimal:
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


# --- periods: a month ("2026-04") or a quarter ("2026-Q2") --------------------------------------

_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")


def period_of(day: date, periodicity: str) -> str:
    """The period of `periodicity` ("monthly" or "quarterly") containing `day`."""
    if periodicity == "monthly":
        return f"{day.year:04d}-{day.month:02d}"
    if periodicity == "quarterly":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    raise ValueError(f"unknown periodicity {periodicity!r}")


def periodicity_of(period: str) -> str:
    """"monthly" for a month, "quarterly" for a quarter."""
    if _MONTH.match(period):
        return "monthly"
    if _QUARTER.match(period):
        return "quarterly"
    raise ValueError(f"{period!r} is neither a month (2026-04) nor a quarter (2026-Q2)")


def period_bounds(period: str) -> tuple[date, date]:
    """The first and last day of a period."""
    if found := _MONTH.match(period):
        year, month = int(found[1]), int(found[2])
        first = date(year, month, 1)
        after = date(year + month // 12, month % 12 + 1, 1)
    elif found := _QUARTER.match(period):
        year, quarter = int(found[1]), int(found[2])
        first = date(year, 3 * quarter - 2, 1)
        after = date(year + quarter // 4, (3 * quarter) % 12 + 1, 1)
    else:
        raise ValueError(f"{period!r} is neither a month (2026-04) nor a quarter (2026-Q2)")
    return first, after - timedelta(days=1)


@dataclass(frozen=True)
class DeliveryRate:
    activity_type: str
    rate: Decimal  # pounds per unit
    threshold: Decimal = Decimal(0)  # units in the period before the line pays at all
    cap: Decimal | None = None  # most the line pays in a period


@dataclass(frozen=True)
class OutcomeRate:
    measure_id: str
    rate: Decimal  # pounds per unit of improvement
    weight: Decimal = Decimal(1)  # the agreement's attributed share of the outcome, 0..1
    threshold: Decimal = Decimal(0)  # improvement before the line pays at all
    cap: Decimal | None = None
    label: str | None = None  # how the line names the measure (default: its id)


@dataclass(frozen=True)
class Band:
    """Achievement from `min_pct` (inclusive) to `max_pct` (exclusive; None = no upper bound)
    earns `adjustment`: a bonus if positive, a penalty if negative."""

    min_pct: Decimal
    max_pct: Decimal | None
    adjustment: Decimal
    label: str


@dataclass(frozen=True)
class RateCard:
    delivery: Sequence[DeliveryRate] = ()
    outcomes: Sequence[OutcomeRate] = ()
    bands: Sequence[Band] = ()
    provider_risk_pct: Decimal = HUNDRED  # the provider's share of a penalty
    period_cap: Decimal | None = None


@dataclass(frozen=True)
class OutcomeResult:
    """One measure in the period: where it started, where it stands, what was targeted."""

    baseline: Decimal
    actual: Decimal | None  # None: no measurement for the period (yet)
    target: Decimal | None  # the trajectory's value for the period
    lower_is_better: bool


@dataclass(frozen=True)
class Line:
    description: str
    basis: str  # how the amount was reached, in words and numbers
    amount: Decimal


@dataclass(frozen=True)
class Calculation:
    period: str
    lines: tuple[Line, ...] = field(default_factory=tuple)
    total: Decimal = Decimal(0)
    achievement_pct: Decimal | None = None


def improvement(result: OutcomeResult, value: Decimal | None) -> Decimal:
    """How far `value` is better than the baseline (zero if it is not better, or unknown)."""
    if value is None:
        return Decimal(0)
    change = result.baseline - value if result.lower_is_better else value - result.baseline
    return max(change, Decimal(0))


def _capped(amount: Decimal, cap: Decimal | None) -> tuple[Decimal, str]:
    if cap is not None and amount > cap:
        return cap, f", capped at £{cap:,.2f}"
    return amount, ""


def delivery_line(rate: DeliveryRate, units: Decimal) -> Line:
    name = f"Delivery: {rate.activity_type}"
    if units < rate.threshold:
        return Line(name, f"{units} units, below the threshold of {rate.threshold}: nothing due",
                    Decimal(0))
    amount, capped = _capped(pounds(units * rate.rate), rate.cap)
    return Line(name, f"{units} units x £{rate.rate:,.2f}{capped}", amount)


def outcome_line(rate: OutcomeRate, result: OutcomeResult) -> Line:
    name = f"Outcome: {rate.label or rate.measure_id}"
    if result.actual is None:
        return Line(name, "no measurement for the period yet: nothing due", Decimal(0))
    better = improvement(result, result.actual)
    if better < rate.threshold:
        return Line(
            name,
            f"improvement of {better} on the baseline {result.baseline}, below the threshold "
            f"of {rate.threshold}: nothing due",
            Decimal(0),
        )
    amount, capped = _capped(pounds(better * rate.rate * rate.weight), rate.cap)
    return Line(
        name,
        f"improvement of {better} on the baseline {result.baseline} x £{rate.rate:,.2f} "
        f"x weight {rate.weight}{capped}",
        amount,
    )


def achievement(card: RateCard, results: Mapping[str, OutcomeResult]) -> Decimal | None:
    """Weighted improvement achieved against the improvement targeted, as a percentage."""
    achieved = targeted = Decimal(0)
    for rate in card.outcomes:
        result = results.get(rate.measure_id)
        if result is None or result.target is None or result.actual is None:
            continue
        achieved += improvement(result, result.actual) * rate.weight
        targeted += improvement(result, result.target) * rate.weight
    if targeted == 0:
        return None
    return (achieved / targeted * HUNDRED).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def band_line(card: RateCard, pct: Decimal) -> Line | None:
    for band in card.bands:
        if pct >= band.min_pct and (band.max_pct is None or pct < band.max_pct):
            if band.adjustment >= 0:
                kind = "Bonus" if band.adjustment > 0 else "Band"
                return Line(f"{kind}: {band.label}", f"{pct}% of target achieved",
                            pounds(band.adjustment))
            share = pounds(band.adjustment * card.provider_risk_pct / HUNDRED)
            return Line(
                f"Penalty: {band.label}",
                f"{pct}% of target achieved; £{-band.adjustment:,.2f} penalty, the provider "
                f"bearing {card.provider_risk_pct}%",
                share,
            )
    return None


def calculate(
    card: RateCard, period: str, units: Mapping[str, Decimal],
    results: Mapping[str, OutcomeResult],
) -> Calculation:
    """The payment due for `period` from the units delivered per activity type and the outcome
    results per measure."""
    lines = [delivery_line(r, units.get(r.activity_type, Decimal(0))) for r in card.delivery]
    lines += [
        outcome_line(r, results[r.measure_id]) if r.measure_id in results else
        Line(f"Outcome: {r.measure_id}", "measure not known for the period: nothing due",
             Decimal(0))
        for r in card.outcomes
    ]
    pct = achievement(card, results)
    if pct is not None and (band := band_line(card, pct)) is not None:
        lines.append(band)
    subtotal = sum((line.amount for line in lines), Decimal(0))
    total = max(subtotal, Decimal(0))
    if total != subtotal:
        lines.append(Line("Floor", "the payment cannot be negative", -subtotal))
    total, capped = _capped(total, card.period_cap)
    if capped:
        lines.append(Line("Period cap", f"the period's payment is capped at "
                          f"£{card.period_cap:,.2f}", total - max(subtotal, Decimal(0))))
    return Calculation(period, tuple(lines), pounds(total), pct)
