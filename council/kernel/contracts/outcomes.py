"""Events published by the outcomes service: the outcome framework (measures, measurements,
attribution), delivery reported by providers, and payment by results."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from council.kernel.contracts.catalogue import published

SOURCE = "outcomes"

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
Period = Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$",
                              description="a month (2026-04) or a quarter (2026-Q2)")]


class Direction(StrEnum):
    """Which way a measure should move for the outcome to be improving."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Periodicity(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class Channel(StrEnum):
    HTTP = "http"
    KAFKA = "kafka"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrajectoryPoint(_Data):
    period: Period
    target: Decimal


@published(SOURCE, "OutcomeMeasureDefined", stream_field="measure_id")
class OutcomeMeasureDefined(_Data):
    """The council defined an outcome measure it will commission against."""

    measure_id: UUID
    name: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=50)
    direction: Direction
    description: str | None = None
    baseline: Decimal | None = None
    baseline_period: Period | None = None
    trajectory: list[TrajectoryPoint] = Field(default_factory=list)
    data_source: str | None = None
    geography: str | None = None


@published(SOURCE, "MeasurementRecorded", stream_field="measure_id")
class MeasurementRecorded(_Data):
    """A value of the measure for a period, with where it came from; a revision names the
    measurement it replaces (both are kept)."""

    measure_id: UUID
    measurement_id: str
    period: Period
    value: Decimal
    source: str
    revises: str | None = None
    note: str | None = None


Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=16384)]


class SealedServiceUser(_Data):
    """One service user's personal data, encrypted with that data subject's own key
    (AES-256-GCM, the key kept in the outcomes service's subject key vault). Erasing the key
    makes the ciphertext unreadable for good without changing a byte of the event (so the
    audit chain still verifies). The plaintext is canonical JSON of reference_type, reference,
    name, date_of_birth, postcode and notes; the additional authenticated data is
    `council:service-user:<delivery_id>:<subject_id>`, so a ciphertext moved to another report
    or subject does not decrypt."""

    subject_id: UUID = Field(description="a random pseudonym of the data subject (the same "
                             "person reported again maps to the same id while not erased)")
    key_id: UUID = Field(description="the subject's key in the vault")
    alg: Literal["A256GCM"] = "A256GCM"
    nonce: Base64 = Field(description="96-bit nonce, base64")
    ciphertext: Base64 = Field(description="ciphertext with its 128-bit tag, base64")


@published(SOURCE, "DeliveryReported", stream_field="delivery_id", version=2)
class DeliveryReported(_Data):
    """A provider reported what it delivered under one of its agreements; a correction names
    the report it corrects (nothing is edited in place). v2 may carry the service users the
    delivery was for, only ever encrypted per data subject (v1 data is valid v2 data)."""

    delivery_id: UUID
    agreement_id: UUID
    provider_id: UUID
    activity_type: str
    quantity: Decimal
    unit: str
    period_start: date
    period_end: date
    location: str | None = None
    idempotency_key: str
    corrects: UUID | None = None
    channel: Channel
    service_users: list[SealedServiceUser] | None = Field(
        default=None, max_length=100, description="absent when the report names no one")


class LegalBasis(StrEnum):
    """Why personal data is erased: the grounds of UK GDPR Article 17(1)."""

    NO_LONGER_NECESSARY = "no_longer_necessary"  # (a)
    CONSENT_WITHDRAWN = "consent_withdrawn"  # (b)
    OBJECTION = "objection"  # (c)
    UNLAWFUL_PROCESSING = "unlawful_processing"  # (d)
    LEGAL_OBLIGATION = "legal_obligation"  # (e)


@published(SOURCE, "DataSubjectErased", stream_field="erasure_id")
class DataSubjectErased(_Data):
    """The council erased a data subject's personal data: the subject's key was destroyed, so
    every service user record sealed with it is unreadable everywhere (store, log, read
    models, exports). Carries no personal data; the envelope's actor says who."""

    erasure_id: UUID
    subject_id: UUID
    legal_basis: LegalBasis
    reason: str = Field(min_length=1, max_length=500)
    requested_on: date | None = Field(default=None, description="when the request was made")


class DeliveryRateTerm(_Data):
    activity_type: str
    rate: Money
    threshold: Decimal = Decimal(0)
    cap: Money | None = None


class OutcomeRateTerm(_Data):
    measure_id: UUID
    rate: Money
    threshold: Decimal = Decimal(0)
    cap: Money | None = None


class BandTerm(_Data):
    min_pct: Decimal
    max_pct: Decimal | None = None
    adjustment: Money
    label: str


@published(SOURCE, "OutcomeAttributed", stream_field="terms_id")
class OutcomeAttributed(_Data):
    """An agreement was attributed a weighted share of an outcome measure."""

    terms_id: UUID
    agreement_id: UUID
    measure_id: UUID
    weight: Decimal = Field(ge=0, le=1)


@published(SOURCE, "RateCardAgreed", stream_field="terms_id")
class RateCardAgreed(_Data):
    """The agreement's payment-by-results terms: delivery and outcome rates, performance bands,
    the provider's share of penalties, and a cap per period."""

    terms_id: UUID
    agreement_id: UUID
    periodicity: Periodicity
    delivery_rates: list[DeliveryRateTerm] = Field(default_factory=list)
    outcome_rates: list[OutcomeRateTerm] = Field(default_factory=list)
    bands: list[BandTerm] = Field(default_factory=list)
    provider_risk_pct: Decimal = Field(default=Decimal(100), ge=0, le=100)
    period_cap: Money | None = None


class PaymentLine(_Data):
    description: str
    basis: str
    amount: Money


@published(SOURCE, "PaymentCalculated", stream_field="terms_id")
class PaymentCalculated(_Data):
    """The payment due for a period, worked out line by line from the rate card."""

    terms_id: UUID
    agreement_id: UUID
    period: Period
    calculation_id: str
    lines: list[PaymentLine]
    total: Money
    achievement_pct: Decimal | None = None


@published(SOURCE, "PaymentRecalculated", stream_field="terms_id")
class PaymentRecalculated(_Data):
    """A late measurement or a correction changed a period's payment; the difference is due
    (or owed back)."""

    terms_id: UUID
    agreement_id: UUID
    period: Period
    calculation_id: str
    lines: list[PaymentLine]
    total: Money
    achievement_pct: Decimal | None = None
    previous_total: Money
    difference: Money
    reason: str
