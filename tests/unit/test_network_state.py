"""The network state and market view, built from the shared log: every figure checked against
values worked out by hand (committed spend shares by organisation type, the Herfindahl-Hirschman
index of a three-provider category, gaps, spend split between collaborating partners 60/30/10,
variations, extensions, endings, business cases, lessons search), a rebuild from an empty read
model equal to the live one, and the view "as of" past dates equal to what the live projection
gave on those dates, whatever order the log holds the events in."""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from council.kernel.contracts import all_specs
from council.kernel.contracts import integrator as ci
from council.kernel.contracts import provider_registry as pr
from council.kernel.contracts.integrator import VariationKind
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.eventlog.embedded import EmbeddedEventLog
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.runtime import create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.domain.agreements import Agreement
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
from council.services.integrator.projections.asof import as_of_moment, build_as_of, state_as_of
from council.services.integrator.projections.commissioning import scale_allocations
from council.services.integrator.projections.market import hhi_of
from council.services.integrator.projections.need_queries import split_pro_rata
from council.services.integrator.service import SPEC as INTEGRATOR

D = Decimal
LEAD, ICB, POLICE = "Northshire County Council", "Northshire ICB", "Northshire Police"
P1, P2, P3, P4, P5 = (UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in range(1, 6))
N1, N2, N3 = (UUID(f"00000000-0000-4000-9000-00000000000{i}") for i in range(1, 4))
AG1, AG2, AG3, AG4 = (UUID(f"00000000-0000-4000-a000-00000000000{i}") for i in range(1, 5))
L1, L2 = (UUID(f"00000000-0000-4000-b000-00000000000{i}") for i in range(1, 3))
SPECS = {spec.data: spec for spec in all_specs()}


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


class History:
    """Envelopes built from the contract models, numbered per stream as the services number
    them. Build each stream's events in the order they happened."""

    def __init__(self) -> None:
        self.events: list[EventEnvelope] = []
        self._positions: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, day: str, data: BaseModel, actor: str = "commissioner:jo") -> None:
        spec = SPECS[type(data)]
        stream = str(getattr(data, spec.stream_field))
        self._positions[(spec.source, stream)] += 1
        self.events.append(EventEnvelope(
            event_id=uuid4(), type=spec.type, schema_version=spec.version, source=spec.source,
            stream_id=stream, stream_position=self._positions[(spec.source, stream)],
            occurred_at=at(day), recorded_at=at(day), actor=actor,
            data=data.model_dump(mode="json"),
        ))

    def in_time_order(self) -> list[EventEnvelope]:
        return sorted(self.events, key=lambda e: e.occurred_at)


def provider(h: History, provider_id: UUID, name: str, kind: pr.OrganisationType,
             categories: list[str], approved: bool = True) -> None:
    h.add("2024-01-10", pr.ProviderRegistered(provider_id=provider_id, name=name,
                                              organisation_type=kind), actor="provider:self")
    for i, category in enumerate(categories):
        h.add("2024-01-15", pr.ProviderCapabilityAdded(
            provider_id=provider_id, capability_id=f"cap{i}", category=category))
    if approved:
        h.add("2024-01-20", pr.ProviderApproved(provider_id=provider_id, reason="checks passed",
                                                credentials_id=f"cred-{name}"))


def outcome(outcome_id: str, description: str) -> ci.OutcomeSought:
    return ci.OutcomeSought(outcome_id=outcome_id, description=description)


def need(h: History, day: str, need_id: UUID, title: str, area: str, envelope: str,
         outcomes: list[ci.OutcomeSought]) -> None:
    h.add(day, ci.NeedDefined(
        need_id=need_id, title=title, service_area=area,
        population=ci.Population(description="residents", size=1000), outcomes=outcomes,
        budget_envelope=D(envelope), starts_on=date(2024, 4, 1), ends_on=date(2027, 3, 31),
        lead_organisation=LEAD))


def agreement(h: History, day: str, agreement_id: UUID, need_id: UUID, award_id: str,
              kind: ci.ArrangementType, parties: list[tuple[UUID, str]], outcomes: list[str],
              ends_on: date = date(2026, 3, 31)) -> None:
    h.add(day, ci.AgreementDrafted(
        agreement_id=agreement_id, need_id=need_id, decision_id="d", award_id=award_id,
        title=f"Agreement {award_id}", arrangement_type=kind,
        parties=[ci.Party(provider_id=p, allocation=D(a)) for p, a in parties],
        starts_on=date(2024, 4, 1), ends_on=ends_on,
        budget=sum((D(a) for _, a in parties), D(0)),
        outcomes=[ci.AgreementOutcome(outcome_id=o) for o in outcomes],
        exit_plan="hand back to the council's team"))


def spend(h: History, day: str, agreement_id: UUID, spend_id: str, provider_id: UUID,
          amount: str) -> None:
    h.add(day, ci.SpendRecorded(agreement_id=agreement_id, spend_id=spend_id,
                                provider_id=provider_id, amount=D(amount), period=day[:7]))


