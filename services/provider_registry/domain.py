"""The provider, as the council's registry knows it. No I/O here."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from shared.contracts.provider_registry import OrganisationType


class Provider(Aggregate):
    """A local organisation that delivers (or wants to deliver) public services."""

    id: UUID  # chosen by the application, so retried commands name the same aggregate

    class Registered(Aggregate.Created):
        name: str
        organisation_type: str

    @event(Registered)
    def __init__(self, name: str, organisation_type: str) -> None:
        self.name = name
        # Stored as its value so replayed and fresh aggregates hold the same thing.
        self.organisation_type = OrganisationType(organisation_type)
