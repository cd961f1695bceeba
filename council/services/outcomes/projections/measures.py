"""The outcome measures catalogue and every measurement recorded against it, projected from the
shared log: each measure's definition (unit, direction, baseline, target trajectory, data source,
geography) and its measurements period by period with their provenance (who recorded them, from
which source, when), revisions kept beside what they revise.

A measure's events come from one stream, so a revision always arrives after what it revises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel

from council.kernel.contracts.outcomes import (
    SOURCE,
    Direction,
    MeasurementRecorded,
    OutcomeMeasureDefined,
    TrajectoryPoint,
)
from council.kernel.envelope import EventEnvelope
from council.platform.projection import TableProjection
from council.platform.sql import Database, Row, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
# (Version 1 added everything but name, unit and direction, and the measurements.)
SCHEMA_VERSION = 1

_MEASURE_COLUMNS = (
    "measure_id, name, unit, direction, description, baseline, baseline_period, trajectory,"
    " data_source, geography"
)
_MEASUREMENT_COLUMNS = (
    "measure_id, measurement_id, period, value, source, revises, revised_by, note,"
    " recorded_at, recorded_by"
)
_TABLES = (
    "CREATE TABLE IF NOT EXISTS outcome_measures ("
    " measure_id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL,"
    " direction TEXT NOT NULL, description TEXT, baseline TEXT, baseline_period TEXT,"
    " trajectory TEXT NOT NULL, data_source TEXT, geography TEXT, defined_at TEXT,"
    " defined_by TEXT)",
    "CREATE TABLE IF NOT EXISTS outcome_measurements ("
    " measure_id TEXT NOT NULL, measurement_id TEXT NOT NULL, period TEXT NOT NULL,"
    " value TEXT NOT NULL, source TEXT NOT NULL, revises TEXT, revised_by TEXT, note TEXT,"
    " recorded_at TEXT NOT NULL, recorded_by TEXT, seq BIGINT NOT NULL,"
    " PRIMARY KEY (measure_id, measurement_id))",
    "CREATE INDEX IF NOT EXISTS outcome_measurements_period"
    " ON outcome_measurements (measure_id, period)",
)
_DROPPED = ("outcome_measures", "outcome_measurements", "outcome_measures_schema")


class MeasureSummary(BaseModel):
    """An outcome measure's definition."""

    measure_id: str
    name: str
    unit: str
    direction: Direction
    description: str | None = None
    baseline: Decimal | None = None
    baseline_period: str | None = None
    trajectory: list[TrajectoryPoint] = []
    data_source: str | None = None
    geography: str | None = None


class MeasurementRow(BaseModel):
    """One measurement as recorded, with its provenance. `revised_by` names the measurement
    that replaced it (None: it is the period's current value)."""

    measure_id: UUID
    measurement_id: str
    period: str
    value: Decimal
    source: str
    revises: str | None
    revised_by: str | None
    note: str | None
    recorded_at: datetime
    recorded_by: str | None

    @property
    def current(self) -> bool:
        return self.revised_by is None


class MeasuresProjection(TableProjection):
    name = "outcomes.measures"
    sources = (SOURCE,)
    types = frozenset({"OutcomeMeasureDefined", "MeasurementRecorded"})

    marker = "outcome_measures_schema"
    version = SCHEMA_VERSION
    tables = _TABLES
    dropped = _DROPPED

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "OutcomeMeasureDefined":
            data = OutcomeMeasureDefined.model_validate(event.data)
            tx.execute(
                f"INSERT INTO outcome_measures ({_MEASURE_COLUMNS}, defined_at, defined_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (measure_id) DO NOTHING",
                (str(data.measure_id), data.name, data.unit, data.direction.value,
                 data.description, _text(data.baseline), data.baseline_period,
                 json.dumps([p.model_dump(mode="json") for p in data.trajectory]),
                 data.data_source, data.geography, event.recorded_at.isoformat(), event.actor),
            )
        elif event.type == "MeasurementRecorded":
            measured = MeasurementRecorded.model_validate(event.data)
            measure_id = str(measured.measure_id)
            tx.execute(
                f"INSERT INTO outcome_measurements ({_MEASUREMENT_COLUMNS}, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)"
                " ON CONFLICT (measure_id, measurement_id) DO NOTHING",
                (measure_id, measured.measurement_id, measured.period, str(measured.value),
                 measured.source, measured.revises, measured.note,
                 event.recorded_at.isoformat(), event.actor, event.stream_position),
            )
            if measured.revises is not None:
                tx.execute(
                    "UPDATE outcome_measurements SET revised_by = ?"
                    " WHERE measure_id = ? AND measurement_id = ?",
                    (measured.measurement_id, measure_id, measured.revises),
                )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _summary(row: Row) -> MeasureSummary:
    (measure_id, name, unit, direction, description, baseline, baseline_period, trajectory,
     data_source, geography) = row
    return MeasureSummary(
        measure_id=measure_id, name=name, unit=unit, direction=direction,
        description=description, baseline=Decimal(baseline) if baseline is not None else None,
        baseline_period=baseline_period, trajectory=json.loads(trajectory),
        data_source=data_source, geography=geography,
    )


def _measurement(row: Row) -> MeasurementRow:
    return MeasurementRow.model_validate(
        dict(zip(_MEASUREMENT_COLUMNS.replace(" ", "").split(","), row, strict=True))
    )


def list_measures(db: Database) -> list[MeasureSummary]:
    """Every outcome measure, by name."""
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_MEASURE_COLUMNS} FROM outcome_measures ORDER BY name, measure_id"
        )
    return [_summary(r) for r in rows]


def get_measure_summary(db: Database, measure_id: UUID) -> MeasureSummary | None:
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_MEASURE_COLUMNS} FROM outcome_measures WHERE measure_id = ?",
            (str(measure_id),),
        )
    return _summary(rows[0]) if rows else None


def list_measurements(
    db: Database, measure_ids: Sequence[UUID] | None = None, *, current_only: bool = False,
    periods: Sequence[str] | None = None,
) -> list[MeasurementRow]:
    """Measurements, by measure, period, then the order they were recorded: every revision, or
    only each period's current value (`current_only`); optionally of some measures, periods."""
    clauses: list[str] = []
    params: list[object] = []
    for column, values in (("measure_id", [str(m) for m in measure_ids or []]),
                           ("period", list(periods or []))):
        if (measure_ids if column == "measure_id" else periods) is not None:
            clauses.append(f"{column} IN ({','.join('?' * len(values)) or 'NULL'})")
            params.extend(values)
    if current_only:
        clauses.append("revised_by IS NULL")
    where = "WHERE " + " AND ".join(clauses) if clauses else ""
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_MEASUREMENT_COLUMNS} FROM outcome_measurements {where}"
            " ORDER BY measure_id, period, seq",
            params,
        )
    return [_measurement(r) for r in rows]


def current_values(db: Database, measure_id: UUID) -> dict[str, Decimal]:
    """Each period's current (latest) value of one measure."""
    return {m.period: m.value for m in list_measurements(db, [measure_id], current_only=True)}
