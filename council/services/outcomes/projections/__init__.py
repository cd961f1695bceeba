"""The outcomes service's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from council.platform.projection import Projection
from council.services.outcomes.projections.agreements import AgreementsProjection, lookup_agreements
from council.services.outcomes.projections.data_subjects import DataSubjectsProjection
from council.services.outcomes.projections.deliveries import (
    DeliveriesProjection,
    units_delivered,
    units_delivered_in,
)
from council.services.outcomes.projections.measures import MeasuresProjection, list_measures
from council.services.outcomes.projections.performance import PerformanceProjection

__all__ = [
    "AgreementsProjection",
    "DataSubjectsProjection",
    "DeliveriesProjection",
    "MeasuresProjection",
    "list_measures",
    "lookup_agreements",
    "projections",
    "units_delivered",
    "units_delivered_in",
]


def projections() -> Sequence[Projection]:
    return (MeasuresProjection(), PerformanceProjection(), AgreementsProjection(),
            DeliveriesProjection(), DataSubjectsProjection())
