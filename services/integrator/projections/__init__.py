"""The integrator's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from services.integrator.projections.network import (
    NetworkProjection,
    active_providers,
    get_provider,
    list_providers,
    network_summary,
    provider_counts,
)
from shared.projection import Projection

__all__ = [
    "NetworkProjection",
    "active_providers",
    "get_provider",
    "list_providers",
    "network_summary",
    "projections",
    "provider_counts",
]


def projections() -> Sequence[Projection]:
    return (NetworkProjection(),)
