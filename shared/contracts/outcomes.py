"""Events published by the outcomes service."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import published

SOURCE = "outcomes"


class Direction(StrEnum):
    """Which way a measure should move for the outcome to be improving."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


@published(SOURCE, "OutcomeMeasureDefined", stream_field="measure_id")
class OutcomeMeasureDefined(BaseModel):
    """The council defined an outcome measure it will commission against."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure_id: UUID
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=50)
    direction: Direction