def history() -> History:
    """Two years of a council's network: five providers; home care commissioned jointly with
    the ICB and the police (60/30/10) from three providers; a weight-management call-off shared
    by two providers, grown by a business case; a stop-smoking need never met, then withdrawn."""
    h = History()
    kinds = pr.OrganisationType
    provider(h, P1, "Acorn Care", kinds.SME, ["home-care"])
    provider(h, P2, "Beacon Trust", kinds.VCSE, ["home-care", "weight-management"])
    provider(h, P3, "Civic Shared Services", kinds.PUBLIC_BODY, ["home-care"])
    provider(h, P4, "Delta Health plc", kinds.LARGE_PRIVATE, ["weight-management"])
    provider(h, P5, "Eden Community Group", kinds.COMMUNITY_GROUP, ["home-care"], approved=False)

    need(h, "2024-02-01", N1, "Home care for older people", "home-care", "600000.00", [
        outcome("o1", "Fewer hospital readmissions"),
        outcome("o2", "More people living independently at home"),
        outcome("o3", "Carers feel supported"),
    ])
    h.add("2024-02-05", ci.NeedContributionPledged(need_id=N1, contribution_id="c1",
                                                   partner=ICB, amount=D("300000.00")))
    h.add("2024-02-05", ci.NeedContributionPledged(need_id=N1, contribution_id="c2",
                                                   partner=POLICE, amount=D("100000.00")))
    h.add("2024-02-10", ci.OptionsAppraised(
        need_id=N1, options=[ci.Option(option=ci.SourcingOption.MIXED, description="a mix")],
        recommended=ci.SourcingOption.MIXED, rationale="no one provider covers the county"))
    h.add("2024-02-20", ci.MarketEngaged(need_id=N1, summary="provider day",
                                         engaged_on=date(2024, 2, 20),
                                         provider_ids=[P1, P2, P3, P5]))
    h.add("2024-03-01", ci.CommissioningDecided(need_id=N1, decision_id="d", awards=[
        ci.Award(award_id="a1", title="North", arrangement_type=ci.ArrangementType.FORMAL_CONTRACT,
                 provider_ids=[P1], allocation=D("500000.00")),
        ci.Award(award_id="a2", title="South", arrangement_type=ci.ArrangementType.GRANT,
                 provider_ids=[P2], allocation=D("300000.00")),
        ci.Award(award_id="a3", title="Rural", arrangement_type=ci.ArrangementType.SHARED_SERVICE,
                 provider_ids=[P3], allocation=D("200000.00")),
    ], rationale="best mix", decision_maker="Cabinet"))
    agreement(h, "2024-03-10", AG1, N1, "a1", ci.ArrangementType.FORMAL_CONTRACT,
              [(P1, "500000.00")], ["o1", "o2"])
    agreement(h, "2024-03-10", AG2, N1, "a2", ci.ArrangementType.GRANT,
              [(P2, "300000.00")], ["o2"])
    agreement(h, "2024-03-10", AG3, N1, "a3", ci.ArrangementType.SHARED_SERVICE,
              [(P3, "200000.00")], ["o1"])
    h.add("2024-03-15", ci.NeedStageReached(need_id=N1, stage=ci.SourcingStage.MOBILISATION,
                                            notes="kick-off"))
    for agreement_id in (AG1, AG2, AG3):
        h.add("2024-04-01", ci.AgreementActivated(agreement_id=agreement_id,
                                                  activated_on=date(2024, 4, 1)))
    h.add("2024-04-01", ci.NeedStageReached(need_id=N1, stage=ci.SourcingStage.MANAGEMENT,
                                            notes="all live"))
    h.add("2024-05-15", ci.LessonRecorded(
        lesson_id=L1, need_id=N1, stage=ci.SourcingStage.DECISION, went="well",
        what="Pooling budgets with the ICB and the police", why="One commission, one voice",
        tags=["collaboration", "budgets"]))
    spend(h, "2024-06-30", AG1, "s1", P1, "100000.00")
    spend(h, "2024-06-30", AG2, "s2", P2, "50000.01")
    spend(h, "2024-07-31", AG3, "s3", P3, "20000.00")

    need(h, "2024-09-01", N2, "Healthy weight for teenagers", "weight-management", "200000.00",
         [outcome("w1", "Fewer teenagers living with obesity")])
    h.add("2024-09-10", ci.OptionsAppraised(
        need_id=N2, options=[ci.Option(option=ci.SourcingOption.FRAMEWORK_CALL_OFF,
                                       description="call-off")],
        recommended=ci.SourcingOption.FRAMEWORK_CALL_OFF, rationale="framework in place"))
    h.add("2024-09-15", ci.CommissioningDecided(need_id=N2, decision_id="d", awards=[
        ci.Award(award_id="b1", title="Teen weight", arrangement_type=ci.ArrangementType.CALL_OFF,
                 provider_ids=[P2, P4], allocation=D("150000.00")),
    ], rationale="joint bid", decision_maker="Director of Public Health"))
    agreement(h, "2024-09-20", AG4, N2, "b1", ci.ArrangementType.CALL_OFF,
              [(P2, "90000.00"), (P4, "60000.00")], ["w1"])
    h.add("2024-10-01", ci.AgreementActivated(agreement_id=AG4, activated_on=date(2024, 10, 1)))

    spend(h, "2025-01-31", AG4, "s4", P2, "10000.00")
    spend(h, "2025-01-31", AG4, "s5", P4, "5000.00")
    h.add("2025-02-15", ci.AgreementVaried(
        agreement_id=AG1, variation_id="v1", kind=VariationKind.GROWTH,
        budget_change=D("100000.00"), new_budget=D("600000.00"), reason="demand is up"))
    h.add("2025-03-01", ci.AgreementExtended(
        agreement_id=AG2, extension_id="e1", previous_end=date(2026, 3, 31),
        new_end=date(2027, 3, 31), justification="ahead of plan",
        performance_evidence="readmissions down 12%"))
    spend(h, "2025-03-20", AG1, "s6", P1, "150000.00")
    h.add("2025-04-10", ci.BusinessCaseProposed(
        agreement_id=AG4, business_case_id="bc1", need="a second estate",
        expected_outcomes="200 more families", cost=D("30000.00")))
    h.add("2025-04-20", ci.BusinessCaseApproved(agreement_id=AG4, business_case_id="bc1",
                                                reason="need agreed"))
    h.add("2025-04-20", ci.AgreementVaried(
        agreement_id=AG4, variation_id="v2", kind=VariationKind.BUSINESS_CASE,
        budget_change=D("30000.00"), new_budget=D("180000.00"), scope="a second estate",
        reason="need agreed", business_case_id="bc1"))
    h.add("2025-04-22", ci.BusinessCaseProposed(
        agreement_id=AG4, business_case_id="bc2", need="a third estate",
        expected_outcomes="more families", cost=D("5000.00")))
    h.add("2025-04-25", ci.BusinessCaseRejected(agreement_id=AG4, business_case_id="bc2",
                                                reason="covered by the leisure trust"))
    need(h, "2025-05-01", N3, "Stop smoking in pregnancy", "stop-smoking", "50000.00",
         [outcome("s1", "Fewer mothers smoking at delivery")])
    h.add("2025-06-30", ci.AgreementEnded(
        agreement_id=AG3, how=ci.EndingKind.TERMINATED, ended_on=date(2025, 6, 30),
        reason="staffing shortfall", exit_plan_executed=True, exit_notes="clients moved"))
    h.add("2025-07-10", ci.LessonRecorded(
        lesson_id=L2, need_id=N1, agreement_id=AG3, stage=ci.SourcingStage.EXIT, went="badly",
        what="Shared service terminated early", why="Staffing shortfall at the other council",
        tags=["exit", "shared-service"]))
    h.add("2025-11-01", pr.ProviderSuspended(provider_id=P3, reason="lapsed insurance"))
    h.add("2026-01-15", ci.NeedClosed(need_id=N3, reason="withdrawn: the NHS took it on"))
    return h


