"""HTTP entry point of the integrator."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.kernel.errors import NotFound
from council.kernel.text import MAX_OFFSET, QueryName
from council.platform.identity import COUNCIL_READERS, Principal, require
from council.platform.runtime import Runtime
from council.services.integrator.domain import NetworkProvider, NetworkSummary
from council.services.integrator.projections import get_provider, list_providers, network_summary

router = APIRouter(tags=["network"])

Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/network/providers", response_model=list[NetworkProvider])
def network_providers(
    request: Request,
    _: Reader,
    status: Annotated[ProviderStatus | None, Query(description="lifecycle status")] = None,
    organisation_type: Annotated[OrganisationType | None, Query()] = None,
    category: Annotated[
        QueryName | None,
        Query(description="service category code: providers with a capability in it"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[NetworkProvider]:
    """Providers in the council's network, as projected from the shared log, by name.
    Filters combine: `?status=approved&category=home-care` lists who may be commissioned
    for home care now."""
    return list_providers(_runtime(request).views, limit, offset, status=status,
                          organisation_type=organisation_type, category=category)


@router.get("/network/providers/{provider_id}", response_model=NetworkProvider)
def network_provider(provider_id: UUID, request: Request, _: Reader) -> NetworkProvider:
    """One provider as it stands in the network."""
    found = get_provider(_runtime(request).views, provider_id)
    if found is None:
        raise NotFound(f"no provider {provider_id} in the network")
    return found


@router.get("/network/summary", response_model=NetworkSummary)
def summary(request: Request, _: Reader) -> NetworkSummary:
    """The network in figures: registrations per organisation type, providers per status, and
    active (approved) providers per service category."""
    return network_summary(_runtime(request).views)
