"""The provider picker and the award preview on a need's page: the search read from the
page's query (`pick_category`, `pick_area`, `pick_type`, `pick_size`, `pick_q`), the
candidates it finds, and the preview of awards given as the decision form names them
(`awards.0.provider_ids`, `awards.0.allocation`)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import QueryParams

from council.kernel.contracts.provider_registry import OrganisationType, SizeBand
from council.kernel.text import without_controls
from council.platform.sql import Database
from council.services.integrator.domain.award_preview import AwardPreview, Proposed, preview
from council.services.integrator.projections.commissioning_views import NeedDetail
from council.services.integrator.projections.picker import Search, candidates, committed_now
from council.services.integrator.web.render import lineage

AWARD_ROWS = 3
SIZES = [b.value for b in SizeBand] + ["large"]


def search_of(params: QueryParams, need: NeedDetail) -> Search:
    """The picker's search: the need's own service area until another is asked for."""
    def given(name: str, default: str = "") -> str:
        return without_controls(params.get(name, default)).strip()[:100]

    kinds = [k.value for k in OrganisationType]
    kind = given("pick_type")
    size = given("pick_size")
    return Search(category=given("pick_category", need.service_area),
                  area=given("pick_area"), organisation_type=kind if kind in kinds else "",
                  size=size if size in SIZES else "", q=given("pick_q"))


def picker(db: Database, params: QueryParams, need: NeedDetail, today: date) -> dict[str, Any]:
    search = search_of(params, need)
    return {"search": search, "candidates": candidates(db, search, lineage, today),
            "sizes": SIZES, "organisation_types": [k.value for k in OrganisationType]}


def proposed_of(params: QueryParams | dict[str, list[str]]) -> list[Proposed]:
    """The awards as the decision form has them so far; an amount not (yet) a number counts
    as nothing."""
    def values(name: str) -> list[str]:
        if isinstance(params, QueryParams):
            return params.getlist(name)
        return params.get(name, [])

    found: list[Proposed] = []
    for n in range(AWARD_ROWS):
        providers = tuple(dict.fromkeys(v for v in values(f"awards.{n}.provider_ids") if v))
        amount = (values(f"awards.{n}.allocation") or [""])[-1].replace(",", "").replace(
            "£", "").strip()
        try:
            pence = int(Decimal(amount or "0").quantize(Decimal("0.01")) * 100)
        except InvalidOperation:
            pence = 0
        if providers:
            found.append(Proposed(providers, max(pence, 0)))
    return found


def award_preview(db: Database, need: NeedDetail, proposed: list[Proposed]) -> AwardPreview:
    held, kinds = committed_now(db, lineage)
    return preview(held, kinds, lineage(need.service_area), proposed)
