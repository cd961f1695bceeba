"""Events published by the integrator: commissioning needs and their strategic-sourcing steps,
decisions, agreements with their variations, extensions, business cases, spend and endings,
lessons learned, reads of the audit trail, and failed or throttled sign-ins to the web pages.
Money is in pounds with pence (decimal, written as a string in JSON)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from council.kernel.contracts.catalogue import published

SOURCE = "integrator"

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
Period = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$",
                              description="a month (2026-04) or a quarter (2026-Q2)")]


class SourcingOption(StrEnum):
    """The range of arrangements strategic sourcing weighs, from in-house to a mix."""

    IN_HOUSE = "in_house"
    SHARED_SERVICE = "shared_service"  # from another public body
    VCSE_GRANT = "vcse_grant"
    INFORMAL_SLA = "informal_sla"
    FRAMEWORK_CALL_OFF = "framework_call_off"
    FORMAL_CONTRACT = "formal_contract"
    MIXED = "mixed"  # split across several providers and arrangements


class ArrangementType(StrEnum):
    """The kind of agreement made with providers."""

    INFORMAL_SLA = "informal_sla"
    GRANT = "grant"
    CALL_OFF = "call_off"
    SHARED_SERVICE = "shared_service"
    FORMAL_CONTRACT = "formal_contract"


class SourcingStage(StrEnum):
    """The eight strategic-sourcing steps, from objectives to exit."""

    OBJECTIVES = "objectives"
    OPTIONS = "options"
    MARKET_ENGAGEMENT = "market_engagement"
    DECISION = "decision"
    MOBILISATION = "mobilisation"
    MANAGEMENT = "management"
    REVIEW = "review"
    EXIT = "exit"


class VariationKind(StrEnum):
    GROWTH = "growth"
    SCOPE_CHANGE = "scope_change"
    BUDGET_CHANGE = "budget_change"
    BUSINESS_CASE = "business_case"


class DecisionKind(StrEnum):
    """The kinds of financial decision a council's scheme of delegation sets limits for, each
    valued in pounds as said here."""

    AWARD = "award"  # a commissioning decision: the total of its awards
    VARIATION = "variation"  # the size of the budget change, up or down
    EXTENSION = "extension"  # the budget of the agreement kept in place for longer
    BUSINESS_CASE = "business_case"  # approving one: its cost
    SPEND = "spend"  # recording a payment: its amount
    ENVELOPE_RAISE = "envelope_raise"  # the council's top-up of a need's envelope
    # an extension with no performance data yet: the budget of the agreement extended
    PERFORMANCE_OVERRIDE = "performance_override"


class DelegatedRole(StrEnum):
    """The council roles a scheme of delegation gives authority to."""

    COMMISSIONER = "commissioner"
    INTEGRATOR_ADMIN = "integrator_admin"


class EndingKind(StrEnum):
    COMPLETED = "completed"
    TERMINATED = "terminated"
    EXITED = "exited"  # the exit plan was executed


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(_Data):
    description: str
    size: int | None = Field(default=None, ge=0)
    areas: list[str] = Field(
        default_factory=list,
        description="where the population lives, named as providers name the areas they serve "
                    "(e.g. districts); empty when not given (needs defined before areas existed)")


class OutcomeSought(_Data):
    """An outcome (not an activity) the council is buying, ideally tied to a measure."""

    outcome_id: str
    description: str
    measure_id: UUID | None = None
    target: str | None = None
    target_date: date | None = None


class Option(_Data):
    option: SourcingOption
    description: str
    estimated_cost: Money | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    benefits: str | None = None
    risks: str | None = None


class Award(_Data):
    award_id: str
    title: str
    arrangement_type: ArrangementType
    provider_ids: list[UUID] = Field(min_length=1)
    allocation: Money


class DelegatedLimit(_Data):
    """Up to what amount one role may take one kind of decision (no amount: without limit)."""

    role: DelegatedRole
    kind: DecisionKind
    up_to: Money | None = Field(default=None, ge=0,
                                description="pounds; null: without limit")


class Party(_Data):
    provider_id: UUID
    allocation: Money


class AgreementOutcome(_Data):
    outcome_id: str
    measure_id: UUID | None = None
    target: str | None = None


class PaymentFrequency(StrEnum):
    """How often results are paid: the periods the outcomes service settles payments in."""

    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class RewardTerms(_Data):
    payment_by_results_share_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    bonus_max: Money | None = None
    penalty_max: Money | None = None
    notes: str | None = None
    payment_frequency: PaymentFrequency | None = Field(
        default=None, description="how often results are paid; the agreement's rate card in "
        "the outcomes service settles in these periods (absent on agreements drafted before "
        "it was recorded)")


class RiskShare(_Data):
    council_pct: Decimal = Field(ge=0, le=100)
    provider_pct: Decimal = Field(ge=0, le=100)
    notes: str | None = None


# ---------------------------------------------------------------------- needs


@published(SOURCE, "NeedDefined", stream_field="need_id")
class NeedDefined(_Data):
    """The council defined a commissioning need as outcomes sought, within a budget envelope."""

    need_id: UUID
    title: str
    service_area: str
    population: Population
    outcomes: list[OutcomeSought]
    outputs: list[str] = Field(default_factory=list)
    budget_envelope: Money
    starts_on: date
    ends_on: date
    lead_organisation: str


@published(SOURCE, "NeedContributionPledged", stream_field="need_id")
class NeedContributionPledged(_Data):
    """A partner organisation pooled budget into the commission (collaborative commissioning)."""

    need_id: UUID
    contribution_id: str
    partner: str
    amount: Money
    note: str | None = None


@published(SOURCE, "OptionsAppraised", stream_field="need_id")
class OptionsAppraised(_Data):
    """Sourcing options were appraised and one recommended."""

    need_id: UUID
    options: list[Option]
    recommended: SourcingOption
    rationale: str


@published(SOURCE, "MarketEngaged", stream_field="need_id")
class MarketEngaged(_Data):
    """The council engaged the market about the need."""

    need_id: UUID
    summary: str
    engaged_on: date
    provider_ids: list[UUID] = Field(default_factory=list)


@published(SOURCE, "CommissioningDecided", stream_field="need_id")
class CommissioningDecided(_Data):
    """The council decided whom to commission, with budget allocated per award."""

    need_id: UUID
    decision_id: str
    awards: list[Award]
    rationale: str
    decision_maker: str
    decided_on: date | None = Field(
        default=None, description="the business date of the decision (absent before 2026-12)")


@published(SOURCE, "BudgetEnvelopeRaised", stream_field="need_id")
class BudgetEnvelopeRaised(_Data):
    """The council raised a need's envelope (its own budget for it) by a recorded decision."""

    need_id: UUID
    raise_id: str
    amount: Money = Field(gt=0)
    new_envelope: Money = Field(description="the council's envelope after the raise")
    reason: str
    decided_by: str = Field(description="who decided, as role:label")


