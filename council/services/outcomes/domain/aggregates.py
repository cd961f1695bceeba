"""The outcomes service's domain: outcome measures and their measurements, delivery reported by
providers, and each agreement's terms (attribution, rate card) with its payment schedule.
No I/O here. Decimals for values and money; dates and periods as ISO strings in events.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.contracts.outcomes import Direction, Periodicity
from council.kernel.errors import DomainRuleBroken, InvalidInput


def delivery_id_for(provider_id: UUID, idempotency_key: str) -> UUID:
    """A provider's idempotency key names one delivery report: a replay is the same report."""
    return uuid5(NAMESPACE_URL, f"council:delivery:{provider_id}:{idempotency_key}")


def terms_id_for(agreement_id: UUID) -> UUID:
    """The outcomes service's terms for an agreement (one per agreement)."""
    return uuid5(NAMESPACE_URL, f"council:terms:{agreement_id}")


def check_periodicity(card: Periodicity | None,
                      payment_frequency: Periodicity | None) -> Periodicity:
    """The periods a rate card settles in: the agreement's payment frequency, one fact not two.
    A card naming none takes the agreement's; one naming another is refused. An agreement
    naming none (drafted before it was recorded) leaves it to the card (quarterly if the card
    names none either)."""
    if payment_frequency is None:
        return card or Periodicity.QUARTERLY
    if card is not None and card is not payment_frequency:
        raise DomainRuleBroken(
            f"the rate card's periodicity ({card.value}) disagrees with the agreement's "
            f"payment_frequency ({payment_frequency.value}): results are paid "
            f"{payment_frequency.value}, so the card settles {payment_frequency.value} "
            "periods (leave periodicity out to take the agreement's)"
        )
    return payment_frequency


class OutcomeMeasure(CouncilAggregate):
    """Something measurable the council wants to move, e.g. the teenage obesity rate, with its
    baseline and target trajectory, and the values measured period by period."""

    id: UUID  # chosen by the application, so retried commands name the same aggregate

    class Defined(CouncilAggregate.Created):
        name: str
        unit: str
        direction: str
        description: str | None
        baseline: Decimal | None
        baseline_period: str | None
        trajectory: list[dict[str, Any]]
        data_source: str | None
        geography: str | None

        # v1 (the foundation slice) had only name, unit and direction.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(description=None, baseline=None, baseline_period=None, trajectory=[],
                         data_source=None, geography=None)

    @event(Defined)
    def __init__(
        self, name: str, unit: str, direction: str, description: str | None = None,
        baseline: Decimal | None = None, baseline_period: str | None = None,
        trajectory: list[dict[str, Any]] | None = None, data_source: str | None = None,
        geography: str | None = None,
    ) -> None:
        self.name = name
        self.unit = unit
        self.direction = Direction(direction)
        self.description = description
        self.baseline = baseline
        self.baseline_period = baseline_period
        self.trajectory: dict[str, Decimal] = {
            p["period"]: p["target"] for p in (trajectory or [])
        }
        self.data_source = data_source
        self.geography = geography
        # period -> every measurement recorded for it, oldest first (revisions kept)
        self.measurements: dict[str, list[dict[str, Any]]] = {}

    @property
    def lower_is_better(self) -> bool:
        return self.direction is Direction.LOWER_IS_BETTER

    def current(self, period: str) -> dict[str, Any] | None:
        """The latest measurement for a period (a revision replaces what it revises)."""
        history = self.measurements.get(period)
        return history[-1] if history else None

    class Measured(CouncilAggregate.Event):
        measurement_id: str
        period: str
        value: Decimal
        source: str
        revises: str | None
        note: str | None

    def record_measurement(
        self, measurement_id: str, period: str, value: Decimal, source: str, note: str | None
    ) -> str | None:
        """Record a value for a period; a second value for the same period is a revision of
        the first (both kept). Returns the id of the measurement revised, if any."""
        previous = self.current(period)
        if previous is not None and previous["value"] == value and previous["source"] == source:
            raise DomainRuleBroken(f"{period} already has the value {value} from {source}")
        revises = previous["measurement_id"] if previous else None
        self._measured(measurement_id, period, value, source, revises, note)
        return revises

    @event(Measured)
    def _measured(
        self, measurement_id: str, period: str, value: Decimal, source: str,
        revises: str | None, note: str | None,
    ) -> None:
        self.measurements.setdefault(period, []).append({
            "measurement_id": measurement_id, "period": period, "value": value,
            "source": source, "revises": revises, "note": note,
        })