SNAPSHOT_DAYS = ("2024-03-31", "2024-12-31", "2025-03-31", "2025-12-31", "2026-06-30")


class Views:
    """The live read models: both projections' runners over one log, into one database."""

    def __init__(self, folder: Path, name: str = "views") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = EmbeddedEventLog(folder / f"{name}-log.sqlite")
        self.db = Database.sqlite(folder / f"{name}.sqlite")
        self.runners = [ProjectionRunner(p, self.db, self.log)
                        for p in (NetworkProjection(), CommissioningProjection())]

    def feed(self, events: list[EventEnvelope]) -> None:
        self.log.append(events)
        self.catch_up()

    def catch_up(self) -> None:
        for runner in self.runners:
            runner.catch_up()

    def close(self) -> None:
        self.db.close()
        self.log.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Views]:
    views = Views(tmp_path / "live")
    views.feed(history().in_time_order())
    yield views
    views.close()


def snapshot(db: Database, at: datetime | None = None) -> dict[str, Any]:
    """Every query's answer, as JSON; the market as at `at` (default now)."""
    def dump(value: BaseModel | list[Any] | None) -> Any:
        if isinstance(value, list):
            return [v.model_dump(mode="json") for v in value]
        return value.model_dump(mode="json") if value is not None else None

    needs = list_needs(db)
    agreements = list_agreements(db)
    return {
        "market": dump(market_view(db, at)),
        "state": dump(network_state(db)),
        "needs": dump(needs),
        "agreements": dump(agreements),
        "need": {str(n.need_id): dump(get_need(db, n.need_id)) for n in needs},
        "by_partner": {str(n.need_id): dump(spend_by_partner(db, n.need_id)) for n in needs},
        "agreement": {str(a.agreement_id): dump(get_agreement(db, a.agreement_id))
                      for a in agreements},
        "lessons": dump(search_lessons(db)),
    }


@contextmanager
def views_as_of(folder: Path, day: str) -> Iterator[Database]:
    """The read models as of `day`, from a log holding the whole history."""
    log = EmbeddedEventLog(folder / "as-of-source.sqlite")
    try:
        if not log.read([log.topic_for("integrator")], {}, 1):
            log.append(history().in_time_order())
        with state_as_of(log, None, day) as db:
            yield db
    finally:
        log.close()


# --------------------------------------------------------------------------- hand-worked figures


def shares(db: Database) -> dict[str, tuple[str, str]]:
    return {s.organisation_type: (str(s.committed), str(s.share_pct))
            for s in market_view(db).committed_by_organisation_type}


def category(db: Database, code: str) -> Any:
    return next(c for c in market_view(db).categories if c.category == code)


def test_committed_spend_by_organisation_type(live: Views) -> None:
    # Active: AG1 600,000 (Acorn, SME, after +100,000); AG2 300,000 (Beacon, VCSE); AG4
    # 180,000 after its business case, Beacon 108,000 and Delta (large private) 72,000. AG3
    # (Civic, public body) ended. Total 1,080,000.
    view = market_view(live.db)
    assert view.committed_total == D("1080000.00")
    assert shares(live.db) == {
        "public_body": ("0.00", "0.00"),
        "vcse": ("408000.00", "37.78"),  # 408/1080 = 37.777...
        "sme": ("600000.00", "55.56"),  # 600/1080 = 55.555...
        "large_private": ("72000.00", "6.67"),  # 72/1080 = 6.666...
        "community_group": ("0.00", "0.00"),
        "partnership": ("0.00", "0.00"),
    }
    providers = {s.organisation_type: s.providers for s in view.committed_by_organisation_type}
    assert providers == {"public_body": 0, "vcse": 1, "sme": 1, "large_private": 1,
                         "community_group": 0, "partnership": 0}


