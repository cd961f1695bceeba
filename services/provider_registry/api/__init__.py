"""HTTP entry points of the provider registry."""

from __future__ import annotations

from fastapi import APIRouter

from services.provider_registry.api import providers

router = APIRouter()
router.include_router(providers.router)