@published(SOURCE, "CommitmentVaried", stream_field="need_id")
class CommitmentVaried(_Data):
    """An agreement's budget changed (a variation or an approved business case), and with it
    what the need has committed against its pooled envelope."""

    need_id: UUID
    agreement_id: UUID
    variation_id: str
    budget_change: Money = Field(description="negative when the budget fell")
    committed: Money = Field(description="the need's committed total after the change")
    business_case_id: str | None = None


@published(SOURCE, "NeedStageReached", stream_field="need_id")
class NeedStageReached(_Data):
    """The commissioning moved on to a later strategic-sourcing step (mobilisation onwards)."""

    need_id: UUID
    stage: SourcingStage
    notes: str


@published(SOURCE, "NeedClosed", stream_field="need_id")
class NeedClosed(_Data):
    """The need was closed: met, withdrawn or superseded."""

    need_id: UUID
    reason: str


# ---------------------------------------------------------------------- agreements


@published(SOURCE, "AgreementDrafted", stream_field="agreement_id")
class AgreementDrafted(_Data):
    """An agreement with one or more providers was drafted from a commissioning decision."""

    agreement_id: UUID
    need_id: UUID
    decision_id: str | None = None
    award_id: str | None = None
    title: str
    arrangement_type: ArrangementType
    parties: list[Party] = Field(min_length=1)
    starts_on: date
    ends_on: date
    budget: Money
    outcomes: list[AgreementOutcome] = Field(default_factory=list)
    reward_terms: RewardTerms | None = None
    risk_share: RiskShare | None = None
    break_clauses: list[str] = Field(default_factory=list)
    exit_plan: str


@published(SOURCE, "AgreementSigned", stream_field="agreement_id")
class AgreementSigned(_Data):
    """The agreement was signed by the parties (before it can come into force)."""

    agreement_id: UUID
    signed_on: date
    signatories: list[str] = Field(min_length=1,
                                   description="who signed, for whom (one per signature)")


