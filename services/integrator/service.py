"""Assembly of the integrator service (used by `council serve integrator`)."""

from __future__ import annotations

from uuid import UUID

from services.integrator import api, projections, web
from services.integrator.application import Integrator
from services.integrator.projections.network import get_provider
from services.integrator.web.views import LogMemory
from shared.contracts.provider_registry import ProviderStatus
from shared.web import Runtime, ServiceSpec, Worker


def wire(runtime: Runtime) -> None:
    """Commissioning asks the network projection whether a provider is approved."""
    assert isinstance(runtime.app, Integrator)

    def provider_status(provider_id: UUID) -> ProviderStatus | None:
        provider = get_provider(runtime.views, provider_id)
        return provider.status if provider else None

    runtime.app.provider_status = provider_status


def workers(runtime: Runtime) -> list[Worker]:
    """The web pages keep the shared log's records in memory for their "as of" views."""
    return [LogMemory(runtime)]


SPEC = ServiceSpec(
    name="integrator",
    application=Integrator,
    projections=projections.service_projections,
    routers=[api.router, web.router],
    wire=wire,
    workers=workers,
)
