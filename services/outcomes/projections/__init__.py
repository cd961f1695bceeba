"""The outcomes service's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from services.outcomes.projections.measures import MeasuresProjection, list_measures
from shared.projection import Projection

__all__ = ["MeasuresProjection", "list_measures", "projections"]


def projections() -> Sequence[Projection]:
    return (MeasuresProjection(),)
