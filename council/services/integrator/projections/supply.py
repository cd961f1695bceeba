"""Supply gaps by area and category: where the council wants a service and nobody approved can
deliver it there.

Demand is an open need: its service area is a category of the service taxonomy and its
population names the areas it is for. Supply is an approved provider's capability: a provider
holds a category in an area when it is approved and has a capability in that category or one
below it (a need for "adult social care" is met by home care; a need for "cleaning" is not met
by a provider offering only "facilities"), and the capability names the area, or names none and
the provider serves the area (the rule the registry's directory uses). Areas are matched as
written, ignoring case and surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.taxonomy import taxonomy

POOLED = "£, pounds and pence: the need's budget envelope plus its partners' contributions"


class NeedRef(BaseModel):
    need_id: UUID
    title: str
    pooled_budget: Decimal = Field(description=POOLED)


class SupplyGap(BaseModel):
    area: str = Field(description="as the first need wanting it there names it")
    category: str = Field(description="the needs' service area (a taxonomy code)")
    needs: list[NeedRef] = Field(description="open needs wanting the category in the area")
    approved_providers_elsewhere: int = Field(
        description="count of approved providers holding the category (or one below it) in "
                    "other areas only: who might be asked to extend")


@dataclass(frozen=True)
class Demand:
    need: NeedRef
    category: str
    areas: tuple[str, ...]


@dataclass(frozen=True)
class Offer:
    """One approved provider's capability and the areas it holds it in."""

    provider_id: str
    category: str
    areas: frozenset[str]  # as area_key() gives them


def area_key(area: str) -> str:
    return area.strip().casefold()


def offer(provider_id: str, category: str, capability_areas: Iterable[str],
          areas_served: Iterable[str]) -> Offer:
    """The capability's own areas, or, when it names none, the areas the provider serves."""
    areas = [a for a in capability_areas if a.strip()] or list(areas_served)
    return Offer(provider_id, category, frozenset(area_key(a) for a in areas if a.strip()))


def supply_gaps(demand: Iterable[Demand], offers: list[Offer]) -> list[SupplyGap]:
    """Each (area, category) some open need wants where no approved provider holds the category,
    by area then category; the needs in the order given."""
    gaps: dict[tuple[str, str], SupplyGap] = {}
    for wanted in demand:
        categories = taxonomy().under(wanted.category)
        holding = [o for o in offers if o.category in categories]
        served = frozenset().union(*(o.areas for o in holding))
        for area in dict.fromkeys(a.strip() for a in wanted.areas if a.strip()):
            if area_key(area) in served:
                continue
            gap = gaps.setdefault((area_key(area), wanted.category), SupplyGap(
                area=area, category=wanted.category, needs=[],
                approved_providers_elsewhere=len({o.provider_id for o in holding})))
            if wanted.need not in gap.needs:
                gap.needs.append(wanted.need)
    return [gaps[key] for key in sorted(gaps)]
