"""The outcomes service layer: outcome measures and measurements, delivery reported by providers,
and each agreement's terms and payments, recorded in the service's own event store.

Which agreements exist, who their parties are and whether they are active is read from the
agreements projection (the integrator's events as this service has applied them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.outcomes.commands import (
    Attribution,
    DeliveryIn,
    NewMeasure,
    NewMeasurement,
    RateCardIn,
)
from services.outcomes.domain import (
    AgreementTerms,
    DeliveryReport,
    OutcomeMeasure,
    delivery_id_for,
    terms_id_for,
)
from shared.contracts.outcomes import Channel
from shared.errors import ConcurrentChange, DomainRuleBroken, NotFound
from shared.eventstore import CouncilApplication


@dataclass(frozen=True)
class AgreementInfo:
    """What this service knows of an agreement from the shared log."""

    agreement_id: UUID
    status: str  # drafted | active | ended
    provider_ids: frozenset[UUID]


class AgreementLookup(Protocol):
    def __call__(self, agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]: ...


@dataclass
class DeliveryOutcome:
    """What became of one delivery report: accepted (new or a replay) or rejected, and why."""

    index: int
    delivery_id: UUID | None = None
    duplicate: bool = False
    error: str | None = None
    field: str | None = None


@dataclass
class DeliveryBatch:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    @property
    def accepted(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.error is None]

    @property
    def rejected(self) -> list[DeliveryOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def short_id() -> str:
    return uuid4().hex[:12]


class Outcomes(CouncilApplication):
    service = "outcomes"
    published: ClassVar[dict[type, str]] = {
        OutcomeMeasure.Defined: "OutcomeMeasureDefined",
        OutcomeMeasure.Measured: "MeasurementRecorded",
        DeliveryReport.Reported: "DeliveryReported",
        AgreementTerms.Attributed: "OutcomeAttributed",
        AgreementTerms.RateCardAgreed: "RateCardAgreed",
        AgreementTerms.PaymentCalculated: "PaymentCalculated",
        AgreementTerms.PaymentRecalculated: "PaymentRecalculated",
    }
    # Opening an agreement's terms is bookkeeping: the first attribution says it all.
    unpublished: ClassVar[frozenset[type]] = frozenset({AgreementTerms.Opened})
    agreements: AgreementLookup | None = None

    # ------------------------------------------------------------------ reading

    def _get(self, kind: type[Any], aggregate_id: UUID, what: str) -> Any:
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {what} {aggregate_id}") from None
        if not isinstance(found, kind):
            raise NotFound(f"no {what} {aggregate_id}")
        return found

    def measure(self, measure_id: UUID) -> OutcomeMeasure:
        found: OutcomeMeasure = self._get(OutcomeMeasure, measure_id, "outcome measure")
        return found

    def delivery(self, delivery_id: UUID) -> DeliveryReport:
        found: DeliveryReport = self._get(DeliveryReport, delivery_id, "delivery report")
        return found

    def terms(self, agreement_id: UUID) -> AgreementTerms:
        found: AgreementTerms = self._get(AgreementTerms, terms_id_for(agreement_id),
                                          "terms for agreement")
        return found

    def _save(self, *aggregates: Aggregate, what: str) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentChange(f"{what} was changed by someone else meanwhile; retry") from None

    # ------------------------------------------------------------------ measures

    def define_measure(
        self, new: NewMeasure, idempotency_key: str | None = None
    ) -> tuple[UUID, bool]:
        """Define an outcome measure; returns its id and whether this call created it."""
        measure_id = (
            uuid5(NAMESPACE_URL, f"council:measure:{idempotency_key}") if idempotency_key
            else uuid4()
        )
        measure = OutcomeMeasure(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=measure_id, name=new.name, unit=new.unit, direction=new.direction.value,
            description=new.description, baseline=new.baseline,
            baseline_period=new.baseline_period,
            trajectory=[{"period": p.period, "target": p.target} for p in new.trajectory],
            data_source=new.data_source, geography=new.geography,
        )
        try:
            self.save(measure)
        except IntegrityError:
            existing = self.measure(measure_id)
            if (existing.name, existing.unit, existing.direction) != (
                new.name, new.unit, new.direction
            ):
                raise DomainRuleBroken(
                    f"Idempotency-Key {idempotency_key!r} was already used to define a "
                    "different measure"
                ) from None
            return measure_id, False
        return measure_id, True

    def record_measurement(self, measure_id: UUID, new: NewMeasurement) -> tuple[str, str | None]:
        """Record a value for a period (a revision if the period has one); returns the new
        measurement's id and the id it revises."""
        measurement_id = short_id()
        measure = self.measure(measure_id)
        revises = measure.record_measurement(measurement_id, new.period, new.value, new.source,
                                             new.note)
        self._save(measure, what=f"outcome measure {measure_id}")
        return measurement_id, revises

    # ------------------------------------------------------------------ terms

    def _terms_or_new(self, agreement_id: UUID) -> AgreementTerms:
        try:
            return self.terms(agreement_id)
        except NotFound:
            self._known_agreement(agreement_id)
            return AgreementTerms(  # type: ignore[call-arg]  # `id` is taken by the metaclass
                id=terms_id_for(agreement_id), agreement_id=agreement_id
            )

    def _known_agreement(self, agreement_id: UUID) -> AgreementInfo:
        found = self._agreement_lookup()([agreement_id]).get(agreement_id)
        if found is None:
            raise NotFound(f"no agreement {agreement_id} in the shared log (yet)")
        return found

    def _agreement_lookup(self) -> AgreementLookup:
        if self.agreements is None:
            raise RuntimeError("the outcomes service has no view of agreements attached")
        return self.agreements

    def attribute(self, agreement_id: UUID, attribution: Attribution) -> None:
        """Attribute a weighted share of an outcome measure to an agreement."""
        self.measure(attribution.measure_id)
        terms = self._terms_or_new(agreement_id)
        terms.attribute(attribution.measure_id, attribution.weight)
        self._save(terms, what=f"terms for agreement {agreement_id}")

    def agree_rate_card(self, agreement_id: UUID, card: RateCardIn) -> None:
        for rate in card.outcome_rates:
            self.measure(rate.measure_id)
        terms = self._terms_or_new(agreement_id)
        terms.agree_rate_card(
            card.periodicity,
            [r.model_dump(mode="python") for r in card.delivery_rates],
            [r.model_dump(mode="python") for r in card.outcome_rates],
            [b.model_dump(mode="python") for b in card.bands],
            card.provider_risk_pct, card.period_cap,
        )
        self._save(terms, what=f"terms for agreement {agreement_id}")

    # ------------------------------------------------------------------ delivery

    def report_deliveries(
        self, provider_id: UUID, reports: Sequence[tuple[int, DeliveryIn | Exception]],
        channel: Channel,
    ) -> DeliveryBatch:
        """Accept a provider's delivery reports: each either stored (or recognised as a replay
        of one already stored) or rejected with the reason. Already-parsed reports come with
        their position in the batch; a report that failed to parse comes as its error."""
        batch = DeliveryBatch()
        valid: list[tuple[int, DeliveryIn]] = []
        for index, report in reports:
            if isinstance(report, Exception):
                batch.outcomes.append(DeliveryOutcome(index, error=str(report)))
            else:
                valid.append((index, report))
        agreements = self._agreement_lookup()(sorted({r.agreement_id for _, r in valid}, key=str))
        fresh: dict[UUID, tuple[int, DeliveryReport]] = {}
        existing = self._existing(delivery_id_for(provider_id, r.idempotency_key)
                                  for _, r in valid)
        for index, report in valid:
            outcome = self._check(provider_id, report, agreements, index)
            delivery_id = outcome.delivery_id
            if delivery_id is not None:
                if delivery_id in existing or delivery_id in fresh:
                    outcome = self._replay(outcome, report, fresh, provider_id, channel)
                else:
                    fresh[delivery_id] = (index, self._report(provider_id, report, channel))
            batch.outcomes.append(outcome)
        self._store(fresh, batch)
        batch.outcomes.sort(key=lambda o: o.index)
        return batch

    def _check(self, provider_id: UUID, report: DeliveryIn,
               agreements: dict[UUID, AgreementInfo], index: int) -> DeliveryOutcome:
        agreement = agreements.get(report.agreement_id)
        if agreement is None:
            return DeliveryOutcome(index, error=f"no agreement {report.agreement_id}",
                                   field="agreement_id")
        if provider_id not in agreement.provider_ids:
            return DeliveryOutcome(index, error="the agreement is not one of this provider's",
                                   field="agreement_id")
        if agreement.status != "active":
            return DeliveryOutcome(
                index, error=f"the agreement is {agreement.status}, not active",
                field="agreement_id",
            )
        return DeliveryOutcome(index, delivery_id=delivery_id_for(provider_id,
                                                                  report.idempotency_key))

    def _replay(self, outcome: DeliveryOutcome, report: DeliveryIn,
                fresh: dict[UUID, tuple[int, DeliveryReport]], provider_id: UUID,
                channel: Channel) -> DeliveryOutcome:
        assert outcome.delivery_id is not None
        stored = (fresh[outcome.delivery_id][1] if outcome.delivery_id in fresh
                  else self.delivery(outcome.delivery_id))
        candidate = self._report(provider_id, report, channel)
        fields = ("agreement_id", "activity_type", "quantity", "period_start", "period_end",
                  "corrects")
        if not stored.same_report({f: getattr(candidate, f) for f in fields}):
            return DeliveryOutcome(
                outcome.index, error=f"idempotency_key {report.idempotency_key!r} was already "
                "used for a different report", field="idempotency_key",
            )
        outcome.duplicate = True
        return outcome

    def _report(self, provider_id: UUID, report: DeliveryIn, channel: Channel) -> DeliveryReport:
        from services.outcomes.activities import activity_types

        return DeliveryReport(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=delivery_id_for(provider_id, report.idempotency_key),
            agreement_id=report.agreement_id, provider_id=provider_id,
            activity_type=report.activity_type, quantity=report.quantity,
            unit=activity_types()[report.activity_type].unit,
            period_start=report.period_start.isoformat(),
            period_end=report.period_end.isoformat(), location=report.location,
            idempotency_key=report.idempotency_key, corrects=report.corrects,
            channel=channel.value,
        )

    def _existing(self, delivery_ids: Any) -> set[UUID]:
        """Which of these delivery reports are already stored."""
        return {i for i in set(delivery_ids) if self.recorder.select_events(i, limit=1)}

    def _store(self, fresh: dict[UUID, tuple[int, DeliveryReport]], batch: DeliveryBatch) -> None:
        """Save new reports, 1,000 to a transaction; a clash (a concurrent replay) is resolved
        report by report so nothing valid is lost."""
        items = list(fresh.values())
        for start in range(0, len(items), 1000):
            chunk = items[start:start + 1000]
            try:
                self.save(*(report for _, report in chunk))
            except IntegrityError:
                for _, report in chunk:
                    try:
                        self.save(report)
                    except IntegrityError:
                        for outcome in batch.outcomes:
                            if outcome.delivery_id == report.id:
                                outcome.duplicate = True

