"""The demo data set (`council demo`, loaded by `make run`): what it holds, that every provider,
need and agreement in it obeys the services' rules when re-read from the stores, that loading it
twice adds nothing, that every event reaches the shared log, and that its history is back-dated
from April 2023 to a month before it was written. Loaded once on the embedded default and once on
PostgreSQL + Kafka."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.utils import resolve_topic
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from council.kernel.contracts.integrator import DecisionKind, EndingKind, VariationKind
from council.kernel.contracts.provider_registry import OrganisationType, ProviderStatus
from council.kernel.envelope import EventEnvelope, canonical_json
from council.kernel.periods import period_bounds
from council.kernel.taxonomy import taxonomy
from council.platform.audit.keys import load_signing_key
from council.platform.audit.stores import service_stores
from council.platform.audit.trail import verify_log
from council.platform.audit.verify import Report
from council.platform.eventlog import open_event_log
from council.platform.eventstore import CouncilApplication, open_application, store_database
from council.platform.identity import TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.relay import OutboxRelay
from council.platform.settings import SERVICE_NAMES, Settings
from council.platform.sql import Database, open_database
from council.services.integrator.adapters.evidence_bundle import export_bundle, verify_bundle
from council.services.integrator.application import Integrator
from council.services.integrator.domain.agreements import Agreement, AgreementStatus, check_terms
from council.services.integrator.domain.delegation import check_authority
from council.services.integrator.domain.needs import Need
from council.services.integrator.projections import NetworkProjection, list_providers
from council.services.integrator.projections.ocds import OcdsProjection, ocds_events
from council.services.integrator.projections.ocds_releases import (
    Publisher,
    ocid_for,
    record_package,
    release_package,
    releases_for,
)
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.payments import cover
from council.services.provider_registry.application import ProviderRegistry
from council.services.provider_registry.domain.commands import AddressIn, NewProvider
from council.services.provider_registry.domain.providers import Provider, check_profile
from council.tools.cli import build_parser
from council.tools.cli import main as council
from council.tools.console import service_applications
from council.tools.demo import DemoError, DemoSummary, load_demo, summarise
from council.tools.demo import data as demo_data
from council.tools.demo.loader import DemoLoader, demo_provider_ids
from tests.ocds_coherence import check_record_package, check_release_package, counts
from tests.unit.test_ocds import SCHEMA_BASE, SCHEMAS, _format_checker, problems

S = ProviderStatus
EXPECTED_TYPES = {"vcse": 59, "sme": 46, "community_group": 25, "public_body": 10,
                  "large_private": 8, "partnership": 4}
EXPECTED_STATUSES = {"approved": 134, "applied": 3, "under_review": 3, "incubating": 3,
                     "suspended": 3, "exited": 3, "rejected": 3}
EXPECTED_ARRANGEMENTS = {"call_off": 21, "grant": 21, "formal_contract": 15,
                         "informal_sla": 6, "shared_service": 3}


class Stores:
    """The three applications opened on a deployment, for re-reading what the demo stored."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = open_application(ProviderRegistry, settings)
        self.integrator = open_application(Integrator, settings)
        self.outcomes = open_application(Outcomes, settings)
        self.apps: tuple[CouncilApplication, ...] = (
            self.registry, self.integrator, self.outcomes)

    def notification_counts(self) -> dict[str, int]:
        return {app.service: app.recorder.max_notification_id() or 0 for app in self.apps}

    def envelopes(self, app: CouncilApplication) -> Iterator[EventEnvelope]:
        start = 0
        while batch := app.recorder.select_notifications(start=start, limit=1000,
                                                         inclusive_of_start=False):
            for stored in batch:
                if app.is_published(stored):
                    yield app.to_envelope(stored)
            start = batch[-1].id

    def ids_of(self, app: CouncilApplication, event_class: type) -> list[UUID]:
        start, found = 0, []
        while batch := app.recorder.select_notifications(start=start, limit=1000,
                                                         inclusive_of_start=False):
            found += [s.originator_id for s in batch if resolve_topic(s.topic) is event_class]
            start = batch[-1].id
        return found  # type: ignore[return-value]

    def status_at(self, provider_id: UUID, moment: datetime) -> ProviderStatus | None:
        """The provider's status as the registry recorded it at `moment` (business time)."""
        version = None
        for stored in self.registry.recorder.select_events(provider_id):
            if self.registry.mapper.to_domain_event(stored).timestamp > moment:
                break
            version = stored.originator_version
        if version is None:
            return None
        provider: Provider = self.registry.repository.get(provider_id, version=version)
        return provider.status

    def close(self) -> None:
        for app in self.apps:
            app.close()


def _log_envelopes(settings: Settings) -> list[EventEnvelope]:
    """Everything on the shared log's three topics."""
    reader = open_event_log(settings)
    try:
        topics = [reader.topic_for(s) for s in SERVICE_NAMES]
        position: dict[str, int] = {}
        found: list[EventEnvelope] = []
        empty = 0
        while empty < 3:  # Kafka may answer empty while a fetch is in flight
            batch = reader.read(topics, position, 2000)
            empty = 0 if batch else empty + 1
            for record in batch:
                position[record.partition_key] = record.offset + 1
                found.append(record.envelope)
        return found
    finally:
        reader.close()


