"""The audit timeline: every event on the shared log, newest first, filtered by service, type,
who, what it is about, words and dates; with an "as of" date, the events up to then and the
network redrawn as it stood then (rebuilt from the log)."""

from __future__ import annotations

from datetime import datetime, time
from math import ceil

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse

from council.kernel.text import MAX_OFFSET, without_controls
from council.services.integrator.projections.asof import as_of_moment
from council.services.integrator.projections.market import market_view, network_state
from council.services.integrator.projections.network import network_summary
from council.services.integrator.projections.overview import record_names
from council.services.integrator.projections.timeline import event_types, timeline
from council.services.integrator.web.pages import AsOf, SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import read_models, runtime_of

routes = router()
log = structlog.get_logger("web")
PER_PAGE = 50
SOURCES = ("provider_registry", "integrator", "outcomes")


def _day(text: str, end: bool) -> datetime | None:
    try:
        moment = as_of_moment(text) if text else None
    except ValueError:
        return None
    if moment is not None and not end and len(text.strip()) == 10:
        moment = datetime.combine(moment.date(), time(0), tzinfo=moment.tzinfo)
    return moment


@routes.get("/audit", response_class=HTMLResponse)
def audit(request: Request, viewer: SignedIn, as_of: AsOf) -> HTMLResponse:
    params = request.query_params
    source = params.get("source") if params.get("source") in SOURCES else None
    kind, actor, subject, q = (without_controls(params.get(name, ""))[:200].strip()
                               for name in ("type", "actor", "subject", "q"))
    since = _day(params.get("since", ""), end=False)
    until = _day(params.get("until", ""), end=True)
    if as_of.moment is not None:
        until = min(until, as_of.moment) if until else as_of.moment
    sight = viewer.sight  # a scoped viewer: only the events its scope concerns, in its dates
    starts = sight.scope.starts if sight.scope else None
    if starts is not None:
        since = max(since, starts) if since else starts
    try:
        number = min(max(1, int(params.get("page", "1"))), MAX_OFFSET // PER_PAGE)
    except ValueError:
        number = 1
    # Who read the audit trail, and what they asked for, is recorded as an audit read event
    # (pages.recorded_page_read), like every read of the regulator API.
    live = runtime_of(request).views
    found = timeline(live, source=source, types=[kind] if kind else [], actor=actor,
                     subjects=[subject] if subject else [], q=q, since=since, until=until,
                     limit=PER_PAGE, offset=(number - 1) * PER_PAGE,
                     hidden_types=sight.hidden_types(), within=sight.about())
    with read_models(request, as_of.moment) as db:
        state = sight.state(network_state(db, as_of.day), db)
        summary = network_summary(db)
        market = market_view(db, as_of.moment)
    types = event_types(live)
    if not sight.whole:
        types = {k: [t for t in v if t not in sight.hidden_types()] for k, v in types.items()}
    filters = {"source": source or "", "type": kind, "actor": actor, "subject": subject,
               "q": q, "since": params.get("since", ""), "until": params.get("until", ""),
               "as_of": as_of.text if as_of.moment else ""}
    return page(request, "audit.html", viewer, section="audit", as_of=as_of, found=found,
                subject_names=record_names(live),
                number=number, pages=max(1, ceil(found.total / PER_PAGE)),
                types=types, sources=SOURCES, filters=filters, state=state,
                summary=summary, market=market,
                query={k: v for k, v in filters.items() if v})
