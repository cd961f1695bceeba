"""HTTP entry point for which arrangements work: every agreement with its performance (RAG,
latest achievement, payments, spend, delivery volumes per unit, cost per outcome per measure
in its own unit) from the outcomes service's events, best first; with `as_of`, as it stood then
(rebuilt from the shared log, and read for that day: what was still running then is
provisional)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from council.kernel.performance_rule import Rag
from council.kernel.text import MAX_OFFSET
from council.platform.readcache import DEFAULT_PAGE, page
from council.services.integrator.api.market import AsOf, Reader, answered
from council.services.integrator.projections.performance import (
    ArrangementPerformance,
    network_performance,
)

router = APIRouter(tags=["network state and market"])


@router.get("/network/performance", response_model=list[ArrangementPerformance])
def performance(
    request: Request,
    principal: Reader,
    as_of: AsOf,
    status: Annotated[Literal["drafted", "active", "ended"] | None, Query()] = None,
    rag: Annotated[
        Literal["green", "amber", "red", "none"] | None,
        Query(description="only agreements of this RAG ('none': not yet assessable)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Rule: cost per outcome is in each measure's own unit; a period still running is provisional.

    Which arrangements work: agreements sorted by RAG (green, amber, red, then those not yet
    assessable), then by title, each with its latest achievement against the outcome
    trajectory, payments, spend, delivery volumes per unit and, per attributed measure, its
    cost per unit of improvement in the measure's own unit with how it was worked out. The RAG
    rule: green if the weighted improvement achieved meets the improvement targeted for the
    latest assessed period that has ended (a period still running, on the as-of date if one is
    given, is provisional and sets no RAG), amber within 10% short of it, red otherwise. A page
at a time (the `Link` header names the next and previous pages)."""
    chosen = Rag(rag) if rag not in (None, "none") else None
    return answered(request, principal, as_of, lambda db: page(request, network_performance(
        db, status=status, rag=chosen, unrated=rag == "none",
        today=as_of.date() if as_of else None)[offset:offset + limit + 1], limit, offset,
        list[ArrangementPerformance]))
