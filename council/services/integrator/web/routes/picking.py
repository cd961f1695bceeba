"""The award preview as a fragment of a need's page, redrawn as providers are picked and
amounts typed (site.js asks for it; the decision form works without it)."""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.services.integrator.projections.need_queries import get_need
from council.services.integrator.projections.overview import record_names
from council.services.integrator.web.pages import SignedIn, not_found, router
from council.services.integrator.web.picking import award_preview, proposed_of
from council.services.integrator.web.render import ENV, SECURITY_HEADERS, server_ms
from council.services.integrator.web.views import runtime_of

routes = router()


@routes.get("/needs/{need_id}/award-preview", response_class=HTMLResponse)
def preview_fragment(need_id: UUID, request: Request, viewer: SignedIn) -> HTMLResponse:
    db = runtime_of(request).views
    need = get_need(db, need_id)
    if need is None:
        return not_found(request, viewer, f"need {need_id}")
    found = award_preview(db, need, proposed_of(request.query_params))
    html = ENV.get_template("_award_preview.html").render(preview=found,
                                                           names=record_names(db))
    response = HTMLResponse(html)
    response.headers["Server-Timing"] = f'app;dur={server_ms(request):.1f};desc="fragment"'
    response.headers.update(SECURITY_HEADERS)
    return response