def test_hhi_of_a_three_provider_category_by_hand(tmp_path: Path) -> None:
    # Home care on 2024-12-31: Acorn 500,000, Beacon 300,000, Civic 200,000 of 1,000,000:
    # shares 50%, 30%, 20%; HHI = 50^2 + 30^2 + 20^2 = 2,500 + 900 + 400 = 3,800. The index is
    # rated in adult social care, its top-level category (all of whose spend is home care here).
    with views_as_of(tmp_path, "2024-12-31") as db:
        home = category(db, "home-care")
        assert (home.committed, home.providers_with_commitments) == (D("1000000.00"), 3)
        assert home.shares == {str(P1): D("50.00"), str(P2): D("30.00"), str(P3): D("20.00")}
        assert (home.hhi, home.market) == (None, "adult-social-care")
        care = category(db, "adult-social-care")
        assert (care.committed, care.shares) == (home.committed, home.shares)
        assert care.hhi == D("3800.00")
        assert care.concentration == "highly concentrated"
        # Weight management (public health): Beacon 90,000 and Delta 60,000: 60^2 + 40^2 = 5,200.
        assert category(db, "public-health").hhi == D("5200.00")
    # After Acorn's growth to 600,000 (of 1,100,000): 10,000 x (600^2 + 300^2 + 200^2) /
    # 1,100^2 = 4,900,000,000 / 1,210,000 = 4,049.5867...
    with views_as_of(tmp_path, "2025-03-31") as db:
        care = category(db, "adult-social-care")
        assert care.hhi == D("4049.59")
        assert care.shares == {str(P1): D("54.55"), str(P2): D("27.27"), str(P3): D("18.18")}


def test_ended_agreements_are_no_longer_active_or_counted(live: Views) -> None:
    care = category(live.db, "adult-social-care")
    # Civic's shared service ended; only Acorn 600,000 and Beacon 300,000 remain:
    # 10,000 x (600^2 + 300^2) / 900^2 = 5,555.555...
    assert care.hhi == D("5555.56")
    assert care.providers_with_commitments == 2
    ended = get_agreement(live.db, AG3)
    assert ended is not None
    assert (ended.status, ended.ended_how, ended.ended_on) == ("ended", "terminated",
                                                               date(2025, 6, 30))
    assert ended.exit_plan_executed is True
    assert [a.agreement_id for a in list_agreements(live.db, status="active")] == [AG1, AG2, AG4]
    assert [a.agreement_id for a in list_agreements(live.db, status="ended")] == [AG3]


def test_active_providers_per_category_follow_the_network(live: Views) -> None:
    # Eden never approved; Civic suspended on 2025-11-01.
    home = category(live.db, "home-care")
    assert (home.active_providers, home.active_providers_by_organisation_type) == (
        2, {"sme": 1, "vcse": 1})
    assert category(live.db, "weight-management").active_providers == 2
    smoking = category(live.db, "stop-smoking")
    assert (smoking.active_providers, smoking.committed, smoking.hhi, smoking.open_needs) == (
        0, D("0.00"), None, 0)


def test_gaps_are_open_needs_and_outcomes_without_an_active_agreement(tmp_path: Path) -> None:
    with views_as_of(tmp_path, "2024-03-31") as db:  # drafted, nothing in force yet
        gaps = market_view(db).gaps
        assert [(g.need_id, g.stage, g.pooled_budget)
                for g in gaps.needs_without_active_agreement] == [
            (N1, ci.SourcingStage.MOBILISATION, D("1000000.00"))]
        assert [(g.need_id, g.outcome_id) for g in gaps.outcomes_not_covered] == [
            (N1, "o1"), (N1, "o2"), (N1, "o3")]
    with views_as_of(tmp_path, "2025-12-31") as db:
        gaps = market_view(db).gaps
        assert [g.need_id for g in gaps.needs_without_active_agreement] == [N3]
        assert [(g.need_id, g.outcome_id, g.description) for g in gaps.outcomes_not_covered] == [
            (N1, "o3", "Carers feel supported"), (N3, "s1", "Fewer mothers smoking at delivery")]
        # o1 is still covered by Acorn's AG1 although Civic's AG3 (o1) ended.
    with views_as_of(tmp_path, "2026-06-30") as db:  # the stop-smoking need was withdrawn
        gaps = market_view(db).gaps
        assert gaps.needs_without_active_agreement == []
        assert [(g.need_id, g.outcome_id) for g in gaps.outcomes_not_covered] == [(N1, "o3")]


def test_spend_is_split_by_partner_pro_rata_to_contributions(live: Views) -> None:
    split = spend_by_partner(live.db, N1)
    assert split is not None
    # Pooled 600,000 + 300,000 + 100,000 = 1,000,000 (60/30/10). Spent 100,000 + 50,000.01 +
    # 20,000 + 150,000 = 320,000.01: 192,000.006 / 96,000.003 / 32,000.001, rounded down and
    # the penny left over to the largest remainder (the lead's .006).
    assert (split.pooled_budget, split.spent, split.committed) == (
        D("1000000.00"), D("320000.01"), D("900000.00"))
    assert [(p.partner, p.is_lead, p.contribution, p.share_pct, p.committed, p.spent)
            for p in split.partners] == [
        (LEAD, True, D("600000.00"), D("60.00"), D("540000.00"), D("192000.01")),
        (ICB, False, D("300000.00"), D("30.00"), D("270000.00"), D("96000.00")),
        (POLICE, False, D("100000.00"), D("10.00"), D("90000.00"), D("32000.00")),
    ]
    single = spend_by_partner(live.db, N2)
    assert single is not None
    assert [(p.partner, p.spent) for p in single.partners] == [(LEAD, D("15000.00"))]
    assert spend_by_partner(live.db, uuid4()) is None


