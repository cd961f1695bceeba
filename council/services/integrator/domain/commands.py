"""What the integrator accepts from the outside for commissioning, validated field by field
before any command runs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from council.kernel.contracts.integrator import (
    ArrangementType,
    DecisionKind,
    DelegatedRole,
    EndingKind,
    PaymentFrequency,
    SignInRefusal,
    SourcingOption,
    SourcingStage,
    ThrottledBy,
    VariationKind,
)
from council.kernel.text import ONE_LINE, BusinessDate, LongText, Reason, ShortText, Text


def _pounds(value: Decimal) -> Decimal:
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("pounds have at most two decimal places (pence)")
    return value.quantize(Decimal("0.01"))


Money = Annotated[Decimal, Field(gt=0, le=Decimal("1e11"), allow_inf_nan=False),
                  AfterValidator(_pounds)]
SignedMoney = Annotated[Decimal, Field(ge=Decimal("-1e11"), le=Decimal("1e11"),
                                       allow_inf_nan=False), AfterValidator(_pounds)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False, decimal_places=4)]


def _known_category(code: str) -> str:
    from council.kernel.taxonomy import taxonomy

    if not taxonomy().has(code):
        raise ValueError("not a category of the service taxonomy")
    return code


Category = Annotated[str, AfterValidator(_known_category)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Area = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
                 ONE_LINE]


class PopulationIn(_Input):
    description: LongText = Field(examples=["Young people aged 13 to 17 in Northshire"])
    size: int | None = Field(default=None, ge=0, le=10**9)
    areas: list[Area] = Field(
        default_factory=list, max_length=100, examples=[["Eastmoor", "Brookfield"]],
        description="where the population lives, named as providers name the areas they serve "
                    "(the market view's supply gaps match them, ignoring case)")

    @field_validator("areas")
    @classmethod
    def _distinct(cls, areas: list[str]) -> list[str]:
        """Each area once, as first written (Eastmoor and eastmoor are one area)."""
        found: dict[str, str] = {}
        for area in areas:
            found.setdefault(area.casefold(), area)
        return list(found.values())


class OutcomeIn(_Input):
    description: LongText = Field(examples=["Fewer teenagers living with obesity"])
    measure_id: UUID | None = Field(default=None, description="an outcome measure's id")
    target: Text | None = Field(default=None, examples=["from 21% to 17%"])
    target_date: BusinessDate | None = None


class NewNeed(_Input):
    title: Text
    service_area: Category
    population: PopulationIn
    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=50)
    outputs: list[Text] = Field(default_factory=list, max_length=50)
    budget_envelope: Money
    starts_on: BusinessDate
    ends_on: BusinessDate
    lead_organisation: Text = "Northshire County Council"

    @field_validator("ends_on")
    @classmethod
    def _in_order(cls, ends_on: date, info: ValidationInfo) -> date:
        starts_on = info.data.get("starts_on")  # absent when it failed its own validation
        if starts_on is not None and ends_on <= starts_on:
            raise ValueError("must be after starts_on")
        return ends_on


class NewContribution(_Input):
    partner: Text = Field(examples=["Northshire Police"])
    amount: Money
    note: LongText | None = None


class EnvelopeRaise(_Input):
    """The council tops up its own envelope for a need, by a recorded decision."""

    amount: Money
    reason: Reason = Field(examples=["Cabinet decision of 4 March 2027: winter pressures"])


class OptionIn(_Input):
    option: SourcingOption
    description: LongText
    estimated_cost: Money | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    benefits: LongText | None = None
    risks: LongText | None = None


class OptionsAppraisal(_Input):
    options: list[OptionIn] = Field(min_length=1, max_length=20)
    recommended: SourcingOption
    rationale: Reason


class MarketEngagement(_Input):
    summary: LongText
    engaged_on: BusinessDate
    provider_ids: list[UUID] = Field(default_factory=list, max_length=500)


class AwardIn(_Input):
    title: Text
    arrangement_type: ArrangementType
    provider_ids: list[UUID] = Field(min_length=1, max_length=20)
    allocation: Money


class NewDecision(_Input):
    awards: list[AwardIn] = Field(min_length=1, max_length=50)
    rationale: Reason
    decision_maker: Text = Field(examples=["Cabinet Member for Adult Social Care"])


class StageStep(_Input):
    stage: SourcingStage
    notes: LongText


class Closure(_Input):
    reason: Reason


class PartyIn(_Input):
    provider_id: UUID
    allocation: Money


class AgreementOutcomeIn(_Input):
    outcome_id: Text
    measure_id: UUID | None = None
    target: Text | None = None


class RewardTermsIn(_Input):
    payment_by_results_share_pct: Percent = Decimal(0)
    bonus_max: Money | None = None
    penalty_max: Money | None = None
    notes: LongText | None = None
    payment_frequency: PaymentFrequency | None = Field(
        default=None, description="how often results are paid (monthly or quarterly): the "
        "agreement's rate card settles in these periods")


class RiskShareIn(_Input):
    council_pct: Percent
    provider_pct: Percent
    notes: LongText | None = None


class NewAgreement(_Input):
    """An agreement for one award of a commissioning decision."""

    need_id: UUID
    award_id: Text
    title: Text | None = Field(default=None, description="defaults to the award's title")
    parties: list[PartyIn] | None = Field(
        default=None, description="defaults to the award's providers, sharing it equally"
    )
    starts_on: BusinessDate
    ends_on: BusinessDate
    outcomes: list[AgreementOutcomeIn] = Field(default_factory=list, max_length=50)
    reward_terms: RewardTermsIn | None = None
    risk_share: RiskShareIn | None = None
    break_clauses: list[LongText] = Field(default_factory=list, max_length=20)
    exit_plan: LongText


class Signature(_Input):
    """The agreement as signed by the parties."""

    signed_on: BusinessDate
    signatories: list[Text] = Field(min_length=1, max_length=20,
                                    examples=[["Jo Patel for Northshire County Council",
                                               "Amir Khan for Hillside Kitchen CIC"]])


class Activation(_Input):
    activated_on: BusinessDate


class NewVariation(_Input):
    kind: VariationKind
    budget_change: SignedMoney = Decimal(0)
    scope: LongText | None = None
    reason: Reason


class NewExtension(_Input):
    new_end: BusinessDate
    justification: Reason
    performance_evidence: LongText
    override_reason: Reason | None = Field(
        default=None, description="only when the integrator holds no performance data for the "
        "agreement yet: why it is extended anyway (approved under the scheme of delegation)")


class NewBusinessCase(_Input):
    need: LongText
    expected_outcomes: LongText
    cost: Money


class Ending(_Input):
    how: EndingKind
    ended_on: BusinessDate
    reason: Reason
    exit_plan_executed: bool = False
    exit_notes: LongText | None = None


class NewSpend(_Input):
    provider_id: UUID
    amount: Money
    period: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-04"])
    reference: Text | None = None


class DuePayment(_Input):
    """The council pays a results payment due (or recovers a credit), each party its share."""

    reference: Text | None = Field(default=None, examples=["Remittance 2026-0412"],
                                   description="the council's payment or invoice reference")


class DelegatedLimitIn(_Input):
    role: DelegatedRole
    kind: DecisionKind
    up_to: Money | None = Field(default=None, description="pounds; null: without limit")


class DelegationLimits(_Input):
    """A council's scheme of delegation: every limit, replacing those set before."""

    limits: list[DelegatedLimitIn] = Field(min_length=1, max_length=50)
    reason: Reason = Field(examples=["Financial regulations 2026, part 4"])


