"""Events published by the provider registry, and the vocabulary other services share with it.

Every lifecycle step of a provider is an event here; the integrator's network view and the
registry's own directory are both built from them.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from council.kernel.contracts.catalogue import published

SOURCE = "provider_registry"


class OrganisationType(StrEnum):
    """Who a provider is, in the council's vocabulary (see README, "Who providers are")."""

    PUBLIC_BODY = "public_body"  # including another council selling a shared service
    VCSE = "vcse"  # voluntary, community and social enterprise, charities
    SME = "sme"
    LARGE_PRIVATE = "large_private"
    COMMUNITY_GROUP = "community_group"
    PARTNERSHIP = "partnership"  # partnership, consortium or joint venture of member providers


class ProviderStatus(StrEnum):
    APPLIED = "applied"
    UNDER_REVIEW = "under_review"
    INCUBATING = "incubating"
    APPROVED = "approved"
    SUSPENDED = "suspended"
    EXITED = "exited"
    REJECTED = "rejected"


class SizeBand(StrEnum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"


class StandingKind(StrEnum):
    """The dated facts that make up a provider's standing."""

    ACCREDITATION = "accreditation"
    CERTIFICATION = "certification"
    INSURANCE = "insurance"
    SAFEGUARDING_CHECK = "safeguarding_check"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identifiers(_Data):
    companies_house: str | None = None
    charity_number: str | None = None
    ukprn: str | None = None


class Contact(_Data):
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class Address(_Data):
    lines: list[str] = Field(default_factory=list)
    town: str | None = None
    # the county (or unitary area): Open Referral's state_province; absent from older events
    county: str | None = None
    postcode: str | None = None


class SmeSize(_Data):
    headcount: int = Field(ge=0)
    turnover_gbp: int = Field(ge=0)
    band: SizeBand


class Capacity(_Data):
    amount: int = Field(ge=0)
    unit: str


class Milestone(_Data):
    milestone_id: str
    title: str
    due_on: date | None = None


class ProviderDetails(_Data):
    """What a provider says about itself; every field optional so updates can carry a part."""

    name: str | None = None
    description: str | None = None
    website: str | None = None
    identifiers: Identifiers | None = None
    contact: Contact | None = None
    address: Address | None = None
    areas_served: list[str] | None = None
    sme_size: SmeSize | None = None
    members: list[UUID] | None = None


@published(SOURCE, "ProviderRegistered", stream_field="provider_id")
class ProviderRegistered(_Data):
    """A local provider applied to join the council's provider network."""

    provider_id: UUID
    name: str = Field(min_length=1, max_length=200)
    organisation_type: OrganisationType
    description: str | None = None
    website: str | None = None
    identifiers: Identifiers | None = None
    contact: Contact | None = None
    address: Address | None = None
    areas_served: list[str] = Field(default_factory=list)
    sme_size: SmeSize | None = None
    members: list[UUID] = Field(default_factory=list)


class _Decision(_Data):
    provider_id: UUID
    reason: str


# What every lifecycle decision carries (provider and reason), for readers that treat them alike.
LifecycleDecision = _Decision


@published(SOURCE, "ProviderReviewStarted", stream_field="provider_id")
class ProviderReviewStarted(_Decision):
    """The council started reviewing a provider's application."""


@published(SOURCE, "ProviderApproved", stream_field="provider_id")
class ProviderApproved(_Decision):
    """The council approved a provider: it is onboarded and may be commissioned."""

    credentials_id: str


@published(SOURCE, "ProviderRejected", stream_field="provider_id")
class ProviderRejected(_Decision):
    """The council rejected a provider's application."""


@published(SOURCE, "ProviderSuspended", stream_field="provider_id")
class ProviderSuspended(_Decision):
    """The council suspended an approved provider; its credentials were revoked."""

    revoked_credentials_id: str | None = None


@published(SOURCE, "ProviderReinstated", stream_field="provider_id")
class ProviderReinstated(_Decision):
    """The council lifted a suspension; the provider got new credentials."""

    credentials_id: str


@published(SOURCE, "ProviderExited", stream_field="provider_id")
class ProviderExited(_Decision):
    """The provider left the network (its credentials were revoked)."""

    revoked_credentials_id: str | None = None


@published(SOURCE, "ProviderDetailsUpdated", stream_field="provider_id")
class ProviderDetailsUpdated(_Data):
    """Some of a provider's details changed; only the changed fields are present."""

    provider_id: UUID
    changes: ProviderDetails


@published(SOURCE, "ProviderCapabilityAdded", stream_field="provider_id")
class ProviderCapabilityAdded(_Data):
    """The provider can deliver a service category, in some areas, at some capacity."""

    provider_id: UUID
    capability_id: str
    category: str
    description: str | None = None
    areas: list[str] = Field(default_factory=list)
    capacity: Capacity | None = None


@published(SOURCE, "ProviderCapabilityRemoved", stream_field="provider_id")
class ProviderCapabilityRemoved(_Data):
    """The provider no longer offers a capability."""

    provider_id: UUID
    capability_id: str
    reason: str


@published(SOURCE, "AccreditationAdded", stream_field="provider_id")
class AccreditationAdded(_Data):
    """An accreditation, certification, insurance or safeguarding check, valid for a period."""

    provider_id: UUID
    accreditation_id: str
    kind: StandingKind
    name: str
    issuer: str | None = None
    reference: str | None = None
    valid_from: date | None = None
    expires_on: date | None = None
    cover_gbp: int | None = None


@published(SOURCE, "AccreditationRemoved", stream_field="provider_id")
class AccreditationRemoved(_Data):
    """An accreditation was withdrawn or recorded in error."""

    provider_id: UUID
    accreditation_id: str
    reason: str


@published(SOURCE, "QualityRatingRecorded", stream_field="provider_id")
class QualityRatingRecorded(_Data):
    """A dated quality rating from an inspectorate or scheme (e.g. a CQC rating)."""

    provider_id: UUID
    rating_id: str
    scheme: str
    rating: str
    rated_on: date
    reference: str | None = None


@published(SOURCE, "ConflictOfInterestDeclared", stream_field="provider_id")
class ConflictOfInterestDeclared(_Data):
    """Someone declared an interest bearing on decisions about this provider."""

    provider_id: UUID
    declaration_id: str
    declared_by: str
    interest: str
    declared_on: date


@published(SOURCE, "IncubationStarted", stream_field="provider_id")
class IncubationStarted(_Data):
    """The council, as market maker, took on a provider to grow, with a support plan."""

    provider_id: UUID
    support_plan: str
    milestones: list[Milestone]
    reason: str


@published(SOURCE, "IncubationMilestoneMet", stream_field="provider_id")
class IncubationMilestoneMet(_Data):
    """An incubating provider met one of its milestones."""

    provider_id: UUID
    milestone_id: str
    evidence: str


@published(SOURCE, "ProviderGraduated", stream_field="provider_id")
class ProviderGraduated(_Decision):
    """An incubating provider met its milestones and was approved."""

    credentials_id: str


@published(SOURCE, "ProviderCredentialsRotated", stream_field="provider_id")
class ProviderCredentialsRotated(_Data):
    """The provider's API credentials were replaced; the old ones no longer work."""

    provider_id: UUID
    credentials_id: str
    revoked_credentials_id: str | None = None
