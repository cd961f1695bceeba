"""The registry's service layer: commands on providers, recorded in its own event store."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.provider_registry.domain import Provider
from shared.contracts.provider_registry import OrganisationType
from shared.errors import DomainRuleBroken, NotFound
from shared.eventstore import CouncilApplication


def provider_id_for(idempotency_key: str) -> UUID:
    """The same idempotency key always names the same provider, so a retry cannot create two."""
    return uuid5(NAMESPACE_URL, f"council:provider:{idempotency_key}")


class ProviderRegistry(CouncilApplication):
    service = "provider_registry"
    published = {Provider.Registered: "ProviderRegistered"}

    def register_provider(
        self, name: str, organisation_type: OrganisationType, idempotency_key: str | None = None
    ) -> tuple[UUID, bool]:
        """Register a provider; returns its id and whether this call created it."""
        provider_id = provider_id_for(idempotency_key) if idempotency_key else uuid4()
        provider = Provider(  # type: ignore[call-arg]  # `id` is taken by the aggregate's metaclass
            id=provider_id, name=name, organisation_type=organisation_type.value
        )
        try:
            self.save(provider)
        except IntegrityError:
            existing = self.provider(provider_id)
            if (existing.name, existing.organisation_type) != (name, organisation_type):
                raise DomainRuleBroken(
                    f"Idempotency-Key {idempotency_key!r} was already used to register a "
                    "different provider"
                ) from None
            return provider_id, False
        return provider_id, True

    def provider(self, provider_id: UUID) -> Provider:
        try:
            found: Provider = self.repository.get(provider_id)
        except AggregateNotFoundError:
            raise NotFound(f"no provider {provider_id}") from None
        return found
