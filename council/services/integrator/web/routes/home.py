"""Home: what needs attention today, for a council team starting its day (the lists are
council.services.integrator.projections.attention's)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.kernel.clock import now
from council.services.integrator.projections.attention import attention, proposed_by_viewer
from council.services.integrator.web.pages import SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import runtime_of

routes = router()


@routes.get("/home", response_class=HTMLResponse)
def home(request: Request, viewer: SignedIn) -> HTMLResponse:
    db = runtime_of(request).views
    today = now().date()
    found = attention(db, today)
    return page(request, "home.html", viewer, section="home", today=today, found=found,
                mine={w.business_case_id for w in found.waiting
                      if proposed_by_viewer(w, viewer.principal.actor)})
