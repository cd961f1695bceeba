"""HTTP entry points of the outcomes service."""

from __future__ import annotations

from fastapi import APIRouter

from council.services.outcomes.api import data_subjects, deliveries, measures, performance, terms

router = APIRouter()
router.include_router(measures.router)
router.include_router(deliveries.router)
router.include_router(performance.router)
router.include_router(terms.router)
router.include_router(data_subjects.router)
