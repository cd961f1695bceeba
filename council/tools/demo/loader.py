"""Load the demo data set (council/tools/demo/data.py) through the services' application
layers, straight into the configured stores, with every step back-dated in business time.

Loading happens in two parts. *Planning* turns the tables into a list of steps, each a command
with the date and actor it belongs to; every random choice (identifiers, addresses, dates not
given in the tables, capacities...) is drawn here from one seeded generator, so the data set is
the same every time. *Running* sorts the steps by date and runs each inside
`business_time(...)` and a command context naming its actor, so the stores record the history in
the order it happened: whatever a command checks (is this provider approved today? is this
agreement active?) is answered as it stood on that date.

The steps use the services' own commands and rules; nothing is written around them. A marker
row in the integrator's store records a completed load, so loading twice adds nothing.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from council.kernel.clock import business_time
from council.kernel.context import CommandContext, command_context, current_context
from council.kernel.contracts.integrator import (
    ArrangementType,
    DecisionKind,
    DelegatedRole,
    EndingKind,
    PaymentFrequency,
    SourcingOption,
    SourcingStage,
    VariationKind,
)
from council.kernel.contracts.provider_registry import (
    OrganisationType,
    ProviderStatus,
    StandingKind,
)
from council.kernel.errors import NotFound
from council.kernel.periods import period_bounds
from council.kernel.taxonomy import taxonomy
from council.platform.audit.checkpoints import CheckpointWriter
from council.platform.eventlog import open_event_log
from council.platform.eventstore import CouncilApplication, open_application, store_database
from council.platform.identity import Principal, Role, TokenStore
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.application import Integrator
from council.services.integrator.domain.agreements import Agreement
from council.services.integrator.domain.commands import (
    Activation,
    AgreementOutcomeIn,
    AwardIn,
    Closure,
    DelegatedLimitIn,
    DelegationLimits,
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
    OptionIn,
    OptionsAppraisal,
    OutcomeIn,
    PopulationIn,
    RewardTermsIn,
    RiskShareIn,
    Signature,
    StageStep,
)
from council.services.integrator.domain.lessons import Lesson
from council.services.integrator.domain.needs import Need
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.aggregates import (
    AgreementTerms,
    DeliveryReport,
    OutcomeMeasure,
)
from council.services.provider_registry.application import ProviderRegistry, provider_id_for
from council.services.provider_registry.domain.commands import (
    AddressIn,
    CapacityIn,
    ContactIn,
    DetailsUpdate,
    IdentifiersIn,
    IncubationPlan,
    MilestoneIn,
    NewAccreditation,
    NewCapability,
    NewConflictOfInterest,
    NewProvider,
    NewQualityRating,
    SmeSizeIn,
)
from council.tools.demo import data
from council.tools.demo.data import (
    CATEGORIES,
    COUNCIL,
    DISTRICTS,
    END,
    START,
    AwardSpec,
    Case,
    End,
    Extend,
    NeedSpec,
    ProviderSpec,
    Vary,
)
from council.tools.demo.outcomes import OutcomesPlan, Settlement, new_measure

SEED = 2026
DATA_SET = "northshire"
MARKER_KEY = "demo-provider-1"  # the first provider registered by the demo
Progress = Callable[[str, int, int], None]  # (phase, done, total)

OT = OrganisationType
D = Decimal
PENNY = D("0.01")

_MARKER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS demo_data ("
    " data_set TEXT PRIMARY KEY, loaded_at TEXT NOT NULL, summary TEXT NOT NULL)"
)


# The scheme of delegation the demo council sets before its history begins (data.SCHEME_REASON
# says it in words): commissioners decide up to data.COMMISSIONER_LIMIT pounds; integrator
# admins (the head of commissioning, finance; the Cabinet's decisions recorded by democratic
# services) without a limit, and they alone raise envelopes or override the need for
# performance data.
DEMO_LIMITS = DelegationLimits(
    limits=[DelegatedLimitIn(role=DelegatedRole.COMMISSIONER, kind=kind,
                             up_to=D(data.COMMISSIONER_LIMIT))
            for kind in (DecisionKind.AWARD, DecisionKind.VARIATION, DecisionKind.EXTENSION,
                         DecisionKind.BUSINESS_CASE, DecisionKind.SPEND)]
    + [DelegatedLimitIn(role=DelegatedRole.INTEGRATOR_ADMIN, kind=kind) for kind in DecisionKind],
    reason=data.SCHEME_REASON)


def approver(commissioner: str, amount: Decimal) -> str:
    """Who takes a decision of `amount` pounds under the scheme: the commissioner within their
    limit, else the head of commissioning."""
    return commissioner if amount <= data.COMMISSIONER_LIMIT else data.HEAD_OF_COMMISSIONING


def decider(commissioner: str, amount: Decimal) -> str:
    """Who takes a commissioning decision of `amount` pounds: as `approver`, and the Cabinet
    from data.CABINET_FROM."""
    return data.CABINET if amount >= data.CABINET_FROM else approver(commissioner, amount)


@contextmanager
def acting_for(actor: str) -> Iterator[Principal]:
    """Run a command as `actor` (role:label), the person the step's decision falls to."""
    with command_context(CommandContext(actor=actor, organisation="council")):
        yield acting()


def acting() -> Principal:
    """Who takes the step being run (each runs in a command context naming its actor)."""
    role, _, label = current_context().actor.partition(":")
    return Principal("demo", Role(role), label)


class DemoError(Exception):
    """The demo data cannot be loaded into these stores (the message says why)."""


def provider_key(n: int) -> str:
    """The idempotency key the demo registers its n-th provider (1-based) under."""
    return f"demo-provider-{n}"


def demo_provider_ids() -> dict[str, UUID]:
    return {spec.key: provider_id_for(provider_key(n))
            for n, spec in enumerate(data.PROVIDERS, start=1)}


# ====================================================================================== summary


@dataclass
class DemoSummary:
    """What the demo data set holds, counted from the stores after loading."""

    providers_by_type: dict[str, int] = field(default_factory=dict)
    providers_by_status: dict[str, int] = field(default_factory=dict)
    incubated: int = 0
    graduated: int = 0
    measures: int = 0
    needs: int = 0
    needs_decided: int = 0
    needs_closed: int = 0
    contributions: int = 0
    envelope_raises: int = 0
    collaborative_partners: list[str] = field(default_factory=list)
    agreements_by_arrangement: dict[str, int] = field(default_factory=dict)
    agreements_by_status: dict[str, int] = field(default_factory=dict)
    endings: dict[str, int] = field(default_factory=dict)
    variations: dict[str, int] = field(default_factory=dict)
    extensions: int = 0
    extension_overrides: int = 0
    business_cases: dict[str, int] = field(default_factory=dict)
    spend_records: int = 0
    spend_total: str = "0.00"
    results_due: int = 0
    results_paid: int = 0
    results_spent: str = "0.00"
    lessons: int = 0
    measurements: int = 0
    measurement_revisions: int = 0
    attributions: int = 0
    rate_cards: int = 0
    deliveries: int = 0
    delivery_corrections: int = 0
    payments_calculated: int = 0
    payments_recalculated: int = 0
    payments_total: str = "0.00"
    events: dict[str, int] = field(default_factory=dict)
    first_event: str = ""
    last_event: str = ""
    seconds: float = 0.0
    already_loaded: bool = False

    @property
    def providers(self) -> int:
        return sum(self.providers_by_type.values())

    @property
    def agreements(self) -> int:
        return sum(self.agreements_by_arrangement.values())

    def lines(self) -> list[str]:
        def counts(values: dict[str, int]) -> str:
            ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
            return ", ".join(f"{k} {v}" for k, v in ordered)

        spent = f"£{D(self.spend_total):,.0f}"
        return [
            f"providers        {self.providers} ({counts(self.providers_by_type)})",
            f"                 {counts(self.providers_by_status)}; "
            f"{self.incubated} incubated, {self.graduated} graduated",
            f"outcome measures {self.measures}",
            f"needs            {self.needs} ({self.needs_decided} decided, "
            f"{self.needs_closed} closed); {self.contributions} pooled contributions from "
            f"{', '.join(self.collaborative_partners)}; {self.envelope_raises} council "
            "top-ups",
            f"agreements       {self.agreements} ({counts(self.agreements_by_arrangement)})",
            f"                 {counts(self.agreements_by_status)}; ended: "
            f"{counts(self.endings)}",
            f"variations       {sum(self.variations.values())} ({counts(self.variations)}); "
            f"{self.extensions} extensions ({self.extension_overrides} by override)",
            f"business cases   {sum(self.business_cases.values())} "
            f"({counts(self.business_cases)})",
            f"spend            {self.spend_records} payments, {spent} (results payments "
            f"£{D(self.results_spent):,.0f}: {self.results_paid} of {self.results_due} due "
            "items paid)",
            f"lessons          {self.lessons}",
            f"measurements     {self.measurements} ({self.measurement_revisions} revisions)",
            f"results terms    {self.rate_cards} rate cards, {self.attributions} attributions",
            f"deliveries       {self.deliveries} reports ({self.delivery_corrections} "
            "corrections)",
            f"results payments {self.payments_calculated} calculated, "
            f"{self.payments_recalculated} recalculated, £{D(self.payments_total):,.0f}",
            f"events           {sum(self.events.values())} ({counts(self.events)}), "
            f"{self.first_event} to {self.last_event}",
        ]


