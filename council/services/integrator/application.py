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

from council.kernel import clock
from council.kernel.contracts.integrator import DecisionKind
from council.kernel.contracts.outcomes import PaymentCalculated, PaymentRecalculated
from council.kernel.contracts.provider_registry import ProviderStatus
from council.kernel.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InvalidInput,
    NotAuthorised,
    NotFound,
)
from council.platform.eventstore import CouncilApplication
from council.platform.identity import Principal, Role
from council.services.integrator.domain.agreements import Agreement, check_terms
from council.services.integrator.domain.audit import AuditRead, SignInAttempt
from council.services.integrator.domain.commands import (
    Activation,
    Closure,
    DelegationLimits,
    DuePayment,
    Ending,
    EnvelopeRaise,
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
    Signature,
    SignInFailure,
    StageStep,
    dump,
)
from council.services.integrator.domain.delegation import (
    SchemeOfDelegation,
    check_authority,
    scheme_id_for,
)
from council.services.integrator.domain.lessons import Lesson
from council.services.integrator.domain.needs import Need

A = TypeVar("A", bound=Aggregate)
ProviderStatusLookup = Callable[[UUID], ProviderStatus | None]
# What the integrator holds of an agreement's performance (a RAG assessment or a measurement of
# its outcomes), said in a line; None when it holds nothing yet.
PerformanceLookup = Callable[[UUID], str | None]


def short_id() -> str:
    return uuid4().hex[:12]


