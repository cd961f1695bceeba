"""The network compared on two dates (`/ui/audit/compare?from=...&to=...`), each rebuilt from
the shared log as it stood at the end of that day, as the "as of" pages are."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.services.integrator.projections.agreement_queries import list_agreements
from council.services.integrator.projections.asof import as_of_moment
from council.services.integrator.projections.network import list_providers
from council.services.integrator.web.compare import Comparison, Seen, compare
from council.services.integrator.web.pages import SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import read_models

routes = router()


def _on(request: Request, moment: datetime) -> list[Seen]:
    with read_models(request, moment) as db:
        providers = list_providers(db, 5000)
        agreements = list_agreements(db, 10_000)
    return ([Seen(str(p.provider_id), "provider", p.name, p.status.value) for p in providers]
            + [Seen(str(a.agreement_id), "agreement", a.title, a.status, a.budget,
                    a.ends_on.isoformat()) for a in agreements])


@routes.get("/audit/compare", response_class=HTMLResponse)
def compare_dates(request: Request, viewer: SignedIn) -> HTMLResponse:
    given = {k: request.query_params.get(k, "").strip()[:10] for k in ("from", "to")}
    moments: dict[str, datetime] = {}
    errors: dict[str, str] = {}
    for key, text in given.items():
        if text:
            try:
                moments[key] = as_of_moment(text)
            except ValueError:
                errors[key] = "Enter a date as YYYY-MM-DD"
    if len(moments) == 2 and moments["from"] >= moments["to"]:
        errors["to"] = "Must be after the first date"
    found: Comparison | None = None
    if len(moments) == 2 and not errors:
        found = compare(_on(request, moments["from"]), _on(request, moments["to"]))
    return page(request, "compare.html", viewer, section="audit", given=given, errors=errors,
                found=found)