# ====================================================================================== plan


@dataclass(order=True)
class Step:
    at: datetime
    seq: int
    actor: str = field(compare=False)
    label: str = field(compare=False)
    run: Callable[[], object] = field(compare=False, repr=False)
    organisation: str = field(default="council", compare=False)


def _weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _days(n: int) -> timedelta:
    return timedelta(days=n)


def _months(start: date, end: date) -> Iterator[date]:
    """The first day of each month from start's month to end's month, inclusive."""
    month = start.replace(day=1)
    while month <= end:
        yield month
        month = (month + _days(32)).replace(day=1)


def _years_on(day: date, years: int) -> date:
    """The same day `years` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _period(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def _slug(name: str) -> str:
    name = re.sub(r"\b(ltd|plc|cic)\b", "", name.lower().replace("é", "e"))
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


def _phrase(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class Plan:
    """The steps of the load, each with its business time and actor."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.steps: list[Step] = []
        self._last: dict[str, datetime] = {}

    def add(self, on: date, actor: str, label: str, run: Callable[[], object],
            chain: str, organisation: str = "council") -> datetime:
        """Schedule `run` on `on` (moved to a working day, in office hours). Steps of one chain
        (one aggregate's history) on the same day keep the order they were added in; on
        different days, their dates order them."""
        if not START <= on <= END:
            raise AssertionError(f"demo step {label!r} on {on} is outside {START}..{END}")
        day = _weekday(on) if _weekday(on) <= END else on
        at = datetime(day.year, day.month, day.day, self.rng.randint(8, 15),
                      self.rng.randrange(0, 60, 5), tzinfo=UTC)
        last = self._last.get(f"{chain}@{day}")
        if last is not None and at <= last:
            at = last + timedelta(minutes=7)
        self._last[f"{chain}@{day}"] = at
        self.steps.append(Step(at, len(self.steps), actor, label, run, organisation))
        return at

    def add_before(self, at: datetime, actor: str, label: str, run: Callable[[], object],
                   organisation: str = "council") -> None:
        """Schedule `run` a minute before `at` (a step already planned), drawing nothing at
        random: the rest of the plan stays as it was."""
        self.steps.append(Step(at - timedelta(minutes=1), len(self.steps), actor, label, run,
                               organisation))


# ====================================================================================== loader


