"""Commissioning pages: needs through the strategic-sourcing steps, decisions and agreements with
their variations, extensions, business cases and spend, with a form for each step. The forms
run the integrator's own commands (council.services.integrator.application), as the HTTP API does,
acting as the signed-in person; the page that follows reads the read models once they have the
change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import (
    ArrangementType,
    EndingKind,
    SourcingOption,
    SourcingStage,
    VariationKind,
)
from council.kernel.text import without_controls
from council.platform.identity import acting_as
from council.platform.sql import Database
from council.services.integrator.application import Integrator
from council.services.integrator.domain import commands as c
from council.services.integrator.projections.agreement_queries import get_agreement, list_agreements
from council.services.integrator.projections.lessons import similar_lessons
from council.services.integrator.projections.need_queries import (
    get_need,
    list_needs,
    search_lessons,
    spend_by_partner,
)
from council.services.integrator.projections.network import list_providers
from council.services.integrator.projections.overview import (
    agreement_outcomes,
    areas_served,
    measure_series,
    record_names,
)
from council.services.integrator.projections.performance import performance_of
from council.services.integrator.projections.timeline import timeline
from council.services.integrator.web import forms
from council.services.integrator.web.pages import (
    AsOf,
    Posted,
    SignedIn,
    forbidden,
    not_found,
    router,
)
from council.services.integrator.web.picking import award_preview, picker, proposed_of
from council.services.integrator.web.render import (
    categories,
    lineage,
    page,
    redirect,
    same_market,
)
from council.services.integrator.web.session import Viewer
from council.services.integrator.web.steps import FORMS, next_stages, sourcing_steps
from council.services.integrator.web.sync import wait_applied
from council.services.integrator.web.views import read_models, runtime_of

routes = router()
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Values = dict[str, list[str]]
Again = Callable[[dict[str, forms.FormState], int], HTMLResponse]

ROWS = 3  # option, outcome and award rows on a form (more can be added over the API)


def integrator_of(request: Request) -> Integrator:
    app = runtime_of(request).app
    assert isinstance(app, Integrator)
    return app


def _names(db: Database) -> dict[str, str]:
    return {str(p.provider_id): p.name for p in list_providers(db, 5000)}


def _measures(db: Database) -> list[tuple[str, str]]:
    return [(s.measure_id, f"{s.name} ({s.unit})" if s.unit else s.name)
            for s in measure_series(db)]


def _caught_up(request: Request, stream_id: UUID, version: int) -> bool:
    runtime = runtime_of(request)
    return all(wait_applied(runtime, name, INTEGRATOR, str(stream_id), version)
               for name in ("integrator.commissioning", "integrator.timeline"))


def _run(request: Request, viewer: Viewer, values: Values, form: str, model: type[M],
         command: Callable[[Integrator, M], T], again: Again, done: Callable[[T], str],
         stream: Callable[[T], UUID], flash: str, data: dict[str, Any] | None = None,
         **nesting: Any) -> Response:
    """Validate the form into `model`, run `command` as the viewer, then show the result
    (`done`: where) once the read models have it; or the page `again` with the messages."""
    if not viewer.may_commission:
        return forbidden(request, viewer, "change commissioning records")
    try:
        command_in = model.model_validate(data if data is not None else
                                          forms.nest(values, **nesting))
    except ValidationError as exc:
        return again({form: forms.FormState(values, forms.errors_of(exc, values))}, 422)
    integrator = integrator_of(request)
    try:
        with acting_as(request, viewer.principal):
            result = command(integrator, command_in)
    except Exception as exc:
        state = forms.refused(values, exc)
        if state is None:
            raise
        return again({form: state}, forms.refused_status(exc, state))
    stream_id = stream(result)
    version: int = integrator.repository.get(stream_id).version
    note = flash if _caught_up(request, stream_id, version) else \
        f"{flash} (the views may take a moment to show it)"
    return redirect(request, done(result), note)


# ---------------------------------------------------------------------- the overview


def _commissioning_page(request: Request, viewer: Viewer, as_of: AsOf,
                        failed: dict[str, forms.FormState] | None = None,
                        status: int = 200) -> HTMLResponse:
    params = request.query_params
    need_status = params.get("need_status") if params.get("need_status") in (
        "open", "closed") else None
    agreement_status = params.get("agreement_status") if params.get("agreement_status") in (
        "drafted", "active", "ended") else None
    area = without_controls(params.get("service_area", ""))[:100] or None
    kinds = [k.value for k in ArrangementType]
    kind = params.get("arrangement_type") if params.get("arrangement_type") in kinds else None
    with read_models(request, as_of.moment) as db:
        every_need = list_needs(db, 5000)
        agreements = list_agreements(
            db, 5000, status=agreement_status,
            arrangement_type=ArrangementType(kind) if kind else None)
        names = _names(db)
        measures = _measures(db)
        areas = areas_served(db)
    titles = {str(n.need_id): n.title for n in every_need}
    needs = [n for n in every_need if (need_status is None or n.status == need_status)
             and (area is None or n.service_area == area)]
    return page(
        request, "commissioning.html", viewer, section="commissioning", status=status,
        as_of=as_of, needs=needs, agreements=agreements, names=names, titles=titles,
        categories=categories(), measures=measures, arrangement_types=kinds, rows=ROWS,
        areas=areas,
        filters={"need_status": need_status or "", "agreement_status": agreement_status or "",
                 "service_area": area or "", "arrangement_type": kind or ""},
        form=(failed or {}).get("need", forms.FormState()), failed=next(iter(failed or {}), ""),
    )


@routes.get("/commissioning", response_class=HTMLResponse)
def commissioning(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    return _commissioning_page(request, viewer, as_of)


@routes.post("/needs", response_class=HTMLResponse)
def define_need(request: Request, viewer: SignedIn, values: Posted,
                as_of: AsOf) -> Response:
    return _run(request, viewer, values, "need", c.NewNeed,
                lambda i, new: i.define_need(new),
                lambda failed, status: _commissioning_page(request, viewer, as_of, failed,
                                                           status),
                lambda need_id: f"/ui/needs/{need_id}", lambda need_id: need_id,
                "Need defined", lines=frozenset({"outputs", "population.areas"}))


# ---------------------------------------------------------------------- a need


NEED_FORMS = ("contribution", "options", "engagement", "decision", "stage", "close", "lesson")


def _offered(stage: SourcingStage, failed: dict[str, forms.FormState]) -> tuple[str, ...]:
    """The forms of the step the need is at, and a form just refused, whichever step it
    belongs to, so that its messages are seen."""
    return FORMS[stage] + tuple(name for name in failed
                                if name in NEED_FORMS and name not in FORMS[stage])


def _need_page(request: Request, viewer: Viewer, need_id: UUID, as_of: AsOf | None = None,
               failed: dict[str, forms.FormState] | None = None,
               status: int = 200) -> HTMLResponse:
    moment = as_of.moment if as_of else None
    with read_models(request, moment) as db:
        need = get_need(db, need_id)
        if need is None:
            return not_found(request, viewer, f"need {need_id}")
        providers = list_providers(db, 5000)
        split = spend_by_partner(db, need_id) if len(need.contributions) > 1 else None
        measures = dict(_measures(db))
        own_lessons = len(search_lessons(db, need_id=need_id, limit=1000))
        similar = similar_lessons(db, need_id, same_market(need.service_area),
                                  lineage(need.service_area))
        areas = areas_served(db)
    today = as_of.day if as_of and as_of.day else date.today()
    # Choosing providers is for deciding now: the live read models, whatever date is shown.
    live = runtime_of(request).views
    chosen = (failed or {}).get("decision")
    picking = picker(live, request.query_params, need, today)
    preview = award_preview(live, need, proposed_of(chosen.values if chosen else {}))
    history = timeline(runtime_of(request).views, subjects=[str(need_id)], limit=500,
                       until=moment, hidden_types=viewer.sight.hidden_types()).events
    steps = sourcing_steps(need, today=today, events=history, own_lessons=own_lessons)
    failed = failed or {}
    drafted = {a.award_id for a in need.agreements}
    awards = [(d, a) for d in need.decisions for a in d.awards]
    return page(
        request, "need.html", viewer, section="commissioning", status=status, need=need,
        as_of=as_of, names={str(p.provider_id): p.name for p in providers},
        approved=[(str(p.provider_id), p.name) for p in providers
                  if p.status.value == "approved"],
        split=split, measures=measures, awards=awards, drafted=drafted, rows=ROWS,
        steps=steps, offered=_offered(need.stage, failed), picking=picking, preview=preview,
        categories=categories(), areas=areas, similar=similar,
        next_stages=[s.value for s in next_stages(need)],
        options=[o.value for o in SourcingOption], stages=[s.value for s in SourcingStage],
        arrangement_types=[k.value for k in ArrangementType], today=date.today(),
        forms={**{name: failed.get(name, forms.FormState()) for name in NEED_FORMS},
               **{f"agreement-{a.award_id}": failed.get(f"agreement-{a.award_id}",
                                                        forms.FormState())
                  for _, a in awards}},
        failed=next(iter(failed), ""),
    )


@routes.get("/needs/{need_id}", response_class=HTMLResponse)
def need_page(need_id: UUID, request: Request, viewer: SignedIn,
              as_of: AsOf) -> HTMLResponse:
    return _need_page(request, viewer, need_id, as_of)


def _need_step(request: Request, viewer: Viewer, need_id: UUID, values: Values, form: str,
               model: type[M], command: Callable[[Integrator, M], object], flash: str,
               **nesting: Any) -> Response:
    return _run(request, viewer, values, form, model,
                lambda i, body: command(i, body),
                lambda failed, status: _need_page(request, viewer, need_id, None, failed,
                                                  status),
                lambda _: f"/ui/needs/{need_id}", lambda _: need_id, flash, **nesting)


@routes.post("/needs/{need_id}/contributions", response_class=HTMLResponse)
def pledge(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "contribution", c.NewContribution,
                      lambda i, body: i.pledge_contribution(need_id, body),
                      "Contribution recorded")


@routes.post("/needs/{need_id}/options", response_class=HTMLResponse)
def appraise(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "options", c.OptionsAppraisal,
                      lambda i, body: i.appraise_options(need_id, body),
                      "Options appraisal recorded")


@routes.post("/needs/{need_id}/market-engagement", response_class=HTMLResponse)
def engage(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "engagement", c.MarketEngagement,
                      lambda i, body: i.engage_market(need_id, body),
                      "Market engagement recorded", lists=frozenset({"provider_ids"}))


@routes.post("/needs/{need_id}/decisions", response_class=HTMLResponse)
def decide(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "decision", c.NewDecision,
                      lambda i, body: i.decide(need_id, body, viewer.principal),
                      "Decision recorded",
                      lists=frozenset(f"awards.{n}.provider_ids" for n in range(ROWS)))


@routes.post("/needs/{need_id}/stage", response_class=HTMLResponse)
def stage(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "stage", c.StageStep,
                      lambda i, body: i.reach_stage(need_id, body), "Stage recorded")


@routes.post("/needs/{need_id}/close", response_class=HTMLResponse)
def close(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _need_step(request, viewer, need_id, values, "close", c.Closure,
                      lambda i, body: i.close_need(need_id, body), "Need closed")


@routes.post("/needs/{need_id}/lessons", response_class=HTMLResponse)
def lesson(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    data = forms.nest(values, skip=frozenset({"tags"}))
    data["need_id"] = str(need_id)
    data["tags"] = [t.strip() for v in values.get("tags", []) for t in v.split(",") if t.strip()]
    return _run(request, viewer, values, "lesson", c.NewLesson,
                lambda i, body: i.record_lesson(body),
                lambda failed, status: _need_page(request, viewer, need_id, None, failed,
                                                  status),
                lambda _: f"/ui/needs/{need_id}", lambda lesson_id: lesson_id,
                "Lesson recorded",
                data=data)


@routes.post("/needs/{need_id}/agreements", response_class=HTMLResponse)
def draft(need_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    state = forms.FormState(values)
    award_id = state.value("award_id")
    data = forms.nest(values, lines=frozenset({"break_clauses"}),
                      lists=frozenset({"outcomes"}))
    data["need_id"] = str(need_id)
    chosen = set(data.pop("outcomes", []))
    need = get_need(runtime_of(request).views, need_id)
    data["outcomes"] = [
        {"outcome_id": o.outcome_id, "measure_id": str(o.measure_id) if o.measure_id else None,
         "target": o.target}
        for o in (need.outcomes if need else []) if o.outcome_id in chosen]
    return _run(request, viewer, values, f"agreement-{award_id}", c.NewAgreement,
                lambda i, body: i.draft_agreement(body),
                lambda failed, status: _need_page(request, viewer, need_id, None, failed,
                                                  status),
                lambda agreement_id: f"/ui/agreements/{agreement_id}",
                lambda agreement_id: agreement_id, "Agreement drafted", data=data)


# ---------------------------------------------------------------------- an agreement


AGREEMENT_FORMS = ("sign", "activate", "vary", "extend", "business_case", "spend", "end",
                   "attribution", "rate_card")


def _agreement_page(request: Request, viewer: Viewer, agreement_id: UUID,
                    as_of: AsOf | None = None, failed: dict[str, forms.FormState] | None = None,
                    status: int = 200) -> HTMLResponse:
    with read_models(request, as_of.moment if as_of else None) as db:
        agreement = get_agreement(db, agreement_id)
        if agreement is None:
            return not_found(request, viewer, f"agreement {agreement_id}")
        need = get_need(db, agreement.need_id)
        names = _names(db)
        day = as_of.day if as_of else None  # what is provisional is as of that day
        with db.transaction() as tx:
            brief = performance_of(tx, db.dialect, [str(agreement_id)], day).get(
                str(agreement_id))
        outcomes = agreement_outcomes(db, str(agreement_id), day)
        scope = viewer.sight.scope
        history = timeline(runtime_of(request).views, subjects=[str(agreement_id)], limit=100,
                           until=as_of.moment if as_of else None,
                           since=scope.starts if scope else None,
                           hidden_types=viewer.sight.hidden_types())
        subject_names = record_names(db)
        measures = _measures(db)
    failed = failed or {}
    cases = [b.business_case_id for b in agreement.business_cases if b.status == "proposed"]
    dues = [d.due_id for d in agreement.results_due if d.paid_at is None]
    return page(
        request, "agreement.html", viewer, section="commissioning", status=status,
        agreement=agreement, need=need, names=names, brief=brief, outcomes=outcomes,
        history=history, subject_names=subject_names, as_of=as_of, today=date.today(),
        variation_kinds=[k.value for k in VariationKind if k is not VariationKind.BUSINESS_CASE],
        endings=[k.value for k in EndingKind], measures=measures,
        forms={**{name: failed.get(name, forms.FormState()) for name in AGREEMENT_FORMS},
               **{f"case-{case}": failed.get(f"case-{case}", forms.FormState())
                  for case in cases},
               **{f"due-{due}": failed.get(f"due-{due}", forms.FormState()) for due in dues}},
        failed=next(iter(failed), ""),
    )


@routes.get("/agreements/{agreement_id}", response_class=HTMLResponse)
def agreement_page(agreement_id: UUID, request: Request, viewer: SignedIn,
                   as_of: AsOf) -> HTMLResponse:
    return _agreement_page(request, viewer, agreement_id, as_of)


def _agreement_step(request: Request, viewer: Viewer, agreement_id: UUID, values: Values,
                    form: str, model: type[M], command: Callable[[Integrator, M], object],
                    flash: str, **nesting: Any) -> Response:
    return _run(request, viewer, values, form, model, lambda i, body: command(i, body),
                lambda failed, status: _agreement_page(request, viewer, agreement_id, None,
                                                       failed, status),
                lambda _: f"/ui/agreements/{agreement_id}", lambda _: agreement_id, flash,
                **nesting)


@routes.post("/agreements/{agreement_id}/sign", response_class=HTMLResponse)
def sign(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "sign", c.Signature,
                           lambda i, body: i.sign_agreement(agreement_id, body),
                           "Signature recorded", lines=frozenset({"signatories"}))


@routes.post("/agreements/{agreement_id}/activate", response_class=HTMLResponse)
def activate(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "activate", c.Activation,
                           lambda i, body: i.activate(agreement_id, body), "Agreement in force")


@routes.post("/agreements/{agreement_id}/variations", response_class=HTMLResponse)
def vary(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "vary", c.NewVariation,
                           lambda i, body: i.vary(agreement_id, body, viewer.principal),
                           "Variation recorded")


@routes.post("/agreements/{agreement_id}/extensions", response_class=HTMLResponse)
def extend(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "extend", c.NewExtension,
                           lambda i, body: i.extend(agreement_id, body, viewer.principal),
                           "Extension recorded")


@routes.post("/agreements/{agreement_id}/business-cases", response_class=HTMLResponse)
def propose(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "business_case",
                           c.NewBusinessCase,
                           lambda i, body: i.propose_business_case(agreement_id, body,
                                                                   viewer.principal),
                           "Business case proposed")


@routes.post("/agreements/{agreement_id}/business-cases/{case_id}", response_class=HTMLResponse)
def decide_case(agreement_id: UUID, case_id: str, request: Request, viewer: SignedIn,
                values: Posted) -> Response:
    approve = forms.FormState(values).value("decision") == "approve"

    def command(i: Integrator, body: c.Closure) -> object:
        if approve:
            return i.approve_business_case(agreement_id, case_id, body.reason,
                                           viewer.principal)
        i.reject_business_case(agreement_id, case_id, body.reason)
        return None

    return _agreement_step(request, viewer, agreement_id, values, f"case-{case_id}", c.Closure,
                           command, "Business case approved" if approve
                           else "Business case rejected", skip=frozenset({"decision"}))


@routes.post("/agreements/{agreement_id}/spend", response_class=HTMLResponse)
def spend(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "spend", c.NewSpend,
                           lambda i, body: i.record_spend(agreement_id, body, viewer.principal),
                           "Spend recorded")


@routes.post("/agreements/{agreement_id}/results-due/{due_id}/pay",
             response_class=HTMLResponse)
def pay_due(agreement_id: UUID, due_id: str, request: Request, viewer: SignedIn,
            values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, f"due-{due_id}",
                           c.DuePayment,
                           lambda i, body: i.pay_results_due(agreement_id, due_id, body,
                                                             viewer.principal),
                           "Results payment recorded")


@routes.post("/agreements/{agreement_id}/end", response_class=HTMLResponse)
def end(agreement_id: UUID, request: Request, viewer: SignedIn, values: Posted) -> Response:
    return _agreement_step(request, viewer, agreement_id, values, "end", c.Ending,
                           lambda i, body: i.end_agreement(agreement_id, body),
                           "Agreement ended")