def test_split_pro_rata_always_adds_up() -> None:
    assert split_pro_rata(D("0.03"), [D(1)] * 4) == [D("0.01"), D("0.01"), D("0.01"), D("0.00")]
    assert split_pro_rata(D("100.00"), [D(1), D(1), D(1)]) == [D("33.34"), D("33.33"),
                                                               D("33.33")]
    assert split_pro_rata(D("10.00"), [D(0), D(0)]) == [D("0.00"), D("0.00")]
    rng = random.Random(4)
    for _ in range(200):
        weights = [D(rng.randint(1, 10**8)) / 100 for _ in range(rng.randint(1, 6))]
        total = D(rng.randint(0, 10**9)) / 100
        parts = split_pro_rata(total, weights)
        assert sum(parts) == total
        assert all(p >= 0 for p in parts)


def test_variations_change_budgets_and_scale_the_parties(live: Views) -> None:
    grown = get_agreement(live.db, AG1)
    assert grown is not None
    assert (grown.budget, grown.original_budget, grown.spent) == (
        D("600000.00"), D("500000.00"), D("250000.00"))
    assert [(v.variation_id, v.kind, v.budget_change, v.new_budget) for v in grown.variations] == [
        ("v1", "growth", D("100000.00"), D("600000.00"))]
    assert [(p.provider_id, p.allocation, p.original_allocation) for p in grown.parties] == [
        (P1, D("600000.00"), D("500000.00"))]
    # A business case of 30,000 on 150,000 shared 90,000/60,000: 180,000 shared 108,000/72,000.
    joint = get_agreement(live.db, AG4)
    assert joint is not None
    assert joint.budget == D("180000.00")
    assert [(p.provider_id, p.allocation, p.spent) for p in joint.parties] == [
        (P2, D("108000.00"), D("10000.00")), (P4, D("72000.00"), D("5000.00"))]
    assert [(c.business_case_id, c.status, c.cost, c.decision_reason)
            for c in joint.business_cases] == [
        ("bc1", "approved", D("30000.00"), "need agreed"),
        ("bc2", "rejected", D("5000.00"), "covered by the leisure trust")]
    assert [(v.kind, v.business_case_id) for v in joint.variations] == [("business_case", "bc1")]


@pytest.mark.parametrize(("allocations", "change"), [
    (["100.00", "100.00", "100.00"], "100.00"),
    (["600.00", "300.00"], "100.00"),
    (["0.01", "0.01", "999.98"], "-500.00"),
    (["333.33", "333.33", "333.34"], "0.01"),
    (["1234.56", "7890.12", "0.05"], "-9000.00"),
])
def test_parties_are_scaled_as_the_agreement_aggregate_scales_them(
    allocations: list[str], change: str,
) -> None:
    parties = [{"provider_id": uuid4(), "allocation": D(a)} for a in allocations]
    budget = sum((D(a) for a in allocations), D(0))
    aggregate = Agreement(  # type: ignore[call-arg]
        id=uuid4(), need_id=uuid4(), decision_id="d", award_id="a", title="t",
        arrangement_type="grant", parties=parties, starts_on="2024-04-01",
        ends_on="2026-03-31", budget=budget, outcomes=[], reward_terms=None, risk_share=None,
        break_clauses=[], exit_plan="exit")
    aggregate.sign("2024-03-01", ["Sam for the council"], "2024-03-01", None)
    aggregate.activate("2024-04-01")
    aggregate.vary("v", VariationKind.BUDGET_CHANGE, D(change), None, "change")
    scaled = scale_allocations([D(a) for a in allocations], budget, budget + D(change))
    assert scaled == [p["allocation"] for p in aggregate.parties]
    assert sum(scaled) == budget + D(change)


def test_extensions_move_the_end_and_keep_their_history(live: Views) -> None:
    extended = get_agreement(live.db, AG2)
    assert extended is not None
    assert (extended.ends_on, extended.original_ends_on) == (date(2027, 3, 31), date(2026, 3, 31))
    assert [(e.extension_id, e.previous_end, e.new_end, e.performance_evidence)
            for e in extended.extensions] == [
        ("e1", date(2026, 3, 31), date(2027, 3, 31), "readmissions down 12%")]


def test_agreements_filter_by_status_provider_need_and_arrangement(live: Views) -> None:
    def ids(**filters: Any) -> list[UUID]:
        return [a.agreement_id for a in list_agreements(live.db, **filters)]

    assert ids() == [AG1, AG2, AG3, AG4]
    assert ids(provider_id=P2) == [AG2, AG4]
    assert ids(need_id=N2) == [AG4]
    assert ids(arrangement_type=ci.ArrangementType.GRANT) == [AG2]
    assert ids(provider_id=P2, status="active", need_id=N1) == [AG2]
    assert ids(provider_id=P5) == []