def _load_with_cli(var_dir: Path, extra: list[str]) -> tuple[str, str]:
    """`council demo` twice, as a user would run it; returns both outputs."""
    outputs = []
    with pytest.MonkeyPatch.context() as mp:
        for name in ("COUNCIL_VAR_DIR", "COUNCIL_DATABASE_URL", "COUNCIL_LOG_URL"):
            mp.delenv(name, raising=False)
        for _ in range(2):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert council(["demo", "--var-dir", str(var_dir), *extra]) == 0
            outputs.append(out.getvalue())
    return outputs[0], outputs[1]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    var_dir = tmp_path_factory.mktemp("demo")
    first, second = _load_with_cli(var_dir, [])
    return Settings(var_dir=var_dir, log_url="embedded"), first, second


@pytest.fixture(scope="module")
def stores(embedded: tuple[Settings, str, str]) -> Iterator[Stores]:
    opened = Stores(embedded[0])
    yield opened
    opened.close()


# ------------------------------------------------------------------------------ outcomes


def _published(stores: Stores, app: CouncilApplication) -> dict[str, list[EventEnvelope]]:
    found: dict[str, list[EventEnvelope]] = {}
    for envelope in stores.envelopes(app):
        found.setdefault(envelope.type, []).append(envelope)
    return found


def test_every_measure_is_measured_each_quarter_with_some_revisions(stores: Stores) -> None:
    events = _published(stores, stores.outcomes)
    defined = {e.stream_id: e.data for e in events["OutcomeMeasureDefined"]}
    assert len(defined) == len(demo_data.MEASURES) == 16
    assert all(d["baseline"] is not None and d["trajectory"] and d["data_source"]
               for d in defined.values())
    periods: dict[str, set[str]] = {}
    for e in events["MeasurementRecorded"]:
        periods.setdefault(e.stream_id, set()).add(e.data["period"])
        # Published after the quarter it measures.
        assert e.occurred_at.date() > period_bounds(e.data["period"])[1]
    assert set(periods) == set(defined)
    assert all(len(p) == 13 for p in periods.values())  # 2023-Q2 to 2026-Q2
    revisions = [e for e in events["MeasurementRecorded"] if e.data.get("revises")]
    assert len(revisions) == 5


def test_results_terms_only_for_agreements_that_commission_on_outcomes(stores: Stores) -> None:
    events = _published(stores, stores.outcomes)
    rewarded = {a.key for n in demo_data.NEEDS for d in n.decisions for a in d.awards
                if a.reward and a.activate}
    with_cards = {e.data["agreement_id"] for e in events["RateCardAgreed"]}
    agreements = {str(i): stores.integrator.agreement(i)
                  for i in stores.ids_of(stores.integrator, Agreement.Drafted)}
    assert len(with_cards) == len(rewarded) == 10
    assert all(agreements[a].reward_terms for a in with_cards)
    attributed = {(e.data["agreement_id"], e.data["measure_id"])
                  for e in events["OutcomeAttributed"]}
    for card in events["RateCardAgreed"]:
        for rate in card.data["outcome_rates"]:
            assert (card.data["agreement_id"], rate["measure_id"]) in attributed


def test_deliveries_come_from_parties_to_active_agreements(stores: Stores) -> None:
    events = _published(stores, stores.outcomes)
    reports = events["DeliveryReported"]
    assert len(reports) > 2000
    commissioning = _published(stores, stores.integrator)
    never = datetime.max.replace(tzinfo=UTC)
    active = {e.stream_id: (e.occurred_at, never) for e in commissioning["AgreementActivated"]}
    for ended in commissioning["AgreementEnded"]:
        active[ended.stream_id] = (active[ended.stream_id][0], ended.occurred_at)
    agreements: dict[str, Agreement] = {}
    for report in reports:
        data = report.data
        agreement_id = UUID(data["agreement_id"])
        agreement = agreements.setdefault(data["agreement_id"],
                                          stores.integrator.agreement(agreement_id))
        assert UUID(data["provider_id"]) in {UUID(str(p["provider_id"]))
                                             for p in agreement.parties}
        assert report.organisation == data["provider_id"]
        assert str(report.actor).startswith("provider:")
        # Reported while the agreement was active.
        assert active[data["agreement_id"]][0] < report.occurred_at, data["idempotency_key"]
        assert report.occurred_at < active[data["agreement_id"]][1], data["idempotency_key"]
        assert date.fromisoformat(data["period_end"]) < report.occurred_at.date()
    by_id = {r.data["delivery_id"]: r for r in reports}
    corrections = [r for r in reports if r.data["corrects"]]
    assert corrections
    for correction in corrections:
        corrected = by_id[correction.data["corrects"]]
        assert corrected.occurred_at < correction.occurred_at
        assert corrected.data["agreement_id"] == correction.data["agreement_id"]
    assert {r.data["channel"] for r in reports} == {"http", "kafka"}