class DeliveryReport(CouncilAggregate):
    """One report of delivery by a provider under one of its agreements. A correction is a new
    report that names the one it corrects; nothing is edited in place."""

    id: UUID

    class Reported(CouncilAggregate.Created):
        agreement_id: UUID
        provider_id: UUID
        activity_type: str
        quantity: Decimal
        unit: str
        period_start: str
        period_end: str
        location: str | None
        idempotency_key: str
        corrects: UUID | None
        channel: str

    class ReportedWithServiceUsers(Reported):
        """A report naming the service users it was for (published as DeliveryReported too).
        A class of its own, so reports naming no one are stored exactly as before."""

        # Sealed per data subject before they get here (SealedServiceUser): never plaintext.
        service_users: list[dict[str, str]]

        def apply(self, aggregate: Any) -> None:  # after __init__ has set the rest
            aggregate.service_users = self.service_users

    @event(Reported)
    def __init__(
        self, agreement_id: UUID, provider_id: UUID, activity_type: str, quantity: Decimal,
        unit: str, period_start: str, period_end: str, location: str | None,
        idempotency_key: str, corrects: UUID | None, channel: str,
    ) -> None:
        self.agreement_id = agreement_id
        self.provider_id = provider_id
        self.activity_type = activity_type
        self.quantity = quantity
        self.unit = unit
        self.period_start = period_start
        self.period_end = period_end
        self.location = location
        self.idempotency_key = idempotency_key
        self.corrects = corrects
        self.channel = channel
        self.service_users: list[dict[str, str]] | None = None
        self.superseded_by: UUID | None = None

    @classmethod
    def report(
        cls, delivery_id: UUID, agreement_id: UUID, provider_id: UUID, activity_type: str,
        quantity: Decimal, unit: str, period_start: str, period_end: str, location: str | None,
        idempotency_key: str, corrects: UUID | None, channel: str,
        service_users: list[dict[str, str]] | None = None,
    ) -> DeliveryReport:
        """A new report: Reported, or ReportedWithServiceUsers when it names service users
        (sealed). `_create(event_class, ...)` is how the event-sourcing library lets an
        aggregate with two kinds of created event say which one happened; the plain case goes
        the same way so both are built alike."""
        if service_users:
            return cls._create(
                cls.ReportedWithServiceUsers, id=delivery_id, agreement_id=agreement_id,
                provider_id=provider_id, activity_type=activity_type, quantity=quantity,
                unit=unit, period_start=period_start, period_end=period_end, location=location,
                idempotency_key=idempotency_key, corrects=corrects, channel=channel,
                service_users=service_users,
            )
        return cls._create(
            cls.Reported, id=delivery_id, agreement_id=agreement_id, provider_id=provider_id,
            activity_type=activity_type, quantity=quantity, unit=unit,
            period_start=period_start, period_end=period_end, location=location,
            idempotency_key=idempotency_key, corrects=corrects, channel=channel,
        )

    class Superseded(CouncilAggregate.Event):
        by: UUID

    def supersede(self, by: UUID) -> None:
        """Record that a correction replaced this report. Kept in the store only (the correction's
        own DeliveryReported says it on the log): its point is that a report can be corrected
        once, so corrections form a chain and two concurrent corrections of one report clash."""
        if self.superseded_by is not None:
            raise DomainRuleBroken(
                f"delivery {self.id} was already corrected by {self.superseded_by}: "
                "correct that report instead"
            )
        self._superseded(by)

    @event(Superseded)
    def _superseded(self, by: UUID) -> None:
        self.superseded_by = by


