"""An agreement's outcome terms from its page: attributing outcome measures with weights and
agreeing or varying its rate card. The terms are the outcomes service's (it owns them and
calculates the payments), so the page sends them to its published API as the signed-in
person, and shows them once the log has brought them to the integrator's read models."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from council.services.integrator.projections.overview import agreement_outcomes
from council.services.integrator.web import forms, registry
from council.services.integrator.web.pages import Posted, SignedIn, forbidden, router
from council.services.integrator.web.render import redirect
from council.services.integrator.web.routes.commissioning import _agreement_page
from council.services.integrator.web.session import Viewer
from council.services.integrator.web.views import runtime_of

routes = router()
SHOWN_WITHIN = 5.0  # seconds to wait for the log to bring the change back


def _call(request: Request, viewer: Viewer, method: str, path: str,
          body: dict[str, Any]) -> dict[str, Any]:
    return registry.call(runtime_of(request).settings.url_of("outcomes"), viewer.token, method,
                         path, body, service="outcomes service",
                         correlation_id=getattr(request.state, "correlation_id", None))


def _shown(request: Request, agreement_id: UUID, measure_ids: set[str]) -> bool:
    deadline = time.monotonic() + SHOWN_WITHIN
    while True:
        found = agreement_outcomes(runtime_of(request).views, str(agreement_id))
        if found is not None and measure_ids <= set(found.weights):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _send(request: Request, viewer: Viewer, agreement_id: UUID, values: dict[str, list[str]],
          form: str, method: str, path: str, body: dict[str, Any], done: str,
          measure_ids: set[str]) -> Response:
    if not viewer.may_commission:
        return forbidden(request, viewer, "set outcome terms")
    try:
        _call(request, viewer, method, path, body)
    except registry.RegistryRefused as exc:
        state = forms.FormState(values, forms.relocated(exc.errors, values))
        return _agreement_page(request, viewer, agreement_id, None, {form: state},
                               422 if exc.status == 422 else 409)
    note = done if _shown(request, agreement_id, measure_ids) else \
        f"{done} (the page may take a moment to show it)"
    return redirect(request, f"/ui/agreements/{agreement_id}#outcome-terms", note)


@routes.post("/agreements/{agreement_id}/attributions", response_class=HTMLResponse)
def attribute(agreement_id: UUID, request: Request, viewer: SignedIn,
              values: Posted) -> Response:
    body = forms.nest(values)
    return _send(request, viewer, agreement_id, values, "attribution", "POST",
                 f"/agreements/{agreement_id}/attributions", body, "Outcome measure attributed",
                 {str(body.get("measure_id", ""))})


@routes.post("/agreements/{agreement_id}/rate-card", response_class=HTMLResponse)
def rate_card(agreement_id: UUID, request: Request, viewer: SignedIn,
              values: Posted) -> Response:
    body = forms.nest(values)
    rates = [r for r in body.get("outcome_rates", []) if isinstance(r, dict) and r.get("rate")]
    body["outcome_rates"] = rates
    return _send(request, viewer, agreement_id, values, "rate_card", "PUT",
                 f"/agreements/{agreement_id}/rate-card", body, "Rate card agreed", set())
