"""HTTP entry point of the outcomes service."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel

from services.outcomes.application import Outcomes
from services.outcomes.commands import NewMeasure
from services.outcomes.projections.measures import MeasureSummary, list_measures
from shared.contracts.outcomes import Direction
from shared.identity import COUNCIL_READERS, COUNCIL_WRITERS, Principal, acting_as, require
from shared.web import Runtime

router = APIRouter(tags=["outcome measures"])


class MeasureView(BaseModel):
    measure_id: UUID
    name: str
    unit: str
    direction: Direction


def _outcomes(request: Request) -> Outcomes:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, Outcomes)
    return runtime.app


@router.post("/measures", status_code=status.HTTP_201_CREATED, response_model=MeasureView)
def define_measure(
    body: NewMeasure,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require(*COUNCIL_WRITERS))],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> MeasureView:
    """Define an outcome measure (records OutcomeMeasureDefined)."""
    outcomes = _outcomes(request)
    with acting_as(request, principal):
        measure_id, created = outcomes.define_measure(body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    measure = outcomes.measure(measure_id)
    return MeasureView(measure_id=measure.id, name=measure.name, unit=measure.unit,
                       direction=measure.direction)


@router.get("/measures", response_model=list[MeasureSummary])
def measures(
    request: Request, _: Annotated[Principal, Depends(require(*COUNCIL_READERS))]
) -> list[MeasureSummary]:
    """Every outcome measure, as projected from the shared log."""
    runtime: Runtime = request.app.state.runtime
    return list_measures(runtime.views)
