"""The provider, as the council's registry knows it: who it is, what it can do, its standing,
and where it stands in the onboarding lifecycle. No I/O here.

Commands (public methods) check the rules and refuse with DomainRuleBroken, changing nothing;
the private `@event` methods record what happened and are replayed to rebuild the aggregate.
Dates travel in events as ISO strings, so stored events stay plain JSON.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.contracts.provider_registry import (
    OrganisationType,
    ProviderStatus,
    SizeBand,
    StandingKind,
)
from council.kernel.errors import DomainRuleBroken, InvalidInput

S = ProviderStatus

# Which lifecycle commands are allowed from which status, and where they lead.
TRANSITIONS: dict[str, tuple[frozenset[ProviderStatus], ProviderStatus]] = {
    "start_review": (frozenset({S.APPLIED}), S.UNDER_REVIEW),
    "approve": (frozenset({S.UNDER_REVIEW}), S.APPROVED),
    "reject": (frozenset({S.APPLIED, S.UNDER_REVIEW, S.INCUBATING}), S.REJECTED),
    "incubate": (frozenset({S.UNDER_REVIEW}), S.INCUBATING),
    "graduate": (frozenset({S.INCUBATING}), S.APPROVED),
    "suspend": (frozenset({S.APPROVED}), S.SUSPENDED),
    "reinstate": (frozenset({S.SUSPENDED}), S.APPROVED),
    "exit": (frozenset({S.APPROVED, S.SUSPENDED, S.INCUBATING}), S.EXITED),
}
CLOSED = frozenset({S.EXITED, S.REJECTED})  # the record is kept, but no longer changes
CREDENTIALED = frozenset({S.APPROVED})  # only approved providers may hold API credentials

# UK government's SME definition for procurement: staff headcount and annual turnover ceilings.
SIZE_BANDS: tuple[tuple[SizeBand, int, int], ...] = (
    (SizeBand.MICRO, 10, 2_000_000),
    (SizeBand.SMALL, 50, 10_000_000),
    (SizeBand.MEDIUM, 250, 50_000_000),
)


def size_band(headcount: int, turnover_gbp: int) -> SizeBand | None:
    """The smallest SME band whose ceilings (fewer staff than, turnover up to) both hold;
    None for an organisation too large to be an SME."""
    for band, staff_below, turnover_up_to in SIZE_BANDS:
        if headcount < staff_below and turnover_gbp <= turnover_up_to:
            return band
    return None


def check_profile(
    organisation_type: OrganisationType, sme_size: dict[str, Any] | None, members: list[str]
) -> None:
    """Rules that tie a provider's details to its organisation type (each names its field)."""
    if organisation_type is OrganisationType.SME:
        if sme_size is None:
            raise InvalidInput("sme_size", "an SME must give its headcount and turnover")
        if size_band(sme_size["headcount"], sme_size["turnover_gbp"]) is None:
            raise InvalidInput(
                "sme_size",
                "headcount and turnover are over the SME ceilings (fewer than 250 staff, "
                "turnover up to £50m): register as large_private",
            )
    elif sme_size is not None:
        raise InvalidInput("sme_size", "applies only to organisation_type sme")
    if organisation_type is OrganisationType.PARTNERSHIP:
        if len(set(members)) < 2:
            raise InvalidInput("members", "a partnership needs at least two distinct members")
    elif members:
        raise InvalidInput("members", "only a partnership has member providers")


