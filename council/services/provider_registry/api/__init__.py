"""HTTP entry points of the provider registry."""

from __future__ import annotations

from fastapi import APIRouter

from council.services.provider_registry.api import directory, imports, oruk, providers

router = APIRouter()
# Fixed paths (/providers/import, /providers?...) before /providers/{provider_id}.
router.include_router(imports.router)
router.include_router(directory.router)
router.include_router(providers.router)
router.include_router(oruk.router)