class DemoLoader:
    """Plans the demo data set against three open applications, then runs the plan."""

    def __init__(self, registry: ProviderRegistry, integrator: Integrator,
                 outcomes: Outcomes, settle: Callable[[], object] | None = None) -> None:
        """`settle` runs the outcomes service's payments process on the log as it stands (the
        loader calls it at each quarter's settlement date); without it nothing is settled."""
        self.registry = registry
        self.integrator = integrator
        self.outcomes = outcomes
        self.rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not security
        self.plan = Plan(self.rng)
        self.specs = {spec.key: spec for spec in data.PROVIDERS}
        self.provider_ids = demo_provider_ids()
        # filled in as the steps run
        self.measure_ids: dict[str, UUID] = {}
        self.need_ids: dict[str, UUID] = {}
        self.award_ids: dict[str, str] = {}
        self.agreement_ids: dict[str, UUID] = {}
        self.milestones: dict[str, list[str]] = {}
        self.cases: dict[tuple[str, int], str] = {}
        self.lesson_ids: list[UUID] = []
        self.current_standing: dict[tuple[str, str], str] = {}  # (provider, name) -> id
        # decided while planning
        self.registered_on: dict[str, date] = {}
        self.approved_on: dict[str, date] = {}
        self.awards = {a.key: (need, d, a) for need in data.NEEDS
                       for d in need.decisions for a in d.awards}
        self._taken: set[tuple[str, str]] = set()
        self.outcomes_plan = OutcomesPlan(self, settle)

    # ------------------------------------------------------------------ running

    def run(self, progress: Progress | None = None) -> None:
        self.integrator.provider_status = self._provider_status
        self.integrator.performance_evidence = self._performance_evidence
        self.outcomes.agreements = self.outcomes_plan.agreements
        steps = sorted(self.plan.steps)
        every = max(1, len(steps) // 200)
        for done, step in enumerate(steps, start=1):
            ctx = CommandContext(actor=step.actor, organisation=step.organisation)
            with business_time(step.at), command_context(ctx):
                try:
                    step.run()
                except Exception as exc:
                    raise DemoError(
                        f"demo step {step.label!r} on {step.at:%Y-%m-%d} failed: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
            if progress and (done % every == 0 or done == len(steps)):
                progress("loading", done, len(steps))

    def _provider_status(self, provider_id: UUID) -> ProviderStatus | None:
        """What the registry says of a provider now (in the load, now is the step's date)."""
        try:
            return self.registry.provider(provider_id).status
        except NotFound:
            return None

    def _performance_evidence(self, agreement_id: UUID) -> str | None:
        """The latest measurement, of a period that ended after the agreement started, of a
        measure its outcomes name (in the load, now is the step's date): what the integrator's
        performance view would hold (council.services.integrator.projections.performance)."""
        agreement = self.integrator.agreement(agreement_id)
        found = []
        for outcome in agreement.outcomes:
            if outcome.get("measure_id"):
                measure = self.outcomes.measure(outcome["measure_id"])
                found += [(period_bounds(period)[1], period, measure.name, measure.unit,
                           history[-1]["value"])
                          for period, history in measure.measurements.items()
                          if period_bounds(period)[1].isoformat() >= agreement.starts_on]
        if not found:
            return None
        _, period, name, unit, value = max(found)
        return f"{name}: {value} {unit} in {period}"

    # ------------------------------------------------------------------ planning

    def plan_all(self) -> Plan:
        self._check_tables()
        self.plan.add_before(datetime(START.year, START.month, START.day, 8, tzinfo=UTC),
                             data.HEAD_OF_COMMISSIONING, "scheme of delegation",
                             lambda: self.integrator.set_delegation_limits(
                                 COUNCIL, DEMO_LIMITS, acting()))
        self._plan_measures()
        self._plan_providers()
        for need in data.NEEDS:
            self._plan_need(need)
        self._plan_lessons()
        self.outcomes_plan.plan()
        return self.plan

    def _check_tables(self) -> None:
        keys = [spec.key for spec in data.PROVIDERS]
        assert len(keys) == len(set(keys)), "provider keys must be distinct"
        for _, _, award in self.awards.values():
            for key in award.providers:
                assert key in self.specs, f"award {award.key} names unknown provider {key}"
        for need in data.NEEDS:
            pooled = need.budget + sum(c[2] for c in need.contributions)
            committed = sum(a.allocation for d in need.decisions for a in d.awards)
            assert committed <= pooled, f"{need.key}: awards exceed the pooled budget"
            for _, _, award in (self.awards[a.key] for d in need.decisions for a in d.awards):
                for story in award.story:
                    if isinstance(story, Extend):
                        assert story.new_end <= need.until, f"{award.key}: extended past " \
                            "its need's end"

    def _plan_measures(self) -> None:
        for spec in data.MEASURES:
            def define(spec: data.MeasureSpec = spec) -> None:
                measure_id, _ = self.outcomes.define_measure(
                    new_measure(spec), idempotency_key=f"demo-{spec.key}")
                self.measure_ids[spec.key] = measure_id

            self.plan.add(START, data.PERFORMANCE, f"measure {spec.key}", define, "measures")

    # ------------------------------------------------------------------ providers

    def _plan_providers(self) -> None:
        # The date each provider must be approved by: its first award, less ten days.
        approve_by: dict[str, date] = {}
        for _, decision, award in self.awards.values():
            for key in award.providers:
                by = decision.on - _days(10)
                approve_by[key] = min(approve_by.get(key, by), by)
        register_by: dict[str, date] = {}
        scripted = data.REGISTRY_STORIES
        partnerships = [s for s in data.PROVIDERS if s.members]
        # Partnerships first: their members must be registered before them.
        for spec in partnerships:
            earliest = max([START + _days(10)] + [
                scripted[m].registered + _days(7) for m in spec.members if m in scripted])
            reg = self._registration_date(approve_by.get(spec.key), earliest, None)
            self.registered_on[spec.key] = reg
            for member in spec.members:
                by = reg - _days(3)
                register_by[member] = min(register_by.get(member, by), by)
        for spec in data.PROVIDERS:
            if spec.key in scripted:
                self.registered_on[spec.key] = scripted[spec.key].registered
            elif spec.key not in self.registered_on:
                self.registered_on[spec.key] = self._registration_date(
                    approve_by.get(spec.key), START, register_by.get(spec.key))
        for n, spec in enumerate(data.PROVIDERS, start=1):
            self._plan_provider(n, spec, approve_by.get(spec.key))
        self._plan_updates()

    def _registration_date(self, approve_by: date | None, earliest: date,
                           register_by: date | None) -> date:
        rng = self.rng
        if approve_by is not None:
            low = max(earliest, approve_by - _days(160))
            high = max(low, approve_by - _days(45))
        elif rng.random() < 0.55:  # most of the network was onboarded in the first months
            low, high = earliest, earliest + _days(180)
        else:
            low, high = earliest, date(2026, 6, 30)
        if register_by is not None:
            high = min(high, register_by)
            low = min(low, high)
        return low + _days(rng.randint(0, (high - low).days))

    def _plan_provider(self, n: int, spec: ProviderSpec, approve_by: date | None) -> None:
        rng, plan, key = self.rng, self.plan, spec.key
        pid = self.provider_ids[key]
        story = data.REGISTRY_STORIES.get(key)
        reg = self.registered_on[key]
        new = self._application(spec)
        actor = data.MARKET_OFFICER

        def add(on: date, label: str, run: Callable[[], object]) -> None:
            plan.add(on, actor, f"{key}: {label}", run, key)

        add(reg, "register", lambda: self.registry.register_provider(
            new, idempotency_key=provider_key(n)))
        for category in spec.category_codes:
            capability = self._capability(spec, category)
            add(reg, f"capability {category}",
                partial(self.registry.add_capability, pid, capability))

        fate = spec.fate
        if story is not None:
            review, decided = story.review, story.decided
        else:
            review = reg + _days(rng.randint(3, 8))
            decided = review + _days(rng.randint(14, 35))
            if approve_by is not None:
                decided = max(review + _days(1), min(decided, approve_by))
        if fate == "rejected":
            assert decided is not None
            self._plan_standing(spec, reg, review or reg, decided)
            if review is not None:
                add(review, "start review", lambda: self.registry.start_review(
                    pid, "Application complete; due diligence started"))
            assert story is not None
            assert story.reason
            add(decided, "reject", partial(self.registry.reject, pid, story.reason))
            return
        if fate == "applied":
            self._plan_standing(spec, reg, reg, None)
            return
        assert review is not None
        end_of_record = self._closing_date(story)
        self._plan_standing(spec, reg, review, end_of_record)
        add(review, "start review", lambda: self.registry.start_review(
            pid, "Application complete; due diligence started: references, insurance, "
            "safeguarding and financial checks"))
        self._plan_ratings(spec, review)
        if fate == "under_review":
            return
        assert decided is not None
        if fate in ("incubating", "graduated"):
            assert story is not None
            self._plan_incubation(spec, story, decided)
        else:
            reason = (story.reason if story and story.reason else
                      "Due diligence complete: insurance, safeguarding, references and "
                      "finances checked; meets the network's standards")
            add(decided, "approve", lambda: self.registry.approve(pid, reason))
            self.approved_on[key] = decided
            if approve_by is not None:
                assert decided <= approve_by, f"{key} approved after its first award"
        for on, action, reason in (story.later if story else ()):
            command = {"suspend": self.registry.suspend, "reinstate": self.registry.reinstate,
                       "exit": self.registry.exit}[action]
            add(on, action, partial(command, pid, reason))
        if key in data.CONFLICTS:
            by, interest, on = data.CONFLICTS[key]
            declaration = NewConflictOfInterest(declared_by=by, interest=interest,
                                                declared_on=on)
            add(on, "conflict of interest", lambda: self.registry.declare_conflict_of_interest(
                pid, declaration))

    @staticmethod
    def _closing_date(story: data.Registry | None) -> date | None:
        for on, action, _ in story.later if story else ():
            if action == "exit":
                return on
        return None

    def _plan_incubation(self, spec: ProviderSpec, story: data.Registry, started: date) -> None:
        key, pid = spec.key, self.provider_ids[spec.key]
        assert story.support_plan
        assert story.reason
        incubation = IncubationPlan(
            support_plan=story.support_plan, reason=story.reason,
            milestones=[MilestoneIn(title=t, due_on=due) for t, due, _ in story.milestones])

        def incubate() -> None:
            self.milestones[key] = self.registry.incubate(pid, incubation)

        self.plan.add(started, data.MARKET_OFFICER, f"{key}: incubate", incubate, key)
        for i, (title, _, met) in enumerate(story.milestones):
            if met is None:
                continue
            evidence = f"Evidence seen by the market development officer: {title.lower()}."
            self.plan.add(met, data.MARKET_OFFICER, f"{key}: milestone {i + 1}",
                          partial(self._meet_milestone, key, i, evidence), key)
        if story.graduated is not None:
            self.plan.add(story.graduated, data.MARKET_OFFICER, f"{key}: graduate",
                          lambda: self.registry.graduate(
                              pid, "Every milestone of the incubation plan met; ready to be "
                              "commissioned"), key)
            self.approved_on[key] = story.graduated

    # -- what an applicant says about itself

    def _identifier(self, kind: str, low: int, high: int, fmt: str) -> str:
        while True:
            value = fmt.format(self.rng.randint(low, high))
            if (kind, value) not in self._taken:
                self._taken.add((kind, value))
                return value

    def _identifiers(self, spec: ProviderSpec) -> IdentifiersIn | None:
        rng, kind = self.rng, spec.kind
        company = charity = ukprn = None
        if kind in (OT.SME, OT.LARGE_PRIVATE) or spec.key == "westvale-homes":
            company = self._identifier("ch", 2_000_000, 15_999_999, "{:08d}")
        elif kind is OT.VCSE:
            if "CIC" in spec.name:
                company = self._identifier("ch", 8_000_000, 15_999_999, "{:08d}")
            else:
                charity = self._identifier("charity", 1_000_000, 1_209_999, "{:07d}")
                if rng.random() < 0.5:
                    company = self._identifier("ch", 2_000_000, 15_999_999, "{:08d}")
        elif kind is OT.COMMUNITY_GROUP and rng.random() < 0.3:
            charity = self._identifier("charity", 200_000, 529_999, "{:06d}")
        if spec.key in ("college", "university", "skillbridge", "pathway-employment",
                        "northshire-works", "routes-to-work"):
            ukprn = self._identifier("ukprn", 10_000_000, 10_099_999, "{:08d}")
        if company is None and charity is None and ukprn is None:
            return None
        return IdentifiersIn(companies_house=company, charity_number=charity, ukprn=ukprn)

    def _sme_size(self, spec: ProviderSpec) -> SmeSizeIn | None:
        if spec.kind is not OT.SME:
            return None
        rng, cats = self.rng, set(spec.category_codes)
        if cats & {"home-care", "residential-care", "reablement", "cleaning", "fostering"}:
            return SmeSizeIn(headcount=rng.randint(55, 230),
                             turnover_gbp=rng.randint(25, 140) * 100_000)
        if rng.random() < 0.55 or "home-to-school-transport" in cats:
            return SmeSizeIn(headcount=rng.randint(10, 48),
                             turnover_gbp=rng.randint(8, 60) * 100_000)
        return SmeSizeIn(headcount=rng.randint(2, 9), turnover_gbp=rng.randint(2, 18) * 50_000)

    def _areas(self, spec: ProviderSpec) -> list[str]:
        names = [DISTRICTS[d][0] for d in spec.districts]
        return (["Westvale"] if spec.home == "WV" else []) + names

    def _application(self, spec: ProviderSpec) -> NewProvider:
        rng = self.rng
        town, outwards = DISTRICTS[spec.home]
        slug = _slug(spec.name)
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        postcode = (f"{rng.choice(outwards)} {rng.randint(1, 9)}"
                    f"{rng.choice(letters)}{rng.choice(letters)}")
        street = rng.choice(data.STREETS)
        lines = ([f"Unit {rng.randint(1, 24)}", street] if "Park" in street
                 else [f"{rng.randint(1, 180)} {street}"])
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        mobile = spec.kind is OT.COMMUNITY_GROUP
        phone = (f"07700 900{rng.randint(0, 999):03d}" if mobile
                 else f"01632 960{rng.randint(0, 999):03d}")
        mailbox = rng.choice(["hello", "info", "enquiries", "contact"])
        phrases = _phrase([CATEGORIES[c][3] for c in spec.category_codes])
        where = ("across Northshire" if spec.serves == "*"
                 else f"in {_phrase([DISTRICTS[d][0] for d in spec.districts])}")
        description = spec.description or {
            OT.VCSE: (f"Community interest company providing {phrases} {where}."
                      if "CIC" in spec.name else f"Local charity providing {phrases} {where}."),
            OT.SME: f"Independent provider of {phrases}, based in {town}.",
            OT.LARGE_PRIVATE: f"National provider of {phrases}, delivering in Northshire "
                              "through its regional team.",
            OT.COMMUNITY_GROUP: f"Volunteer-run group offering {phrases} {where}.",
            OT.PUBLIC_BODY: f"Public body providing {phrases} {where}.",
            OT.PARTNERSHIP: f"Partnership delivering {phrases} {where}.",
        }[spec.kind]
        fields: dict[str, Any] = {
            "name": spec.name, "organisation_type": spec.kind, "description": description,
            "website": f"https://www.{slug}.example",
            "identifiers": self._identifiers(spec),
            "contact": ContactIn(name=f"{first} {last}", email=f"{mailbox}@{slug}.example",
                                 phone=phone),
            "address": AddressIn(lines=lines, town=town, county=data.COUNTIES[spec.home],
                                 postcode=postcode),
            "areas_served": self._areas(spec),
            "sme_size": self._sme_size(spec),
            "members": [self.provider_ids[m] for m in spec.members] or None,
        }
        # Only what the applicant gave: an absent field stays absent in the event.
        return NewProvider(**{k: v for k, v in fields.items() if v is not None})

    def _capability(self, spec: ProviderSpec, category: str) -> NewCapability:
        unit, low, high, phrase = CATEGORIES[category]
        scale = {OT.COMMUNITY_GROUP: 0.25, OT.VCSE: 0.6, OT.SME: 0.7, OT.LARGE_PRIVATE: 1.5,
                 OT.PUBLIC_BODY: 1.2, OT.PARTNERSHIP: 1.3}[spec.kind]
        amount = max(1, round(self.rng.randint(low, high) * scale))
        if amount > 50:
            amount = round(amount, -1)
        areas = self._areas(spec)
        if len(areas) > 2 and self.rng.random() < 0.3:
            areas = sorted(self.rng.sample(areas, len(areas) - 1), key=areas.index)
        return NewCapability(
            category=category, description=f"{phrase[0].upper()}{phrase[1:]}",
            areas=areas, capacity=CapacityIn(amount=amount, unit=unit))

    # -- standing: insurance, safeguarding checks, certifications, ratings

    def _plan_standing(self, spec: ProviderSpec, reg: date, review: date,
                       closes: date | None) -> None:
        rng, key = self.rng, spec.key
        last_day = min(END, closes - _days(1)) if closes else END
        cats = set(spec.category_codes)

        def series(kind: StandingKind, name: str, issuer: str | None, first_from: date,
                   years: int, renew: bool, cover: int | None = None) -> None:
            """A certificate and its renewals, each added when the provider sent it in."""
            valid_from, added = first_from, max(reg, review - _days(rng.randint(0, 3)))
            lapse_at = rng.randint(1, 4) if rng.random() < 0.1 else None
            n = 0
            while added <= last_day:
                expires = _years_on(valid_from, years) - _days(1)
                accreditation = NewAccreditation(
                    kind=kind, name=name, issuer=issuer,
                    reference=f"{kind.value[:3].upper()}-{rng.randint(100000, 999999)}",
                    valid_from=valid_from, expires_on=expires, cover_gbp=cover)
                self.plan.add(added, data.MARKET_OFFICER, f"{key}: {name}",
                              partial(self._renew, key, accreditation), key)
                n += 1
                if not renew or n == lapse_at:
                    return
                valid_from = expires + _days(1)
                added = max(valid_from - _days(rng.randint(5, 25)), added + _days(1))

        insurance = data.INSURANCE.get(key)
        if insurance is not None:
            for added, valid_from, expires in insurance:
                accreditation = NewAccreditation(
                    kind=StandingKind.INSURANCE, name="Public liability insurance",
                    issuer=rng.choice(data.INSURERS), valid_from=valid_from,
                    expires_on=expires, cover_gbp=10_000_000,
                    reference=f"INS-{rng.randint(100000, 999999)}")
                self.plan.add(added, data.MARKET_OFFICER, f"{key}: insurance",
                              partial(self._renew, key, accreditation), key)
        elif spec.kind is not OT.PUBLIC_BODY and key not in ("data-services",
                                                              "deanbridge-nursing"):
            cover = {OT.COMMUNITY_GROUP: 2_000_000, OT.LARGE_PRIVATE: 10_000_000}.get(
                spec.kind, rng.choice([5_000_000, 5_000_000, 10_000_000]))
            series(StandingKind.INSURANCE, "Public liability insurance",
                   rng.choice(data.INSURERS), reg - _days(rng.randint(0, 300)), 1, True, cover)
        if cats & data.WORKS_WITH_VULNERABLE_PEOPLE and spec.kind is not OT.PUBLIC_BODY:
            series(StandingKind.SAFEGUARDING_CHECK,
                   "Enhanced DBS checks for all staff and volunteers",
                   "Disclosure and Barring Service", reg - _days(rng.randint(30, 700)), 3,
                   key != "ashby-cars")
        if cats & {"software-services", "cyber-security"} or spec.kind is OT.LARGE_PRIVATE:
            plus = spec.kind is OT.PUBLIC_BODY or "cyber-security" in cats
            series(StandingKind.CERTIFICATION, "Cyber Essentials Plus" if plus
                   else "Cyber Essentials", "IASME", reg - _days(rng.randint(0, 200)), 1, True)
        if spec.kind is OT.LARGE_PRIVATE or (spec.kind is OT.SME and rng.random() < 0.2):
            series(StandingKind.CERTIFICATION, "ISO 9001:2015 quality management",
                   "BSI", reg - _days(rng.randint(0, 700)), 3, True)
        if spec.kind is OT.VCSE and rng.random() < 0.3:
            series(StandingKind.ACCREDITATION, "Investing in Volunteers", "NCVO",
                   reg - _days(rng.randint(0, 900)), 3, False)
        if spec.kind in (OT.VCSE, OT.SME) and rng.random() < 0.3:
            series(StandingKind.ACCREDITATION, "Accredited Living Wage Employer",
                   "Living Wage Foundation", reg - _days(rng.randint(0, 900)), 3, True)
        if "employment-support" in cats and spec.kind is not OT.PUBLIC_BODY:
            series(StandingKind.ACCREDITATION, "Matrix Standard (information, advice and "
                   "guidance)", "Matrix Standard", reg - _days(rng.randint(0, 900)), 3, True)
        if key in ("advice-centre", "housing-action"):
            series(StandingKind.ACCREDITATION, "Advice Quality Standard", "Advice UK",
                   reg - _days(rng.randint(0, 900)), 3, True)

    def _meet_milestone(self, key: str, index: int, evidence: str) -> None:
        self.registry.meet_milestone(self.provider_ids[key], self.milestones[key][index],
                                     evidence)

    def _pledge(self, key: str, pledge: NewContribution) -> None:
        self.integrator.pledge_contribution(self.need_ids[key], pledge)

    def _renew(self, key: str, new: NewAccreditation) -> None:
        """Record a certificate; the one it renews (same name) is removed as superseded, so
        only a certificate nobody renewed is left to expire."""
        pid = self.provider_ids[key]
        previous = self.current_standing.get((key, new.name))
        self.current_standing[(key, new.name)] = self.registry.add_accreditation(pid, new)
        if previous is not None:
            self.registry.remove_accreditation(
                pid, previous, f"Superseded by the renewal valid from {new.valid_from}")

    def _plan_ratings(self, spec: ProviderSpec, review: date) -> None:
        key, rng = spec.key, self.rng
        pid = self.provider_ids[key]
        ratings = list(data.RATINGS.get(key, ()))
        if not ratings and set(spec.category_codes) & data.REGULATED_BY_CQC:
            rating = rng.choices(["Good", "Outstanding", "Requires improvement"],
                                 [75, 10, 15])[0]
            rated = review - _days(rng.randint(120, 900))
            ratings.append(("CQC", rating, rated, review + _days(1)))
            if rng.random() < 0.45:
                again = _weekday(date(2024, 3, 1) + _days(rng.randint(0, 800)))
                if again > review + _days(30) and again + _days(14) <= END:
                    better = "Good" if rating == "Requires improvement" else rating
                    ratings.append(("CQC", better, again, again + _days(14)))
        closes = self._closing_date(data.REGISTRY_STORIES.get(key))
        for scheme, rating, rated_on, recorded in ratings:
            if closes and recorded >= closes:
                continue
            new = NewQualityRating(scheme=scheme, rating=rating, rated_on=rated_on,
                                   reference=f"1-{rng.randint(100000000, 999999999)}"
                                   if scheme == "CQC" else f"SC{rng.randint(100000, 999999)}")
            self.plan.add(max(recorded, review), data.MARKET_OFFICER,
                          f"{key}: {scheme} rating",
                          partial(self.registry.record_quality_rating, pid, new), key)

    # -- later changes of details and capabilities

    def _plan_updates(self) -> None:
        rng = self.rng
        areas = [DISTRICTS[d][0] for d in ("CT", "DB", "AM", "BF")]
        scripted: list[tuple[str, date, DetailsUpdate | str]] = [
            ("kindred", date(2025, 7, 22), DetailsUpdate(areas_served=areas)),
            ("fitkids", date(2025, 5, 6), DetailsUpdate(
                sme_size=SmeSizeIn(headcount=14, turnover_gbp=1_150_000))),
            ("libraries-mutual", date(2024, 11, 12), DetailsUpdate(
                description="Staff-owned public service mutual running Northshire's 14 "
                "libraries, with digital help points in every branch.")),
            ("eastmoor-coaches", date(2024, 8, 20), "community-transport"),
            ("roadlink", date(2025, 3, 25), "community-transport"),
        ]
        open_for_updates = [s.key for s in data.PROVIDERS
                            if s.fate in ("approved", "graduated", "reinstated")]
        for key in rng.sample(open_for_updates, 14):
            on = self.approved_on[key] + _days(rng.randint(60, 700))
            if on <= END - _days(10):
                first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
                slug = _slug(self.specs[key].name)
                scripted.append((key, on, DetailsUpdate(contact=ContactIn(
                    name=f"{first} {last}",
                    email=f"{first.lower()}.{re.sub('[^a-z]', '', last.lower())}@{slug}.example",
                    phone=f"01632 960{rng.randint(0, 999):03d}"))))
        for key, on, change in scripted:
            pid = self.provider_ids[key]
            if isinstance(change, str):
                def remove(pid: UUID = pid, category: str = change) -> None:
                    provider = self.registry.provider(pid)
                    found = [c for c in provider.capabilities.values()
                             if c["category"] == category]
                    self.registry.remove_capability(
                        pid, found[0]["capability_id"], "No longer offered in Northshire")

                self.plan.add(on, data.MARKET_OFFICER, f"{key}: remove {change}", remove, key)
            else:
                self.plan.add(on, data.MARKET_OFFICER, f"{key}: update details",
                              partial(self.registry.update_details, pid, change), key)

    # ------------------------------------------------------------------ needs

    def _plan_need(self, need: NeedSpec) -> None:
        plan, key, actor = self.plan, need.key, need.commissioner

        def add(on: date, label: str, run: Callable[[], object], who: str = actor) -> None:
            plan.add(on, who, f"{key}: {label}", run, f"need:{key}")

        def define() -> None:
            self.need_ids[key] = self.integrator.define_need(NewNeed(
                title=need.title, service_area=need.area,
                population=PopulationIn(description=need.population,
                                        size=need.population_size, areas=need.areas),
                outcomes=[OutcomeIn(description=o.description,
                                    measure_id=self.measure_ids[o.measure] if o.measure
                                    else None, target=o.target, target_date=o.by)
                          for o in need.outcomes],
                outputs=list(need.outputs), budget_envelope=D(need.budget),
                starts_on=need.starts, ends_on=need.until, lead_organisation=COUNCIL))

        add(need.defined, "define", define)
        for on, partner, amount, note in need.contributions:
            pledge = NewContribution(partner=partner, amount=D(amount), note=note)
            add(on, f"pledge {partner}", partial(self._pledge, key, pledge))
        for on, amount, reason, by in need.top_ups:
            top_up = EnvelopeRaise(amount=D(amount), reason=reason)
            add(on, "top up the envelope", partial(self._top_up, key, top_up), by)
        if need.options:
            appraisal = self._appraisal(need)
            add(need.options_on, "appraise options",
                lambda: self.integrator.appraise_options(self.need_ids[key], appraisal))
        if need.engaged is not None:
            assert need.engagement
            engaged = self._engaged(need)
            engagement = MarketEngagement(summary=need.engagement, engaged_on=need.engaged,
                                          provider_ids=engaged)
            add(need.engaged, "engage market",
                lambda: self.integrator.engage_market(self.need_ids[key], engagement))
        for number, decision in enumerate(need.decisions):
            self._plan_decision(need, number, decision, add)
        if need.review is not None:
            on, notes = need.review
            step = StageStep(stage=SourcingStage.REVIEW, notes=notes)
            add(on, "review", lambda: self.integrator.reach_stage(self.need_ids[key], step))
        if need.close is not None:
            on, reason = need.close
            for _, _, award in (self.awards[a.key] for d in need.decisions for a in d.awards):
                assert self._final_end(award, need)[0] <= on, f"{award.key} still running"
            step = StageStep(stage=SourcingStage.EXIT, notes="Every agreement has ended; "
                             "exit plans complete")
            add(on, "exit", lambda: self.integrator.reach_stage(self.need_ids[key], step))
            add(on + _days(14), "close", lambda: self.integrator.close_need(
                self.need_ids[key], Closure(reason=reason)))

    @staticmethod
    def acting() -> Principal:
        return acting()

    def _top_up(self, key: str, top_up: EnvelopeRaise) -> None:
        self.integrator.raise_envelope(self.need_ids[key], top_up, acting())

    def _appraisal(self, need: NeedSpec) -> OptionsAppraisal:
        rng = self.rng
        options = []
        for i, option in enumerate(need.options):
            description, benefits, risks = OPTION_TEXT[option]
            options.append(OptionIn(
                option=option, description=description,
                estimated_cost=D(round(need.budget * rng.uniform(0.9, 1.25), -3)),
                score=rng.randint(72, 88) if i == 0 else rng.randint(35, 66),
                benefits=benefits, risks=risks))
        return OptionsAppraisal(options=options, recommended=need.options[0],
                                rationale=need.rationale)

    def _engaged(self, need: NeedSpec) -> list[UUID]:
        """The providers at the market engagement: those later awarded, and others in the
        same line of work already registered by then."""
        assert need.engaged is not None
        awarded = [k for d in need.decisions for a in d.awards for k in a.providers]
        parent = _parent(need.area)
        others = [s.key for s in data.PROVIDERS if s.key not in awarded
                  and self.registered_on[s.key] < need.engaged
                  and any(_parent(c) == parent for c in s.category_codes)]
        chosen = awarded + self.rng.sample(others, min(len(others), self.rng.randint(3, 8)))
        keys = [k for k in dict.fromkeys(chosen) if self.registered_on[k] < need.engaged]
        return [self.provider_ids[k] for k in keys]

    def _plan_decision(self, need: NeedSpec, number: int, decision: data.DecisionSpec,
                       add: Callable[..., None]) -> None:
        key = need.key
        for award in decision.awards:
            for provider in award.providers:
                approved = self.approved_on.get(provider)
                assert approved is not None, f"{provider} is never approved"
                assert approved < decision.on, (
                    f"{provider} is not approved before the {key} decision of {decision.on}")
        new = NewDecision(
            awards=[AwardIn(title=a.title, arrangement_type=a.arrangement,
                            provider_ids=[self.provider_ids[p] for p in a.providers],
                            allocation=D(a.allocation)) for a in decision.awards],
            rationale=decision.rationale, decision_maker=decision.maker)

        def decide() -> None:
            _, award_ids = self.integrator.decide(self.need_ids[key], new, acting())
            for award, award_id in zip(decision.awards, award_ids, strict=True):
                self.award_ids[award.key] = award_id

        total = sum((D(a.allocation) for a in decision.awards), D(0))
        add(decision.on, f"decision {number + 1}", decide, decider(need.commissioner, total))
        drafts: list[date] = []
        activations: list[date] = []
        for award in decision.awards:
            starts = award.starts or need.starts
            drafted = min(decision.on + _days(self.rng.randint(7, 14)), starts - _days(2))
            drafted = max(drafted, decision.on + _days(1))
            # Drafted on a working day: a weekend one the Friday before (if after the
            # decision), so it can be signed before a Monday start.
            friday = drafted - _days(max(0, drafted.weekday() - 4))
            drafted = friday if friday > decision.on else drafted
            drafts.append(drafted)
            if award.activate:
                activations.append(starts)
            self._plan_agreement(need, award, drafted)
        step = StageStep(stage=SourcingStage.MOBILISATION,
                         notes="Agreements drafted; mobilisation meetings with each provider")
        add(min(drafts), f"mobilisation {number + 1}",
            lambda: self.integrator.reach_stage(self.need_ids[key], step))
        if activations:
            step2 = StageStep(stage=SourcingStage.MANAGEMENT,
                              notes="Services live; monthly contract management and quarterly "
                              "outcome reports")
            add(min(activations) + _days(14), f"management {number + 1}",
                lambda: self.integrator.reach_stage(self.need_ids[key], step2))

    # ------------------------------------------------------------------ agreements

    def _final_end(self, award: AwardSpec, need: NeedSpec) -> tuple[date, EndingKind | None]:
        """When the agreement's term ends (after extensions) or it was ended, and how."""
        ends = award.ends or need.ends
        for event in award.story:
            if isinstance(event, End):
                return event.on, event.how
            if isinstance(event, Extend):
                ends = event.new_end
        return ends, (EndingKind.COMPLETED if ends < END else None)

    def _plan_agreement(self, need: NeedSpec, award: AwardSpec, drafted: date) -> None:
        akey = award.key
        chain = f"agreement:{akey}"
        actor = need.commissioner
        starts, ends = award.starts or need.starts, award.ends or need.ends

        def add(on: date, label: str, run: Callable[[], object], who: str = actor) -> None:
            self.plan.add(on, who, f"{akey}: {label}", run, chain)

        def agreement_id() -> UUID:
            return self.agreement_ids[akey]

        def draft() -> None:
            need_id = self.need_ids[need.key]
            outcomes = self.integrator.need(need_id).outcomes
            reward = risk = None
            if award.reward:
                pct, bonus, penalty = award.reward
                reward = RewardTermsIn(
                    payment_by_results_share_pct=D(pct), bonus_max=D(bonus),
                    penalty_max=D(penalty), payment_frequency=PaymentFrequency.QUARTERLY,
                    notes="Results payments made quarterly against the agreed outcome "
                    "measures")
            if award.risk:
                council, provider = award.risk
                risk = RiskShareIn(council_pct=D(council), provider_pct=D(provider),
                                   notes="Shares cost overruns and savings against the "
                                   "agreed price")
            self.agreement_ids[akey] = self.integrator.draft_agreement(NewAgreement(
                need_id=need_id, award_id=self.award_ids[akey], starts_on=starts,
                ends_on=ends,
                outcomes=[AgreementOutcomeIn(outcome_id=o["outcome_id"],
                                             measure_id=o["measure_id"], target=o["target"])
                          for o in outcomes],
                reward_terms=reward, risk_share=risk,
                break_clauses=list(BREAK_CLAUSES[award.arrangement]),
                exit_plan=EXIT_PLANS[award.arrangement]))

        add(drafted, "draft", draft)
        if not award.activate:
            return
        # Signed some working days after it was drafted (so after the award), before it starts.
        parties = [self.specs[k].name for k in award.providers]
        signed_on = self._signing_day(drafted, starts)
        signature = Signature(signed_on=signed_on, signatories=[COUNCIL, *parties])
        add(signed_on, "sign",
            lambda: self.integrator.sign_agreement(agreement_id(), signature))
        add(starts, "activate",
            lambda: self.integrator.activate(agreement_id(), Activation(activated_on=starts)))
        events: list[tuple[date, int, Callable[[], object], str]] = []
        for i, story in enumerate(award.story):
            events.extend(self._story_steps(akey, i, story, agreement_id, actor))
        final_end, how = self._final_end(award, need)
        if how is EndingKind.COMPLETED and not any(isinstance(s, End) for s in award.story):
            ending = Ending(how=EndingKind.COMPLETED, ended_on=final_end,
                            reason="Term completed; final outcomes report received")
            events.append((final_end, 9, lambda: self.integrator.end_agreement(
                agreement_id(), ending), "complete"))
        for on, _, run, label in sorted(events, key=lambda e: (e[0], e[1])):
            add(on, label, run)
        self._plan_spend(award, starts, final_end, agreement_id)

    def _signing_day(self, drafted: date, starts: date) -> date:
        """A working day three to ten days after the agreement was drafted, and before it
        starts: the last working day before then if that is sooner, the drafting day itself
        if even that is past."""
        earliest = _weekday(drafted)
        latest = starts - _days(1)
        while latest.weekday() >= 5:
            latest -= _days(1)
        day = _weekday(drafted + _days(self.rng.randint(3, 10)))
        return max(earliest, min(day, latest))

    def _story_steps(self, akey: str, i: int, story: data.Story,
                     agreement_id: Callable[[], UUID], commissioner: str,
                     ) -> Iterable[tuple[date, int, Callable[[], object], str]]:
        """The steps of one line of an agreement's story, each taken by whoever the scheme of
        delegation gives the decision to (the commissioner within their limit)."""
        integrator = self.integrator
        if isinstance(story, Vary):
            def vary(story: Vary = story) -> None:
                change = D(story.change)
                if story.pct is not None:
                    budget = integrator.agreement(agreement_id()).budget
                    change = (budget * D(str(story.pct)) / 100).quantize(D(1))
                with acting_for(approver(commissioner, abs(change))) as by:
                    integrator.vary(agreement_id(), NewVariation(
                        kind=story.kind, budget_change=change, scope=story.scope,
                        reason=story.reason), by)

            # A release of budget on an ending comes before the ending the same day.
            yield story.on, 1 if story.change >= 0 else 7, vary, f"vary ({story.kind.value})"
        elif isinstance(story, Extend):
            extension = NewExtension(new_end=story.new_end, justification=story.justification,
                                     performance_evidence=story.evidence)
            growth = NewVariation(kind=VariationKind.GROWTH, budget_change=D(story.growth),
                                  scope=f"Extended term to {story.new_end:%-d %B %Y}",
                                  reason=data.FIXED)
            def extend(extension: NewExtension = extension) -> None:
                # Justified by the performance data held by now (the domain refuses without).
                budget = integrator.agreement(agreement_id()).budget
                with acting_for(approver(commissioner, budget)) as by:
                    integrator.extend(agreement_id(), extension, by)

            yield story.on, 2, extend, "extend"
            def grow(growth: NewVariation = growth) -> None:
                with acting_for(approver(commissioner, growth.budget_change)) as by:
                    integrator.vary(agreement_id(), growth, by)

            yield story.on, 3, grow, "extend budget"
        elif isinstance(story, Case):
            case = NewBusinessCase(need=story.need, expected_outcomes=story.outcomes,
                                   cost=D(story.cost))

            def propose(case: NewBusinessCase = case) -> None:
                self.cases[(akey, i)] = integrator.propose_business_case(agreement_id(), case,
                                                                         acting())

            yield story.on, 4, propose, "propose business case"
            if story.decided is not None:
                def decide_case(approve: bool = story.approve, reason: str = story.reason) -> None:
                    # By the head of commissioning, never the commissioner who proposed it.
                    with acting_for(data.HEAD_OF_COMMISSIONING) as by:
                        if approve:
                            integrator.approve_business_case(
                                agreement_id(), self.cases[(akey, i)], reason, by)
                        else:
                            integrator.reject_business_case(agreement_id(),
                                                            self.cases[(akey, i)], reason)

                yield (story.decided, 5, decide_case,
                       "approve case" if story.approve else "reject case")
        elif isinstance(story, End):
            ending = Ending(how=story.how, ended_on=story.on, reason=story.reason,
                            exit_plan_executed=story.exit_plan_executed,
                            exit_notes=story.notes)
            yield story.on, 8, lambda: integrator.end_agreement(agreement_id(), ending), "end"

    def _plan_spend(self, award: AwardSpec, starts: date, final_end: date,
                    agreement_id: Callable[[], UUID]) -> None:
        """Payments to each party: monthly in arrears for contracts, call-offs and shared
        services; quarterly in advance for grants and informal agreements. An agreement paid
        partly by results is paid so by hand only for the rest of its budget: its results
        payments are paid as they fall due (council.tools.demo.outcomes)."""
        rng, akey = self.rng, award.key
        quarterly = award.arrangement in (ArrangementType.GRANT, ArrangementType.INFORMAL_SLA)
        results_pct = D(award.reward[0]) if award.reward else D(0)
        months = list(_months(starts, final_end))
        if quarterly:
            months = months[::3]
        for month in months:
            if quarterly:
                paid = max(month + _days(rng.randint(2, 6)), starts + _days(1))
            else:
                paid = (month + _days(40)).replace(day=rng.randint(8, 14))
            if paid > END:
                break
            share = D(str(round(rng.uniform(0.9, 1.0), 3)))

            def pay(month: date = month, share: Decimal = share,
                    quarterly: bool = quarterly) -> None:
                agreement = self.integrator.agreement(agreement_id())
                step = 3 if quarterly else 1
                ends = date.fromisoformat(agreement.ends_on)
                left = max(1, len(list(_months(month, ends))[::step]))
                by_hand = agreement.budget * (100 - results_pct) / 100
                spent = sum((s["amount"] for s in agreement.spend.values()
                             if s.get("due_id") is None), D(0))
                amount = ((by_hand - spent) / left * share).quantize(PENNY, rounding=ROUND_DOWN)
                for party in agreement.parties:
                    part = (amount * party["allocation"] / agreement.budget).quantize(
                        PENNY, rounding=ROUND_DOWN)
                    if part >= 1:
                        self.integrator.record_spend(agreement_id(), NewSpend(
                            provider_id=party["provider_id"], amount=part,
                            period=_period(month),
                            reference=f"NCC-{_period(month).replace('-', '')}-"
                            f"{str(party['provider_id'])[:6].upper()}"), acting())

            self.plan.add(paid, data.FINANCE, f"{akey}: pay {_period(month)}", pay,
                          f"agreement:{akey}")

    # ------------------------------------------------------------------ lessons

    def _plan_lessons(self) -> None:
        needs = {n.key: n for n in data.NEEDS}
        for lesson in data.LESSONS:
            def record(lesson: data.LessonSpec = lesson) -> None:
                self.lesson_ids.append(self.integrator.record_lesson(NewLesson(
                    need_id=self.need_ids[lesson.need],
                    agreement_id=self.agreement_ids[lesson.award] if lesson.award else None,
                    stage=SourcingStage(lesson.stage), went=lesson.went, what=lesson.what,
                    why=lesson.why, tags=list(lesson.tags))))

            self.plan.add(lesson.on, needs[lesson.need].commissioner,
                          f"lesson {lesson.need}", record, "lessons")

    # ------------------------------------------------------------------ summary

    def summarise(self) -> DemoSummary:
        return summarise(self.registry, self.integrator, self.outcomes)


def _parent(category: str) -> str:
    term = taxonomy().terms[category]
    return term.parent or term.code


OPTION_TEXT: dict[SourcingOption, tuple[str, str, str]] = {
    SourcingOption.IN_HOUSE: (
        "Deliver with council staff", "Direct control; no procurement",
        "No spare capacity or specialist skills in-house; higher unit costs"),
    SourcingOption.SHARED_SERVICE: (
        "Buy from another public body as a shared service", "Proven service; no tender",
        "Dependent on the host's priorities"),
    SourcingOption.VCSE_GRANT: (
        "Grant-fund local voluntary and community organisations",
        "Local trust and reach; volunteers add value", "Less control over outputs"),
    SourcingOption.INFORMAL_SLA: (
        "An informal service level agreement with a community partner",
        "Light-touch and quick", "Little recourse if delivery slips"),
    SourcingOption.FRAMEWORK_CALL_OFF: (
        "Call off from an open framework of approved providers",
        "Choice and competition; work can move between providers",
        "More contract management"),
    SourcingOption.FORMAL_CONTRACT: (
        "A single formal outcome-based contract", "Clear accountability for outcomes",
        "Costly to procure; harder to change"),
    SourcingOption.MIXED: (
        "A mix: an outcome-based core with grants and call-offs around it",
        "Best provider for each part; keeps the local market diverse",
        "More interfaces to manage"),
}

BREAK_CLAUSES: dict[ArrangementType, tuple[str, ...]] = {
    ArrangementType.FORMAL_CONTRACT: (
        "Either party may end the agreement on six months' notice after the first year",
        "The council may break if outcome targets are missed for two consecutive quarters "
        "after a remedy plan"),
    ArrangementType.CALL_OFF: ("The council may end the call-off on three months' notice",),
    ArrangementType.GRANT: ("The council may withdraw the grant if its conditions are "
                            "breached",),
    ArrangementType.INFORMAL_SLA: ("Either party may end the agreement on one month's "
                                   "notice",),
    ArrangementType.SHARED_SERVICE: (
        "Either authority may withdraw on twelve months' notice at the end of a financial "
        "year",),
}
EXIT_PLANS: dict[ArrangementType, str] = {
    ArrangementType.FORMAL_CONTRACT: (
        "On exit the provider hands over case records and open work within 30 days, supports "
        "the transfer of staff under TUPE where it applies, and agrees a transition plan with "
        "the incoming provider so that no one loses a service."),
    ArrangementType.CALL_OFF: (
        "On exit, packages move to other framework providers under a transition plan agreed "
        "within ten working days; records are returned under the data processing agreement."),
    ArrangementType.GRANT: (
        "If the grant ends, the organisation tells the people it supports three months ahead, "
        "helps them on to other services and returns any unspent grant."),
    ArrangementType.INFORMAL_SLA: (
        "If the agreement ends, the group and the council agree how sessions wind down and "
        "tell participants a month ahead."),
    ArrangementType.SHARED_SERVICE: (
        "On withdrawal the host authority returns the council's data and configuration, "
        "supports migration for up to six months and charges only for services used."),
}


# ====================================================================================== reading


def _notifications(app: CouncilApplication) -> Iterator[StoredEvent]:
    start = 0
    while True:
        batch = app.recorder.select_notifications(start=start, limit=1000,
                                                  inclusive_of_start=False)
        if not batch:
            return
        yield from batch
        start = batch[-1].id


def summarise(registry: ProviderRegistry, integrator: Integrator,
              outcomes: Outcomes) -> DemoSummary:
    """Count the demo data as the stores hold it, re-reading every aggregate."""
    summary = DemoSummary()
    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for provider_id in demo_provider_ids().values():
        provider = registry.provider(provider_id)
        kinds[provider.organisation_type.value] += 1
        statuses[provider.status.value] += 1
        if provider.incubation is not None:
            summary.incubated += 1
            if provider.status is not ProviderStatus.INCUBATING and not \
                    provider.unmet_milestones():
                summary.graduated += 1
    summary.providers_by_type, summary.providers_by_status = dict(kinds), dict(statuses)

    events: Counter[str] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    ids: dict[type, list[UUID]] = {}
    revisions = corrections = 0
    for app in (registry, integrator, outcomes):
        for stored in _notifications(app):
            cls = resolve_topic(stored.topic)
            if cls in (OutcomeMeasure.Measured, DeliveryReport.Reported):
                state = vars(app.mapper.to_domain_event(stored))
                revisions += state.get("revises") is not None
                corrections += state.get("corrects") is not None
            if app.is_published(stored):
                events[app.service] += 1
                occurred: datetime = vars(app.mapper.to_domain_event(stored))["timestamp"]
                first = occurred if first is None or occurred < first else first
                last = occurred if last is None or occurred > last else last
            ids.setdefault(cls, []).append(stored.originator_id)  # type: ignore[arg-type]
    summary.events = dict(events)
    summary.first_event = f"{first:%Y-%m-%d}" if first else ""
    summary.last_event = f"{last:%Y-%m-%d}" if last else ""
    summary.measures = len(ids.get(OutcomeMeasure.Defined, []))

    partners: set[str] = set()
    for need_id in ids.get(Need.Defined, []):
        need = integrator.need(need_id)
        summary.needs += 1
        summary.needs_decided += bool(need.decisions)
        summary.needs_closed += not need.is_open
        summary.contributions += len(need.contributions)
        summary.envelope_raises += len(need.envelope_raises)
        partners |= {c["partner"] for c in need.contributions.values()}
    summary.collaborative_partners = sorted(partners)

    arrangements: Counter[str] = Counter()
    agreement_status: Counter[str] = Counter()
    endings: Counter[str] = Counter()
    variations: Counter[str] = Counter()
    cases: Counter[str] = Counter()
    total = results = D(0)
    for agreement_id in ids.get(Agreement.Drafted, []):
        agreement = integrator.agreement(agreement_id)
        arrangements[agreement.arrangement_type] += 1
        agreement_status[agreement.status.value] += 1
        if agreement.ending:
            endings[agreement.ending["how"]] += 1
        variations.update(v["kind"] for v in agreement.variations)
        summary.extensions += len(agreement.extensions)
        summary.extension_overrides += sum(1 for e in agreement.extensions
                                           if e.get("override_reason"))
        summary.results_due += len(agreement.results_due)
        summary.results_paid += sum(1 for d in agreement.results_due.values() if d["paid"])
        results += sum((s["amount"] for s in agreement.spend.values() if s.get("due_id")), D(0))
        cases.update(c["status"] for c in agreement.business_cases.values())
        summary.spend_records += len(agreement.spend)
        total += agreement.spent
    summary.agreements_by_arrangement = dict(arrangements)
    summary.agreements_by_status = dict(agreement_status)
    summary.endings, summary.variations = dict(endings), dict(variations)
    summary.business_cases, summary.spend_total = dict(cases), f"{total:.2f}"
    summary.results_spent = f"{results:.2f}"
    summary.lessons = len(ids.get(Lesson.Recorded, []))
    _summarise_outcomes(summary, outcomes, ids, revisions, corrections)
    return summary


def _summarise_outcomes(summary: DemoSummary, outcomes: Outcomes, ids: dict[type, list[UUID]],
                        revisions: int, corrections: int) -> None:
    summary.measurements = len(ids.get(OutcomeMeasure.Measured, []))
    summary.measurement_revisions = revisions
    summary.attributions = len(ids.get(AgreementTerms.Attributed, []))
    summary.rate_cards = len(ids.get(AgreementTerms.RateCardAgreed, []))
    summary.deliveries = len(ids.get(DeliveryReport.Reported, []))
    summary.delivery_corrections = corrections
    summary.payments_calculated = len(ids.get(AgreementTerms.PaymentCalculated, []))
    summary.payments_recalculated = len(ids.get(AgreementTerms.PaymentRecalculated, []))
    paid = D(0)
    for terms_id in ids.get(AgreementTerms.Opened, []):
        terms: AgreementTerms = outcomes.repository.get(terms_id)
        paid += sum((p["total"] for p in terms.payments.values()), D(0))
    summary.payments_total = f"{paid:.2f}"


# ====================================================================================== entry


@contextmanager
def _applications(settings: Settings) -> Iterator[tuple[ProviderRegistry, Integrator,
                                                        Outcomes]]:
    with ExitStack() as stack:
        registry = open_application(ProviderRegistry, settings)
        stack.callback(registry.close)
        identity = open_database(settings, "identity")
        stack.callback(identity.close)
        registry.credentials = TokenStore(identity)
        integrator = open_application(Integrator, settings)
        stack.callback(integrator.close)
        outcomes = open_application(Outcomes, settings)
        stack.callback(outcomes.close)
        yield registry, integrator, outcomes


def _marker(db: Database) -> DemoSummary | None:
    with db.transaction() as tx:
        tx.execute(_MARKER_SCHEMA)
        rows = tx.execute("SELECT summary FROM demo_data WHERE data_set = ?", (DATA_SET,))
    if not rows:
        return None
    known = DemoSummary.__dataclass_fields__
    return DemoSummary(**{k: v for k, v in json.loads(rows[0][0]).items() if k in known})


def publish(settings: Settings, apps: Iterable[CouncilApplication],
            progress: Progress | None = None) -> int:
    """Drain each service's outbox to the shared log; returns how many events moved."""
    moved = 0
    event_log = open_event_log(settings)
    try:
        for app in apps:
            db = store_database(settings, app.service)
            try:
                relay = OutboxRelay(app, event_log, db)
                total = relay.pending()
                done = 0
                while step := relay.relay_once():
                    done += step
                    if progress:
                        progress(f"publishing {app.service}", min(done, total), total)
                moved += done
                # Sign where the chain ends, so the demo trail can be verified at once.
                CheckpointWriter.for_service(settings, app.service, db, event_log,
                                             relay.name).write(force=True)
            finally:
                db.close()
    finally:
        event_log.close()
    return moved


def load_demo(settings: Settings, progress: Progress | None = None) -> DemoSummary:
    """Load the demo data set into the configured stores and publish it to the shared log;
    does nothing (and says so) when it is already loaded."""
    began = time.perf_counter()
    marker_db = store_database(settings, "integrator")
    try:
        loaded = _marker(marker_db)
        if loaded is not None:
            loaded.already_loaded = True
            return loaded
        with _applications(settings) as (registry, integrator, outcomes):
            if registry.recorder.select_events(provider_id_for(MARKER_KEY), limit=1):
                raise DemoError(
                    "an earlier demo load stopped part-way: the stores hold part of the demo "
                    "data. Start again from empty stores (make clean, or drop the schemas) "
                    "and run `council demo` again.")
            settlement = Settlement(settings, outcomes, integrator)
            try:
                loader = DemoLoader(registry, integrator, outcomes, settlement)
                loader.plan_all()
                loader.run(progress)
            finally:
                settlement.close()
            publish(settings, (registry, integrator, outcomes), progress)
            summary = loader.summarise()
        summary.seconds = round(time.perf_counter() - began, 1)
        with marker_db.transaction() as tx:
            tx.execute(
                "INSERT INTO demo_data (data_set, loaded_at, summary) VALUES (?, ?, ?)",
                (DATA_SET, datetime.now(UTC).isoformat(), json.dumps(asdict(summary))))
        return summary
    finally:
        marker_db.close()


def demo_loaded(settings: Settings) -> bool:
    db = store_database(settings, "integrator")
    try:
        return _marker(db) is not None
    finally:
        db.close()


__all__ = ["DemoError", "DemoSummary", "demo_loaded", "load_demo", "publish", "summarise"]
