"""An audit read: someone (a regulator, internal audit) reading the audit trail. Recorded as it
starts, before anything is served, and again when it ends with how much was returned, so what a
reader saw is itself part of the trail. No I/O here."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from shared.aggregate import CouncilAggregate
from shared.errors import DomainRuleBroken


class AuditRead(CouncilAggregate):
    id: UUID

    class Started(CouncilAggregate.Created):
        token_id: str
        role: str
        label: str
        endpoint: str
        query: dict[str, str]
        scope: dict[str, str]

    class Finished(CouncilAggregate.Event):
        returned: int
        completed: bool

    @event(Started)
    def __init__(self, token_id: str, role: str, label: str, endpoint: str,
                 query: dict[str, str], scope: dict[str, str]) -> None:
        self.token_id = token_id
        self.role = role
        self.label = label
        self.endpoint = endpoint
        self.query = query
        self.scope = scope
        self.returned: int | None = None
        self.completed = False

    def finish(self, returned: int, completed: bool) -> None:
        if self.returned is not None:
            raise DomainRuleBroken(f"audit read {self.id} has already finished")
        if returned < 0:
            raise DomainRuleBroken("an audit read cannot return fewer than no items")
        self._finished(returned, completed)

    @event(Finished)
    def _finished(self, returned: int, completed: bool) -> None:
        self.returned = returned
        self.completed = completed
