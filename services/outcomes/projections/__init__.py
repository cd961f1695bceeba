"""The outcomes service's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from services.outcomes.projections.agreements import AgreementsProjection, lookup_agreements
from services.outcomes.projections.data_subjects import DataSubjectsProjection
from services.outcomes.projections.deliveries import (
    DeliveriesProjection,
    units_delivered,
    units_delivered_in,
)
from services.outcomes.projections.measures import MeasuresProjection, list_measures
from services.outcomes.projections.performance import PerformanceProjection
from shared.projection import Projection

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