def test_a_need_with_its_contributions_decisions_and_agreements(live: Views) -> None:
    found = get_need(live.db, N1)
    assert found is not None
    assert (found.stage, found.status, found.budget_envelope, found.pooled_budget,
            found.awarded, found.committed, found.spent, found.active_agreements) == (
        ci.SourcingStage.MANAGEMENT, "open", D("600000.00"), D("1000000.00"),
        D("1000000.00"), D("900000.00"), D("320000.01"), 2)
    assert [(c.contribution_id, c.partner, c.amount, c.is_lead) for c in found.contributions] == [
        ("envelope", LEAD, D("600000.00"), True), ("c1", ICB, D("300000.00"), False),
        ("c2", POLICE, D("100000.00"), False)]
    assert [[a.award_id for a in d.awards] for d in found.decisions] == [["a1", "a2", "a3"]]
    assert [a.agreement_id for a in found.agreements] == [AG1, AG2, AG3]
    assert found.recommended == "mixed"
    assert [e.provider_ids for e in found.engagements] == [[P1, P2, P3, P5]]
    closed = get_need(live.db, N3)
    assert closed is not None
    assert (closed.status, closed.closed_reason) == ("closed", "withdrawn: the NHS took it on")
    assert [n.need_id for n in list_needs(live.db, status="open")] == [N1, N2]
    assert [n.need_id for n in list_needs(live.db, service_area="stop-smoking")] == [N3]
    assert get_need(live.db, uuid4()) is None


def test_network_state_providers_agreements_outcomes_budgets_and_spend(live: Views) -> None:
    state = network_state(live.db)
    # Approved providers and parties to active agreements: Civic (suspended, its agreement
    # ended) and Eden (never approved) are not in it.
    assert [(p.name, p.organisation_type, p.committed, p.spent_under_active, p.spent_to_date)
            for p in state.providers] == [
        ("Acorn Care", "sme", D("600000.00"), D("250000.00"), D("250000.00")),
        ("Beacon Trust", "vcse", D("408000.00"), D("60000.01"), D("60000.01")),
        ("Delta Health plc", "large_private", D("72000.00"), D("5000.00"), D("5000.00")),
    ]
    acorn = state.providers[0]
    assert [(a.agreement_id, a.allocation, a.agreement_budget, a.service_area)
            for a in acorn.active_agreements] == [
        (AG1, D("600000.00"), D("600000.00"), "home-care")]
    assert [(o.outcome_id, o.description) for o in acorn.active_agreements[0].outcomes] == [
        ("o1", "Fewer hospital readmissions"),
        ("o2", "More people living independently at home")]
    assert state.totals.model_dump() == {
        "open_needs": 2, "pooled_budget": D("1200000.00"), "active_agreements": 3,
        "committed": D("1080000.00"), "spent_to_date": D("335000.01"),
        "providers_with_active_agreements": 3,
    }


def test_lessons_search_what_why_and_tags(live: Views) -> None:
    def found(*args: Any, **filters: Any) -> list[UUID]:
        return [lesson.lesson_id for lesson in search_lessons(live.db, *args, **filters)]

    assert found() == [L2, L1]  # newest first
    assert found("budget") == [L1]
    assert found("STAFFING") == [L2]
    assert found("ICB pooling") == [L1]  # every word, anywhere
    assert found("icb exit") == []
    assert found("shared-service") == [L2]  # tags are searched too
    assert found(went="badly") == [L2]
    assert found(tag="Exit") == [L2]
    assert found(tag="exi") == []  # a tag matches exactly
    assert found("100%") == []  # LIKE wildcards are literal
    assert found(agreement_id=AG3) == [L2]
    assert found(need_id=N1, went="well") == [L1]


