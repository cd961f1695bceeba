"""A provider's page (profile, standing, agreements, performance, history) and onboarding:
registering, lifecycle decisions, capabilities and standing, all sent to the provider registry's
HTTP API (the registry owns providers' records); the page then waits until the integrator's
read models have the change from the shared log."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from council.kernel.contracts.provider_registry import SOURCE as REGISTRY
from council.kernel.contracts.provider_registry import OrganisationType, StandingKind
from council.services.integrator.projections.agreement_queries import list_agreements
from council.services.integrator.projections.network import get_provider, list_providers
from council.services.integrator.projections.overview import areas_served, record_names
from council.services.integrator.projections.performance import performance_of
from council.services.integrator.projections.standing import ProviderStanding, standing_of
from council.services.integrator.projections.timeline import timeline
from council.services.integrator.web import forms, registry
from council.services.integrator.web.pages import (
    AsOf,
    AsOfDate,
    Posted,
    SignedIn,
    forbidden,
    not_found,
    router,
)
from council.services.integrator.web.render import categories, page, redirect
from council.services.integrator.web.session import Viewer
from council.services.integrator.web.sync import wait_applied
from council.services.integrator.web.views import read_models, runtime_of

routes = router()

# The lifecycle decisions open from each status (the registry enforces them; the page offers
# only these).
DECISIONS: dict[str, list[str]] = {
    "applied": ["review", "reject"],
    "under_review": ["approve", "reject"],
    "incubating": ["graduate", "reject", "exit"],
    "approved": ["suspend", "exit"],
    "suspended": ["reinstate", "exit"],
}
DECISION_NAMES = {
    "review": "Start review", "approve": "Approve", "reject": "Reject", "suspend": "Suspend",
    "reinstate": "Reinstate", "exit": "Record exit", "graduate": "Graduate (approve)",
}
TIMELINE_SHOWN = 200
REGISTER_LISTS = frozenset({"areas_served", "members"})
Values = dict[str, list[str]]


def _registry_url(request: Request) -> str:
    return runtime_of(request).settings.url_of("provider_registry")


def _call(request: Request, viewer: Viewer, method: str, path: str,
          body: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
    return registry.call(_registry_url(request), viewer.token, method, path, body,
                         idempotency_key=key,
                         correlation_id=getattr(request.state, "correlation_id", None))


def _caught_up(request: Request, provider_id: str, version: int) -> bool:
    runtime = runtime_of(request)
    return all(wait_applied(runtime, name, REGISTRY, provider_id, version)
               for name in ("integrator.network", "integrator.standing", "integrator.timeline"))


# ---------------------------------------------------------------------- registering


def _register_page(request: Request, viewer: Viewer, state: forms.FormState,
                   status: int = 200) -> HTMLResponse:
    runtime = runtime_of(request)
    if not state.value("idempotency_key"):
        state.values["idempotency_key"] = [uuid.uuid4().hex]
    members = [(str(p.provider_id), p.name) for p in list_providers(runtime.views, 5000)
               if p.status.value in ("approved", "incubating")]
    return page(request, "provider_new.html", viewer, section="network", status=status,
                form=state, organisation_types=[k.value for k in OrganisationType],
                areas=areas_served(runtime.views), categories=categories(), members=members)


@routes.get("/providers/new", response_class=HTMLResponse)
def new_provider(request: Request, viewer: SignedIn) -> HTMLResponse:
    if not viewer.may_register:
        return forbidden(request, viewer, "register providers")
    return _register_page(request, viewer, forms.FormState())


@routes.post("/providers", response_class=HTMLResponse)
def register(request: Request, viewer: SignedIn, values: Posted) -> Response:
    if not viewer.may_register:
        return forbidden(request, viewer, "register providers")
    body = forms.nest(values, lists=REGISTER_LISTS,
                      skip=frozenset({"idempotency_key", "capability.category",
                                      "capability.description"}))
    if body.get("organisation_type") != "sme":
        body.pop("sme_size", None)  # the fields are on the form for SMEs only
    if body.get("organisation_type") != "partnership":
        body.pop("members", None)
    state = forms.FormState(values)
    try:
        created = _call(request, viewer, "POST", "/providers", body,
                        key=f"web-{state.value('idempotency_key')}")
    except registry.RegistryRefused as exc:
        state.errors = forms.relocated(exc.errors, values)
        return _register_page(request, viewer, state, 422 if exc.status == 422 else 409)
    provider_id, version = str(created["provider_id"]), int(created["version"])
    note = f"{created['name']} registered: an application awaiting review"
    category = state.value("capability.category")
    if category:
        try:
            capability = _call(request, viewer, "POST", f"/providers/{provider_id}/capabilities",
                               {"category": category, "areas": body.get("areas_served", []),
                                "description": state.value("capability.description") or None})
            version = int(capability["provider"]["version"])
        except registry.RegistryRefused as exc:
            note += f"; the capability was not added: {exc}"
    if not _caught_up(request, provider_id, version):
        note += " (the network view may take a moment to show it)"
    return redirect(request, f"/ui/providers/{provider_id}", note)


# ---------------------------------------------------------------------- the provider's page


def _provider_page(request: Request, viewer: Viewer, provider_id: UUID,
                   failed: dict[str, forms.FormState] | None = None,
                   status: int = 200, as_of: AsOfDate | None = None) -> HTMLResponse:
    moment = as_of.moment if as_of else None
    with read_models(request, moment) as db:
        provider = get_provider(db, provider_id)
        if provider is None:
            return not_found(request, viewer, f"provider {provider_id} in the network")
        agreements = list_agreements(db, 1000, provider_id=provider_id)
        with db.transaction() as tx:
            performance = performance_of(tx, db.dialect,
                                         [str(a.agreement_id) for a in agreements])
        names = {str(p.provider_id): p.name for p in list_providers(db, 5000)}
        subject_names = record_names(db)
    # Standing and the timeline are read live only (never rebuilt "as of"): as of a date,
    # the standing dated after it and the events after it are left out.
    live = runtime_of(request).views
    today = moment.date() if moment else date.today()
    standing = standing_of(live, provider_id, today)
    if standing is not None and moment is not None:
        standing = _standing_then(standing, today)
    scope = viewer.sight.scope
    history = timeline(live, subjects=[str(provider_id), *(str(a.agreement_id)
                                                           for a in agreements)],
                       limit=TIMELINE_SHOWN, hidden_types=viewer.sight.hidden_types(),
                       since=scope.starts if scope else None, until=moment)
    mine = {str(a.agreement_id): next(p for p in a.parties if p.provider_id == provider_id)
            for a in agreements}
    failed = failed or {}
    open_decisions = DECISIONS.get(provider.status.value, [])
    return page(
        request, "provider.html", viewer, section="network", status=status, provider=provider,
        standing=standing, agreements=agreements, performance=performance, names=names,
        mine=mine, history=history, subject_names=subject_names, decisions=open_decisions,
        decision_options=[(d, DECISION_NAMES[d]) for d in open_decisions], today=today,
        categories=categories(),
        standing_kinds=[k.value for k in StandingKind],
        forms={**{name: forms.FormState() for name in
                  ("decide", "incubate", "capability", "accreditation", "milestone")}, **failed},
        failed=next(iter(failed), ""), as_of=as_of,
    )


def _standing_then(standing: ProviderStanding, day: date) -> ProviderStanding:
    """A provider's standing without what is dated after `day`."""
    return standing.model_copy(update={
        "accreditations": [a for a in standing.accreditations
                           if a.valid_from is None or a.valid_from <= day],
        "quality_ratings": [r for r in standing.quality_ratings if r.rated_on <= day],
        "conflicts_of_interest": [c for c in standing.conflicts_of_interest
                                  if c.declared_on <= day]})


