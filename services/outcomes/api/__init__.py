"""HTTP entry points of the outcomes service."""

from __future__ import annotations

from fastapi import APIRouter

from services.outcomes.api import measures

router = APIRouter()
router.include_router(measures.router)
