"""An agreement: one arrangement with one or more providers, kept flexible (variations,
extensions justified by performance, business cases for additional delivery) and always with an
exit plan. No I/O here. Money is Decimal pounds; dates travel as ISO strings.

Results payments are spend under the agreement, one record of money with the payments the
council makes by hand. A payment the outcomes service calculates (or recalculates) becomes
*due* here (`record_results_due`, once per calculation): the calculated total, or a
recalculation's difference (a credit to recover when negative), split between the parties by
their allocations with the penny rule the variations use (`share_out`). The council then pays
it (`pay_results_due`): each party's share is recorded as spend, for the last month of the
results period within the term, so the agreement, its need, the partners' split and the market
all count the same pounds. Spend never exceeds the budget: a due amount that would take
everything due past it is recorded all the same, flagged as needing a variation
(`over_budget_by`), and cannot be paid until the budget allows.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.contracts.integrator import EndingKind, VariationKind
from council.kernel.errors import DomainRuleBroken, InvalidInput, NotAuthorised

PENNY = Decimal("0.01")


def share_out(total: Decimal, weights: list[Decimal], whole: Decimal | None = None
              ) -> list[Decimal]:
    """`total` shared in proportion to `weights` (out of `whole`, by default their sum), to the
    penny: each share rounded towards zero, then the pennies left over one each to the largest
    remainders (the lead, first, party first on a tie), so no share goes past the total and
    the shares add up to it exactly. A negative total (a credit) is shared as its size is."""
    if total < 0:
        return [-share for share in share_out(-total, weights, whole)]
    whole = sum(weights, Decimal(0)) if whole is None else whole
    exact = [w * total / whole for w in weights]
    shares = [e.quantize(PENNY, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(shares, Decimal(0))) / PENNY)
    for i in sorted(range(len(shares)), key=lambda i: shares[i] - exact[i])[:left]:
        shares[i] += PENNY
    return shares


def results_month(period: str, starts_on: str, ends_on: str) -> str:
    """The month (YYYY-MM) a results payment for `period` (2026-08, or 2026-Q3) is spend for:
    the period's last month, within the term `starts_on` to `ends_on` (a period the term covers
    in part is paid for the days within it)."""
    year, _, part = period.partition("-")
    last = f"{year}-{int(part[1:]) * 3:02d}" if part.startswith("Q") else period
    return max(min(last, ends_on[:7]), starts_on[:7])


class AgreementStatus(StrEnum):
    DRAFTED = "drafted"
    ACTIVE = "active"
    ENDED = "ended"


def check_terms(
    parties: list[dict[str, Any]], budget: Decimal, starts_on: str, ends_on: str,
    exit_plan: str, risk_share: dict[str, Any] | None,
) -> None:
    """Rules every agreement's terms meet before it is drafted."""
    if budget <= 0:
        raise InvalidInput("budget", "must be more than zero")
    if not parties:
        raise InvalidInput("parties", "an agreement needs at least one provider")
    if len({str(p["provider_id"]) for p in parties}) != len(parties):
        raise InvalidInput("parties", "each provider may be a party once")
    if sum((p["allocation"] for p in parties), Decimal(0)) != budget:
        raise InvalidInput("parties", "the parties' allocations must add up to the budget")
    if ends_on <= starts_on:
        raise InvalidInput("ends_on", "must be after starts_on")
    if not exit_plan.strip():
        raise InvalidInput("exit_plan", "every arrangement has an exit plan")
    if risk_share is not None and (
        risk_share["council_pct"] + risk_share["provider_pct"] != Decimal(100)
    ):
        raise InvalidInput("risk_share", "council_pct and provider_pct must add up to 100")


