"""HTTP entry points for commissioning: needs through the strategic-sourcing steps, decisions,
agreements (variations, extensions, business cases, spend, endings) and lessons. Routes only
translate into Integrator commands; reads of lists come from the projections (api/market.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel

from council.kernel.text import PathId
from council.platform.identity import (
    COUNCIL_READERS,
    COUNCIL_WRITERS,
    Principal,
    acting_as,
    require,
)
from council.platform.runtime import Runtime
from council.services.integrator.application import Integrator
from council.services.integrator.domain.agreements import Agreement
from council.services.integrator.domain.commands import (
    Activation,
    Closure,
    DuePayment,
    Ending,
    EnvelopeRaise,
    MarketEngagement,
    NewAgreement,
    NewBusinessCase,
    NewContribution,
    NewDecision,
    NewExtension,
    NewLesson,
    NewNeed,
    NewSpend,
    NewVariation,
    OptionsAppraisal,
    Signature,
    StageStep,
)
from council.services.integrator.domain.needs import Need

router = APIRouter(tags=["commissioning"])

Writer = Annotated[Principal, Depends(require(*COUNCIL_WRITERS))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]

# The refusals a command may answer with, for the OpenAPI document.
NOT_AUTHORISED: dict[int | str, dict[str, Any]] = {403: {
    "description": "Not authorised: the role is not a council writer, or the decision is over "
    "the person's limit under the council's scheme of delegation (the limit is named), or "
    "they proposed what they would approve."}}
REFUSED: dict[int | str, dict[str, Any]] = {409: {
    "description": "Refused by a commissioning rule (named, with the figures): for money, "
    "committing more than the need's pooled envelope, or spending over the budget; or a step "
    "out of order."}}
DATED: dict[int | str, dict[str, Any]] = {422: {
    "description": "Input that breaks a rule about one field (named), such as a date that "
    "cannot be true: in the future, before the decision or signature, past the need's end."}}


class NeedView(BaseModel):
    need_id: UUID
    title: str
    service_area: str
    stage: str
    is_open: bool
    closed_reason: str | None
    population: dict[str, Any]
    outcomes: list[dict[str, Any]]
    outputs: list[str]
    budget_envelope: Decimal
    pooled_budget: Decimal
    committed: Decimal
    contributions: list[dict[str, Any]]
    contributions_by_partner: dict[str, Decimal]
    options: list[dict[str, Any]]
    recommended: str | None
    engagements: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    envelope_raises: list[dict[str, Any]]
    starts_on: str
    ends_on: str
    lead_organisation: str
    version: int
    updated_at: datetime


class AgreementView(BaseModel):
    agreement_id: UUID
    need_id: UUID
    decision_id: str | None
    award_id: str | None
    title: str
    arrangement_type: str
    status: str
    parties: list[dict[str, Any]]
    starts_on: str
    ends_on: str
    signed_on: str | None
    signatories: list[str]
    activated_on: str | None
    budget: Decimal
    spent: Decimal
    due: Decimal
    outcomes: list[dict[str, Any]]
    reward_terms: dict[str, Any] | None
    risk_share: dict[str, Any] | None
    break_clauses: list[str]
    exit_plan: str
    variations: list[dict[str, Any]]
    extensions: list[dict[str, Any]]
    business_cases: list[dict[str, Any]]
    spend: list[dict[str, Any]]
    results_due: list[dict[str, Any]]
    ending: dict[str, Any] | None
    version: int
    updated_at: datetime


class Done(BaseModel):
    """What a command created, and the record as it now stands."""

    id: str
    need: NeedView | None = None
    agreement: AgreementView | None = None


class Decided(BaseModel):
    decision_id: str
    award_ids: list[str]
    need: NeedView


def integrator_of(request: Request) -> Integrator:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, Integrator)
    return runtime.app


def need_view(need: Need) -> NeedView:
    return NeedView(
        need_id=need.id, title=need.title, service_area=need.service_area,
        stage=need.stage.value, is_open=need.is_open, closed_reason=need.closed_reason,
        population=need.population, outcomes=need.outcomes, outputs=need.outputs,
        budget_envelope=need.budget_envelope, pooled_budget=need.pooled_budget,
        committed=need.committed, contributions=list(need.contributions.values()),
        contributions_by_partner=need.contributions_by_partner(), options=need.options,
        recommended=need.recommended, engagements=need.engagements,
        decisions=list(need.decisions.values()), envelope_raises=need.envelope_raises,
        starts_on=need.starts_on,
        ends_on=need.ends_on, lead_organisation=need.lead_organisation,
        version=need.version, updated_at=need.modified_on,
    )


def agreement_view(agreement: Agreement) -> AgreementView:
    return AgreementView(
        agreement_id=agreement.id, need_id=agreement.need_id,
        decision_id=agreement.decision_id, award_id=agreement.award_id, title=agreement.title,
        arrangement_type=agreement.arrangement_type, status=agreement.status.value,
        parties=agreement.parties, starts_on=agreement.starts_on, ends_on=agreement.ends_on,
        signed_on=agreement.signed_on, signatories=agreement.signatories,
        activated_on=agreement.activated_on, budget=agreement.budget, spent=agreement.spent,
        due=agreement.due, outcomes=agreement.outcomes, reward_terms=agreement.reward_terms,
        risk_share=agreement.risk_share, break_clauses=agreement.break_clauses,
        exit_plan=agreement.exit_plan, variations=agreement.variations,
        extensions=agreement.extensions,
        business_cases=list(agreement.business_cases.values()),
        spend=list(agreement.spend.values()),
        results_due=list(agreement.results_due.values()), ending=agreement.ending,
        version=agreement.version, updated_at=agreement.modified_on,
    )


# ---------------------------------------------------------------------- needs


@router.post("/needs", status_code=status.HTTP_201_CREATED, response_model=NeedView)
def define_need(body: NewNeed, request: Request, principal: Writer) -> NeedView:
    """Define a commissioning need: the outcomes sought for a population, within a budget."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        need_id = integrator.define_need(body)
    return need_view(integrator.need(need_id))