class NewLesson(_Input):
    need_id: UUID | None = None
    agreement_id: UUID | None = None
    stage: SourcingStage
    went: str = Field(pattern=r"^(well|badly)$")
    what: LongText
    why: LongText
    tags: list[ShortText] = Field(default_factory=list,
                                                                         max_length=20)

    @model_validator(mode="after")
    def _about_something(self) -> Self:
        if self.need_id is None and self.agreement_id is None:
            raise ValueError("a lesson is about a need or an agreement (need_id or agreement_id)")
        return self


class ThrottleBegun(_Input):
    """A throttle a failed sign-in began: what it counts, how many failures, until when."""

    by: ThrottledBy
    failures: int = Field(ge=1)
    window_seconds: int = Field(ge=1)
    until: datetime


class SignInFailure(_Input):
    """A failed sign-in to the web pages, as the pages report it (never the password)."""

    account: Annotated[str, StringConstraints(max_length=64)] | None = None
    address: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    reason: SignInRefusal
    account_failures: int = Field(ge=0)
    address_failures: int = Field(ge=0)
    throttle: ThrottleBegun | None = None


def dump(model: BaseModel | None) -> dict[str, Any] | None:
    """A model as event data: Decimals and UUIDs kept, dates as ISO strings, choices (enums)
    as their text."""
    if model is None:
        return None
    data: dict[str, Any] = model.model_dump(mode="python")
    return {k: (v.isoformat() if isinstance(v, date) else v.value if isinstance(v, Enum) else v)
            for k, v in data.items()}