def test_payments_are_settled_and_late_measurements_recalculate_them(stores: Stores) -> None:
    events = _published(stores, stores.outcomes)
    calculated = events["PaymentCalculated"]
    recalculated = events["PaymentRecalculated"]
    assert len(calculated) > 100
    late = [e for e in recalculated if e.data["reason"].startswith("late measurement")]
    assert late
    for again in recalculated:
        first = next(c for c in calculated if c.data["agreement_id"] == again.data[
            "agreement_id"] and c.data["period"] == again.data["period"])
        assert first.occurred_at < again.occurred_at
        assert Decimal(again.data["difference"]) == (
            Decimal(again.data["total"]) - Decimal(again.data["previous_total"]))
    # Each period is settled after it ends.
    for payment in calculated:
        assert payment.occurred_at.date() > period_bounds(payment.data["period"])[1]


def test_results_are_paid_only_within_each_agreements_term(stores: Stores) -> None:
    """The ten agreements paid by results start and end at various dates: no period outside an
    agreement's term is paid, a period its term covers in part is pro-rated and says so, and
    each card settles in the agreement's payment frequency."""
    events = _published(stores, stores.outcomes)
    cards = {c.data["agreement_id"]: c.data["periodicity"] for c in events["RateCardAgreed"]}
    parts = 0
    for payment in events["PaymentCalculated"] + events["PaymentRecalculated"]:
        agreement = stores.integrator.agreement(UUID(payment.data["agreement_id"]))
        ends = agreement.ending["ended_on"] if agreement.ending else agreement.ends_on
        covered = cover(payment.data["period"], date.fromisoformat(agreement.starts_on),
                        min(date.fromisoformat(agreement.ends_on), date.fromisoformat(ends)))
        assert covered.days > 0, (agreement.title, payment.data["period"])
        first = payment.data["lines"][0]
        assert (first["description"] == "Part period") is not covered.whole, first
        parts += not covered.whole
        assert agreement.reward_terms is not None
        assert agreement.reward_terms["payment_frequency"] == cards[
            payment.data["agreement_id"]] == "quarterly"
        assert "quarterly" in agreement.reward_terms["notes"]
    assert parts  # some agreements start or end within a quarter


# ------------------------------------------------------------------------------ loading


def test_council_demo_loads_once_and_says_what_it_loaded(
    embedded: tuple[Settings, str, str]
) -> None:
    _, first, second = embedded
    assert "Loaded in" in first
    assert "providers        152" in first
    assert "agreements       66" in first
    assert "demo data already loaded" in second
    assert "Loaded in" not in second


def test_up_loads_the_demo_only_when_asked() -> None:
    parser = build_parser()
    assert parser.parse_args(["up"]).demo is False
    assert parser.parse_args(["up", "--demo"]).demo is True
    assert parser.parse_args(["up", "--no-demo"]).demo is False
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert re.search(r"^run:.*\n\t\$\(BIN\)/council up --demo$", makefile, re.M)


def test_the_counts(stores: Stores) -> None:
    summary = summarise(stores.registry, stores.integrator, stores.outcomes)
    assert summary.providers_by_type == EXPECTED_TYPES
    assert summary.providers_by_status == EXPECTED_STATUSES
    assert (summary.incubated, summary.graduated) == (6, 3)
    assert summary.measures == len(demo_data.MEASURES) >= 10
    assert (summary.needs, summary.needs_decided, summary.needs_closed) == (22, 20, 2)
    assert summary.agreements_by_arrangement == EXPECTED_ARRANGEMENTS
    assert summary.agreements_by_status == {"active": 41, "ended": 24, "drafted": 1}
    assert summary.endings == {"completed": 20, "terminated": 2, "exited": 2}
    assert summary.variations == {"growth": 20, "budget_change": 13, "business_case": 10,
                                  "scope_change": 8}
    assert summary.extensions == 11
    assert summary.business_cases == {"approved": 10, "rejected": 3, "proposed": 2}
    # The ICB's two further contributions and the schools forum's; the council's top-ups,
    # each with its reason (data.NEEDS' top_ups); no extension without performance data.
    assert (summary.contributions, summary.envelope_raises) == (7, 9)
    assert summary.extension_overrides == 0
    assert summary.spend_records > 1000
    assert summary.lessons == len(demo_data.LESSONS)
    assert (summary.measurements, summary.measurement_revisions) == (213, 5)
    assert (summary.rate_cards, summary.attributions) == (10, 16)
    assert (summary.deliveries, summary.delivery_corrections) == (2703, 56)
    # Only periods within each agreement's term are paid: 130 were before the term bounded
    # payments, 29 of them quarters before an agreement began.
    assert (summary.payments_calculated, summary.payments_recalculated) == (101, 98)
    # Each calculation (none was of nothing) became due on its agreement, and finance paid
    # them all, none over a budget: the results paid are the results calculated.
    assert summary.results_due == summary.results_paid == 199
    assert summary.results_spent == summary.payments_total


