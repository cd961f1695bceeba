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

The agreement's term (its start to its end: moved by an extension, cut short by an early
ending) bounds what is paid:

- A period the term does not cover at all earns nothing: it has one line, "Outside the term",
  and a total of zero (the payments process calculates nothing for it, or recalculates a payment
  made for it before the term was known to zero).
- A period the term covers only in part (the first and last of an agreement, usually) is
  pro-rated by days: with f = days of the period in the term / days in the period (91/92 for a
  term starting on 2 October, for the October to December quarter),
  * every amount the rate card fixes per period is multiplied by f: each outcome line
    (improvement x rate x weight: the improvement is a level measured over the whole period, so
    the term earns its share of it), the band's bonus or penalty (before the provider's risk
    share), each line's cap and the period cap;
  * a delivery line's threshold (units a period) is multiplied by f too, so a part period is not
    held to a whole period's volume; the units are those of the reports counted in the period
    (by the day their own period ends) whose period shares a day with the term, each paid in
    full at the rate: they were delivered under the agreement, in its term (a provider is not
    expected to split a report at the term's first or last day), so nothing to pro-rate;
  * the achievement percentage, and so the band, are not pro-rated (a ratio of improvements);
  * each amount is rounded to the penny once, after multiplying by f (half up);
  * the first line, "Part period", says so (amount zero): "the term covers 91 of the 92 days
    of 2023-Q4: ...".
- A period the term covers whole is calculated exactly as above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from council.kernel.money import PENNY, to_penny
from council.kernel.periods import period_bounds

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Cover:
    """How much of a period an agreement's term covers: `days` of its `days_in_period`."""

    period: str
    starts_on: date  # the term's first day
    ends_on: date  # the term's last day
    days: int
    days_in_period: int

    @property
    def whole(self) -> bool:
        return self.days == self.days_in_period

    @property
    def outside(self) -> bool:
        return self.days == 0

    @property
    def ratio(self) -> str:
        return f"{self.days}/{self.days_in_period}"

    def share(self, amount: Decimal) -> Decimal:
        """`amount` x days covered / days in the period, exact (rounded by the caller)."""
        return amount * self.days / self.days_in_period


def cover(period: str, starts_on: date, ends_on: date) -> Cover:
    """How much of `period` the term from `starts_on` to `ends_on` (both included) covers."""
    first, last = period_bounds(period)
    days = max((min(last, ends_on) - max(first, starts_on)).days + 1, 0)
    return Cover(period, starts_on, ends_on, days, (last - first).days + 1)


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


def _part(part: Cover | None) -> Cover | None:
    """The cover when it pro-rates anything (None for a whole period, or none given)."""
    return part if part is not None and not part.whole else None


def _times(part: Cover | None) -> str:
    return f" x {part.ratio}" if part is not None else ""


def _cap_of(cap: Decimal | None, part: Cover | None) -> tuple[Decimal | None, str]:
    """A per-period cap, pro-rated for a part period; and how that cap was reached."""
    if cap is None or part is None:
        return cap, ""
    return to_penny(part.share(cap)), f" (£{cap:,.2f} x {part.ratio})"


def _capped(amount: Decimal, cap: Decimal | None,
            part: Cover | None = None) -> tuple[Decimal, str]:
    limit, how = _cap_of(cap, part)
    if limit is not None and amount > limit:
        return limit, f", capped at £{limit:,.2f}{how}"
    return amount, ""


def delivery_line(rate: DeliveryRate, units: Decimal, part: Cover | None = None) -> Line:
    name = f"Delivery: {rate.activity_type}"
    part = _part(part)
    threshold, shown = rate.threshold, f"{rate.threshold}"
    if part is not None and rate.threshold:
        threshold = part.share(rate.threshold)  # compared exactly, shown to two places
        shown += f" x {part.ratio} = {threshold.quantize(PENNY, rounding=ROUND_HALF_UP)}"
    if units < threshold:
        return Line(name, f"{units} units, below the threshold of {shown}: nothing due",
                    Decimal(0))
    amount, capped = _capped(to_penny(units * rate.rate), rate.cap, part)
    return Line(name, f"{units} units x £{rate.rate:,.2f}{capped}", amount)


def outcome_line(rate: OutcomeRate, result: OutcomeResult, part: Cover | None = None) -> Line:
    name = f"Outcome: {rate.label or rate.measure_id}"
    part = _part(part)
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
    earned = better * rate.rate * rate.weight
    if part is not None:
        earned = part.share(earned)
    amount, capped = _capped(to_penny(earned), rate.cap, part)
    return Line(
        name,
        f"improvement of {better} on the baseline {result.baseline} x £{rate.rate:,.2f} "
        f"x weight {rate.weight}{_times(part)}{capped}",
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


def band_line(card: RateCard, pct: Decimal, part: Cover | None = None) -> Line | None:
    part = _part(part)
    for band in card.bands:
        if pct >= band.min_pct and (band.max_pct is None or pct < band.max_pct):
            adjustment = part.share(band.adjustment) if part is not None else band.adjustment
            if band.adjustment >= 0:
                kind = "Bonus" if band.adjustment > 0 else "Band"
                how = f"; £{band.adjustment:,.2f} bonus{_times(part)}" if (
                    part is not None and band.adjustment > 0) else ""
                return Line(f"{kind}: {band.label}", f"{pct}% of target achieved{how}",
                            to_penny(adjustment))
            share = to_penny(adjustment * card.provider_risk_pct / HUNDRED)
            penalty = f"£{-band.adjustment:,.2f} penalty" + (
                f" x {part.ratio} = £{-to_penny(adjustment):,.2f}" if part is not None else "")
            return Line(
                f"Penalty: {band.label}",
                f"{pct}% of target achieved; {penalty}, the provider bearing "
                f"{card.provider_risk_pct}%",
                share,
            )
    return None


def outside_the_term(part: Cover) -> Calculation:
    """A period the agreement's term does not cover: nothing due, and why."""
    first, last = period_bounds(part.period)
    return Calculation(part.period, (Line(
        "Outside the term",
        f"the agreement's term, {part.starts_on} to {part.ends_on}, does not cover "
        f"{part.period} ({first} to {last}): nothing due",
        Decimal(0)),), Decimal("0.00"), None)


def part_period_line(part: Cover) -> Line:
    return Line(
        "Part period",
        f"the term covers {part.days} of the {part.days_in_period} days of {part.period}: "
        f"outcome lines, the bonus or penalty, delivery thresholds, and line and period caps "
        f"x {part.ratio}; units delivered in the term are paid in full",
        Decimal(0))


def calculate(
    card: RateCard, period: str, units: Mapping[str, Decimal],
    results: Mapping[str, OutcomeResult], term: Cover | None = None,
) -> Calculation:
    """The payment due for `period` from the units delivered per activity type and the outcome
    results per measure; `term`, how much of the period the agreement's term covers (None: all
    of it), pro-rates it as the module docstring says."""
    if term is not None and term.outside:
        return outside_the_term(term)
    part = _part(term)
    lines = [part_period_line(part)] if part is not None else []
    lines += [delivery_line(r, units.get(r.activity_type, Decimal(0)), part)
              for r in card.delivery]
    lines += [
        outcome_line(r, results[r.measure_id], part) if r.measure_id in results else
        Line(f"Outcome: {r.measure_id}", "measure not known for the period: nothing due",
             Decimal(0))
        for r in card.outcomes
    ]
    pct = achievement(card, results)
    if pct is not None and (band := band_line(card, pct, part)) is not None:
        lines.append(band)
    subtotal = sum((line.amount for line in lines), Decimal(0))
    total = max(subtotal, Decimal(0))
    if total != subtotal:
        lines.append(Line("Floor", "the payment cannot be negative", -subtotal))
    limit, how = _cap_of(card.period_cap, part)
    if limit is not None and total > limit:
        lines.append(Line("Period cap", f"the period's payment is capped at £{limit:,.2f}{how}",
                          limit - total))
        total = limit
    return Calculation(period, tuple(lines), to_penny(total), pct)
