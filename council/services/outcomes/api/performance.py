"""HTTP entry points of the performance view: per outcome measure and per agreement, target
against actual over time with a RAG status (a period still running is provisional and rates
nothing), delivery volumes per unit, payments and spend, and cost per outcome per measure in its
own unit (council.services.outcomes.projections.performance states the rules). Council readers read
everything; a provider reads only the agreements it is a party to (to it, others do not exist)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from council.kernel.errors import NotFound
from council.kernel.performance_rule import Rag
from council.kernel.text import MAX_OFFSET
from council.platform.identity import COUNCIL_READERS, Principal, Role, require
from council.platform.readcache import DEFAULT_PAGE, Answer, cached, json_of, page
from council.platform.runtime import Runtime
from council.platform.sql import Database
from council.services.outcomes.projections.performance_views import (
    AgreementPerformance,
    AgreementPerformanceSummary,
    MeasurePerformance,
    agreement_parties,
    get_agreement_performance,
    get_measure_performance,
    list_agreement_performance,
)

router = APIRouter(tags=["performance"])

CouncilReader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS, Role.PROVIDER))]


def _views(request: Request) -> Database:
    runtime: Runtime = request.app.state.runtime
    return runtime.views


@router.get("/performance/measures/{measure_id}", response_model=MeasurePerformance)
def measure_performance(measure_id: UUID, request: Request,
                        principal: CouncilReader) -> Response:
    """Rule: a period still running is provisional and sets no RAG.

    An outcome measure's target against actual over time (the latest revision of each
    period's measurement, with how often it was revised) and the RAG of every period: green if
    the actual meets or beats the target, amber if short by no more than 10% of the targeted
    improvement on the baseline, red otherwise, none without a target or a measurement. The
    measure's RAG is its latest ended period's; a period still running is marked provisional."""
    def make() -> Answer:
        found = get_measure_performance(_views(request), measure_id)
        if found is None:
            raise NotFound(f"no outcome measure {measure_id}")
        return Answer(json_of(found, MeasurePerformance))

    return cached(request, principal, make)


@router.get("/performance/agreements", response_model=list[AgreementPerformanceSummary])
def agreements_performance(
    request: Request,
    principal: Reader,
    rag: Annotated[
        Literal["green", "amber", "red", "none"] | None,
        Query(description="only agreements of this RAG ('none': not yet assessable)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Rule: cost per outcome is in each measure's own unit; a period still running is provisional.

    Every agreement with its RAG (on its latest ended period), latest achievement, payments,
    spend, delivery volumes per unit and cost per outcome per attributed measure in the
    measure's own unit (with how it was worked out), best first: green, amber, red, none, then
    by title, a page at a time (the `Link` header names the next and previous pages). A
    provider sees only its own agreements."""
    provider_id = principal.provider_id if principal.role is Role.PROVIDER else None
    shape = list[AgreementPerformanceSummary]
    if principal.role is Role.PROVIDER and provider_id is None:
        return cached(request, principal, lambda: page(request, [], limit, offset, shape))
    return cached(request, principal, lambda: page(request, list_agreement_performance(
        _views(request), rag=Rag(rag) if rag not in (None, "none") else None,
        unrated=rag == "none", provider_id=provider_id, limit=limit + 1, offset=offset),
        limit, offset, shape))


@router.get("/performance/agreements/{agreement_id}", response_model=AgreementPerformance)
def agreement_performance(agreement_id: UUID, request: Request,
                          principal: Reader) -> Response:
    """Rule: cost per outcome is in each measure's own unit; a period still running is provisional.

    One agreement: per attributed outcome, target against actual over its term with the RAG
    of each period; its weighted achievement and RAG per period (the latest ended one is its
    overall RAG; one still running is provisional); delivery volumes per period, activity type
    and unit after corrections; payments per period (latest total and every recalculation's
    difference) and spend; cost per outcome per measure in its own unit."""
    db = _views(request)

    def make() -> Answer:
        if principal.role is Role.PROVIDER and principal.provider_id not in agreement_parties(
            db, agreement_id
        ):
            raise NotFound(f"no agreement {agreement_id}")
        found = get_agreement_performance(db, agreement_id)
        if found is None:
            raise NotFound(f"no agreement {agreement_id}")
        return Answer(json_of(found, AgreementPerformance))

    return cached(request, principal, make)