def test_the_projection_agrees_with_the_integrators_own_records(tmp_path: Path) -> None:
    """What the Integrator application publishes, projected, says what its aggregates say."""
    from council.kernel.clock import business_time
    from council.platform.eventstore import open_application
    from council.platform.identity import Principal
    from council.services.integrator.application import Integrator
    from council.services.integrator.domain.commands import (
        Activation,
        EnvelopeRaise,
        NewAgreement,
        NewBusinessCase,
        NewContribution,
        NewDecision,
        NewNeed,
        NewSpend,
        NewVariation,
        OptionsAppraisal,
        Signature,
    )

    admin = Principal("t1", Role.INTEGRATOR_ADMIN, "sam")
    jo = Principal("t2", Role.COMMISSIONER, "jo")
    decided_on, paid_on = (datetime(2026, m, 20, 10, tzinfo=UTC) for m in (6, 8))
    app = open_application(Integrator, Settings(var_dir=tmp_path))
    app.provider_status = {p: pr.ProviderStatus.APPROVED for p in (P1, P2, P3)}.get
    need_id = app.define_need(NewNeed.model_validate({
        "title": "Home care", "service_area": "home-care",
        "population": {"description": "older people"},
        "outcomes": [{"description": "Fewer readmissions"}, {"description": "Independence"}],
        "budget_envelope": "600.00", "starts_on": "2026-04-01", "ends_on": "2029-03-31",
        "lead_organisation": LEAD}))
    app.pledge_contribution(need_id, NewContribution(partner=ICB, amount=D("300.00")))
    app.pledge_contribution(need_id, NewContribution(partner=POLICE, amount=D("100.00")))
    app.appraise_options(need_id, OptionsAppraisal.model_validate({
        "options": [{"option": "mixed", "description": "a mix"}], "recommended": "mixed",
        "rationale": "reach"}))
    with business_time(decided_on):
        _, (award,) = app.decide(need_id, NewDecision.model_validate({
            "awards": [{"title": "All", "arrangement_type": "grant",
                        "provider_ids": [str(P1), str(P2), str(P3)], "allocation": "900.00"}],
            "rationale": "best", "decision_maker": "Cabinet"}), admin)
        agreement_id = app.draft_agreement(NewAgreement.model_validate({
            "need_id": str(need_id), "award_id": award, "starts_on": "2026-07-01",
            "ends_on": "2029-03-31", "exit_plan": "hand back",
            "outcomes": [{"outcome_id": app.need(need_id).outcomes[0]["outcome_id"]}]}))
        app.sign_agreement(agreement_id, Signature(signed_on=date(2026, 6, 20),
                                                   signatories=["Sam for the council"]))
        app.activate(agreement_id, Activation(activated_on=date(2026, 7, 1)))
    with business_time(paid_on):
        app.vary(agreement_id, NewVariation(kind=VariationKind.BUDGET_CHANGE,
                                            budget_change=D("-0.01"), reason="rounding"), admin)
    with business_time(paid_on + timedelta(hours=1)):
        case = app.propose_business_case(agreement_id, NewBusinessCase(
            need="more", expected_outcomes="more", cost=D("33.34")), jo)
        app.approve_business_case(agreement_id, case, "agreed", admin)
        app.record_spend(agreement_id, NewSpend(provider_id=P2, amount=D("123.45"),
                                                period="2026-08"), admin)
        app.raise_envelope(need_id, EnvelopeRaise(amount=D("50.00"), reason="top-up"), admin)
    envelopes = [app.to_envelope(n)
                 for n in app.recorder.select_notifications(start=1, limit=1000)]
    views = Views(tmp_path / "views")
    views.feed(envelopes)

    need_record, agreement_record = app.need(need_id), app.agreement(agreement_id)
    projected = get_agreement(views.db, agreement_id)
    assert projected is not None
    assert (projected.status, projected.budget, projected.spent) == (
        agreement_record.status.value, agreement_record.budget, agreement_record.spent)
    assert (projected.signed_on, projected.signatories) == (date(2026, 6, 20),
                                                            ["Sam for the council"])
    assert [(p.provider_id, p.allocation) for p in projected.parties] == [
        (UUID(str(p["provider_id"])), p["allocation"]) for p in agreement_record.parties]
    assert [v.new_budget for v in projected.variations] == [
        v["new_budget"] for v in agreement_record.variations]
    need_view = get_need(views.db, need_id)
    assert need_view is not None
    # 900.00 awarded, then -0.01 and +33.34: 933.33 committed, by the need as by its agreement;
    # the envelope 600.00 + 50.00 raised, and 300.00 + 100.00 pooled: 1,050.00
    assert (need_view.pooled_budget, need_view.awarded, need_view.committed) == (
        need_record.pooled_budget, D("900.00"), need_record.committed)
    assert (need_view.budget_envelope, need_view.pooled_budget) == (D("650.00"), D("1050.00"))
    assert need_record.committed == D("933.33")
    assert {c.partner: c.amount for c in need_view.contributions} == (
        need_record.contributions_by_partner())
    gaps = market_view(views.db).gaps
    assert [g.description for g in gaps.outcomes_not_covered] == ["Independence"]
    app.close()
    views.close()


# --------------------------------------------------------------------------- rebuild and as of


def test_a_rebuild_from_an_empty_read_model_equals_the_live_one(live: Views) -> None:
    before = snapshot(live.db)
    for runner in live.runners:
        runner.rebuild()
    assert snapshot(live.db) == before


def test_as_of_equals_the_live_projection_on_each_date(tmp_path: Path) -> None:
    events = history().in_time_order()
    live = Views(tmp_path / "live")
    seen: dict[str, dict[str, Any]] = {}
    fed = 0
    for day in SNAPSHOT_DAYS:
        upto = as_of_moment(day)
        due = [e for e in events[fed:] if e.occurred_at <= upto]
        live.feed(due)
        fed += len(due)
        seen[day] = snapshot(live.db, upto)  # the market as the live view gave it that day
    live.feed(events[fed:])
    for day in SNAPSHOT_DAYS:
        with state_as_of(live.log, None, day) as db:
            assert snapshot(db, as_of_moment(day)) == seen[day], day
    assert len({str(s) for s in seen.values()}) == len(SNAPSHOT_DAYS)  # each date differs
    # A date-time as of part of a day; before anything happened, nothing is there.
    with state_as_of(live.log, None, "2024-04-01T09:59:59Z") as db:
        assert market_view(db).committed_total == 0
    with state_as_of(live.log, None, "2024-04-01T10:00:00+00:00") as db:
        assert market_view(db).committed_total == D("1000000.00")
    with state_as_of(live.log, None, date(2023, 12, 31)) as db:
        assert snapshot(db)["needs"] == []
        assert network_state(db).providers == []
    live.close()


