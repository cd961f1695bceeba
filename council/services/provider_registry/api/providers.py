"""HTTP entry point for one provider's record: registration, the onboarding lifecycle, details,
capabilities, standing, incubation and credentials. Routes only translate to registry commands."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, StringConstraints

from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.kernel.envelope import EventEnvelope
from council.kernel.errors import NotFound
from council.kernel.taxonomy import taxonomy
from council.kernel.text import PathId
from council.platform.identity import (
    COUNCIL_READERS,
    COUNCIL_WRITERS,
    IssuedToken,
    Principal,
    Role,
    acting_as,
    require,
)
from council.platform.runtime import Runtime
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.commands import Decision as DecisionIn
from council.services.provider_registry.domain.commands import (
    DetailsUpdate,
    IncubationPlan,
    MilestoneEvidence,
    NewAccreditation,
    NewCapability,
    NewConflictOfInterest,
    NewProvider,
    NewQualityRating,
)
from council.services.provider_registry.domain.providers import Provider, is_expired

router = APIRouter(tags=["providers"])

Writer = Annotated[Principal, Depends(require(*COUNCIL_WRITERS))]
# Lifecycle decisions shape the market: they are the integrator's to take.
Decider = Annotated[Principal, Depends(require(Role.INTEGRATOR_ADMIN))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS, Role.PROVIDER))]
# The same rule as a decision's reason: surrounding whitespace does not count.
ReasonQuery = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=2000),
    Query(description="why"),
]


class Credentials(BaseModel):
    """API credentials for the provider to report delivery; the token is shown only now."""

    token_id: str
    token: str


class ProviderView(BaseModel):
    provider_id: UUID
    name: str
    organisation_type: OrganisationType
    status: ProviderStatus
    details: dict[str, Any]
    capabilities: list[dict[str, Any]]
    accreditations: list[dict[str, Any]]
    quality_ratings: list[dict[str, Any]]
    conflicts_of_interest: list[dict[str, Any]]
    incubation: dict[str, Any] | None
    has_credentials: bool
    version: int
    registered_at: datetime
    updated_at: datetime


class DecisionResult(BaseModel):
    provider: ProviderView
    credentials: Credentials | None = None


class Created(BaseModel):
    id: str
    provider: ProviderView


class IncubationStartedView(BaseModel):
    milestone_ids: list[str]
    provider: ProviderView


def registry_of(request: Request) -> ProviderRegistry:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, ProviderRegistry)
    return runtime.app


def view_of(provider: Provider, today: date | None = None) -> ProviderView:
    """A provider as people see it: expired standing is flagged as of `today`."""
    today = today or date.today()
    incubation = None
    if provider.incubation is not None:
        incubation = {
            "support_plan": provider.incubation["support_plan"],
            "milestones": list(provider.incubation["milestones"].values()),
        }
    return ProviderView(
        provider_id=provider.id,
        name=provider.name,
        organisation_type=provider.organisation_type,
        status=provider.status,
        details=provider.details,
        capabilities=list(provider.capabilities.values()),
        accreditations=[
            {**a, "expired": is_expired(a["expires_on"], today)}
            for a in provider.accreditations.values()
        ],
        quality_ratings=sorted(provider.quality_ratings, key=lambda r: r["rated_on"]),
        conflicts_of_interest=provider.conflicts_of_interest,
        incubation=incubation,
        has_credentials=provider.credentials_id is not None,
        version=provider.version,
        registered_at=provider.created_on,
        updated_at=provider.modified_on,
    )


def _own_or_council(principal: Principal, provider_id: UUID) -> None:
    # A provider's token reads its own record only; to others it does not exist.
    if principal.role is Role.PROVIDER and principal.provider_id != provider_id:
        raise NotFound(f"no provider {provider_id}")


def _credentials(issued: IssuedToken) -> Credentials:
    return Credentials(token_id=issued.principal.token_id, token=issued.token)


IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="retrying with the same key registers the provider once"),
]


@router.post("/providers", status_code=status.HTTP_201_CREATED, response_model=ProviderView,
             responses={200: {"model": ProviderView, "description": "a replay: the provider "
                              "this Idempotency-Key registered already"}})
def register_provider(
    body: NewProvider, request: Request, response: Response, principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> ProviderView:
    """Register a provider's application to join the network (status `applied`)."""
    registry = registry_of(request)
    with acting_as(request, principal):
        provider_id, created = registry.register_provider(body, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/providers/{provider_id}"
    return view_of(registry.provider(provider_id))


@router.get("/providers/{provider_id}", response_model=ProviderView)
def get_provider(provider_id: UUID, request: Request, principal: Reader) -> ProviderView:
    """One provider's record as it stands now."""
    _own_or_council(principal, provider_id)
    return view_of(registry_of(request).provider(provider_id))


@router.get("/providers/{provider_id}/history", response_model=list[EventEnvelope])
def provider_history(provider_id: UUID, request: Request, principal: Reader) -> list[EventEnvelope]:
    """Every event of the provider's record, oldest first: what, when, who and why."""
    _own_or_council(principal, provider_id)
    return registry_of(request).history(provider_id)


@router.patch("/providers/{provider_id}", response_model=ProviderView)
def update_provider(
    provider_id: UUID, body: DetailsUpdate, request: Request, principal: Writer
) -> ProviderView:
    """Change some of a provider's details; fields left out keep their values."""
    registry = registry_of(request)
    with acting_as(request, principal):
        registry.update_details(provider_id, body)
    return view_of(registry.provider(provider_id))


def _decide(request: Request, principal: Principal, provider_id: UUID, command: str,
            reason: str) -> DecisionResult:
    registry = registry_of(request)
    with acting_as(request, principal):
        issued = getattr(registry, command)(provider_id, reason)
    return DecisionResult(
        provider=view_of(registry.provider(provider_id)),
        credentials=_credentials(issued) if isinstance(issued, IssuedToken) else None,
    )


@router.post("/providers/{provider_id}/review", response_model=DecisionResult)
def start_review(provider_id: UUID, body: DecisionIn, request: Request,
                 principal: Decider) -> DecisionResult:
    """Start reviewing an application (applied -> under_review)."""
    return _decide(request, principal, provider_id, "start_review", body.reason)


@router.post("/providers/{provider_id}/approve", response_model=DecisionResult)
def approve(provider_id: UUID, body: DecisionIn, request: Request,
            principal: Decider) -> DecisionResult:
    """Approve (onboard) a provider under review; returns its API credentials, shown once."""
    return _decide(request, principal, provider_id, "approve", body.reason)


@router.post("/providers/{provider_id}/reject", response_model=DecisionResult)
def reject(provider_id: UUID, body: DecisionIn, request: Request,
           principal: Decider) -> DecisionResult:
    """Reject an application; its registered identifiers are released for a new one."""
    return _decide(request, principal, provider_id, "reject", body.reason)


@router.post("/providers/{provider_id}/suspend", response_model=DecisionResult)
def suspend(provider_id: UUID, body: DecisionIn, request: Request,
            principal: Decider) -> DecisionResult:
    """Suspend an approved provider; its credentials stop working at once."""
    return _decide(request, principal, provider_id, "suspend", body.reason)


@router.post("/providers/{provider_id}/reinstate", response_model=DecisionResult)
def reinstate(provider_id: UUID, body: DecisionIn, request: Request,
              principal: Decider) -> DecisionResult:
    """Lift a suspension; the provider gets new credentials, shown once."""
    return _decide(request, principal, provider_id, "reinstate", body.reason)


@router.post("/providers/{provider_id}/exit", response_model=DecisionResult)
def exit_provider(provider_id: UUID, body: DecisionIn, request: Request,
                  principal: Decider) -> DecisionResult:
    """Record that a provider left the network; credentials revoked, record kept."""
    return _decide(request, principal, provider_id, "exit", body.reason)


@router.post("/providers/{provider_id}/graduate", response_model=DecisionResult)
def graduate(provider_id: UUID, body: DecisionIn, request: Request,
             principal: Decider) -> DecisionResult:
    """Approve an incubating provider whose milestones are all met; credentials shown once."""
    return _decide(request, principal, provider_id, "graduate", body.reason)


@router.post("/providers/{provider_id}/incubation", response_model=IncubationStartedView)
def incubate(provider_id: UUID, body: IncubationPlan, request: Request,
             principal: Decider) -> IncubationStartedView:
    """Take a provider under review into incubation, with a support plan and milestones."""
    registry = registry_of(request)
    with acting_as(request, principal):
        milestone_ids = registry.incubate(provider_id, body)
    return IncubationStartedView(milestone_ids=milestone_ids,
                                 provider=view_of(registry.provider(provider_id)))


@router.post("/providers/{provider_id}/incubation/milestones/{milestone_id}/met",
             response_model=ProviderView)
def meet_milestone(provider_id: UUID, milestone_id: PathId, body: MilestoneEvidence,
                   request: Request, principal: Writer) -> ProviderView:
    """Record that an incubating provider met a milestone, with the evidence."""
    registry = registry_of(request)
    with acting_as(request, principal):
        registry.meet_milestone(provider_id, milestone_id, body.evidence)
    return view_of(registry.provider(provider_id))


@router.post("/providers/{provider_id}/credentials/rotate", response_model=Credentials)
def rotate_credentials(
    provider_id: UUID, request: Request,
    principal: Annotated[Principal, Depends(require(Role.INTEGRATOR_ADMIN, Role.PROVIDER))],
) -> Credentials:
    """Replace an approved provider's credentials (the provider may rotate its own)."""
    _own_or_council(principal, provider_id)
    with acting_as(request, principal):
        issued = registry_of(request).rotate_credentials(provider_id)
    return _credentials(issued)


@router.post("/providers/{provider_id}/capabilities", status_code=status.HTTP_201_CREATED,
             response_model=Created)
def add_capability(provider_id: UUID, body: NewCapability, request: Request,
                   principal: Writer) -> Created:
    """Record a service category the provider can deliver, where, and how much."""
    registry = registry_of(request)
    with acting_as(request, principal):
        capability_id = registry.add_capability(provider_id, body)
    return Created(id=capability_id, provider=view_of(registry.provider(provider_id)))


@router.delete("/providers/{provider_id}/capabilities/{capability_id}",
               response_model=ProviderView)
def remove_capability(provider_id: UUID, capability_id: PathId, reason: ReasonQuery,
                      request: Request, principal: Writer) -> ProviderView:
    """Remove a capability the provider no longer offers."""
    registry = registry_of(request)
    with acting_as(request, principal):
        registry.remove_capability(provider_id, capability_id, reason)
    return view_of(registry.provider(provider_id))


@router.post("/providers/{provider_id}/accreditations", status_code=status.HTTP_201_CREATED,
             response_model=Created)
def add_accreditation(provider_id: UUID, body: NewAccreditation, request: Request,
                      principal: Writer) -> Created:
    """Record an accreditation, certification, insurance or safeguarding check."""
    registry = registry_of(request)
    with acting_as(request, principal):
        accreditation_id = registry.add_accreditation(provider_id, body)
    return Created(id=accreditation_id, provider=view_of(registry.provider(provider_id)))


@router.delete("/providers/{provider_id}/accreditations/{accreditation_id}",
               response_model=ProviderView)
def remove_accreditation(provider_id: UUID, accreditation_id: PathId, reason: ReasonQuery,
                         request: Request, principal: Writer) -> ProviderView:
    """Withdraw an accreditation (or one recorded in error)."""
    registry = registry_of(request)
    with acting_as(request, principal):
        registry.remove_accreditation(provider_id, accreditation_id, reason)
    return view_of(registry.provider(provider_id))


@router.post("/providers/{provider_id}/quality-ratings", status_code=status.HTTP_201_CREATED,
             response_model=Created)
def record_quality_rating(provider_id: UUID, body: NewQualityRating, request: Request,
                          principal: Writer) -> Created:
    """Record a dated quality rating (e.g. CQC: Good, rated on 2026-03-01)."""
    registry = registry_of(request)
    with acting_as(request, principal):
        rating_id = registry.record_quality_rating(provider_id, body)
    return Created(id=rating_id, provider=view_of(registry.provider(provider_id)))


@router.post("/providers/{provider_id}/conflicts-of-interest",
             status_code=status.HTTP_201_CREATED, response_model=Created)
def declare_conflict_of_interest(provider_id: UUID, body: NewConflictOfInterest,
                                 request: Request, principal: Writer) -> Created:
    """Record a declared conflict of interest bearing on decisions about this provider."""
    registry = registry_of(request)
    with acting_as(request, principal):
        declaration_id = registry.declare_conflict_of_interest(provider_id, body)
    return Created(id=declaration_id, provider=view_of(registry.provider(provider_id)))


@router.get("/taxonomy")
def service_taxonomy(_: Reader) -> dict[str, Any]:
    """The service categories capabilities are recorded against."""
    tax = taxonomy()
    return {
        "id": tax.id, "name": tax.name, "description": tax.description, "version": tax.version,
        "terms": [t.__dict__ for t in tax.terms.values()],
    }
