"""HTTP entry points for what the integrator knows about its network and market: the network state
(providers x agreements x outcomes x budgets and spend), needs, agreements, lessons and the market
view. Every one reads the read models; with `as_of` it reads them as they stood then, rebuilt from
the shared log's events up to that moment (business time)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from council.kernel.contracts.integrator import ArrangementType, SourcingStage
from council.kernel.errors import NotFound
from council.kernel.text import MAX_OFFSET, QueryName, SearchText
from council.platform.identity import COUNCIL_READERS, Principal, require
from council.platform.readcache import DEFAULT_PAGE, Answer, cached, json_of, page, uncached
from council.platform.runtime import Runtime
from council.platform.sql import Database
from council.services.integrator.projections.agreement_queries import get_agreement, list_agreements
from council.services.integrator.projections.asof import as_of_moment, state_as_of
from council.services.integrator.projections.commissioning_views import (
    AgreementDetail,
    AgreementSummary,
    LessonView,
    NeedDetail,
    NeedSummary,
    SpendByPartner,
)
from council.services.integrator.projections.market import (
    MarketView,
    NetworkState,
    market_view,
    network_state,
)
from council.services.integrator.projections.need_queries import (
    get_need,
    list_needs,
    search_lessons,
    spend_by_partner,
)

router = APIRouter(tags=["network state and market"])

Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
T = TypeVar("T")


def as_of_param(
    as_of: Annotated[
        str | None,
        Query(max_length=40, examples=["2025-03-31", "2025-03-31T17:00:00Z"],
              description="read the view as it stood then (business time): an ISO date (the "
                          "end of that day, UTC) or date-time (UTC if no zone is given)"),
    ] = None,
) -> datetime | None:
    if as_of is None:
        return None
    try:
        return as_of_moment(as_of)
    except ValueError as exc:
        raise HTTPException(
            status_code=422,
            detail=[{"type": "value_error", "loc": ["query", "as_of"], "msg": str(exc)}],
        ) from None


AsOf = Annotated[datetime | None, Depends(as_of_param)]


@contextmanager
def views(request: Request, as_of: datetime | None) -> Iterator[Database]:
    """The live read models, or the ones rebuilt as of a moment."""
    runtime: Runtime = request.app.state.runtime
    if as_of is None:
        yield runtime.views
        return
    with state_as_of(runtime.event_log, None, as_of) as db:
        yield db


def read(request: Request, as_of: datetime | None, query: Callable[[Database], T]) -> T:
    with views(request, as_of) as db:
        return query(db)


def answered(request: Request, principal: Principal, as_of: datetime | None,
             make: Callable[[Database], Answer]) -> Response:
    """The answer from the live read models, kept until they move (council.platform.readcache); or
    one "as of" a moment, worked out each time."""
    if as_of is None:
        runtime: Runtime = request.app.state.runtime
        return cached(request, principal, lambda: make(runtime.views))
    return uncached(lambda: read(request, as_of, make))


def one(value: T | None, what: str, shape: object) -> Answer:
    return Answer(json_of(found(value, what), shape))


def found(value: T | None, what: str) -> T:
    if value is None:
        raise NotFound(f"no {what}")
    return value


# ---------------------------------------------------------------------- network and market


@router.get("/network/state", response_model=NetworkState)
def state(request: Request, principal: Reader, as_of: AsOf) -> Response:
    """Providers x agreements x outcomes x budgets and spend: every approved provider and every
    party to an active agreement, with its active agreements (allocation, spend, outcomes) and
    what it has been paid to date; totals across the network."""
    return answered(request, principal, as_of, lambda db: Answer(json_of(
        network_state(db, as_of.date() if as_of else None), NetworkState)))


@router.get("/market", response_model=MarketView)
def market(request: Request, principal: Reader, as_of: AsOf) -> Response:
    """Rule: concentration (HHI) is rated per top-level category; supply gaps are per area.

    The market view: share of committed spend by organisation type; per service category
    (rolled up the service taxonomy: a category includes every category below it) the approved
    providers, committed spend, each provider's share and the largest; per top-level category,
    where concentration is rated, the Herfindahl-Hirschman index now and at the end of each
    calendar quarter (the current quarter, to now or to `as_of`, marked partial); and the gaps
    (open needs and their outcomes with no active agreement, and areas where an open need wants
    a category no approved provider holds there). Every figure's unit and how it was worked out
    is in `definitions`."""
    return answered(request, principal, as_of,
                    lambda db: Answer(json_of(market_view(db, as_of), MarketView)))


# ---------------------------------------------------------------------- needs


@router.get("/needs", response_model=list[NeedSummary])
def needs(
    request: Request,
    principal: Reader,
    as_of: AsOf,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    service_area: Annotated[QueryName | None, Query()] = None,
    stage: Annotated[SourcingStage | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Commissioning needs in the order they were defined, with their budgets and spend, a page
    at a time (the `Link` header names the next and previous pages)."""
    return answered(request, principal, as_of, lambda db: page(request, list_needs(
        db, limit + 1, offset, status=status, service_area=service_area, stage=stage),
        limit, offset, list[NeedSummary]))


