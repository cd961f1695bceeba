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
from pydantic import ValidationError

from council.kernel.contracts.outcomes import Channel, Periodicity
from council.kernel.errors import ConcurrentChange, DomainRuleBroken, InvalidInput, NotFound
from council.platform.eventstore import CouncilApplication
from council.services.outcomes.adapters.personal_data import PersonalData, Sealer
from council.services.outcomes.adapters.stored_reports import first_events
from council.services.outcomes.domain.acceptance import (
    CONFLICT,
    INVALID,
    AgreementInfo,
    DeliveryOutcome,
    accept,
)
from council.services.outcomes.domain.activities import activity_types
from council.services.outcomes.domain.aggregates import (
    AgreementTerms,
    DataSubjectErasure,
    DeliveryReport,
    OutcomeMeasure,
    check_periodicity,
    delivery_id_for,
    terms_id_for,
)
from council.services.outcomes.domain.commands import (
    Attribution,
    DeliveryIn,
    NewMeasure,
    NewMeasurement,
    RateCardIn,
)


class AgreementLookup(Protocol):
    def __call__(self, agreement_ids: Sequence[UUID]) -> dict[UUID, AgreementInfo]: ...


_CHUNK = 1000  # reports per query
# Reports per transaction: a whole HTTP batch. Each commit waits for the disk (SQLite syncs its
# log on every commit), and on a busy disk ten commits a batch cost more than the rest of it.
_PER_TRANSACTION = 10_000
_STORE_ATTEMPTS = 5


@dataclass
class _SavedTogether:
    """Delivery reports saved in one transaction: a report, and the reports that correct it
    or that it corrects."""

    indices: list[int]  # positions in the batch of the new reports among `aggregates`
    aggregates: list[DeliveryReport]