def test_the_collaborative_commission_pools_four_budgets(stores: Stores) -> None:
    needs = [stores.integrator.need(i) for i in stores.ids_of(stores.integrator, Need.Defined)]
    pooled = [n for n in needs
              if len({c["partner"] for c in n.contributions.values()}) >= 3]
    assert len(pooled) == 1
    need = pooled[0]
    shares = need.contributions_by_partner()
    assert set(shares) == {"Northshire County Council", "Southmere District Council",
                           "Northshire Police",
                           "NHS Northshire and Westvale Integrated Care Board"}
    assert need.committed <= need.pooled_budget
    assert need.pooled_budget > need.budget_envelope


# ------------------------------------------------------------------------------ the rules


def test_every_provider_obeys_the_registry_rules(stores: Stores) -> None:
    registry = stores.registry
    ids = demo_provider_ids()
    identifiers: Counter[tuple[str, str]] = Counter()
    for key, provider_id in ids.items():
        provider = registry.provider(provider_id)
        details = provider.details
        check_profile(provider.organisation_type, details.get("sme_size"),
                      [str(m) for m in details.get("members") or []])
        # What was applied with still passes the registry's input checks, postcode included.
        NewProvider.model_validate({"name": provider.name,
                                    "organisation_type": provider.organisation_type,
                                    **details, "sme_size": _sme(details)})
        assert AddressIn.model_validate(details["address"]).postcode == \
            details["address"]["postcode"]
        identifiers.update(details.get("identifiers", {}).items())
        for member in details.get("members", []):
            assert UUID(member) in ids.values()
            assert registry.history(UUID(member))[0].occurred_at < \
                registry.history(provider_id)[0].occurred_at
        if provider.organisation_type is OrganisationType.PARTNERSHIP:
            assert len(details["members"]) >= 2
        # Status and credentials agree.
        if provider.status is S.APPROVED:
            assert provider.credentials_id
        else:
            assert provider.credentials_id is None
        if provider.status is S.INCUBATING:
            assert provider.unmet_milestones()
        if provider.incubation is not None and provider.status is S.APPROVED:
            assert not provider.unmet_milestones(), key
        for capability in provider.capabilities.values():
            assert taxonomy().has(capability["category"])
        for standing in provider.accreditations.values():
            assert standing["valid_from"] <= standing["expires_on"]
        for rating in provider.quality_ratings:
            assert date.fromisoformat(rating["rated_on"]) <= date.today()
        # The history replays in business-time order and every event meets its contract.
        history = registry.history(provider_id)
        assert [e.occurred_at for e in history] == sorted(e.occurred_at for e in history)
        assert history[0].type == "ProviderRegistered"
    assert max(identifiers.values()) == 1, "an identifier is held by two providers"
    assert sum(1 for k, _ in identifiers if k == "companies_house") > 50
    assert sum(1 for k, _ in identifiers if k == "charity_number") > 40


def _sme(details: dict[str, Any]) -> dict[str, int] | None:
    sme = details.get("sme_size")
    return None if sme is None else {"headcount": sme["headcount"],
                                     "turnover_gbp": sme["turnover_gbp"]}


def test_some_standing_has_lapsed_and_care_providers_are_rated(stores: Stores) -> None:
    today = demo_data.END
    expired = providers_rated = 0
    for provider_id in demo_provider_ids().values():
        provider = stores.registry.provider(provider_id)
        expired += sum(1 for a in provider.accreditations.values()
                       if a["expires_on"] and date.fromisoformat(a["expires_on"]) < today)
        if {c["category"] for c in provider.capabilities.values()} & {"home-care",
                                                                     "residential-care"}:
            providers_rated += provider.current_rating("CQC") is not None
    assert 10 <= expired <= 80
    assert providers_rated >= 10


