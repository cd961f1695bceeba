"""The eight strategic-sourcing steps as the spine of a need's page: where the need stands,
what each step needs before the next (a checklist read from the need's record), which forms
belong to the step it is at, and what happened at each earlier step.

The checklist advises; it never refuses. The rules the council must keep (options appraised
before a decision, awards within the pooled budget, the scheme of delegation) are the
domain's, checked when a command runs; the checklist says where the record is thin before
anyone is surprised by a refusal, and what good practice asks for besides (an exit plan
written, a lesson recorded). No I/O here: the route reads the need, its lessons and its
history and passes them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from council.kernel.contracts.integrator import SourcingStage
from council.services.integrator.projections.commissioning_views import NeedDetail
from council.services.integrator.projections.timeline import TimelineEvent

StepState = Literal["done", "current", "later"]

# The step's name in the council's words and what it is for.
TITLES: dict[SourcingStage, tuple[str, str]] = {
    SourcingStage.OBJECTIVES: (
        "Specify the objectives",
        "The outcomes sought, for whom, within what budget and term."),
    SourcingStage.OPTIONS: (
        "Appraise the options",
        "A range of arrangements, from in-house to a mix, weighed with their benefits, risks "
        "and social value, and one recommended."),
    SourcingStage.MARKET_ENGAGEMENT: (
        "Engage the market",
        "Talk to the providers who could deliver, small and voluntary ones included."),
    SourcingStage.DECISION: (
        "Decide and award",
        "A decision recorded under the scheme of delegation, awarding within the pooled "
        "budget."),
    SourcingStage.MOBILISATION: (
        "Mobilise",
        "An agreement for every award, with its exit plan, signed and brought into force."),
    SourcingStage.MANAGEMENT: (
        "Manage the arrangements",
        "Delivery monitored, spend and results payments recorded."),
    SourcingStage.REVIEW: (
        "Review",
        "Extend or exit each arrangement before it ends, and record what was learned."),
    SourcingStage.EXIT: (
        "Exit",
        "Every arrangement ended as its exit plan says, and the need closed."),
}

# The forms a step offers (the names the need page's forms go by). The step's own work, then
# what moves the need on: appraising the options is what takes a need past its objectives.
FORMS: dict[SourcingStage, tuple[str, ...]] = {
    SourcingStage.OBJECTIVES: ("contribution", "options"),
    SourcingStage.OPTIONS: ("options", "contribution", "engagement"),
    SourcingStage.MARKET_ENGAGEMENT: ("engagement", "contribution", "decision"),
    SourcingStage.DECISION: ("agreements", "stage"),
    SourcingStage.MOBILISATION: ("agreements", "stage"),
    SourcingStage.MANAGEMENT: ("stage",),
    SourcingStage.REVIEW: ("lesson", "stage", "close"),
    SourcingStage.EXIT: ("lesson", "close"),
}

# Which stage each of a need's events belongs to, when the event itself does not say.
_MOVES: dict[str, SourcingStage] = {
    "NeedDefined": SourcingStage.OBJECTIVES,
    "OptionsAppraised": SourcingStage.OPTIONS,
    "MarketEngaged": SourcingStage.MARKET_ENGAGEMENT,
    "CommissioningDecided": SourcingStage.DECISION,
}

ENDING_SOON = timedelta(days=183)  # six months' notice to decide whether to extend or exit


@dataclass(frozen=True)
class Check:
    """One thing a step needs: whether the record has it, and what it shows."""

    label: str
    met: bool
    detail: str = ""


@dataclass
class Step:
    stage: SourcingStage
    number: int
    title: str
    purpose: str
    state: StepState
    checks: list[Check]
    history: list[TimelineEvent] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(c.met for c in self.checks)

    @property
    def outstanding(self) -> int:
        return sum(1 for c in self.checks if not c.met)


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _objectives(need: NeedDetail) -> list[Check]:
    measured = sum(1 for o in need.outcomes if o.measure_id)
    return [
        Check("Outcomes sought, not activities", bool(need.outcomes),
              _counted(len(need.outcomes), "outcome")),
        Check("Each outcome tied to an outcome measure", bool(need.outcomes) and
              measured == len(need.outcomes),
              f"{measured} of {len(need.outcomes)} measured"),
        Check("The population described", bool(need.population.description.strip()),
              need.population.description),
        Check("A budget envelope and a term", need.budget_envelope > 0,
              f"£{need.pooled_budget:,.0f} pooled, {need.starts_on} to {need.ends_on}"),
    ]


def _options(need: NeedDetail) -> list[Check]:
    scored = sum(1 for o in need.options if o.score is not None)
    weighed = sum(1 for o in need.options if o.benefits and o.risks)
    return [
        Check("A range of options (at least two)", len(need.options) >= 2,
              _counted(len(need.options), "option") + " appraised"),
        Check("Every option scored", bool(need.options) and scored == len(need.options),
              f"{scored} of {len(need.options)} scored"),
        Check("Benefits (social value among them) and risks weighed for each",
              bool(need.options) and weighed == len(need.options),
              f"{weighed} of {len(need.options)} with both"),
        Check("One recommended, with the reasons", need.recommended is not None,
              need.options_rationale or ""),
    ]


def _engagement(need: NeedDetail) -> list[Check]:
    named = {p for e in need.engagements for p in e.provider_ids}
    return [
        Check("The market engaged", bool(need.engagements),
              _counted(len(need.engagements), "engagement") + " recorded"),
        Check("Providers who could deliver named", bool(named),
              _counted(len(named), "provider") + " engaged"),
    ]


def _decision(need: NeedDetail) -> list[Check]:
    last = need.decisions[-1] if need.decisions else None
    return [
        Check("A decision recorded with its reasons", last is not None,
              f"{last.decision_maker}, {last.decided_at:%d %b %Y}" if last else ""),
        Check("Taken under the scheme of delegation", last is not None,
              "checked against the council's scheme when it was recorded" if last else ""),
        Check("Awards within the pooled budget",
              last is not None and need.awarded <= need.pooled_budget,
              f"£{need.awarded:,.0f} of £{need.pooled_budget:,.0f} awarded"),
    ]


def _mobilisation(need: NeedDetail) -> list[Check]:
    awards = [a.award_id for d in need.decisions for a in d.awards]
    drafted = {a.award_id for a in need.agreements}
    in_force = [a for a in need.agreements if a.status in ("active", "ended")]
    return [
        Check("An agreement drafted for every award, with its exit plan",
              bool(awards) and all(a in drafted for a in awards),
              f"{sum(1 for a in awards if a in drafted)} of {len(awards)} awards"),
        Check("Every agreement signed and in force",
              bool(need.agreements) and len(in_force) == len(need.agreements),
              f"{len(in_force)} of {len(need.agreements)} in force"),
    ]


def _management(need: NeedDetail) -> list[Check]:
    return [
        Check("Arrangements in force", need.active_agreements > 0 or any(
            a.status == "ended" for a in need.agreements),
              _counted(need.active_agreements, "active agreement")),
        Check("Spend recorded against them", need.spent > 0, f"£{need.spent:,.2f} spent"),
        Check("No results payment left unpaid", need.due == 0, f"£{need.due:,.2f} due"),
    ]


def _review(need: NeedDetail, today: date, own_lessons: int) -> list[Check]:
    soon = [a for a in need.agreements if a.status == "active"
            and a.ends_on <= today + ENDING_SOON]
    return [
        Check("Extend or exit decided for arrangements ending within six months", not soon,
              _counted(len(soon), "agreement") + " ending by "
              f"{today + ENDING_SOON:%d %b %Y} still active"),
        Check("What went well or badly recorded as a lesson", own_lessons > 0,
              _counted(own_lessons, "lesson") + " recorded"),
    ]


def _exit(need: NeedDetail) -> list[Check]:
    ended = [a for a in need.agreements if a.status == "ended"]
    return [
        Check("Every arrangement ended", len(ended) == len(need.agreements),
              f"{len(ended)} of {len(need.agreements)} ended"),
        Check("The need closed, saying how", need.status == "closed",
              need.closed_reason or ""),
    ]


def _history(events: Sequence[TimelineEvent]) -> dict[SourcingStage, list[TimelineEvent]]:
    """The need's events by the step they were taken at: a stage begins with the event that
    reaches it, and what follows belongs to it until the next."""
    found: dict[SourcingStage, list[TimelineEvent]] = {s: [] for s in SourcingStage}
    stage = SourcingStage.OBJECTIVES
    for event in sorted(events, key=lambda e: (e.occurred_at, e.stream_position)):
        if event.type == "NeedStageReached":
            stage = SourcingStage(str(event.data.get("stage", stage.value)))
        else:
            stage = _MOVES.get(event.type, stage)
        found[stage].append(event)
    return found


def sourcing_steps(need: NeedDetail, *, today: date, events: Sequence[TimelineEvent] = (),
                   own_lessons: int = 0) -> list[Step]:
    """The eight steps for `need` as it stands: those before its stage done, its stage
    current (a closed need's every step is done), each with its checklist and history."""
    checks = {
        SourcingStage.OBJECTIVES: _objectives(need),
        SourcingStage.OPTIONS: _options(need),
        SourcingStage.MARKET_ENGAGEMENT: _engagement(need),
        SourcingStage.DECISION: _decision(need),
        SourcingStage.MOBILISATION: _mobilisation(need),
        SourcingStage.MANAGEMENT: _management(need),
        SourcingStage.REVIEW: _review(need, today, own_lessons),
        SourcingStage.EXIT: _exit(need),
    }
    history = _history(events)
    at = list(SourcingStage).index(need.stage)
    steps: list[Step] = []
    for number, stage in enumerate(SourcingStage):
        state: StepState = ("done" if number < at or need.status == "closed" else
                            "current" if number == at else "later")
        title, purpose = TITLES[stage]
        steps.append(Step(stage, number + 1, title, purpose, state, checks[stage],
                          history[stage]))
    return steps


def next_stages(need: NeedDetail) -> list[SourcingStage]:
    """The stages the "move on" form offers: those after the decision and after where the
    need stands (the domain moves only forwards, and only after a decision)."""
    if not need.decisions:
        return []
    stages = list(SourcingStage)
    later = stages[stages.index(SourcingStage.MOBILISATION):]
    return [s for s in later if stages.index(s) > stages.index(need.stage)]