def today() -> str:
    """The business date (council.kernel.clock), as the domain's dates are: ISO text."""
    return clock.now().date().isoformat()


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
        Need.BudgetEnvelopeRaised: "BudgetEnvelopeRaised",
        Need.CommitmentVaried: "CommitmentVaried",
        Need.StageReached: "NeedStageReached",
        Need.Closed: "NeedClosed",
        Agreement.Drafted: "AgreementDrafted",
        Agreement.Signed: "AgreementSigned",
        Agreement.Activated: "AgreementActivated",
        Agreement.Varied: "AgreementVaried",
        Agreement.Extended: "AgreementExtended",
        Agreement.BusinessCaseProposed: "BusinessCaseProposed",
        Agreement.BusinessCaseApproved: "BusinessCaseApproved",
        Agreement.BusinessCaseRejected: "BusinessCaseRejected",
        Agreement.SpendRecorded: "SpendRecorded",
        Agreement.ResultsPaymentDue: "ResultsPaymentDue",
        Agreement.Ended: "AgreementEnded",
        Lesson.Recorded: "LessonRecorded",
        SchemeOfDelegation.Adopted: "SchemeOfDelegationAdopted",
        SchemeOfDelegation.LimitsSet: "DelegationLimitsSet",
        AuditRead.Started: "AuditReadStarted",
        AuditRead.Finished: "AuditReadFinished",
        SignInAttempt.Failed: "SignInFailed",
        SignInAttempt.Throttled: "SignInThrottled",
    }
    provider_status: ProviderStatusLookup | None = None
    performance_evidence: PerformanceLookup | None = None

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

    def scheme_of_delegation(self, council: str) -> SchemeOfDelegation:
        try:
            return self._get(SchemeOfDelegation, scheme_id_for(council), "scheme")
        except NotFound:
            raise NotFound(f"no scheme of delegation is set for {council}") from None

    @contextmanager
    def _changing(self, kind: type[A], aggregate_id: UUID, what: str) -> Iterator[A]:
        """Load, let the block run a command, save; a broken rule saves nothing."""
        aggregate = self._get(kind, aggregate_id, what)
        yield aggregate
        self._save_together(aggregate, what=f"{what} {aggregate_id}")

    def _save_together(self, *aggregates: Aggregate, what: str) -> None:
        """Save the aggregates' new events in one transaction: all of them, or (if any was
        changed meanwhile) none."""
        try:
            self.save(*aggregates)
        except IntegrityError:
            raise ConcurrentChange(f"{what} was changed by someone else meanwhile; retry"
                                   ) from None

    @contextmanager
    def _changing_with_need(self, agreement_id: UUID) -> Iterator[tuple[Agreement, Need]]:
        """An agreement and its need, changed and saved together (both or neither), so what
        the need commits always follows its agreements' budgets."""
        agreement = self.agreement(agreement_id)
        need = self.need(agreement.need_id)
        yield agreement, need
        self._save_together(need, agreement, what=f"agreement {agreement_id} or its need")

    # ------------------------------------------------------------------ authority

    def _authorise(self, need: Need, kind: DecisionKind, amount: Decimal, by: Principal,
                   proposer: str | None = None) -> None:
        """Refuse (NotAuthorised) unless the scheme of delegation of the need's council lets
        `by` take this decision; see domain.delegation.check_authority."""
        try:
            scheme: SchemeOfDelegation | None = self.scheme_of_delegation(need.lead_organisation)
        except NotFound:
            scheme = None
        check_authority(scheme, need.lead_organisation, kind, amount, by.role.value, by.actor,
                        proposer)

    def set_delegation_limits(self, council: str, limits: DelegationLimits,
                              by: Principal) -> SchemeOfDelegation:
        """An integrator admin sets the council's limits (replacing any set before)."""
        if by.role is not Role.INTEGRATOR_ADMIN:
            raise NotAuthorised(f"{by.actor} may not set a scheme of delegation: only an "
                                "integrator admin may")
        council = council.strip()
        if not council:
            raise InvalidInput("council", "name the council")
        try:
            scheme = self.scheme_of_delegation(council)
        except NotFound:
            scheme = SchemeOfDelegation(  # type: ignore[call-arg]  # `id`: the metaclass's
                id=scheme_id_for(council), council=council)
        scheme.set_limits([{"role": limit.role.value, "kind": limit.kind.value,
                            "up_to": limit.up_to} for limit in limits.limits],
                          today(), limits.reason)
        self._save_together(scheme, what=f"the scheme of delegation for {council}")
        return scheme

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

    def raise_envelope(self, need_id: UUID, new: EnvelopeRaise, by: Principal) -> str:
        """The council tops up its envelope for the need, within `by`'s authority."""
        raise_id = short_id()
        with self._changing(Need, need_id, "need") as need:
            self._authorise(need, DecisionKind.ENVELOPE_RAISE, new.amount, by)
            need.raise_envelope(raise_id, new.amount, new.reason, by.actor)
        return raise_id

    def decide(self, need_id: UUID, decision: NewDecision,
               by: Principal) -> tuple[str, list[str]]:
        """Award to approved providers, within `by`'s authority for the total awarded; returns
        the decision id and the award ids."""
        awards: list[dict[str, Any]] = [
            {"award_id": short_id(), "title": a.title,
             "arrangement_type": a.arrangement_type.value,
             "provider_ids": list(a.provider_ids), "allocation": a.allocation}
            for a in decision.awards
        ]
        named = {p for a in decision.awards for p in a.provider_ids}
        statuses = {p: self._provider_status(p) for p in named}
        decision_id = short_id()
        total = sum((a["allocation"] for a in awards), Decimal(0))
        with self._changing(Need, need_id, "need") as need:
            self._authorise(need, DecisionKind.AWARD, total, by)
            need.decide(decision_id, awards, decision.rationale, decision.decision_maker,
                        statuses, decided_on=today())
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

    def sign_agreement(self, agreement_id: UUID, signature: Signature) -> None:
        """Record the signatures: not in the future, not before the decision awarding it."""
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            need = self.need(agreement.need_id)
            decided_on = need.decisions.get(agreement.decision_id or "", {}).get("decided_on")
            agreement.sign(signature.signed_on.isoformat(), list(signature.signatories),
                           today(), decided_on)

    def activate(self, agreement_id: UUID, activation: Activation) -> None:
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.activate(activation.activated_on.isoformat())

    def vary(self, agreement_id: UUID, variation: NewVariation, by: Principal) -> str:
        """Vary the agreement within `by`'s authority (for the size of the change) and, for an
        increase, within its need's pooled envelope."""
        variation_id = short_id()
        with self._changing_with_need(agreement_id) as (agreement, need):
            self._authorise(need, DecisionKind.VARIATION, abs(variation.budget_change), by)
            agreement.vary(variation_id, variation.kind, variation.budget_change,
                           variation.scope, variation.reason)
            if variation.budget_change:
                need.vary_commitment(agreement.id, variation_id, variation.budget_change,
                                     "variation")
        return variation_id

    def extend(self, agreement_id: UUID, extension: NewExtension, by: Principal) -> str:
        """Extend the term within `by`'s authority (for the agreement's budget), justified by
        the performance data the integrator holds, or with none yet by an override that `by`
        has the authority to approve."""
        extension_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            need = self.need(agreement.need_id)
            self._authorise(need, DecisionKind.EXTENSION, agreement.budget, by)
            performance = self._performance_data(agreement_id)
            override = None
            if performance is None and extension.override_reason:
                self._authorise(need, DecisionKind.PERFORMANCE_OVERRIDE, agreement.budget, by)
                override = (extension.override_reason, by.actor)
            agreement.extend(extension_id, extension.new_end.isoformat(),
                             extension.justification, extension.performance_evidence,
                             today=today(), horizon=need.ends_on, performance_data=performance,
                             override=override)
        return extension_id

    def _performance_data(self, agreement_id: UUID) -> str | None:
        if self.performance_evidence is None:
            raise RuntimeError("the integrator has no view of agreements' performance attached")
        return self.performance_evidence(agreement_id)

    def propose_business_case(self, agreement_id: UUID, case: NewBusinessCase,
                              by: Principal) -> str:
        """Propose additional delivery; `by` (its proposer) will not be the one to approve it."""
        case_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.propose_business_case(case_id, case.need, case.expected_outcomes,
                                            case.cost, proposed_by=by.actor)
        return case_id

    def approve_business_case(self, agreement_id: UUID, case_id: str, reason: str,
                              by: Principal) -> str:
        """Approve a business case within `by`'s authority (for its cost), never by its
        proposer, and within the need's pooled envelope."""
        variation_id = short_id()
        with self._changing_with_need(agreement_id) as (agreement, need):
            case = agreement.case_to_approve(case_id)
            self._authorise(need, DecisionKind.BUSINESS_CASE, case["cost"], by,
                            proposer=case.get("proposed_by"))
            agreement.approve_business_case(case_id, reason, variation_id, approved_by=by.actor)
            need.vary_commitment(agreement.id, variation_id, case["cost"], "business case",
                                 business_case_id=case_id)
        return variation_id

    def reject_business_case(self, agreement_id: UUID, case_id: str, reason: str) -> None:
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            agreement.reject_business_case(case_id, reason)

    def record_spend(self, agreement_id: UUID, spend: NewSpend, by: Principal) -> str:
        """Record a payment within `by`'s authority, for a month already begun."""
        spend_id = short_id()
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            self._authorise(self.need(agreement.need_id), DecisionKind.SPEND, spend.amount, by)
            agreement.record_spend(spend_id, spend.provider_id, spend.amount, spend.period,
                                   spend.reference, this_month=clock.now().strftime("%Y-%m"))
        return spend_id

    # ------------------------------------------------------------------ results payments

    def record_results_due(self, calculated: PaymentCalculated | PaymentRecalculated,
                           calculated_on: str) -> bool:
        """A results payment the outcomes service calculated (or recalculated) on
        `calculated_on` becomes due under its agreement: the total, or the recalculation's
        difference. Once per calculation id; returns whether it was recorded now."""
        amount, previous, reason = calculated.total, None, "results payment calculated"
        if isinstance(calculated, PaymentRecalculated):
            amount, previous = calculated.difference, calculated.previous_total
            reason = calculated.reason
        with self._changing(Agreement, calculated.agreement_id, "agreement") as agreement:
            return agreement.record_results_due(
                calculated.calculation_id, calculated.terms_id, calculated.period, amount,
                calculated.total, previous, reason, calculated_on,
                [line.model_dump(mode="python") for line in calculated.lines])

    def pay_results_due(self, agreement_id: UUID, due_id: str, payment: DuePayment,
                        by: Principal) -> list[str]:
        """Pay a results payment due (or recover a credit), each party its share, within
        `by`'s authority for its amount; spend never exceeds the budget."""
        with self._changing(Agreement, agreement_id, "agreement") as agreement:
            item = agreement.due_item(due_id)
            self._authorise(self.need(agreement.need_id), DecisionKind.SPEND,
                            abs(item["amount"]), by)
            spend_ids = [short_id() for _ in item["shares"]]
            agreement.pay_results_due(due_id, spend_ids, payment.reference,
                                      this_month=clock.now().strftime("%Y-%m"))
        return [s for s in spend_ids if s in agreement.spend]

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
