"""The network state and market view in both deployments (embedded: SQLite and the file log;
scale-out: PostgreSQL and Kafka with several partitions): a small but realistic history of a
council's network goes onto the shared log in the order it happened; the live projections follow
it, and what they answer at intermediate dates is captured. Then the read model is rebuilt from
empty and must answer exactly as the live one did, and the view rebuilt "as of" each captured
date must equal what the live projection answered on that date."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import pytest
from pydantic import BaseModel

from council.kernel.contracts import all_specs
from council.kernel.contracts import integrator as ci
from council.kernel.contracts import provider_registry as pr
from council.kernel.envelope import EventEnvelope
from council.kernel.taxonomy import taxonomy
from council.platform.eventlog import EventLog, open_event_log
from council.platform.projection import ProjectionRunner
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.projections import (
    CommissioningProjection,
    NetworkProjection,
    get_agreement,
    get_need,
    list_agreements,
    list_needs,
    market_view,
    network_state,
    search_lessons,
    spend_by_partner,
)
from council.services.integrator.projections.asof import as_of_moment, state_as_of

D = Decimal
SPECS = {spec.data: spec for spec in all_specs()}
NS = UUID("2b0f8c8e-7f0e-4a43-9d57-1a2e3f4b5c6d")
CATEGORIES = ("home-care", "weight-management", "youth-services")
KINDS = (pr.OrganisationType.SME, pr.OrganisationType.VCSE, pr.OrganisationType.PUBLIC_BODY,
         pr.OrganisationType.LARGE_PRIVATE, pr.OrganisationType.COMMUNITY_GROUP)
SNAPSHOT_DAYS = ("2024-06-30", "2024-12-31", "2025-06-30", "2025-12-31")


def uid(name: str) -> UUID:
    return uuid5(NS, name)


class History:
    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []
        self._positions: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, when: date, data: BaseModel) -> None:
        spec = SPECS[type(data)]
        stream = str(getattr(data, spec.stream_field))
        self._positions[(spec.source, stream)] += 1
        moment = datetime.fromisoformat(f"{when.isoformat()}T09:30:00+00:00")
        self.events.append(EventEnvelope(
            event_id=uid(f"{spec.source}/{stream}/{self._positions[(spec.source, stream)]}"),
            type=spec.type, schema_version=spec.version, source=spec.source, stream_id=stream,
            stream_position=self._positions[(spec.source, stream)], occurred_at=moment,
            recorded_at=moment, actor="commissioner:jo", data=data.model_dump(mode="json"),
        ))


def history() -> list[EventEnvelope]:
    """Twelve providers in three service categories; six needs (two pooled with partners),
    commissioned over 2024-2025 to one to three providers each, with quarterly spend,
    variations, extensions, a business case, endings, a suspension and lessons."""
    rng = random.Random(2024)
    h = History()
    start = date(2024, 1, 8)
    providers: dict[str, list[UUID]] = defaultdict(list)
    for i in range(12):
        pid = uid(f"provider-{i}")
        h.add(start, pr.ProviderRegistered(provider_id=pid, name=f"Provider {i:02}",
                                           organisation_type=KINDS[i % len(KINDS)]))
        for j, category in enumerate(sorted({CATEGORIES[i % 3], CATEGORIES[(i * 2) % 3]})):
            h.add(start + timedelta(days=2), pr.ProviderCapabilityAdded(
                provider_id=pid, capability_id=f"cap-{j}", category=category))
            providers[category].append(pid)
        if i != 11:  # one applicant never approved
            h.add(start + timedelta(days=5 + i), pr.ProviderApproved(
                provider_id=pid, reason="checks passed", credentials_id=f"cred-{i}"))
    h.add(date(2025, 9, 1), pr.ProviderSuspended(provider_id=uid("provider-4"),
                                                 reason="lapsed insurance"))

    for n in range(6):
        need_id = uid(f"need-{n}")
        area = CATEGORIES[n % 3]
        defined = date(2024, 2, 1) + timedelta(days=75 * n)
        envelope = D(rng.randint(200, 900) * 1000)
        outcomes = [ci.OutcomeSought(outcome_id=f"o{k}", description=f"Outcome {k} of need {n}")
                    for k in range(3)]
        h.add(defined, ci.NeedDefined(
            need_id=need_id, title=f"Need {n}", service_area=area,
            population=ci.Population(description="residents"), outcomes=outcomes,
            budget_envelope=envelope, starts_on=defined, ends_on=defined + timedelta(days=1095),
            lead_organisation="Northshire County Council"))
        pooled = envelope
        if n in (0, 3):
            for partner, amount in (("Northshire ICB", envelope / 2),
                                    ("Northshire Police", envelope / 6)):
                amount = amount.quantize(D("0.01"))
                h.add(defined + timedelta(days=3), ci.NeedContributionPledged(
                    need_id=need_id, contribution_id=partner[-4:], partner=partner,
                    amount=amount))
                pooled += amount
        h.add(defined + timedelta(days=10), ci.OptionsAppraised(
            need_id=need_id, options=[ci.Option(option=ci.SourcingOption.MIXED,
                                                description="a mix")],
            recommended=ci.SourcingOption.MIXED, rationale="reach"))
        if n == 5:
            continue  # the last need is still being sourced: a gap
        candidates = [p for p in providers[area] if p != uid("provider-11")]
        chosen = rng.sample(candidates, k=min(len(candidates), 1 + n % 3))
        share = (pooled * D("0.9") / len(chosen)).quantize(D("0.01"))
        decided = defined + timedelta(days=30)
        awards = [ci.Award(award_id=f"a{k}", title=f"Lot {k}",
                           arrangement_type=list(ci.ArrangementType)[(n + k) % 5],
                           provider_ids=[p], allocation=share) for k, p in enumerate(chosen)]
        h.add(decided, ci.CommissioningDecided(need_id=need_id, decision_id="d1", awards=awards,
                                               rationale="best mix", decision_maker="Cabinet"))
        for k, award in enumerate(awards):
            aid = uid(f"agreement-{n}-{k}")
            covered = [f"o{k % 2}"] if n != 1 else [f"o{k}"]
            ends = decided + timedelta(days=730)
            h.add(decided + timedelta(days=5), ci.AgreementDrafted(
                agreement_id=aid, need_id=need_id, decision_id="d1", award_id=award.award_id,
                title=award.title, arrangement_type=award.arrangement_type,
                parties=[ci.Party(provider_id=award.provider_ids[0], allocation=share)],
                starts_on=decided, ends_on=ends, budget=share,
                outcomes=[ci.AgreementOutcome(outcome_id=o) for o in covered],
                exit_plan="hand back"))
            live_from = decided + timedelta(days=20)
            h.add(live_from, ci.AgreementActivated(agreement_id=aid, activated_on=live_from))
            budget, spent = share, D(0)
            day = live_from
            for q in range(1, 8):
                day = live_from + timedelta(days=91 * q)
                if day > date(2026, 6, 30):
                    break
                amount = (budget * D(rng.randint(5, 11)) / 100).quantize(D("0.01"))
                h.add(day, ci.SpendRecorded(agreement_id=aid, spend_id=f"s{q}",
                                            provider_id=award.provider_ids[0], amount=amount,
                                            period=f"{day.year}-{day.month:02}"))
                spent += amount
                if q == 2 and (n + k) % 2 == 0:
                    change = D(rng.randint(1, 9) * 5000)
                    budget += change
                    h.add(day + timedelta(days=1), ci.AgreementVaried(
                        agreement_id=aid, variation_id=f"v{q}",
                        kind=ci.VariationKind.GROWTH, budget_change=change, new_budget=budget,
                        reason="demand is up"))
                if q == 3 and n == 2 and k == 0:
                    h.add(day + timedelta(days=2), ci.BusinessCaseProposed(
                        agreement_id=aid, business_case_id="bc1", need="an extra estate",
                        expected_outcomes="more families", cost=D("12345.67")))
                    h.add(day + timedelta(days=9), ci.BusinessCaseApproved(
                        agreement_id=aid, business_case_id="bc1", reason="agreed"))
                    budget += D("12345.67")
                    h.add(day + timedelta(days=9), ci.AgreementVaried(
                        agreement_id=aid, variation_id="v-bc1",
                        kind=ci.VariationKind.BUSINESS_CASE, budget_change=D("12345.67"),
                        new_budget=budget, reason="agreed", business_case_id="bc1"))
                if q == 4 and k == 0 and n % 2 == 1:
                    h.add(day + timedelta(days=3), ci.AgreementExtended(
                        agreement_id=aid, extension_id="e1", previous_end=ends,
                        new_end=ends + timedelta(days=365), justification="on target",
                        performance_evidence="targets met"))
                if q == 5 and k == 1:
                    h.add(day + timedelta(days=4), ci.AgreementEnded(
                        agreement_id=aid, how=ci.EndingKind.COMPLETED,
                        ended_on=day + timedelta(days=4), reason="delivered",
                        exit_plan_executed=False))
                    h.add(day + timedelta(days=10), ci.LessonRecorded(
                        lesson_id=uid(f"lesson-{n}-{k}"), need_id=need_id, agreement_id=aid,
                        stage=ci.SourcingStage.REVIEW, went="well" if n % 2 else "badly",
                        what=f"Lot {k} of need {n} finished", why="clear milestones",
                        tags=["review", area]))
                    break
    h.add(date(2025, 11, 20), ci.NeedClosed(need_id=uid("need-4"), reason="superseded"))
    return sorted(h.events, key=lambda e: e.occurred_at)


def snapshot(db: Database, at: datetime | None = None) -> dict[str, Any]:
    """Every query's answer; the market as at `at` (default now)."""

    def dump(value: BaseModel | None) -> Any:
        return value.model_dump(mode="json") if value is not None else None

    needs = list_needs(db)
    agreements = list_agreements(db)
    return {
        "market": dump(market_view(db, at)),
        "state": dump(network_state(db)),
        "needs": [dump(n) for n in needs],
        "need": {str(n.need_id): dump(get_need(db, n.need_id)) for n in needs},
        "by_partner": {str(n.need_id): dump(spend_by_partner(db, n.need_id)) for n in needs},
        "agreement": {str(a.agreement_id): dump(get_agreement(db, a.agreement_id))
                      for a in agreements},
        "lessons": [dump(x) for x in search_lessons(db)],
    }


