"""HTTP entry point of the provider registry: translates requests into registry commands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from services.provider_registry.application import ProviderRegistry
from shared.contracts.provider_registry import OrganisationType
from shared.identity import COUNCIL_READERS, COUNCIL_WRITERS, Principal, acting_as, require
from shared.web import Runtime

router = APIRouter(tags=["providers"])


class RegisterProvider(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(
        min_length=1, max_length=200, description="the provider's legal or trading name"
    )
    organisation_type: OrganisationType


class ProviderView(BaseModel):
    provider_id: UUID
    name: str
    organisation_type: OrganisationType
    version: int
    registered_at: datetime


def _registry(request: Request) -> ProviderRegistry:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, ProviderRegistry)
    return runtime.app


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="retrying with the same key registers the provider once"),
]


@router.post("/providers", status_code=status.HTTP_201_CREATED, response_model=ProviderView)
def register_provider(
    body: RegisterProvider,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Depends(require(*COUNCIL_WRITERS))],
    idempotency_key: IdempotencyKey = None,
) -> ProviderView:
    """Register a provider in the council's network (records ProviderRegistered)."""
    registry = _registry(request)
    with acting_as(request, principal):
        provider_id, created = registry.register_provider(
            body.name, body.organisation_type, idempotency_key
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/providers/{provider_id}"
    return _view(registry, provider_id)


@router.get("/providers/{provider_id}", response_model=ProviderView)
def get_provider(
    provider_id: UUID,
    request: Request,
    _: Annotated[Principal, Depends(require(*COUNCIL_READERS))],
) -> ProviderView:
    """One provider as the registry holds it now."""
    return _view(_registry(request), provider_id)


def _view(registry: ProviderRegistry, provider_id: UUID) -> ProviderView:
    provider = registry.provider(provider_id)
    return ProviderView(
        provider_id=provider.id,
        name=provider.name,
        organisation_type=provider.organisation_type,
        version=provider.version,
        registered_at=provider.created_on,
    )
