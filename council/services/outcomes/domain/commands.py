"""What the outcomes service accepts from the outside, validated field by field."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from council.kernel import clock
from council.kernel.contracts.outcomes import Direction, Periodicity
from council.kernel.text import BusinessDate, Key, LongText, ShortText, Text
from council.services.outcomes.adapters.personal_data import (
    MAX_SERVICE_USERS,
    ServiceUserIn,
    distinct_references,
)
from council.services.outcomes.domain.activities import activity_types

_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$")


def _period(value: str) -> str:
    if not _PERIOD.match(value):
        raise ValueError("a period is a month (2026-04) or a quarter (2026-Q2)")
    return value


Period = Annotated[str, AfterValidator(_period)]
Value = Annotated[Decimal, Field(allow_inf_nan=False, ge=Decimal("-1e12"), le=Decimal("1e12"),
                                 decimal_places=6)]
Money = Annotated[Decimal, Field(allow_inf_nan=False, ge=0, le=Decimal("1e11"), decimal_places=2)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TrajectoryPointIn(_Input):
    period: Period
    target: Value


class NewMeasure(_Input):
    name: Text = Field(examples=["Teenage obesity rate"])
    unit: ShortText
    direction: Direction
    description: LongText | None = None
    baseline: Value | None = None
    baseline_period: Period | None = None
    trajectory: list[TrajectoryPointIn] = Field(default_factory=list, max_length=200)
    data_source: Text | None = Field(
        default=None, examples=["National Child Measurement Programme"]
    )
    geography: Text | None = Field(default=None, examples=["Northshire (upper-tier LA)"])

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        periods = [p.period for p in self.trajectory]
        if len(set(periods)) != len(periods):
            raise ValueError("trajectory: each period may appear once")
        if (self.baseline is None) != (self.baseline_period is None):
            raise ValueError("baseline and baseline_period go together")
        return self


class NewMeasurement(_Input):
    period: Period
    value: Value
    source: Text = Field(examples=["NCMP 2025/26 provisional"])
    note: LongText | None = None


class Attribution(_Input):
    measure_id: UUID
    weight: Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False, decimal_places=6)]


class DeliveryRateIn(_Input):
    activity_type: Key
    rate: Money
    threshold: Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), allow_inf_nan=False,
                                         decimal_places=6)] = Decimal(0)
    cap: Money | None = None

    @field_validator("activity_type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in activity_types():
            raise ValueError("not a known activity type (GET /activity-types lists them)")
        return value


class OutcomeRateIn(_Input):
    measure_id: UUID
    rate: Money
    threshold: Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), allow_inf_nan=False,
                                         decimal_places=6)] = Decimal(0)
    cap: Money | None = None


class BandIn(_Input):
    min_pct: Annotated[Decimal, Field(ge=0, le=1000, allow_inf_nan=False, decimal_places=4)]
    max_pct: Annotated[Decimal, Field(gt=0, le=1000, allow_inf_nan=False,
                                     decimal_places=4)] | None = None
    adjustment: Annotated[Decimal, Field(allow_inf_nan=False, ge=Decimal("-1e11"),
                                         le=Decimal("1e11"), decimal_places=2)]
    label: Text


class RateCardIn(_Input):
    periodicity: Periodicity | None = Field(
        default=None, description="the periods the card settles in: the agreement's payment "
        "frequency (leave it out to take it; another is refused). Quarterly when the agreement "
        "names none and the card names none")
    delivery_rates: list[DeliveryRateIn] = Field(default_factory=list, max_length=50)
    outcome_rates: list[OutcomeRateIn] = Field(default_factory=list, max_length=50)
    bands: list[BandIn] = Field(default_factory=list, max_length=20)
    provider_risk_pct: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False,
                                                decimal_places=4)] = Decimal(100)
    period_cap: Money | None = None

    @model_validator(mode="after")
    def _bands_do_not_overlap(self) -> Self:
        ordered = sorted(self.bands, key=lambda b: b.min_pct)
        for low, high in pairwise(ordered):
            if low.max_pct is None or low.max_pct > high.min_pct:
                raise ValueError("bands: performance bands must not overlap")
        for band in self.bands:
            if band.max_pct is not None and band.max_pct <= band.min_pct:
                raise ValueError("bands: max_pct must be above min_pct")
        return self


class DeliveryIn(_Input):
    """One delivery report from a provider (an HTTP body, an NDJSON line or a Kafka message)."""

    idempotency_key: Key = Field(description="the provider's own id for this report: a replay "
                                 "with the same key is accepted once")
    agreement_id: UUID
    activity_type: Key
    quantity: Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), allow_inf_nan=False,
                                         decimal_places=6)]
    unit: Text | None = Field(default=None, description="if given, must be the activity's unit")
    period_start: BusinessDate
    period_end: BusinessDate
    location: Text | None = None
    corrects: UUID | None = Field(default=None, description="the delivery id this corrects")
    service_users: Annotated[
        list[ServiceUserIn] | None, Field(max_length=MAX_SERVICE_USERS),
        AfterValidator(distinct_references),
    ] = Field(default=None, description="who the delivery was for, if the report names them: "
              "personal data, stored only encrypted per person (see council.services.outcomes."
              "personal_data)")

    @field_validator("quantity", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
            raise ValueError("quantity must be a number")
        return value

    @field_validator("activity_type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in activity_types():
            raise ValueError("not a known activity type (GET /activity-types lists them)")
        return value

    # The checks below are field validators (fields are validated in order), so an error
    # names the field at fault.
    @field_validator("unit")
    @classmethod
    def _unit_of_the_activity(cls, value: str | None, info: ValidationInfo) -> str | None:
        activity = info.data.get("activity_type")
        if value is not None and activity is not None:
            unit = activity_types()[activity].unit
            if value != unit:
                raise ValueError(f"{activity} is counted in {unit}, not {value}")
        return value

    @field_validator("period_start")
    @classmethod
    def _started(cls, value: date) -> date:
        if value > clock.now().date():
            raise ValueError("period_start is in the future: report delivery once it happened")
        return value

    @field_validator("period_end")
    @classmethod
    def _ended(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("period_start")
        if start is not None and value < start:
            raise ValueError("period_end is before period_start")
        if value > clock.now().date():
            raise ValueError("period_end is in the future: report delivery once the period "
                             "is over")
        return value