def test_as_of_filters_a_log_out_of_business_time_order(tmp_path: Path) -> None:
    """Historic records loaded late, streams interleaved anyhow, and events republished: as of
    each date the view is the one built from just the events that had occurred by then."""
    events = history().in_time_order()
    by_stream: dict[str, list[EventEnvelope]] = defaultdict(list)
    for event in events:
        by_stream[f"{event.source}/{event.stream_id}"].append(event)
    streams = list(by_stream.values())
    random.Random(7).shuffle(streams)
    shuffled = [e for stream in streams for e in stream]  # each stream in order, streams not
    log = EmbeddedEventLog(tmp_path / "shuffled.sqlite")
    log.append(shuffled)
    log.append(shuffled[5:40])  # an at-least-once relay published these twice
    for day in SNAPSHOT_DAYS:
        upto = as_of_moment(day)
        expected = Views(tmp_path / day)
        expected.feed([e for e in events if e.occurred_at <= upto])
        with state_as_of(log, None, day) as db:
            assert snapshot(db, upto) == snapshot(expected.db, upto), day
        expected.close()


def test_as_of_counts_what_it_applied_and_reads_only_given_topics(tmp_path: Path) -> None:
    events = history().in_time_order()
    log = EmbeddedEventLog(tmp_path / "log.sqlite")
    log.append(events)
    log.append(events)  # every event twice
    db = Database.sqlite(tmp_path / "asof.sqlite")
    assert build_as_of(db, log, None, "2030-01-01") == len(events)
    only = Database.sqlite(tmp_path / "only.sqlite")
    applied = build_as_of(only, log, [log.topic_for("integrator")], "2030-01-01")
    assert applied == sum(e.source == "integrator" for e in events)
    assert network_state(only).providers[0].name is None  # no registry events: unknown
    db.close()
    only.close()


@pytest.mark.parametrize(("given", "moment"), [
    ("2025-03-31", datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2025-03-31T12:00:00", datetime(2025, 3, 31, 12, tzinfo=UTC)),
    ("2025-03-31T12:00:00+01:00", datetime(2025, 3, 31, 11, tzinfo=UTC)),
    ("2025-03-31T12:00:00Z", datetime(2025, 3, 31, 12, tzinfo=UTC)),
    (date(2025, 3, 31), datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
])
def test_as_of_moments(given: Any, moment: datetime) -> None:
    assert as_of_moment(given) == moment


@pytest.mark.parametrize("given", ["yesterday", "2025-13-01", "31/03/2025", ""])
def test_as_of_refuses_what_is_not_a_date(given: str) -> None:
    with pytest.raises(ValueError, match="is not an ISO date"):
        as_of_moment(given)


def test_hhi_edges() -> None:
    assert hhi_of([]) is None
    assert hhi_of([0, 0]) is None
    assert hhi_of([5]) == D("10000.00")
    assert hhi_of([1, 1, 1, 1]) == D("2500.00")
    assert hhi_of([1, 1, 1]) == D("3333.33")


# --------------------------------------------------------------------------- the API


def test_the_api_answers_live_and_as_of_for_council_readers_only(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    reader = {"Authorization": f"Bearer {tokens.create(Role.COUNCIL_STAFF, 'finance').token}"}
    regulator = {"Authorization": f"Bearer {tokens.create(Role.REGULATOR, 'ofsted').token}"}
    outsider = {"Authorization":
                f"Bearer {tokens.create(Role.PROVIDER, 'acorn', P1).token}"}
    shared_log = open_event_log(settings)
    shared_log.append(history().in_time_order())
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        def get(path: str, **params: str) -> Any:
            response = client.get(path, params=params, headers=reader)
            assert response.status_code == 200, response.text
            return response.json()

        deadline = time.monotonic() + 10
        while get("/market")["committed_total"] != "1080000.00":
            assert time.monotonic() < deadline, "the projections did not catch up"
            time.sleep(0.02)

        assert client.get("/market", headers=outsider).status_code == 403
        # Regulators read through the audit API, where each read is scoped and recorded.
        assert client.get("/market", headers=regulator).status_code == 403
        assert client.get("/market").status_code == 401
        assert get("/market", as_of="2024-12-31")["committed_total"] == "1150000.00"
        bad = client.get("/market", params={"as_of": "soon"}, headers=reader)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"].split(".") == ["query", "as_of"]
        # 2025-03-31: AG1 600,000 + AG2 300,000 + AG3 200,000 + AG4 150,000.
        assert get("/network/state", as_of="2025-03-31")["totals"]["committed"] == "1250000.00"
        assert [n["need_id"] for n in get("/needs")] == [str(N1), str(N2), str(N3)]
        assert [n["need_id"] for n in get("/needs", as_of="2024-12-31")] == [str(N1), str(N2)]
        assert get(f"/needs/{N1}")["pooled_budget"] == "1000000.00"
        missing = client.get(f"/needs/{uuid4()}", headers=reader)
        assert missing.status_code == 404
        split = get(f"/needs/{N1}/spend-by-partner")
        assert [p["spent"] for p in split["partners"]] == ["192000.01", "96000.00", "32000.00"]
        assert [a["agreement_id"] for a in get(
            "/agreements", provider_id=str(P2), status="active")] == [str(AG2), str(AG4)]
        assert client.get("/agreements", params={"status": "paused"},
                          headers=reader).status_code == 422
        detail = get(f"/agreements/{AG4}", as_of="2025-04-21")
        assert [c["status"] for c in detail["business_cases"]] == ["approved"]
        assert client.get(f"/agreements/{AG4}", params={"as_of": "2024-01-01"},
                          headers=reader).status_code == 404
        assert [x["lesson_id"] for x in get("/lessons", q="staffing", went="badly")] == [
            str(L2)]
        assert [x["lesson_id"] for x in get("/lessons", as_of="2025-01-01")] == [str(L1)]
        assert [x["lesson_id"] for x in get("/lessons", tag="exit")] == [str(L2)]
    shared_log.close()
    tokens.db.close()
