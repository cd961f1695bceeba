"""Lessons learned: the list to search and filter, and a form to record one about a need (the
need's own page offers it at review and exit, and shows those of similar needs)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from council.kernel.contracts.integrator import SOURCE as INTEGRATOR
from council.kernel.contracts.integrator import SourcingStage
from council.kernel.text import without_controls
from council.platform.identity import acting_as
from council.services.integrator.domain import commands as c
from council.services.integrator.projections.lessons import lesson_tags, lessons_page
from council.services.integrator.projections.need_queries import list_needs
from council.services.integrator.web import forms
from council.services.integrator.web.pages import Posted, SignedIn, forbidden, router
from council.services.integrator.web.render import page, redirect
from council.services.integrator.web.routes.commissioning import integrator_of
from council.services.integrator.web.session import Viewer
from council.services.integrator.web.sync import wait_applied
from council.services.integrator.web.views import runtime_of

routes = router()
PER_PAGE = 50


def _lessons_page(request: Request, viewer: Viewer, form: forms.FormState | None = None,
                  status: int = 200) -> HTMLResponse:
    params = request.query_params
    stages = [s.value for s in SourcingStage]
    asked = {
        "q": without_controls(params.get("q", "")).strip()[:200],
        "went": params.get("went", "") if params.get("went") in ("well", "badly") else "",
        "tag": without_controls(params.get("tag", "")).strip()[:100],
        "stage": params.get("stage", "") if params.get("stage") in stages else "",
    }
    try:
        number = max(1, int(params.get("page", "1")))
    except ValueError:
        number = 1
    db = runtime_of(request).views
    found, total = lessons_page(db, **asked, limit=PER_PAGE, offset=(number - 1) * PER_PAGE)
    return page(request, "lessons.html", viewer, section="lessons", status=status,
                lessons=found, total=total, page_number=number, per_page=PER_PAGE,
                filters=asked, filtered=any(asked.values()), tags=lesson_tags(db),
                stages=stages, needs=[(str(n.need_id), n.title) for n in list_needs(db, 5000)],
                form=form or forms.FormState())


@routes.get("/lessons", response_class=HTMLResponse)
def lessons(request: Request, viewer: SignedIn) -> HTMLResponse:
    return _lessons_page(request, viewer)


@routes.post("/lessons", response_class=HTMLResponse)
def record(request: Request, viewer: SignedIn, values: Posted) -> Response:
    if not viewer.may_commission:
        return forbidden(request, viewer, "record lessons")
    tags = [t.strip() for v in values.get("tags", []) for t in v.split(",") if t.strip()]
    data = {**forms.nest(values, skip=frozenset({"tags"})), "tags": tags}
    try:
        lesson = c.NewLesson.model_validate(data)
    except ValidationError as exc:
        return _lessons_page(request, viewer, forms.FormState(values,
                                                              forms.errors_of(exc, values)), 422)
    integrator = integrator_of(request)
    try:
        with acting_as(request, viewer.principal):
            lesson_id = integrator.record_lesson(lesson)
    except Exception as exc:
        state = forms.refused(values, exc)
        if state is None:
            raise
        return _lessons_page(request, viewer, state, forms.refused_status(exc, state))
    wait_applied(runtime_of(request), "integrator.commissioning", INTEGRATOR, str(lesson_id),
                 integrator.repository.get(lesson_id).version)
    return redirect(request, "/ui/lessons", "Lesson recorded")