@published(SOURCE, "AgreementActivated", stream_field="agreement_id")
class AgreementActivated(_Data):
    """The agreement came into force."""

    agreement_id: UUID
    activated_on: date


@published(SOURCE, "AgreementVaried", stream_field="agreement_id")
class AgreementVaried(_Data):
    """The agreement was varied: growth, scope or budget change, or an approved business case."""

    agreement_id: UUID
    variation_id: str
    kind: VariationKind
    budget_change: Money
    new_budget: Money
    scope: str | None = None
    reason: str
    business_case_id: str | None = None


@published(SOURCE, "AgreementExtended", stream_field="agreement_id")
class AgreementExtended(_Data):
    """The agreement's term was extended, justified by performance."""

    agreement_id: UUID
    extension_id: str
    previous_end: date
    new_end: date
    justification: str
    performance_evidence: str
    performance_data: str | None = Field(
        default=None, description="the performance data the integrator held for the agreement "
        "when it was extended (a RAG assessment or a measurement)")
    override_reason: str | None = Field(
        default=None, description="why it was extended with no performance data yet")
    override_approved_by: str | None = Field(
        default=None, description="who approved that override under the scheme of delegation")


@published(SOURCE, "AgreementEnded", stream_field="agreement_id")
class AgreementEnded(_Data):
    """The agreement ended: completed, terminated, or exited with its exit plan executed."""

    agreement_id: UUID
    how: EndingKind
    ended_on: date
    reason: str
    exit_plan_executed: bool
    exit_notes: str | None = None


@published(SOURCE, "BusinessCaseProposed", stream_field="agreement_id")
class BusinessCaseProposed(_Data):
    """Additional delivery was proposed under the agreement, with need, outcomes and cost."""

    agreement_id: UUID
    business_case_id: str
    need: str
    expected_outcomes: str
    cost: Money
    proposed_by: str | None = Field(default=None, description="role:label (absent on old logs)")


@published(SOURCE, "BusinessCaseApproved", stream_field="agreement_id")
class BusinessCaseApproved(_Data):
    """A business case was approved (its cost varies the agreement's budget)."""

    agreement_id: UUID
    business_case_id: str
    reason: str
    approved_by: str | None = Field(default=None, description="role:label (absent on old logs)")


@published(SOURCE, "BusinessCaseRejected", stream_field="agreement_id")
class BusinessCaseRejected(_Data):
    """A business case was rejected."""

    agreement_id: UUID
    business_case_id: str
    reason: str


@published(SOURCE, "SpendRecorded", stream_field="agreement_id")
class SpendRecorded(_Data):
    """Money was paid to a provider under the agreement (negative: recovered from it, a
    results payment's credit)."""

    agreement_id: UUID
    spend_id: str
    provider_id: UUID
    amount: Money = Field(description="pounds paid to the provider; negative only for a "
                          "results payment's credit recovered")
    period: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
                        description="YYYY-MM, the month the payment is for")
    reference: str | None = None
    due_id: str | None = Field(
        default=None, description="the results payment due (ResultsPaymentDue) this pays the "
        "provider's share of; absent for payments recorded by hand")


class DueShare(_Data):
    provider_id: UUID
    amount: Money = Field(description="pounds: the party's share (negative: to recover)")


class CalculationLine(_Data):
    """One line of the outcomes service's calculation (as PaymentCalculated gives it)."""

    description: str
    basis: str = Field(description="how the line was worked out, in words and figures")
    amount: Money


@published(SOURCE, "ResultsPaymentDue", stream_field="agreement_id")
class ResultsPaymentDue(_Data):
    """A results payment the outcomes service calculated became due under the agreement, split
    between its parties by their allocations (negative: a credit to recover)."""

    agreement_id: UUID
    due_id: str = Field(description="the due item: the calculation's id")
    calculation_id: str = Field(description="of the PaymentCalculated or PaymentRecalculated")
    terms_id: UUID = Field(description="the outcomes service's terms stream it was read from")
    period: Period
    amount: Money = Field(description="pounds due: the calculated total, or a recalculation's "
                          "difference (negative: a credit to recover)")
    shares: list[DueShare] = Field(min_length=1, description="each party's share of the "
                                   "amount, by allocation, to the penny")
    calculated_on: date = Field(description="the business date of the calculation")
    calculated_total: Money = Field(description="the period's total by this calculation")
    previous_total: Money | None = Field(
        default=None, description="the period's total before a recalculation")
    reason: str = Field(description="why it is due: a calculation, or what changed it")
    over_budget_by: Money = Field(
        default=Decimal(0), ge=0, description="pounds by which paying everything due would "
        "take spend past the budget when it became due: more than nothing, it needs a "
        "variation before it can be paid")
    lines: list[CalculationLine] = Field(
        default_factory=list, description="the calculation of the period's total, line by "
        "line, as the outcomes service worked it out")


