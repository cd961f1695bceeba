"""The integrator's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from services.integrator.projections.audit import AuditReadsProjection
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
from services.integrator.projections.ocds import OcdsProjection
from services.integrator.projections.performance import AgreementPerformanceProjection
from services.integrator.projections.standing import StandingProjection
from services.integrator.projections.timeline import TimelineProjection
from shared.projection import Projection

__all__ = [
    "IGNORED",
    "AuditReadsProjection",
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
    "service_projections",
    "spend_by_partner",
]


def projections() -> Sequence[Projection]:
    """The read models of the network and commissioning (what a view "as of" a date rebuilds)."""
    return (NetworkProjection(), CommissioningProjection(), AgreementPerformanceProjection())


def service_projections() -> Sequence[Projection]:
    """Every read model the integrator service keeps up to date: those, the log of audit reads,
    the web pages' read models of provider standing and of every event (the timeline), and
    the events behind the open contracting data, which are read live only: the timeline is
    filtered by date itself, so it is never rebuilt "as of"."""
    return (*projections(), AuditReadsProjection(), StandingProjection(), TimelineProjection(),
            OcdsProjection())
