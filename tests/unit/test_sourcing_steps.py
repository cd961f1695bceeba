"""The eight strategic-sourcing steps read from a need's record: which is current, what each
step's checklist finds, which forms the step offers, and which events were taken at which
step (council.services.integrator.web.steps; the browser walks it in tests/e2e)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import SourcingStage
from council.services.integrator.projections.commissioning_views import NeedDetail
from council.services.integrator.projections.timeline import TimelineEvent
from council.services.integrator.web.steps import FORMS, next_stages, sourcing_steps

TODAY = date(2027, 6, 1)
NOW = datetime(2027, 6, 1, tzinfo=UTC)


def need(**changes: Any) -> NeedDetail:
    fields: dict[str, Any] = {
        "need_id": UUID(int=1), "title": "Walking buses", "service_area": "transport",
        "stage": "objectives", "status": "open", "closed_reason": None,
        "lead_organisation": "Northshire County Council", "starts_on": "2027-04-01",
        "ends_on": "2029-03-31",
        "outcomes": [{"outcome_id": "o1", "description": "More children walk to school"}],
        "budget_envelope": "60000", "pooled_budget": "60000", "awarded": "0",
        "committed": "0", "spent": "0", "active_agreements": 0, "updated_at": NOW,
        "population": {"description": "Children in Ashby"}, "outputs": [], "options": [],
        "recommended": None, "options_rationale": None, "engagements": [],
        "contributions": [], "decisions": [], "agreements": [], "defined_at": NOW,
        "defined_by": "jo"}
    return NeedDetail.model_validate({**fields, **changes})


def event(kind: str, days: int, **data: Any) -> TimelineEvent:
    at = NOW - timedelta(days=100 - days)
    return TimelineEvent(event_id=f"e{days}", source="integrator", type=kind,
                         stream_id=str(UUID(int=1)), stream_position=days, occurred_at=at,
                         recorded_at=at, actor="jo", organisation=None, correlation_id=None,
                         data=data)


def test_a_new_need_is_at_its_objectives_with_what_is_missing_said() -> None:
    steps = sourcing_steps(need(), today=TODAY)
    assert [s.state for s in steps] == ["current"] + ["later"] * 7
    assert [s.number for s in steps] == list(range(1, 9))
    objectives = steps[0]
    unmet = [c.label for c in objectives.checks if not c.met]
    assert unmet == ["Each outcome tied to an outcome measure"]
    assert FORMS[SourcingStage.OBJECTIVES] == ("contribution", "options")
    assert next_stages(need()) == []  # moving on by hand comes after a decision


def test_an_appraisal_of_one_unscored_option_is_not_yet_a_range() -> None:
    appraised = need(stage="options", recommended="vcse_grant", options_rationale="reach",
                     options=[{"option": "vcse_grant", "description": "a grant"}])
    steps = sourcing_steps(appraised, today=TODAY)
    assert [s.state for s in steps[:3]] == ["done", "current", "later"]
    found = {c.label: c.met for c in steps[1].checks}
    assert found == {"A range of options (at least two)": False, "Every option scored": False,
                     "Benefits (social value among them) and risks weighed for each": False,
                     "One recommended, with the reasons": True}
    assert "decision" not in FORMS[SourcingStage.OPTIONS]
    assert "decision" in FORMS[SourcingStage.MARKET_ENGAGEMENT]


def test_review_asks_for_an_extend_or_exit_decision_six_months_ahead() -> None:
    agreement = {"agreement_id": UUID(int=2), "need_id": UUID(int=1), "decision_id": "d1",
                 "award_id": "a1", "title": "Buses", "arrangement_type": "grant",
                 "status": "active", "starts_on": "2027-04-01", "ends_on": "2027-11-30",
                 "original_ends_on": "2027-11-30", "activated_on": "2027-04-01",
                 "ended_on": None, "ended_how": None, "budget": "40000",
                 "original_budget": "40000", "spent": "100", "parties": [],
                 "updated_at": NOW}
    decision = {"decision_id": "d1", "rationale": "r", "decision_maker": "Head",
                "decided_at": NOW, "awards": [{
                    "award_id": "a1", "title": "Buses", "arrangement_type": "grant",
                    "provider_ids": [str(UUID(int=3))], "allocation": "40000"}]}
    reviewing = need(stage="review", decisions=[decision], agreements=[agreement],
                     awarded="40000", active_agreements=1)
    review = sourcing_steps(reviewing, today=TODAY, own_lessons=0)[6]
    assert review.state == "current"
    assert [(c.label, c.met) for c in review.checks] == [
        ("Extend or exit decided for arrangements ending within six months", False),
        ("What went well or badly recorded as a lesson", False)]
    # Six months before 30 Nov 2027 is early June: a month earlier, nothing is due yet.
    calm = sourcing_steps(reviewing, today=date(2027, 5, 1), own_lessons=1)[6]
    assert calm.ready
    assert next_stages(reviewing) == [SourcingStage.EXIT]


def test_each_event_belongs_to_the_step_it_was_taken_at() -> None:
    history = [event("NeedDefined", 1), event("NeedContributionPledged", 2),
               event("OptionsAppraised", 3), event("MarketEngaged", 4),
               event("CommissioningDecided", 5), event("AgreementDrafted", 6),
               event("NeedStageReached", 7, stage="mobilisation", notes="go"),
               event("AgreementActivated", 8)]
    steps = sourcing_steps(need(stage="mobilisation"), today=TODAY, events=history)
    taken = {s.stage.value: [e.type for e in s.history] for s in steps if s.history}
    assert taken == {
        "objectives": ["NeedDefined", "NeedContributionPledged"],
        "options": ["OptionsAppraised"], "market_engagement": ["MarketEngaged"],
        "decision": ["CommissioningDecided", "AgreementDrafted"],
        "mobilisation": ["NeedStageReached", "AgreementActivated"]}


def test_a_closed_need_has_every_step_behind_it() -> None:
    closed = need(stage="management", status="closed", closed_reason="withdrawn")
    assert {s.state for s in sourcing_steps(closed, today=TODAY)} == {"done"}
