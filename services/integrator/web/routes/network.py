"""The network overview: who is in the council's provider network, by type, category and area,
what they hold under active agreements, with search and filters; now or as of a date."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.integrator.projections.market import network_state
from services.integrator.projections.network import list_providers, network_summary
from services.integrator.projections.overview import network_by_area, provider_areas
from services.integrator.web.pages import AsOf, SignedIn, router
from services.integrator.web.render import categories, page
from services.integrator.web.views import read_models
from shared.contracts.provider_registry import OrganisationType, ProviderStatus

routes = router()

SHOWN = 500  # providers listed at once; filters narrow it


def _choice(value: str, allowed: list[str]) -> str | None:
    return value if value in allowed else None


@routes.get("/network", response_class=HTMLResponse)
def network(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    params = request.query_params
    q = params.get("q", "").strip()
    kind = _choice(params.get("organisation_type", ""), [k.value for k in OrganisationType])
    status = _choice(params.get("status", ""), [s.value for s in ProviderStatus])
    category = params.get("category", "").strip() or None
    area = params.get("area", "").strip() or None
    with read_models(request, as_of.moment) as db:
        state = network_state(db)
        summary = network_summary(db)
        listed = list_providers(
            db, 5000, status=ProviderStatus(status) if status else None,
            organisation_type=OrganisationType(kind) if kind else None, category=category)
        areas = provider_areas(db)
        by_area = network_by_area(db, state)
    held = {str(p.provider_id): p for p in state.providers}
    words = q.casefold().split()
    rows = [p for p in listed
            if all(w in p.name.casefold() for w in words)
            and (area is None or area in areas.get(str(p.provider_id), set()))]
    return page(
        request, "network.html", viewer, section="network", as_of=as_of, state=state,
        summary=summary, rows=rows[:SHOWN], matched=len(rows), shown=SHOWN, held=held,
        by_area=by_area, areas=sorted({a for found in areas.values() for a in found}),
        organisation_types=[k.value for k in OrganisationType],
        statuses=[s.value for s in ProviderStatus],
        categories=categories(),
        filters={"q": q, "organisation_type": kind or "", "status": status or "",
                 "category": category or "", "area": area or ""},
    )
