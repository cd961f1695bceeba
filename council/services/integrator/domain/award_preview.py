"""What an award would do to the market, before it is decided: the VCSE and SME share of
committed spend, each category's concentration with its provider counts, and how much of a
category would rest on one provider. No I/O here: the caller passes what is committed now
(from the read models) and the awards proposed.

Money is whole pence here, as the read models keep it; shares are per cent to two places and
the Herfindahl-Hirschman index (HHI) is the market page's (council.services.integrator.projections.
concentration), so the preview and the market page agree once the award is in force.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction

PENNY = Decimal("0.01")
DEPENDENT_FROM = Decimal(50)  # % of a category held by one provider: it rests on that provider


@dataclass(frozen=True)
class Held:
    """One provider's committed pence under one active agreement, and the categories it
    counts in: its need's category and every one above it."""

    provider_id: str
    categories: tuple[str, ...]
    pence: int


@dataclass(frozen=True)
class Proposed:
    """An award being considered: its providers share the allocation as a decision would."""

    provider_ids: tuple[str, ...]
    pence: int


@dataclass(frozen=True)
class Shares:
    total_pence: int
    vcse_pct: Decimal
    sme_pct: Decimal


@dataclass(frozen=True)
class CategoryEffect:
    category: str
    providers_before: int
    providers_after: int
    hhi_before: Decimal | None
    hhi_after: Decimal | None
    largest_after: str | None
    largest_share_after: Decimal | None

    @property
    def dependent(self) -> bool:
        """Whether one provider would hold half the category or more."""
        return self.largest_share_after is not None and \
            self.largest_share_after >= DEPENDENT_FROM


@dataclass(frozen=True)
class AwardPreview:
    before: Shares
    after: Shares
    categories: list[CategoryEffect]
    single_provider_awards: int  # awards resting on one provider alone


def split(pence: int, providers: int) -> list[int]:
    """An allocation shared equally, the pennies left over to the first provider (as a
    decision shares it: council.services.integrator.application._split)."""
    each = int((Decimal(pence) / providers).to_integral_value(rounding=ROUND_DOWN))
    return [each + pence - each * providers] + [each] * (providers - 1)


def percent(part: int, whole: int) -> Decimal:
    return (Decimal(100 * part) / Decimal(whole)).quantize(PENNY) if whole > 0 else \
        Decimal("0.00")


def hhi(amounts: list[int]) -> Decimal | None:
    """The sum of the squared % shares (10,000: one provider holds it all), exact, then to
    two places; None when nothing is held."""
    total = sum(amounts)
    if total <= 0:
        return None
    exact = Fraction(10_000 * sum(a * a for a in amounts), total * total)
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(PENNY)


def _shares(held: list[Held], kinds: dict[str, str]) -> Shares:
    total = sum(h.pence for h in held)
    by_kind: dict[str, int] = defaultdict(int)
    for h in held:
        by_kind[kinds.get(h.provider_id, "unknown")] += h.pence
    return Shares(total, percent(by_kind["vcse"], total), percent(by_kind["sme"], total))


def _by_provider(held: list[Held], category: str) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for h in held:
        if category in h.categories:
            found[h.provider_id] += h.pence
    return dict(found)


def preview(held: list[Held], kinds: dict[str, str], lineage: list[str],
            proposed: list[Proposed]) -> AwardPreview:
    """`held`: what is committed now; `kinds`: provider -> organisation type; `lineage`: the
    need's category and those above it, nearest first (where the awards will count);
    `proposed`: the awards being considered."""
    added = [Held(provider, tuple(lineage), pence)
             for award in proposed if award.provider_ids and award.pence > 0
             for provider, pence in zip(award.provider_ids,
                                        split(award.pence, len(award.provider_ids)),
                                        strict=True)]
    after = held + added
    effects: list[CategoryEffect] = []
    for category in lineage:
        was = _by_provider(held, category)
        will = _by_provider(after, category)
        largest = min(will, key=lambda p: (-will[p], p)) if will else None
        effects.append(CategoryEffect(
            category, len(was), len(will), hhi(list(was.values())), hhi(list(will.values())),
            largest, percent(will[largest], sum(will.values())) if largest else None))
    return AwardPreview(_shares(held, kinds), _shares(after, kinds), effects,
                        sum(1 for a in proposed if len(a.provider_ids) == 1 and a.pence > 0))
