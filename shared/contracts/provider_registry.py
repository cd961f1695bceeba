"""Events published by the provider registry."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import published

SOURCE = "provider_registry"


class OrganisationType(StrEnum):
    """Who a provider is, in the council's vocabulary (see README, "Who providers are")."""

    PUBLIC_BODY = "public_body"
    VCSE = "vcse"
    SME = "sme"
    LARGE_PRIVATE = "large_private"
    COMMUNITY_GROUP = "community_group"
    PARTNERSHIP = "partnership"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@published(SOURCE, "ProviderRegistered", stream_field="provider_id")
class ProviderRegistered(_Data):
    """A local provider applied to join the council's provider network."""

    provider_id: UUID
    name: str = Field(min_length=1, max_length=200)
    organisation_type: OrganisationType
