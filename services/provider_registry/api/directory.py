"""HTTP entry point: provider directory."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["directory"])
