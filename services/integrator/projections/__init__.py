"""The integrator's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from services.integrator.projections.commissioning import (
    CommissioningProjection,
    get_agreement,
    get_need,
    list_agreements,
    list_needs,
    search_lessons,
    spend_by_partner,
)
from services.integrator.projections.market import market_view, network_state
from services.integrator.projections.network import (
    IGNORED,
    NetworkProjection,
    active_providers,
    get_provider,
    list_providers,
    network_summary,
    provider_counts,
)
from services.integrator.projections.performance import AgreementPerformanceProjection
from services.integrator.projections.standing import StandingProjection
from services.integrator.projections.timeline import TimelineProjection
from shared.projection import Projection

__all__ = [
    "IGNORED",
    "CommissioningProjection",
    "NetworkProjection",
    "active_providers",
    "get_agreement",
    "get_need",
    "get_provider",
    "list_agreements",
    "list_needs",
    "list_providers",
    "live_projections",
    "market_view",
    "network_state",
    "network_summary",
    "projections",
    "provider_counts",
    "search_lessons",
    "spend_by_partner",
]


def projections() -> Sequence[Projection]:
    """The read models the views are answered from, live and rebuilt "as of" a date."""
    return (NetworkProjection(), CommissioningProjection(), AgreementPerformanceProjection())


def live_projections() -> Sequence[Projection]:
    """What the service keeps up to date: those, and the web pages' read models of provider
    standing and of every event (the timeline), which are read live only: the timeline is
    filtered by date itself, so it is never rebuilt "as of"."""
    return (*projections(), StandingProjection(), TimelineProjection())
