"""HTTP entry point of the integrator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.integrator.domain import NetworkProvider
from services.integrator.projections import list_providers, provider_counts
from shared.identity import COUNCIL_READERS, Principal, require
from shared.web import Runtime

router = APIRouter(tags=["network"])


@router.get("/network/providers", response_model=list[NetworkProvider])
def network_providers(
    request: Request,
    _: Annotated[Principal, Depends(require(*COUNCIL_READERS))],
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[NetworkProvider]:
    """Every provider in the council's network, as projected from the shared log."""
    runtime: Runtime = request.app.state.runtime
    return list_providers(runtime.views, limit, offset)


@router.get("/network/summary")
def network_summary(
    request: Request, _: Annotated[Principal, Depends(require(*COUNCIL_READERS))]
) -> dict[str, dict[str, int]]:
    """How many providers of each organisation type are in the network."""
    runtime: Runtime = request.app.state.runtime
    return {"providers_by_organisation_type": provider_counts(runtime.views)}
