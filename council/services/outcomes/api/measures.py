"""HTTP entry point for outcome measures: defining them (with baseline, target trajectory, data
source and geography) and recording their measurements period by period. A second measurement
for a period is a revision: both are kept, and each says who recorded it, from which source and
when. Routes only translate to the outcomes application."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel

from council.kernel.contracts.outcomes import TrajectoryPoint
from council.kernel.envelope import EventEnvelope
from council.platform.identity import (
    COUNCIL_READERS,
    COUNCIL_WRITERS,
    Principal,
    acting_as,
    require,
)
from council.platform.runtime import Runtime
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.aggregates import OutcomeMeasure
from council.services.outcomes.domain.commands import NewMeasure, NewMeasurement
from council.services.outcomes.projections.measures import MeasureSummary, list_measures

router = APIRouter(tags=["outcome measures"])

Writer = Annotated[Principal, Depends(require(*COUNCIL_WRITERS))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="retrying with the same key defines the measure once"),
]


class MeasurementView(BaseModel):
    """One measurement with its provenance. `revises` names the measurement it replaced;
    `revised_by` the one that replaced it (None: it is the period's current value)."""

    measurement_id: str
    period: str
    value: Decimal
    source: str
    note: str | None
    revises: str | None
    revised_by: str | None
    current: bool
    recorded_by: str | None
    recorded_at: datetime
    correlation_id: str | None


class PeriodView(BaseModel):
    """A period of the measure: its target (from the trajectory), its current value, and how
    many times it was measured (1 + revisions)."""

    period: str
    target: Decimal | None
    value: Decimal | None
    measurement_id: str | None
    measurements: int


class MeasureDetail(MeasureSummary):
    defined_by: str | None
    defined_at: datetime
    periods: list[PeriodView]
    measurements: list[MeasurementView]


def outcomes_of(request: Request) -> Outcomes:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, Outcomes)
    return runtime.app


def summary_of(measure: OutcomeMeasure) -> MeasureSummary:
    return MeasureSummary(
        measure_id=str(measure.id), name=measure.name, unit=measure.unit,
        direction=measure.direction, description=measure.description, baseline=measure.baseline,
        baseline_period=measure.baseline_period,
        trajectory=[TrajectoryPoint(period=p, target=t) for p, t in measure.trajectory.items()],
        data_source=measure.data_source, geography=measure.geography,
    )


def history_of(outcomes: Outcomes, measure_id: UUID) -> list[EventEnvelope]:
    """The measure's events, oldest first, as the shared log carries them."""
    outcomes.measure(measure_id)  # 404 unless it is a measure
    return [outcomes.to_envelope(s) for s in outcomes.recorder.select_events(measure_id)]


def measurements_of(history: list[EventEnvelope]) -> list[MeasurementView]:
    recorded = [e for e in history if e.type == "MeasurementRecorded"]
    revised_by = {e.data["revises"]: e.data["measurement_id"] for e in recorded
                  if e.data.get("revises")}
    return [
        MeasurementView(
            measurement_id=e.data["measurement_id"], period=e.data["period"],
            value=Decimal(str(e.data["value"])), source=e.data["source"],
            note=e.data.get("note"), revises=e.data.get("revises"),
            revised_by=revised_by.get(e.data["measurement_id"]),
            current=e.data["measurement_id"] not in revised_by,
            recorded_by=e.actor, recorded_at=e.recorded_at, correlation_id=e.correlation_id,
        )
        for e in recorded
    ]


def detail_of(measure: OutcomeMeasure, history: list[EventEnvelope]) -> MeasureDetail:
    measurements = measurements_of(history)
    periods: dict[str, dict[str, Any]] = {
        p: {"period": p, "target": t, "value": None, "measurement_id": None, "measurements": 0}
        for p, t in measure.trajectory.items()
    }
    for m in measurements:
        row = periods.setdefault(m.period, {"period": m.period, "target": None, "value": None,
                                            "measurement_id": None, "measurements": 0})
        row["measurements"] += 1
        if m.current:
            row["value"], row["measurement_id"] = m.value, m.measurement_id
    defined = history[0]
    return MeasureDetail(
        **summary_of(measure).model_dump(),
        defined_by=defined.actor, defined_at=defined.recorded_at,
        periods=[PeriodView(**periods[p]) for p in sorted(periods)],
        measurements=measurements,
    )


@router.post("/measures", status_code=status.HTTP_201_CREATED, response_model=MeasureSummary,
             responses={200: {"model": MeasureSummary, "description": "a replay: the measure "
                              "this Idempotency-Key defined already"}})
def define_measure(
    body: NewMeasure, request: Request, response: Response, principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> MeasureSummary:
    """Define an outcome measure: unit, desirable direction, baseline, target trajectory per
    period, data source and geography (records OutcomeMeasureDefined)."""
    outcomes = outcomes_of(request)
    with acting_as(request, principal):
        measure_id, created = outcomes.define_measure(body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/measures/{measure_id}"
    return summary_of(outcomes.measure(measure_id))


@router.get("/measures", response_model=list[MeasureSummary])
def measures(request: Request, _: Reader) -> list[MeasureSummary]:
    """Every outcome measure, as projected from the shared log."""
    runtime: Runtime = request.app.state.runtime
    return list_measures(runtime.views)


@router.get("/measures/{measure_id}", response_model=MeasureDetail)
def get_measure(measure_id: UUID, request: Request, _: Reader) -> MeasureDetail:
    """One measure: its definition and trajectory, each period's target and current value, and
    every measurement ever recorded (revisions too), with who recorded it, from which source
    and when, and what it revises."""
    outcomes = outcomes_of(request)
    history = history_of(outcomes, measure_id)
    return detail_of(outcomes.measure(measure_id), history)


@router.post("/measures/{measure_id}/measurements", status_code=status.HTTP_201_CREATED,
             response_model=MeasurementView)
def record_measurement(
    measure_id: UUID, body: NewMeasurement, request: Request, response: Response,
    principal: Writer,
) -> MeasurementView:
    """Record the measure's value for a period (records MeasurementRecorded). If the period
    already has a value this is a revision of it: both are kept, and payments that depended on
    the period are recalculated."""
    outcomes = outcomes_of(request)
    with acting_as(request, principal):
        measurement_id, _ = outcomes.record_measurement(measure_id, body)
    response.headers["Location"] = f"/measures/{measure_id}"
    recorded = measurements_of(history_of(outcomes, measure_id))
    return next(m for m in recorded if m.measurement_id == measurement_id)