@routes.get("/providers/{provider_id}", response_class=HTMLResponse)
def provider_page(provider_id: UUID, request: Request, viewer: SignedIn,
                  as_of: AsOf) -> HTMLResponse:
    return _provider_page(request, viewer, provider_id, as_of=as_of)


def _registry_action(request: Request, viewer: Viewer, provider_id: UUID, values: Values,
                     form: str, path: str, body: dict[str, Any], done: str) -> Response:
    """Send one change to the registry; the page again with its refusal, or the result."""
    try:
        result = _call(request, viewer, "POST", f"/providers/{provider_id}{path}", body)
    except registry.RegistryRefused as exc:
        return _provider_page(request, viewer, provider_id,
                              {form: forms.FormState(values, forms.relocated(exc.errors,
                                                                             values))},
                              422 if exc.status == 422 else 409)
    record = result.get("provider", result)
    _caught_up(request, str(provider_id), int(record["version"]))
    credentials = result.get("credentials")
    if credentials:  # shown once, now: only its hash is kept
        return page(request, "credentials.html", viewer, section="network",
                    provider=record, credentials=credentials)
    return redirect(request, f"/ui/providers/{provider_id}", done)


@routes.post("/providers/{provider_id}/decision", response_class=HTMLResponse)
def decide(provider_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    if not viewer.may_decide:
        return forbidden(request, viewer, "take lifecycle decisions")
    action = forms.FormState(values).value("action")
    if action not in DECISION_NAMES:
        return _provider_page(request, viewer, provider_id, {"decide": forms.FormState(
            values, {"action": "Choose a decision"})}, 422)
    return _registry_action(request, viewer, provider_id, values, "decide", f"/{action}",
                            forms.nest(values, skip=frozenset({"action"})),
                            f"{DECISION_NAMES[action]}: recorded")


@routes.post("/providers/{provider_id}/incubation", response_class=HTMLResponse)
def incubate(provider_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    if not viewer.may_decide:
        return forbidden(request, viewer, "take providers into incubation")
    body = forms.nest(values, lines=frozenset({"milestones"}))
    body["milestones"] = [{"title": title} for title in body.get("milestones", [])]
    return _registry_action(request, viewer, provider_id, values, "incubate", "/incubation",
                            body, "Taken into incubation")


@routes.post("/providers/{provider_id}/milestones", response_class=HTMLResponse)
def milestone_met(provider_id: UUID, request: Request, viewer: SignedIn,
                  values: Posted) -> Response:
    if not viewer.may_register:
        return forbidden(request, viewer, "record incubation milestones")
    milestone = forms.FormState(values).value("milestone_id")
    return _registry_action(request, viewer, provider_id, values, f"milestone-{milestone}",
                            f"/incubation/milestones/{milestone}/met",
                            forms.nest(values, skip=frozenset({"milestone_id"})),
                            "Milestone met")


@routes.post("/providers/{provider_id}/capabilities", response_class=HTMLResponse)
def add_capability(provider_id: UUID, request: Request, viewer: SignedIn,
                   values: Posted) -> Response:
    if not viewer.may_register:
        return forbidden(request, viewer, "record capabilities")
    return _registry_action(request, viewer, provider_id, values, "capability", "/capabilities",
                            forms.nest(values, lists=frozenset({"areas"})), "Capability added")


@routes.post("/providers/{provider_id}/accreditations", response_class=HTMLResponse)
def add_accreditation(provider_id: UUID, request: Request, viewer: SignedIn,
                      values: Posted) -> Response:
    if not viewer.may_register:
        return forbidden(request, viewer, "record standing")
    return _registry_action(request, viewer, provider_id, values, "accreditation",
                            "/accreditations", forms.nest(values), "Standing recorded")
