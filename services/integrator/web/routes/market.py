"""The market: how diverse the council's spend is and has been (by organisation type, over
time), how concentrated each service category is, where the gaps are, and whom the council is
incubating to fill them; now or as of a date."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.integrator.projections.market import market_view
from services.integrator.projections.network import list_providers
from services.integrator.projections.overview import incubating_providers, spend_by_type_over_time
from services.integrator.web.pages import AsOf, SignedIn, router
from services.integrator.web.render import page
from services.integrator.web.views import read_models
from shared.contracts.provider_registry import OrganisationType

routes = router()


@routes.get("/market", response_class=HTMLResponse)
def market(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    with read_models(request, as_of.moment) as db:
        view = market_view(db)
        over_time = spend_by_type_over_time(db)
        incubating = incubating_providers(db)
        names = {str(p.provider_id): p.name for p in list_providers(db, 5000)}
    kinds = [k.value for k in OrganisationType]
    kinds += sorted({k for q in over_time for k in q.share_pct} - set(kinds))
    return page(request, "market.html", viewer, section="market", as_of=as_of, view=view,
                over_time=over_time, incubating=incubating, names=names, kinds=kinds)