class AgreementTerms(CouncilAggregate):
    """The outcomes service's terms for one agreement: which outcomes it is attributed (with
    weights), its payment-by-results rate card, and the payment worked out for each period."""

    id: UUID

    class Opened(CouncilAggregate.Created):
        agreement_id: UUID

    @event(Opened)
    def __init__(self, agreement_id: UUID) -> None:
        self.agreement_id = agreement_id
        self.attributions: dict[str, Decimal] = {}  # measure id -> weight
        self.rate_card: dict[str, Any] | None = None
        self.payments: dict[str, dict[str, Any]] = {}  # period -> latest calculation

    class Attributed(CouncilAggregate.Event):
        agreement_id: UUID
        measure_id: UUID
        weight: Decimal

    def attribute(self, measure_id: UUID, weight: Decimal) -> None:
        if not Decimal(0) <= weight <= Decimal(1):
            raise InvalidInput("weight", "is a share between 0 and 1")
        if self.attributions.get(str(measure_id)) == weight:
            raise DomainRuleBroken(f"measure {measure_id} is already attributed {weight}")
        self._attributed(self.agreement_id, measure_id, weight)

    @event(Attributed)
    def _attributed(self, agreement_id: UUID, measure_id: UUID, weight: Decimal) -> None:
        self.attributions[str(measure_id)] = weight

    class RateCardAgreed(CouncilAggregate.Event):
        agreement_id: UUID
        periodicity: str
        delivery_rates: list[dict[str, Any]]
        outcome_rates: list[dict[str, Any]]
        bands: list[dict[str, Any]]
        provider_risk_pct: Decimal
        period_cap: Decimal | None

    def agree_rate_card(
        self, periodicity: Periodicity, delivery_rates: list[dict[str, Any]],
        outcome_rates: list[dict[str, Any]], bands: list[dict[str, Any]],
        provider_risk_pct: Decimal, period_cap: Decimal | None,
    ) -> None:
        """Agree (or replace) the rate card; outcome rates need an attribution first."""
        if (self.payments and self.rate_card is not None
                and self.rate_card["periodicity"] != periodicity.value):
            raise DomainRuleBroken(
                f"payments are already calculated {self.rate_card['periodicity']}: the "
                "periodicity cannot change (periods would overlap and be paid twice)"
            )
        if not delivery_rates and not outcome_rates:
            raise InvalidInput("delivery_rates", "a rate card pays for delivery or outcomes")
        for rate in outcome_rates:
            if str(rate["measure_id"]) not in self.attributions:
                raise InvalidInput(
                    "outcome_rates", f"measure {rate['measure_id']} is not attributed to the "
                    "agreement: attribute it first"
                )
        self._rate_card_agreed(self.agreement_id, periodicity.value, delivery_rates,
                               outcome_rates, bands, provider_risk_pct, period_cap)

    @event(RateCardAgreed)
    def _rate_card_agreed(
        self, agreement_id: UUID, periodicity: str, delivery_rates: list[dict[str, Any]],
        outcome_rates: list[dict[str, Any]], bands: list[dict[str, Any]],
        provider_risk_pct: Decimal, period_cap: Decimal | None,
    ) -> None:
        self.rate_card = {
            "periodicity": periodicity, "delivery_rates": delivery_rates,
            "outcome_rates": outcome_rates, "bands": bands,
            "provider_risk_pct": provider_risk_pct, "period_cap": period_cap,
        }

    class PaymentCalculated(CouncilAggregate.Event):
        agreement_id: UUID
        period: str
        calculation_id: str
        lines: list[dict[str, Any]]
        total: Decimal
        achievement_pct: Decimal | None

    class PaymentRecalculated(CouncilAggregate.Event):
        agreement_id: UUID
        period: str
        calculation_id: str
        lines: list[dict[str, Any]]
        total: Decimal
        achievement_pct: Decimal | None
        previous_total: Decimal
        difference: Decimal
        reason: str

    def settle(
        self, period: str, calculation_id: str, lines: list[dict[str, Any]], total: Decimal,
        achievement_pct: Decimal | None, reason: str,
    ) -> bool:
        """Record a period's payment if it is new or different; a change is recorded with the
        difference. Returns whether anything was recorded (recalculating is idempotent)."""
        previous = self.payments.get(period)
        if previous is None:
            self._payment_calculated(self.agreement_id, period, calculation_id, lines, total,
                                     achievement_pct)
            return True
        if previous["total"] == total and previous["lines"] == lines:
            return False
        self._payment_recalculated(
            self.agreement_id, period, calculation_id, lines, total, achievement_pct,
            previous["total"], total - previous["total"], reason,
        )
        return True

    @event(PaymentCalculated)
    def _payment_calculated(
        self, agreement_id: UUID, period: str, calculation_id: str, lines: list[dict[str, Any]],
        total: Decimal, achievement_pct: Decimal | None,
    ) -> None:
        self.payments[period] = {
            "period": period, "calculation_id": calculation_id, "lines": lines, "total": total,
            "achievement_pct": achievement_pct, "history": [total],
        }

    @event(PaymentRecalculated)
    def _payment_recalculated(
        self, agreement_id: UUID, period: str, calculation_id: str, lines: list[dict[str, Any]],
        total: Decimal, achievement_pct: Decimal | None, previous_total: Decimal,
        difference: Decimal, reason: str,
    ) -> None:
        history = [*self.payments[period]["history"], total]
        self.payments[period] = {
            "period": period, "calculation_id": calculation_id, "lines": lines, "total": total,
            "achievement_pct": achievement_pct, "history": history,
        }


def erasure_id_for(subject_id: UUID) -> UUID:
    """A data subject is erased once: a repeated request names the same erasure."""
    return uuid5(NAMESPACE_URL, f"council:erasure:{subject_id}")


class DataSubjectErasure(CouncilAggregate):
    """The council's decision to erase a data subject's personal data (a valid request under
    UK GDPR Article 17): recorded before the subject's key is destroyed, and only once. It
    holds no personal data: the subject is named by its pseudonym."""

    id: UUID

    class Erased(CouncilAggregate.Created):
        subject_id: UUID
        legal_basis: str
        reason: str
        requested_on: str | None

    @event(Erased)
    def __init__(self, subject_id: UUID, legal_basis: str, reason: str,
                 requested_on: str | None) -> None:
        if not reason.strip():
            raise InvalidInput("reason", "say why the personal data is erased")
        self.subject_id = subject_id
        self.legal_basis = legal_basis
        self.reason = reason
        self.requested_on = requested_on
