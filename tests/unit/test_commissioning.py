"""Commissioning rules in the integrator's domain: needs taken through the strategic-sourcing
steps (pooled budgets, options, market engagement, decisions awarding only to approved providers
within the pooled budget, later stages forwards only, closing), agreements (terms, activation,
variations keeping shares, extensions justified by performance, business cases, spend, endings),
lessons, replay, and the envelopes the Integrator application publishes for every event."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from council.kernel.clock import business_time
from council.kernel.context import CommandContext, command_context
from council.kernel.contracts import all_specs, spec_for
from council.kernel.contracts.integrator import (
    DecisionKind,
    EndingKind,
    SourcingStage,
    VariationKind,
)
from council.kernel.contracts.outcomes import PaymentCalculated, PaymentLine
from council.kernel.contracts.provider_registry import ProviderStatus
from council.kernel.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InvalidInput,
    NotAuthorised,
    NotFound,
)
from council.platform.eventstore import open_application
from council.platform.identity import Principal, Role
from council.platform.settings import Settings
from council.services.integrator.application import Integrator, agreement_id_for
from council.services.integrator.domain.agreements import Agreement, AgreementStatus, check_terms
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
)
from council.services.integrator.domain.delegation import SchemeOfDelegation, check_authority
from council.services.integrator.domain.lessons import Lesson
from council.services.integrator.domain.needs import Need

D = Decimal
LEAD = "Northshire County Council"
P1, P2, P3 = (UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2, 3))
APPROVED: dict[UUID, ProviderStatus | None] = {
    P1: ProviderStatus.APPROVED, P2: ProviderStatus.APPROVED, P3: ProviderStatus.APPROVED,
}
OPTIONS = [
    {"option": "in_house", "description": "Council leisure team", "estimated_cost": None,
     "score": 40, "benefits": None, "risks": None},
    {"option": "mixed", "description": "Grants and a contract", "estimated_cost": D("900.00"),
     "score": 80, "benefits": "local reach", "risks": None},
]
NOT_APPROVED = [s for s in ProviderStatus if s is not ProviderStatus.APPROVED]


# --------------------------------------------------------------------------- helpers


def replay(events: Sequence[Any]) -> Any:
    """An aggregate rebuilt from its events alone."""
    return reduce(lambda aggregate, event: event.mutate(aggregate), events, None)


def unchanged(
    aggregate: Any, action: Callable[[], Any], match: str, field: str | None = None
) -> None:
    """`action` is refused with a message matching `match` (as invalid input naming `field`
    when one is given, else as a broken domain rule), and the aggregate is as it was."""
    before = copy.deepcopy(aggregate)
    if field is None:
        with pytest.raises(DomainRuleBroken, match=match):
            action()
    else:
        with pytest.raises(InvalidInput, match=match) as refused:
            action()
        assert refused.value.field == field
    assert aggregate.version == before.version
    assert aggregate.collect_events() == []
    assert aggregate == before


def new_need(envelope: str = "1000.00", lead: str = LEAD) -> Need:
    need = Need(  # type: ignore[call-arg]
        id=uuid4(), title="Healthy weight for teenagers", service_area="weight-management",
        population={"description": "Young people aged 13 to 17", "size": 42000},
        outcomes=[{"outcome_id": "oc1", "description": "Fewer teenagers living with obesity",
                   "measure_id": None, "target": "17%", "target_date": None}],
        outputs=["family sessions"], budget_envelope=D(envelope), starts_on="2026-04-01",
        ends_on="2029-03-31", lead_organisation=lead,
    )
    return need


def award(award_id: str, allocation: str, *providers: UUID, kind: str = "grant") -> dict[str, Any]:
    return {"award_id": award_id, "title": f"Award {award_id}", "arrangement_type": kind,
            "provider_ids": list(providers or (P1,)), "allocation": D(allocation)}


def appraised(envelope: str = "1000.00") -> Need:
    need = new_need(envelope)
    need.appraise_options(OPTIONS, "mixed", "the mix reaches more families")
    need.collect_events()
    return need


def decided(envelope: str = "1000.00") -> Need:
    need = appraised(envelope)
    need.decide("d1", [award("a1", "400.00")], "best value", "Cabinet", APPROVED)
    need.collect_events()
    return need


def new_agreement(
    parties: Sequence[tuple[UUID, str]] = ((P1, "600.00"), (P2, "300.00")),
    budget: str | None = None, signed: bool = True,
) -> Agreement:
    """Drafted for a decision of 2026-06-01 and, unless not `signed`, signed on 2026-06-15."""
    party_list = [{"provider_id": p, "allocation": D(a)} for p, a in parties]
    total = D(budget) if budget else sum((p["allocation"] for p in party_list), D(0))
    agreement = Agreement(  # type: ignore[call-arg]
        id=uuid4(), need_id=uuid4(), decision_id="d1", award_id="a1", title="Activities",
        arrangement_type="formal_contract", parties=party_list, starts_on="2026-07-01",
        ends_on="2029-03-31", budget=total, outcomes=[], reward_terms=None, risk_share=None,
        break_clauses=[], exit_plan="hand over to the leisure trust",
    )
    if signed:
        agreement.sign("2026-06-15", ["Jo Bloggs for the council"], "2026-06-15", "2026-06-01")
    return agreement


# Business time in the domain tests, for the rules that need it: a day by which every month
# these tests pay for has begun, and every agreement has started; the needs' horizon.
LATER, LATER_MONTH, HORIZON = "2030-12-01", "2030-12", "2031-03-31"
GREEN = "RAG green in 2026-Q3 (achievement 104.0% of target)"


def pay(agreement: Agreement, spend_id: str, provider_id: UUID, amount: Decimal, period: str,
        reference: str | None) -> None:
    agreement.record_spend(spend_id, provider_id, amount, period, reference,
                           this_month=LATER_MONTH)


def extend(agreement: Agreement, extension_id: str, new_end: str, justification: str,
           evidence: str) -> None:
    """Extend with performance data held for the agreement, late enough and within the need."""
    agreement.extend(extension_id, new_end, justification, evidence, today=LATER,
                     horizon=HORIZON, performance_data=GREEN)


def active(
    parties: Sequence[tuple[UUID, str]] = ((P1, "600.00"), (P2, "300.00")),
) -> Agreement:
    agreement = new_agreement(parties)
    agreement.activate("2026-07-01")
    agreement.collect_events()
    return agreement


def ended(how: EndingKind = EndingKind.COMPLETED) -> Agreement:
    agreement = active()
    agreement.end(how, "2029-03-31", "term served", how is EndingKind.EXITED, None)
    agreement.collect_events()
    return agreement


def shares(agreement: Agreement) -> list[Decimal]:
    return [p["allocation"] for p in agreement.parties]


# --------------------------------------------------------------------------- defining a need


def test_a_need_starts_at_objectives_with_its_envelope_as_the_pooled_budget() -> None:
    need = new_need()

    assert need.stage is SourcingStage.OBJECTIVES
    assert need.is_open
    assert need.pooled_budget == D("1000.00")
    assert need.committed == D(0)
    assert need.contributions_by_partner() == {LEAD: D("1000.00")}
    (defined,) = need.collect_events()
    assert isinstance(defined, Need.Defined)


@pytest.mark.parametrize(
    ("outcomes", "envelope", "starts", "ends", "field"),
    [
        ([], D(100), "2026-01-01", "2027-01-01", "outcomes"),
        ([{"description": "x"}], D(0), "2026-01-01", "2027-01-01", "budget_envelope"),
        ([{"description": "x"}], D(-1), "2026-01-01", "2027-01-01", "budget_envelope"),
        ([{"description": "x"}], D(100), "2026-01-01", "2026-01-01", "ends_on"),
        ([{"description": "x"}], D(100), "2026-01-01", "2025-12-31", "ends_on"),
    ],
    ids=["no-outcomes", "zero-envelope", "negative-envelope", "ends-on-start", "ends-before"],
)
def test_a_need_definition_keeps_the_rules(
    outcomes: list[dict[str, Any]], envelope: Decimal, starts: str, ends: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Need.check_definition(outcomes, envelope, starts, ends)
    assert refused.value.field == field


def test_a_good_need_definition_passes() -> None:
    Need.check_definition([{"description": "x"}], D("0.01"), "2026-01-01", "2026-01-02")


# --------------------------------------------------------------------------- pooled budgets


def test_contributions_add_up_into_the_pooled_budget_per_partner() -> None:
    need = new_need("1000.00")
    need.pledge("c1", "Northshire Police", D("250.00"), "community safety")
    need.pledge("c2", "Northshire ICB", D("500.50"), None)
    need.pledge("c3", "Northshire Police", D("49.50"), "top-up")

    assert need.pooled_budget == D("1800.00")
    assert need.contributions_by_partner() == {
        LEAD: D("1000.00"), "Northshire Police": D("299.50"), "Northshire ICB": D("500.50"),
    }
    assert sum(need.contributions_by_partner().values()) == need.pooled_budget
    assert list(need.contributions) == ["c1", "c2", "c3"]
    assert need.contributions["c1"] == {"contribution_id": "c1", "partner": "Northshire Police",
                                        "amount": D("250.00"), "note": "community safety"}
    assert len(need.collect_events()) == 4


@pytest.mark.parametrize("partner", [LEAD, LEAD.upper(), "northshire county council"])
def test_the_leads_own_budget_cannot_be_pledged_as_a_contribution(partner: str) -> None:
    need = new_need()
    need.collect_events()

    unchanged(need, lambda: need.pledge("c1", partner, D("10.00"), None), "envelope", "partner")
    assert need.pooled_budget == D("1000.00")


@pytest.mark.parametrize("amount", [D(0), D("-0.01")])
def test_a_contribution_must_be_more_than_zero(amount: Decimal) -> None:
    need = new_need()
    need.collect_events()

    unchanged(need, lambda: need.pledge("c1", "Police", amount, None), "more than zero",
              "amount")


# --------------------------------------------------------------------------- options and market


def test_options_are_appraised_with_one_recommended() -> None:
    need = new_need()
    need.appraise_options(OPTIONS, "mixed", "the mix reaches more families")

    assert need.options == OPTIONS
    assert need.recommended == "mixed"
    assert need.stage is SourcingStage.OPTIONS


def test_the_recommended_option_must_be_among_those_appraised() -> None:
    need = new_need()
    need.collect_events()

    unchanged(need, lambda: need.appraise_options(OPTIONS, "formal_contract", "why"),
              "one of the options", "recommended")


def test_each_option_is_appraised_once() -> None:
    need = new_need()
    need.collect_events()

    unchanged(need, lambda: need.appraise_options([OPTIONS[0], OPTIONS[0]], "in_house", "why"),
              "once", "options")


def test_options_may_be_reappraised_before_a_decision() -> None:
    need = appraised()
    need.appraise_options([OPTIONS[0]], "in_house", "the market is thin")

    assert need.recommended == "in_house"
    assert need.options == [OPTIONS[0]]


def test_market_engagement_is_recorded_each_time() -> None:
    need = appraised()
    need.engage_market("provider day", "2026-05-12", [P1, P2])
    need.engage_market("follow-up", "2026-05-20", [])

    assert need.stage is SourcingStage.MARKET_ENGAGEMENT
    assert need.engagements == [
        {"summary": "provider day", "engaged_on": "2026-05-12", "provider_ids": [P1, P2]},
        {"summary": "follow-up", "engaged_on": "2026-05-20", "provider_ids": []},
    ]


def test_no_reappraisal_or_market_engagement_after_a_decision() -> None:
    need = decided()

    unchanged(need, lambda: need.appraise_options(OPTIONS, "mixed", "again"),
              "cannot be re-appraised once a decision")
    unchanged(need, lambda: need.engage_market("late", "2026-06-01", [P1]),
              "comes before the decision")
    assert need.stage is SourcingStage.DECISION


# --------------------------------------------------------------------------- decisions


def test_a_decision_awards_to_approved_providers_and_commits_budget() -> None:
    need = appraised()
    need.decide("d1", [award("a1", "300.00", P1), award("a2", "200.00", P2, P3)],
                "best value", "Cabinet", APPROVED)

    assert need.stage is SourcingStage.DECISION
    assert need.committed == D("500.00")
    assert need.award("a2") == {**award("a2", "200.00", P2, P3), "decision_id": "d1"}
    assert need.decisions["d1"]["decision_maker"] == "Cabinet"


def test_options_must_be_appraised_before_deciding() -> None:
    need = new_need()
    need.engage_market("provider day", "2026-05-12", [P1])  # engaging is not appraising
    need.collect_events()

    unchanged(need, lambda: need.decide("d1", [award("a1", "1.00")], "r", "m", APPROVED),
              "appraise the sourcing options before deciding")


@pytest.mark.parametrize("status", NOT_APPROVED, ids=lambda s: s.value)
def test_no_award_to_a_provider_that_is_not_approved(status: ProviderStatus) -> None:
    need = appraised()
    statuses = {**APPROVED, P2: status}

    unchanged(need, lambda: need.decide("d1", [award("a1", "10.00", P1, P2)], "r", "m",
                                        statuses),
              f"provider {P2} is {status.value}: only approved providers can be commissioned")
    assert need.decisions == {}


def test_no_award_to_a_provider_not_in_the_network() -> None:
    need = appraised()
    stranger = uuid4()

    unchanged(need, lambda: need.decide("d1", [award("a1", "10.00", P1),
                                               award("a2", "10.00", stranger)], "r", "m",
                                        {**APPROVED, stranger: None}),
              f"provider {stranger} is not in the network")
    # A provider missing from the lookup altogether is treated the same way.
    unchanged(need, lambda: need.decide("d1", [award("a1", "10.00", stranger)], "r", "m", {}),
              f"provider {stranger} is not in the network")


def test_a_decision_awards_something() -> None:
    need = appraised()

    unchanged(need, lambda: need.decide("d1", [], "r", "m", APPROVED), "at least one", "awards")


@pytest.mark.parametrize("allocation", ["0", "-5.00"])
def test_every_award_allocates_something(allocation: str) -> None:
    need = appraised()

    unchanged(need, lambda: need.decide("d1", [award("a1", "5.00"), award("a2", allocation)],
                                        "r", "m", APPROVED),
              "allocates nothing", "awards")


def test_an_award_names_each_provider_once() -> None:
    need = appraised()

    unchanged(need, lambda: need.decide("d1", [award("a1", "5.00", P1, P2, P1)], "r", "m",
                                        APPROVED),
              "names a provider more than once", "awards")


def test_awards_exactly_the_pooled_budget_are_accepted() -> None:
    need = appraised("1000.00")
    need.pledge("c1", "Northshire Police", D("250.25"), None)

    need.decide("d1", [award("a1", "1000.00"), award("a2", "250.25", P2)], "r", "m", APPROVED)

    assert need.committed == need.pooled_budget == D("1250.25")


def test_awards_over_the_pooled_budget_are_refused_naming_the_figures() -> None:
    need = appraised("1000.00")
    need.pledge("c1", "Northshire Police", D("250.00"), None)
    need.collect_events()

    unchanged(need, lambda: need.decide("d1", [award("a1", "1000.00"), award("a2", "250.01")],
                                        "r", "m", APPROVED),
              r"awards total £1,250.01 but only £1,250.00 of the £1,250.00 budget")


def test_the_envelope_alone_is_the_limit_without_contributions() -> None:
    need = appraised("1000.00")

    unchanged(need, lambda: need.decide("d1", [award("a1", "1000.01")], "r", "m", APPROVED),
              "only £1,000.00")


def test_allocations_are_cumulative_over_several_decisions() -> None:
    need = appraised("1000.00")
    need.decide("d1", [award("a1", "600.00")], "first", "m", APPROVED)
    need.decide("d2", [award("a2", "300.00", P2)], "second", "m", APPROVED)
    need.collect_events()

    unchanged(need, lambda: need.decide("d3", [award("a3", "100.01", P3)], "r", "m", APPROVED),
              r"awards total £100.01 but only £100.00 of the £1,000.00 budget is uncommitted")

    # A later contribution makes room; the exact remainder is accepted.
    need.pledge("c1", "Northshire ICB", D("0.01"), None)
    need.decide("d3", [award("a3", "100.01", P3)], "r", "m", APPROVED)
    assert need.committed == need.pooled_budget == D("1000.01")
    need.collect_events()
    unchanged(need, lambda: need.decide("d4", [award("a4", "0.01")], "r", "m", APPROVED),
              "only £0.00")


def test_an_unknown_award_is_refused() -> None:
    need = decided()

    with pytest.raises(DomainRuleBroken, match="has no award nope"):
        need.award("nope")


# --------------------------------------------------------------------------- later stages


@pytest.mark.parametrize("stage", list(SourcingStage)[4:], ids=lambda s: s.value)
def test_later_stages_come_only_after_a_decision(stage: SourcingStage) -> None:
    need = appraised()

    unchanged(need, lambda: need.reach_stage(stage, "notes"),
              f"{stage.value} comes after a commissioning decision")


@pytest.mark.parametrize("stage", list(SourcingStage)[:4], ids=lambda s: s.value)
def test_only_the_later_stages_are_reached_by_a_step(stage: SourcingStage) -> None:
    need = decided()

    unchanged(need, lambda: need.reach_stage(stage, "notes"),
              "only mobilisation, management, review or exit", "stage")


def test_stages_move_forwards_only() -> None:
    need = decided()
    need.reach_stage(SourcingStage.MOBILISATION, "kick-off")
    need.reach_stage(SourcingStage.REVIEW, "management skipped in a short pilot")
    need.collect_events()
    assert need.stage is SourcingStage.REVIEW

    for earlier in (SourcingStage.MOBILISATION, SourcingStage.MANAGEMENT, SourcingStage.REVIEW):
        unchanged(need, lambda earlier=earlier: need.reach_stage(earlier, "back"),
                  "already at review")
    need.reach_stage(SourcingStage.EXIT, "winding down")
    assert need.stage is SourcingStage.EXIT
    need.collect_events()
    unchanged(need, lambda: need.reach_stage(SourcingStage.EXIT, "again"), "already at exit")


# --------------------------------------------------------------------------- closing


def test_a_closed_need_refuses_everything() -> None:
    need = decided()
    need.close("withdrawn: funding ended")
    need.collect_events()
    assert not need.is_open
    assert need.closed_reason == "withdrawn: funding ended"

    refused: list[Callable[[], Any]] = [
        lambda: need.pledge("c1", "Police", D("1.00"), None),
        lambda: need.appraise_options(OPTIONS, "mixed", "r"),
        lambda: need.engage_market("s", "2026-05-12", []),
        lambda: need.decide("d2", [award("a2", "1.00")], "r", "m", APPROVED),
        lambda: need.reach_stage(SourcingStage.MOBILISATION, "n"),
        lambda: need.close("again"),
    ]
    for action in refused:
        unchanged(need, action, r"the need is closed \(withdrawn: funding ended\)")


def test_a_need_closes_at_any_stage() -> None:
    need = new_need()
    need.close("superseded")
    assert need.closed_reason == "superseded"
    assert need.stage is SourcingStage.OBJECTIVES


# --------------------------------------------------------------------------- agreement terms

PARTIES = [{"provider_id": P1, "allocation": D("600.00")},
           {"provider_id": P2, "allocation": D("400.00")}]
EVEN = {"council_pct": D("50"), "provider_pct": D("50")}


def terms(**changes: Any) -> dict[str, Any]:
    given: dict[str, Any] = {"parties": PARTIES, "budget": D("1000.00"),
                             "starts_on": "2026-07-01", "ends_on": "2029-03-31",
                             "exit_plan": "hand over", "risk_share": EVEN}
    return {**given, **changes}


@pytest.mark.parametrize("risk_share", [None, EVEN, {"council_pct": D("100"),
                                                     "provider_pct": D("0")},
                                        {"council_pct": D("33.5"), "provider_pct": D("66.5")}])
def test_good_terms_pass(risk_share: dict[str, Any] | None) -> None:
    check_terms(**terms(risk_share=risk_share))


@pytest.mark.parametrize(
    ("changes", "field", "match"),
    [
        ({"budget": D(0)}, "budget", "more than zero"),
        ({"parties": []}, "parties", "at least one provider"),
        ({"parties": [PARTIES[0], {**PARTIES[1], "provider_id": P1}]}, "parties", "once"),
        ({"parties": [PARTIES[0], {**PARTIES[1], "provider_id": str(P1)}]}, "parties", "once"),
        ({"budget": D("1000.01")}, "parties", "add up to the budget"),
        ({"parties": [PARTIES[0]]}, "parties", "add up to the budget"),
        ({"ends_on": "2026-07-01"}, "ends_on", "after starts_on"),
        ({"ends_on": "2026-06-30"}, "ends_on", "after starts_on"),
        ({"exit_plan": ""}, "exit_plan", "exit plan"),
        ({"exit_plan": "   "}, "exit_plan", "exit plan"),
        ({"risk_share": {"council_pct": D(50), "provider_pct": D(40)}}, "risk_share", "100"),
        ({"risk_share": {"council_pct": D(60), "provider_pct": D(50)}}, "risk_share", "100"),
    ],
    ids=["zero-budget", "no-parties", "same-party-twice", "same-party-as-text", "sum-short",
         "sum-over", "ends-on-start", "ends-before", "no-exit-plan", "blank-exit-plan",
         "risk-under-100", "risk-over-100"],
)
def test_bad_terms_are_refused_naming_the_field(
    changes: dict[str, Any], field: str, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match) as refused:
        check_terms(**terms(**changes))
    assert refused.value.field == field


# --------------------------------------------------------------------------- activation


def test_an_agreement_is_drafted_then_activated_once() -> None:
    agreement = new_agreement()
    assert agreement.status is AgreementStatus.DRAFTED
    agreement.activate("2026-07-02")
    agreement.collect_events()

    assert agreement.status is AgreementStatus.ACTIVE
    assert agreement.activated_on == "2026-07-02"
    unchanged(agreement, lambda: agreement.activate("2026-07-03"),
              "cannot activate it: the agreement is active, not drafted")


@pytest.mark.parametrize(
    "action",
    [
        lambda a: a.vary("v1", VariationKind.GROWTH, D("10.00"), None, "more"),
        lambda a: extend(a, "e1", "2030-03-31", "good", "ahead of target"),
        lambda a: a.propose_business_case("b1", "more", "more", D("10.00")),
        lambda a: pay(a, "s1", P1, D("1.00"), "2026-07", None),
        lambda a: a.end(EndingKind.COMPLETED, "2029-03-31", "done", False, None),
    ],
    ids=["vary", "extend", "business-case", "spend", "end"],
)
def test_a_drafted_agreement_does_nothing_until_active(action: Callable[[Agreement], Any]) -> None:
    agreement = new_agreement()
    agreement.collect_events()

    unchanged(agreement, lambda: action(agreement), "drafted|before the agreement is active")


# --------------------------------------------------------------------------- variations


def test_variations_keep_their_history_with_the_budget_before_and_after() -> None:
    agreement = active()
    agreement.vary("v1", VariationKind.GROWTH, D("90.00"), "two more schools", "demand")
    agreement.vary("v2", VariationKind.BUDGET_CHANGE, D("-490.00"), None, "savings")
    agreement.vary("v3", VariationKind.SCOPE_CHANGE, D(0), "evenings only", "venue hours")

    assert agreement.budget == D("500.00")
    assert [(v["variation_id"], v["kind"], v["budget_change"], v["new_budget"], v["scope"])
            for v in agreement.variations] == [
        ("v1", "growth", D("90.00"), D("990.00"), "two more schools"),
        ("v2", "budget_change", D("-490.00"), D("500.00"), None),
        ("v3", "scope_change", D(0), D("500.00"), "evenings only"),
    ]
    befores = [v["new_budget"] - v["budget_change"] for v in agreement.variations]
    assert befores == [D("900.00"), D("990.00"), D("500.00")]
    assert all(v["business_case_id"] is None for v in agreement.variations)
    assert len(agreement.collect_events()) == 3


def test_parties_keep_their_shares_as_the_budget_changes() -> None:
    agreement = active(((P1, "600.00"), (P2, "300.00")))  # two thirds and one third
    agreement.vary("v1", VariationKind.GROWTH, D("100.00"), None, "growth")

    assert shares(agreement) == [D("666.67"), D("333.33")]
    assert sum(shares(agreement)) == agreement.budget == D("1000.00")

    # 200.001 and 99.999: the penny left over goes to the larger remainder.
    agreement.vary("v2", VariationKind.BUDGET_CHANGE, D("-700.00"), None, "cut")
    assert shares(agreement) == [D("200.00"), D("100.00")]
    assert [p["provider_id"] for p in agreement.parties] == [P1, P2]


def test_rounding_pennies_go_to_the_largest_remainders_and_the_total_is_exact() -> None:
    agreement = active(((P1, "100.00"), (P2, "100.00"), (P3, "100.00")))
    agreement.vary("v1", VariationKind.GROWTH, D("0.01"), None, "a penny")

    assert shares(agreement) == [D("100.01"), D("100.00"), D("100.00")]  # a tie: the lead

    changes = ["0.02", "-0.05", "17.17", "-33.33", "1234.56", "0.01", "-999.99"]
    for i, change in enumerate(changes):
        agreement.vary(f"v{i + 2}", VariationKind.BUDGET_CHANGE, D(change), None, "odd sums")
        assert sum(shares(agreement)) == agreement.budget
        assert all(s == s.quantize(D("0.01")) for s in shares(agreement))
    assert agreement.budget == D("300.01") + sum(D(c) for c in changes)


def test_shares_never_go_negative_when_a_budget_shrinks_to_pennies() -> None:
    agreement = active(((P1, "0.18"), (P2, "0.71"), (P3, "0.74")))
    agreement.vary("v1", VariationKind.BUDGET_CHANGE, D("-1.61"), None, "almost all cut")

    assert agreement.budget == D("0.02")
    assert shares(agreement) == [D("0.00"), D("0.01"), D("0.01")]


def test_shares_add_up_and_stay_non_negative_over_many_variations() -> None:
    import random

    rng = random.Random(4)
    for _ in range(200):
        parties = [(p, f"{rng.randint(1, 30000) / 100:.2f}") for p in (P1, P2, P3)]
        agreement = active(parties)
        for i in range(5):
            budget = agreement.budget
            target = D(rng.randint(1, int(budget * 300))) / 100
            if target != budget:
                agreement.vary(f"v{i}", VariationKind.BUDGET_CHANGE, target - budget, None,
                               "random")
            assert sum(shares(agreement)) == agreement.budget
            assert all(s >= 0 and s == s.quantize(D("0.01")) for s in shares(agreement))


def test_a_variation_cannot_take_the_budget_to_zero_or_below() -> None:
    agreement = active()

    for change in ("-900.00", "-900.01"):
        unchanged(agreement, lambda change=change: agreement.vary(
            "v1", VariationKind.BUDGET_CHANGE, D(change), None, "cut"), "zero or below")


def test_a_variation_cannot_take_the_budget_below_what_is_spent() -> None:
    agreement = active()
    pay(agreement, "s1", P1, D("500.00"), "2026-07", None)
    agreement.collect_events()

    unchanged(agreement, lambda: agreement.vary("v1", VariationKind.BUDGET_CHANGE,
                                                D("-400.01"), None, "cut"),
              r"cannot fall below the £500.00 already spent")
    agreement.vary("v1", VariationKind.BUDGET_CHANGE, D("-400.00"), None, "cut to spend")
    assert agreement.budget == agreement.spent == D("500.00")


def test_a_variation_changes_the_budget_or_the_scope() -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.vary("v1", VariationKind.SCOPE_CHANGE, D(0), None,
                                                "nothing"), "budget or the scope",
              "budget_change")


def test_business_case_variations_come_only_from_approving_one() -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.vary("v1", VariationKind.BUSINESS_CASE, D("10.00"),
                                                None, "sneaky"), "approving one", "kind")


# --------------------------------------------------------------------------- extensions


def test_extensions_keep_their_history_and_move_the_end_later() -> None:
    agreement = active()
    extend(agreement, "e1", "2030-03-31", "ahead of trajectory", "18.2% against 19% planned")
    extend(agreement, "e2", "2030-09-30", "still ahead", "17.9% against 18.5%")

    assert agreement.ends_on == "2030-09-30"
    held = {"performance_data": GREEN, "override_reason": None, "override_approved_by": None}
    assert agreement.extensions == [
        {"extension_id": "e1", "previous_end": "2029-03-31", "new_end": "2030-03-31",
         "justification": "ahead of trajectory",
         "performance_evidence": "18.2% against 19% planned", **held},
        {"extension_id": "e2", "previous_end": "2030-03-31", "new_end": "2030-09-30",
         "justification": "still ahead", "performance_evidence": "17.9% against 18.5%", **held},
    ]


@pytest.mark.parametrize("new_end", ["2029-03-31", "2029-03-30", "2027-01-01"])
def test_an_extension_must_move_the_end_later(new_end: str) -> None:
    agreement = active()

    unchanged(agreement, lambda: extend(agreement, "e1", new_end, "good", "evidence"),
              "after the current end, 2029-03-31", "new_end")


@pytest.mark.parametrize("evidence", ["", "   "])
def test_an_extension_is_justified_by_performance_evidence(evidence: str) -> None:
    agreement = active()

    unchanged(agreement, lambda: extend(agreement, "e1", "2030-03-31", "good", evidence),
              "justified by performance", "performance_evidence")


# --------------------------------------------------------------------------- business cases


def test_an_approved_business_case_varies_the_budget_by_its_cost() -> None:
    agreement = active(((P1, "600.00"), (P2, "300.00")))
    agreement.propose_business_case("b1", "new estate", "200 more families", D("90.00"))
    assert agreement.business_cases["b1"]["status"] == "proposed"
    assert agreement.budget == D("900.00")  # proposing changes nothing yet

    agreement.approve_business_case("b1", "need and outcomes agreed", "v1")

    assert agreement.business_cases["b1"]["status"] == "approved"
    assert agreement.business_cases["b1"]["reason"] == "need and outcomes agreed"
    assert agreement.budget == D("990.00")
    assert agreement.variations == [{
        "variation_id": "v1", "kind": "business_case", "budget_change": D("90.00"),
        "new_budget": D("990.00"), "scope": "new estate", "reason": "need and outcomes agreed",
        "business_case_id": "b1",
    }]
    assert shares(agreement) == [D("660.00"), D("330.00")]
    events = agreement.collect_events()
    assert [type(e) for e in events] == [
        Agreement.BusinessCaseProposed, Agreement.BusinessCaseApproved, Agreement.Varied,
    ]


def test_a_rejected_business_case_changes_nothing_else() -> None:
    agreement = active()
    agreement.propose_business_case("b1", "new estate", "more families", D("90.00"))
    agreement.reject_business_case("b1", "covered elsewhere")

    assert agreement.business_cases["b1"]["status"] == "rejected"
    assert agreement.business_cases["b1"]["reason"] == "covered elsewhere"
    assert agreement.budget == D("900.00")
    assert agreement.variations == []


@pytest.mark.parametrize("first", ["approve", "reject"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_a_business_case_is_not_decided_twice(first: str, second: str) -> None:
    agreement = active()
    agreement.propose_business_case("b1", "new estate", "more families", D("90.00"))
    decide = {
        "approve": lambda: agreement.approve_business_case("b1", "agreed", "v9"),
        "reject": lambda: agreement.reject_business_case("b1", "no"),
    }
    decide[first]()
    agreement.collect_events()

    unchanged(agreement, decide[second],
              f"business case b1 is already {'approved' if first == 'approve' else 'rejected'}")


def test_an_unknown_business_case_cannot_be_decided() -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.approve_business_case("nope", "r", "v1"),
              "no business case nope")
    unchanged(agreement, lambda: agreement.reject_business_case("nope", "r"),
              "no business case nope")


@pytest.mark.parametrize("cost", [D(0), D("-1.00")])
def test_a_business_case_costs_something(cost: Decimal) -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.propose_business_case("b1", "n", "o", cost),
              "more than zero", "cost")


# --------------------------------------------------------------------------- spend


def test_spend_is_recorded_up_to_exactly_the_budget() -> None:
    agreement = active()
    pay(agreement, "s1", P1, D("600.00"), "2026-07", "INV-1")
    pay(agreement, "s2", P2, D("299.99"), "2026-08", None)
    agreement.collect_events()

    unchanged(agreement, lambda: pay(agreement, "s3", P2, D("0.02"), "2026-09", None),
              r"£0.02 would take spend to £900.01, over the £900.00 budget")
    pay(agreement, "s3", P2, D("0.01"), "2026-09", None)
    assert agreement.spent == agreement.budget == D("900.00")
    assert agreement.spend["s1"] == {"spend_id": "s1", "provider_id": P1,
                                     "amount": D("600.00"), "period": "2026-07",
                                     "reference": "INV-1", "due_id": None}


def test_varying_the_budget_up_makes_room_for_more_spend() -> None:
    agreement = active()
    pay(agreement, "s1", P1, D("900.00"), "2026-07", None)
    agreement.vary("v1", VariationKind.GROWTH, D("50.00"), None, "growth")
    pay(agreement, "s2", P2, D("50.00"), "2026-08", None)

    assert agreement.spent == agreement.budget == D("950.00")


def test_only_a_party_is_paid() -> None:
    agreement = active()

    unchanged(agreement, lambda: pay(agreement, "s1", P3, D("1.00"), "2026-07", None),
              "not a party", "provider_id")


@pytest.mark.parametrize("amount", [D(0), D("-1.00")])
def test_spend_is_more_than_zero(amount: Decimal) -> None:
    agreement = active()

    unchanged(agreement, lambda: pay(agreement, "s1", P1, amount, "2026-07", None),
              "more than zero", "amount")


def test_spend_is_recorded_after_an_agreement_ends_but_never_over_budget() -> None:
    agreement = ended()
    pay(agreement, "s1", P1, D("900.00"), "2029-03", "final invoice")

    assert agreement.spent == D("900.00")
    agreement.collect_events()
    unchanged(agreement, lambda: pay(agreement, "s2", P1, D("0.01"), "2029-04", None),
              "over the")


# --------------------------------------------------------------------------- ending


@pytest.mark.parametrize(("how", "executed"), [
    (EndingKind.COMPLETED, False), (EndingKind.COMPLETED, True),
    (EndingKind.TERMINATED, False), (EndingKind.EXITED, True),
])
def test_an_active_agreement_ends(how: EndingKind, executed: bool) -> None:
    agreement = active()
    agreement.end(how, "2028-01-31", "ended", executed, "notes")

    assert agreement.status is AgreementStatus.ENDED
    assert agreement.ending == {"how": how.value, "ended_on": "2028-01-31", "reason": "ended",
                                "exit_plan_executed": executed, "exit_notes": "notes"}


def test_an_exit_needs_the_exit_plan_executed() -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.end(EndingKind.EXITED, "2028-01-31", "exit", False,
                                               None),
              "executing the exit plan", "exit_plan_executed")


def test_an_agreement_cannot_end_before_it_started() -> None:
    agreement = new_agreement()
    agreement.activate("2026-08-01")
    agreement.collect_events()

    unchanged(agreement, lambda: agreement.end(EndingKind.TERMINATED, "2026-07-31", "r", False,
                                               None),
              "before the agreement started", "ended_on")
    agreement.end(EndingKind.TERMINATED, "2026-08-01", "same day", False, None)
    assert agreement.status is AgreementStatus.ENDED


@pytest.mark.parametrize(
    "action",
    [
        lambda a: a.activate("2030-01-01"),
        lambda a: a.vary("v1", VariationKind.GROWTH, D("10.00"), None, "more"),
        lambda a: a.vary("v1", VariationKind.SCOPE_CHANGE, D(0), "other", "scope"),
        lambda a: extend(a, "e1", "2031-03-31", "good", "ahead of target"),
        lambda a: a.propose_business_case("b1", "more", "more", D("10.00")),
        lambda a: a.end(EndingKind.TERMINATED, "2030-01-01", "again", False, None),
    ],
    ids=["activate", "vary", "vary-scope", "extend", "business-case", "end-again"],
)
def test_an_ended_agreement_refuses_changes(action: Callable[[Agreement], Any]) -> None:
    agreement = ended(EndingKind.EXITED)

    unchanged(agreement, lambda: action(agreement), "the agreement is ended")


def test_a_pending_business_case_cannot_be_approved_once_the_agreement_ends() -> None:
    agreement = active()
    agreement.propose_business_case("b1", "more", "more", D("10.00"))
    agreement.end(EndingKind.COMPLETED, "2029-03-31", "done", False, None)
    agreement.collect_events()

    unchanged(agreement, lambda: agreement.approve_business_case("b1", "late", "v1"),
              "the agreement is ended")


# --------------------------------------------------------------------------- the pooled envelope


def test_a_change_of_budget_commits_against_the_pooled_envelope_and_a_decrease_frees_it() -> None:
    need = appraised("1000.00")
    need.pledge("c1", "Northshire ICB", D("200.00"), None)
    need.decide("d1", [award("a1", "1150.00")], "r", "m", APPROVED)  # pooled 1,200.00
    agreement_id = uuid4()
    need.collect_events()

    # 1,150.00 + 80.00 = 1,230.00 against 1,000.00 + 200.00 = 1,200.00: 30.00 short.
    unchanged(need, lambda: need.vary_commitment(agreement_id, "v1", D("80.00"), "variation"),
              r"this variation of £80.00 would commit £1,230.00 against the pooled envelope of "
              r"£1,200.00: £30.00 short; raise the envelope first")
    need.vary_commitment(agreement_id, "v1", D("-50.00"), "variation")  # 1,100.00
    need.vary_commitment(agreement_id, "v2", D("100.00"), "business case", "b1")  # 1,200.00
    assert need.committed == need.pooled_budget == D("1200.00")
    need.collect_events()
    unchanged(need, lambda: need.vary_commitment(agreement_id, "v3", D("0.01"), "variation"),
              r"£0.01 short")


def test_the_envelope_is_raised_by_a_recorded_decision() -> None:
    need = decided("1000.00")  # 400.00 awarded
    need.vary_commitment(uuid4(), "v1", D("600.00"), "variation")  # 1,000.00: all of it
    need.raise_envelope("r1", D("30.00"), "Cabinet top-up, 4 March", "integrator_admin:sam")

    assert need.budget_envelope == need.pooled_budget == D("1030.00")
    assert need.contributions_by_partner() == {LEAD: D("1030.00")}
    assert need.envelope_raises == [{"raise_id": "r1", "amount": D("30.00"),
                                     "reason": "Cabinet top-up, 4 March",
                                     "decided_by": "integrator_admin:sam"}]
    need.vary_commitment(uuid4(), "v2", D("30.00"), "variation")
    assert need.committed == D("1030.00")
    need.collect_events()
    unchanged(need, lambda: need.raise_envelope("r2", D(0), "why", "x"), "more than nothing",
              "amount")
    unchanged(need, lambda: need.raise_envelope("r2", D(1), "  ", "x"), "why", "reason")


def test_an_increase_is_refused_once_the_need_is_closed_but_a_decrease_is_not() -> None:
    need = decided("1000.00")
    need.close("withdrawn")
    need.collect_events()

    unchanged(need, lambda: need.vary_commitment(uuid4(), "v1", D("1.00"), "variation"),
              "the need is closed")
    need.vary_commitment(uuid4(), "v1", D("-1.00"), "variation")
    assert need.committed == D("399.00")


# --------------------------------------------------------------------------- delegation


def scheme(*limits: tuple[str, DecisionKind, str | None]) -> SchemeOfDelegation:
    made = SchemeOfDelegation(id=uuid4(), council=LEAD)  # type: ignore[call-arg]
    made.set_limits([{"role": role, "kind": kind.value, "up_to": None if up_to is None
                      else D(up_to)} for role, kind, up_to in limits],
                    "2024-04-01", "financial regulations")
    return made


def authority(held: SchemeOfDelegation | None, kind: DecisionKind, amount: str, role: str,
              approver: str, proposer: str | None = None) -> None:
    check_authority(held, LEAD, kind, D(amount), role, approver, proposer)


SCHEME_OF_2024 = scheme(("commissioner", DecisionKind.VARIATION, "50000.00"),
                        ("integrator_admin", DecisionKind.VARIATION, None),
                        ("commissioner", DecisionKind.AWARD, "250000.00"))


def test_a_commissioner_approves_up_to_their_limit_and_no_further() -> None:
    authority(SCHEME_OF_2024, DecisionKind.VARIATION, "50000.00", "commissioner",
              "commissioner:Jo Bloggs")
    authority(SCHEME_OF_2024, DecisionKind.VARIATION, "80000.00", "integrator_admin",
              "integrator_admin:sam")
    with pytest.raises(NotAuthorised) as refused:
        authority(SCHEME_OF_2024, DecisionKind.VARIATION, "80000.00", "commissioner",
                  "commissioner:Jo Bloggs")
    assert str(refused.value) == (
        "commissioner:Jo Bloggs may approve variations up to £50,000.00 under Northshire "
        "County Council's scheme of delegation (set 2024-04-01); this one is £80,000.00: an "
        "integrator admin must approve it")


def test_a_kind_not_listed_for_a_role_is_not_that_roles_to_decide() -> None:
    with pytest.raises(NotAuthorised, match=r"integrator_admin:sam may not approve awards .*"
                       r"this one is £1\.00: a commissioner must approve it"):
        authority(SCHEME_OF_2024, DecisionKind.AWARD, "1.00", "integrator_admin",
                  "integrator_admin:sam")
    with pytest.raises(NotAuthorised, match=r"may not approve spend .*no one may approve it"):
        authority(SCHEME_OF_2024, DecisionKind.SPEND, "1.00", "commissioner", "commissioner:jo")


def test_before_any_scheme_only_an_integrator_admin_decides() -> None:
    authority(None, DecisionKind.AWARD, "9999999.99", "integrator_admin", "integrator_admin:sam")
    with pytest.raises(NotAuthorised, match=f"no scheme of delegation is set for {LEAD}, so "
                       r"only an integrator admin may approve extensions \(this one is £1.00\)"):
        authority(None, DecisionKind.EXTENSION, "1.00", "commissioner", "commissioner:jo")


def test_nobody_approves_what_they_proposed_whatever_their_limit() -> None:
    with pytest.raises(NotAuthorised, match="integrator_admin:sam proposed this business case, "
                       "so may not approve it"):
        authority(None, DecisionKind.BUSINESS_CASE, "1.00", "integrator_admin",
                  "integrator_admin:sam", proposer="integrator_admin:sam")
    authority(None, DecisionKind.BUSINESS_CASE, "1.00", "integrator_admin",
              "integrator_admin:sam", proposer="commissioner:jo")


def test_a_business_case_is_not_approved_by_its_proposer() -> None:
    agreement = active()
    agreement.propose_business_case("b1", "estate", "families", D("10.00"),
                                    proposed_by="commissioner:jo")
    agreement.collect_events()

    with pytest.raises(NotAuthorised, match="commissioner:jo proposed this business case"):
        agreement.approve_business_case("b1", "agreed", "v1", approved_by="commissioner:jo")
    assert agreement.collect_events() == []
    agreement.approve_business_case("b1", "agreed", "v1", approved_by="commissioner:kim")
    assert (agreement.business_cases["b1"]["proposed_by"],
            agreement.business_cases["b1"]["approved_by"]) == ("commissioner:jo",
                                                               "commissioner:kim")


def test_a_scheme_gives_each_role_one_limit_per_kind() -> None:
    made = scheme(("commissioner", DecisionKind.SPEND, "10.00"))
    history = made.collect_events()
    twice = [{"role": "commissioner", "kind": "spend", "up_to": D(5)}] * 2
    unchanged(made, lambda: made.set_limits(twice, "2024-05-01", "again"), "two limits",
              "limits")
    unchanged(made, lambda: made.set_limits([], "2024-05-01", "none"), "at least one",
              "limits")
    made.set_limits([{"role": "commissioner", "kind": "spend", "up_to": D(5)}], "2024-05-01",
                    "lower")
    assert made.limit("commissioner", DecisionKind.SPEND) == (True, D(5))
    assert made.limit("commissioner", DecisionKind.AWARD) == (False, None)
    assert replay([*history, *made.collect_events()]) == made


# --------------------------------------------------------------------------- dates


def test_an_agreement_is_signed_then_comes_into_force_no_earlier() -> None:
    agreement = new_agreement(signed=False)
    agreement.collect_events()

    unchanged(agreement, lambda: agreement.activate("2026-07-01"), "not been signed")
    unchanged(agreement, lambda: agreement.sign("2026-06-16", ["Jo"], "2026-06-15", None),
              r"cannot be in the future \(today is 2026-06-15\)", "signed_on")
    unchanged(agreement, lambda: agreement.sign("2026-05-31", ["Jo"], "2026-06-15",
                                                "2026-06-01"),
              "before the commissioning decision of 2026-06-01", "signed_on")
    unchanged(agreement, lambda: agreement.sign("2026-06-15", [" "], "2026-06-15", None),
              "at least one signatory", "signatories")
    agreement.sign("2026-06-01", ["Jo Bloggs for the council"], "2026-06-15", "2026-06-01")
    agreement.collect_events()
    unchanged(agreement, lambda: agreement.sign("2026-06-02", ["Jo"], "2026-06-15", None),
              "already signed on 2026-06-01")
    unchanged(agreement, lambda: agreement.activate("2026-05-31"),
              "before the agreement was signed on 2026-06-01", "activated_on")
    agreement.activate("2026-06-01")
    assert (agreement.signed_on, agreement.signatories, agreement.activated_on) == (
        "2026-06-01", ["Jo Bloggs for the council"], "2026-06-01")


def test_spend_is_for_a_month_already_begun() -> None:
    agreement = active()

    unchanged(agreement, lambda: agreement.record_spend("s1", P1, D("1.00"), "2026-10", None,
                                                        this_month="2026-09"),
              "2026-10 has not yet begun", "period")
    agreement.record_spend("s1", P1, D("1.00"), "2026-09", None, this_month="2026-09")
    assert agreement.spent == D("1.00")


def test_an_extension_is_justified_by_performance_data_held_or_an_authorised_override() -> None:
    agreement = active()  # starts 2026-07-01, in force from 2026-07-01, ends 2029-03-31
    agreement.collect_events()

    def extending(today: str = LATER, horizon: str = HORIZON, data: str | None = None,
                  override: tuple[str, str] | None = None,
                  new_end: str = "2030-03-31") -> Callable[[], None]:
        return lambda: agreement.extend("e1", new_end, "good", "the provider says so",
                                        today=today, horizon=horizon, performance_data=data,
                                        override=override)

    unchanged(agreement, extending(), "no performance data for this agreement yet")
    unchanged(agreement, extending(data=GREEN, today="2026-06-30"),
              "before the agreement starts on 2026-07-01")
    unchanged(agreement, extending(data=GREEN, horizon="2030-03-30"),
              "past the need's horizon: the need ends on 2030-03-30", "new_end")
    extending(override=("continuity over winter", "integrator_admin:sam"))()
    extending(data=GREEN, override=("not needed", "x"), new_end="2030-09-30")()
    first, second = agreement.extensions
    assert (first["performance_data"], first["override_reason"],
            first["override_approved_by"]) == (None, "continuity over winter",
                                               "integrator_admin:sam")
    assert (second["performance_data"], second["override_reason"]) == (GREEN, None)


def test_old_logs_replay_without_the_new_facts() -> None:
    """Agreements in force before signatures were recorded, and events written before the
    fields added for these controls, replay and can still be changed."""
    agreement = new_agreement(signed=False)
    agreement._activated("2026-07-01")  # as AgreementActivated was stored, unsigned
    agreement._extended("e1", "2029-03-31", "2030-03-31", "good", "evidence")
    agreement._business_case_proposed("b1", "estate", "families", D("10.00"))
    agreement._business_case_approved("b1", "agreed")
    events = agreement.collect_events()
    rebuilt = replay(events)

    assert rebuilt == agreement
    assert (rebuilt.signed_on, rebuilt.status) == (None, AgreementStatus.ACTIVE)
    assert rebuilt.extensions[0]["performance_data"] is None
    assert rebuilt.business_cases["b1"]["proposed_by"] is None
    rebuilt.vary("v1", VariationKind.GROWTH, D("1.00"), None, "still changeable")
    need = new_need()
    need.appraise_options(OPTIONS, "mixed", "the mix")
    need._decided("d1", [award("a1", "1.00")], "r", "m")  # as CommissioningDecided was stored
    assert replay(need.collect_events()).decisions["d1"]["decided_on"] is None


# --------------------------------------------------------------------------- replay


def test_a_long_need_history_replays_to_an_equal_need() -> None:
    need = new_need()
    need.pledge("c1", "Northshire Police", D("250.00"), "safety")
    need.pledge("c2", "Northshire ICB", D("100.00"), None)
    need.engage_market("early soundings", "2026-04-10", [P1])
    need.appraise_options(OPTIONS, "mixed", "the mix")
    need.engage_market("provider day", "2026-05-12", [P1, P2])
    need.decide("d1", [award("a1", "600.00", P1), award("a2", "300.00", P2, P3)], "r", "m",
                APPROVED)
    need.decide("d2", [award("a3", "450.00", P3)], "r", "m", APPROVED)
    need.reach_stage(SourcingStage.MOBILISATION, "kick-off")
    need.reach_stage(SourcingStage.MANAGEMENT, "running")
    need.close("met")

    events = need.collect_events()
    rebuilt = replay(events)

    assert len(events) == need.version == 11
    assert isinstance(rebuilt, Need)
    assert rebuilt == need
    assert rebuilt.pooled_budget == rebuilt.committed == D("1350.00")
    assert rebuilt.contributions_by_partner() == need.contributions_by_partner()
    # Part of the history gives the need as it stood then.
    before_decisions = replay(events[:6])
    assert before_decisions.stage is SourcingStage.MARKET_ENGAGEMENT
    assert before_decisions.decisions == {}
    assert replay(events[:7]).committed == D("900.00")


def test_a_long_agreement_history_replays_to_an_equal_agreement() -> None:
    agreement = new_agreement(((P1, "600.00"), (P2, "300.00"), (P3, "100.00")))
    agreement.activate("2026-07-01")
    agreement.vary("v1", VariationKind.GROWTH, D("0.03"), "more", "growth")
    agreement.vary("v2", VariationKind.SCOPE_CHANGE, D(0), "evenings", "venue")
    extend(agreement, "e1", "2030-03-31", "ahead", "evidence")
    agreement.propose_business_case("b1", "estate", "families", D("77.77"))
    agreement.propose_business_case("b2", "estate 2", "families", D("10.00"))
    agreement.approve_business_case("b1", "agreed", "v3")
    agreement.reject_business_case("b2", "no")
    pay(agreement, "s1", P1, D("500.00"), "2026-08", "INV-1")
    pay(agreement, "s2", P3, D("33.33"), "2026-09", None)
    agreement.end(EndingKind.EXITED, "2030-03-31", "moved on", True, "transferred")
    pay(agreement, "s3", P2, D("1.00"), "2030-03", "final")

    events = agreement.collect_events()
    rebuilt = replay(events)

    assert len(events) == agreement.version == 15
    assert isinstance(rebuilt, Agreement)
    assert rebuilt == agreement
    assert rebuilt.parties == agreement.parties
    assert sum(shares(rebuilt)) == rebuilt.budget == D("1077.80")
    assert rebuilt.spent == D("534.33")
    assert replay(events[:4]).budget == D("1000.03")
    assert replay(events[:13]).status is AgreementStatus.ACTIVE


def test_a_lesson_replays_to_an_equal_lesson() -> None:
    lesson = Lesson(  # type: ignore[call-arg]
        id=uuid4(), need_id=uuid4(), agreement_id=None, stage="mobilisation", went="badly",
        what="venues late", why="grant letter late", tags=["venues"],
    )
    events = lesson.collect_events()

    assert replay(events) == lesson


# --------------------------------------------------------------------------- the application


@pytest.fixture
def statuses() -> dict[UUID, ProviderStatus | None]:
    return dict(APPROVED)


@pytest.fixture
def app(tmp_path: Path, statuses: dict[UUID, ProviderStatus | None]) -> Iterator[Integrator]:
    integrator = open_application(Integrator, Settings(var_dir=tmp_path))
    integrator.provider_status = statuses.get
    try:
        yield integrator
    finally:
        integrator.close()


def need_input(envelope: str = "1000.00") -> NewNeed:
    return NewNeed.model_validate({
        "title": "Healthy weight for teenagers", "service_area": "weight-management",
        "population": {"description": "Young people aged 13 to 17", "size": 42000},
        "outcomes": [{"description": "Fewer teenagers living with obesity", "target": "17%",
                      "target_date": "2027-03-31", "measure_id": str(uuid4())}],
        "outputs": ["family sessions"], "budget_envelope": envelope,
        "starts_on": "2026-04-01", "ends_on": "2031-03-31",
    })


APPRAISAL = OptionsAppraisal.model_validate({
    "options": [{"option": "in_house", "description": "Council team", "score": 40},
                {"option": "mixed", "description": "Grants and a contract",
                 "estimated_cost": "900", "score": 80, "benefits": "reach", "risks": "mix"}],
    "recommended": "mixed", "rationale": "the mix reaches more families",
})


def decision_input(*awards: tuple[str, str, list[UUID]]) -> NewDecision:
    return NewDecision.model_validate({
        "awards": [{"title": t, "arrangement_type": "grant", "provider_ids": [str(p) for p in ps],
                    "allocation": a} for t, a, ps in awards],
        "rationale": "best value for the outcomes", "decision_maker": "Cabinet",
    })


def agreement_input(need_id: UUID, award_id: str, **changes: Any) -> NewAgreement:
    return NewAgreement.model_validate({
        "need_id": str(need_id), "award_id": award_id, "starts_on": "2026-07-01",
        "ends_on": "2029-03-31", "exit_plan": "hand over to the leisure trust", **changes,
    })


ADMIN = Principal("t-sam", Role.INTEGRATOR_ADMIN, "sam")
JO = Principal("t-jo", Role.COMMISSIONER, "jo")
KIM = Principal("t-kim", Role.COMMISSIONER, "kim")
# A commissioner decides up to £2,000.00 of each kind; an integrator admin without limit.
SCHEME = DelegationLimits.model_validate({
    "limits": [{"role": role, "kind": kind.value, "up_to": up_to} for kind in DecisionKind
               for role, up_to in (("commissioner", "2000.00"), ("integrator_admin", None))],
    "reason": "financial regulations, part 4"})
SIGNATURE = Signature(signed_on=date(2026, 8, 20),
                      signatories=["Jo Bloggs for the council", "Amir Khan for Hillside"])


def stored_types(app: Integrator) -> list[str]:
    return [app.to_envelope(n).type
            for n in app.recorder.select_notifications(start=1, limit=1000)]


def test_the_integrator_publishes_exactly_its_catalogue_entries() -> None:
    from eventsourcing.domain import CanMutateAggregate

    catalogued = {spec.type for spec in all_specs() if spec.source == "integrator"}
    assert set(Integrator.published.values()) == catalogued
    assert len(Integrator.published) == len(catalogued)
    recordable = {
        value for kind in (Need, Agreement, Lesson, AuditRead, SchemeOfDelegation,
                           SignInAttempt)
        for value in vars(kind).values()
        if isinstance(value, type) and issubclass(value, CanMutateAggregate)
        and value not in (kind.Created, kind.Event)  # the library's base classes
    }
    assert recordable == set(Integrator.published)


@contextmanager
def acting_as(principal: Principal) -> Iterator[None]:
    """Commands run as `principal` (the events record it), in one correlation."""
    with command_context(CommandContext(actor=principal.actor, organisation="council",
                                        correlation_id="corr-1")):
        yield


def test_every_event_published_matches_its_contract(app: Integrator) -> None:
    app.performance_evidence = lambda _: GREEN
    with business_time(datetime(2026, 8, 20, 10, tzinfo=UTC)):
        with acting_as(ADMIN):
            app.set_delegation_limits(LEAD, SCHEME, ADMIN)
        with acting_as(JO):
            need_id = app.define_need(need_input())
            app.pledge_contribution(need_id, NewContribution(partner="Northshire ICB",
                                                             amount=D("500.00")))
            app.appraise_options(need_id, APPRAISAL)
            app.engage_market(need_id, MarketEngagement.model_validate(
                {"summary": "provider day", "engaged_on": "2026-05-12",
                 "provider_ids": [str(P1)]}))
            _, (a1, a2) = app.decide(need_id, decision_input(("Cooking", "900.00", [P1, P2]),
                                                             ("Activity", "600.00", [P3])), JO)
            app.reach_stage(need_id, StageStep(stage=SourcingStage.MOBILISATION,
                                               notes="kick-off"))
            agreement_id = app.draft_agreement(agreement_input(
                need_id, a1, reward_terms={"payment_by_results_share_pct": "10",
                                           "bonus_max": "50.00"},
                risk_share={"council_pct": "60", "provider_pct": "40"},
                outcomes=[{"outcome_id": "oc1", "target": "17%"}], break_clauses=["6 months"]))
            app.sign_agreement(agreement_id, SIGNATURE)
            app.activate(agreement_id, Activation(activated_on=date(2026, 8, 20)))
        with acting_as(ADMIN):  # 1,500.00 committed of 1,500.00: room for 100.00 + 45.50
            app.raise_envelope(need_id, EnvelopeRaise(amount=D("145.50"),
                                                      reason="Cabinet top-up"), ADMIN)
        with acting_as(JO):
            app.vary(agreement_id, NewVariation(kind=VariationKind.GROWTH,
                                                budget_change=D("100"), reason="demand is up"),
                     JO)
            app.extend(agreement_id, NewExtension(new_end=date(2030, 3, 31),
                                                  justification="ahead of plan",
                                                  performance_evidence="18% against 19%"), JO)
            case = app.propose_business_case(agreement_id, NewBusinessCase(
                need="new estate", expected_outcomes="more families", cost=D("45.50")), JO)
        with acting_as(KIM):
            app.approve_business_case(agreement_id, case, "need agreed", KIM)
        with acting_as(JO):
            rejected = app.propose_business_case(agreement_id, NewBusinessCase(
                need="second estate", expected_outcomes="more", cost=D("10")), JO)
            app.reject_business_case(agreement_id, rejected, "covered elsewhere")
            app.record_spend(agreement_id, NewSpend(provider_id=P1, amount=D("250.25"),
                                                    period="2026-08", reference="INV-1"), JO)
            app.record_results_due(PaymentCalculated(
                terms_id=uuid4(), agreement_id=agreement_id, period="2026-08",
                calculation_id="calc-1", total=D("90.00"), lines=[PaymentLine(
                    description="Sessions", basis="36 x £2.50", amount=D("90.00"))]),
                "2026-08-20")
            app.pay_results_due(agreement_id, "calc-1", DuePayment(reference="REM-1"), JO)
            app.end_agreement(agreement_id, Ending(how=EndingKind.EXITED,
                                                   ended_on=date(2030, 3, 31),
                                                   reason="moved to the trust",
                                                   exit_plan_executed=True))
            app.record_lesson(NewLesson(need_id=need_id, agreement_id=agreement_id,
                                        stage=SourcingStage.EXIT, went="well",
                                        what="clean exit", why="exit plan written on day one",
                                        tags=["Exit", "exit"]))
            app.close_need(need_id, Closure(reason="met: all agreements in place"))
            read_id = app.start_audit_read("3fa85f6457b2", "commissioner", "jo", "events",
                                           {"provider": str(P1)}, {})
            app.finish_audit_read(read_id, 12, True)
            attempt_id = app.record_sign_in_failure(SignInFailure.model_validate({
                "account": "jo", "address": "203.0.113.7", "reason": "wrong_password",
                "account_failures": 5, "address_failures": 6,
                "throttle": {"by": "account", "failures": 5, "window_seconds": 900,
                             "until": "2026-10-05T14:32:00+00:00"}}))

    notifications = list(app.recorder.select_notifications(start=1, limit=1000))
    envelopes = [app.to_envelope(n) for n in notifications]
    assert {e.type for e in envelopes} == set(Integrator.published.values())
    for notification, envelope in zip(notifications, envelopes, strict=True):
        spec = spec_for(envelope.type)
        assert spec is not None
        assert (spec.source, envelope.source) == ("integrator", "integrator")
        assert envelope.schema_version == spec.version
        model = spec.data.model_validate(envelope.data)
        assert model.model_dump(mode="json", exclude_unset=True) == envelope.data
        assert envelope.data[spec.stream_field] == envelope.stream_id
        assert envelope.stream_id == str(notification.originator_id)
        assert envelope.stream_position == notification.originator_version
        assert (envelope.organisation, envelope.correlation_id) == ("council", "corr-1")
    actors = {e.type: e.actor for e in envelopes}
    assert (actors["DelegationLimitsSet"], actors["BudgetEnvelopeRaised"],
            actors["BusinessCaseApproved"], actors["AgreementSigned"]) == (
        "integrator_admin:sam", "integrator_admin:sam", "commissioner:kim", "commissioner:jo")

    by_type = {e.type: e.data for e in envelopes}
    assert by_type["NeedDefined"]["budget_envelope"] == "1000.00"
    assert by_type["NeedContributionPledged"]["amount"] == "500.00"
    assert by_type["CommissioningDecided"]["decided_on"] == "2026-08-20"
    assert by_type["AgreementDrafted"]["parties"] == [
        {"provider_id": str(P1), "allocation": "450.00"},
        {"provider_id": str(P2), "allocation": "450.00"},
    ]
    assert by_type["AgreementDrafted"]["risk_share"]["council_pct"] == "60"
    assert by_type["AgreementSigned"] == {"agreement_id": str(agreement_id),
                                          "signed_on": "2026-08-20",
                                          "signatories": SIGNATURE.signatories}
    assert by_type["BusinessCaseProposed"]["proposed_by"] == "commissioner:jo"
    assert by_type["BusinessCaseApproved"] == {
        "agreement_id": str(agreement_id), "business_case_id": case, "reason": "need agreed",
        "approved_by": "commissioner:kim"}
    assert by_type["BudgetEnvelopeRaised"] == {
        "need_id": str(need_id), "raise_id": by_type["BudgetEnvelopeRaised"]["raise_id"],
        "amount": "145.50", "new_envelope": "1145.50", "reason": "Cabinet top-up",
        "decided_by": "integrator_admin:sam"}
    varied = [e.data for e in envelopes if e.type == "AgreementVaried"]
    assert [(v["kind"], v["budget_change"], v["new_budget"], v["business_case_id"])
            for v in varied] == [("growth", "100.00", "1000.00", None),
                                 ("business_case", "45.50", "1045.50", case)]
    # Each change of budget is also recorded on the need: 1,500.00 awarded + 100.00 + 45.50.
    committed = [e.data for e in envelopes if e.type == "CommitmentVaried"]
    assert [(c["variation_id"], c["budget_change"], c["committed"], c["business_case_id"])
            for c in committed] == [(varied[0]["variation_id"], "100.00", "1600.00", None),
                                    (varied[1]["variation_id"], "45.50", "1645.50", case)]
    assert by_type["AgreementExtended"]["performance_data"] == GREEN
    assert by_type["DelegationLimitsSet"]["set_on"] == "2026-08-20"
    assert by_type["SchemeOfDelegationAdopted"]["council"] == LEAD
    assert by_type["LessonRecorded"]["tags"] == ["exit"]
    assert by_type["SpendRecorded"]["period"] == "2026-08"
    assert by_type["AuditReadStarted"]["query"] == {"provider": str(P1)}
    assert by_type["AuditReadFinished"] == {"read_id": str(read_id), "returned": 12,
                                            "completed": True}
    assert by_type["SignInFailed"] == {
        "attempt_id": str(attempt_id), "account": "jo", "address": "203.0.113.7",
        "reason": "wrong_password", "account_failures": 5, "address_failures": 6}
    assert by_type["SignInThrottled"]["until"] == "2026-10-05T14:32:00Z"
    # The stored streams replay to what the application reads back.
    agreement = app.agreement(agreement_id)
    assert agreement.budget == D("1045.50")
    assert agreement.status is AgreementStatus.ENDED
    assert app.need(need_id).committed == app.need(need_id).pooled_budget == D("1645.50")
    assert app.need(need_id).award(a2)["provider_ids"] == [P3]


def test_a_refused_command_stores_nothing(
    app: Integrator, statuses: dict[UUID, ProviderStatus | None]
) -> None:
    need_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    statuses[P2] = ProviderStatus.SUSPENDED
    stranger = uuid4()
    before = stored_types(app)

    with pytest.raises(DomainRuleBroken, match=f"provider {P2} is suspended"):
        app.decide(need_id, decision_input(("Cooking", "10.00", [P1, P2])), ADMIN)
    with pytest.raises(DomainRuleBroken, match=f"provider {stranger} is not in the network"):
        app.decide(need_id, decision_input(("Cooking", "10.00", [stranger])), ADMIN)
    with pytest.raises(DomainRuleBroken, match=r"only £1,000\.00"):
        app.decide(need_id, decision_input(("A", "600.00", [P1]), ("B", "400.01", [P3])), ADMIN)

    assert stored_types(app) == before
    assert app.need(need_id).version == 2


def test_deciding_without_a_view_of_the_network_is_a_wiring_error(tmp_path: Path) -> None:
    integrator = open_application(Integrator, Settings(var_dir=tmp_path / "bare"))
    try:
        need_id = integrator.define_need(need_input())
        integrator.appraise_options(need_id, APPRAISAL)
        with pytest.raises(RuntimeError, match="no view of the provider network"):
            integrator.decide(need_id, decision_input(("A", "1.00", [P1])), ADMIN)
    finally:
        integrator.close()


def test_an_award_shared_by_providers_is_split_with_the_pennies_to_the_first(
    app: Integrator,
) -> None:
    need_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    _, (award_id,) = app.decide(need_id, decision_input(("Shared", "100.00", [P1, P2, P3])), ADMIN)

    agreement = app.agreement(app.draft_agreement(agreement_input(need_id, award_id)))

    assert agreement.budget == D("100.00")
    assert shares(agreement) == [D("33.34"), D("33.33"), D("33.33")]
    assert agreement.title == "Shared"
    assert agreement.arrangement_type == "grant"
    assert agreement.id == agreement_id_for(need_id, award_id)


def test_one_agreement_per_award(app: Integrator) -> None:
    need_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    _, (award_id,) = app.decide(need_id, decision_input(("A", "100.00", [P1])), ADMIN)
    agreement_id = app.draft_agreement(agreement_input(need_id, award_id))

    with pytest.raises(DomainRuleBroken, match=f"already has agreement {agreement_id}"):
        app.draft_agreement(agreement_input(need_id, award_id, title="Again"))
    with pytest.raises(DomainRuleBroken, match="has no award nope"):
        app.draft_agreement(agreement_input(need_id, "nope"))
    assert app.agreement(agreement_id).version == 1


def test_no_agreement_is_drafted_for_a_closed_need(app: Integrator) -> None:
    need_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    _, (award_id,) = app.decide(need_id, decision_input(("A", "100.00", [P1])), ADMIN)
    app.close_need(need_id, Closure(reason="withdrawn: funding ended"))
    before = stored_types(app)

    with pytest.raises(DomainRuleBroken, match=r"the need is closed \(withdrawn"):
        app.draft_agreement(agreement_input(need_id, award_id))
    assert stored_types(app) == before


def test_explicit_parties_are_exactly_the_awards_providers_and_add_up(app: Integrator) -> None:
    need_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    _, (award_id,) = app.decide(need_id, decision_input(("A", "100.00", [P1, P2])), ADMIN)

    with pytest.raises(InvalidInput, match="exactly the award's providers"):
        app.draft_agreement(agreement_input(need_id, award_id, parties=[
            {"provider_id": str(P1), "allocation": "100.00"}]))
    with pytest.raises(InvalidInput, match="add up to the budget"):
        app.draft_agreement(agreement_input(need_id, award_id, parties=[
            {"provider_id": str(P1), "allocation": "70.00"},
            {"provider_id": str(P2), "allocation": "20.00"}]))
    agreement_id = app.draft_agreement(agreement_input(need_id, award_id, parties=[
        {"provider_id": str(P1), "allocation": "70.00"},
        {"provider_id": str(P2), "allocation": "30.00"}]))
    assert shares(app.agreement(agreement_id)) == [D("70.00"), D("30.00")]


def test_lessons_are_about_a_need_and_its_own_agreements(app: Integrator) -> None:
    need_id = app.define_need(need_input())
    other_id = app.define_need(need_input())
    app.appraise_options(need_id, APPRAISAL)
    _, (award_id,) = app.decide(need_id, decision_input(("A", "100.00", [P1])), ADMIN)
    agreement_id = app.draft_agreement(agreement_input(need_id, award_id))

    def lesson(**about: Any) -> NewLesson:
        return NewLesson.model_validate({"stage": "decision", "went": "well", "what": "w",
                                         "why": "y", **about})

    with pytest.raises(InvalidInput, match="belongs to another need") as refused:
        app.record_lesson(lesson(need_id=str(other_id), agreement_id=str(agreement_id)))
    assert refused.value.field == "agreement_id"
    with pytest.raises(NotFound):
        app.record_lesson(lesson(need_id=str(uuid4())))
    with pytest.raises(NotFound):
        app.record_lesson(lesson(agreement_id=str(uuid4())))
    lesson_id = app.record_lesson(lesson(agreement_id=str(agreement_id),
                                         tags=["Venues", "venues", "Timing"]))
    assert app.lesson(lesson_id).tags == ["timing", "venues"]


def test_each_kind_of_record_is_found_only_as_itself(app: Integrator) -> None:
    need_id = app.define_need(need_input())

    with pytest.raises(NotFound, match=f"no agreement {need_id}"):
        app.agreement(need_id)
    with pytest.raises(NotFound, match=f"no lesson {need_id}"):
        app.lesson(need_id)
    missing = uuid4()
    with pytest.raises(NotFound, match=f"no need {missing}"):
        app.pledge_contribution(missing, NewContribution(partner="Police", amount=D(1)))


def test_a_change_made_meanwhile_is_a_concurrent_change(
    app: Integrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_id = app.define_need(need_input())
    stale = app.need(need_id)
    app.pledge_contribution(need_id, NewContribution(partner="Police", amount=D(1)))
    monkeypatch.setattr(app, "_get", lambda *_: stale)

    with pytest.raises(ConcurrentChange, match="changed by someone else"):
        app.pledge_contribution(need_id, NewContribution(partner="ICB", amount=D(2)))
    monkeypatch.undo()
    assert app.need(need_id).contributions_by_partner() == {LEAD: D("1000.00"), "Police": D(1)}


def test_a_variation_saves_the_agreement_and_its_need_together_or_neither(
    app: Integrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The need's commitment and the agreement's budget change in one transaction: if the need
    was changed meanwhile (someone else committed against the same envelope), neither is."""
    with business_time(datetime(2026, 8, 20, 10, tzinfo=UTC)):
        need_id = app.define_need(need_input())
        app.appraise_options(need_id, APPRAISAL)
        _, (award_id,) = app.decide(need_id, decision_input(("A", "500.00", [P1])), ADMIN)
        agreement_id = app.draft_agreement(agreement_input(need_id, award_id))
        app.sign_agreement(agreement_id, SIGNATURE)
        app.activate(agreement_id, Activation(activated_on=date(2026, 8, 20)))
        stale = app.need(need_id)
        app.pledge_contribution(need_id, NewContribution(partner="ICB", amount=D("1.00")))
        before = (app.need(need_id).version, app.agreement(agreement_id).version)
        monkeypatch.setattr(app, "need", lambda _: stale)

        with pytest.raises(ConcurrentChange, match="changed by someone else"):
            app.vary(agreement_id, NewVariation(kind=VariationKind.GROWTH,
                                                budget_change=D("100.00"), reason="more"), ADMIN)
        monkeypatch.undo()
        assert (app.need(need_id).version, app.agreement(agreement_id).version) == before
        assert app.agreement(agreement_id).budget == D("500.00")
        app.vary(agreement_id, NewVariation(kind=VariationKind.GROWTH,
                                            budget_change=D("100.00"), reason="more"), ADMIN)
        assert app.need(need_id).committed == app.agreement(agreement_id).budget == D("600.00")