@router.get("/needs/{need_id}/record", response_model=NeedView)
def need_record(need_id: UUID, request: Request, _: Reader) -> NeedView:
    """The need as its own event stream has it now (the owner's view, not a projection)."""
    return need_view(integrator_of(request).need(need_id))


@router.post("/needs/{need_id}/contributions", status_code=status.HTTP_201_CREATED,
             response_model=Done)
def pledge_contribution(need_id: UUID, body: NewContribution, request: Request,
                        principal: Writer) -> Done:
    """Rule: a partner's contribution adds to the pooled envelope that awards are committed against.

    Record a partner organisation's pooled contribution (collaborative commissioning)."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        contribution_id = integrator.pledge_contribution(need_id, body)
    return Done(id=contribution_id, need=need_view(integrator.need(need_id)))


@router.post("/needs/{need_id}/envelope-raises", status_code=status.HTTP_201_CREATED,
             response_model=Done, responses={**NOT_AUTHORISED, **REFUSED})
def raise_envelope(need_id: UUID, body: EnvelopeRaise, request: Request,
                   principal: Writer) -> Done:
    """Rule: committed never exceeds the pooled envelope; the council raises it only with a reason.

    Raise the council's envelope for the need by a recorded decision (a top-up, with its
    reason), within the person's authority under the scheme of delegation."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        raise_id = integrator.raise_envelope(need_id, body, principal)
    return Done(id=raise_id, need=need_view(integrator.need(need_id)))


@router.post("/needs/{need_id}/options", response_model=NeedView)
def appraise_options(need_id: UUID, body: OptionsAppraisal, request: Request,
                     principal: Writer) -> NeedView:
    """Record the sourcing options appraisal and the recommended option."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.appraise_options(need_id, body)
    return need_view(integrator.need(need_id))


@router.post("/needs/{need_id}/market-engagement", response_model=NeedView)
def engage_market(need_id: UUID, body: MarketEngagement, request: Request,
                  principal: Writer) -> NeedView:
    """Record market engagement with providers about the need."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.engage_market(need_id, body)
    return need_view(integrator.need(need_id))


