"""The integrator's read models, each built from the shared log."""

from __future__ import annotations

from collections.abc import Sequence

from council.platform.projection import Projection
from council.services.integrator.projections.agreement_queries import get_agreement, list_agreements
from council.services.integrator.projections.audit import AuditReadsProjection
from council.services.integrator.projections.commissioning import CommissioningProjection
from council.services.integrator.projections.market import market_view, network_state
from council.services.integrator.projections.need_queries import (
    get_need,
    list_needs,
    search_lessons,
    spend_by_partner,
)
from council.services.integrator.projections.network import (
    IGNORED,
    NetworkProjection,
    active_providers,
    get_provider,
    list_providers,
    network_summary,
    provider_counts,
)
from council.services.integrator.projections.ocds import OcdsProjection
from council.services.integrator.projections.performance import AgreementPerformanceProjection
from council.services.integrator.projections.standing import StandingProjection
from council.services.integrator.projections.timeline import TimelineProjection

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
