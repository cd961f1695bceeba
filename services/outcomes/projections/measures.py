"""The outcome measures catalogue, projected from the shared log."""

from __future__ import annotations

from pydantic import BaseModel

from shared.contracts.outcomes import SOURCE, Direction, OutcomeMeasureDefined
from shared.envelope import EventEnvelope
from shared.projection import Projection
from shared.sql import Database, Tx


class MeasureSummary(BaseModel):
    measure_id: str
    name: str
    unit: str
    direction: Direction


class MeasuresProjection(Projection):
    name = "outcomes.measures"
    sources = (SOURCE,)

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS outcome_measures (measure_id TEXT PRIMARY KEY,"
            " name TEXT NOT NULL, unit TEXT NOT NULL, direction TEXT NOT NULL)"
        )

    def drop(self, tx: Tx) -> None:
        tx.execute("DROP TABLE IF EXISTS outcome_measures")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "OutcomeMeasureDefined":
            data = OutcomeMeasureDefined.model_validate(event.data)
            tx.execute(
                "INSERT INTO outcome_measures (measure_id, name, unit, direction)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (measure_id) DO NOTHING",
                (str(data.measure_id), data.name, data.unit, data.direction.value),
            )


def list_measures(db: Database) -> list[MeasureSummary]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT measure_id, name, unit, direction FROM outcome_measures ORDER BY name"
        )
    return [MeasureSummary(measure_id=r[0], name=r[1], unit=r[2], direction=r[3]) for r in rows]
