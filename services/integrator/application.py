"""The integrator's service layer: commissioning needs, decisions, agreements and lessons,
recorded in its own event store. Whether a provider is approved is read from the network
projection (the registry's events, as the integrator has applied them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.integrator.commands import (
    Activation,
    Closure,
    Ending,
    MarketEngagement,
    NewAgreement,
    NewBusinessCase,
    NewContribution,
    NewDecision,
    NewExtension,
    NewLesson,
    NewNeed,
    NewSpend,
    NewVariation,
    OptionsAppraisal,
    SignInFailure,
    StageStep,
    dump,
)
from services.integrator.domain.agreements import Agreement, check_terms
from services.integrator.domain.audit import AuditRead, SignInAttempt
from services.integrator.domain.lessons import Lesson
from services.integrator.domain.needs import Need
from shared.contracts.provider_registry import ProviderStatus
from shared.errors import ConcurrentChange, DomainRuleBroken, InvalidInput, NotFound
from shared.eventstore import CouncilApplication

A = TypeVar("A", bound=Aggregate)
ProviderStatusLookup = Callable[[UUID], ProviderStatus | None]


def short_id() -> str:
    return uuid4().hex[:12]


def agreement_id_for(need_id: UUID, award_id: str) -> UUID:
    """One agreement per award: a second attempt names the same aggregate and is refused."""
    return uuid5(NAMESPACE_URL, f"council:agreement:{need_id}:{award_id}")


def _split(total: Decimal, provider_ids: list[UUID]) -> list[dict[str, Any]]:
    """Share `total` equally; the pennies left over go to the first provider."""
    each = (total / len(provider_ids)).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    parties: list[dict[str, Any]] = [{"provider_id": p, "allocation": each} for p in provider_ids]
    parties[0]["allocation"] += total - each * len(provider_ids)
    return parties


class Integrator(CouncilApplication):
    service = "integrator"
    published: ClassVar[dict[type, str]] = {
        Need.Defined: "NeedDefined",
        Need.ContributionPledged: "NeedContributionPledged",
        Need.OptionsAppraised: "OptionsAppraised",
        Need.MarketEngaged: "MarketEngaged",
        Need.Decided: "CommissioningDecided",
        Need.StageReached: "NeedStageReached",
        Need.Closed: "NeedClosed",
        Agreement.Drafted: "AgreementDrafted",
        Agreement.Activated: "AgreementActivated",
        Agreement.Varied: "AgreementVaried",
        Agreement.Extended: "AgreementExtended",
        Agreement.BusinessCaseProposed: "BusinessCaseProposed",
        Agreement.BusinessCaseApproved: "BusinessCaseApproved",
        Agreement.BusinessCaseRejected: "BusinessCaseRejected",
        Agreement.SpendRecorded: "SpendRecorded",
        Agreement.Ended: "AgreementEnded",
        Lesson.Recorded: "LessonRecorded",
        AuditRead.Started: "AuditReadStarted",
        AuditRead.Finished: "AuditReadFinished",
        SignInAttempt.Failed: "SignInFailed",
        SignInAttempt.Throttled: "SignInThrottled",
    }
    provider_status: ProviderStatusLookup | None = None

    # ------------------------------------------------------------------ reading

    def _get(self, kind: type[A], aggregate_id: UUID, what: str) -> A:
        try:
            found: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {what} {aggregate_id}") from None
        if not isinstance(found, kind):
            raise NotFound(f"no {what} {aggregate_id}")
        return found

    def need(self, need_id: UUID) -> Need:
        return self._get(Need, need_id, "need")

    def agreement(self, agreement_id: UUID) -> Agreement:
        return self._get(Agreement, agreement_id, "agreement")

    def lesson(self, lesson_id: UUID) -> Lesson:
        return self._get(Lesson, lesson_id, "lesson")

    @contextmanager
    def _changing(self, kind: type[A], aggregate_id: UUID, what: str) -> Iterator[A]:
        """Load, let the block run a command, save; a broken rule saves nothing."""
        aggregate = self._get(kind, aggregate_id, what)
        yield aggregate
        try:
            self.save(aggregate)
        except IntegrityError:
            raise ConcurrentChange(
                f"{what} {aggregate_id} was changed by someone else meanwhile; retry"
            ) from None

    # ------------------------------------------------------------------ needs

    def define_need(self, new: NewNeed) -> UUID:
        outcomes = [
            {"outcome_id": short_id(), "description": o.description, "measure_id": o.measure_id,
             "target": o.target,
             "target_date": o.target_date.isoformat() if o.target_date else None}
            for o in new.outcomes
        ]
        starts, ends = new.starts_on.isoformat(), new.ends_on.isoformat()
        Need.check_definition(outcomes, new.budget_envelope, starts, ends)
        need = Need(  # type: ignore[call-arg]  # `id` is taken by the aggregate's metaclass
            id=uuid4(), title=new.title, service_area=new.service_area,
            population=new.population.model_dump(), outcomes=outcomes,
            outputs=list(new.outputs), budget_envelope=new.budget_envelope, starts_on=starts,
            ends_on=ends, lead_organisation=new.lead_organisation,
        )
        self.save(need)
        return need.id

    def pledge_contribution(self, need_id: UUID, new: NewContribution) -> str:
        contribution_id = short_id()
        with self._changing(Need, need_id, "need") as need:
            need.pledge(contribution_id, new.partner, new.amount, new.note)
        return contribution_id

    def appraise_options(self, need_id: UUID, appraisal: OptionsAppraisal) -> None:
        options = [o.model_dump(mode="python") for o in appraisal.options]
        for option in options:
            option["option"] = option["option"].value
        with self._changing(Need, need_id, "need") as need:
            need.appraise_options(options, appraisal.recommended.value, appraisal.rationale)

    def engage_market(self, need_id: UUID, engagement: MarketEngagement) -> None:
        with self._changing(Need, need_id, "need") as need:
            need.engage_market(engagement.summary, engagement.engaged_on.isoformat(),
                               list(engagement.provider_ids))

    def decide(self, need_id: UUID, decision: NewDecision) -> tuple[str, list[str]]:
        """Award to approved providers; returns the decision id and the award ids."""
        awards: list[dict[str, Any]] = [
            {"award_id": short_id(), "title": a.title,
             "arrangement_type": a.arrangement_type.value,
             "provider_ids": list(a.provider_ids), "allocation": a.allocation}
            for a in decision.awards
        ]
        named = {p for a in decision.awards for p in a.provider_ids}
        statuses = {p: self._provider_status(p) for p in named}
        decision_id = short_id()
        with self._changing(Need, need_id, "need") as need:
            need.decide(decision_id, awards, decision.rationale, decision.decision_maker,
                        statuses)
        return decision_id, [a["award_id"] for a in awards]

    def _provider_status(self, provider_id: UUID) -> ProviderStatus | None:
        if self.provider_status is None:
            raise RuntimeError("the integrator has no view of the provider network attached")
        return self.provider_status(provider_id)

    def reach_stage(self, need_id: UUID, step: StageStep) -> None:
        with self._changing(Need, need_id, "need") as need:
            need.reach_stage(step.stage, step.notes)

    def close_need(self, need_id: UUID, closure: Closure) -> None:
        with self._changing(Need, need_id, "need") as need:
            need.close(closure.reason)

    # ------------------------------------------------------------------ agreements

    def draft_agreement(self, new: NewAgreement) -> UUID:
        """Draft the agreement for one award of a decision."""
        need = self.need(new.need_id)
        if not need.is_open:
            raise DomainRuleBroken(f"the need is closed ({need.closed_reason})")
        award = need.award(new.award_id)
        if new.parties is None:
            parties = _split(award["allocation"], list(award["provider_ids"]))
        else:
            parties = [p.model_dump(mode="python") for p in new.parties]
            awarded = {str(p) for p in award["provider_ids"]}
            if {str(p["provider_id"]) for p in parties} != awarded:
                raise InvalidInput("parties", "must be exactly the award's providers")
        starts, ends = new.starts_on.isoformat(), new.ends_on.isoformat()
        risk_share = dump(new.risk_share)
        check_terms(parties, award["allocation"], starts, ends, new.exit_plan, risk_share)
        agreement = Agreement(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=agreement_id_for(need.id, new.award_id), need_id=need.id,
            decision_id=award["decision_id"], award_id=new.award_id,
            title=new.title or award["title"], arrangement_type=award["arrangement_type"],
            parties=parties, starts_on=starts, ends_on=ends, budget=award["allocation"],
            outcomes=[o.model_dump(mode="python") for o in new.outcomes],
            reward_terms=dump(new.reward_terms), risk_share=risk_share,
            break_clauses=list(new.break_clauses), exit_plan=new.exit_plan,
        )
        try:
            self.save(agreement)
        except IntegrityError:
            raise DomainRuleBroken(
                f"award {new.award_id} already has agreement {agreement.id}"
            ) from None
        return agreement.id

    def activate(self, agreement_id: UUID, activation: Activation) -> None:
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.activate(activation.activated_on.isoformat())

    def vary(self, agreement_id: UUID, variation: NewVariation) -> str:
        variation_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.vary(variation_id, variation.kind, variation.budget_change,
                           variation.scope, variation.reason)
        return variation_id

    def extend(self, agreement_id: UUID, extension: NewExtension) -> str:
        extension_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.extend(extension_id, extension.new_end.isoformat(),
                             extension.justification, extension.performance_evidence)
        return extension_id

    def propose_business_case(self, agreement_id: UUID, case: NewBusinessCase) -> str:
        case_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.propose_business_case(case_id, case.need, case.expected_outcomes,
                                            case.cost)
        return case_id

    def approve_business_case(self, agreement_id: UUID, case_id: str, reason: str) -> str:
        variation_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.approve_business_case(case_id, reason, variation_id)
        return variation_id

    def reject_business_case(self, agreement_id: UUID, case_id: str, reason: str) -> None:
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.reject_business_case(case_id, reason)

    def record_spend(self, agreement_id: UUID, spend: NewSpend) -> str:
        spend_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.record_spend(spend_id, spend.provider_id, spend.amount, spend.period,
                                   spend.reference)
        return spend_id

    def end_agreement(self, agreement_id: UUID, ending: Ending) -> None:
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.end(ending.how, ending.ended_on.isoformat(), ending.reason,
                          ending.exit_plan_executed, ending.exit_notes)

    # ------------------------------------------------------------------ lessons

    def record_lesson(self, new: NewLesson) -> UUID:
        if new.need_id is not None:
            self.need(new.need_id)
        if new.agreement_id is not None:
            agreement = self.agreement(new.agreement_id)
            if new.need_id is not None and agreement.need_id != new.need_id:
                raise InvalidInput("agreement_id", "belongs to another need")
        lesson = Lesson(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=uuid4(), need_id=new.need_id, agreement_id=new.agreement_id,
            stage=new.stage.value, went=new.went, what=new.what, why=new.why,
            tags=sorted({t.casefold() for t in new.tags}),
        )
        self.save(lesson)
        return lesson.id

    # ------------------------------------------------------------------ audit reads

    def start_audit_read(self, token_id: str, role: str, label: str, endpoint: str,
                         query: dict[str, str], scope: dict[str, str]) -> UUID:
        """Record that an audit read begins; nothing is served before this is stored."""
        read = AuditRead(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=uuid4(), token_id=token_id, role=role, label=label, endpoint=endpoint,
            query=query, scope=scope,
        )
        self.save(read)
        return read.id

    def finish_audit_read(self, read_id: UUID, returned: int, completed: bool) -> None:
        with self._changing(AuditRead, read_id, "audit read") as read:
            read.finish(returned, completed)

    # ------------------------------------------------------------------ sign-ins

    def record_sign_in_failure(self, failure: SignInFailure) -> UUID:
        """Record a failed sign-in to the web pages, and the throttle it began, if any, in one
        save: the trail never shows a throttle without the failure that began it."""
        attempt = SignInAttempt(  # type: ignore[call-arg]  # `id` is taken by the metaclass
            id=uuid4(), account=failure.account, address=failure.address,
            reason=failure.reason.value, account_failures=failure.account_failures,
            address_failures=failure.address_failures,
        )
        if failure.throttle is not None:
            began = failure.throttle
            attempt.throttle(began.by.value, began.failures, began.window_seconds, began.until)
        self.save(attempt)
        return attempt.id