@router.post("/needs/{need_id}/decisions", status_code=status.HTTP_201_CREATED,
             response_model=Decided, responses={**NOT_AUTHORISED, **REFUSED})
def decide(need_id: UUID, body: NewDecision, request: Request, principal: Writer) -> Decided:
    """Rule: awards go to approved providers, within the pooled envelope and the taker's limit.

    Award to one or more approved providers, allocating budget to each award, within the
    pooled budget and the person's authority (for the total awarded)."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        decision_id, award_ids = integrator.decide(need_id, body, principal)
    return Decided(decision_id=decision_id, award_ids=award_ids,
                   need=need_view(integrator.need(need_id)))


@router.post("/needs/{need_id}/stage", response_model=NeedView)
def reach_stage(need_id: UUID, body: StageStep, request: Request, principal: Writer) -> NeedView:
    """Move the need on to mobilisation, management, review or exit."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.reach_stage(need_id, body)
    return need_view(integrator.need(need_id))


@router.post("/needs/{need_id}/close", response_model=NeedView)
def close_need(need_id: UUID, body: Closure, request: Request, principal: Writer) -> NeedView:
    """Close the need (met, withdrawn or superseded)."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.close_need(need_id, body)
    return need_view(integrator.need(need_id))


# ---------------------------------------------------------------------- agreements


@router.post("/agreements", status_code=status.HTTP_201_CREATED, response_model=AgreementView)
def draft_agreement(body: NewAgreement, request: Request, principal: Writer) -> AgreementView:
    """Rule: results are paid in one frequency: the reward terms' payment_frequency.

    Draft the agreement for one award of a commissioning decision."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        agreement_id = integrator.draft_agreement(body)
    return agreement_view(integrator.agreement(agreement_id))


@router.get("/agreements/{agreement_id}/record", response_model=AgreementView)
def agreement_record(agreement_id: UUID, request: Request, _: Reader) -> AgreementView:
    """The agreement as its own event stream has it now."""
    return agreement_view(integrator_of(request).agreement(agreement_id))


def _agreement_done(integrator: Integrator, agreement_id: UUID, made: str) -> Done:
    return Done(id=made, agreement=agreement_view(integrator.agreement(agreement_id)))


@router.post("/agreements/{agreement_id}/sign", response_model=AgreementView,
             responses={**REFUSED, **DATED})
def sign(agreement_id: UUID, body: Signature, request: Request,
         principal: Writer) -> AgreementView:
    """Rule: signed neither in the future nor before the decision that awarded it.

    Record that the parties signed the drafted agreement: not in the future, not before the
    commissioning decision that awarded it."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.sign_agreement(agreement_id, body)
    return agreement_view(integrator.agreement(agreement_id))


@router.post("/agreements/{agreement_id}/activate", response_model=AgreementView,
             responses={**REFUSED, **DATED})
def activate(agreement_id: UUID, body: Activation, request: Request,
             principal: Writer) -> AgreementView:
    """Rule: an agreement comes into force only once signed, on or after the day it was signed.

    Bring a signed agreement into force, on or after the day it was signed."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.activate(agreement_id, body)
    return agreement_view(integrator.agreement(agreement_id))


@router.post("/agreements/{agreement_id}/variations", status_code=status.HTTP_201_CREATED,
             response_model=Done, responses={**NOT_AUTHORISED, **REFUSED})
def vary(agreement_id: UUID, body: NewVariation, request: Request, principal: Writer) -> Done:
    """Rule: within the taker's limit; an increase within the need's pooled envelope.

    Vary an active agreement (growth, scope or budget change), with the reason: within the
    person's authority and, for an increase, the need's pooled envelope."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        variation_id = integrator.vary(agreement_id, body, principal)
    return _agreement_done(integrator, agreement_id, variation_id)


@router.post("/agreements/{agreement_id}/extensions", status_code=status.HTTP_201_CREATED,
             response_model=Done, responses={**NOT_AUTHORISED, **REFUSED, **DATED})
def extend(agreement_id: UUID, body: NewExtension, request: Request, principal: Writer) -> Done:
    """Rule: justified by performance data held (or an approved override), within the need.

    Extend an active agreement's term within the need's, justified by the performance data
    the integrator holds for it (or, with none yet, an override the person has the authority
    to approve)."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        extension_id = integrator.extend(agreement_id, body, principal)
    return _agreement_done(integrator, agreement_id, extension_id)