def test_every_need_and_agreement_obeys_the_commissioning_rules(stores: Stores) -> None:
    integrator = stores.integrator
    agreements = [integrator.agreement(i)
                  for i in stores.ids_of(integrator, Agreement.Drafted)]
    by_need: dict[UUID, list[Agreement]] = {}
    for agreement in agreements:
        by_need.setdefault(agreement.need_id, []).append(agreement)
        drafted: Agreement = integrator.repository.get(agreement.id, version=1)
        check_terms(drafted.parties, drafted.budget, drafted.starts_on, drafted.ends_on,
                    drafted.exit_plan, drafted.risk_share)
        assert drafted.outcomes, "every agreement carries the need's outcomes"
        # The budget is the award plus its variations; parties' shares add up to it.
        assert agreement.budget == drafted.budget + sum(
            (v["budget_change"] for v in agreement.variations), Decimal(0))
        assert sum((p["allocation"] for p in agreement.parties), Decimal(0)) == \
            agreement.budget
        assert Decimal(0) <= agreement.spent <= agreement.budget
        parties = {str(p["provider_id"]) for p in agreement.parties}
        assert {str(s["provider_id"]) for s in agreement.spend.values()} <= parties
        for case in agreement.business_cases.values():
            if case["status"] == "approved":
                assert [v for v in agreement.variations
                        if v["business_case_id"] == case["business_case_id"]]
        ends = [e["new_end"] for e in agreement.extensions]
        assert ends == sorted(ends)
        if agreement.status is AgreementStatus.DRAFTED:
            assert not agreement.spend
        else:
            assert agreement.activated_on is not None
        if agreement.ending is not None:
            assert agreement.ending["ended_on"] >= agreement.activated_on
            if agreement.ending["how"] == EndingKind.EXITED.value:
                assert agreement.ending["exit_plan_executed"]
        else:
            assert agreement.ends_on >= f"{demo_data.END}", "past its term but not ended"
        # Money moved only once the agreement was active.
        history = [integrator.to_envelope(s)
                   for s in integrator.recorder.select_events(agreement.id)]
        assert [e.occurred_at for e in history] == sorted(e.occurred_at for e in history)
        activated = [e.occurred_at for e in history if e.type == "AgreementActivated"]
        for event in history:
            if event.type == "SpendRecorded":
                assert activated
                assert event.occurred_at > activated[0]
    assert {a.arrangement_type for a in agreements} == set(EXPECTED_ARRANGEMENTS)
    assert {v["kind"] for a in agreements for v in a.variations} == {k.value for k in
                                                                     VariationKind}

    for need_id, its_agreements in by_need.items():
        need = integrator.need(need_id)
        assert need.committed <= need.pooled_budget
        assert need.recommended is not None
        if not need.is_open:
            assert all(a.status is AgreementStatus.ENDED for a in its_agreements)
        # Every award went to a provider that was approved when the decision was taken.
        decided_at = {e.data["decision_id"]: e.occurred_at
                      for e in (integrator.to_envelope(s)
                                for s in integrator.recorder.select_events(need_id))
                      if e.type == "CommissioningDecided"}
        for decision in need.decisions.values():
            for award in decision["awards"]:
                for provider_id in award["provider_ids"]:
                    status = stores.status_at(provider_id, decided_at[decision["decision_id"]])
                    assert status is S.APPROVED, (award["title"], status)


def test_the_demo_obeys_every_rule_of_the_money_and_its_dates(stores: Stores) -> None:
    """The history a council could sign off (issue #13): no agreement paid outside its term,
    no need over its envelope at any point, no business case approved by its proposer, no
    signature after coming into force (and each some days after the award), no decision
    beyond its taker's limit in the scheme of delegation, no spend dated after the moment it
    was recorded."""
    integrator = stores.integrator
    events = _published(stores, integrator)
    agreements = {str(i): integrator.agreement(i)
                  for i in stores.ids_of(integrator, Agreement.Drafted)}
    _paid_within_each_term(events, agreements)
    _no_need_over_its_envelope(integrator, stores.ids_of(integrator, Need.Defined))
    _no_case_approved_by_its_proposer(agreements)
    _signed_after_the_award_and_before_coming_into_force(integrator, events, agreements)
    _no_decision_beyond_its_takers_limit(integrator, events, agreements)
    for spent in events["SpendRecorded"]:
        assert spent.data["period"] <= f"{spent.occurred_at:%Y-%m}", spent.data


def _term(agreement: Agreement) -> tuple[date, date]:
    ended = agreement.ending["ended_on"] if agreement.ending else agreement.ends_on
    return (date.fromisoformat(agreement.starts_on),
            date.fromisoformat(min(agreement.ends_on, ended)))


def _paid_within_each_term(events: dict[str, list[EventEnvelope]],
                           agreements: dict[str, Agreement]) -> None:
    """Every payment (by hand, or a party's share of a results payment) is for a month of its
    agreement's term; every results payment due is for a period the term covers."""
    for spent in events["SpendRecorded"]:
        starts, ends = _term(agreements[spent.stream_id])
        assert f"{starts:%Y-%m}" <= spent.data["period"] <= f"{ends:%Y-%m}", spent.data
    for due in events["ResultsPaymentDue"]:
        assert cover(due.data["period"], *_term(agreements[due.stream_id])).days > 0, due.data
    assert {s.data.get("due_id") is None for s in events["SpendRecorded"]} == {True, False}


def _no_need_over_its_envelope(integrator: Integrator, need_ids: list[UUID]) -> None:
    """At every version of every need, what it committed was within its pooled envelope; an
    envelope was raised only by a partner's contribution or a top-up with its reason."""
    for need_id in need_ids:
        need = integrator.need(need_id)
        for version in range(1, need.version + 1):
            then: Need = integrator.repository.get(need_id, version=version)
            assert then.committed <= then.pooled_budget, (need.title, version)
        for raised in need.envelope_raises:
            assert raised["reason"].strip()
            assert raised["decided_by"].startswith("integrator_admin:")


def _no_case_approved_by_its_proposer(agreements: dict[str, Agreement]) -> None:
    cases = [c for a in agreements.values() for c in a.business_cases.values()]
    approved = [c for c in cases if c["status"] == "approved"]
    assert approved
    for case in approved:
        assert case["proposed_by"] is not None
        assert case["approved_by"] is not None
        assert case["proposed_by"] != case["approved_by"], case
    assert {c["proposed_by"].partition(":")[0] for c in cases} == {"commissioner"}


