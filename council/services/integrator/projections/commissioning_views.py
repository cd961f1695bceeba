"""What the commissioning read model answers, as the API and the pages show it: needs,
agreements, their variations, extensions, business cases, spend and results payments due,
partner splits and lessons (each figure with its unit and how it was worked out)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.contracts.integrator import (
    AgreementOutcome,
    ArrangementType,
    Award,
    Option,
    OutcomeSought,
    Population,
    RewardTerms,
    RiskShare,
    SourcingStage,
)

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: cm_agreements.activated_at and ended_at, the business times of those events (the market
# view's quarterly history of concentration follows them).
# 3: agreements' signatures, extensions' performance data and overrides.
# 4: results payments due (cm_results_due) and the due item a payment pays (cm_spend.due_id).

PENNY = Decimal("0.01")


class Contribution(BaseModel):
    """One organisation's part of a need's pooled budget. The lead organisation's envelope is
    its contribution (contribution_id "envelope")."""

    contribution_id: str
    partner: str
    amount: Decimal
    is_lead: bool
    note: str | None = None
    pledged_at: datetime


class Decision(BaseModel):
    decision_id: str
    rationale: str
    decision_maker: str
    decided_at: datetime
    awards: list[Award]


class Party(BaseModel):
    provider_id: UUID
    allocation: Decimal = Field(description="current allocation (scaled by any variations)")
    original_allocation: Decimal
    spent: Decimal


class AgreementSummary(BaseModel):
    agreement_id: UUID
    need_id: UUID
    decision_id: str | None
    award_id: str | None
    title: str
    arrangement_type: ArrangementType
    status: str = Field(description="drafted, active or ended")
    starts_on: date
    ends_on: date = Field(description="the current end, after any extensions")
    original_ends_on: date
    activated_on: date | None
    ended_on: date | None
    ended_how: str | None = Field(description="completed, terminated or exited")
    budget: Decimal = Field(description="the current budget, after any variations")
    original_budget: Decimal
    spent: Decimal = Field(description="£: every payment recorded, by hand or of results "
                           "payments due (net of credits recovered)")
    due: Decimal = Field(default=Decimal(0), description="£: results payments due and not "
                         "paid yet (net of credits to recover)")
    parties: list[Party]
    updated_at: datetime


class Variation(BaseModel):
    variation_id: str
    kind: str
    budget_change: Decimal
    new_budget: Decimal
    scope: str | None
    reason: str
    business_case_id: str | None
    varied_at: datetime


class Extension(BaseModel):
    extension_id: str
    previous_end: date
    new_end: date
    justification: str
    performance_evidence: str
    extended_at: datetime
    performance_data: str | None = Field(
        default=None, description="the performance data held when it was extended")
    override_reason: str | None = Field(
        default=None, description="why it was extended with no performance data yet")
    override_approved_by: str | None = None


class BusinessCase(BaseModel):
    business_case_id: str
    need: str
    expected_outcomes: str
    cost: Decimal
    status: str = Field(description="proposed, approved or rejected")
    decision_reason: str | None
    proposed_at: datetime
    decided_at: datetime | None


class Spend(BaseModel):
    spend_id: str
    provider_id: UUID
    amount: Decimal = Field(description="£ paid (negative: a results payment's credit "
                            "recovered)")
    period: str = Field(description="YYYY-MM, the month it is for")
    reference: str | None
    recorded_at: datetime
    due_id: str | None = Field(default=None, description="the results payment due it pays "
                               "(results_due); none for payments recorded by hand")


class DueShare(BaseModel):
    provider_id: UUID
    amount: Decimal = Field(description="£: the party's share, by allocation, to the penny")


class CalculationLine(BaseModel):
    description: str
    basis: str
    amount: Decimal = Field(description="£")


class ResultsDueItem(BaseModel):
    """A results payment the outcomes service calculated, due under the agreement: paid (or,
    for a credit, recovered) by the council as spend, each party its share."""

    due_id: str
    calculation_id: str
    terms_id: UUID
    period: str = Field(description="the results period: a month (2026-04) or a quarter")
    amount: Decimal = Field(description="£ due: the calculated total, or a recalculation's "
                            "difference (negative: a credit to recover)")
    shares: list[DueShare]
    calculated_on: date
    calculated_total: Decimal = Field(description="£: the period's total by this calculation")
    previous_total: Decimal | None = Field(description="£: the period's total before a "
                                           "recalculation")
    reason: str
    lines: list[CalculationLine] = Field(description="the calculation, line by line")
    over_budget_by: Decimal = Field(description="£ by which paying everything due would have "
                                    "taken spend past the budget when it became due")
    status: str = Field(description="due, needs a variation (the budget cannot take it now), "
                        "to recover (a credit), paid or recovered")
    short_by: Decimal = Field(description="£ the budget is short to pay it now (0: it can be)")
    recorded_at: datetime
    paid_at: datetime | None
    paid_by: str | None
    paid_period: str | None = Field(description="the month its spend is for")
    how: str = Field(description="the figure in words: what, for which period, how it was "
                     "worked out, and where it stands")


class AgreementDetail(AgreementSummary):
    signed_on: date | None = Field(description="none for agreements in force before "
                                   "signatures were recorded")
    signatories: list[str]
    outcomes: list[AgreementOutcome]
    reward_terms: RewardTerms | None
    risk_share: RiskShare | None
    break_clauses: list[str]
    exit_plan: str
    ended_reason: str | None
    exit_plan_executed: bool | None
    exit_notes: str | None
    variations: list[Variation]
    extensions: list[Extension]
    business_cases: list[BusinessCase]
    spend: list[Spend]
    results_due: list[ResultsDueItem] = Field(default_factory=list)
    drafted_at: datetime
    workings: dict[str, str] = Field(default_factory=dict, description="each figure "
                                     "(budget, spent, due) in its unit and how it was worked "
                                     "out")


class NeedSummary(BaseModel):
    need_id: UUID
    title: str
    service_area: str
    stage: SourcingStage
    status: str = Field(description="open or closed")
    closed_reason: str | None
    lead_organisation: str
    starts_on: date
    ends_on: date
    outcomes: list[OutcomeSought]
    budget_envelope: Decimal = Field(description="the lead organisation's own budget")
    pooled_budget: Decimal = Field(description="the envelope plus every partner's contribution")
    awarded: Decimal = Field(description="allocated by commissioning decisions")
    committed: Decimal = Field(description="current budgets of the need's active agreements")
    spent: Decimal = Field(description="£: every payment under the need's agreements, by hand "
                           "or of results payments")
    due: Decimal = Field(default=Decimal(0), description="£: results payments due under its "
                         "agreements and not paid yet")
    active_agreements: int
    updated_at: datetime


class Engagement(BaseModel):
    summary: str
    engaged_on: date
    provider_ids: list[UUID]


class NeedDetail(NeedSummary):
    population: Population
    outputs: list[str]
    options: list[Option]
    recommended: str | None
    options_rationale: str | None
    engagements: list[Engagement]
    contributions: list[Contribution]
    decisions: list[Decision]
    agreements: list[AgreementSummary]
    defined_at: datetime
    defined_by: str | None
    workings: dict[str, str] = Field(default_factory=dict, description="each figure in its "
                                     "unit and how it was worked out")


class PartnerSplit(BaseModel):
    partner: str
    is_lead: bool
    contribution: Decimal
    share_pct: Decimal = Field(description="share of the pooled budget, in per cent")
    committed: Decimal
    spent: Decimal
    due: Decimal = Decimal(0)


class SpendByPartner(BaseModel):
    """A collaborative commission's committed spend and spend to date, split between the
    organisations pro rata to what each put into the pool (pennies of rounding go to the lead)."""

    need_id: UUID
    pooled_budget: Decimal
    committed: Decimal
    spent: Decimal
    due: Decimal = Decimal(0)
    partners: list[PartnerSplit]
    workings: dict[str, str] = Field(default_factory=dict, description="each figure in its "
                                     "unit and how it was worked out")


class LessonView(BaseModel):
    lesson_id: UUID
    need_id: UUID | None
    agreement_id: UUID | None
    stage: SourcingStage
    went: str
    what: str
    why: str
    tags: list[str]
    recorded_at: datetime
    recorded_by: str | None


__all__ = [
    "AgreementDetail",
    "AgreementSummary",
    "BusinessCase",
    "CalculationLine",
    "Contribution",
    "Decision",
    "DueShare",
    "Engagement",
    "Extension",
    "LessonView",
    "NeedDetail",
    "NeedSummary",
    "PartnerSplit",
    "Party",
    "ResultsDueItem",
    "Spend",
    "SpendByPartner",
    "Variation",
]
