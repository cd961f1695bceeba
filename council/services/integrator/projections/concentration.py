"""How concentrated committed spend is: the Herfindahl-Hirschman index (HHI), its bands, the
largest holder's share, and the index's movement by calendar quarter.

The quarterly history is worked out from the events applied, never from the date it is read:
each quarter's figure is the market as it stood at the quarter's last moment (23:59:59.999999
UTC on its last day) by the business time of the events (`occurred_at`): an agreement held from
its AgreementActivated to its AgreementEnded, its parties' allocations scaled by each
AgreementVaried up to then, as the commissioning projection scales them. So quarter by quarter it
is what the view "as of" the quarter's end shows. Only the quarter holding the moment of the view
(now, by council.kernel.clock, or the "as of" moment) is cut short at that moment, and marked
partial.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction

from pydantic import BaseModel, Field

from council.kernel.money import pence, pounds
from council.kernel.periods import QUARTERLY, Period
from council.services.integrator.projections.commissioning import PENNY, scale_allocations

# Concentration bands of the Herfindahl-Hirschman index (0..10,000), as the UK competition
# authorities' merger guidelines draw them.
CONCENTRATED_FROM = 1000
HIGHLY_CONCENTRATED_FROM = 2000
END_OF_DAY = time(23, 59, 59, 999999)

HHI_UNIT = (
    "HHI, 0 to 10,000: the sum of the squares of each provider's % share of committed spend "
    "(10,000 is one provider holding it all); exact, then rounded to 2 places")
BANDS = (
    f"under {CONCENTRATED_FROM:,} unconcentrated, {CONCENTRATED_FROM:,} to "
    f"{HIGHLY_CONCENTRATED_FROM:,} concentrated, {HIGHLY_CONCENTRATED_FROM:,} or more highly "
    "concentrated (the UK competition authorities' merger guideline bands)")


def concentration(hhi: Decimal) -> str:
    if hhi >= HIGHLY_CONCENTRATED_FROM:
        return "highly concentrated"
    if hhi >= CONCENTRATED_FROM:
        return "concentrated"
    return "unconcentrated"


def hhi_of(amounts: list[int]) -> Decimal | None:
    """The Herfindahl-Hirschman index of these holdings: the sum of the squared percentage
    shares, 10,000 for a monopoly; exact, then rounded to two places. None if nothing is held."""
    total = sum(amounts)
    if total <= 0:
        return None
    exact = Fraction(10_000 * sum(a * a for a in amounts), total * total)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(PENNY)


def percent(part: int, whole: int) -> Decimal:
    if whole <= 0:
        return Decimal("0.00")
    return (Decimal(100 * part) / Decimal(whole)).quantize(PENNY)


def largest(held: dict[str, int]) -> tuple[str | None, Decimal | None]:
    """The provider holding most of `held` (provider -> pence) and its % share; on a tie the
    first provider id in sorting order."""
    if not held or sum(held.values()) <= 0:
        return None, None
    top = min(held, key=lambda p: (-held[p], p))
    return top, percent(held[top], sum(held.values()))


# ---------------------------------------------------------------------- quarters


class QuarterConcentration(BaseModel):
    """One market's concentration at the end of one calendar quarter."""

    quarter: str = Field(description="calendar quarter, e.g. 2025-Q3 (July to September)")
    ends_on: date = Field(description="the quarter's last day")
    partial: bool = Field(
        description="true for the quarter holding the moment of the view (now, or the 'as of' "
                    "moment) when that is before the quarter's end: its figures are to that "
                    "moment, not to the quarter's end")
    committed: Decimal = Field(
        description="£, pounds and pence: committed spend in the market at the quarter's end "
                    "(at the moment of the view, if partial): the parties' allocations of the "
                    "agreements active then")
    providers_with_commitments: int = Field(
        description="count of providers holding any of that committed spend")
    largest_share_pct: Decimal | None = Field(
        description="%, 2 places: the largest provider's share of that committed spend; none "
                    "if nothing was committed")
    hhi: Decimal | None = Field(
        description=f"{HHI_UNIT}, of the shares of that committed spend; none if nothing was "
                    "committed")
    concentration: str | None = Field(description=f"the band of the index: {BANDS}")
    change: Decimal | None = Field(
        description="HHI points, 2 places: this quarter's index less the previous quarter's "
                    "(as shown, rounded); none for the first quarter or when either is none")


