"""HTTP entry point of the integrator."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.kernel.errors import NotFound
from council.kernel.text import MAX_OFFSET, QueryName
from council.platform.identity import COUNCIL_READERS, Principal, require
from council.platform.readcache import DEFAULT_PAGE, Answer, cached, json_of, page
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
    principal: Reader,
    status: Annotated[ProviderStatus | None, Query(description="lifecycle status")] = None,
    organisation_type: Annotated[OrganisationType | None, Query()] = None,
    category: Annotated[
        QueryName | None,
        Query(description="service category code: providers with a capability in it"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """Providers in the council's network, as projected from the shared log, by name, a page
    at a time (the `Link` header names the next and previous pages). Filters combine:
    `?status=approved&category=home-care` lists who may be commissioned for home care now."""
    views = _runtime(request).views
    return cached(request, principal, lambda: page(request, list_providers(
        views, limit + 1, offset, status=status, organisation_type=organisation_type,
        category=category), limit, offset, list[NetworkProvider]))


@router.get("/network/providers/{provider_id}", response_model=NetworkProvider)
def network_provider(provider_id: UUID, request: Request, principal: Reader) -> Response:
    """One provider as it stands in the network."""
    def make() -> Answer:
        found = get_provider(_runtime(request).views, provider_id)
        if found is None:
            raise NotFound(f"no provider {provider_id} in the network")
        return Answer(json_of(found, NetworkProvider))

    return cached(request, principal, make)


@router.get("/network/summary", response_model=NetworkSummary)
def summary(request: Request, principal: Reader) -> Response:
    """The network in figures: registrations per organisation type, providers per status, and
    active (approved) providers per service category."""
    views = _runtime(request).views
    return cached(request, principal,
                  lambda: Answer(json_of(network_summary(views), NetworkSummary)))
