"""HTTP entry point: provider imports."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["imports"])
