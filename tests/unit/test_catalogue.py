"""The event catalogue and the AsyncAPI document generated from it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from council.kernel import asyncapi
from council.kernel.contracts import EventSpec, all_specs, spec_for
from council.kernel.envelope import EventEnvelope, event_id_for
from council.platform.eventlog.port import EventLog

DOCUMENT_URI = "urn:council-integrator:asyncapi"
COMMITTED = Path(asyncapi.__file__).with_name("asyncapi.json")

# Hand-written valid data for every event type in the catalogue. A new event type needs an
# example here (test_every_event_type_has_an_example says so).
# Every field is given (optional ones too), so each example is its model's own JSON form.
PROVIDER = "0b6a7c1e-2f4d-4e8a-9c3b-5d7e9f1a2b3c"
MEMBERS = ["3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"]
NEED = "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a"
AGREEMENT = "6c5b4a3f-2e1d-4c0b-9a8f-7e6d5c4b3a29"
MEASURE = "7e1d2c3b-4a5f-4687-9a8b-0c1d2e3f4a5b"
DELIVERY = "4b3a2f1e-0d9c-4b8a-9f7e-6d5c4b3a2f1e"
TERMS = "8d7c6b5a-4f3e-5d2c-9b1a-0f9e8d7c6b5a"
EXAMPLES: dict[str, dict[str, Any]] = {
    "AuditCheckpointSigned": {
        "chain": "provider_registry",
        "count": 2066,
        "hash": "f118303705daea020c7a74f7474f5a58b7ad841f82035f334d71cd03b624a1a7",
        "signed_at": "2026-10-14T18:03:03.979529+00:00",
        "key_id": "99f9aabc7fb25750",
        "signature": "k3xG0p1v2Q==",
    },
    "ProviderRegistered": {
        "provider_id": PROVIDER,
        "name": "Hillside Community Kitchen",
        "organisation_type": "sme",
        "description": "Hot meals delivered to older people at home",
        "website": "https://hillside.example",
        "identifiers": {"companies_house": "SC123456", "charity_number": None, "ukprn": None},
        "contact": {"name": "Ana Patel", "email": "ana@hillside.example", "phone": "0113 496 0000"},
        "address": {"lines": ["1 Mill Lane"], "town": "Leeds", "county": "West Yorkshire",
                    "postcode": "LS1 4AP"},
        "areas_served": ["Hillside", "Riverside"],
        "sme_size": {"headcount": 12, "turnover_gbp": 900000, "band": "small"},
        "members": [],
    },
    "ProviderReviewStarted": {"provider_id": PROVIDER, "reason": "application complete"},
    "ProviderApproved": {
        "provider_id": PROVIDER, "reason": "checks passed", "credentials_id": "a1b2c3d4e5f6",
    },
    "ProviderRejected": {"provider_id": PROVIDER, "reason": "no safeguarding policy"},
    "ProviderSuspended": {
        "provider_id": PROVIDER, "reason": "insurance lapsed",
        "revoked_credentials_id": "a1b2c3d4e5f6",
    },
    "ProviderReinstated": {
        "provider_id": PROVIDER, "reason": "insurance renewed", "credentials_id": "0f9e8d7c6b5a",
    },
    "ProviderExited": {
        "provider_id": PROVIDER, "reason": "closed down", "revoked_credentials_id": None,
    },
    "ProviderDetailsUpdated": {
        "provider_id": PROVIDER,
        "changes": {
            "name": "Hillside Kitchen Partnership", "description": None, "website": None,
            "identifiers": None, "contact": None, "address": None, "areas_served": None,
            "sme_size": None, "members": MEMBERS,
        },
    },
    "ProviderCapabilityAdded": {
        "provider_id": PROVIDER,
        "capability_id": "c0ffee000001",
        "category": "home-care",
        "description": "Personal care visits, 7am to 10pm",
        "areas": ["Hillside"],
        "capacity": {"amount": 400, "unit": "hours of care per week"},
    },
    "ProviderCapabilityRemoved": {
        "provider_id": PROVIDER, "capability_id": "c0ffee000001", "reason": "no longer offered",
    },
    "AccreditationAdded": {
        "provider_id": PROVIDER,
        "accreditation_id": "acc000000001",
        "kind": "insurance",
        "name": "Public liability insurance",
        "issuer": "Mutual Insurers Ltd",
        "reference": "PL-2024-17",
        "valid_from": "2024-04-01",
        "expires_on": "2025-03-31",
        "cover_gbp": 5000000,
    },
    "AccreditationRemoved": {
        "provider_id": PROVIDER, "accreditation_id": "acc000000001", "reason": "recorded in error",
    },
    "QualityRatingRecorded": {
        "provider_id": PROVIDER,
        "rating_id": "rat000000001",
        "scheme": "CQC",
        "rating": "Good",
        "rated_on": "2024-03-01",
        "reference": "1-123456789",
    },
    "ConflictOfInterestDeclared": {
        "provider_id": PROVIDER,
        "declaration_id": "dec000000001",
        "declared_by": "Cllr J. Smith",
        "interest": "Trustee of the applicant charity",
        "declared_on": "2024-02-14",
    },
    "IncubationStarted": {
        "provider_id": PROVIDER,
        "support_plan": "Mentoring and a small start-up grant",
        "milestones": [
            {"milestone_id": "ms0000000001", "title": "Safeguarding policy adopted",
             "due_on": "2024-09-30"},
            {"milestone_id": "ms0000000002", "title": "First 50 meals delivered", "due_on": None},
        ],
        "reason": "a new community provider the market needs",
    },
    "IncubationMilestoneMet": {
        "provider_id": PROVIDER, "milestone_id": "ms0000000001", "evidence": "policy v1 attached",
    },
    "ProviderGraduated": {
        "provider_id": PROVIDER, "reason": "all milestones met", "credentials_id": "a1b2c3d4e5f6",
    },
    "ProviderCredentialsRotated": {
        "provider_id": PROVIDER, "credentials_id": "0f9e8d7c6b5a",
        "revoked_credentials_id": "a1b2c3d4e5f6",
    },
    # outcomes: the outcome framework, delivery reports and payment by results
    "OutcomeMeasureDefined": {
        "measure_id": MEASURE,
        "name": "Teenage obesity rate",
        "unit": "percent",
        "direction": "lower_is_better",
        "description": "Share of 13 to 17 year olds living with obesity",
        "baseline": "21.0",
        "baseline_period": "2025-Q4",
        "trajectory": [{"period": "2026-Q1", "target": "20.5"},
                       {"period": "2026-Q2", "target": "20.0"}],
        "data_source": "National Child Measurement Programme",
        "geography": "Northshire (upper-tier LA)",
    },
    "MeasurementRecorded": {
        "measure_id": MEASURE, "measurement_id": "a1b2c3d4e5f6", "period": "2026-Q1",
        "value": "20.3", "source": "NCMP 2025/26 final", "revises": "0f9e8d7c6b5a",
        "note": "provisional figure revised",
    },
    "DeliveryReported": {
        "delivery_id": DELIVERY,
        "agreement_id": AGREEMENT,
        "provider_id": PROVIDER,
        "activity_type": "sessions_delivered",
        "quantity": "12",
        "unit": "sessions",
        "period_start": "2026-04-01",
        "period_end": "2026-04-30",
        "location": "Hillside community centre",
        "idempotency_key": "hillside-2026-04-sessions",
        "corrects": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
        "channel": "http",
        "service_users": [{
            "subject_id": "0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
            "key_id": "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098",
            "alg": "A256GCM",
            "nonce": "q83vEjRWeJCrze8S",
            "ciphertext": "3q2+7wAAAAAAAAAAAAAAAA8Gf9sZb4wqR1l3uXx0yq8=",
        }],
    },
    "OutcomeAttributed": {
        "terms_id": TERMS, "agreement_id": AGREEMENT, "measure_id": MEASURE, "weight": "0.6",
    },
    "RateCardAgreed": {
        "terms_id": TERMS,
        "agreement_id": AGREEMENT,
        "periodicity": "quarterly",
        "delivery_rates": [{"activity_type": "sessions_delivered", "rate": "25.00",
                            "threshold": "40", "cap": "1500.00"}],
        "outcome_rates": [{"measure_id": MEASURE, "rate": "10000.00", "threshold": "0.2",
                           "cap": None}],
        "bands": [{"min_pct": "110", "max_pct": None, "adjustment": "2000.00",
                   "label": "target exceeded"},
                  {"min_pct": "0", "max_pct": "80", "adjustment": "-3000.00",
                   "label": "below 80% of target"}],
        "provider_risk_pct": "40",
        "period_cap": "12000.00",
    },
    "PaymentCalculated": {
        "terms_id": TERMS,
        "agreement_id": AGREEMENT,
        "period": "2026-Q1",
        "calculation_id": "c0ffee000002",
        "lines": [{"description": "Delivery: sessions_delivered",
                   "basis": "52 units x £25.00", "amount": "1300.00"}],
        "total": "1300.00",
        "achievement_pct": "70.0",
    },
    "PaymentRecalculated": {
        "terms_id": TERMS,
        "agreement_id": AGREEMENT,
        "period": "2026-Q1",
        "calculation_id": "c0ffee000003",
        "lines": [{"description": "Delivery: sessions_delivered",
                   "basis": "48 units x £25.00", "amount": "1200.00"}],
        "total": "1200.00",
        "achievement_pct": None,
        "previous_total": "1300.00",
        "difference": "-100.00",
        "reason": "delivery correction",
    },
    "DataSubjectErased": {
        "erasure_id": "2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901",
        "subject_id": "0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d",
        "legal_basis": "consent_withdrawn",
        "reason": "DSR-2026-0042: consent withdrawn by letter",
        "requested_on": "2026-05-02",
    },
    # integrator: commissioning needs, agreements and lessons
    "NeedDefined": {
        "need_id": NEED,
        "title": "Healthy weight for teenagers",
        "service_area": "weight-management",
        "population": {"description": "Young people aged 13 to 17 in Northshire", "size": 42000,
                       "areas": ["Eastmoor", "Brookfield"]},
        "outcomes": [
            {"outcome_id": "oc0000000001", "description": "Fewer teenagers living with obesity",
             "measure_id": MEASURE, "target": "from 21% to 17%", "target_date": "2027-03-31"},
        ],
        "outputs": ["1,200 family sessions a year"],
        "budget_envelope": "750000.00",
        "starts_on": "2026-04-01",
        "ends_on": "2029-03-31",
        "lead_organisation": "Northshire County Council",
    },
    "NeedContributionPledged": {
        "need_id": NEED, "contribution_id": "con000000001", "partner": "Northshire ICB",
        "amount": "250000.00", "note": "public health grant",
    },
    "OptionsAppraised": {
        "need_id": NEED,
        "options": [
            {"option": "in_house", "description": "Council leisure team", "estimated_cost": None,
             "score": 40, "benefits": None, "risks": "no community reach"},
            {"option": "mixed", "description": "VCSE grants and a formal contract",
             "estimated_cost": "900000.00", "score": 80, "benefits": "local reach",
             "risks": "co-ordination"},
        ],
        "recommended": "mixed",
        "rationale": "the mix reaches families the council does not",
    },
    "MarketEngaged": {
        "need_id": NEED, "summary": "Provider day with 14 organisations",
        "engaged_on": "2026-05-12", "provider_ids": [PROVIDER],
    },
    "CommissioningDecided": {
        "need_id": NEED,
        "decision_id": "dec0000000a1",
        "awards": [
            {"award_id": "awd000000001", "title": "Family cooking sessions",
             "arrangement_type": "grant", "provider_ids": [PROVIDER], "allocation": "300000.00"},
            {"award_id": "awd000000002", "title": "Activity programme",
             "arrangement_type": "formal_contract", "provider_ids": MEMBERS,
             "allocation": "600000.00"},
        ],
        "rationale": "best value for the outcomes sought",
        "decision_maker": "Cabinet Member for Public Health",
        "decided_on": "2026-06-02",
    },
    "BudgetEnvelopeRaised": {
        "need_id": NEED, "raise_id": "rai000000001", "amount": "30000.00",
        "new_envelope": "780000.00", "reason": "Cabinet top-up for winter pressures",
        "decided_by": "integrator_admin:Sam Okafor",
    },
    "CommitmentVaried": {
        "need_id": NEED, "agreement_id": AGREEMENT, "variation_id": "var000000001",
        "budget_change": "-25000.50", "committed": "874999.50", "business_case_id": None,
    },
    "SchemeOfDelegationAdopted": {
        "scheme_id": "9c7e3b1a-52d4-5f60-8a71-0b2c3d4e5f60",
        "council": "Northshire County Council",
    },
    "DelegationLimitsSet": {
        "scheme_id": "9c7e3b1a-52d4-5f60-8a71-0b2c3d4e5f60",
        "limits": [{"role": "commissioner", "kind": "variation", "up_to": "50000.00"},
                   {"role": "integrator_admin", "kind": "variation", "up_to": None}],
        "set_on": "2024-04-01",
        "reason": "Financial regulations 2024, part 4",
    },
    "NeedStageReached": {"need_id": NEED, "stage": "mobilisation", "notes": "kick-off held"},
    "NeedClosed": {"need_id": NEED, "reason": "superseded by the 2029 commission"},
    "AgreementDrafted": {
        "agreement_id": AGREEMENT,
        "need_id": NEED,
        "decision_id": "dec0000000a1",
        "award_id": "awd000000002",
        "title": "Activity programme",
        "arrangement_type": "formal_contract",
        "parties": [
            {"provider_id": MEMBERS[0], "allocation": "400000.00"},
            {"provider_id": MEMBERS[1], "allocation": "200000.00"},
        ],
        "starts_on": "2026-07-01",
        "ends_on": "2029-03-31",
        "budget": "600000.00",
        "outcomes": [{"outcome_id": "oc0000000001", "measure_id": MEASURE, "target": "17%"}],
        "reward_terms": {"payment_by_results_share_pct": "10", "bonus_max": "20000.00",
                         "penalty_max": "15000.00", "notes": "paid quarterly on the measure",
                         "payment_frequency": "quarterly"},
        "risk_share": {"council_pct": "60", "provider_pct": "40", "notes": None},
        "break_clauses": ["either party on six months' notice after year one"],
        "exit_plan": "hand sessions to the community leisure trust",
    },
    "AgreementSigned": {
        "agreement_id": AGREEMENT, "signed_on": "2026-06-20",
        "signatories": ["Jo Patel for Northshire County Council",
                        "Amir Khan for Hillside Kitchen CIC"],
    },
    "AgreementActivated": {"agreement_id": AGREEMENT, "activated_on": "2026-07-01"},
    "AgreementVaried": {
        "agreement_id": AGREEMENT, "variation_id": "var000000001", "kind": "growth",
        "budget_change": "-25000.50", "new_budget": "574999.50", "scope": "two more schools",
        "reason": "demand higher than forecast", "business_case_id": None,
    },
    "AgreementExtended": {
        "agreement_id": AGREEMENT, "extension_id": "ext000000001",
        "previous_end": "2029-03-31", "new_end": "2030-03-31",
        "justification": "outcomes ahead of trajectory",
        "performance_evidence": "obesity rate 18.2% against 19% planned",
        "performance_data": "RAG green in 2026-Q2 (achievement 104.0% of target)",
        "override_reason": None,
        "override_approved_by": None,
    },
    "AgreementEnded": {
        "agreement_id": AGREEMENT, "how": "exited", "ended_on": "2030-03-31",
        "reason": "service moved to the leisure trust", "exit_plan_executed": True,
        "exit_notes": "staff and kit transferred",
    },
    "BusinessCaseProposed": {
        "agreement_id": AGREEMENT, "business_case_id": "bc0000000001",
        "need": "sessions for the new estate", "expected_outcomes": "200 more families reached",
        "cost": "45000.00", "proposed_by": "commissioner:Jo Patel",
    },
    "BusinessCaseApproved": {
        "agreement_id": AGREEMENT, "business_case_id": "bc0000000001",
        "reason": "need and outcomes agreed", "approved_by": "integrator_admin:Lee Morgan",
    },
    "BusinessCaseRejected": {
        "agreement_id": AGREEMENT, "business_case_id": "bc0000000001",
        "reason": "already covered by another agreement",
    },
    "SpendRecorded": {
        "agreement_id": AGREEMENT, "spend_id": "sp0000000001", "provider_id": MEMBERS[0],
        "amount": "33333.33", "period": "2026-09", "reference": "INV-0042",
        "due_id": "c0ffee000001",
    },
    "ResultsPaymentDue": {
        "agreement_id": AGREEMENT, "due_id": "c0ffee000001", "calculation_id": "c0ffee000001",
        "terms_id": "3e6a8b1c-2d4f-4a6b-9c8d-7e5f4a3b2c10", "period": "2026-Q3",
        "amount": "1125.00",
        "shares": [{"provider_id": MEMBERS[0], "amount": "750.00"},
                   {"provider_id": MEMBERS[1], "amount": "375.00"}],
        "calculated_on": "2026-10-01", "calculated_total": "1125.00", "previous_total": None,
        "reason": "results payment calculated", "over_budget_by": "0.00",
        "lines": [{"description": "Sessions", "basis": "45 x £25.00", "amount": "1125.00"}],
    },
    "LessonRecorded": {
        "lesson_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        "need_id": NEED,
        "agreement_id": AGREEMENT,
        "stage": "mobilisation",
        "went": "badly",
        "what": "venues were booked late",
        "why": "the grant letter went out after the school term was planned",
        "tags": ["mobilisation", "venues"],
    },
    "AuditReadStarted": {
        "read_id": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "token_id": "3fa85f6457b2",
        "role": "regulator",
        "label": "CQC inspector",
        "endpoint": "events",
        "query": {"provider": PROVIDER, "from": "2024-04-01", "to": "2025-03-31"},
        "scope": {"provider": PROVIDER},
    },
    "AuditReadFinished": {
        "read_id": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "returned": 412,
        "completed": True,
    },
    "SignInFailed": {
        "attempt_id": "6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f",
        "account": "jo.smith",
        "address": "203.0.113.7",
        "reason": "wrong_password",
        "account_failures": 5,
        "address_failures": 7,
    },
    "SignInThrottled": {
        "attempt_id": "6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f",
        "account": "jo.smith",
        "address": "203.0.113.7",
        "by": "account",
        "failures": 5,
        "window_seconds": 900,
        "until": "2026-10-05T14:32:00Z",
    },
}

SPECS = all_specs()
SPEC_IDS = [spec.type for spec in SPECS]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi.asyncapi_document()


@pytest.fixture(scope="module")
def registry(document: dict[str, Any]) -> Registry[Any]:
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


def payload_validator(registry: Registry[Any], type_: str) -> Draft202012Validator:
    ref = f"{DOCUMENT_URI}#/components/messages/{type_}/payload"
    return Draft202012Validator({"$ref": ref}, registry=registry)


def example_envelope(spec: EventSpec, **changes: Any) -> dict[str, Any]:
    """The wire form (parsed canonical JSON) of an example event of `spec`'s type."""
    data = EXAMPLES[spec.type]
    stream_id = str(data[spec.stream_field])
    envelope = EventEnvelope(
        event_id=event_id_for(spec.source, stream_id, 1),
        type=spec.type,
        schema_version=spec.version,
        source=spec.source,
        stream_id=stream_id,
        stream_position=1,
        occurred_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        recorded_at=datetime(2024, 5, 1, 9, 30, 0, 250, tzinfo=UTC),
        correlation_id="req-1",
        actor="officer@council.example",
        organisation="council",
        data=data,
    )
    wire: dict[str, Any] = json.loads(envelope.to_json())
    wire.update(changes)
    return wire