@router.get("/needs/{need_id}", response_model=NeedDetail)
def need(need_id: UUID, request: Request, principal: Reader, as_of: AsOf) -> Response:
    """One need with its contributions (the lead's envelope included), options, market
    engagement, decisions and awards, and its agreements."""
    return answered(request, principal, as_of,
                    lambda db: one(get_need(db, need_id), f"need {need_id}", NeedDetail))


@router.get("/needs/{need_id}/spend-by-partner", response_model=SpendByPartner)
def need_spend_by_partner(need_id: UUID, request: Request, _: Reader,
                          as_of: AsOf) -> SpendByPartner:
    """Rule: spend, results payments included, is split pro rata to contributions, to the penny.

    A collaborative commission's committed spend and spend to date, split between the lead
    organisation and its partners pro rata to their contributions."""
    return found(read(request, as_of, lambda db: spend_by_partner(db, need_id)),
                 f"need {need_id}")


# ---------------------------------------------------------------------- agreements


@router.get("/agreements", response_model=list[AgreementSummary])
def agreements(
    request: Request,
    principal: Reader,
    as_of: AsOf,
    status: Annotated[Literal["drafted", "active", "ended"] | None, Query()] = None,
    provider_id: Annotated[UUID | None, Query(description="agreements it is a party to")] = None,
    need_id: Annotated[UUID | None, Query()] = None,
    arrangement_type: Annotated[ArrangementType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Agreements in the order they were drafted, a page at a time (the `Link` header names the
    next and previous pages); filters combine."""
    return answered(request, principal, as_of, lambda db: page(request, list_agreements(
        db, limit + 1, offset, status=status, provider_id=provider_id, need_id=need_id,
        arrangement_type=arrangement_type), limit, offset, list[AgreementSummary]))


@router.get("/agreements/{agreement_id}", response_model=AgreementDetail)
def agreement(agreement_id: UUID, request: Request, principal: Reader,
              as_of: AsOf) -> Response:
    """Rule: spend counts payments by hand and results payments alike.

    One agreement with its parties, variations, extensions, business cases and spend."""
    return answered(request, principal, as_of, lambda db: one(
        get_agreement(db, agreement_id), f"agreement {agreement_id}", AgreementDetail))


# ---------------------------------------------------------------------- lessons


@router.get("/lessons", response_model=list[LessonView])
def lessons(
    request: Request,
    _: Reader,
    as_of: AsOf,
    q: Annotated[SearchText | None, Query(
                                   description="words that must all appear in what happened, "
                                               "why, or the tags (any case)")] = None,
    went: Annotated[Literal["well", "badly"] | None, Query()] = None,
    tag: Annotated[QueryName | None, Query()] = None,
    need_id: Annotated[UUID | None, Query()] = None,
    agreement_id: Annotated[UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[LessonView]:
    """Lessons learned, newest first, so commissioners learn from success and failure."""
    return read(request, as_of, lambda db: search_lessons(
        db, q, went=went, tag=tag, need_id=need_id, agreement_id=agreement_id, limit=limit,
        offset=offset))
