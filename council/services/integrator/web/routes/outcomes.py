"""Outcomes: every outcome measure's target against actual over time, each agreement's targeted
against achieved improvement on its attributed measures, and its payment schedule (the outcomes
service's calculations, as the shared log carries them)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.kernel.periods import ended, today_or_now
from council.services.integrator.projections.overview import (
    agreement_outcomes,
    agreements_with_outcomes,
    measure_series,
)
from council.services.integrator.projections.performance import network_performance
from council.services.integrator.web.pages import AsOf, SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import read_models

routes = router()


@routes.get("/outcomes", response_class=HTMLResponse)
def outcomes(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    wanted = request.query_params.get("agreement_id", "")
    day = today_or_now(as_of.day)  # a period not over on it is provisional
    with read_models(request, as_of.moment) as db:
        measures = measure_series(db)
        with_outcomes = agreements_with_outcomes(db)
        chosen = wanted if wanted in {a for a, _ in with_outcomes} else (
            with_outcomes[0][0] if with_outcomes else "")
        focus = agreement_outcomes(db, chosen, day) if chosen else None
        performance = network_performance(db, status="active", today=day)
    return page(request, "outcomes.html", viewer, section="outcomes", as_of=as_of,
                measures=measures, with_outcomes=with_outcomes, chosen=chosen, focus=focus,
                performance=performance, provisional=lambda period: not ended(period, day))