def refs(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every ($ref value, location) in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value, where
            else:
                yield from refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs(value, f"{where}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = document
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref}: {part!r} looked up in a non-object"
        assert part in node, f"{ref}: no {part!r}"
        node = node[part]
    return node


# --- the committed document is current ---------------------------------------------------------


def test_committed_document_matches_the_catalogue() -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    assert committed == asyncapi.render_document(), (
        "council/kernel/asyncapi.json is out of date with the event catalogue: "
        "run `python -m council.kernel.asyncapi` and commit the result"
    )


def test_committed_document_is_the_generated_document() -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == asyncapi.asyncapi_document()


def test_write_document_writes_sorted_pretty_json_with_newline(tmp_path: Path) -> None:
    target = asyncapi.write_document(tmp_path / "asyncapi.json")
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.startswith('{\n  "asyncapi": "3.0.0",')
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_main_writes_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "asyncapi.json"
    assert asyncapi.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == asyncapi.render_document()
    assert asyncapi.main(["--check", str(target)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_fails_clearly_when_out_of_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "asyncapi.json"
    target.write_text(asyncapi.render_document().replace("3.0.0", "2.6.0"), encoding="utf-8")
    assert asyncapi.main(["--check", str(target)]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err
    assert "python -m council.kernel.asyncapi" in err
    assert target.read_text(encoding="utf-8") != asyncapi.render_document()  # not rewritten


def test_check_fails_when_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert asyncapi.main(["--check", str(tmp_path / "nowhere.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_generation_is_deterministic() -> None:
    assert asyncapi.render_document() == asyncapi.render_document()


# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_is_not_empty_and_types_are_unique() -> None:
    assert SPECS
    assert len({spec.type for spec in SPECS}) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_catalogue_entry_is_well_formed(spec: EventSpec) -> None:
    assert spec_for(spec.type) is spec
    assert spec.version >= 1
    assert spec.summary
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", spec.type), "event types are PascalCase"
    assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.source)
    assert spec.stream_field in spec.data.model_fields, (
        f"{spec.type}: stream_field {spec.stream_field!r} is not a field of {spec.data.__name__}"
    )


def test_the_registry_publishes_exactly_its_catalogue_entries() -> None:
    from eventsourcing.domain import CanMutateAggregate

    from council.services.provider_registry.application import ProviderRegistry
    from council.services.provider_registry.domain.providers import Provider

    catalogued = {spec.type for spec in SPECS if spec.source == "provider_registry"}
    assert set(ProviderRegistry.published.values()) == catalogued
    assert len(ProviderRegistry.published) == len(catalogued)  # one event class per type
    # Every event a Provider can record leaves the registry under a catalogue type.
    provider_events = {
        value for value in vars(Provider).values()
        if isinstance(value, type) and issubclass(value, CanMutateAggregate)
    } - {Provider.Created, Provider.Event}  # the library's base classes
    assert len(provider_events) == 18
    assert provider_events == set(ProviderRegistry.published)
    assert not provider_events & ProviderRegistry.unpublished


def test_spec_for_unknown_type_is_none() -> None:
    assert spec_for("NoSuchEvent") is None


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_event_type_has_an_example(spec: EventSpec) -> None:
    assert spec.type in EXAMPLES, f"add valid example data for {spec.type} to EXAMPLES"


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_example_data_is_valid_for_its_model(spec: EventSpec) -> None:
    model = spec.data.model_validate(EXAMPLES[spec.type])
    assert model.model_dump(mode="json") == EXAMPLES[spec.type]


# --- every catalogue entry is in the document ------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_event_type_is_a_message_on_its_source_channel(
    document: dict[str, Any], spec: EventSpec
) -> None:
    message = document["components"]["messages"][spec.type]
    assert message["name"] == spec.type
    assert message["title"] == spec.type
    assert message["summary"] == spec.summary
    assert message["contentType"] == "application/json"
    key = message["bindings"]["kafka"]["key"]
    assert key["type"] == "string"
    assert "stream id" in key["description"]

    payload = message["payload"]
    assert payload["properties"]["type"]["const"] == spec.type
    assert payload["properties"]["schema_version"]["const"] == spec.version
    assert payload["properties"]["source"]["const"] == spec.source
    data_schema = resolve(document, payload["properties"]["data"]["$ref"])
    assert data_schema["title"] == spec.data.__name__

    channel = document["channels"][spec.source]
    assert channel["address"] == f"council.{spec.source}"
    assert channel["messages"][spec.type] == {"$ref": f"#/components/messages/{spec.type}"}
    # ... and on no other channel
    others = [name for name, ch in document["channels"].items() if spec.type in ch["messages"]]
    assert others == [spec.source]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_every_event_type_has_a_send_operation(document: dict[str, Any], spec: EventSpec) -> None:
    operation = document["operations"][f"publish{spec.type}"]
    assert operation["action"] == "send"
    assert operation["channel"] == {"$ref": f"#/channels/{spec.source}"}
    assert operation["messages"] == [{"$ref": f"#/channels/{spec.source}/messages/{spec.type}"}]


def test_document_holds_nothing_outside_the_catalogue(document: dict[str, Any]) -> None:
    types = {spec.type for spec in SPECS}
    assert set(document["components"]["messages"]) == types
    assert set(document["channels"]) == {spec.source for spec in SPECS}
    assert set(document["operations"]) == {f"publish{t}" for t in types}


def test_channel_addresses_are_the_log_topics() -> None:
    for prefix in ("council", "staging"):
        log = SimpleNamespace(topic_prefix=prefix)
        doc = asyncapi.asyncapi_document(topic_prefix=prefix)
        for source, channel in doc["channels"].items():
            assert channel["address"] == EventLog.topic_for(log, source)  # type: ignore[arg-type]
            assert channel["bindings"]["kafka"]["topic"] == channel["address"]


# --- the document is structurally AsyncAPI 3 ------------------------------------------------


def test_document_header(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    info = document["info"]
    assert info["title"] == "Council Integrator shared event log"
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["version"])
    assert "embedded" in info["description"]
    assert document["servers"]["kafka"] == {
        "host": "127.0.0.1:9092",
        "protocol": "kafka",
        "description": document["servers"]["kafka"]["description"],
    }
    assert set(document) <= {
        "asyncapi", "id", "info", "servers", "defaultContentType",
        "channels", "operations", "components",
    }  # fmt: skip


def test_every_ref_resolves_inside_the_document(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found
    for ref, where in found:
        assert ref.startswith("#/"), f"{where}: external reference {ref}"
        resolve(document, ref)


def test_component_keys_are_valid_asyncapi_ids(document: dict[str, Any]) -> None:
    for section in ("schemas", "messages"):
        for key in document["components"][section]:
            assert re.fullmatch(r"[\w.\-]+", key), f"components/{section}/{key}"
    for key in document["operations"]:
        assert re.fullmatch(r"[\w.\-]+", key)


def test_operations_reference_messages_of_their_own_channel(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name


def test_envelope_schema_is_a_component(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["EventEnvelope"]
    assert set(schema["properties"]) == set(EventEnvelope.model_fields)
    assert schema["additionalProperties"] is False


# --- payload schemas are JSON Schema and accept real envelopes ----------------------------


def test_every_component_schema_is_valid_json_schema(document: dict[str, Any]) -> None:
    for name, schema in document["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as error:  # pragma: no cover - message for the developer
            pytest.fail(f"components/schemas/{name}: {error}")


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_message_payload_is_valid_json_schema(document: dict[str, Any], spec: EventSpec) -> None:
    Draft202012Validator.check_schema(document["components"]["messages"][spec.type]["payload"])


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_example_envelope_validates_against_its_payload(
    registry: Registry[Any], spec: EventSpec
) -> None:
    wire = example_envelope(spec)
    payload_validator(registry, spec.type).validate(wire)
    # The generic envelope schema accepts it too.
    generic = Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#/components/schemas/EventEnvelope"}, registry=registry
    )
    generic.validate(wire)
    # And the wire form reads back as the same envelope.
    assert EventEnvelope.model_validate(wire).data == EXAMPLES[spec.type]


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_example_envelope_with_unset_optionals_validates(
    registry: Registry[Any], spec: EventSpec
) -> None:
    wire = example_envelope(spec, correlation_id=None, actor=None, organisation=None)
    del wire["causation_id"]
    payload_validator(registry, spec.type).validate(wire)


def _without(data: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != field}


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize(
    ("label", "change"),
    [
        ("other type", lambda spec, wire: wire.update(type=spec.type + "X")),
        ("other version", lambda spec, wire: wire.update(schema_version=spec.version + 1)),
        ("other source", lambda spec, wire: wire.update(source="elsewhere")),
        ("extra envelope field", lambda spec, wire: wire.update(surprise=1)),
        ("missing stream id", lambda spec, wire: wire.pop("stream_id")),
        ("position 0", lambda spec, wire: wire.update(stream_position=0)),
        ("extra data field", lambda spec, wire: wire["data"].update(surprise=1)),
        (
            "missing stream field in data",
            lambda spec, wire: wire.update(data=_without(wire["data"], spec.stream_field)),
        ),
        ("data not an object", lambda spec, wire: wire.update(data=[])),
    ],
)
def test_payload_rejects_wrong_envelopes(
    registry: Registry[Any], spec: EventSpec, label: str, change: Any
) -> None:
    wire = example_envelope(spec)
    wire["data"] = dict(wire["data"])
    change(spec, wire)
    with pytest.raises(SchemaValidationError):
        payload_validator(registry, spec.type).validate(wire)


def test_payload_enforces_enums(registry: Registry[Any]) -> None:
    spec = spec_for("ProviderRegistered")
    assert spec is not None
    wire = example_envelope(spec)
    wire["data"] = {**wire["data"], "organisation_type": "cartel"}
    with pytest.raises(SchemaValidationError):
        payload_validator(registry, spec.type).validate(wire)


def test_event_ids_in_examples_are_deterministic() -> None:
    spec = SPECS[0]
    first, second = example_envelope(spec), example_envelope(spec)
    assert first["event_id"] == second["event_id"]
    assert uuid.UUID(first["event_id"]).version == 5