@router.post("/agreements/{agreement_id}/business-cases", status_code=status.HTTP_201_CREATED,
             response_model=Done)
def propose_business_case(agreement_id: UUID, body: NewBusinessCase, request: Request,
                          principal: Writer) -> Done:
    """Rule: whoever proposes a business case may not approve it.

    Propose additional delivery under the agreement: need, expected outcomes, cost."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        case_id = integrator.propose_business_case(agreement_id, body, principal)
    return _agreement_done(integrator, agreement_id, case_id)


@router.post("/agreements/{agreement_id}/business-cases/{case_id}/approve", response_model=Done,
             responses={**NOT_AUTHORISED, **REFUSED})
def approve_business_case(agreement_id: UUID, case_id: PathId, body: Closure, request: Request,
                          principal: Writer) -> Done:
    """Rule: never by its proposer; within the approver's limit and the need's pooled envelope.

    Approve a business case (not its proposer; within the person's authority for its cost
    and the need's pooled envelope); its cost varies the agreement's budget."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        variation_id = integrator.approve_business_case(agreement_id, case_id, body.reason,
                                                        principal)
    return _agreement_done(integrator, agreement_id, variation_id)


@router.post("/agreements/{agreement_id}/business-cases/{case_id}/reject",
             response_model=AgreementView)
def reject_business_case(agreement_id: UUID, case_id: PathId, body: Closure, request: Request,
                         principal: Writer) -> AgreementView:
    """Reject a business case, with the reason."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.reject_business_case(agreement_id, case_id, body.reason)
    return agreement_view(integrator.agreement(agreement_id))


@router.post("/agreements/{agreement_id}/spend", status_code=status.HTTP_201_CREATED,
             response_model=Done, responses={**NOT_AUTHORISED, **REFUSED, **DATED})
def record_spend(agreement_id: UUID, body: NewSpend, request: Request, principal: Writer) -> Done:
    """Rule: spend is for a month begun, within the payer's limit, never over the budget.

    Record a payment to a party for a month already begun, within the person's authority;
    spend never exceeds the budget."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        spend_id = integrator.record_spend(agreement_id, body, principal)
    return _agreement_done(integrator, agreement_id, spend_id)


@router.post("/agreements/{agreement_id}/results-due/{due_id}/pay", response_model=Done,
             responses={**NOT_AUTHORISED, **REFUSED})
def pay_results_due(agreement_id: UUID, due_id: PathId, body: DuePayment, request: Request,
                    principal: Writer) -> Done:
    """Rule: results payments are spend: within the payer's limit and never over the budget.

    Pay a results payment due (or recover a credit), each party its share, as spend: within
    the person's authority, never over the budget (a due item flagged as needing a variation
    waits for one).

    The due items are the outcomes service's calculations (PaymentCalculated, and each
    PaymentRecalculated's difference), recorded on the agreement by the integrator's results
    payments process; `GET /agreements/{agreement_id}` lists them (`results_due`) with how
    each was worked out."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.pay_results_due(agreement_id, due_id, body, principal)
    return _agreement_done(integrator, agreement_id, due_id)


@router.post("/agreements/{agreement_id}/end", response_model=AgreementView)
def end_agreement(agreement_id: UUID, body: Ending, request: Request,
                  principal: Writer) -> AgreementView:
    """End an agreement: completed, terminated, or exited with its exit plan executed."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        integrator.end_agreement(agreement_id, body)
    return agreement_view(integrator.agreement(agreement_id))


# ---------------------------------------------------------------------- lessons


@router.post("/lessons", status_code=status.HTTP_201_CREATED, response_model=Done)
def record_lesson(body: NewLesson, request: Request, principal: Writer) -> Done:
    """Record what went well or badly, and why, so other commissioners can learn from it."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        lesson_id = integrator.record_lesson(body)
    return Done(id=str(lesson_id))