class Agreement(CouncilAggregate):
    id: UUID

    class Drafted(CouncilAggregate.Created):
        need_id: UUID
        decision_id: str | None
        award_id: str | None
        title: str
        arrangement_type: str
        parties: list[dict[str, Any]]
        starts_on: str
        ends_on: str
        budget: Decimal
        outcomes: list[dict[str, Any]]
        reward_terms: dict[str, Any] | None
        risk_share: dict[str, Any] | None
        break_clauses: list[str]
        exit_plan: str

    @event(Drafted)
    def __init__(
        self, need_id: UUID, decision_id: str | None, award_id: str | None, title: str,
        arrangement_type: str, parties: list[dict[str, Any]], starts_on: str, ends_on: str,
        budget: Decimal, outcomes: list[dict[str, Any]], reward_terms: dict[str, Any] | None,
        risk_share: dict[str, Any] | None, break_clauses: list[str], exit_plan: str,
    ) -> None:
        self.need_id = need_id
        self.decision_id = decision_id
        self.award_id = award_id
        self.title = title
        self.arrangement_type = arrangement_type
        self.parties = parties
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.budget = budget
        self.outcomes = outcomes
        self.reward_terms = reward_terms
        self.risk_share = risk_share
        self.break_clauses = break_clauses
        self.exit_plan = exit_plan
        self.status = AgreementStatus.DRAFTED
        # None for agreements brought into force before signatures were recorded
        self.signed_on: str | None = None
        self.signatories: list[str] = []
        self.activated_on: str | None = None
        self.variations: list[dict[str, Any]] = []
        self.extensions: list[dict[str, Any]] = []
        self.business_cases: dict[str, dict[str, Any]] = {}
        self.spend: dict[str, dict[str, Any]] = {}
        # calculation id -> a results payment due (and whether it has been paid)
        self.results_due: dict[str, dict[str, Any]] = {}
        self.ending: dict[str, Any] | None = None

    # ------------------------------------------------------------------ queries

    @property
    def spent(self) -> Decimal:
        return sum((s["amount"] for s in self.spend.values()), Decimal(0))

    @property
    def due(self) -> Decimal:
        """Results payments due and not paid yet (credits to recover count against them)."""
        return sum((d["amount"] for d in self.results_due.values() if not d["paid"]),
                   Decimal("0.00"))

    @property
    def term_ends_on(self) -> str:
        """The last day of the term: its end, or the day it ended if that was sooner."""
        ended = self.ending["ended_on"] if self.ending else self.ends_on
        return min(self.ends_on, ended)

    def _require(self, status: AgreementStatus, doing: str) -> None:
        if self.status is not status:
            raise DomainRuleBroken(
                f"cannot {doing}: the agreement is {self.status.value}, not {status.value}"
            )

    @property
    def started_on(self) -> str:
        """When the agreement started: its term's start, or its coming into force if later."""
        return max(self.starts_on, self.activated_on or self.starts_on)

    # ------------------------------------------------------------------ lifecycle

    class Signed(CouncilAggregate.Event):
        signed_on: str
        signatories: list[str]

    def sign(self, signed_on: str, signatories: list[str], today: str,
             decided_on: str | None) -> None:
        """Record the parties' signatures: not in the future (`today`, business time), not
        before the commissioning decision that awarded it (`decided_on`, when known)."""
        if self.signed_on is not None:
            raise DomainRuleBroken(f"the agreement was already signed on {self.signed_on}")
        self._require(AgreementStatus.DRAFTED, "sign it")
        if not [s for s in signatories if s.strip()]:
            raise InvalidInput("signatories", "name at least one signatory")
        if signed_on > today:
            raise InvalidInput("signed_on", f"cannot be in the future (today is {today})")
        if decided_on is not None and signed_on < decided_on:
            raise InvalidInput("signed_on", "cannot be before the commissioning decision of "
                               f"{decided_on} that awarded it")
        self._signed(signed_on, signatories)

    @event(Signed)
    def _signed(self, signed_on: str, signatories: list[str]) -> None:
        self.signed_on = signed_on
        self.signatories = signatories

    class Activated(CouncilAggregate.Event):
        activated_on: str

    def activate(self, activated_on: str) -> None:
        """Bring a signed agreement into force, on or after the day it was signed."""
        self._require(AgreementStatus.DRAFTED, "activate it")
        if self.signed_on is None:
            raise DomainRuleBroken("the agreement has not been signed: record its signature "
                                   "before it comes into force")
        if activated_on < self.signed_on:
            raise InvalidInput("activated_on",
                               f"cannot be before the agreement was signed on {self.signed_on}")
        self._activated(activated_on)

    @event(Activated)
    def _activated(self, activated_on: str) -> None:
        self.status = AgreementStatus.ACTIVE
        self.activated_on = activated_on

    class Varied(CouncilAggregate.Event):
        variation_id: str
        kind: str
        budget_change: Decimal
        new_budget: Decimal
        scope: str | None
        reason: str
        business_case_id: str | None

    def vary(
        self, variation_id: str, kind: VariationKind, budget_change: Decimal, scope: str | None,
        reason: str,
    ) -> None:
        """Vary an active agreement: growth, a scope change or a budget change, with a reason."""
        self._require(AgreementStatus.ACTIVE, "vary it")
        if kind is VariationKind.BUSINESS_CASE:
            raise InvalidInput("kind", "business-case variations come from approving one")
        if budget_change == 0 and not scope:
            raise InvalidInput("budget_change", "a variation changes the budget or the scope")
        new_budget = self.budget + budget_change
        if new_budget <= 0:
            raise DomainRuleBroken("a variation cannot take the budget to zero or below")
        if new_budget < self.spent:
            raise DomainRuleBroken(
                f"the budget cannot fall below the £{self.spent:,.2f} already spent"
            )
        self._varied(variation_id, kind.value, budget_change, new_budget, scope, reason, None)

    @event(Varied)
    def _varied(
        self, variation_id: str, kind: str, budget_change: Decimal, new_budget: Decimal,
        scope: str | None, reason: str, business_case_id: str | None,
    ) -> None:
        # Parties keep their shares of the budget as it grows or shrinks: each share rounded
        # down to the penny, then the pennies left over one each to the largest remainders
        # (the lead party first on a tie), so no share goes negative and the total is exact.
        shares = share_out(new_budget, [p["allocation"] for p in self.parties], self.budget)
        self.parties = [
            {**p, "allocation": share} for p, share in zip(self.parties, shares, strict=True)
        ]
        self.budget = new_budget
        self.variations.append({
            "variation_id": variation_id, "kind": kind, "budget_change": budget_change,
            "new_budget": new_budget, "scope": scope, "reason": reason,
            "business_case_id": business_case_id,
        })

    class Extended(CouncilAggregate.Event):
        extension_id: str
        previous_end: str
        new_end: str
        justification: str
        performance_evidence: str
        # absent from extensions recorded before 2026-12
        performance_data: str | None = None
        override_reason: str | None = None
        override_approved_by: str | None = None

    def extend(
        self, extension_id: str, new_end: str, justification: str, performance_evidence: str,
        *, today: str, horizon: str, performance_data: str | None,
        override: tuple[str, str] | None = None,
    ) -> None:
        """Extend the term, justified by performance: `performance_data` is what the integrator
        holds for the agreement (a RAG assessment or a measurement), or, with none yet,
        `override` (the reason, and who approved it under the scheme of delegation). Not
        recorded before the agreement starts (`today`, business time), and never past the
        need's `horizon` (its end)."""
        self._require(AgreementStatus.ACTIVE, "extend it")
        if new_end <= self.ends_on:
            raise InvalidInput("new_end", f"must be after the current end, {self.ends_on}")
        if new_end > horizon:
            raise InvalidInput("new_end", f"runs past the need's horizon: the need ends on "
                               f"{horizon}")
        if not performance_evidence.strip():
            raise InvalidInput("performance_evidence", "an extension is justified by performance")
        if today < self.started_on:
            raise DomainRuleBroken(f"an extension cannot be recorded before the agreement "
                                   f"starts on {self.started_on} (today is {today})")
        if performance_data is None and override is None:
            raise DomainRuleBroken(
                "no performance data for this agreement yet (no RAG assessment or measurement "
                "of its outcomes): an extension is justified by performance, so wait for it, or "
                "give an override_reason for someone with authority to approve")
        # With performance data no override is needed, so none is recorded.
        reason, approver = override if performance_data is None and override else (None, None)
        self._extended(extension_id, self.ends_on, new_end, justification, performance_evidence,
                       performance_data, reason, approver)

    @event(Extended)
    def _extended(
        self, extension_id: str, previous_end: str, new_end: str, justification: str,
        performance_evidence: str, performance_data: str | None = None,
        override_reason: str | None = None, override_approved_by: str | None = None,
    ) -> None:
        self.extensions.append({
            "extension_id": extension_id, "previous_end": previous_end, "new_end": new_end,
            "justification": justification, "performance_evidence": performance_evidence,
            "performance_data": performance_data, "override_reason": override_reason,
            "override_approved_by": override_approved_by,
        })
        self.ends_on = new_end

    # ------------------------------------------------------------------ business cases

    class BusinessCaseProposed(CouncilAggregate.Event):
        business_case_id: str
        need: str
        expected_outcomes: str
        cost: Decimal
        proposed_by: str | None = None  # absent from proposals recorded before 2026-12

    def propose_business_case(
        self, business_case_id: str, need: str, expected_outcomes: str, cost: Decimal,
        proposed_by: str | None = None,
    ) -> None:
        """Propose additional delivery under this agreement instead of renegotiating it;
        `proposed_by` (role:label) may not be the one who approves it."""
        self._require(AgreementStatus.ACTIVE, "propose a business case")
        if cost <= 0:
            raise InvalidInput("cost", "must be more than zero")
        self._business_case_proposed(business_case_id, need, expected_outcomes, cost,
                                     proposed_by)

    @event(BusinessCaseProposed)
    def _business_case_proposed(
        self, business_case_id: str, need: str, expected_outcomes: str, cost: Decimal,
        proposed_by: str | None = None,
    ) -> None:
        self.business_cases[business_case_id] = {
            "business_case_id": business_case_id, "need": need,
            "expected_outcomes": expected_outcomes, "cost": cost, "status": "proposed",
            "reason": None, "proposed_by": proposed_by, "approved_by": None,
        }

    def pending_case(self, business_case_id: str) -> dict[str, Any]:
        """A business case still waiting for its decision (refused otherwise)."""
        case = self.business_cases.get(business_case_id)
        if case is None:
            raise DomainRuleBroken(f"no business case {business_case_id} on this agreement")
        if case["status"] != "proposed":
            raise DomainRuleBroken(f"business case {business_case_id} is already {case['status']}")
        return case

    class BusinessCaseApproved(CouncilAggregate.Event):
        business_case_id: str
        reason: str
        approved_by: str | None = None  # absent from approvals recorded before 2026-12

    def case_to_approve(self, business_case_id: str) -> dict[str, Any]:
        """A business case that may be approved now: pending, on an active agreement."""
        self._require(AgreementStatus.ACTIVE, "approve a business case")
        return self.pending_case(business_case_id)

    def approve_business_case(self, business_case_id: str, reason: str, variation_id: str,
                              approved_by: str | None = None) -> None:
        """Approve additional delivery: its cost varies the agreement's budget. Whoever
        proposed it does not approve it."""
        case = self.case_to_approve(business_case_id)
        if approved_by is not None and approved_by == case.get("proposed_by"):
            raise NotAuthorised(f"{approved_by} proposed this business case, so may not "
                                "approve it: someone else with authority must")
        self._business_case_approved(business_case_id, reason, approved_by)
        self._varied(
            variation_id, VariationKind.BUSINESS_CASE.value, case["cost"],
            self.budget + case["cost"], case["need"], reason, business_case_id,
        )

    @event(BusinessCaseApproved)
    def _business_case_approved(self, business_case_id: str, reason: str,
                                approved_by: str | None = None) -> None:
        self.business_cases[business_case_id].update(status="approved", reason=reason,
                                                     approved_by=approved_by)

    class BusinessCaseRejected(CouncilAggregate.Event):
        business_case_id: str
        reason: str

    def reject_business_case(self, business_case_id: str, reason: str) -> None:
        self.pending_case(business_case_id)
        self._business_case_rejected(business_case_id, reason)

    @event(BusinessCaseRejected)
    def _business_case_rejected(self, business_case_id: str, reason: str) -> None:
        self.business_cases[business_case_id].update(status="rejected", reason=reason)

    # ------------------------------------------------------------------ money

    class SpendRecorded(CouncilAggregate.Event):
        spend_id: str
        provider_id: UUID
        amount: Decimal
        period: str
        reference: str | None
        due_id: str | None = None  # a results payment due, paid (absent before 2026-12)

    def record_spend(
        self, spend_id: str, provider_id: UUID, amount: Decimal, period: str,
        reference: str | None, *, this_month: str,
    ) -> None:
        """Record a payment to a party for a month (YYYY-MM) already begun (`this_month`, in
        business time); spend never exceeds the budget."""
        if self.status is AgreementStatus.DRAFTED:
            raise DomainRuleBroken("nothing can be paid before the agreement is active")
        if period > this_month:
            raise InvalidInput("period", f"{period} has not yet begun (this month is "
                               f"{this_month}): spend is recorded for a month once it has")
        if str(provider_id) not in {str(p["provider_id"]) for p in self.parties}:
            raise InvalidInput("provider_id", "is not a party to this agreement")
        if amount <= 0:
            raise InvalidInput("amount", "must be more than zero")
        if self.spent + amount > self.budget:
            raise DomainRuleBroken(
                f"£{amount:,.2f} would take spend to £{self.spent + amount:,.2f}, over the "
                f"£{self.budget:,.2f} budget: vary the agreement first"
            )
        self._spend_recorded(spend_id, provider_id, amount, period, reference)

    @event(SpendRecorded)
    def _spend_recorded(
        self, spend_id: str, provider_id: UUID, amount: Decimal, period: str,
        reference: str | None, due_id: str | None = None,
    ) -> None:
        self.spend[spend_id] = {
            "spend_id": spend_id, "provider_id": provider_id, "amount": amount,
            "period": period, "reference": reference, "due_id": due_id,
        }
        if due_id is not None:
            self.results_due[due_id]["paid"] = True

    # ------------------------------------------------------------------ results payments

    class ResultsPaymentDue(CouncilAggregate.Event):
        due_id: str
        calculation_id: str
        terms_id: UUID
        period: str
        amount: Decimal
        shares: list[dict[str, Any]]
        calculated_on: str
        calculated_total: Decimal
        previous_total: Decimal | None
        reason: str
        over_budget_by: Decimal
        lines: list[dict[str, Any]]

    def record_results_due(
        self, calculation_id: str, terms_id: UUID, period: str, amount: Decimal,
        calculated_total: Decimal, previous_total: Decimal | None, reason: str,
        calculated_on: str, lines: list[dict[str, Any]] | None = None,
    ) -> bool:
        """A results payment calculated by the outcomes service for `period` becomes due:
        `amount` is the calculated total, or a recalculation's difference from
        `previous_total` (negative: a credit to recover). Once per calculation (its id is the
        due item's), so reading the same calculation again records nothing; nor does a
        calculation of nothing. Returns whether it was recorded. Flagged as needing a
        variation by how much paying everything due would take spend past the budget. `lines`
        is the calculation line by line (description, basis, amount), kept with the item so
        whoever signs it off sees how it was worked out."""
        if calculation_id in self.results_due or amount == 0:
            return False
        shares = share_out(amount, [p["allocation"] for p in self.parties])
        owed = self.spent + self.due + amount
        over = max(owed - self.budget, Decimal(0)) if amount > 0 else Decimal(0)
        self._results_payment_due(
            calculation_id, calculation_id, terms_id, period, amount,
            [{"provider_id": p["provider_id"], "amount": share}
             for p, share in zip(self.parties, shares, strict=True)],
            calculated_on, calculated_total, previous_total, reason, over, list(lines or []))
        return True

    @event(ResultsPaymentDue)
    def _results_payment_due(
        self, due_id: str, calculation_id: str, terms_id: UUID, period: str, amount: Decimal,
        shares: list[dict[str, Any]], calculated_on: str, calculated_total: Decimal,
        previous_total: Decimal | None, reason: str, over_budget_by: Decimal,
        lines: list[dict[str, Any]],
    ) -> None:
        self.results_due[due_id] = {
            "due_id": due_id, "calculation_id": calculation_id, "terms_id": terms_id,
            "period": period, "amount": amount, "shares": shares,
            "calculated_on": calculated_on, "calculated_total": calculated_total,
            "previous_total": previous_total, "reason": reason,
            "over_budget_by": over_budget_by, "lines": lines, "paid": False,
        }

    def due_item(self, due_id: str) -> dict[str, Any]:
        """A results payment due on this agreement and not paid yet (refused otherwise)."""
        item = self.results_due.get(due_id)
        if item is None:
            raise DomainRuleBroken(f"no results payment {due_id} is due on this agreement")
        if item["paid"]:
            done = "recovered" if item["amount"] < 0 else "paid"
            raise DomainRuleBroken(f"results payment {due_id} was already {done}")
        return item

    def pay_results_due(self, due_id: str, spend_ids: list[str], reference: str | None, *,
                        this_month: str) -> None:
        """Pay a results payment due (or, for a credit, recover it): each party's share is
        recorded as spend (`spend_ids`, one per party) for the last month of the results
        period within the term, once that month has begun (`this_month`, business time).
        Spend never exceeds the budget, nor falls below nothing."""
        if self.status is AgreementStatus.DRAFTED:
            raise DomainRuleBroken("nothing can be paid before the agreement is active")
        item = self.due_item(due_id)
        amount: Decimal = item["amount"]
        month = results_month(item["period"], self.starts_on, self.term_ends_on)
        if month > this_month:
            raise InvalidInput("period", f"{month} has not yet begun (this month is "
                               f"{this_month}): spend is recorded for a month once it has")
        if self.spent + amount > self.budget:
            raise DomainRuleBroken(
                f"£{amount:,.2f} would take spend to £{self.spent + amount:,.2f}, over the "
                f"£{self.budget:,.2f} budget: vary the agreement first (the payment stays due, "
                "flagged as needing a variation)")
        if self.spent + amount < 0:
            raise DomainRuleBroken(f"cannot recover £{-amount:,.2f}: only £{self.spent:,.2f} "
                                   "has been spent under the agreement")
        reference = reference or f"Results payment {item['period']}"
        for share, spend_id in zip(item["shares"], spend_ids, strict=True):
            if share["amount"] != 0:
                self._spend_recorded(spend_id, share["provider_id"], share["amount"], month,
                                     reference, due_id)

    # ------------------------------------------------------------------ ending

    class Ended(CouncilAggregate.Event):
        how: str
        ended_on: str
        reason: str
        exit_plan_executed: bool
        exit_notes: str | None

    def end(
        self, how: EndingKind, ended_on: str, reason: str, exit_plan_executed: bool,
        exit_notes: str | None,
    ) -> None:
        self._require(AgreementStatus.ACTIVE, "end it")
        if how is EndingKind.EXITED and not exit_plan_executed:
            raise InvalidInput("exit_plan_executed", "an exit is made by executing the exit plan")
        if ended_on < (self.activated_on or self.starts_on):
            raise InvalidInput("ended_on", "cannot be before the agreement started")
        self._ended(how.value, ended_on, reason, exit_plan_executed, exit_notes)

    @event(Ended)
    def _ended(
        self, how: str, ended_on: str, reason: str, exit_plan_executed: bool,
        exit_notes: str | None,
    ) -> None:
        self.status = AgreementStatus.ENDED
        self.ending = {
            "how": how, "ended_on": ended_on, "reason": reason,
            "exit_plan_executed": exit_plan_executed, "exit_notes": exit_notes,
        }