class Live:
    """The shared log and the integrator's live runners over its read-model database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = open_event_log(settings)
        self.views = open_database(settings, "integrator_views")
        self.logs: list[EventLog] = [self.writer]
        self.runners: list[ProjectionRunner] = []
        for projection in (NetworkProjection(), CommissioningProjection()):
            self.logs.append(open_event_log(settings))
            self.runners.append(ProjectionRunner(projection, self.views, self.logs[-1]))
        self.appended = {runner.projection.name: 0 for runner in self.runners}

    def append(self, events: list[EventEnvelope]) -> None:
        self.writer.append(events)
        for runner in self.runners:
            self.appended[runner.projection.name] += sum(
                e.source in runner.projection.sources for e in events)

    def sync(self) -> None:
        """Until every runner has read everything appended for it (a Kafka fetch may answer
        empty while the newest records are on their way)."""
        for runner in self.runners:
            wanted = self.appended[runner.projection.name]
            deadline = time.monotonic() + 30
            while sum(runner.position().values()) < wanted:
                assert time.monotonic() < deadline, f"{runner.projection.name} fell behind"
                runner.catch_up()

    def close(self) -> None:
        for event_log in self.logs:
            event_log.close()
        self.views.close()


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    built = Live(settings)
    yield built
    built.close()


def test_rebuild_and_as_of_equal_the_live_network_state(live: Live, settings: Settings) -> None:
    events = history()
    seen: dict[str, dict[str, Any]] = {}
    fed = 0
    for day in SNAPSHOT_DAYS:
        upto = as_of_moment(day)
        due = [e for e in events[fed:] if e.occurred_at <= upto]
        live.append(due)
        fed += len(due)
        live.sync()
        seen[day] = snapshot(live.views, upto)
    live.append(events[fed:])
    live.sync()
    final = snapshot(live.views)

    # The history is worth comparing: money committed, concentration, gaps and partners.
    market = final["market"]
    assert D(market["committed_total"]) > 0
    # Concentration is rated per top-level category: each of these sits under a different one.
    assert {c["category"] for c in market["categories"] if c["hhi"]} == {
        taxonomy().top(c) for c in CATEGORIES}
    assert market["gaps"]["needs_without_active_agreement"]
    assert market["gaps"]["outcomes_not_covered"]
    assert any(len(s["partners"]) == 3 for s in final["by_partner"].values())
    assert len({str(s) for s in (*seen.values(), final)}) == len(SNAPSHOT_DAYS) + 1

    # Rebuilt from an empty read model over the full log: the same answers.
    for runner in live.runners:
        runner.rebuild()
    live.sync()
    assert snapshot(live.views) == final

    # As of each date: what the live projection answered on that date.
    reader = open_event_log(settings)
    live.logs.append(reader)
    for day, expected in seen.items():
        with state_as_of(reader, None, day) as db:
            assert snapshot(db, as_of_moment(day)) == expected, day
    with state_as_of(reader, None, "2030-01-01") as db:
        assert snapshot(db) == final
