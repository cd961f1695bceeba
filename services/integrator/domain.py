"""What the integrator knows about its network. No I/O here.

Commissioning aggregates (needs, decisions, agreements) arrive with the commissioning work; the
network members below are built from other services' events, never written directly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel

from shared.contracts.provider_registry import OrganisationType


class MemberStatus(StrEnum):
    REGISTERED = "registered"


class NetworkProvider(BaseModel):
    """A provider as it stands in the council's network."""

    provider_id: UUID
    name: str
    organisation_type: OrganisationType
    status: MemberStatus
    registered_at: datetime
    updated_at: datetime
