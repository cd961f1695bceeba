"""The network overview: who is in the council's provider network, by type, category and area,
what they hold under active agreements, with search and filters; now or as of a date."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.services.integrator.domain import NetworkProvider, NetworkSummary
from council.services.integrator.projections.market import ProviderState, network_state
from council.services.integrator.projections.network import list_providers, network_summary
from council.services.integrator.projections.overview import network_by_area, provider_areas
from council.services.integrator.web.pages import AsOf, SignedIn, router
from council.services.integrator.web.render import categories, page, words
from council.services.integrator.web.views import read_models

routes = router()

SHOWN = 500  # providers listed at once; filters narrow it


def _choice(value: str, allowed: list[str]) -> str:
    return value if value in allowed else ""


@routes.get("/network", response_class=HTMLResponse)
def network(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    params = request.query_params
    q = params.get("q", "").strip()
    kind = _choice(params.get("organisation_type", ""), [k.value for k in OrganisationType])
    status = _choice(params.get("status", ""), [s.value for s in ProviderStatus])
    category = params.get("category", "").strip()
    area = params.get("area", "").strip()
    with read_models(request, as_of.moment) as db:
        state = network_state(db, as_of.day)
        summary = network_summary(db)
        everyone = list_providers(db, 5000)
        areas = provider_areas(db)
        by_area = network_by_area(db, state)
    held = {str(p.provider_id): p for p in state.providers}
    words = q.casefold().split()
    rows = [p for p in everyone
            if all(w in p.name.casefold() for w in words)
            and (not kind or p.organisation_type.value == kind)
            and (not status or p.status.value == status)
            and (not category or any(c.category == category for c in p.capabilities))
            and (not area or area in areas.get(str(p.provider_id), set()))]
    return page(
        request, "network.html", viewer, section="network", as_of=as_of, state=state,
        rows=rows[:SHOWN], matched=len(rows), shown=SHOWN, held=held, by_area=by_area,
        by_type=_by_type(everyone, held), by_category=_by_category(summary),
        areas=sorted({a for found in areas.values() for a in found}, key=str.casefold),
        organisation_types=[k.value for k in OrganisationType],
        statuses=[s.value for s in ProviderStatus], categories=categories(),
        registered=len(everyone), approved=summary.providers_by_status.get("approved", 0),
        filters={"q": q, "organisation_type": kind or "", "status": status or "",
                 "category": category, "area": area},
        filtered=bool(q or kind or status or category or area),
    )


def _by_type(everyone: list[NetworkProvider], held: dict[str, ProviderState],
             ) -> list[dict[str, Any]]:
    """Per organisation type: how many registered, approved, incubating, holding agreements,
    and what they hold."""
    found = []
    for kind in OrganisationType:
        mine = [p for p in everyone if p.organisation_type is kind]
        holders = [held[str(p.provider_id)] for p in mine if str(p.provider_id) in held
                   and held[str(p.provider_id)].active_agreements]
        found.append({
            "kind": kind.value, "registered": len(mine),
            "approved": sum(p.status is ProviderStatus.APPROVED for p in mine),
            "incubating": sum(p.status is ProviderStatus.INCUBATING for p in mine),
            "holding": len(holders),
            "committed": sum((h.committed for h in holders), Decimal("0.00")),
            "spent": sum((held[str(p.provider_id)].spent_to_date for p in mine
                          if str(p.provider_id) in held), Decimal("0.00")),
        })
    return found


def _by_category(summary: NetworkSummary) -> list[tuple[str, dict[str, int], int]]:
    """Active providers per service category, by organisation type."""
    matrix = summary.active_providers_by_category_and_organisation_type
    return [(code, matrix[code], summary.active_providers_by_category.get(code, 0))
            for code in sorted(matrix, key=lambda c: words(c).casefold())]
