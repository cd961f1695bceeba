"""The outcomes service layer."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.outcomes.domain import OutcomeMeasure
from shared.contracts.outcomes import Direction
from shared.errors import DomainRuleBroken, NotFound
from shared.eventstore import CouncilApplication


class Outcomes(CouncilApplication):
    service = "outcomes"
    published = {OutcomeMeasure.Defined: "OutcomeMeasureDefined"}

    def define_measure(
        self, name: str, unit: str, direction: Direction, idempotency_key: str | None = None
    ) -> tuple[UUID, bool]:
        """Define an outcome measure; returns its id and whether this call created it."""
        measure_id = (
            uuid5(NAMESPACE_URL, f"council:measure:{idempotency_key}")
            if idempotency_key
            else uuid4()
        )
        measure = OutcomeMeasure(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=measure_id, name=name, unit=unit, direction=direction.value
        )
        try:
            self.save(measure)
        except IntegrityError:
            existing = self.measure(measure_id)
            if (existing.name, existing.unit, existing.direction) != (name, unit, direction):
                raise DomainRuleBroken(
                    f"Idempotency-Key {idempotency_key!r} was already used to define a "
                    "different measure"
                ) from None
            return measure_id, False
        return measure_id, True

    def measure(self, measure_id: UUID) -> OutcomeMeasure:
        try:
            found: OutcomeMeasure = self.repository.get(measure_id)
        except AggregateNotFoundError:
            raise NotFound(f"no outcome measure {measure_id}") from None
        return found
