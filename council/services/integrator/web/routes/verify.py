"""Verifying the audit trail from the pages, as `council audit verify --log-only` does: every
source's hash chain on the shared log walked, the signed checkpoints checked against the
council's public key, and the result in words (intact, or the first broken link exactly).
A regulator's reading of it is recorded like every other page (pages.recorded_page_read)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.platform.audit.keys import key_file, read_public_key
from council.platform.audit.trail import verify_log
from council.platform.audit.verify import Kind, first_break
from council.services.integrator.web.pages import SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import runtime_of

routes = router()


@routes.get("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, viewer: SignedIn) -> HTMLResponse:
    runtime = runtime_of(request)
    report = None
    first = None
    keyed = False
    if request.query_params.get("run"):
        path = key_file(runtime.settings)
        keyed = path.exists()
        report, _ = verify_log(runtime.event_log,
                               key=read_public_key(path) if keyed else None)
        chain_breaks = [b for b in report.breaks if b.kind is not Kind.BUNDLE]
        first = first_break(chain_breaks) or (report.breaks[0] if report.breaks else None)
    return page(request, "verify.html", viewer, section="audit", report=report, first=first,
                keyed=keyed, where=runtime.event_log.url)