def _signed_after_the_award_and_before_coming_into_force(
        integrator: Integrator, events: dict[str, list[EventEnvelope]],
        agreements: dict[str, Agreement]) -> None:
    signed_at = {e.stream_id: e.occurred_at for e in events["AgreementSigned"]}
    activated_at = {e.stream_id: e.occurred_at for e in events["AgreementActivated"]}
    for key, agreement in agreements.items():
        if agreement.activated_on is None:
            assert agreement.signed_on is None
            continue
        decided_on = integrator.need(agreement.need_id).decisions[
            agreement.decision_id or ""]["decided_on"]
        assert agreement.signed_on is not None
        assert decided_on < agreement.signed_on < agreement.starts_on, agreement.title
        assert agreement.signed_on <= agreement.activated_on
        assert signed_at[key] < activated_at[key]


def _no_decision_beyond_its_takers_limit(
        integrator: Integrator, events: dict[str, list[EventEnvelope]],
        agreements: dict[str, Agreement]) -> None:
    """Every financial decision, checked against the scheme as the domain checks it: its
    taker's role had the authority for its amount."""
    scheme = integrator.scheme_of_delegation(demo_data.COUNCIL)
    assert scheme.limit("commissioner", DecisionKind.AWARD) == (True, Decimal(50_000))
    taken: list[tuple[DecisionKind, Decimal, str]] = []
    for e in events["CommissioningDecided"]:
        taken.append((DecisionKind.AWARD, sum((Decimal(a["allocation"])
                                               for a in e.data["awards"]), Decimal(0)),
                      str(e.actor)))
    for e in events["AgreementVaried"]:
        if e.data["kind"] != VariationKind.BUSINESS_CASE.value:
            taken.append((DecisionKind.VARIATION, abs(Decimal(e.data["budget_change"])),
                          str(e.actor)))
    for e in events["AgreementExtended"]:
        assert e.data.get("override_reason") is None, "extended without performance data"
        assert e.data.get("performance_data"), e.data
        then: Agreement = integrator.repository.get(UUID(e.stream_id),
                                                    version=e.stream_position)
        taken.append((DecisionKind.EXTENSION, then.budget, str(e.actor)))
    for e in events["BusinessCaseApproved"]:
        case = agreements[e.stream_id].business_cases[e.data["business_case_id"]]
        taken.append((DecisionKind.BUSINESS_CASE, case["cost"], str(e.actor)))
    for e in events["BudgetEnvelopeRaised"]:
        taken.append((DecisionKind.ENVELOPE_RAISE, Decimal(e.data["amount"]), str(e.actor)))
    for e in events["SpendRecorded"]:
        due_id = e.data.get("due_id")
        amount = (abs(agreements[e.stream_id].results_due[due_id]["amount"]) if due_id
                  else Decimal(e.data["amount"]))
        taken.append((DecisionKind.SPEND, amount, str(e.actor)))
    for kind, amount, actor in taken:
        check_authority(scheme, demo_data.COUNCIL, kind, amount, actor.partition(":")[0],
                        actor)
    takers = {actor for _, _, actor in taken}
    assert {demo_data.HEAD_OF_COMMISSIONING, demo_data.CABINET, demo_data.FINANCE} <= takers
    assert any(actor.startswith("commissioner:") for actor in takers)


# ------------------------------------------------------------------------------ idempotence


def test_a_second_load_adds_nothing(embedded: tuple[Settings, str, str],
                                    stores: Stores) -> None:
    settings = embedded[0]
    before = stores.notification_counts()
    identity = open_database(settings, "identity")
    tokens = len(TokenStore(identity).list())
    again = load_demo(settings)
    assert again.already_loaded
    assert stores.notification_counts() == before
    assert len(TokenStore(identity).list()) == tokens
    identity.close()


def test_a_load_that_stopped_part_way_is_refused(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, log_url="embedded")
    registry = open_application(ProviderRegistry, settings)
    first = demo_data.PROVIDERS[0]
    registry.register_provider(NewProvider(name=first.name, organisation_type=first.kind),
                               idempotency_key="demo-provider-1")
    registry.close()
    with pytest.raises(DemoError, match="stopped part-way"):
        load_demo(settings)


def test_the_plan_is_the_same_every_time(stores: Stores) -> None:
    def planned() -> list[tuple[datetime, str, str]]:
        loader = DemoLoader(stores.registry, stores.integrator, stores.outcomes)
        return [(s.at, s.actor, s.label) for s in sorted(loader.plan_all().steps)]

    assert planned() == planned()


# ------------------------------------------------------------------------------ log and time


def test_every_event_reaches_the_shared_log(embedded: tuple[Settings, str, str],
                                            stores: Stores) -> None:
    _check_log(embedded[0], stores)


