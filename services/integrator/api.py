"""HTTP entry point of the integrator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from shared.identity import COUNCIL_READERS, Principal, require
from shared.web import Runtime

from services.integrator.domain import NetworkProvider
from services.integrator.projections import list_providers

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