class Provider(CouncilAggregate):
    """A local organisation that delivers (or wants to deliver) public services."""

    id: UUID  # chosen by the application, so retried commands name the same aggregate

    class Registered(CouncilAggregate.Created):
        name: str
        organisation_type: str
        details: dict[str, Any]

        # v1 (the foundation slice) had no details.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["details"] = {}

    @event(Registered)
    def __init__(self, name: str, organisation_type: str, details: dict[str, Any]) -> None:
        self.name = name
        # Held as the enum; stored as its value so fresh and replayed aggregates agree.
        self.organisation_type = OrganisationType(organisation_type)
        self.details: dict[str, Any] = dict(details)
        self.status = S.APPLIED
        self.capabilities: dict[str, dict[str, Any]] = {}
        self.accreditations: dict[str, dict[str, Any]] = {}
        self.quality_ratings: list[dict[str, Any]] = []
        self.conflicts_of_interest: list[dict[str, Any]] = []
        self.incubation: dict[str, Any] | None = None
        self.credentials_id: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def check_transition(self, command: str) -> None:
        """Refuse, naming the status, unless `command` is allowed from where the provider is."""
        allowed, _ = TRANSITIONS[command]
        if self.status not in allowed:
            raise DomainRuleBroken(
                f"cannot {command.replace('_', ' ')} a provider that is {self.status.value}; "
                f"allowed from: {', '.join(sorted(s.value for s in allowed))}"
            )

    class ReviewStarted(CouncilAggregate.Event):
        reason: str

    def start_review(self, reason: str) -> None:
        self.check_transition("start_review")
        self._review_started(reason)

    @event(ReviewStarted)
    def _review_started(self, reason: str) -> None:
        self.status = S.UNDER_REVIEW

    class Approved(CouncilAggregate.Event):
        reason: str
        credentials_id: str

    def approve(self, reason: str, credentials_id: str) -> None:
        self.check_transition("approve")
        self._approved(reason, credentials_id)

    @event(Approved)
    def _approved(self, reason: str, credentials_id: str) -> None:
        self.status = S.APPROVED
        self.credentials_id = credentials_id

    class Rejected(CouncilAggregate.Event):
        reason: str

    def reject(self, reason: str) -> None:
        self.check_transition("reject")
        self._rejected(reason)

    @event(Rejected)
    def _rejected(self, reason: str) -> None:
        self.status = S.REJECTED

    class Suspended(CouncilAggregate.Event):
        reason: str
        revoked_credentials_id: str | None

    def suspend(self, reason: str) -> None:
        self.check_transition("suspend")
        self._suspended(reason, self.credentials_id)

    @event(Suspended)
    def _suspended(self, reason: str, revoked_credentials_id: str | None) -> None:
        self.status = S.SUSPENDED
        self.credentials_id = None

    class Reinstated(CouncilAggregate.Event):
        reason: str
        credentials_id: str

    def reinstate(self, reason: str, credentials_id: str) -> None:
        self.check_transition("reinstate")
        self._reinstated(reason, credentials_id)

    @event(Reinstated)
    def _reinstated(self, reason: str, credentials_id: str) -> None:
        self.status = S.APPROVED
        self.credentials_id = credentials_id

    class Exited(CouncilAggregate.Event):
        reason: str
        revoked_credentials_id: str | None

    def exit(self, reason: str) -> None:
        self.check_transition("exit")
        self._exited(reason, self.credentials_id)

    @event(Exited)
    def _exited(self, reason: str, revoked_credentials_id: str | None) -> None:
        self.status = S.EXITED
        self.credentials_id = None

    # ------------------------------------------------------------------ incubation

    class IncubationStarted(CouncilAggregate.Event):
        support_plan: str
        milestones: list[dict[str, Any]]
        reason: str

    def incubate(self, support_plan: str, milestones: list[dict[str, Any]], reason: str) -> None:
        self.check_transition("incubate")
        if not milestones:
            raise DomainRuleBroken("an incubation plan needs at least one milestone")
        ids = [m["milestone_id"] for m in milestones]
        if len(set(ids)) != len(ids):
            raise DomainRuleBroken("milestone ids must be distinct")
        self._incubation_started(support_plan, milestones, reason)

    @event(IncubationStarted)
    def _incubation_started(
        self, support_plan: str, milestones: list[dict[str, Any]], reason: str
    ) -> None:
        self.status = S.INCUBATING
        self.incubation = {
            "support_plan": support_plan,
            "milestones": {
                m["milestone_id"]: {**m, "met": False, "evidence": None} for m in milestones
            },
        }

    class MilestoneMet(CouncilAggregate.Event):
        milestone_id: str
        evidence: str

    def meet_milestone(self, milestone_id: str, evidence: str) -> None:
        if self.status is not S.INCUBATING or self.incubation is None:
            raise DomainRuleBroken(f"a provider that is {self.status.value} is not incubating")
        milestone = self.incubation["milestones"].get(milestone_id)
        if milestone is None:
            raise DomainRuleBroken(f"no milestone {milestone_id} in the incubation plan")
        if milestone["met"]:
            raise DomainRuleBroken(f"milestone {milestone_id} was already met")
        self._milestone_met(milestone_id, evidence)

    @event(MilestoneMet)
    def _milestone_met(self, milestone_id: str, evidence: str) -> None:
        assert self.incubation is not None
        self.incubation["milestones"][milestone_id].update(met=True, evidence=evidence)

    class Graduated(CouncilAggregate.Event):
        reason: str
        credentials_id: str

    def graduate(self, reason: str, credentials_id: str) -> None:
        self.check_transition("graduate")
        unmet = [m["title"] for m in self.unmet_milestones()]
        if unmet:
            raise DomainRuleBroken(f"milestones not yet met: {'; '.join(unmet)}")
        self._graduated(reason, credentials_id)

    @event(Graduated)
    def _graduated(self, reason: str, credentials_id: str) -> None:
        self.status = S.APPROVED
        self.credentials_id = credentials_id

    def unmet_milestones(self) -> list[dict[str, Any]]:
        if self.incubation is None:
            return []
        return [m for m in self.incubation["milestones"].values() if not m["met"]]

    # ------------------------------------------------------------------ credentials

    class CredentialsRotated(CouncilAggregate.Event):
        credentials_id: str
        revoked_credentials_id: str | None

    def require_credentialed(self) -> None:
        if self.status not in CREDENTIALED:
            raise DomainRuleBroken(
                f"only an approved provider holds credentials; this one is {self.status.value}"
            )

    def rotate_credentials(self, credentials_id: str) -> str | None:
        """Replace the provider's credentials; returns the id of the ones revoked."""
        self.require_credentialed()
        revoked = self.credentials_id
        self._credentials_rotated(credentials_id, revoked)
        return revoked

    @event(CredentialsRotated)
    def _credentials_rotated(self, credentials_id: str, revoked_credentials_id: str | None) -> None:
        self.credentials_id = credentials_id

    # ------------------------------------------------------------------ details

    def _open(self) -> None:
        if self.status in CLOSED:
            raise DomainRuleBroken(
                f"the record of a provider that is {self.status.value} is closed"
            )

    class DetailsUpdated(CouncilAggregate.Event):
        changes: dict[str, Any]

    def update_details(self, changes: dict[str, Any]) -> None:
        """Apply the fields given; refuse when nothing would change."""
        self._open()
        changed = {
            k: v for k, v in changes.items()
            if (self.name if k == "name" else self.details.get(k)) != v
        }
        if not changed:
            raise DomainRuleBroken("nothing to update: every field given already has that value")
        merged = {**self.details, **{k: v for k, v in changed.items() if k != "name"}}
        check_profile(self.organisation_type, merged.get("sme_size"), merged.get("members") or [])
        self._details_updated(changed)

    @event(DetailsUpdated)
    def _details_updated(self, changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if key == "name":
                self.name = value
            else:
                self.details[key] = value

    # ------------------------------------------------------------------ capabilities

    class CapabilityAdded(CouncilAggregate.Event):
        capability_id: str
        category: str
        description: str | None
        areas: list[str]
        capacity: dict[str, Any] | None

    def add_capability(
        self, capability_id: str, category: str, description: str | None, areas: list[str],
        capacity: dict[str, Any] | None,
    ) -> None:
        self._open()
        if any(c["category"] == category for c in self.capabilities.values()):
            raise DomainRuleBroken(f"the provider already has a capability in {category}")
        self._capability_added(capability_id, category, description, areas, capacity)

    @event(CapabilityAdded)
    def _capability_added(
        self, capability_id: str, category: str, description: str | None, areas: list[str],
        capacity: dict[str, Any] | None,
    ) -> None:
        self.capabilities[capability_id] = {
            "capability_id": capability_id, "category": category, "description": description,
            "areas": list(areas), "capacity": capacity,
        }

    class CapabilityRemoved(CouncilAggregate.Event):
        capability_id: str
        reason: str

    def remove_capability(self, capability_id: str, reason: str) -> None:
        self._open()
        if capability_id not in self.capabilities:
            raise DomainRuleBroken(f"the provider has no capability {capability_id}")
        self._capability_removed(capability_id, reason)

    @event(CapabilityRemoved)
    def _capability_removed(self, capability_id: str, reason: str) -> None:
        del self.capabilities[capability_id]

    # ------------------------------------------------------------------ standing

    class AccreditationAdded(CouncilAggregate.Event):
        accreditation_id: str
        kind: str
        name: str
        issuer: str | None
        reference: str | None
        valid_from: str | None
        expires_on: str | None
        cover_gbp: int | None

    def add_accreditation(
        self, accreditation_id: str, kind: StandingKind, name: str, issuer: str | None = None,
        reference: str | None = None, valid_from: date | None = None,
        expires_on: date | None = None, cover_gbp: int | None = None,
    ) -> None:
        self._open()
        if valid_from and expires_on and expires_on < valid_from:
            raise DomainRuleBroken("an accreditation cannot expire before it is valid")
        self._accreditation_added(
            accreditation_id, kind.value, name, issuer, reference,
            valid_from.isoformat() if valid_from else None,
            expires_on.isoformat() if expires_on else None, cover_gbp,
        )

    @event(AccreditationAdded)
    def _accreditation_added(
        self, accreditation_id: str, kind: str, name: str, issuer: str | None,
        reference: str | None, valid_from: str | None, expires_on: str | None,
        cover_gbp: int | None,
    ) -> None:
        self.accreditations[accreditation_id] = {
            "accreditation_id": accreditation_id, "kind": kind, "name": name, "issuer": issuer,
            "reference": reference, "valid_from": valid_from, "expires_on": expires_on,
            "cover_gbp": cover_gbp,
        }

    class AccreditationRemoved(CouncilAggregate.Event):
        accreditation_id: str
        reason: str

    def remove_accreditation(self, accreditation_id: str, reason: str) -> None:
        self._open()
        if accreditation_id not in self.accreditations:
            raise DomainRuleBroken(f"the provider has no accreditation {accreditation_id}")
        self._accreditation_removed(accreditation_id, reason)

    @event(AccreditationRemoved)
    def _accreditation_removed(self, accreditation_id: str, reason: str) -> None:
        del self.accreditations[accreditation_id]

    class QualityRated(CouncilAggregate.Event):
        rating_id: str
        scheme: str
        rating: str
        rated_on: str
        reference: str | None

    def record_quality_rating(
        self, rating_id: str, scheme: str, rating: str, rated_on: date, reference: str | None
    ) -> None:
        self._open()
        self._quality_rated(rating_id, scheme, rating, rated_on.isoformat(), reference)

    @event(QualityRated)
    def _quality_rated(
        self, rating_id: str, scheme: str, rating: str, rated_on: str, reference: str | None
    ) -> None:
        self.quality_ratings.append({
            "rating_id": rating_id, "scheme": scheme, "rating": rating, "rated_on": rated_on,
            "reference": reference,
        })

    class ConflictDeclared(CouncilAggregate.Event):
        declaration_id: str
        declared_by: str
        interest: str
        declared_on: str

    def declare_conflict_of_interest(
        self, declaration_id: str, declared_by: str, interest: str, declared_on: date
    ) -> None:
        # Declarations stay possible on closed records: an interest may surface afterwards.
        self._conflict_declared(declaration_id, declared_by, interest, declared_on.isoformat())

    @event(ConflictDeclared)
    def _conflict_declared(
        self, declaration_id: str, declared_by: str, interest: str, declared_on: str
    ) -> None:
        self.conflicts_of_interest.append({
            "declaration_id": declaration_id, "declared_by": declared_by, "interest": interest,
            "declared_on": declared_on,
        })

    # ------------------------------------------------------------------ queries

    def current_rating(self, scheme: str) -> dict[str, Any] | None:
        """The most recent rating under `scheme` (by the date it was given)."""
        rated = [r for r in self.quality_ratings if r["scheme"] == scheme]
        return max(rated, key=lambda r: r["rated_on"]) if rated else None


def is_expired(expires_on: str | None, on: date) -> bool:
    return expires_on is not None and date.fromisoformat(expires_on) < on


class IdentifierClaim(CouncilAggregate):
    """Who holds a registered identifier (a Companies House number, say). Saved together with
    the provider, so two providers can never hold the same identifier: the second save fails."""

    id: UUID

    class Claimed(CouncilAggregate.Created):
        scheme: str
        value: str
        provider_id: UUID

    @event(Claimed)
    def __init__(self, scheme: str, value: str, provider_id: UUID) -> None:
        self.scheme = scheme
        self.value = value
        self.provider_id: UUID | None = provider_id

    class Reclaimed(CouncilAggregate.Event):
        provider_id: UUID

    @event(Reclaimed)
    def reclaim(self, provider_id: UUID) -> None:
        self.provider_id = provider_id

    class Released(CouncilAggregate.Event):
        pass

    @event(Released)
    def release(self) -> None:
        self.provider_id = None