def _check_log(settings: Settings, stores: Stores) -> None:
    event_log = open_event_log(settings)
    try:
        for app in stores.apps:
            db = store_database(settings, app.service)
            assert OutboxRelay(app, event_log, db).pending() == 0
            db.close()
    finally:
        event_log.close()
    on_log = _log_envelopes(settings)
    stored = [e for app in stores.apps for e in stores.envelopes(app)]
    assert {e.event_id for e in on_log} == {e.event_id for e in stored}
    types = {e.type for e in on_log}
    assert {"ProviderRegistered", "ProviderApproved", "ProviderSuspended", "ProviderExited",
            "ProviderRejected", "ProviderGraduated", "IncubationMilestoneMet",
            "QualityRatingRecorded", "AccreditationRemoved", "NeedContributionPledged",
            "CommissioningDecided", "AgreementVaried", "AgreementExtended",
            "BusinessCaseApproved", "BusinessCaseRejected", "SpendRecorded",
            "AgreementEnded", "NeedClosed", "LessonRecorded",
            "OutcomeMeasureDefined", "MeasurementRecorded", "OutcomeAttributed",
            "RateCardAgreed", "DeliveryReported", "PaymentCalculated",
            "PaymentRecalculated"} <= types


def test_the_relay_reads_every_stored_event_as_the_domain_event_gives_it(
        stores: Stores) -> None:
    """The relay reads envelopes straight from the stored bytes (envelope_body); for every
    event of every type the demo stores, that is exactly the envelope the rebuilt domain event
    gives, down to the canonical bytes the audit chain hashes."""
    checked: Counter[str] = Counter()
    for app in stores.apps:
        start = 0
        while batch := app.recorder.select_notifications(start=start, limit=1000,
                                                         inclusive_of_start=False):
            for stored in (s for s in batch if app.is_published(s)):
                body = app.envelope_body(stored)
                slow = app._envelope_of_event(stored)
                assert body == slow.model_dump(mode="json")
                assert canonical_json(body) == slow.to_json()
                assert app.to_envelope(stored) == slow
                checked[body["type"]] += 1
            start = batch[-1].id
    assert len(checked) >= 40
    assert sum(checked.values()) > 5000


def test_no_stream_goes_back_in_business_time(embedded: tuple[Settings, str, str]) -> None:
    """Each stream's events are dated in the order of their positions, as the services write
    them (occurred_at is the clock's, or the load's business time, which moves forward): views
    as of a date rely on it (council.platform.replay.snapshots), and the replay bench's generated
    history continues the demo's streams only forward (council.tools.bench.replay)."""
    latest: dict[tuple[str, str], tuple[int, datetime]] = {}
    for e in _log_envelopes(embedded[0]):
        key = (e.source, e.stream_id)
        position, when = latest.get(key, (0, e.occurred_at))
        if e.stream_position > position:
            assert e.occurred_at >= when, (key, e.stream_position, e.type, when, e.occurred_at)
            latest[key] = (e.stream_position, e.occurred_at)
    assert len(latest) > 2000  # providers, needs, agreements, measures, terms, deliveries


def test_the_demo_trail_is_chained_signed_and_exports(
    embedded: tuple[Settings, str, str], stores: Stores, tmp_path: Path
) -> None:
    """The demo went through the relay, so its trail verifies, with the checkpoint the loader
    signed over each chain; its export verifies and carries the integrator's OCDS releases."""
    settings = embedded[0]
    key = load_signing_key(settings)
    event_log = open_event_log(settings)
    try:
        report = _verified(settings)
        assert {c.source: c.events for c in report.chains} == {
            app.service: sum(1 for _ in stores.envelopes(app)) for app in stores.apps}
        assert {c.source: c.checkpoints for c in report.chains} == dict.fromkeys(
            SERVICE_NAMES, 1)
        # Every stored event checked against the log: each seals to what the log carries.
        assert {c.source: c.stored for c in report.chains} == {
            c.source: c.events for c in report.chains}
        bundle = export_bundle(event_log, tmp_path / "bundle", key).path
        topic = event_log.topic_for("integrator")
        integrator_events = [r.envelope for b in event_log.read_all([topic]) for r in b]
        # What the integrator service would name providers: its network read model.
        views = Database.sqlite(tmp_path / "views.sqlite")
        ProjectionRunner(NetworkProjection(), views, event_log).catch_up()
        names = {p.provider_id: p.name for p in list_providers(views, limit=10_000)}
        views.close()
    finally:
        event_log.close()
    assert verify_bundle(bundle, key=key.public_key()).intact
    package = json.loads((bundle / "ocds-releases.json").read_text())
    assert problems(ocds_validator(), package) == []
    assert len(package["releases"]) > 1000
    assert package["releases"] == releases_for(integrator_events, names)


