"""The open contracting export: the integrator's commissioning events as OCDS 1.1 releases, release
packages and record packages (council.services.integrator.projections.ocds_releases, GET /ocds/...),
validated against the OCDS 1.1.5 schemas in tests/schemas/ocds.

One realistic commission is built from the event contracts: a need with two partners pooling
budget, options appraised, the market engaged, a decision with three awards, their agreements
drafted, signed and activated (two in the same instant), a variation, an envelope raise, an
extension, a business case approved (with the variation it brings), spend over several months,
one agreement terminated, and the need closed. Besides the schemas, OCP's coherence checks
(tests/ocds_coherence.py) are run over it."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft4Validator, FormatChecker
from pydantic import BaseModel
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from council.kernel.contracts import spec_for
from council.kernel.contracts.integrator import (
    AgreementActivated,
    AgreementDrafted,
    AgreementEnded,
    AgreementExtended,
    AgreementOutcome,
    AgreementSigned,
    AgreementVaried,
    ArrangementType,
    Award,
    BudgetEnvelopeRaised,
    BusinessCaseApproved,
    BusinessCaseProposed,
    CommissioningDecided,
    CommitmentVaried,
    EndingKind,
    LessonRecorded,
    MarketEngaged,
    NeedClosed,
    NeedContributionPledged,
    NeedDefined,
    NeedStageReached,
    Option,
    OptionsAppraised,
    OutcomeSought,
    Party,
    Population,
    RewardTerms,
    RiskShare,
    SourcingOption,
    SourcingStage,
    SpendRecorded,
    VariationKind,
)
from council.kernel.contracts.provider_registry import OrganisationType, ProviderRegistered
from council.kernel.envelope import EventEnvelope, canonical_json, event_id_for
from council.platform.identity import Role, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.projections.network import get_provider
from council.services.integrator.projections.ocds_releases import (
    DEFAULT_OCID_PREFIX,
    Publisher,
    compiled_record,
    ocid_for,
    provider_ids_in,
    record_package,
    release_package,
    releases_for,
)
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.ocds_coherence import (
    Finding,
    check_process,
    check_record_package,
    check_release,
    check_release_package,
)

D = Decimal
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "ocds"
SCHEMA_BASE = "https://council-integrator.invalid/schemas/ocds/1.1.5/"
PUBLISHER = Publisher("Leeds City Council", uri="https://www.leeds.gov.uk")
DEADLINE_SECONDS = 10.0

# Codes of the OCDS 1.1 open codelists this export uses (the schemas cannot check open ones).
PARTY_ROLES = {"buyer", "procuringEntity", "supplier", "tenderer", "funder", "enquirer",
               "payer", "payee", "reviewBody", "interestedParty"}
MILESTONE_TYPES = {"preProcurement", "approval", "engagement", "assessment", "delivery",
                   "reporting", "financing"}
DOCUMENT_TYPES = {
    "plannedProcurementNotice", "tenderNotice", "awardNotice", "contractNotice",
    "completionCertificate", "procurementPlan", "biddingDocuments", "technicalSpecifications",
    "evaluationCriteria", "evaluationReports", "contractDraft", "contractSigned",
    "contractArrangements", "contractSchedule", "physicalProgressReport",
    "financialProgressReport", "finalAudit", "hearingNotice", "marketStudies",
    "eligibilityCriteria", "clarifications", "shortlistedFirms", "environmentalImpact",
    "assetAndLiabilityAssessment", "riskProvisions", "winningBid", "complaints",
    "contractAnnexe", "contractGuarantees", "subContract", "needsAssessment", "feasibilityStudy",
    "projectPlan", "billOfQuantity", "bidders", "conflictOfInterest", "debarments",
    "illustration", "submissionDocuments", "contractSummary", "cancellationDetails",
}

# --------------------------------------------------------------------------- the commission

NEED = UUID("6a1f4c1e-0b7d-4c2a-9d55-3f0e8a2b7c01")
KITCHEN = UUID("0f6f2a51-1d7e-4b0a-8c3e-5a9b2c4d6e01")
SPORT = UUID("0f6f2a51-1d7e-4b0a-8c3e-5a9b2c4d6e02")
FITTEENS = UUID("0f6f2a51-1d7e-4b0a-8c3e-5a9b2c4d6e03")
LEISURE = UUID("0f6f2a51-1d7e-4b0a-8c3e-5a9b2c4d6e04")
NAMES = {KITCHEN: "Hillside Community Kitchen", SPORT: "East Leeds Youth Sport Trust",
         FITTEENS: "FitTeens CIC", LEISURE: "Northern Leisure Ltd"}
AG_GRANT = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000001")
AG_CALLOFF = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000002")
AG_CONTRACT = UUID("a9e3c7d0-5f1b-4e2a-b6c4-000000000003")
MEASURE = UUID("3c0d1e2f-4a5b-4c6d-8e7f-901a2b3c4d5e")
LEAD = "Leeds City Council"
OCID = f"{DEFAULT_OCID_PREFIX}-{NEED}"


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


@dataclass
class History:
    """Envelopes as the integrator would publish them: each stream numbered from 1."""

    envelopes: list[EventEnvelope] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)

    def add(self, data: BaseModel, when: datetime) -> EventEnvelope:
        spec = spec_for(type(data).__name__)
        assert spec is not None
        assert spec.data is type(data)
        stream_id = str(getattr(data, spec.stream_field))
        position = self.positions[stream_id] = self.positions.get(stream_id, 0) + 1
        envelope = EventEnvelope(
            event_id=event_id_for(spec.source, stream_id, position), type=spec.type,
            schema_version=spec.version, source=spec.source, stream_id=stream_id,
            stream_position=position, occurred_at=when,
            recorded_at=datetime(2025, 3, 10, 9, tzinfo=UTC) + timedelta(
                milliseconds=len(self.envelopes)),
            correlation_id=f"corr-{len(self.envelopes)}", actor="commissioner:sam",
            organisation=LEAD, data=data.model_dump(mode="json"),
        )
        self.envelopes.append(envelope)
        return envelope


def need_defined(need_id: UUID = NEED, lead: str = LEAD) -> NeedDefined:
    return NeedDefined(
        need_id=need_id, title="Fewer teenagers living with obesity in East Leeds",
        service_area="public health",
        population=Population(description="young people aged 13 to 17 in East Leeds",
                              size=9400),
        outcomes=[
            OutcomeSought(outcome_id="oc-weight", description="Fewer teenagers above a healthy "
                          "weight", measure_id=MEASURE, target="down 5 percentage points",
                          target_date=date(2026, 3, 31)),
            OutcomeSought(outcome_id="oc-active", description="More teenagers active for an "
                          "hour a day", target="60%"),
        ],
        outputs=["weekly cooking clubs", "after-school sport sessions"],
        budget_envelope=D("300000.00"), starts_on=date(2024, 4, 1), ends_on=date(2026, 3, 31),
        lead_organisation=lead,
    )


def drafted(agreement_id: UUID, award_id: str, title: str, kind: ArrangementType,
            parties: list[tuple[UUID, str]], **extra: Any) -> AgreementDrafted:
    budget = sum((D(a) for _, a in parties), D(0))
    return AgreementDrafted(
        agreement_id=agreement_id, need_id=NEED, decision_id="dec-1", award_id=award_id,
        title=title, arrangement_type=kind,
        parties=[Party(provider_id=p, allocation=D(a)) for p, a in parties],
        starts_on=date(2024, 4, 1), ends_on=date(2026, 3, 31), budget=budget,
        exit_plan="Hand the sessions over to the community centres' own volunteers.", **extra,
    )


def spend(agreement_id: UUID, spend_id: str, provider: UUID, amount: str,
          period: str) -> SpendRecorded:
    return SpendRecorded(agreement_id=agreement_id, spend_id=spend_id, provider_id=provider,
                         amount=D(amount), period=period, reference=f"INV-{spend_id}")


def commission() -> list[EventEnvelope]:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(NeedContributionPledged(need_id=NEED, contribution_id="c-icb",
                                  partner="NHS West Yorkshire ICB", amount=D("100000.00"),
                                  note="prevention budget"), at("2024-01-15"))
    h.add(NeedContributionPledged(need_id=NEED, contribution_id="c-police",
                                  partner="West Yorkshire Police", amount=D("50000.00")),
          at("2024-01-22"))
    h.add(OptionsAppraised(need_id=NEED, options=[
        Option(option=SourcingOption.FORMAL_CONTRACT, description="One lead contractor",
               estimated_cost=D("420000.00"), score=55, risks="crowds out local groups"),
        Option(option=SourcingOption.VCSE_GRANT, description="Grants to local groups",
               estimated_cost=D("300000.00"), score=70, benefits="trusted in the community"),
        Option(option=SourcingOption.MIXED, description="Grants, a call-off and a contract",
               estimated_cost=D("360000.00"), score=85, benefits="reach and capacity",
               risks="more agreements to manage"),
    ], recommended=SourcingOption.MIXED, rationale="A mix reaches more families than any one "
       "provider could."), at("2024-02-05"))
    h.add(MarketEngaged(need_id=NEED, summary="Two open events at the Compton Centre; 11 "
                        "organisations attended.", engaged_on=date(2024, 2, 15),
                        provider_ids=[KITCHEN, SPORT, FITTEENS, LEISURE]), at("2024-02-19"))
    h.add(CommissioningDecided(need_id=NEED, decision_id="dec-1", awards=[
        Award(award_id="aw-grant", title="Family cooking clubs",
              arrangement_type=ArrangementType.GRANT, provider_ids=[KITCHEN],
              allocation=D("120000.00")),
        Award(award_id="aw-calloff", title="After-school sport",
              arrangement_type=ArrangementType.CALL_OFF, provider_ids=[SPORT],
              allocation=D("150000.00")),
        Award(award_id="aw-contract", title="Weight management programme",
              arrangement_type=ArrangementType.FORMAL_CONTRACT,
              provider_ids=[FITTEENS, LEISURE], allocation=D("90000.00")),
    ], rationale="Best value and reach for the pooled budget", decision_maker="Executive Board",
        decided_on=date(2024, 3, 4)), at("2024-03-04"))
    h.add(NeedStageReached(need_id=NEED, stage=SourcingStage.MOBILISATION,
                           notes="agreements being drafted"), at("2024-03-11"))
    outcomes = [AgreementOutcome(outcome_id="oc-weight", measure_id=MEASURE,
                                 target="down 2 points"),
                AgreementOutcome(outcome_id="oc-active", target="55%")]
    h.add(drafted(AG_GRANT, "aw-grant", "Family cooking clubs", ArrangementType.GRANT,
                  [(KITCHEN, "120000.00")], outcomes=outcomes,
                  break_clauses=["either side on three months' notice"]), at("2024-03-18"))
    h.add(drafted(AG_CALLOFF, "aw-calloff", "After-school sport", ArrangementType.CALL_OFF,
                  [(SPORT, "150000.00")], outcomes=outcomes[1:],
                  reward_terms=RewardTerms(payment_by_results_share_pct=D("10"),
                                           bonus_max=D("5000.00"))), at("2024-03-18", 11))
    h.add(drafted(AG_CONTRACT, "aw-contract", "Weight management programme",
                  ArrangementType.FORMAL_CONTRACT, [(FITTEENS, "45000.00"),
                                                    (LEISURE, "45000.00")],
                  risk_share=RiskShare(council_pct=D("70"), provider_pct=D("30"))),
          at("2024-03-18", 12))
    h.add(AgreementSigned(agreement_id=AG_GRANT, signed_on=date(2024, 3, 25),
                          signatories=[LEAD, "Hillside Community Kitchen"]), at("2024-03-25"))
    h.add(AgreementSigned(agreement_id=AG_CALLOFF, signed_on=date(2024, 3, 26),
                          signatories=[LEAD, "East Leeds Youth Sport Trust"]),
          at("2024-03-27"))  # recorded the day after it was signed
    h.add(AgreementSigned(agreement_id=AG_CONTRACT, signed_on=date(2024, 3, 27),
                          signatories=[LEAD, "FitTeens CIC", "Northern Leisure Ltd"]),
          at("2024-03-28"))
    # Brought into force ahead of its start: the contract is active from 28 March.
    h.add(AgreementActivated(agreement_id=AG_CONTRACT, activated_on=date(2024, 4, 1)),
          at("2024-03-28", 11))
    for agreement in (AG_GRANT, AG_CALLOFF):  # the same instant: the releases must not tie
        h.add(AgreementActivated(agreement_id=agreement, activated_on=date(2024, 4, 1)),
              at("2024-04-01"))
    for month, kitchen, sport in (("2024-04", "10000.00", "12500.00"),
                                  ("2024-05", "10000.00", "12500.00")):
        paid = at(f"{month}-28")
        h.add(spend(AG_GRANT, f"sp-g-{month}", KITCHEN, kitchen, month), paid)
        h.add(spend(AG_CALLOFF, f"sp-c-{month}", SPORT, sport, month), paid)
    h.add(spend(AG_GRANT, "sp-g-2024-06", KITCHEN, "12000.00", "2024-06"), at("2024-06-28"))
    h.add(spend(AG_CONTRACT, "sp-f-2024-04", FITTEENS, "3750.00", "2024-04"), at("2024-04-29"))
    h.add(spend(AG_CONTRACT, "sp-l-2024-04", LEISURE, "3750.00", "2024-04"), at("2024-04-29"))
    h.add(spend(AG_CONTRACT, "sp-f-2024-05", FITTEENS, "3750.00", "2024-05"), at("2024-05-29"))
    h.add(AgreementVaried(agreement_id=AG_GRANT, variation_id="var-growth",
                          kind=VariationKind.GROWTH, budget_change=D("20000.00"),
                          new_budget=D("140000.00"), scope="two more clubs in Seacroft",
                          reason="waiting lists at every club"), at("2024-07-01"))
    # Committed: £390,000.00 after the business case in June + £20,000.00 = £410,000.00.
    h.add(CommitmentVaried(need_id=NEED, agreement_id=AG_GRANT, variation_id="var-growth",
                           budget_change=D("20000.00"), committed=D("410000.00")),
          at("2024-07-01"))
    h.add(BudgetEnvelopeRaised(need_id=NEED, raise_id="raise-1", amount=D("10000.00"),
                               new_envelope=D("310000.00"), reason="holiday demand",
                               decided_by="commissioner:sam"), at("2024-05-20"))
    h.add(BusinessCaseProposed(agreement_id=AG_CALLOFF, business_case_id="bc-holiday",
                               need="holiday sessions in August",
                               expected_outcomes="400 more young people active",
                               cost=D("30000.00")), at("2024-06-03"))
    h.add(BusinessCaseApproved(agreement_id=AG_CALLOFF, business_case_id="bc-holiday",
                               reason="the need and outcomes are agreed"), at("2024-06-17"))
    h.add(AgreementVaried(agreement_id=AG_CALLOFF, variation_id="var-bc",
                          kind=VariationKind.BUSINESS_CASE, budget_change=D("30000.00"),
                          new_budget=D("180000.00"), scope="holiday sessions in August",
                          reason="the need and outcomes are agreed",
                          business_case_id="bc-holiday"), at("2024-06-17"))
    # Committed: the awards' £360,000.00 + £30,000.00 = £390,000.00.
    h.add(CommitmentVaried(need_id=NEED, agreement_id=AG_CALLOFF, variation_id="var-bc",
                           budget_change=D("30000.00"), committed=D("390000.00"),
                           business_case_id="bc-holiday"), at("2024-06-17"))
    h.add(AgreementEnded(agreement_id=AG_CONTRACT, how=EndingKind.TERMINATED,
                         ended_on=date(2024, 9, 30), reason="Too few referrals to run.",
                         exit_plan_executed=True,
                         exit_notes="Referrals moved to the NHS tier-2 service."),
          at("2024-10-01"))
    h.add(LessonRecorded(lesson_id=UUID("5e5e5e5e-0000-4000-8000-000000000001"), need_id=NEED,
                         agreement_id=AG_CONTRACT, stage=SourcingStage.REVIEW, went="badly",
                         what="referrals never came", why="GP practices were not engaged"),
          at("2024-10-15"))
    h.add(AgreementExtended(agreement_id=AG_GRANT, extension_id="ext-1",
                            previous_end=date(2026, 3, 31), new_end=date(2026, 9, 30),
                            justification="clubs are full and outcomes on track",
                            performance_evidence="BMI checks down 1.8 points",
                            performance_data="RAG green (assessed 2024-12-16)"),
          at("2025-01-06"))
    h.add(spend(AG_GRANT, "sp-g-2025-01", KITCHEN, "15000.00", "2025-01"), at("2025-02-03"))
    h.add(NeedClosed(need_id=NEED, reason="All awards made; the agreements continue under "
                     "contract management."), at("2025-03-03"))
    return h.envelopes


# Events with an OCDS release: all but the stage, the proposal, the lesson and the commitments
# (the contracts' values carry those).
MAPPED = 31


@pytest.fixture(scope="module")
def events() -> list[EventEnvelope]:
    return commission()


@pytest.fixture(scope="module")
def releases(events: list[EventEnvelope]) -> list[dict[str, Any]]:
    return releases_for(events, NAMES)


@pytest.fixture(scope="module")
def compiled(releases: list[dict[str, Any]]) -> dict[str, Any]:
    record = compiled_record(releases)
    compiled_release: dict[str, Any] = record["compiledRelease"]
    return compiled_release


# --------------------------------------------------------------------------- schemas


def _format_checker() -> FormatChecker:
    checker = FormatChecker()
    rfc3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not rfc3339.match(value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("uri")
    def uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme) and bool(parts.netloc or parts.path)

    return checker


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text())
    return loaded


SCHEMAS = {name: _load(f"{name}-schema.json")
           for name in ("release", "release-package", "record-package")}


@pytest.fixture(scope="module")
def validators() -> dict[str, Draft4Validator]:
    registry: Registry[Any] = Registry().with_resources(
        (SCHEMA_BASE + f"{name}-schema.json",
         Resource.from_contents(doc, default_specification=DRAFT4))
        for name, doc in SCHEMAS.items()
    )
    checker = _format_checker()
    return {name: Draft4Validator(doc, registry=registry, format_checker=checker)
            for name, doc in SCHEMAS.items()}


def problems(validator: Draft4Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(
                map(str, e.absolute_path)))]


def undeclared(instance: Any, schema: dict[str, Any], root: dict[str, Any],
               path: str = "") -> list[str]:
    """Fields of `instance` the schema does not declare (it allows extra fields, as OCDS does,
    so a misspelt field would otherwise pass unseen)."""
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["definitions"][name] if schema["$ref"].startswith("#") else root
    found: list[str] = []
    if isinstance(instance, dict):
        declared = schema.get("properties", {})
        for key, value in instance.items():
            if key not in declared:
                found.append(f"{path}/{key}")
            else:
                found += undeclared(value, declared[key], root, f"{path}/{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            found += undeclared(item, schema["items"], root, f"{path}/{i}")
    return found


def test_the_schemas_are_valid_draft_4_and_declare_it() -> None:
    for name, schema in SCHEMAS.items():
        Draft4Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
        assert schema["id"] == SCHEMA_BASE + f"{name}-schema.json"


def test_the_release_schema_refuses_what_ocds_refuses(
    validators: dict[str, Draft4Validator], releases: list[dict[str, Any]],
) -> None:
    """The schema is not vacuous: required fields, closed codelists, types and formats bite."""
    release = validators["release"]
    base = releases[0]
    broken: dict[str, dict[str, Any]] = {
        "no ocid": {k: v for k, v in base.items() if k != "ocid"},
        "unknown tag": {**base, "tag": ["planningDone"]},
        "initiation type": {**base, "initiationType": "auction"},
        "date format": {**base, "date": "8 January 2024"},
        "tender status": {**base, "tender": {**base["tender"], "status": "open"}},
        "procurement method": {**base, "tender": {"id": "t", "procurementMethod": "negotiated"}},
        "award status": {**base, "awards": [{"id": "a", "status": "awarded"}]},
        "contract without award": {**base, "contracts": [{"id": "c"}]},
        "contract status": {**base, "contracts": [{"id": "c", "awardID": "a",
                                                   "status": "ended"}]},
        "milestone status": {**base, "planning": {"milestones": [{"id": "m",
                                                                  "status": "done"}]}},
        "currency": {**base, "planning": {"budget": {"amount": {"amount": 1,
                                                                "currency": "POUNDS"}}}},
        "amount as text": {**base, "planning": {"budget": {"amount": {"amount": "1.00"}}}},
        "transaction without id": {**base, "contracts": [{
            "id": "c", "awardID": "a", "implementation": {"transactions": [{"date": None}]}}]},
        "document without id": {**base, "tender": {"id": "t", "documents": [{"title": "x"}]}},
    }
    for what, instance in broken.items():
        assert problems(release, instance), what


def test_every_release_validates_against_the_release_schema(
    validators: dict[str, Draft4Validator], releases: list[dict[str, Any]],
) -> None:
    assert len(releases) == MAPPED
    for release in releases:
        assert problems(validators["release"], release) == [], release["tag"]


def test_every_field_emitted_is_one_the_schemas_declare(
    releases: list[dict[str, Any]], compiled: dict[str, Any],
) -> None:
    schema = SCHEMAS["release"]
    for release in [*releases, compiled]:
        assert undeclared(release, schema, schema) == [], release["tag"]
    package = release_package(releases, uri="https://example.org/ocds/releases",
                              publisher=PUBLISHER)
    head = {k: v for k, v in package.items() if k != "releases"}
    assert undeclared(head, SCHEMAS["release-package"], SCHEMAS["release-package"]) == []


def test_open_codelists_use_ocds_codes(
    releases: list[dict[str, Any]], compiled: dict[str, Any],
) -> None:
    def walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield k, v
                yield from walk(v, k)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item, key)

    for release in [*releases, compiled]:
        for key, value in walk(release):
            if key == "roles":
                assert set(value) <= PARTY_ROLES, value
            elif key == "documentType":
                assert value in DOCUMENT_TYPES, value
        for milestone in [*release.get("planning", {}).get("milestones", []),
                          *release.get("tender", {}).get("milestones", [])]:
            assert milestone["type"] in MILESTONE_TYPES


def test_the_packages_validate(
    validators: dict[str, Draft4Validator], releases: list[dict[str, Any]],
) -> None:
    package = release_package(releases, uri="https://example.org/ocds/releases",
                              publisher=PUBLISHER,
                              license_url="https://www.nationalarchives.gov.uk/doc/open-"
                                          "government-licence/version/3/")
    assert problems(validators["release-package"], package) == []
    assert package["version"] == "1.1"
    assert package["publishedDate"] == "2025-03-03T10:00:00Z"  # the latest release's
    assert package["publisher"] == {"name": "Leeds City Council",
                                    "uri": "https://www.leeds.gov.uk"}

    records = record_package(releases, uri="https://example.org/ocds/records",
                             publisher=PUBLISHER,
                             packages=["https://example.org/ocds/releases"])
    assert problems(validators["record-package"], records) == []
    assert [r["ocid"] for r in records["records"]] == [OCID]

    linked = record_package(releases, uri="https://example.org/ocds/records",
                            publisher=PUBLISHER,
                            package_url="https://example.org/ocds/releases")
    assert problems(validators["record-package"], linked) == []
    first = linked["records"][0]["releases"][0]
    assert first == {"url": f"https://example.org/ocds/releases#{releases[0]['id']}",
                     "date": "2024-01-08T10:00:00Z", "tag": ["planning"]}


# --------------------------------------------------------------------------- releases


def test_each_event_gives_one_release_with_its_id_date_and_tag(
    events: list[EventEnvelope], releases: list[dict[str, Any]],
) -> None:
    by_id = {str(e.event_id): e for e in events}
    previous: datetime | None = None
    for release in releases:
        event = by_id[release["id"]]
        assert release["ocid"] == OCID
        assert release["initiationType"] == "tender"
        # When it happened, or a second after the process's release before it if they tie.
        expected = event.occurred_at
        if previous is not None and expected <= previous:
            expected = previous + timedelta(seconds=1)
        assert release["date"] == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
        previous = expected
    tags = [(by_id[r["id"]].type, r["tag"]) for r in releases]
    assert tags[:6] == [
        ("NeedDefined", ["planning"]),
        ("NeedContributionPledged", ["planningUpdate"]),
        ("NeedContributionPledged", ["planningUpdate"]),
        ("OptionsAppraised", ["planningUpdate", "tender"]),
        ("MarketEngaged", ["tenderUpdate"]),
        ("CommissioningDecided", ["award", "tenderUpdate"]),
    ]
    kinds = {t: tag for t, tag in tags}
    assert kinds["AgreementDrafted"] == ["contract"]
    assert kinds["AgreementSigned"] == ["contractUpdate"]
    assert kinds["AgreementActivated"] == ["contractUpdate"]
    assert kinds["BudgetEnvelopeRaised"] == ["planningUpdate"]
    assert kinds["AgreementVaried"] == ["contractAmendment"]
    assert kinds["AgreementExtended"] == ["contractAmendment"]
    assert kinds["BusinessCaseApproved"] == ["contractUpdate"]
    assert kinds["SpendRecorded"] == ["implementation"]
    assert kinds["AgreementEnded"] == ["contractTermination"]
    assert kinds["NeedClosed"] == ["tenderUpdate"]
    assert not {"NeedStageReached", "BusinessCaseProposed", "LessonRecorded",
                "CommitmentVaried"} & set(kinds)
    # Oldest first, whatever the streams.
    dates = [datetime.fromisoformat(r["date"].replace("Z", "+00:00")) for r in releases]
    assert dates == sorted(dates)


def test_the_planning_release_names_the_buyer_budget_and_outcomes(
    releases: list[dict[str, Any]],
) -> None:
    planning = releases[0]
    assert planning["buyer"] == {"id": "org-leeds-city-council", "name": LEAD}
    assert planning["parties"] == [{"id": "org-leeds-city-council", "name": LEAD,
                                    "roles": ["buyer"]}]
    budget = planning["planning"]["budget"]
    assert budget["amount"] == {"amount": 300000.0, "currency": "GBP"}
    assert budget["project"] == "Fewer teenagers living with obesity in East Leeds"
    assert budget["projectID"] == str(NEED)
    assert "9,400" in planning["planning"]["rationale"]
    assert "weekly cooking clubs" in planning["planning"]["rationale"]
    weight, active = planning["planning"]["milestones"]
    assert weight["id"] == "oc-weight"
    assert weight["dueDate"] == "2026-03-31T23:59:59Z"
    assert weight["status"] == "scheduled"
    assert str(MEASURE) in weight["description"]
    assert "dueDate" not in active
    assert planning["tender"]["status"] == "planning"
    assert planning["tender"]["contractPeriod"] == {"startDate": "2024-04-01T00:00:00Z",
                                                    "endDate": "2026-03-31T23:59:59Z"}


def test_partners_are_funders_and_the_budget_pools(releases: list[dict[str, Any]]) -> None:
    first, second = releases[1:3]
    assert first["parties"] == [{"id": "org-nhs-west-yorkshire-icb",
                                 "name": "NHS West Yorkshire ICB", "roles": ["funder"]}]
    assert first["planning"]["budget"]["amount"]["amount"] == 400000.0
    assert second["planning"]["budget"]["amount"]["amount"] == 450000.0
    assert "West Yorkshire Police (£50,000.00)" in second["planning"]["budget"]["description"]
    assert "tender" not in second  # the tender has no value yet


def test_the_tender_takes_its_method_from_the_recommended_option(
    releases: list[dict[str, Any]],
) -> None:
    tender = releases[3]["tender"]
    assert tender["procurementMethod"] == "limited"
    assert tender["procurementMethodDetails"] == "A mix of providers and arrangements"
    assert tender["procurementMethodRationale"].startswith("A mix reaches")
    assert tender["value"] == {"amount": 450000.0, "currency": "GBP"}
    assert tender["status"] == "planned"
    documents = releases[3]["planning"]["documents"]
    assert [d["id"] for d in documents] == ["option-formal_contract", "option-vcse_grant",
                                            "option-mixed"]
    assert documents[2]["title"] == "Sourcing option: mixed arrangements (recommended)"
    engaged = releases[4]
    assert engaged["tender"]["status"] == "active"
    assert [t["name"] for t in engaged["tender"]["tenderers"]] == list(NAMES.values())
    assert engaged["tender"]["numberOfTenderers"] == 4
    assert {p["id"]: p["roles"] for p in engaged["parties"]} == {
        f"provider-{p}": ["tenderer"] for p in NAMES}


@pytest.mark.parametrize(
    ("option", "method"),
    [(SourcingOption.IN_HOUSE, "direct"), (SourcingOption.SHARED_SERVICE, "direct"),
     (SourcingOption.INFORMAL_SLA, "direct"), (SourcingOption.VCSE_GRANT, "limited"),
     (SourcingOption.FRAMEWORK_CALL_OFF, "selective"),
     (SourcingOption.FORMAL_CONTRACT, "open"), (SourcingOption.MIXED, "limited")],
)
def test_each_sourcing_option_has_a_procurement_method(
    option: SourcingOption, method: str
) -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(OptionsAppraised(need_id=NEED, options=[Option(option=option, description="x")],
                           recommended=option, rationale="why"), at("2024-01-09"))
    assert releases_for(h.envelopes, {})[1]["tender"]["procurementMethod"] == method


def test_awards_name_their_suppliers_with_value_and_date(
    releases: list[dict[str, Any]],
) -> None:
    award = releases[5]
    assert [a["id"] for a in award["awards"]] == ["aw-grant", "aw-calloff", "aw-contract"]
    grant, _, contract = award["awards"]
    assert grant["status"] == "active"
    assert grant["date"] == "2024-03-04T00:00:00Z"  # the day decided
    assert grant["value"] == {"amount": 120000.0, "currency": "GBP"}
    assert grant["suppliers"] == [{"id": f"provider-{KITCHEN}",
                                   "name": "Hillside Community Kitchen"}]
    assert [s["name"] for s in contract["suppliers"]] == ["FitTeens CIC",
                                                          "Northern Leisure Ltd"]
    assert "Executive Board" in grant["description"]
    # Every party named carries all its roles so far (OCDS merging replaces roles whole).
    assert all(p["roles"] == ["tenderer", "supplier"] for p in award["parties"])


def test_contracts_hang_off_their_awards(releases: list[dict[str, Any]]) -> None:
    draft = next(r for r in releases if r["tag"] == ["contract"])
    (contract,) = draft["contracts"]
    assert contract["id"] == str(AG_GRANT)
    assert contract["awardID"] == "aw-grant"
    assert contract["status"] == "pending"
    assert contract["value"] == {"amount": 120000.0, "currency": "GBP"}
    assert contract["period"] == {"startDate": "2024-04-01T00:00:00Z",
                                  "endDate": "2026-03-31T23:59:59Z"}
    assert [i["id"] for i in contract["items"]] == ["oc-weight", "oc-active"]
    assert contract["items"][0]["description"].startswith("Fewer teenagers above a healthy "
                                                          "weight (target: down 2 points)")
    assert {d["id"]: d["documentType"] for d in contract["documents"]} == {
        "exit-plan": "contractArrangements", "break-clauses": "contractArrangements"}
    every_contract = [c for r in releases for c in r.get("contracts", [])]
    assert all(c["awardID"] for c in every_contract)


def test_an_agreement_without_an_award_gets_one_of_its_own(
    validators: dict[str, Draft4Validator],
) -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(AgreementDrafted(
        agreement_id=AG_GRANT, need_id=NEED, title="Emergency cover",
        arrangement_type=ArrangementType.INFORMAL_SLA,
        parties=[Party(provider_id=KITCHEN, allocation=D("5000.00"))],
        starts_on=date(2024, 2, 1), ends_on=date(2024, 3, 31), budget=D("5000.00"),
        exit_plan="ends with the term"), at("2024-01-20"))
    release = releases_for(h.envelopes, NAMES)[1]
    assert problems(validators["release"], release) == []
    assert release["tag"] == ["award", "contract", "tender"]
    assert release["awards"][0]["id"] == release["contracts"][0]["awardID"] == \
        f"agreement-{AG_GRANT}"


# --------------------------------------------------------------------------- the record


def test_the_compiled_record_says_where_the_commission_stands(
    compiled: dict[str, Any], releases: list[dict[str, Any]],
) -> None:
    assert compiled["ocid"] == OCID
    assert compiled["tag"] == ["compiled"]
    assert compiled["date"] == releases[-1]["date"] == "2025-03-03T10:00:00Z"
    assert compiled["id"] == f"{OCID}-2025-03-03T10:00:00Z"
    assert compiled["planning"]["budget"]["amount"]["amount"] == 460000.0  # raised
    assert compiled["planning"]["budget"]["project"].startswith("Fewer teenagers")  # kept
    tender = compiled["tender"]
    assert tender["status"] == "complete"
    assert tender["value"]["amount"] == 450000.0
    assert tender["procurementMethod"] == "limited"
    assert tender["title"].startswith("Fewer teenagers")
    assert tender["numberOfTenderers"] == 4
    assert [d["id"] for d in tender["documents"]] == ["closure"]
    assert {a["id"]: (a["status"], a["value"]["amount"]) for a in compiled["awards"]} == {
        "aw-grant": ("active", 120000.0), "aw-calloff": ("active", 150000.0),
        "aw-contract": ("active", 90000.0)}


def test_compiled_contracts_carry_their_amendments_status_and_spend(
    compiled: dict[str, Any], releases: list[dict[str, Any]],
) -> None:
    contracts = {c["id"]: c for c in compiled["contracts"]}
    assert list(contracts) == [str(AG_GRANT), str(AG_CALLOFF), str(AG_CONTRACT)]
    grant, calloff, contract = contracts.values()

    assert grant["status"] == "active"
    assert grant["dateSigned"] == "2024-03-25T00:00:00Z"  # from its signature
    assert grant["value"]["amount"] == 140000.0  # varied
    assert grant["period"] == {"startDate": "2024-04-01T00:00:00Z",
                               "endDate": "2026-09-30T23:59:59Z"}  # extended
    variation, extension = grant["amendments"]
    assert variation["id"] == "var-growth"
    assert variation["rationale"] == "waiting lists at every club"
    assert "+£20,000.00 to £140,000.00" in variation["description"]
    # Each amendment points at the release holding the values before it, and at its own.
    release_ids = [r["id"] for r in releases]
    before = [r for r in releases[:release_ids.index(variation["releaseID"])]
              if any(c["id"] == str(AG_GRANT) for c in r.get("contracts", []))]
    assert variation["amendsReleaseID"] == before[-1]["id"]
    assert extension["id"] == "ext-1"
    assert extension["amendsReleaseID"] == variation["releaseID"]
    assert extension["date"] == "2025-01-06T10:00:00Z"
    assert extension["description"] == (
        "Term extended from 2026-03-31 to 2026-09-30. Performance evidence: BMI checks down "
        "1.8 points. Performance data held: RAG green (assessed 2024-12-16).")

    assert calloff["value"]["amount"] == 180000.0  # the business case's cost
    (case_variation,) = calloff["amendments"]
    assert case_variation["id"] == "var-bc"
    assert "bc-holiday" in case_variation["description"]
    case = next(d for d in calloff["documents"] if d["id"] == "business-case-bc-holiday")
    assert "holiday sessions in August" in case["description"]
    assert "£30,000.00" in case["description"]

    assert grant["description"] == "Grant with Hillside Community Kitchen."
    assert contract["description"] == (
        "Formal contract with FitTeens CIC and Northern Leisure Ltd; shares of the budget as "
        "drafted: FitTeens CIC £45,000.00, Northern Leisure Ltd £45,000.00.")
    assert contract["status"] == "terminated"
    assert contract["period"]["endDate"] == "2024-09-30T23:59:59Z"
    ending = next(d for d in contract["documents"] if d["id"] == "ending")
    assert "terminated early" in ending["description"]
    assert "Too few referrals" in ending["description"]
    assert {d["id"] for d in contract["documents"]} == {"exit-plan", "risk-share", "signatures",
                                                         "ending"}

    def spent(c: dict[str, Any]) -> Decimal:
        return sum((D(str(t["value"]["amount"])) for t in c["implementation"]["transactions"]),
                   D(0))

    assert spent(grant) == D("47000")
    assert spent(calloff) == D("25000")
    assert spent(contract) == D("11250")
    first = grant["implementation"]["transactions"][0]
    assert first == {  # dated when the payment was recorded
        "id": "sp-g-2024-04", "date": "2024-04-28T10:00:00Z",
        "value": {"amount": 10000.0, "currency": "GBP"},
        "payer": {"id": "org-leeds-city-council", "name": LEAD},
        "payee": {"id": f"provider-{KITCHEN}", "name": "Hillside Community Kitchen"},
    }
    assert [t["date"] for t in contract["implementation"]["transactions"]] == [
        "2024-04-29T10:00:00Z", "2024-04-29T10:00:01Z", "2024-05-29T10:00:00Z"]


def test_the_compiled_parties_have_every_role_they_played(compiled: dict[str, Any]) -> None:
    roles = {p["name"]: p["roles"] for p in compiled["parties"]}
    assert roles == {
        LEAD: ["buyer", "payer"],
        "NHS West Yorkshire ICB": ["funder"],
        "West Yorkshire Police": ["funder"],
        **{name: ["tenderer", "supplier", "payee"] for name in NAMES.values()},
    }
    assert len({p["id"] for p in compiled["parties"]}) == len(compiled["parties"])


def test_a_need_closed_before_any_award_is_cancelled(
    validators: dict[str, Draft4Validator],
) -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(NeedClosed(need_id=NEED, reason="superseded by the regional programme"),
          at("2024-02-01"))
    releases = releases_for(h.envelopes, {})
    assert releases[1]["tag"] == ["tenderCancellation"]
    record = compiled_record(releases)
    assert record["compiledRelease"]["tender"]["status"] == "cancelled"
    assert record["compiledRelease"]["tender"]["documents"][0]["documentType"] == \
        "cancellationDetails"
    package = record_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert problems(validators["record-package"], package) == []


# --------------------------------------------------------------------------- coherence


def test_the_commission_passes_ocps_coherence_checks(releases: list[dict[str, Any]]) -> None:
    """OCP's coherence checks (tests/ocds_coherence.py) over the release and record packages:
    the tender complete once awarded, signatures not after the releases reporting them, awards
    dated before signature and amendments after it, periods that run forwards, nothing dated
    after the release or package publishing it, and no two releases of the process alike in
    date. Before this was asked of it the export made 25 findings on this commission in each
    package (18 dates, 5 ties, 1 tender still active once awarded, 1 amendment of a release
    dated alike)."""
    package = release_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert [str(f) for f in check_release_package(package)] == []
    records = record_package(releases, uri="https://example.org/c", publisher=PUBLISHER)
    assert [str(f) for f in check_record_package(records)] == []


def _checks(findings: list[Finding]) -> set[str]:
    return {f.check for f in findings}


def test_each_coherence_check_finds_the_fault_it_names() -> None:
    contract = {"id": "c1", "awardID": "a1", "status": "active",
                "dateSigned": "2024-03-10T00:00:00Z"}
    award = {"id": "a1", "status": "active", "date": "2024-03-01T00:00:00Z"}
    faults: list[tuple[str, dict[str, Any]]] = [
        ("tender_status", {"tender": {"id": "t", "status": "active"}, "awards": [award]}),
        ("tender_status", {"tender": {"id": "t", "status": "cancelled"},
                           "contracts": [contract]}),
        # signed after the release (dated 2024-05-01) that reports it
        ("dates", {"contracts": [{**contract, "dateSigned": "2024-06-01T00:00:00Z"}]}),
        ("dates", {"awards": [{**award, "date": "2024-03-11T00:00:00Z"}],  # after signature
                   "contracts": [contract]}),
        ("dates", {"contracts": [{**contract, "implementation": {"transactions": [
            {"id": "t1", "date": "2024-03-09T00:00:00Z"}]}}]}),  # paid before signature
        ("dates", {"contracts": [{**contract, "implementation": {"transactions": [
            {"id": "t1", "date": "2024-05-02T00:00:00Z"}]}}]}),  # paid after the release
        ("amendments_dates", {"contracts": [{**contract, "amendments": [
            {"id": "v", "date": "2024-03-09T00:00:00Z"}]}]}),  # amended before signature
        ("amendments_dates", {"contracts": [{**contract, "amendments": [
            {"id": "v", "date": "2024-05-02T00:00:00Z"}]}]}),
        ("period", {"contracts": [{**contract, "period": {
            "startDate": "2024-04-01T00:00:00Z", "endDate": "2024-03-31T23:59:59Z"}}]}),
        ("release_date", {"tender": {"id": "t", "status": "planned", "documents": [
            {"id": "d", "datePublished": "2024-05-02T00:00:00Z"}]}}),
        ("release_date", {"tender": {"id": "t", "status": "active", "milestones": [
            {"id": "m", "dateMet": "2024-05-02T00:00:00Z"}]}}),
        ("contracts_status", {"contracts": [{**contract, "status": "pending", "implementation": {
            "transactions": [{"id": "t1", "date": "2024-04-01T00:00:00Z"}]}}]}),
        ("awards_status", {"awards": [{**award, "status": "pending"}],
                           "contracts": [contract]}),
    ]
    for check, body in faults:
        found = check_release(release("r1", "2024-05-01", "contract", **body))
        assert _checks(found) == {check}, (check, body, found)
    sound = release("r1", "2024-05-01", "contract", tender={"id": "t", "status": "complete"},
                    awards=[award], contracts=[{
                        **contract, "period": {"startDate": "2024-04-01T00:00:00Z",
                                               "endDate": "2026-03-31T23:59:59Z"},
                        "amendments": [{"id": "v", "date": "2024-04-30T00:00:00Z"}],
                        "implementation": {"transactions": [
                            {"id": "t1", "date": "2024-04-30T00:00:00Z"}]}}])
    assert check_release(sound) == []


def test_the_process_checks_find_ties_stray_amendments_and_states_later_put_right() -> None:
    tender = {"id": "t", "status": "active"}
    tied = [release("r1", "2024-01-01", "tender", tender=tender),
            release("r2", "2024-01-01", "tenderUpdate", tender=tender)]
    assert _checks(check_process("o", tied)) == {"release_order"}

    def amended(amends: str) -> list[dict[str, Any]]:
        return [release("r1", "2024-01-01", "contract", contracts=[{"id": "c", "awardID": "a"}]),
                release("r2", "2024-01-02", "contractAmendment", contracts=[{
                    "id": "c", "awardID": "a", "amendments": [{
                        "id": "v", "date": "2024-01-02T00:00:00Z", "amendsReleaseID": amends,
                        "releaseID": "r2"}]}])]

    assert check_process("o", amended("r1")) == []
    assert _checks(check_process("o", amended("r9"))) == {"amended_releases"}  # no such release
    assert _checks(check_process("o", amended("r2"))) == {"amended_releases"}  # not earlier

    # Awarded while the tender was active, completed a month later: wrong for that month,
    # though each release alone and the final compiled release are sound.
    later = [release("r1", "2024-01-01", "tender", tender=tender),
             release("r2", "2024-01-02", "award", awards=[{"id": "a", "status": "active"}]),
             release("r3", "2024-02-01", "tenderUpdate", tender={"id": "t", "status": "complete"})]
    assert [f.where for f in check_process("o", later)] == ["o as of release r2: tender/status"]


def test_packages_are_checked_for_publication_and_empty_fields() -> None:
    package = {"publishedDate": "2024-01-01T00:00:00Z",
               "releases": [release("r1", "2024-01-02", "planning", planning={"rationale": ""})]}
    assert _checks(check_release_package(package)) == {"published", "empty_field"}
    records = record_package([release("r1", "2024-01-02", "planning")],
                             uri="https://example.org/c", publisher=PUBLISHER,
                             published_date=datetime(2024, 1, 1, tzinfo=UTC))
    assert _checks(check_record_package(records)) == {"published"}


def test_release_dates_never_tie_within_a_process(
    events: list[EventEnvelope], releases: list[dict[str, Any]],
) -> None:
    """Releases merge in date order, so two of one process dated alike merge in an ambiguous
    order: one that would share its second with an earlier release of its process is dated a
    second after that one. Dates are whole seconds, so their text sorts as their time does."""
    by_id = {str(e.event_id): e for e in events}
    activations = [r for r in releases if by_id[r["id"]].type == "AgreementActivated"]
    assert [(by_id[r["id"]].occurred_at, r["date"]) for r in activations] == [
        (at("2024-03-28", 11), "2024-03-28T11:00:00Z"),
        (at("2024-04-01"), "2024-04-01T10:00:00Z"),
        (at("2024-04-01"), "2024-04-01T10:00:01Z"),  # the same instant, a second on
    ]
    dates = [r["date"] for r in releases]
    assert dates == sorted(dates)
    assert len(set(dates)) == len(dates)
    h = History()
    h.add(need_defined(), datetime(2024, 1, 8, 10, 0, 0, 250000, tzinfo=UTC))
    h.add(NeedClosed(need_id=NEED, reason="superseded"),
          datetime(2024, 1, 8, 10, 0, 0, 750000, tzinfo=UTC))
    assert [r["date"] for r in releases_for(h.envelopes, {})] == [
        "2024-01-08T10:00:00Z", "2024-01-08T10:00:01Z"]


def test_a_signature_is_a_release_of_its_own_dated_when_recorded(
    events: list[EventEnvelope], releases: list[dict[str, Any]],
) -> None:
    by_id = {str(e.event_id): e for e in events}
    signed = [r for r in releases if by_id[r["id"]].type == "AgreementSigned"]
    assert [r["tag"] for r in signed] == [["contractUpdate"]] * 3
    grant, calloff, contract = (r["contracts"][0] for r in signed)
    assert grant == {
        "id": str(AG_GRANT), "awardID": "aw-grant", "dateSigned": "2024-03-25T00:00:00Z",
        "documents": [{"id": "signatures", "title": "Signatures",
                       "description": "Signed on 2024-03-25 by Leeds City Council and "
                                      "Hillside Community Kitchen.",
                       "datePublished": "2024-03-25T10:00:00Z"}]}
    # Signed on the 26th, recorded on the 27th: the release is dated when it was reported.
    assert (calloff["dateSigned"], signed[1]["date"]) == ("2024-03-26T00:00:00Z",
                                                           "2024-03-27T10:00:00Z")
    assert "FitTeens CIC and Northern Leisure Ltd" in contract["documents"][0]["description"]


def test_a_contract_is_pending_then_active_then_terminated(
    events: list[EventEnvelope], releases: list[dict[str, Any]],
) -> None:
    by_id = {str(e.event_id): e for e in events}
    seen = [(by_id[r["id"]].type, c.get("status"), c.get("dateSigned"))
            for r in releases for c in r.get("contracts", []) if c["id"] == str(AG_CONTRACT)]
    assert [s for s in seen if s[0] != "SpendRecorded"] == [
        ("AgreementDrafted", "pending", None),
        ("AgreementSigned", None, "2024-03-27T00:00:00Z"),  # signed, not yet in force
        ("AgreementActivated", "active", None),
        ("AgreementEnded", "terminated", None),
    ]


def test_awards_are_dated_by_the_decision_and_complete_the_tender(
    events: list[EventEnvelope], releases: list[dict[str, Any]],
) -> None:
    by_id = {str(e.event_id): e for e in events}
    (decided,) = [r for r in releases if by_id[r["id"]].type == "CommissioningDecided"]
    assert decided["tag"] == ["award", "tenderUpdate"]
    assert decided["tender"] == {"id": OCID, "status": "complete"}
    assert {a["date"] for a in decided["awards"]} == {"2024-03-04T00:00:00Z"}  # decided_on


def test_a_decision_and_agreement_from_before_their_dates_were_recorded() -> None:
    """Decisions recorded before `decided_on` existed are dated the day of their event;
    agreements brought into force before signatures were recorded have no dateSigned."""
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(CommissioningDecided(need_id=NEED, decision_id="d", awards=[
        Award(award_id="aw", title="t", arrangement_type=ArrangementType.GRANT,
              provider_ids=[KITCHEN], allocation=D("10.00"))], rationale="r",
        decision_maker="m"), at("2024-01-09", 15))
    h.add(drafted(AG_GRANT, "aw", "t", ArrangementType.GRANT, [(KITCHEN, "10.00")]),
          at("2024-01-10"))
    h.add(AgreementActivated(agreement_id=AG_GRANT, activated_on=date(2024, 4, 1)),
          at("2024-04-01"))
    releases = releases_for(h.envelopes, NAMES)
    compiled = compiled_record(releases)["compiledRelease"]
    assert compiled["awards"][0]["date"] == "2024-01-09T00:00:00Z"
    (contract,) = compiled["contracts"]
    assert contract["status"] == "active"
    assert "dateSigned" not in contract
    package = release_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert check_release_package(package) == []


def test_an_agreement_without_an_award_completes_the_tender() -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(AgreementDrafted(
        agreement_id=AG_GRANT, need_id=NEED, title="Emergency cover",
        arrangement_type=ArrangementType.INFORMAL_SLA,
        parties=[Party(provider_id=KITCHEN, allocation=D("5000.00"))],
        starts_on=date(2024, 2, 1), ends_on=date(2024, 3, 31), budget=D("5000.00"),
        exit_plan="ends with the term"), at("2024-01-20"))
    releases = releases_for(h.envelopes, NAMES)
    assert releases[1]["tag"] == ["award", "contract", "tender"]
    assert releases[1]["tender"] == {"id": OCID, "status": "complete"}
    assert releases[1]["awards"][0]["date"] == "2024-01-20T00:00:00Z"
    package = release_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert check_release_package(package) == []


def test_a_need_closed_without_award_after_engaging_the_market_is_unsuccessful() -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(MarketEngaged(need_id=NEED, summary="one event", engaged_on=date(2024, 1, 20),
                        provider_ids=[KITCHEN]), at("2024-01-22"))
    h.add(NeedClosed(need_id=NEED, reason="no provider could meet the need"),
          at("2024-02-01"))
    closed = releases_for(h.envelopes, NAMES)[-1]
    assert closed["tag"] == ["tenderUpdate"]
    assert closed["tender"]["status"] == "unsuccessful"
    assert "documentType" not in closed["tender"]["documents"][0]


def test_a_scope_only_variation_and_an_extension_on_override_say_so() -> None:
    h = History()
    h.add(need_defined(), at("2024-01-08"))
    h.add(CommissioningDecided(need_id=NEED, decision_id="d", awards=[
        Award(award_id="aw", title="t", arrangement_type=ArrangementType.GRANT,
              provider_ids=[KITCHEN], allocation=D("10.00"))], rationale="r",
        decision_maker="m", decided_on=date(2024, 1, 9)), at("2024-01-09"))
    h.add(drafted(AG_GRANT, "aw", "t", ArrangementType.GRANT, [(KITCHEN, "10.00")]),
          at("2024-01-10"))
    h.add(AgreementSigned(agreement_id=AG_GRANT, signed_on=date(2024, 1, 12),
                          signatories=[LEAD]), at("2024-01-12"))
    h.add(AgreementActivated(agreement_id=AG_GRANT, activated_on=date(2024, 4, 1)),
          at("2024-04-01"))
    h.add(AgreementVaried(agreement_id=AG_GRANT, variation_id="v", kind=VariationKind.SCOPE_CHANGE,
                          budget_change=D("0.00"), new_budget=D("10.00"), scope="Saturdays",
                          reason="asked for"), at("2024-05-01"))
    h.add(AgreementExtended(agreement_id=AG_GRANT, extension_id="x",
                            previous_end=date(2026, 3, 31), new_end=date(2026, 6, 30),
                            justification="bridging", performance_evidence="monthly reports",
                            override_reason="no measure for this service yet.",
                            override_approved_by="commissioner:sam"), at("2024-06-03"))
    releases = releases_for(h.envelopes, NAMES)
    varied, extended = (r["contracts"][0]["amendments"][0]["description"] for r in releases[-2:])
    assert varied == "Scope change: the budget stays £10.00. Scope: Saturdays."
    assert extended.endswith("No performance data was held yet: extended by an override "
                             "approved under the scheme of delegation. Why: no measure for "
                             "this service yet.")
    assert "commissioner:sam" not in extended
    assert releases[3]["contracts"][0]["documents"][0]["description"] == \
        "Signed on 2024-01-12 by Leeds City Council."
    package = release_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert check_release_package(package) == []


def test_an_envelope_raise_updates_the_planning_budget(
    events: list[EventEnvelope], releases: list[dict[str, Any]], compiled: dict[str, Any],
) -> None:
    by_id = {str(e.event_id): e for e in events}
    (raised,) = [r for r in releases if by_id[r["id"]].type == "BudgetEnvelopeRaised"]
    assert raised["tag"] == ["planningUpdate"]
    assert "tender" not in raised  # the tender was valued when it was awarded
    budget = raised["planning"]["budget"]
    # £300,000.00 + £10,000.00 raised + £100,000.00 + £50,000.00 pooled = £460,000.00
    assert budget["amount"] == {"amount": 460000.0, "currency": "GBP"}
    assert budget["description"] == (
        "Leeds City Council's budget envelope of £310,000.00 (£300,000.00 raised by "
        "£10,000.00: holiday demand), pooled with contributions from NHS West Yorkshire ICB "
        "(£100,000.00), West Yorkshire Police (£50,000.00): £460,000.00 in all.")
    assert compiled["planning"]["budget"]["amount"]["amount"] == 460000.0
    assert compiled["tender"]["value"]["amount"] == 450000.0


# --------------------------------------------------------------------------- merge rules


def release(rid: str, day: str, tag: str, **body: Any) -> dict[str, Any]:
    return {"ocid": "ocds-test01-1", "id": rid, "date": f"{day}T00:00:00Z", "tag": [tag],
            "initiationType": "tender", **body}


def test_arrays_of_objects_merge_by_id_and_later_values_win() -> None:
    releases = [
        release("r1", "2024-01-01", "award", awards=[
            {"id": "a1", "status": "pending", "value": {"amount": 10, "currency": "GBP"}},
            {"id": "a2", "status": "pending"}]),
        release("r2", "2024-01-02", "awardUpdate", awards=[
            {"id": "a2", "status": "active", "title": "second"},
            {"id": "a3", "status": "active"}]),
        release("r3", "2024-01-03", "contract", contracts=[
            {"id": "c1", "awardID": "a1", "value": {"amount": 10, "currency": "GBP"},
             "implementation": {"transactions": [{"id": "t1"}]}}]),
        release("r4", "2024-01-04", "implementation", contracts=[
            {"id": "c1", "awardID": "a1", "value": {"amount": 12},
             "implementation": {"transactions": [{"id": "t2"}, {"id": "t1", "uri": None}]}}]),
    ]
    compiled = compiled_record(releases)["compiledRelease"]
    assert compiled["awards"] == [
        {"id": "a1", "status": "pending", "value": {"amount": 10, "currency": "GBP"}},
        {"id": "a2", "status": "active", "title": "second"},
        {"id": "a3", "status": "active"},
    ]
    (contract,) = compiled["contracts"]
    assert contract["value"] == {"amount": 12, "currency": "GBP"}  # objects merge field-wise
    assert [t["id"] for t in contract["implementation"]["transactions"]] == ["t1", "t2"]


def test_nulls_remove_fields_and_other_arrays_are_replaced_whole() -> None:
    releases = [
        release("r1", "2024-01-01", "planning",
                parties=[{"id": "p1", "name": "A", "roles": ["buyer"],
                          "additionalIdentifiers": [{"scheme": "X", "id": "1"}]}],
                tender={"id": "t", "title": "T", "submissionMethod": ["electronicSubmission"]}),
        release("r2", "2024-01-02", "tender",
                parties=[{"id": "p1", "roles": ["buyer", "payer"],
                          "additionalIdentifiers": [{"scheme": "Y", "id": "2"}]}],
                tender={"id": "t", "title": None, "submissionMethod": ["written"]}),
    ]
    compiled = compiled_record(releases)["compiledRelease"]
    assert compiled["parties"] == [{"id": "p1", "name": "A", "roles": ["buyer", "payer"],
                                    "additionalIdentifiers": [{"scheme": "Y", "id": "2"}]}]
    assert compiled["tender"] == {"id": "t", "submissionMethod": ["written"]}


def test_releases_merge_in_date_order_and_release_fields_are_not_merged() -> None:
    later = release("r2", "2024-02-01", "tenderUpdate", tender={"id": "t", "status": "active"})
    earlier = release("r1", "2024-01-01", "tender", tender={"id": "t", "status": "planned"})
    record = compiled_record([later, earlier])
    compiled = record["compiledRelease"]
    assert compiled["tender"]["status"] == "active"
    assert compiled["id"] == "ocds-test01-1-2024-02-01T00:00:00Z"
    assert compiled["date"] == "2024-02-01T00:00:00Z"
    assert compiled["tag"] == ["compiled"]
    assert [r["id"] for r in record["releases"]] == ["r1", "r2"]  # oldest first
    assert record["releases"][0] is not earlier  # a copy: the record owns its releases


def test_a_record_is_one_process() -> None:
    with pytest.raises(ValueError, match="one process"):
        compiled_record([release("r1", "2024-01-01", "tender"),
                         {**release("r2", "2024-01-02", "tender"), "ocid": "ocds-test01-2"}])
    with pytest.raises(ValueError, match="at least one"):
        compiled_record([])


def test_record_packages_hold_one_record_per_need_in_order_of_appearance() -> None:
    other = UUID("6a1f4c1e-0b7d-4c2a-9d55-3f0e8a2b7c02")
    h = History()
    h.add(need_defined(other, lead="Wakefield Council"), at("2024-01-01"))
    envelopes = [*h.envelopes, *commission()]
    releases = releases_for(envelopes, NAMES)
    package = record_package(releases, uri="https://example.org/r", publisher=PUBLISHER)
    assert [r["ocid"] for r in package["records"]] == [ocid_for(other), OCID]
    assert [len(r["releases"]) for r in package["records"]] == [1, MAPPED]
    wakefield = package["records"][0]["compiledRelease"]
    assert wakefield["buyer"]["name"] == "Wakefield Council"
    assert "contracts" not in wakefield


# --------------------------------------------------------------------------- determinism


def test_the_same_events_give_the_same_bytes_in_any_order_and_with_duplicates(
    events: list[EventEnvelope],
) -> None:
    def export(given: list[EventEnvelope]) -> bytes:
        releases = releases_for(given, NAMES)
        return canonical_json({
            "releases": release_package(releases, uri="https://example.org/r",
                                        publisher=PUBLISHER),
            "records": record_package(releases, uri="https://example.org/c",
                                      publisher=PUBLISHER),
        })

    first = export(events)
    assert export(commission()) == first
    shuffled = list(events)
    random.Random(4).shuffle(shuffled)
    assert export(shuffled) == first
    assert export(events + events[5:12]) == first  # the log delivers at least once
    # Canonical bytes aside, plain json.dumps of a fresh export is stable too.
    assert json.dumps(releases_for(events, NAMES)) == json.dumps(releases_for(shuffled, NAMES))


def test_each_stream_keeps_its_own_order_when_business_times_tie() -> None:
    """Historic records loaded in one business instant: a need's agreement still follows it."""
    h = History()
    same = at("2024-01-08")
    h.add(need_defined(), same)
    h.add(CommissioningDecided(need_id=NEED, decision_id="d", awards=[
        Award(award_id="aw", title="t", arrangement_type=ArrangementType.GRANT,
              provider_ids=[KITCHEN], allocation=D("10.00"))], rationale="r",
        decision_maker="m"), same)
    h.add(drafted(AG_GRANT, "aw", "t", ArrangementType.GRANT, [(KITCHEN, "10.00")]), same)
    h.add(AgreementActivated(agreement_id=AG_GRANT, activated_on=date(2024, 1, 8)), same)
    tags = [r["tag"] for r in releases_for(list(reversed(h.envelopes)), NAMES)]
    # The tender first released with its award (no options appraised in this history).
    assert tags == [["planning"], ["award", "tender"], ["contract"], ["contractUpdate"]]