def rejection(error: Exception) -> tuple[str | None, str]:
    """The field (None for the report as a whole) and the reason, for a report that failed to
    parse: a pydantic ValidationError (its first error), or InvalidInput."""
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        loc = ".".join(str(part) for part in first["loc"]) or None
        kind = first["type"]
        if kind == "json_invalid":
            return None, f"not valid JSON: {first.get('ctx', {}).get('error', first['msg'])}"
        if kind in ("model_type", "model_attributes_type", "dict_type") and loc is None:
            return None, "a delivery report is a JSON object"
        message = str(first["msg"]).removeprefix("Value error, ")
        return loc, message
    if isinstance(error, InvalidInput):
        return error.field, error.message
    return None, str(error)


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
        DeliveryReport.ReportedWithServiceUsers: "DeliveryReported",
        AgreementTerms.Attributed: "OutcomeAttributed",
        AgreementTerms.RateCardAgreed: "RateCardAgreed",
        AgreementTerms.PaymentCalculated: "PaymentCalculated",
        AgreementTerms.PaymentRecalculated: "PaymentRecalculated",
        DataSubjectErasure.Erased: "DataSubjectErased",
    }
    # Opening an agreement's terms is bookkeeping: the first attribution says it all. So is
    # marking a delivery report superseded: the correction's DeliveryReported says it on the log.
    unpublished: ClassVar[frozenset[type]] = frozenset({AgreementTerms.Opened,
                                                        DeliveryReport.Superseded})
    agreements: AgreementLookup | None = None
    # The subject key vault (set by the service's wiring); without it no report may name
    # service users.
    personal_data: PersonalData | None = None

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

    def close(self) -> None:
        if self.personal_data is not None:
            self.personal_data.close()
        super().close()

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
        """Agree (or replace) an agreement's rate card, settling in the agreement's payment
        periods (a card naming no periodicity takes them)."""
        agreement = self._known_agreement(agreement_id)
        frequency = agreement.payment_frequency
        periodicity = check_periodicity(card.periodicity,
                                        Periodicity(frequency) if frequency else None)
        for rate in card.outcome_rates:
            if self.measure(rate.measure_id).baseline is None:
                raise InvalidInput(
                    "outcome_rates", f"measure {rate.measure_id} has no baseline: paying for "
                    "improvement needs one"
                )
        terms = self._terms_or_new(agreement_id)
        terms.agree_rate_card(
            periodicity,
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
        their position in the batch; a report that failed to parse comes as its error.

        Reports are checked against the agreements (one lookup per batch) and against what is
        stored (one query per 1,000 reports), then saved in one transaction. If a save
        clashes with a concurrent one (the same report, or a correction of the same report,
        stored meanwhile), what is left is checked again against the store and saved: nothing
        valid is lost, and nothing is stored twice."""
        batch = DeliveryBatch()
        valid: list[tuple[int, DeliveryIn]] = []
        for index, report in reports:
            if isinstance(report, Exception):
                field_name, reason = rejection(report)
                batch.outcomes.append(DeliveryOutcome(index, error=reason, field=field_name,
                                                      code=INVALID))
            elif report.service_users and self.personal_data is None:
                batch.outcomes.append(DeliveryOutcome(
                    index, error="this service keeps no personal data (no subject key vault "
                    "is configured)", field="service_users", code=INVALID))
            else:
                valid.append((index, report))
        agreements = self._agreement_lookup()(sorted({r.agreement_id for _, r in valid}, key=str))
        sealer = self._sealer(provider_id, valid)
        for _ in range(_STORE_ATTEMPTS):
            outcomes, groups = self._plan(provider_id, valid, agreements, channel, sealer)
            if sealer is not None and not sealer.commit():
                continue  # a new subject was stored meanwhile: seal again with its key
            saved = self._store(groups)
            if saved is None:
                batch.outcomes.extend(outcomes)
                valid = []
                break
            # What was saved is final; the rest is planned again against the store as it is now.
            batch.outcomes.extend(o for o in outcomes if o.index in saved)
            valid = [(index, report) for index, report in valid if index not in saved]
        batch.outcomes.extend(
            DeliveryOutcome(index, error="the report clashed with concurrent changes too often; "
                            "send it again", field=None, code=CONFLICT)
            for index, _ in valid
        )
        batch.outcomes.sort(key=lambda o: o.index)
        return batch

    def _sealer(self, provider_id: UUID,
                valid: Sequence[tuple[int, DeliveryIn]]) -> Sealer | None:
        """What seals this batch's service users; None (no work at all) when none names any."""
        if self.personal_data is None or not any(r.service_users for _, r in valid):
            return None
        return self.personal_data.sealer(provider_id, [u for _, r in valid
                                                       for u in r.service_users or ()])

    def _plan(
        self, provider_id: UUID, valid: Sequence[tuple[int, DeliveryIn]],
        agreements: dict[UUID, AgreementInfo], channel: Channel, sealer: Sealer | None = None,
    ) -> tuple[list[DeliveryOutcome], list[_SavedTogether]]:
        """What to do with each report given what is stored now: the outcome of every report,
        and the aggregates to save in groups that must be saved together (a correction with the
        report it supersedes)."""
        outcomes: list[DeliveryOutcome] = []
        ids = [delivery_id_for(provider_id, r.idempotency_key) for _, r in valid]
        stored = self._stored_reports(set(ids))
        fresh: dict[UUID, DeliveryReport] = {}
        groups: list[_SavedTogether] = []
        group_of: dict[UUID, _SavedTogether] = {}  # fresh delivery id -> the group it is saved in
        loaded: dict[UUID, DeliveryReport | None] = {}  # stored reports that are corrected
        for (index, report), delivery_id in zip(valid, ids, strict=True):
            previous: Any = stored.get(delivery_id)
            earlier = previous is not None
            if previous is None:
                previous = fresh.get(delivery_id)
            if previous is not None:  # a replay (recognised even if the agreement has ended)
                replay = self._replay(index, delivery_id, report, previous, sealer)
                replay.already_stored = earlier and replay.error is None
                outcomes.append(replay)
                continue
            outcome = accept(provider_id, report, agreements, index, delivery_id)
            if outcome.error is None:
                new = self._report(provider_id, delivery_id, report, channel, sealer)
                problem, target = self._correct(provider_id, report, new, fresh, loaded, index)
                if problem is not None:
                    outcome = problem
                else:
                    fresh[delivery_id] = new
                    if report.corrects in group_of:  # corrects a report new in this batch
                        group = group_of[report.corrects]
                        group.indices.append(index)
                        group.aggregates.append(new)
                    else:
                        group = _SavedTogether([index], [new] if target is None else [new, target])
                        groups.append(group)
                    group_of[delivery_id] = group
            outcomes.append(outcome)
        return outcomes, groups

    @staticmethod
    def _replay(index: int, delivery_id: UUID, report: DeliveryIn, previous: Any,
                sealer: Sealer | None = None) -> DeliveryOutcome:
        """A report whose key is already used (`previous`: its stored Reported event, or the
        report new in this batch): a replay if it says the same, else refused."""
        said = {
            "agreement_id": report.agreement_id, "activity_type": report.activity_type,
            "quantity": report.quantity, "unit": activity_types()[report.activity_type].unit,
            "period_start": report.period_start.isoformat(),
            "period_end": report.period_end.isoformat(), "location": report.location,
            "corrects": report.corrects,
        }
        named = getattr(previous, "service_users", None)
        if any(getattr(previous, name) != value for name, value in said.items()) or (
            (named or report.service_users)
            and (sealer is None or not sealer.same(delivery_id, named, report.service_users))
        ):
            return DeliveryOutcome(
                index, error=f"idempotency_key {report.idempotency_key!r} was already used "
                "for a different report", field="idempotency_key", code=CONFLICT,
            )
        return DeliveryOutcome(index, delivery_id=delivery_id, duplicate=True)

    def _correct(
        self, provider_id: UUID, report: DeliveryIn, new: DeliveryReport,
        fresh: dict[UUID, DeliveryReport], loaded: dict[UUID, DeliveryReport | None],
        index: int,
    ) -> tuple[DeliveryOutcome | None, DeliveryReport | None]:
        """If the report is a correction, mark the report it corrects as superseded. Returns a
        rejection, or the stored report to save with the correction (None if the corrected
        report is new in this batch, or the report corrects nothing)."""
        target_id = report.corrects
        if target_id is None:
            return None, None
        target = fresh.get(target_id)
        if target is None:
            if target_id not in loaded:
                loaded[target_id] = self._stored_report(target_id)
            target = loaded[target_id]
        if target is None or target.provider_id != provider_id:
            return DeliveryOutcome(index, error=f"no delivery {target_id} of this provider to "
                                   "correct", field="corrects", code=INVALID), None
        if target.agreement_id != report.agreement_id:
            return DeliveryOutcome(
                index, error=f"delivery {target_id} is under agreement {target.agreement_id}: "
                "a correction is reported under the same agreement", field="corrects",
                code=INVALID), None
        try:
            target.supersede(new.id)
        except DomainRuleBroken as exc:
            return DeliveryOutcome(index, error=str(exc), field="corrects", code=CONFLICT), None
        return None, None if target_id in fresh else target

    def _stored_report(self, delivery_id: UUID) -> DeliveryReport | None:
        try:
            found: Aggregate = self.repository.get(delivery_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, DeliveryReport) else None

    @staticmethod
    def _report(provider_id: UUID, delivery_id: UUID, report: DeliveryIn,
                channel: Channel, sealer: Sealer | None = None) -> DeliveryReport:
        return DeliveryReport.report(
            delivery_id, agreement_id=report.agreement_id, provider_id=provider_id,
            activity_type=report.activity_type, quantity=report.quantity,
            unit=activity_types()[report.activity_type].unit,
            period_start=report.period_start.isoformat(),
            period_end=report.period_end.isoformat(), location=report.location,
            idempotency_key=report.idempotency_key, corrects=report.corrects,
            channel=channel.value,
            service_users=(sealer.seal(delivery_id, report.service_users)
                           if sealer is not None and report.service_users else None),
        )

    def _stored_reports(self, delivery_ids: set[UUID]) -> dict[UUID, DeliveryReport.Reported]:
        """The first event of each of these delivery reports already stored: one query per
        1,000 ids against the event store's table (not one per report)."""
        found: dict[UUID, DeliveryReport.Reported] = {}
        ordered = list(delivery_ids)
        for start in range(0, len(ordered), _CHUNK):
            for stored in first_events(self.recorder, ordered[start:start + _CHUNK]):
                event = self.mapper.to_domain_event(stored)
                if isinstance(event, DeliveryReport.Reported):
                    found[event.originator_id] = event
        return found

    def _store(self, groups: Sequence[_SavedTogether]) -> set[int] | None:
        """Save the groups, up to 10,000 reports to a transaction (a group is never split into
        two), in order, so the store (and the shared log) keep the order of the batch. Returns
        None when all are saved; else, after a clash with a concurrent change, the positions of
        the reports that were saved."""
        chunks: list[list[_SavedTogether]] = [[]]
        size = 0
        for group in groups:
            if size >= _PER_TRANSACTION:
                chunks.append([])
                size = 0
            chunks[-1].append(group)
            size += len(group.aggregates)
        results = self.save_batches([[a for g in chunk for a in g.aggregates]
                                     for chunk in chunks])
        if all(results):
            return None
        return {i for chunk, ok in zip(chunks, results, strict=True) if ok
                for group in chunk for i in group.indices}