# ---------------------------------------------------------------------- schemes of delegation


@published(SOURCE, "SchemeOfDelegationAdopted", stream_field="scheme_id")
class SchemeOfDelegationAdopted(_Data):
    """A council adopted a scheme of delegation (its limits follow, DelegationLimitsSet)."""

    scheme_id: UUID
    council: str


@published(SOURCE, "DelegationLimitsSet", stream_field="scheme_id")
class DelegationLimitsSet(_Data):
    """An integrator admin set who may take which financial decision up to what amount, for
    the needs a council leads. Each set replaces the limits before it."""

    scheme_id: UUID
    limits: list[DelegatedLimit] = Field(min_length=1)
    set_on: date
    reason: str


# ---------------------------------------------------------------------- lessons


@published(SOURCE, "LessonRecorded", stream_field="lesson_id")
class LessonRecorded(_Data):
    """What went well or badly in an arrangement, and why, so others can learn from it."""

    lesson_id: UUID
    need_id: UUID | None = None
    agreement_id: UUID | None = None
    stage: SourcingStage
    went: str = Field(pattern=r"^(well|badly)$")
    what: str
    why: str
    tags: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------- audit reads


class AuditEndpoint(StrEnum):
    """What was read: the trail of events, the network state, the log of audit reads, or a
    web page (a regulator's view of any page, anyone's view of the audit timeline)."""

    EVENTS = "events"
    STATE = "state"
    READS = "reads"
    PAGE = "page"


@published(SOURCE, "AuditReadStarted", stream_field="read_id")
class AuditReadStarted(_Data):
    """Someone began reading the audit trail: who (token, role, label), what (the query as
    narrowed to the token's scope) and within which scope; recorded before anything is served."""

    read_id: UUID
    token_id: str
    role: str
    label: str
    endpoint: AuditEndpoint
    query: dict[str, str] = Field(
        default_factory=dict,
        description="the filters applied, by query parameter name; several values of one "
                    "parameter are joined by commas")
    scope: dict[str, str] = Field(default_factory=dict,
                                  description="the token's scope, by key; empty if unscoped")


@published(SOURCE, "AuditReadFinished", stream_field="read_id")
class AuditReadFinished(_Data):
    """An audit read ended: how many items it returned (events streamed, providers in the
    state, reads listed) and whether the reader received all of them."""

    read_id: UUID
    returned: int = Field(ge=0)
    completed: bool


# ---------------------------------------------------------------------- sign-ins


class SignInRefusal(StrEnum):
    """Why a sign-in to the web pages failed."""

    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a reason, not a password
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_DISABLED = "account_disabled"


class ThrottledBy(StrEnum):
    """What a throttle counts failures of: one account, or one client address."""

    ACCOUNT = "account"
    ADDRESS = "address"


@published(SOURCE, "SignInFailed", stream_field="attempt_id")
class SignInFailed(_Data):
    """A sign-in to the council's web pages failed. Never holds what was typed: `account` is
    the username only when it names an account (a password typed into the username box is
    not written down), and no password, right or wrong, is ever recorded."""

    attempt_id: UUID
    account: str | None = Field(default=None, description="the account's username, if the "
                                "name given is one; none for an unknown name")
    address: str = Field(description="the client's network address")
    reason: SignInRefusal
    account_failures: int = Field(ge=0, description="failed sign-ins to this name within the "
                                  "throttle's window, this one included")
    address_failures: int = Field(ge=0, description="failed sign-ins from this address within "
                                  "the throttle's window, this one included")


@published(SOURCE, "SignInThrottled", stream_field="attempt_id")
class SignInThrottled(_Data):
    """A failed sign-in brought an account's (or an address's) failures to the throttle's
    limit: every sign-in to it (from it), even with the right password, is refused until
    `until`. Recorded once, as the throttle begins, on the stream of the failure that began
    it."""

    attempt_id: UUID
    account: str | None = None
    address: str
    by: ThrottledBy
    failures: int = Field(ge=1)
    window_seconds: int = Field(ge=1)
    until: datetime