def test_the_ocid_prefix_is_configurable_and_names_fall_back(
    events: list[EventEnvelope],
) -> None:
    releases = releases_for(events, {KITCHEN: "Hillside Community Kitchen"},
                            ocid_prefix="ocds-abc123")
    assert {r["ocid"] for r in releases} == {f"ocds-abc123-{NEED}"}
    names = {p["id"]: p["name"] for r in releases for p in r.get("parties", [])}
    assert names[f"provider-{KITCHEN}"] == "Hillside Community Kitchen"
    assert names[f"provider-{SPORT}"] == f"Provider {SPORT}"


def test_known_identifiers_go_on_the_party(events: list[EventEnvelope]) -> None:
    releases = releases_for(events, NAMES, provider_identifiers={
        KITCHEN: [("GB-CHC", "1123456"), ("GB-COH", "07654321")]})
    kitchen = next(p for r in releases for p in r.get("parties", [])
                   if p["id"] == f"provider-{KITCHEN}")
    assert kitchen["identifier"] == {"scheme": "GB-CHC", "id": "1123456",
                                     "legalName": "Hillside Community Kitchen"}
    assert kitchen["additionalIdentifiers"] == [{"scheme": "GB-COH", "id": "07654321"}]


def test_other_services_events_and_unknown_needs_are_passed_over(
    events: list[EventEnvelope],
) -> None:
    stranger = events[1].model_copy(update={"source": "outcomes"})
    orphan = History()
    orphan.add(NeedClosed(need_id=UUID(int=7), reason="never defined"), at("2024-01-01"))
    releases = releases_for([stranger, *orphan.envelopes], NAMES)
    assert releases == []
    assert provider_ids_in(events) == sorted(NAMES, key=str)


