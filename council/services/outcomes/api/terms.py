"""HTTP entry point for an agreement's payment-by-results terms and its payment schedule: which
outcomes the agreement is attributed (with weights), its rate card, and the payment worked out
for each period, line by line, with every recalculation and its difference.

Council writers set the terms; council readers, and each provider for its own agreements, read
them. To a provider, an agreement it is not party to does not exist."""

from __future__ import annotations

from contextlib import suppress
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field

from council.kernel.contracts.outcomes import (
    BandTerm,
    DeliveryRateTerm,
    OutcomeRateTerm,
    PaymentLine,
    Periodicity,
)
from council.kernel.envelope import EventEnvelope
from council.kernel.errors import NotFound
from council.kernel.periods import period_bounds
from council.platform.identity import (
    COUNCIL_READERS,
    COUNCIL_WRITERS,
    Principal,
    Role,
    acting_as,
    require,
)
from council.services.outcomes.api.measures import outcomes_of
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import AgreementInfo
from council.services.outcomes.domain.aggregates import AgreementTerms, terms_id_for
from council.services.outcomes.domain.commands import Attribution, RateCardIn

router = APIRouter(tags=["payment by results"])

Writer = Annotated[Principal, Depends(require(*COUNCIL_WRITERS))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS, Role.PROVIDER))]


class AttributionView(BaseModel):
    measure_id: UUID
    measure_name: str | None
    weight: Decimal


class RateCardView(BaseModel):
    periodicity: Periodicity
    delivery_rates: list[DeliveryRateTerm]
    outcome_rates: list[OutcomeRateTerm]
    bands: list[BandTerm]
    provider_risk_pct: Decimal
    period_cap: Decimal | None


class TermsChange(BaseModel):
    """One change to the terms: what, who and when."""

    type: str
    recorded_by: str | None
    recorded_at: datetime
    data: dict[str, object]


class TermsView(BaseModel):
    agreement_id: UUID
    terms_id: UUID
    payment_frequency: Periodicity | None = Field(
        description="how often the agreement's reward terms say results are paid (the rate "
        "card settles in these periods); none when they do not say")
    attributions: list[AttributionView]
    rate_card: RateCardView | None
    changes: list[TermsChange]


class PaymentChange(BaseModel):
    """One calculation of a period's payment: the first (`calculated`), or a later one that
    changed it (`recalculated`) with the difference due (negative: owed back) and why."""

    kind: Literal["calculated", "recalculated"]
    calculation_id: str
    total: Decimal
    previous_total: Decimal | None
    difference: Decimal
    reason: str | None
    recorded_by: str | None
    recorded_at: datetime


class PeriodPayment(BaseModel):
    period: str
    period_start: date
    period_end: date
    calculation_id: str
    lines: list[PaymentLine]
    total: Decimal
    achievement_pct: Decimal | None
    history: list[PaymentChange]


class PaymentSchedule(BaseModel):
    agreement_id: UUID
    periodicity: Periodicity | None
    term_starts_on: date | None = Field(
        description="the agreement's term as this service knows it: a period outside it earns "
        "nothing, one it covers in part is pro-rated by days (its lines say so)")
    term_ends_on: date | None = Field(description="as extended, or the day it ended early")
    periods: list[PeriodPayment]
    total: Decimal  # the sum of every period's current total


def _readable(outcomes: Outcomes, principal: Principal, agreement_id: UUID) -> None:
    """A provider reads only agreements it is party to; to it, others do not exist."""
    if principal.role is not Role.PROVIDER:
        return
    lookup = outcomes.agreements
    found = lookup([agreement_id]).get(agreement_id) if lookup is not None else None
    if found is None or principal.provider_id not in found.provider_ids:
        raise NotFound(f"no terms for agreement {agreement_id}")


def _history(outcomes: Outcomes, agreement_id: UUID) -> tuple[AgreementTerms, list[EventEnvelope]]:
    terms = outcomes.terms(agreement_id)
    stored = outcomes.recorder.select_events(terms_id_for(agreement_id))
    published = [s for s in stored if outcomes.is_published(s)]
    return terms, [outcomes.to_envelope(s) for s in published]


def _agreement(outcomes: Outcomes, agreement_id: UUID) -> AgreementInfo | None:
    lookup = outcomes.agreements
    return lookup([agreement_id]).get(agreement_id) if lookup is not None else None


