"""Outcome measures. No I/O here."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from shared.aggregate import CouncilAggregate
from shared.contracts.outcomes import Direction


class OutcomeMeasure(CouncilAggregate):
    """Something measurable the council wants to move, e.g. the teenage obesity rate."""

    id: UUID  # chosen by the application, so retried commands name the same aggregate

    class Defined(CouncilAggregate.Created):
        name: str
        unit: str
        direction: str

    @event(Defined)
    def __init__(self, name: str, unit: str, direction: str) -> None:
        self.name = name
        self.unit = unit
        self.direction = Direction(direction)
