"""What the integrator knows about its network. No I/O here.

Commissioning aggregates (needs, decisions, agreements) arrive with the commissioning work; the
network members below are built from other services' events, never written directly.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from council.kernel.contracts.provider_registry import (
    Capacity,
    OrganisationType,
    ProviderStatus,
    SizeBand,
)

# A provider the council may commission: approved, or graduated from incubation.
ACTIVE = ProviderStatus.APPROVED


class NetworkCapability(BaseModel):
    """A service category a provider can deliver, where, and how much."""

    capability_id: str
    category: str = Field(description="code in the registry's service taxonomy")
    description: str | None = None
    areas: list[str] = Field(default_factory=list)
    capacity: Capacity | None = None


class IncubationProgress(BaseModel):
    """How far an incubated provider has come with its support plan's milestones."""

    milestones_total: int
    milestones_met: int


class NetworkProvider(BaseModel):
    """A provider as it stands in the council's network."""

    provider_id: UUID
    name: str
    organisation_type: OrganisationType
    status: ProviderStatus
    status_changed_at: datetime = Field(
        description="when the latest decision (or the registration) put it in this status")
    status_reason: str | None = Field(
        default=None, description="why, as recorded with the latest decision")
    status_changed_by: str | None = Field(
        default=None, description="who took the latest decision")
    sme_size_band: SizeBand | None = None
    areas_served: list[str] = Field(default_factory=list)
    members: list[UUID] = Field(
        default_factory=list, description="member providers of a partnership")
    capabilities: list[NetworkCapability] = Field(default_factory=list)
    incubation: IncubationProgress | None = None
    registered_at: datetime
    updated_at: datetime


class NetworkSummary(BaseModel):
    """The network in figures."""

    providers_by_organisation_type: dict[str, int] = Field(
        description="registrations per organisation type, whatever became of them")
    providers_by_status: dict[str, int] = Field(
        description="providers in each lifecycle status now")
    active_providers_by_category: dict[str, int] = Field(
        description="approved providers offering each service category")
    active_providers_by_category_and_organisation_type: dict[str, dict[str, int]] = Field(
        description="approved providers per service category, split by organisation type")