def terms_view(outcomes: Outcomes, agreement_id: UUID) -> TermsView:
    terms, history = _history(outcomes, agreement_id)
    agreement = _agreement(outcomes, agreement_id)
    frequency = agreement.payment_frequency if agreement is not None else None
    names: dict[str, str] = {}
    for measure_id in terms.attributions:
        with suppress(NotFound):
            names[measure_id] = outcomes.measure(UUID(measure_id)).name
    card = terms.rate_card
    return TermsView(
        agreement_id=agreement_id, terms_id=terms.id,
        payment_frequency=Periodicity(frequency) if frequency else None,
        attributions=[
            AttributionView(measure_id=UUID(m), measure_name=names.get(m), weight=w)
            for m, w in sorted(terms.attributions.items())
        ],
        rate_card=RateCardView.model_validate(card) if card is not None else None,
        changes=[
            TermsChange(type=e.type, recorded_by=e.actor, recorded_at=e.recorded_at,
                        data={k: v for k, v in e.data.items()
                              if k not in ("terms_id", "agreement_id")})
            for e in history if e.type in ("OutcomeAttributed", "RateCardAgreed")
        ],
    )


def schedule_of(outcomes: Outcomes, agreement_id: UUID) -> PaymentSchedule:
    terms, history = _history(outcomes, agreement_id)
    changes: dict[str, list[PaymentChange]] = {}
    for e in history:
        if e.type == "PaymentCalculated":
            changes.setdefault(e.data["period"], []).append(PaymentChange(
                kind="calculated", calculation_id=e.data["calculation_id"],
                total=e.data["total"], previous_total=None, difference=e.data["total"],
                reason=None, recorded_by=e.actor, recorded_at=e.recorded_at,
            ))
        elif e.type == "PaymentRecalculated":
            changes.setdefault(e.data["period"], []).append(PaymentChange(
                kind="recalculated", calculation_id=e.data["calculation_id"],
                total=e.data["total"], previous_total=e.data["previous_total"],
                difference=e.data["difference"], reason=e.data["reason"],
                recorded_by=e.actor, recorded_at=e.recorded_at,
            ))
    periods = []
    for period in sorted(terms.payments):
        payment = terms.payments[period]
        start, end = period_bounds(period)
        periods.append(PeriodPayment(
            period=period, period_start=start, period_end=end,
            calculation_id=payment["calculation_id"],
            lines=[PaymentLine.model_validate(line) for line in payment["lines"]],
            total=payment["total"], achievement_pct=payment["achievement_pct"],
            history=changes.get(period, []),
        ))
    card = terms.rate_card
    agreement = _agreement(outcomes, agreement_id)
    term = agreement.term if agreement is not None else None
    return PaymentSchedule(
        agreement_id=agreement_id,
        periodicity=Periodicity(card["periodicity"]) if card is not None else None,
        term_starts_on=term[0] if term else None, term_ends_on=term[1] if term else None,
        periods=periods, total=sum((p.total for p in periods), Decimal("0.00")),
    )


@router.post("/agreements/{agreement_id}/attributions", status_code=status.HTTP_201_CREATED,
             response_model=TermsView)
def attribute(
    agreement_id: UUID, body: Attribution, request: Request, principal: Writer
) -> TermsView:
    """Attribute a weighted share (0 to 1) of an outcome measure to the agreement (records
    OutcomeAttributed); attributing the same measure again changes its weight."""
    outcomes = outcomes_of(request)
    with acting_as(request, principal):
        outcomes.attribute(agreement_id, body)
    return terms_view(outcomes, agreement_id)


@router.put("/agreements/{agreement_id}/rate-card", response_model=TermsView)
def agree_rate_card(
    agreement_id: UUID, body: RateCardIn, request: Request, principal: Writer
) -> TermsView:
    """Rule: the card settles in the agreement's one payment frequency, or is refused.

    Agree (or replace) the agreement's rate card: payment per unit delivered and per unit of
    outcome improvement, thresholds, caps, performance bands, the provider's share of penalties
    and a cap per period (records RateCardAgreed). Outcome rates need the measure attributed
    first. Every period is then recalculated under the new card."""
    outcomes = outcomes_of(request)
    with acting_as(request, principal):
        outcomes.agree_rate_card(agreement_id, body)
    return terms_view(outcomes, agreement_id)


@router.get("/agreements/{agreement_id}/terms", response_model=TermsView)
def get_terms(agreement_id: UUID, request: Request, principal: Reader) -> TermsView:
    """The agreement's attributions and rate card, with who changed them and when."""
    outcomes = outcomes_of(request)
    _readable(outcomes, principal, agreement_id)
    return terms_view(outcomes, agreement_id)


@router.get("/agreements/{agreement_id}/payments", response_model=PaymentSchedule)
def get_payments(agreement_id: UUID, request: Request, principal: Reader) -> PaymentSchedule:
    """Rule: only the agreement's term is paid for; a period it covers in part is pro-rated by days.

    The agreement's payment schedule: each period's payment with its calculation line by
    line, and its history (the first calculation, then each recalculation with its difference
    and reason)."""
    outcomes = outcomes_of(request)
    _readable(outcomes, principal, agreement_id)
    return schedule_of(outcomes, agreement_id)
