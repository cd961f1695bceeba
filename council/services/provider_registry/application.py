"""The registry's service layer: load a provider, run one command on it, save what happened.

Registered identifiers are held by IdentifierClaim aggregates saved in the same transaction as
the provider, so two providers can never be registered under one Companies House or charity
number. API credentials are issued from the shared token store around the approving events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import resolve_topic

from council.kernel.envelope import EventEnvelope
from council.kernel.errors import ConcurrentChange, DomainRuleBroken, InvalidInput, NotFound
from council.platform.eventstore import CouncilApplication
from council.platform.identity import IssuedToken, Role
from council.services.provider_registry.domain.commands import (
    DetailsUpdate,
    IncubationPlan,
    NewAccreditation,
    NewCapability,
    NewConflictOfInterest,
    NewProvider,
    NewQualityRating,
    details_of,
)
from council.services.provider_registry.domain.providers import (
    CLOSED,
    IdentifierClaim,
    Provider,
    check_profile,
)

IDENTIFIER_NAMES = {
    "companies_house": "Companies House number",
    "charity_number": "charity number",
    "ukprn": "UK provider reference number",
}


def provider_id_for(idempotency_key: str) -> UUID:
    """The same idempotency key always names the same provider, so a retry cannot create two."""
    return uuid5(NAMESPACE_URL, f"council:provider:{idempotency_key}")


def claim_id_for(scheme: str, value: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"council:identifier:{scheme}:{value}")


def short_id() -> str:
    return uuid4().hex[:12]


class Credentials(Protocol):
    """Where provider API tokens are kept (the shared token store)."""

    def create(self, role: Role, label: str, provider_id: UUID | None = None) -> IssuedToken: ...
    def revoke(self, token_id: str) -> bool: ...


@dataclass
class ImportReport:
    accepted: list[tuple[int, UUID]] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # row, field, reason


class ProviderRegistry(CouncilApplication):
    service = "provider_registry"
    published: ClassVar[dict[type, str]] = {
        Provider.Registered: "ProviderRegistered",
        Provider.ReviewStarted: "ProviderReviewStarted",
        Provider.Approved: "ProviderApproved",
        Provider.Rejected: "ProviderRejected",
        Provider.Suspended: "ProviderSuspended",
        Provider.Reinstated: "ProviderReinstated",
        Provider.Exited: "ProviderExited",
        Provider.DetailsUpdated: "ProviderDetailsUpdated",
        Provider.CapabilityAdded: "ProviderCapabilityAdded",
        Provider.CapabilityRemoved: "ProviderCapabilityRemoved",
        Provider.AccreditationAdded: "AccreditationAdded",
        Provider.AccreditationRemoved: "AccreditationRemoved",
        Provider.QualityRated: "QualityRatingRecorded",
        Provider.ConflictDeclared: "ConflictOfInterestDeclared",
        Provider.IncubationStarted: "IncubationStarted",
        Provider.MilestoneMet: "IncubationMilestoneMet",
        Provider.Graduated: "ProviderGraduated",
        Provider.CredentialsRotated: "ProviderCredentialsRotated",
    }
    # Bookkeeping for uniqueness; not part of the integration contract.
    unpublished: ClassVar[frozenset[type]] = frozenset(
        {IdentifierClaim.Claimed, IdentifierClaim.Reclaimed, IdentifierClaim.Released}
    )
    credentials: Credentials | None = None

    def event_data(self, event_class: type, state: dict[str, Any]) -> dict[str, Any]:
        if event_class is Provider.Registered:
            # The aggregate keeps an applicant's details together; the contract lists them.
            details = state.pop("details", {}) or {}
            return {**state, **details}
        return state

    # ------------------------------------------------------------------ reading

    def provider(self, provider_id: UUID) -> Provider:
        try:
            found: Provider = self.repository.get(provider_id)
        except AggregateNotFoundError:
            raise NotFound(f"no provider {provider_id}") from None
        if not isinstance(found, Provider):  # an identifier claim shares the store
            raise NotFound(f"no provider {provider_id}")
        return found

    def history(self, provider_id: UUID) -> list[EventEnvelope]:
        """Every event of one provider, oldest first, with who and when."""
        stored = self.recorder.select_events(provider_id)
        if not stored or not _starts_a_provider(stored[0]):
            raise NotFound(f"no provider {provider_id}")
        return [self.to_envelope(s) for s in stored]

    # ------------------------------------------------------------------ registration

    def register_provider(
        self, new: NewProvider, idempotency_key: str | None = None
    ) -> tuple[UUID, bool]:
        """Register a provider; returns its id and whether this call created it."""
        provider_id = provider_id_for(idempotency_key) if idempotency_key else uuid4()
        provider, claims = self._applicant(provider_id, new)
        try:
            self.save(provider, *claims)
        except IntegrityError:
            if self._exists(provider_id):
                self._same_application(provider_id, new, idempotency_key)
                return provider_id, False
            self._applicant(provider_id, new)  # names the identifier someone took meanwhile
            raise ConcurrentChange("registration clashed with another; retry") from None
        return provider_id, True

    def register_many(self, rows: Sequence[tuple[int, NewProvider]]) -> ImportReport:
        """Register many applicants: every row is either stored whole or reported with the
        reason; rows are saved a hundred at a time, each hundred in one transaction."""
        report = ImportReport()
        pending: list[tuple[int, Provider, list[IdentifierClaim]]] = []
        taken: dict[UUID, int] = {}
        for row, new in rows:
            try:
                provider, claims = self._applicant(uuid4(), new)
                for claim in claims:
                    if claim.id in taken:
                        raise InvalidInput(
                            f"identifiers.{claim.scheme}",
                            f"{IDENTIFIER_NAMES[claim.scheme]} {claim.value} is also on row "
                            f"{taken[claim.id]} of this file",
                        )
            except (DomainRuleBroken, InvalidInput) as exc:
                report.rejected.append((row, getattr(exc, "field", ""), _message(exc)))
                continue
            taken.update({claim.id: row for claim in claims})
            pending.append((row, provider, claims))
        for start in range(0, len(pending), 100):
            self._save_rows(pending[start:start + 100], report)
        report.accepted.sort()
        report.rejected.sort()
        return report

    def _save_rows(
        self, rows: list[tuple[int, Provider, list[IdentifierClaim]]], report: ImportReport
    ) -> None:
        try:
            self.save(*(agg for _, provider, claims in rows for agg in (provider, *claims)))
            report.accepted.extend((row, provider.id) for row, provider, _ in rows)
        except IntegrityError:
            # Someone registered one of these identifiers meanwhile: find which row, one by one.
            for row, provider, claims in rows:
                try:
                    self.save(provider, *claims)
                    report.accepted.append((row, provider.id))
                except IntegrityError:
                    report.rejected.append(
                        (row, "identifiers", "an identifier was registered meanwhile")
                    )

    def _applicant(
        self, provider_id: UUID, new: NewProvider
    ) -> tuple[Provider, list[IdentifierClaim]]:
        details = new.details()
        members = [str(m) for m in new.members or []]
        check_profile(new.organisation_type, details.get("sme_size"), members)
        self._check_members(provider_id, members)
        provider = Provider(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=provider_id, name=new.name, organisation_type=new.organisation_type.value,
            details=details,
        )
        claims = self._claim(provider_id, details.get("identifiers") or {})
        return provider, claims

    def _same_application(
        self, provider_id: UUID, new: NewProvider, idempotency_key: str | None
    ) -> None:
        # Compared with the application as first registered: later changes do not count.
        original: Provider = self.repository.get(provider_id, version=1)
        if (original.name, original.organisation_type, original.details) != (
            new.name, new.organisation_type, new.details()
        ):
            raise DomainRuleBroken(
                f"Idempotency-Key {idempotency_key!r} was already used to register a "
                "different provider"
            )

    def _check_members(self, provider_id: UUID, members: list[str]) -> None:
        for member in members:
            if member == str(provider_id) or not self._is_provider(UUID(member)):
                raise InvalidInput("members", f"{member} is not a registered provider")
            status = self.provider(UUID(member)).status
            if status in CLOSED:
                raise InvalidInput("members", f"member {member} is {status.value}")

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def _is_provider(self, aggregate_id: UUID) -> bool:
        first = self.recorder.select_events(aggregate_id, limit=1)
        return bool(first) and _starts_a_provider(first[0])

    # ------------------------------------------------------------------ identifiers

    def _claim(self, provider_id: UUID, identifiers: dict[str, str]) -> list[IdentifierClaim]:
        """Claims on each identifier for `provider_id`; refused if another provider holds one."""
        claims = []
        for scheme, value in sorted(identifiers.items()):
            claim_id = claim_id_for(scheme, value)
            try:
                claim: IdentifierClaim = self.repository.get(claim_id)
            except AggregateNotFoundError:
                claims.append(IdentifierClaim(  # type: ignore[call-arg]
                    id=claim_id, scheme=scheme, value=value, provider_id=provider_id))
                continue
            if claim.provider_id == provider_id:
                continue
            if claim.provider_id is not None:
                raise DomainRuleBroken(
                    f"{IDENTIFIER_NAMES[scheme]} {value} is already registered to provider "
                    f"{claim.provider_id}"
                )
            claim.reclaim(provider_id)
            claims.append(claim)
        return claims

    def _release(self, provider_id: UUID, identifiers: dict[str, str]) -> list[IdentifierClaim]:
        released = []
        for scheme, value in sorted(identifiers.items()):
            try:
                claim: IdentifierClaim = self.repository.get(claim_id_for(scheme, value))
            except AggregateNotFoundError:
                continue
            if claim.provider_id == provider_id:
                claim.release()
                released.append(claim)
        return released

    # ------------------------------------------------------------------ commands

    @contextmanager
    def _changing(self, provider_id: UUID) -> Iterator[tuple[Provider, list[Any]]]:
        """Load a provider, let the block change it (and add other aggregates), save it all
        in one transaction. A rule broken inside saves nothing."""
        provider = self.provider(provider_id)
        others: list[Any] = []
        yield provider, others
        try:
            self.save(provider, *others)
        except IntegrityError:
            raise ConcurrentChange(
                f"provider {provider_id} was changed by someone else meanwhile; retry"
            ) from None

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            raise RuntimeError("the registry has no credential store attached")
        return self.credentials

    def _issuing(self, provider_id: UUID, command: str, reason: str) -> IssuedToken:
        """Run an approving command with fresh credentials; revoke them if the command is
        refused or its events cannot be saved, so no token outlives a decision not taken."""
        issued: IssuedToken | None = None
        try:
            with self._changing(provider_id) as (provider, _):
                provider.check_transition(command)
                issued = self._credentials().create(Role.PROVIDER, provider.name, provider.id)
                getattr(provider, command)(reason, issued.principal.token_id)
        except BaseException:
            if issued is not None:
                self._credentials().revoke(issued.principal.token_id)
            raise
        return issued

    def start_review(self, provider_id: UUID, reason: str) -> None:
        with self._changing(provider_id) as (provider, _):
            provider.start_review(reason)

    def approve(self, provider_id: UUID, reason: str) -> IssuedToken:
        return self._issuing(provider_id, "approve", reason)

    def reinstate(self, provider_id: UUID, reason: str) -> IssuedToken:
        return self._issuing(provider_id, "reinstate", reason)

    def graduate(self, provider_id: UUID, reason: str) -> IssuedToken:
        return self._issuing(provider_id, "graduate", reason)

    def reject(self, provider_id: UUID, reason: str) -> None:
        with self._changing(provider_id) as (provider, others):
            provider.reject(reason)
            others.extend(self._release(provider.id, provider.details.get("identifiers") or {}))

    def suspend(self, provider_id: UUID, reason: str) -> None:
        self._revoking(provider_id, lambda p: p.suspend(reason), "suspend")

    def exit(self, provider_id: UUID, reason: str) -> None:
        self._revoking(provider_id, lambda p: p.exit(reason), "exit")

    def _revoking(self, provider_id: UUID, command: Callable[[Provider], None], name: str) -> None:
        # Revoke first: if saving then fails, the provider is locked out, never left in.
        with self._changing(provider_id) as (provider, others):
            provider.check_transition(name)
            if provider.credentials_id:
                self._credentials().revoke(provider.credentials_id)
            command(provider)
            if name == "exit":
                others.extend(
                    self._release(provider.id, provider.details.get("identifiers") or {})
                )

    def rotate_credentials(self, provider_id: UUID) -> IssuedToken:
        issued: IssuedToken | None = None
        try:
            with self._changing(provider_id) as (provider, _):
                provider.require_credentialed()
                issued = self._credentials().create(Role.PROVIDER, provider.name, provider.id)
                revoked = provider.rotate_credentials(issued.principal.token_id)
        except BaseException:
            if issued is not None:
                self._credentials().revoke(issued.principal.token_id)
            raise
        # The old token goes only once the new one is recorded: a failed rotation locks no
        # provider out.
        if revoked:
            self._credentials().revoke(revoked)
        return issued

    def incubate(self, provider_id: UUID, plan: IncubationPlan) -> list[str]:
        milestones: list[dict[str, Any]] = [
            {"milestone_id": short_id(), "title": m.title,
             "due_on": m.due_on.isoformat() if m.due_on else None}
            for m in plan.milestones
        ]
        with self._changing(provider_id) as (provider, _):
            provider.incubate(plan.support_plan, milestones, plan.reason)
        return [m["milestone_id"] for m in milestones]

    def meet_milestone(self, provider_id: UUID, milestone_id: str, evidence: str) -> None:
        with self._changing(provider_id) as (provider, _):
            provider.meet_milestone(milestone_id, evidence)

    def update_details(self, provider_id: UUID, update: DetailsUpdate) -> None:
        changes = details_of(update)
        with self._changing(provider_id) as (provider, others):
            if "members" in changes:
                self._check_members(provider.id, changes["members"] or [])
            before = provider.details.get("identifiers") or {}
            provider.update_details(changes)
            after = provider.details.get("identifiers") or {}
            if before != after:
                gone = {k: v for k, v in before.items() if after.get(k) != v}
                others.extend(self._release(provider.id, gone))
                others.extend(self._claim(provider.id, after))

    def add_capability(self, provider_id: UUID, new: NewCapability) -> str:
        capability_id = short_id()
        capacity = new.capacity.model_dump() if new.capacity else None
        with self._changing(provider_id) as (provider, _):
            provider.add_capability(capability_id, new.category, new.description,
                                    list(new.areas), capacity)
        return capability_id

    def remove_capability(self, provider_id: UUID, capability_id: str, reason: str) -> None:
        with self._changing(provider_id) as (provider, _):
            provider.remove_capability(capability_id, reason)

    def add_accreditation(self, provider_id: UUID, new: NewAccreditation) -> str:
        accreditation_id = short_id()
        with self._changing(provider_id) as (provider, _):
            provider.add_accreditation(
                accreditation_id, new.kind, new.name, new.issuer, new.reference,
                new.valid_from, new.expires_on, new.cover_gbp,
            )
        return accreditation_id

    def remove_accreditation(self, provider_id: UUID, accreditation_id: str, reason: str) -> None:
        with self._changing(provider_id) as (provider, _):
            provider.remove_accreditation(accreditation_id, reason)

    def record_quality_rating(self, provider_id: UUID, new: NewQualityRating) -> str:
        rating_id = short_id()
        with self._changing(provider_id) as (provider, _):
            provider.record_quality_rating(rating_id, new.scheme, new.rating, new.rated_on,
                                           new.reference)
        return rating_id

    def declare_conflict_of_interest(self, provider_id: UUID, new: NewConflictOfInterest) -> str:
        declaration_id = short_id()
        with self._changing(provider_id) as (provider, _):
            provider.declare_conflict_of_interest(declaration_id, new.declared_by, new.interest,
                                                  new.declared_on)
        return declaration_id


def _starts_a_provider(stored: StoredEvent) -> bool:
    """Whether a stream's first event registers a provider (not, say, an identifier claim)."""
    return resolve_topic(stored.topic) is Provider.Registered


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, InvalidInput) else str(exc)

