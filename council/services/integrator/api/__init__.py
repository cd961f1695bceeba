"""HTTP entry points of the integrator."""

from __future__ import annotations

from fastapi import APIRouter

from council.services.integrator.api import (
    audit,
    commissioning,
    delegation,
    market,
    network,
    ocds,
    performance,
    transparency,
)

router = APIRouter()
router.include_router(network.router)
router.include_router(commissioning.router)
router.include_router(delegation.router)
router.include_router(ocds.router)
router.include_router(market.router)
router.include_router(performance.router)
router.include_router(audit.router)
router.include_router(transparency.router)
