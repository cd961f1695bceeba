"""The market: how diverse the council's spend is and has been (by organisation type, over
time), how concentrated each market (top-level service category) is and has been quarter by
quarter, where the gaps are (needs and outcomes without an agreement, areas without a provider),
and whom the council is incubating to fill them; now or as of a date."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.kernel import clock
from council.kernel.contracts.provider_registry import OrganisationType
from council.services.integrator.projections.concentration import QuarterConcentration
from council.services.integrator.projections.market import MarketView, market_view
from council.services.integrator.projections.network import list_providers
from council.services.integrator.projections.overview import (
    incubating_providers,
    spend_by_type_over_time,
)
from council.services.integrator.web.pages import AsOf, SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import read_models

routes = router()


@routes.get("/market", response_class=HTMLResponse)
def market(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    moment = as_of.moment or clock.now()  # the current quarter runs to it
    with read_models(request, as_of.moment) as db:
        view = market_view(db, moment)
        over_time = spend_by_type_over_time(db)
        incubating = incubating_providers(db)
        names = {str(p.provider_id): p.name for p in list_providers(db, 5000)}
    kinds = [k.value for k in OrganisationType]
    kinds += sorted({k for q in over_time for k in q.share_pct} - set(kinds))
    return page(request, "market.html", viewer, section="market", as_of=as_of, view=view,
                over_time=over_time, incubating=incubating, names=names, kinds=kinds,
                moment=moment, quarters=_quarters(view))


def _quarters(view: MarketView) -> list[QuarterConcentration]:
    """The quarters every market's history runs over (they share them), oldest first."""
    return next((c.hhi_by_quarter for c in view.categories if c.hhi_by_quarter), [])