# --------------------------------------------------------------------------- the HTTP API


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        yield client


@pytest.fixture
def auth(settings: Settings) -> Iterator[Callable[[Role], dict[str, str]]]:
    tokens = TokenStore(open_database(settings, "identity"))

    def make(role: Role) -> dict[str, str]:
        provider_id = KITCHEN if role is Role.PROVIDER else None
        issued = tokens.create(role, f"{role.value}-user", provider_id)
        return {"Authorization": f"Bearer {issued.token}"}

    try:
        yield make
    finally:
        tokens.db.close()


def registered(provider_id: UUID, name: str) -> EventEnvelope:
    data = ProviderRegistered(provider_id=provider_id, name=name,
                              organisation_type=OrganisationType.VCSE)
    return EventEnvelope(
        event_id=event_id_for("provider_registry", str(provider_id), 1),
        type="ProviderRegistered", schema_version=1, source="provider_registry",
        stream_id=str(provider_id), stream_position=1, occurred_at=at("2023-11-01"),
        recorded_at=at("2023-11-01"), data=data.model_dump(mode="json"))


@pytest.fixture
def published(client: TestClient, events: list[EventEnvelope]) -> Runtime:
    """The commission on the shared log, with the providers in the network projection and its
    events in the OCDS read model."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    runtime.event_log.append([registered(p, name) for p, name in NAMES.items()])
    runtime.event_log.append(events)
    deadline = time.monotonic() + DEADLINE_SECONDS
    ocds = runtime.runner("integrator.ocds")
    ends = runtime.event_log.end_position(ocds.topics) or {}
    while any(get_provider(runtime.views, p) is None for p in NAMES) or any(
            ocds.position().get(key, 0) < end for key, end in ends.items()):
        if time.monotonic() > deadline:
            pytest.fail("the network and OCDS read models did not take in the events")
        time.sleep(0.02)
    return runtime


def test_the_api_publishes_valid_release_and_record_packages(
    client: TestClient, published: Runtime, auth: Callable[[Role], dict[str, str]],
    validators: dict[str, Draft4Validator], releases: list[dict[str, Any]],
) -> None:
    headers = auth(Role.COUNCIL_STAFF)

    got = client.get("/ocds/releases", headers=headers)
    assert got.status_code == 200, got.text
    package = got.json()
    assert problems(validators["release-package"], package) == []
    assert package["uri"] == "http://testserver/ocds/releases"
    assert package["publisher"] == {"name": "Council Integrator"}
    assert package["releases"] == releases  # names from the network projection

    mine = client.get("/ocds/releases", params={"need_id": str(NEED)}, headers=headers).json()
    assert [r["id"] for r in mine["releases"]] == [r["id"] for r in releases]

    records = client.get("/ocds/records", headers=headers)
    assert records.status_code == 200, records.text
    assert problems(validators["record-package"], records.json()) == []
    assert records.json()["packages"] == [f"http://testserver/ocds/releases?need_id={NEED}"]
    (record,) = records.json()["records"]
    assert record == compiled_record(releases)

    one = client.get(f"/ocds/records/{NEED}", headers=auth(Role.COUNCIL_STAFF))
    assert one.status_code == 200, one.text
    assert problems(validators["record-package"], one.json()) == []
    assert one.json()["records"] == [record]
    assert one.json()["packages"] == [f"http://testserver/ocds/releases?need_id={NEED}"]
    assert one.content == client.get(f"/ocds/records/{NEED}", headers=headers).content


def test_the_api_is_open_to_anyone_and_names_unknown_needs(
    client: TestClient, published: Runtime, auth: Callable[[Role], dict[str, str]],
) -> None:
    for path in ("/ocds/releases", "/ocds/records", f"/ocds/records/{NEED}"):
        assert client.get(path).status_code == 200  # publication is public: no token
        for role in (Role.PROVIDER, Role.REGULATOR, Role.COUNCIL_STAFF):
            assert client.get(path, headers=auth(role)).status_code == 200
    unknown = UUID(int=42)
    headers = auth(Role.COMMISSIONER)
    missing = client.get(f"/ocds/records/{unknown}", headers=headers)
    assert missing.status_code == 404
    assert str(unknown) in missing.json()["detail"]
    assert client.get("/ocds/releases", params={"need_id": str(unknown)},
                      headers=headers).status_code == 404
    assert client.get("/ocds/records/not-a-uuid", headers=headers).status_code == 422


def test_the_api_takes_the_ocid_prefix_and_publisher_from_the_environment(
    client: TestClient, published: Runtime, auth: Callable[[Role], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COUNCIL_OCDS_OCID_PREFIX", "ocds-lds001")
    monkeypatch.setenv("COUNCIL_OCDS_PUBLISHER_NAME", "Leeds City Council")
    monkeypatch.setenv("COUNCIL_OCDS_LICENSE",
                       "https://www.nationalarchives.gov.uk/doc/open-government-licence/")
    package = client.get("/ocds/releases", headers=auth(Role.COUNCIL_STAFF)).json()
    assert {r["ocid"] for r in package["releases"]} == {f"ocds-lds001-{NEED}"}
    assert package["publisher"] == {"name": "Leeds City Council"}
    assert package["license"].startswith("https://www.nationalarchives.gov.uk/")


def test_with_nothing_commissioned_the_packages_are_empty_and_dated_now(
    client: TestClient, auth: Callable[[Role], dict[str, str]],
) -> None:
    """OCDS packages want at least one release or record; with none there is nothing to say,
    so the package is empty (and so not valid OCDS) rather than an error."""
    before = datetime.now(UTC).replace(microsecond=0)
    for path, key in (("/ocds/releases", "releases"), ("/ocds/records", "records")):
        got = client.get(path, headers=auth(Role.COUNCIL_STAFF))
        assert got.status_code == 200, got.text
        assert got.json()[key] == []
        published = datetime.fromisoformat(got.json()["publishedDate"].replace("Z", "+00:00"))
        assert published >= before