@dataclass(frozen=True)
class Quarter:
    label: str
    last_day: date
    end: datetime  # its last moment, UTC


def quarter_holding(day: date) -> Quarter:
    quarter = Period.containing(day, QUARTERLY)
    return Quarter(quarter.label, quarter.last,
                   datetime.combine(quarter.last, END_OF_DAY, tzinfo=UTC))


def quarters(first: datetime, last: datetime) -> Iterator[Quarter]:
    """Every calendar quarter from the one holding `first` to the one holding `last` (UTC)."""
    quarter = quarter_holding(first.astimezone(UTC).date())
    final = quarter_holding(last.astimezone(UTC).date())
    while quarter.last_day <= final.last_day:
        yield quarter
        quarter = quarter_holding(quarter.last_day + timedelta(days=1))


# ---------------------------------------------------------------------- agreements over time


@dataclass(frozen=True)
class AgreementTimeline:
    """What an agreement committed over time, from its events' business times."""

    need_id: str
    activated_at: datetime | None
    ended_at: datetime | None
    budget: int  # pence, as drafted
    parties: list[tuple[str, int]]  # provider, allocation in pence as drafted; lead first
    variations: list[tuple[datetime, int, int]] = field(default_factory=list)
    # (varied at, budget change, new budget), pence

    def held_at(self, moment: datetime) -> list[tuple[str, int]]:
        """Each party's allocation (pence) at `moment`; none unless active then."""
        if self.activated_at is None or self.activated_at > moment:
            return []
        if self.ended_at is not None and self.ended_at <= moment:
            return []
        budget = pounds(self.budget)
        allocations = [pounds(a) for _, a in self.parties]
        for _, _, new_budget in self._in_order(moment):
            allocations = scale_allocations(allocations, budget, pounds(new_budget))
            budget = pounds(new_budget)
        return [(p, pence(a)) for (p, _), a in zip(self.parties, allocations, strict=True)]

    def _in_order(self, moment: datetime) -> list[tuple[datetime, int, int]]:
        """The variations made by `moment` in the order they were made: by time, and at one
        time the one that starts from the budget the last one left (the stream's order)."""
        left = sorted((v for v in self.variations if v[0] <= moment), key=lambda v: v[0])
        ordered: list[tuple[datetime, int, int]] = []
        budget = self.budget
        while left:
            same = [v for v in left if v[0] == left[0][0]]
            chosen = next((v for v in same if v[2] - v[1] == budget), same[0])
            ordered.append(chosen)
            left.remove(chosen)
            budget = chosen[2]
        return ordered


def history(timelines: Iterable[AgreementTimeline], market_of: Callable[[str], str | None],
            at: datetime) -> dict[str, list[QuarterConcentration]]:
    """Market -> its concentration per quarter, from the quarter of the first activation to the
    quarter holding `at` (partial unless `at` is its last moment). `market_of` gives a need's
    market (None: a need the view does not know, left out as the headline figures leave it)."""
    known = [(t, m) for t in timelines if t.activated_at is not None and t.activated_at <= at
             for m in [market_of(t.need_id)] if m is not None]
    if not known:
        return {}
    markets = sorted({m for _, m in known})
    found: dict[str, list[QuarterConcentration]] = {m: [] for m in markets}
    first = min(t.activated_at for t, _ in known if t.activated_at is not None)
    for quarter in quarters(first, at):
        cutoff = min(quarter.end, at)
        held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for timeline, market in known:
            for provider, amount in timeline.held_at(cutoff):
                held[market][provider] += amount
        for market in markets:
            before = found[market][-1].hhi if found[market] else None
            found[market].append(_quarter(quarter, cutoff < quarter.end,
                                          dict(held.get(market, {})), before))
    return found


def _quarter(quarter: Quarter, partial: bool, held: dict[str, int],
             before: Decimal | None) -> QuarterConcentration:
    hhi = hhi_of(list(held.values()))
    return QuarterConcentration(
        quarter=quarter.label, ends_on=quarter.last_day, partial=partial,
        committed=pounds(sum(held.values())),
        providers_with_commitments=len(held),
        largest_share_pct=largest(held)[1], hhi=hhi,
        concentration=concentration(hhi) if hhi is not None else None,
        change=hhi - before if hhi is not None and before is not None else None,
    )