def test_the_ocds_read_model_gives_each_need_the_releases_the_whole_log_gives_it(
    embedded: tuple[Settings, str, str], tmp_path: Path
) -> None:
    """/ocds/records reads the OCDS read model, one need's events for one need's record: each
    need's releases must be what mapping the whole log gives that need, and all needs' what it
    gives in all."""
    event_log = open_event_log(embedded[0])
    views = Database.sqlite(tmp_path / "views.sqlite")
    try:
        topic = event_log.topic_for("integrator")
        events = [r.envelope for b in event_log.read_all([topic]) for r in b]
        ProjectionRunner(OcdsProjection(), views, event_log).catch_up()
        names: dict[UUID, str] = {}
        everything = releases_for(events, names)
        by_need: dict[str, list[Any]] = {}
        for release in everything:
            by_need.setdefault(release["ocid"], []).append(release)
        assert releases_for(ocds_events(views), names) == everything
        needs = [UUID(str(e.data["need_id"])) for e in events if e.type == "NeedDefined"]
        assert len(needs) == len(demo_data.NEEDS)
        for need_id in needs:
            mine = releases_for(ocds_events(views, need_id), names)
            assert mine == by_need[ocid_for(need_id)], need_id
    finally:
        views.close()
        event_log.close()


def test_the_demo_ocds_passes_ocps_coherence_checks(
    embedded: tuple[Settings, str, str], tmp_path: Path
) -> None:
    """OCP's coherence checks (tests/ocds_coherence.py) over the demo's release and record
    packages. Before they were asked for, the release package made 610 findings (556 payments
    dated after the release reporting them, 20 processes awarded while their tender was still
    active, 24 pairs of releases of one process dated alike, 10 amendments of a release dated
    as they were) and the record package 639."""
    event_log = open_event_log(embedded[0])
    try:
        topic = event_log.topic_for("integrator")
        events = [r.envelope for b in event_log.read_all([topic]) for r in b]
        views = Database.sqlite(tmp_path / "views.sqlite")
        ProjectionRunner(NetworkProjection(), views, event_log).catch_up()
        names = {p.provider_id: p.name for p in list_providers(views, limit=10_000)}
        views.close()
    finally:
        event_log.close()
    releases = releases_for(events, names)
    publisher = Publisher("Northshire County Council")
    releases_found = check_release_package(
        release_package(releases, uri="urn:demo:releases", publisher=publisher))
    records_found = check_record_package(
        record_package(releases, uri="urn:demo:records", publisher=publisher))
    assert (counts(releases_found), counts(records_found)) == ({}, {}), [
        str(f) for f in [*releases_found, *records_found][:20]]


def _verified(settings: Settings) -> Report:
    """The log's chains, and every service's store against them."""
    event_log = open_event_log(settings)
    try:
        with service_stores(settings, service_applications(SERVICE_NAMES), event_log) as stores:
            report, _ = verify_log(event_log, key=load_signing_key(settings).public_key(),
                                   stores=stores)
    finally:
        event_log.close()
    assert report.intact, [b.describe() for b in report.breaks]
    return report


def ocds_validator() -> Draft4Validator:
    registry: Registry[Any] = Registry().with_resources(
        (SCHEMA_BASE + f"{name}-schema.json",
         Resource.from_contents(doc, default_specification=DRAFT4))
        for name, doc in SCHEMAS.items())
    return Draft4Validator(SCHEMAS["release-package"], registry=registry,
                           format_checker=_format_checker())


def test_the_history_is_back_dated_from_2023_to_last_month(stores: Stores) -> None:
    envelopes = [e for app in stores.apps for e in stores.envelopes(app)]
    occurred = [e.occurred_at for e in envelopes]
    assert min(occurred) >= datetime(2023, 4, 1, tzinfo=UTC)
    assert max(occurred) <= datetime.now(UTC) - timedelta(days=30)
    assert {t.year for t in occurred} == {2023, 2024, 2025, 2026}
    # Recorded now, whatever date it happened: nothing pretends to be recorded in the past.
    assert all(e.recorded_at > e.occurred_at for e in envelopes)
    assert {e.actor for e in envelopes} >= {"commissioner:Jo Patel",
                                            "integrator_admin:Sam Okafor"}


# ------------------------------------------------------------------------------ scale-out


def test_loads_the_same_on_postgresql_and_kafka(
    tmp_path: Path, postgres_url: str, kafka_bootstrap: str, pg_schema_prefix: str,
    stores: Stores,
) -> None:
    settings = Settings(var_dir=tmp_path, database_url=postgres_url,
                        schema_prefix=pg_schema_prefix, log_url=f"kafka://{kafka_bootstrap}",
                        topic_prefix=pg_schema_prefix)
    summary = load_demo(settings)
    embedded = summarise(stores.registry, stores.integrator, stores.outcomes)
    assert _counts(summary) == _counts(embedded)
    scale = Stores(settings)
    try:
        before = scale.notification_counts()
        assert load_demo(settings).already_loaded
        assert scale.notification_counts() == before
        _check_log(settings, scale)
        assert _verified(settings).checkpoints == 3  # chained across partitions, and signed
    finally:
        scale.close()


def _counts(summary: DemoSummary) -> dict[str, Any]:
    counts = asdict(summary)
    for volatile in ("seconds", "already_loaded"):
        counts.pop(volatile)
    return counts
