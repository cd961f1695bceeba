"""A commissioning need: outcomes sought within a budget, taken through the strategic-sourcing
steps from objectives to exit. No I/O here.

Money is Decimal pounds; dates travel in events as ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.contracts.integrator import SourcingStage
from council.kernel.contracts.provider_registry import ProviderStatus
from council.kernel.errors import DomainRuleBroken, InvalidInput

STAGES = list(SourcingStage)
# Stages reached by explicit steps after the decision.
LATER_STAGES = (
    SourcingStage.MOBILISATION, SourcingStage.MANAGEMENT, SourcingStage.REVIEW,
    SourcingStage.EXIT,
)


def _after(stage: SourcingStage, other: SourcingStage) -> bool:
    return STAGES.index(stage) > STAGES.index(other)


def check_within_envelope(what: str, change: Decimal, committed: Decimal,
                          pooled: Decimal) -> None:
    """What is committed never exceeds the pooled envelope (the council's envelope and every
    partner's contribution): the figures say by how much it would."""
    if committed > pooled:
        raise DomainRuleBroken(
            f"this {what} of £{change:,.2f} would commit £{committed:,.2f} against the pooled "
            f"envelope of £{pooled:,.2f}: £{committed - pooled:,.2f} short; raise the envelope "
            "first (a partner's further contribution, or a council top-up with its reason)"
        )


class Need(CouncilAggregate):
    """What the council needs to achieve for a population, and how it is sourcing it."""

    id: UUID

    class Defined(CouncilAggregate.Created):
        title: str
        service_area: str
        population: dict[str, Any]
        outcomes: list[dict[str, Any]]
        outputs: list[str]
        budget_envelope: Decimal
        starts_on: str
        ends_on: str
        lead_organisation: str

    @event(Defined)
    def __init__(
        self, title: str, service_area: str, population: dict[str, Any],
        outcomes: list[dict[str, Any]], outputs: list[str], budget_envelope: Decimal,
        starts_on: str, ends_on: str, lead_organisation: str,
    ) -> None:
        self.title = title
        self.service_area = service_area
        self.population = population
        self.outcomes = outcomes
        self.outputs = outputs
        self.budget_envelope = budget_envelope
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.lead_organisation = lead_organisation
        self.stage = SourcingStage.OBJECTIVES
        self.closed_reason: str | None = None
        self.contributions: dict[str, dict[str, Any]] = {}
        self.options: list[dict[str, Any]] = []
        self.recommended: str | None = None
        self.engagements: list[dict[str, Any]] = []
        self.decisions: dict[str, dict[str, Any]] = {}
        self.envelope_raises: list[dict[str, Any]] = []
        # variation id -> how an agreement's budget changed since its award (CommitmentVaried)
        self.commitment_changes: dict[str, Decimal] = {}

    @staticmethod
    def check_definition(
        outcomes: list[dict[str, Any]], budget_envelope: Decimal, starts_on: str, ends_on: str
    ) -> None:
        """Rules a need must meet before it is defined (called by the application)."""
        if not outcomes:
            raise InvalidInput("outcomes", "commission on outcomes: name at least one")
        if budget_envelope <= 0:
            raise InvalidInput("budget_envelope", "must be more than zero")
        if ends_on <= starts_on:
            raise InvalidInput("ends_on", "must be after starts_on")

    # ------------------------------------------------------------------ queries

    @property
    def is_open(self) -> bool:
        return self.closed_reason is None

    @property
    def pooled_budget(self) -> Decimal:
        """The envelope plus every partner's pooled contribution."""
        return self.budget_envelope + sum(
            (c["amount"] for c in self.contributions.values()), Decimal(0)
        )

    @property
    def committed(self) -> Decimal:
        """What the need's awards commit, as their agreements' budgets have since changed."""
        awarded = sum(
            (a["allocation"] for d in self.decisions.values() for a in d["awards"]), Decimal(0)
        )
        return awarded + sum(self.commitment_changes.values(), Decimal(0))

    def award(self, award_id: str) -> dict[str, Any]:
        for decision in self.decisions.values():
            for award in decision["awards"]:
                if award["award_id"] == award_id:
                    return {**award, "decision_id": decision["decision_id"]}
        raise DomainRuleBroken(f"need {self.id} has no award {award_id}")

    def _require_open(self) -> None:
        if not self.is_open:
            raise DomainRuleBroken(f"the need is closed ({self.closed_reason})")

    # ------------------------------------------------------------------ collaborative budget

    class ContributionPledged(CouncilAggregate.Event):
        contribution_id: str
        partner: str
        amount: Decimal
        note: str | None

    def pledge(self, contribution_id: str, partner: str, amount: Decimal, note: str | None) -> None:
        """A partner organisation pools budget into this commission."""
        self._require_open()
        if amount <= 0:
            raise InvalidInput("amount", "a contribution must be more than zero")
        if partner.casefold() == self.lead_organisation.casefold():
            raise InvalidInput(
                "partner", "the lead organisation's budget is the envelope, not a contribution"
            )
        self._pledged(contribution_id, partner, amount, note)

    @event(ContributionPledged)
    def _pledged(
        self, contribution_id: str, partner: str, amount: Decimal, note: str | None
    ) -> None:
        self.contributions[contribution_id] = {
            "contribution_id": contribution_id, "partner": partner, "amount": amount, "note": note,
        }

    def contributions_by_partner(self) -> dict[str, Decimal]:
        """Each organisation's share of the pooled budget, the lead's envelope included."""
        shares: dict[str, Decimal] = {self.lead_organisation: self.budget_envelope}
        for c in self.contributions.values():
            shares[c["partner"]] = shares.get(c["partner"], Decimal(0)) + c["amount"]
        return shares

    class BudgetEnvelopeRaised(CouncilAggregate.Event):
        raise_id: str
        amount: Decimal
        new_envelope: Decimal
        reason: str
        decided_by: str

    def raise_envelope(self, raise_id: str, amount: Decimal, reason: str,
                       decided_by: str) -> None:
        """The council tops up its own envelope for the need, by a recorded decision."""
        self._require_open()
        if amount <= 0:
            raise InvalidInput("amount", "an envelope is raised by more than nothing")
        if not reason.strip():
            raise InvalidInput("reason", "say why the envelope is raised")
        self._envelope_raised(raise_id, amount, self.budget_envelope + amount, reason,
                              decided_by)

    @event(BudgetEnvelopeRaised)
    def _envelope_raised(self, raise_id: str, amount: Decimal, new_envelope: Decimal,
                         reason: str, decided_by: str) -> None:
        self.budget_envelope = new_envelope
        self.envelope_raises.append({"raise_id": raise_id, "amount": amount, "reason": reason,
                                     "decided_by": decided_by})

    class CommitmentVaried(CouncilAggregate.Event):
        agreement_id: UUID
        variation_id: str
        budget_change: Decimal
        committed: Decimal
        business_case_id: str | None

    def vary_commitment(
        self, agreement_id: UUID, variation_id: str, budget_change: Decimal, what: str,
        business_case_id: str | None = None,
    ) -> None:
        """An agreement's budget changes by `budget_change` (`what`: "variation", "business
        case"); what the need commits changes with it. An increase never takes it past the
        pooled envelope: raise the envelope first. A decrease frees the envelope."""
        after = self.committed + budget_change
        if budget_change > 0:
            self._require_open()
            check_within_envelope(what, budget_change, after, self.pooled_budget)
        self._commitment_varied(agreement_id, variation_id, budget_change, after,
                                business_case_id)

    @event(CommitmentVaried)
    def _commitment_varied(
        self, agreement_id: UUID, variation_id: str, budget_change: Decimal, committed: Decimal,
        business_case_id: str | None,
    ) -> None:
        self.commitment_changes[variation_id] = budget_change

    # ------------------------------------------------------------------ sourcing steps

    class OptionsAppraised(CouncilAggregate.Event):
        options: list[dict[str, Any]]
        recommended: str
        rationale: str

    def appraise_options(
        self, options: list[dict[str, Any]], recommended: str, rationale: str
    ) -> None:
        """Weigh the range of arrangements (in-house to a mix) and recommend one."""
        self._require_open()
        if self.decisions:
            raise DomainRuleBroken("options cannot be re-appraised once a decision is taken")
        kinds = [o["option"] for o in options]
        if len(set(kinds)) != len(kinds):
            raise InvalidInput("options", "each option may appear once")
        if recommended not in kinds:
            raise InvalidInput("recommended", "must be one of the options appraised")
        self._options_appraised(options, recommended, rationale)

    @event(OptionsAppraised)
    def _options_appraised(
        self, options: list[dict[str, Any]], recommended: str, rationale: str
    ) -> None:
        self.options = options
        self.recommended = recommended
        self.stage = SourcingStage.OPTIONS

    class MarketEngaged(CouncilAggregate.Event):
        summary: str
        engaged_on: str
        provider_ids: list[UUID]

    def engage_market(self, summary: str, engaged_on: str, provider_ids: list[UUID]) -> None:
        self._require_open()
        if self.decisions:
            raise DomainRuleBroken("market engagement comes before the decision")
        self._market_engaged(summary, engaged_on, provider_ids)

    @event(MarketEngaged)
    def _market_engaged(self, summary: str, engaged_on: str, provider_ids: list[UUID]) -> None:
        self.engagements.append(
            {"summary": summary, "engaged_on": engaged_on, "provider_ids": provider_ids}
        )
        self.stage = SourcingStage.MARKET_ENGAGEMENT

    class Decided(CouncilAggregate.Event):
        decision_id: str
        awards: list[dict[str, Any]]
        rationale: str
        decision_maker: str
        decided_on: str | None = None  # absent from decisions recorded before 2026-12

    def decide(
        self, decision_id: str, awards: list[dict[str, Any]], rationale: str,
        decision_maker: str, provider_status: Mapping[UUID, ProviderStatus | None],
        decided_on: str | None = None,
    ) -> None:
        """Award to approved providers within the pooled budget, on `decided_on` (the business
        date). `provider_status` is how the network stands for each provider named (None: not
        in the network)."""
        self._require_open()
        if self.recommended is None:
            raise DomainRuleBroken("appraise the sourcing options before deciding")
        if not awards:
            raise InvalidInput("awards", "a decision awards to at least one provider")
        for award in awards:
            if award["allocation"] <= 0:
                raise InvalidInput("awards", f"award {award['title']!r} allocates nothing")
            if len(set(award["provider_ids"])) != len(award["provider_ids"]):
                raise InvalidInput(
                    "awards", f"award {award['title']!r} names a provider more than once"
                )
            for provider_id in award["provider_ids"]:
                status = provider_status.get(provider_id)
                if status is not ProviderStatus.APPROVED:
                    raise DomainRuleBroken(
                        f"provider {provider_id} is "
                        f"{status.value if status else 'not in the network'}: only approved "
                        "providers can be commissioned"
                    )
        total = sum((a["allocation"] for a in awards), Decimal(0))
        available = self.pooled_budget - self.committed
        if total > available:
            raise DomainRuleBroken(
                f"awards total £{total:,.2f} but only £{available:,.2f} of the "
                f"£{self.pooled_budget:,.2f} budget is uncommitted"
            )
        self._decided(decision_id, awards, rationale, decision_maker, decided_on)

    @event(Decided)
    def _decided(
        self, decision_id: str, awards: list[dict[str, Any]], rationale: str, decision_maker: str,
        decided_on: str | None = None,
    ) -> None:
        self.decisions[decision_id] = {
            "decision_id": decision_id, "awards": awards, "rationale": rationale,
            "decision_maker": decision_maker, "decided_on": decided_on,
        }
        self.stage = SourcingStage.DECISION

    class StageReached(CouncilAggregate.Event):
        stage: str
        notes: str

    def reach_stage(self, stage: SourcingStage, notes: str) -> None:
        """Move on to mobilisation, management, review or exit (forwards only)."""
        self._require_open()
        if stage not in LATER_STAGES:
            raise InvalidInput("stage", "only mobilisation, management, review or exit")
        if not self.decisions:
            raise DomainRuleBroken(f"{stage.value} comes after a commissioning decision")
        if not _after(stage, self.stage):
            raise DomainRuleBroken(f"the need is already at {self.stage.value}")
        self._stage_reached(stage.value, notes)

    @event(StageReached)
    def _stage_reached(self, stage: str, notes: str) -> None:
        self.stage = SourcingStage(stage)

    class Closed(CouncilAggregate.Event):
        reason: str

    def close(self, reason: str) -> None:
        self._require_open()
        self._closed(reason)

    @event(Closed)
    def _closed(self, reason: str) -> None:
        self.closed_reason = reason
