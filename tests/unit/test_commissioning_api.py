"""The integrator's commissioning API in process: every endpoint, who may call it, bad input
naming the field, illegal steps refused with nothing changed, and a whole commission run from
providers registered and approved on the registry, through the shared log, to agreements ended
and lessons recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from council.kernel.contracts.outcomes import PaymentCalculated, PaymentLine
from council.kernel.contracts.provider_registry import ProviderStatus
from council.platform.identity import Role, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.api import commissioning
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.provider_registry.service import SPEC as REGISTRY
from tests.problems import assert_errors, loc_of
from tests.waiting import eventually

Auth = dict[str, str]
LEAD = "Northshire County Council"
MISSING = object()  # a field left out of a body

P1, P2, P3 = (UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2, 3))

NEED = {
    "title": "Healthy weight for teenagers",
    "service_area": "weight-management",
    "population": {"description": "Young people aged 13 to 17 in Northshire", "size": 42000},
    "outcomes": [{"description": "Fewer teenagers living with obesity",
                  "target": "from 21% to 17%", "target_date": "2027-03-31"}],
    "outputs": ["1,200 family sessions a year"],
    "budget_envelope": "1000000.00",
    "starts_on": "2026-04-01",
    "ends_on": "2031-03-31",
}
CONTRIBUTION = {"partner": "Northshire ICB", "amount": "250000.00", "note": "public health"}
OPTIONS = {
    "options": [
        {"option": "in_house", "description": "The council's leisure team", "score": 40,
         "risks": "little community reach"},
        {"option": "mixed", "description": "VCSE grants and a formal contract",
         "estimated_cost": "1200000.00", "score": 80, "benefits": "local reach"},
    ],
    "recommended": "mixed",
    "rationale": "the mix reaches families the council does not",
}
ENGAGEMENT = {"summary": "Provider day with 14 organisations", "engaged_on": "2026-05-12",
              "provider_ids": []}
STAGE = {"stage": "mobilisation", "notes": "kick-off held with every provider"}
CLOSURE = {"reason": "met: every agreement in place"}
# Business time is the real date here (the service runs in its own thread): decisions are
# taken today, so agreements are signed and come into force today.
TODAY = datetime.now(UTC).date().isoformat()
SIGNATURE = {"signed_on": TODAY, "signatories": ["Jo Bloggs for the council",
                                                 "Amir Khan for Hillside Kitchen"]}
ACTIVATION = {"activated_on": TODAY}
RAISE = {"amount": "25000.00", "reason": "Cabinet top-up for winter pressures"}
# A commissioner decides up to £2,000,000 of each kind; an integrator admin without limit.
SCHEME = {"limits": [{"role": role, "kind": kind, "up_to": up_to}
                     for kind in ("award", "variation", "extension", "business_case", "spend",
                                  "envelope_raise", "performance_override")
                     for role, up_to in (("commissioner", "2000000.00"),
                                         ("integrator_admin", None))],
          "reason": "Financial regulations 2026, part 4"}
VARIATION = {"kind": "growth", "budget_change": "50000.00", "scope": "two more schools",
             "reason": "demand is higher than forecast"}
EXTENSION = {"new_end": "2030-03-31", "justification": "outcomes ahead of trajectory",
             "performance_evidence": "obesity rate 18.2% against 19% planned"}
BUSINESS_CASE = {"need": "sessions for the new estate", "expected_outcomes": "200 more families",
                 "cost": "45000.00"}
REASON = {"reason": "need and outcomes agreed"}
ENDING = {"how": "completed", "ended_on": "2029-03-31", "reason": "term served"}


def decision(*awards: tuple[str, str, str, list[UUID]]) -> dict[str, Any]:
    return {
        "awards": [{"title": title, "arrangement_type": kind,
                    "provider_ids": [str(p) for p in providers], "allocation": allocation}
                   for title, kind, allocation, providers in awards],
        "rationale": "best value for the outcomes sought",
        "decision_maker": "Cabinet Member for Public Health",
    }


def agreement_body(need_id: str, award_id: str, **more: Any) -> dict[str, Any]:
    return {"need_id": need_id, "award_id": award_id, "starts_on": "2026-07-01",
            "ends_on": "2029-03-31", "exit_plan": "hand the sessions to the leisure trust",
            **more}


def spend_body(provider_id: UUID | str, amount: str = "10000.00") -> dict[str, Any]:
    return {"provider_id": str(provider_id), "amount": amount, "period": "2026-09",
            "reference": "INV-0042"}


def lesson_body(**about: Any) -> dict[str, Any]:
    return {"stage": "mobilisation", "went": "badly", "what": "venues were booked late",
            "why": "the grant letter went out after the school term was planned",
            "tags": ["venues"], **about}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[..., Auth]:
    """Authorization headers for a fresh token of `role`."""

    def make(role: Role, label: str | None = None, provider_id: UUID | None = None) -> Auth:
        if role is Role.PROVIDER and provider_id is None:
            provider_id = uuid4()
        issued = tokens.create(role, label or f"{role.value}-user", provider_id)
        return {"Authorization": f"Bearer {issued.token}"}

    return make


@pytest.fixture
def admin(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN, "sam")


@pytest.fixture
def commissioner(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.COMMISSIONER, "jo")


@pytest.fixture
def integrator(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        yield client


@pytest.fixture
def registry(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(REGISTRY, settings)) as client:
        yield client


@pytest.fixture
def statuses(integrator: TestClient,
             performance: None) -> dict[UUID, ProviderStatus | None]:
    """How the network stands, as the integrator's decisions see it (replaces its projection
    lookup, for tests that are about commissioning rather than the network)."""
    known: dict[UUID, ProviderStatus | None] = {
        P1: ProviderStatus.APPROVED, P2: ProviderStatus.APPROVED, P3: ProviderStatus.APPROVED,
    }
    runtime_of(integrator).app.provider_status = known.get  # type: ignore[attr-defined]
    return known


@pytest.fixture
def performance(integrator: TestClient) -> None:
    """Every agreement has performance data (replaces the performance projection's lookup, for
    tests about commissioning rather than outcomes), so extensions are justified."""
    runtime_of(integrator).app.performance_evidence = (  # type: ignore[attr-defined]
        lambda _: "RAG green in 2026-Q3")


def set_scheme(client: TestClient, admin: Auth) -> None:
    response = client.put(f"/councils/{LEAD}/scheme-of-delegation", json=SCHEME, headers=admin)
    assert response.status_code == 200, response.text


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def stored_events(client: TestClient) -> list[Any]:
    app = runtime_of(client).app
    return [app.to_envelope(n) for n in app.recorder.select_notifications(start=1, limit=5000)]




def call(client: TestClient, path: str, body: Any, headers: Auth, expect: int = 201) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def need_record(client: TestClient, headers: Auth, need_id: str) -> dict[str, Any]:
    response = client.get(f"/needs/{need_id}/record", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def agreement_record(client: TestClient, headers: Auth, agreement_id: str) -> dict[str, Any]:
    response = client.get(f"/agreements/{agreement_id}/record", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def appraised_need(client: TestClient, headers: Auth, **changes: Any) -> str:
    need_id: str = call(client, "/needs", {**NEED, **changes}, headers)["need_id"]
    call(client, f"/needs/{need_id}/options", OPTIONS, headers, 200)
    return need_id


@pytest.fixture
def world(integrator: TestClient, admin: Auth, auth: Callable[..., Auth],
          statuses: dict[UUID, ProviderStatus | None]) -> dict[str, str]:
    """A scheme of delegation for the council; an appraised need (`open`); a decided need
    (`decided`) with four awards: the first drafted, signed and active as `agreement` with a
    business case `case` proposed by another commissioner, the second drafted and signed
    (`drafted`), the third drafted only (`unsigned`), the fourth (`award`) not yet drafted."""
    set_scheme(integrator, admin)
    open_id = appraised_need(integrator, admin)
    decided_id = appraised_need(integrator, admin)
    decided = call(integrator, f"/needs/{decided_id}/decisions",
                   decision(("Cooking", "grant", "300000.00", [P1]),
                            ("Activity", "formal_contract", "500000.00", [P2, P3]),
                            ("Walks", "grant", "50000.00", [P2]),
                            ("Clubs", "shared_service", "100000.00", [P3])), admin)
    first, second, walks, fourth = decided["award_ids"]
    agreement = call(integrator, "/agreements", agreement_body(decided_id, first), admin)
    agreement_id = agreement["agreement_id"]
    call(integrator, f"/agreements/{agreement_id}/sign", SIGNATURE, admin, 200)
    call(integrator, f"/agreements/{agreement_id}/activate", ACTIVATION, admin, 200)
    case = call(integrator, f"/agreements/{agreement_id}/business-cases", BUSINESS_CASE,
                auth(Role.COMMISSIONER, "kim"))
    drafted = call(integrator, "/agreements", agreement_body(decided_id, second), admin)
    call(integrator, f"/agreements/{drafted['agreement_id']}/sign", SIGNATURE, admin, 200)
    unsigned = call(integrator, "/agreements", agreement_body(decided_id, walks), admin)
    # A results payment the outcomes service calculated for this month, due on the agreement.
    runtime_of(integrator).app.record_results_due(  # type: ignore[attr-defined]
        PaymentCalculated(terms_id=uuid4(), agreement_id=UUID(agreement_id),
                          period=TODAY[:7], calculation_id="calc-1", total=Decimal("900.00"),
                          lines=[PaymentLine(description="Sessions", basis="36 x £25.00",
                                             amount=Decimal("900.00"))]), TODAY)
    return {"open": open_id, "decided": decided_id, "agreement": agreement_id,
            "case": case["id"], "drafted": drafted["agreement_id"],
            "unsigned": unsigned["agreement_id"], "award": fourth, "due": "calc-1"}


# Every write endpoint: its path (filled from `world`) and a valid body for it there.
WRITES: dict[str, tuple[str, Callable[[dict[str, str]], dict[str, Any]]]] = {
    "define": ("/needs", lambda w: NEED),
    "pledge": ("/needs/{open}/contributions", lambda w: CONTRIBUTION),
    "raise": ("/needs/{decided}/envelope-raises", lambda w: RAISE),
    "appraise": ("/needs/{open}/options", lambda w: OPTIONS),
    "engage": ("/needs/{open}/market-engagement", lambda w: ENGAGEMENT),
    "decide": ("/needs/{open}/decisions",
               lambda w: decision(("Cooking", "grant", "1000.00", [P1]))),
    "stage": ("/needs/{decided}/stage", lambda w: STAGE),
    "close": ("/needs/{decided}/close", lambda w: CLOSURE),
    "draft": ("/agreements", lambda w: agreement_body(w["decided"], w["award"])),
    "sign": ("/agreements/{unsigned}/sign", lambda w: SIGNATURE),
    "activate": ("/agreements/{drafted}/activate", lambda w: ACTIVATION),
    "vary": ("/agreements/{agreement}/variations", lambda w: VARIATION),
    "extend": ("/agreements/{agreement}/extensions", lambda w: EXTENSION),
    "propose": ("/agreements/{agreement}/business-cases", lambda w: BUSINESS_CASE),
    "approve": ("/agreements/{agreement}/business-cases/{case}/approve", lambda w: REASON),
    "reject": ("/agreements/{agreement}/business-cases/{case}/reject", lambda w: REASON),
    "spend": ("/agreements/{agreement}/spend", lambda w: spend_body(P1)),
    "pay": ("/agreements/{agreement}/results-due/{due}/pay", lambda w: {"reference": "REM-1"}),
    "end": ("/agreements/{agreement}/end", lambda w: ENDING),
    "lesson": ("/lessons", lambda w: lesson_body(need_id=w["decided"])),
}
READS = ["/needs/{open}/record", "/agreements/{agreement}/record"]


def path_of(name: str, world: dict[str, str]) -> str:
    return WRITES[name][0].format(**world)


def body_of(name: str, world: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = {**WRITES[name][1](world), **changes}
    return {k: v for k, v in body.items() if v is not MISSING}


def versions(client: TestClient, headers: Auth, world: dict[str, str]) -> dict[str, int]:
    return {
        "open": need_record(client, headers, world["open"])["version"],
        "decided": need_record(client, headers, world["decided"])["version"],
        "agreement": agreement_record(client, headers, world["agreement"])["version"],
        "drafted": agreement_record(client, headers, world["drafted"])["version"],
    }


# --------------------------------------------------------------------------- the endpoints


def test_the_tables_cover_every_commissioning_route() -> None:
    routes = {(tuple(sorted(r.methods)), r.path) for r in commissioning.router.routes
              if isinstance(r, APIRoute)}
    placeholders = {"open": "{need_id}", "decided": "{need_id}", "agreement": "{agreement_id}",
                    "drafted": "{agreement_id}", "unsigned": "{agreement_id}",
                    "case": "{case_id}", "due": "{due_id}"}
    covered = {(("POST",), path.format(**placeholders)) for path, _ in WRITES.values()}
    covered |= {(("GET",), path.format(**placeholders)) for path in READS}
    assert routes == covered


@pytest.mark.parametrize("name", list(WRITES))
def test_every_write_succeeds_for_a_council_writer(
    integrator: TestClient, commissioner: Auth, world: dict[str, str], name: str
) -> None:
    before = len(stored_events(integrator))
    response = integrator.post(path_of(name, world), json=body_of(name, world),
                               headers=commissioner)

    assert response.status_code in (200, 201), response.text
    made = stored_events(integrator)[before:]
    assert made
    assert {e.actor for e in made} == {"commissioner:jo"}
    assert {e.organisation for e in made} == {"council"}


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.REGULATOR, Role.PROVIDER],
                         ids=lambda r: r.value)
def test_roles_that_may_not_write_are_forbidden_everywhere(
    integrator: TestClient, auth: Callable[..., Auth], admin: Auth, world: dict[str, str],
    role: Role,
) -> None:
    headers = auth(role, provider_id=P1 if role is Role.PROVIDER else None)
    before = len(stored_events(integrator))
    held = versions(integrator, admin, world)

    for name in WRITES:
        response = integrator.post(path_of(name, world), json=body_of(name, world),
                                   headers=headers)
        assert response.status_code == 403, (name, response.text)
        assert f"role {role.value} may not do this" in response.json()["detail"]
        assert "commissioner, integrator_admin" in response.json()["detail"]

    assert len(stored_events(integrator)) == before
    assert versions(integrator, admin, world) == held


def test_every_endpoint_needs_a_valid_token(integrator: TestClient, world: dict[str, str]) -> None:
    before = len(stored_events(integrator))
    for bad in ({}, {"Authorization": "Bearer cit_000000000000_notarealsecret"}):
        for name in WRITES:
            response = integrator.post(path_of(name, world), json={}, headers=bad)
            assert response.status_code == 401, name  # auth before validation
            assert response.headers["WWW-Authenticate"] == "Bearer"
        for path in READS:
            assert integrator.get(path.format(**world), headers=bad).status_code == 401
    assert len(stored_events(integrator)) == before


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.COMMISSIONER,
                                  Role.INTEGRATOR_ADMIN], ids=lambda r: r.value)
def test_council_readers_read_the_records(
    integrator: TestClient, auth: Callable[..., Auth], world: dict[str, str], role: Role
) -> None:
    headers = auth(role)
    for path in READS:
        assert integrator.get(path.format(**world), headers=headers).status_code == 200


def test_a_provider_reads_no_records_not_even_its_own_agreement(
    integrator: TestClient, auth: Callable[..., Auth], world: dict[str, str]
) -> None:
    headers = auth(Role.PROVIDER, provider_id=P1)  # P1 is a party to world's agreement
    for path in READS:
        assert integrator.get(path.format(**world), headers=headers).status_code == 403


# --------------------------------------------------------------------------- bad input

BAD_INPUT: list[tuple[str, dict[str, Any], list[Any], str]] = [
    ("define", {"title": MISSING}, ["body", "title"], "missing"),
    ("define", {"title": "   "}, ["body", "title"], "string_too_short"),
    ("define", {"service_area": "knitting"}, ["body", "service_area"], "value_error"),
    ("define", {"service_area": MISSING}, ["body", "service_area"], "missing"),
    ("define", {"budget_envelope": "-1.00"}, ["body", "budget_envelope"], "greater_than"),
    ("define", {"budget_envelope": "0"}, ["body", "budget_envelope"], "greater_than"),
    ("define", {"budget_envelope": "lots"}, ["body", "budget_envelope"], "decimal_parsing"),
    ("define", {"budget_envelope": "1000.001"}, ["body", "budget_envelope"], "value_error"),
    ("define", {"budget_envelope": "NaN"}, ["body", "budget_envelope"], "finite_number"),
    ("define", {"budget_envelope": [1]}, ["body", "budget_envelope"], "decimal_type"),
    ("define", {"ends_on": "2026-03-31"}, ["body", "ends_on"], "value_error"),
    ("define", {"ends_on": "2026-04-01"}, ["body", "ends_on"], "value_error"),
    ("define", {"starts_on": "2026-02-30"}, ["body", "starts_on"], "date_from_datetime_parsing"),
    ("define", {"starts_on": "1 April 2026"}, ["body", "starts_on"],
     "date_from_datetime_parsing"),
    ("define", {"outcomes": []}, ["body", "outcomes"], "too_short"),
    ("define", {"outcomes": [{"description": "x", "measure_id": "m1"}]},
     ["body", "outcomes", 0, "measure_id"], "uuid_parsing"),
    ("define", {"population": {"size": 3}}, ["body", "population", "description"], "missing"),
    ("define", {"population": {"description": "x", "size": -1}}, ["body", "population", "size"],
     "greater_than_equal"),
    ("define", {"colour": "red"}, ["body", "colour"], "extra_forbidden"),
    ("pledge", {"amount": "-5"}, ["body", "amount"], "greater_than"),
    ("pledge", {"amount": "12.345"}, ["body", "amount"], "value_error"),
    ("pledge", {"amount": "twelve"}, ["body", "amount"], "decimal_parsing"),
    ("pledge", {"partner": MISSING}, ["body", "partner"], "missing"),
    ("pledge", {"partner": LEAD}, ["body", "partner"], "value_error"),
    ("pledge", {"pledged_by": "x"}, ["body", "pledged_by"], "extra_forbidden"),
    ("appraise", {"options": [{"option": "outsourced", "description": "x"}]},
     ["body", "options", 0, "option"], "enum"),
    ("appraise", {"options": []}, ["body", "options"], "too_short"),
    ("appraise", {"recommended": "cheapest"}, ["body", "recommended"], "enum"),
    ("appraise", {"recommended": "formal_contract"}, ["body", "recommended"], "value_error"),
    ("appraise", {"options": OPTIONS["options"] * 2}, ["body", "options"], "value_error"),
    ("appraise", {"rationale": "ok"}, ["body", "rationale"], "string_too_short"),
    ("appraise", {"options": [{"option": "mixed", "description": "x", "score": 101}],
                  "recommended": "mixed"}, ["body", "options", 0, "score"], "less_than_equal"),
    ("engage", {"engaged_on": "12/05/2026"}, ["body", "engaged_on"],
     "date_from_datetime_parsing"),
    ("engage", {"provider_ids": ["nobody"]}, ["body", "provider_ids", 0], "uuid_parsing"),
    ("engage", {"summary": ""}, ["body", "summary"], "string_too_short"),
    ("decide", {"awards": []}, ["body", "awards"], "too_short"),
    ("decide", decision(("A", "loan", "10.00", [P1])), ["body", "awards", 0, "arrangement_type"],
     "enum"),
    ("decide", decision(("A", "grant", "-10.00", [P1])), ["body", "awards", 0, "allocation"],
     "greater_than"),
    ("decide", decision(("A", "grant", "10.005", [P1])), ["body", "awards", 0, "allocation"],
     "value_error"),
    ("decide", decision(("A", "grant", "10.00", [])), ["body", "awards", 0, "provider_ids"],
     "too_short"),
    ("decide", decision(("A", "grant", "10.00", [P1, P1])), ["body", "awards"], "value_error"),
    ("decide", {"decision_maker": MISSING}, ["body", "decision_maker"], "missing"),
    ("stage", {"stage": "finished"}, ["body", "stage"], "enum"),
    ("stage", {"stage": "decision"}, ["body", "stage"], "value_error"),
    ("stage", {"stage": "MOBILISATION"}, ["body", "stage"], "enum"),
    ("close", {"reason": MISSING}, ["body", "reason"], "missing"),
    ("close", {"reason": "ok"}, ["body", "reason"], "string_too_short"),
    ("draft", {"exit_plan": MISSING}, ["body", "exit_plan"], "missing"),
    ("draft", {"exit_plan": "  "}, ["body", "exit_plan"], "string_too_short"),
    ("draft", {"ends_on": "2026-06-30"}, ["body", "ends_on"], "value_error"),
    ("draft", {"risk_share": {"council_pct": "60", "provider_pct": "30"}},
     ["body", "risk_share"], "value_error"),
    ("draft", {"risk_share": {"council_pct": "101", "provider_pct": "0"}},
     ["body", "risk_share", "council_pct"], "less_than_equal"),
    ("draft", {"need_id": "need-1"}, ["body", "need_id"], "uuid_parsing"),
    ("draft", {"parties": [{"provider_id": str(P2), "allocation": "500000.00"}]},
     ["body", "parties"], "value_error"),
    ("draft", {"reward_terms": {"bonus_max": "-1"}}, ["body", "reward_terms", "bonus_max"],
     "greater_than"),
    ("raise", {"amount": "0"}, ["body", "amount"], "greater_than"),
    ("raise", {"reason": MISSING}, ["body", "reason"], "missing"),
    ("sign", {"signatories": []}, ["body", "signatories"], "too_short"),
    ("sign", {"signed_on": "2999-01-01"}, ["body", "signed_on"], "value_error"),
    ("sign", {"signed_on": "2026-01-01"}, ["body", "signed_on"], "value_error"),
    ("activate", {"activated_on": "soon"}, ["body", "activated_on"],
     "date_from_datetime_parsing"),
    ("activate", {"activated_on": "2026-01-01"}, ["body", "activated_on"], "value_error"),
    ("vary", {"kind": "bonus"}, ["body", "kind"], "enum"),
    ("vary", {"kind": "business_case"}, ["body", "kind"], "value_error"),
    ("vary", {"budget_change": "1.234"}, ["body", "budget_change"], "value_error"),
    ("vary", {"budget_change": "ten"}, ["body", "budget_change"], "decimal_parsing"),
    ("vary", {"budget_change": "0", "scope": MISSING}, ["body", "budget_change"], "value_error"),
    ("vary", {"reason": MISSING}, ["body", "reason"], "missing"),
    ("extend", {"new_end": "2029-03-31"}, ["body", "new_end"], "value_error"),
    ("extend", {"new_end": "2031-04-01"}, ["body", "new_end"], "value_error"),
    ("extend", {"new_end": "31/03/2030"}, ["body", "new_end"], "date_from_datetime_parsing"),
    ("extend", {"performance_evidence": ""}, ["body", "performance_evidence"],
     "string_too_short"),
    ("propose", {"cost": "-45"}, ["body", "cost"], "greater_than"),
    ("propose", {"cost": "45.001"}, ["body", "cost"], "value_error"),
    ("approve", {"reason": "no"}, ["body", "reason"], "string_too_short"),
    ("reject", {"reason": MISSING}, ["body", "reason"], "missing"),
    ("spend", {"period": "2026-13"}, ["body", "period"], "string_pattern_mismatch"),
    ("spend", {"period": "Sept 2026"}, ["body", "period"], "string_pattern_mismatch"),
    ("spend", {"amount": "abc"}, ["body", "amount"], "decimal_parsing"),
    ("spend", {"amount": 10.005}, ["body", "amount"], "value_error"),
    ("spend", {"amount": "-10"}, ["body", "amount"], "greater_than"),
    ("spend", {"provider_id": str(P2)}, ["body", "provider_id"], "value_error"),
    ("spend", {"period": "2999-01"}, ["body", "period"], "value_error"),
    ("pay", {"reference": "x" * 201}, ["body", "reference"], "string_too_long"),
    ("pay", {"reference": "a\nb"}, ["body", "reference"], "value_error"),
    ("pay", {"paid_to": "x"}, ["body", "paid_to"], "extra_forbidden"),
    ("end", {"how": "cancelled"}, ["body", "how"], "enum"),
    ("end", {"how": "exited"}, ["body", "exit_plan_executed"], "value_error"),
    ("end", {"exit_plan_executed": "perhaps"}, ["body", "exit_plan_executed"], "bool_parsing"),
    ("end", {"ended_on": "2026-06-30"}, ["body", "ended_on"], "value_error"),
    ("lesson", {"went": "ok"}, ["body", "went"], "string_pattern_mismatch"),
    ("lesson", {"stage": "after"}, ["body", "stage"], "enum"),
    ("lesson", {"need_id": MISSING}, ["body"], "value_error"),
    ("lesson", {"tags": ["x" * 51]}, ["body", "tags", 0], "string_too_long"),
]


@pytest.mark.parametrize(
    ("name", "changes", "loc", "error_type"), BAD_INPUT,
    ids=[f"{name}-{'-'.join(str(x) for x in loc[1:]) or 'body'}-{kind}-{i}"
         for i, (name, _, loc, kind) in enumerate(BAD_INPUT)],
)
def test_bad_input_is_unprocessable_naming_the_field(
    integrator: TestClient, admin: Auth, world: dict[str, str], name: str,
    changes: dict[str, Any], loc: list[Any], error_type: str,
) -> None:
    before = len(stored_events(integrator))
    held = versions(integrator, admin, world)

    response = integrator.post(path_of(name, world), json=body_of(name, world, **changes),
                               headers=admin)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert_errors(response, [(loc, error_type)])
    assert all(e["message"] for e in errors)
    assert len(stored_events(integrator)) == before
    assert versions(integrator, admin, world) == held


@pytest.mark.parametrize("name", list(WRITES))
def test_malformed_json_and_non_objects_are_unprocessable(
    integrator: TestClient, admin: Auth, world: dict[str, str], name: str
) -> None:
    before = len(stored_events(integrator))
    broken = integrator.post(path_of(name, world), content=b'{"reason": ',
                             headers={**admin, "Content-Type": "application/json"})
    listed = integrator.post(path_of(name, world), json=["a", "list"], headers=admin)
    empty = integrator.post(path_of(name, world), headers=admin)

    assert broken.status_code == 422
    (error,) = broken.json()["errors"]
    assert ("json" in error["message"].lower(), loc_of(error)[0]) == (True, "body")
    assert listed.status_code == 422
    assert [loc_of(e) for e in listed.json()["errors"]] == [["body"]]
    assert empty.status_code == 422
    assert_errors(empty, [(["body"], "missing")])
    assert len(stored_events(integrator)) == before


def test_a_need_reads_back_with_the_money_as_pounds_and_pence(
    integrator: TestClient, admin: Auth
) -> None:
    created = call(integrator, "/needs", {**NEED, "budget_envelope": 1000, "title": "  Meals  "},
                   admin)

    assert created["budget_envelope"] == created["pooled_budget"] == "1000.00"
    assert created["committed"] == "0"
    assert created["title"] == "Meals"
    assert created["lead_organisation"] == LEAD
    assert created["stage"] == "objectives"
    assert created["version"] == 1
    assert need_record(integrator, admin, created["need_id"]) == created


@pytest.mark.parametrize("path", ["/needs/{id}/record", "/agreements/{id}/record"])
def test_unknown_records_are_not_found(integrator: TestClient, admin: Auth, path: str) -> None:
    missing = uuid4()
    response = integrator.get(path.format(id=missing), headers=admin)

    assert response.status_code == 404
    assert str(missing) in response.json()["detail"]
    bad = integrator.get(path.format(id="not-a-uuid"), headers=admin)
    assert bad.status_code == 422
    assert [loc_of(e)[0] for e in bad.json()["errors"]] == ["path"]


@pytest.mark.parametrize("name", [n for n, (path, _) in WRITES.items() if "{" in path])
def test_commands_on_unknown_records_are_not_found(
    integrator: TestClient, admin: Auth, world: dict[str, str], name: str
) -> None:
    unknown = {**world, "open": str(uuid4()), "decided": str(uuid4()),
               "agreement": str(uuid4()), "drafted": str(uuid4()), "unsigned": str(uuid4())}
    before = len(stored_events(integrator))

    response = integrator.post(path_of(name, unknown), json=body_of(name, world), headers=admin)

    assert response.status_code == 404, response.text
    assert len(stored_events(integrator)) == before


@pytest.mark.parametrize("about", ["need_id", "agreement_id"])
def test_a_lesson_about_an_unknown_record_is_not_found(
    integrator: TestClient, admin: Auth, about: str
) -> None:
    response = integrator.post("/lessons", json=lesson_body(**{about: str(uuid4())}),
                               headers=admin)
    assert response.status_code == 404
    assert stored_events(integrator) == []


def test_drafting_for_an_unknown_need_is_not_found(integrator: TestClient, admin: Auth) -> None:
    response = integrator.post("/agreements", json=agreement_body(str(uuid4()), "a1"),
                               headers=admin)
    assert response.status_code == 404


# --------------------------------------------------------------------------- illegal steps


def refused(client: TestClient, headers: Auth, world: dict[str, str], path: str,
            body: dict[str, Any], match: str) -> None:
    """The step is refused with 409 naming the problem, and nothing changes."""
    before = len(stored_events(client))
    held = versions(client, headers, world)

    response = client.post(path.format(**world), json=body, headers=headers)

    assert response.status_code == 409, response.text
    assert match in response.json()["detail"]
    assert len(stored_events(client)) == before
    assert versions(client, headers, world) == held


def test_deciding_before_appraising_options_is_refused(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    fresh = call(integrator, "/needs", NEED, admin)["need_id"]
    refused(integrator, admin, {**world, "open": fresh}, "/needs/{open}/decisions",
            decision(("A", "grant", "10.00", [P1])), "appraise the sourcing options")
    assert need_record(integrator, admin, fresh)["version"] == 1


@pytest.mark.parametrize("status", [s for s in ProviderStatus if s is not ProviderStatus.APPROVED]
                         + [None], ids=lambda s: s.value if s else "not-in-network")
def test_no_award_to_a_provider_that_is_not_approved(
    integrator: TestClient, admin: Auth, world: dict[str, str],
    statuses: dict[UUID, ProviderStatus | None], status: ProviderStatus | None,
) -> None:
    statuses[P2] = status
    refused(integrator, admin, world, "/needs/{open}/decisions",
            decision(("A", "grant", "10.00", [P1]), ("B", "grant", "10.00", [P2])),
            f"provider {P2} is {status.value if status else 'not in the network'}")


def test_awards_over_the_pooled_budget_are_refused(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    call(integrator, f"/needs/{world['open']}/contributions", CONTRIBUTION, admin)
    refused(integrator, admin, world, "/needs/{open}/decisions",
            decision(("A", "grant", "1000000.00", [P1]), ("B", "grant", "250000.01", [P2])),
            "awards total £1,250,000.01 but only £1,250,000.00")
    # The exact pooled budget is accepted.
    done = call(integrator, f"/needs/{world['open']}/decisions",
                decision(("A", "grant", "1000000.00", [P1]), ("B", "grant", "250000.00", [P2])),
                admin)
    assert done["need"]["committed"] == done["need"]["pooled_budget"] == "1250000.00"
    refused(integrator, admin, world, "/needs/{open}/decisions",
            decision(("C", "grant", "0.01", [P3])), "only £0.00")


@pytest.mark.parametrize(("path", "body", "match"), [
    ("/needs/{decided}/options", OPTIONS, "cannot be re-appraised"),
    ("/needs/{decided}/market-engagement", ENGAGEMENT, "before the decision"),
])
def test_no_going_back_after_a_decision(
    integrator: TestClient, admin: Auth, world: dict[str, str], path: str,
    body: dict[str, Any], match: str,
) -> None:
    refused(integrator, admin, world, path, body, match)


def test_stages_move_forwards_only_and_after_a_decision(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    refused(integrator, admin, world, "/needs/{open}/stage", STAGE,
            "mobilisation comes after a commissioning decision")
    moved = call(integrator, f"/needs/{world['decided']}/stage",
                 {"stage": "review", "notes": "first review"}, admin, 200)
    assert moved["stage"] == "review"
    for stage in ("mobilisation", "management", "review"):
        refused(integrator, admin, world, "/needs/{decided}/stage",
                {"stage": stage, "notes": "back"}, "already at review")
    assert call(integrator, f"/needs/{world['decided']}/stage",
                {"stage": "exit", "notes": "winding down"}, admin, 200)["stage"] == "exit"


def test_a_closed_need_refuses_everything(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    closed = call(integrator, f"/needs/{world['decided']}/close", CLOSURE, admin, 200)
    assert (closed["is_open"], closed["closed_reason"]) == (False, CLOSURE["reason"])
    match = f"the need is closed ({CLOSURE['reason']})"
    steps = [("/needs/{decided}/contributions", CONTRIBUTION),
             ("/needs/{decided}/options", OPTIONS),
             ("/needs/{decided}/market-engagement", ENGAGEMENT),
             ("/needs/{decided}/decisions", decision(("A", "grant", "1.00", [P1]))),
             ("/needs/{decided}/stage", STAGE),
             ("/needs/{decided}/close", CLOSURE),
             ("/agreements", agreement_body(world["decided"], world["award"]))]
    for path, body in steps:
        refused(integrator, admin, world, path, body, match)


def test_one_agreement_per_award(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    first_award = agreement_record(integrator, admin, world["agreement"])["award_id"]
    refused(integrator, admin, world, "/agreements",
            agreement_body(world["decided"], first_award),
            f"already has agreement {world['agreement']}")
    refused(integrator, admin, world, "/agreements",
            agreement_body(world["decided"], "no-such-award"), "has no award no-such-award")


def test_agreement_steps_out_of_order_are_refused(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    refused(integrator, admin, world, "/agreements/{agreement}/activate", ACTIVATION,
            "cannot activate it: the agreement is active, not drafted")
    at_draft = {**world, "agreement": world["drafted"]}
    for path, body in [("/agreements/{agreement}/variations", VARIATION),
                       ("/agreements/{agreement}/extensions", EXTENSION),
                       ("/agreements/{agreement}/business-cases", BUSINESS_CASE),
                       ("/agreements/{agreement}/end", ENDING)]:
        refused(integrator, admin, at_draft, path, body, "the agreement is drafted, not active")
    refused(integrator, admin, at_draft, "/agreements/{agreement}/spend", spend_body(P2),
            "nothing can be paid before the agreement is active")


def test_money_rules_are_refused_with_nothing_changed(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    refused(integrator, admin, world, "/agreements/{agreement}/spend",
            spend_body(P1, "300000.01"), "over the £300,000.00 budget")
    call(integrator, f"/agreements/{world['agreement']}/spend", spend_body(P1, "300000.00"),
         admin)
    refused(integrator, admin, world, "/agreements/{agreement}/variations",
            {**VARIATION, "budget_change": "-0.01"}, "below the £300,000.00 already spent")
    refused(integrator, admin, world, "/agreements/{agreement}/variations",
            {**VARIATION, "budget_change": "-300000.00"}, "zero or below")


def test_a_business_case_is_decided_once(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    approved = call(integrator,
                    f"/agreements/{world['agreement']}/business-cases/{world['case']}/approve",
                    REASON, admin, 200)
    assert approved["agreement"]["budget"] == "345000.00"
    for action in ("approve", "reject"):
        refused(integrator, admin, world,
                f"/agreements/{{agreement}}/business-cases/{{case}}/{action}", REASON,
                f"business case {world['case']} is already approved")
        refused(integrator, admin, world,
                f"/agreements/{{agreement}}/business-cases/nope/{action}", REASON,
                "no business case nope")


def test_an_ended_agreement_refuses_changes(
    integrator: TestClient, admin: Auth, world: dict[str, str]
) -> None:
    ended = call(integrator, f"/agreements/{world['agreement']}/end",
                 {**ENDING, "how": "exited", "exit_plan_executed": True,
                  "exit_notes": "handed over"}, admin, 200)
    assert ended["status"] == "ended"
    for path, body in [("/agreements/{agreement}/activate", ACTIVATION),
                       ("/agreements/{agreement}/variations", VARIATION),
                       ("/agreements/{agreement}/extensions", EXTENSION),
                       ("/agreements/{agreement}/business-cases", BUSINESS_CASE),
                       ("/agreements/{agreement}/business-cases/{case}/approve", REASON),
                       ("/agreements/{agreement}/end", ENDING)]:
        refused(integrator, admin, world, path, body, "the agreement is ended")
    # Paying what was owed is still recorded after the end.
    paid = call(integrator, f"/agreements/{world['agreement']}/spend", spend_body(P1), admin)
    assert paid["agreement"]["spent"] == "10000.00"


# --------------------------------------------------------------------------- the whole commission


def register_and_approve(registry: TestClient, admin: Auth, name: str, kind: str,
                         approve: bool = True) -> str:
    body: dict[str, Any] = {"name": name, "organisation_type": kind}
    if kind == "sme":
        body["sme_size"] = {"headcount": 12, "turnover_gbp": 900_000}
    provider_id: str = call(registry, "/providers", body, admin)["provider_id"]
    if approve:
        call(registry, f"/providers/{provider_id}/review",
             {"reason": "application complete"}, admin, 200)
        decided = call(registry, f"/providers/{provider_id}/approve",
                       {"reason": "meets the council's standards"}, admin, 200)
        assert decided["provider"]["status"] == "approved"
    return provider_id


def test_a_whole_commission_from_approved_providers_to_lessons(
    registry: TestClient, integrator: TestClient, admin: Auth, commissioner: Auth,
    auth: Callable[..., Auth], performance: None,
) -> None:
    hillside = register_and_approve(registry, admin, "Hillside Kitchen", "vcse")
    valley = register_and_approve(registry, admin, "Valley Fitness", "sme")
    trust = register_and_approve(registry, admin, "Northside Leisure Trust", "public_body")
    applicant = register_and_approve(registry, admin, "Riverside Walkers", "community_group",
                                     approve=False)

    def network_status(provider_id: str) -> str | None:
        response = integrator.get(f"/network/providers/{provider_id}", headers=admin)
        return response.json()["status"] if response.status_code == 200 else None

    for provider_id in (hillside, valley, trust):
        eventually(lambda p=provider_id: network_status(p), lambda s: s == "approved")
    # The log is partitioned by stream, so the applicant may show up on its own time.
    eventually(lambda: network_status(applicant), lambda s: s == "applied")

    # The council's scheme of delegation, then the need, pooled with two partners.
    set_scheme(integrator, admin)
    need = call(integrator, "/needs", NEED, commissioner)
    need_id = need["need_id"]
    call(integrator, f"/needs/{need_id}/contributions", CONTRIBUTION, commissioner)
    pledged = call(integrator, f"/needs/{need_id}/contributions",
                   {"partner": "Northshire Police", "amount": "150000.50"}, commissioner)
    assert pledged["need"]["pooled_budget"] == "1400000.50"
    assert pledged["need"]["contributions_by_partner"] == {
        LEAD: "1000000.00", "Northshire ICB": "250000.00", "Northshire Police": "150000.50",
    }

    # Options, market engagement and the decision.
    appraised = call(integrator, f"/needs/{need_id}/options", OPTIONS, commissioner, 200)
    assert (appraised["stage"], appraised["recommended"]) == ("options", "mixed")
    engaged = call(integrator, f"/needs/{need_id}/market-engagement",
                   {**ENGAGEMENT, "provider_ids": [hillside, valley, trust, applicant]},
                   commissioner, 200)
    assert engaged["stage"] == "market_engagement"
    response = integrator.post(
        f"/needs/{need_id}/decisions",
        json=decision(("Walks", "informal_sla", "1000.00", [UUID(applicant)])), headers=admin)
    assert response.status_code == 409
    assert f"provider {applicant} is applied" in response.json()["detail"]
    decided = call(integrator, f"/needs/{need_id}/decisions", decision(
        ("Family cooking sessions", "grant", "300000.00", [UUID(hillside)]),
        ("Activity programme", "formal_contract", "800000.00", [UUID(valley), UUID(trust)]),
        ("Holiday clubs", "shared_service", "200000.00", [UUID(trust)]),
    ), commissioner)
    cooking, activity, clubs = decided["award_ids"]
    assert decided["need"]["stage"] == "decision"
    assert decided["need"]["committed"] == "1300000.00"
    call(integrator, f"/needs/{need_id}/stage", STAGE, commissioner, 200)

    # Three agreements, one per award.
    cooking_id = call(integrator, "/agreements", agreement_body(
        need_id, cooking, outcomes=[{"outcome_id": need["outcomes"][0]["outcome_id"],
                                     "target": "17%"}],
        reward_terms={"payment_by_results_share_pct": "10", "bonus_max": "20000"},
        risk_share={"council_pct": "70", "provider_pct": "30"},
        break_clauses=["either party on six months' notice"]), commissioner)["agreement_id"]
    activity = call(integrator, "/agreements", agreement_body(
        need_id, activity, title="Active Northshire",
        parties=[{"provider_id": valley, "allocation": "600000.00"},
                 {"provider_id": trust, "allocation": "200000.00"}]), commissioner)
    activity_id = activity["agreement_id"]
    assert activity["title"] == "Active Northshire"
    assert activity["status"] == "drafted"
    clubs_id = call(integrator, "/agreements", agreement_body(need_id, clubs),
                    commissioner)["agreement_id"]
    for agreement_id in (cooking_id, activity_id, clubs_id):
        signed = call(integrator, f"/agreements/{agreement_id}/sign", SIGNATURE, commissioner,
                      200)
        assert (signed["signed_on"], signed["signatories"]) == (TODAY, SIGNATURE["signatories"])
        activated = call(integrator, f"/agreements/{agreement_id}/activate", ACTIVATION,
                         commissioner, 200)
        assert (activated["status"], activated["activated_on"]) == ("active", TODAY)

    # Flexibility: a variation, an extension, business cases; then spend and an exit.
    varied = call(integrator, f"/agreements/{activity_id}/variations", VARIATION, commissioner)
    assert varied["agreement"]["budget"] == "850000.00"
    assert [p["allocation"] for p in varied["agreement"]["parties"]] == ["637500.00",
                                                                         "212500.00"]
    extended = call(integrator, f"/agreements/{activity_id}/extensions", EXTENSION,
                    commissioner)
    assert extended["agreement"]["ends_on"] == "2030-03-31"
    case = call(integrator, f"/agreements/{cooking_id}/business-cases", BUSINESS_CASE,
                commissioner)["id"]
    # Not approved by the commissioner who proposed it.
    response = integrator.post(f"/agreements/{cooking_id}/business-cases/{case}/approve",
                               json=REASON, headers=commissioner)
    assert response.status_code == 403
    assert "commissioner:jo proposed this business case" in response.text
    approved = call(integrator, f"/agreements/{cooking_id}/business-cases/{case}/approve",
                    REASON, admin, 200)
    assert approved["agreement"]["budget"] == "345000.00"
    other = call(integrator, f"/agreements/{cooking_id}/business-cases",
                 {**BUSINESS_CASE, "cost": "5000"}, commissioner)["id"]
    rejected = call(integrator, f"/agreements/{cooking_id}/business-cases/{other}/reject",
                    {"reason": "covered by the activity programme"}, commissioner, 200)
    assert rejected["budget"] == "345000.00"
    call(integrator, f"/agreements/{cooking_id}/spend", spend_body(hillside, "86250.00"),
         commissioner)
    call(integrator, f"/agreements/{activity_id}/spend", spend_body(valley, "150000.00"),
         commissioner)
    call(integrator, f"/agreements/{activity_id}/spend", spend_body(trust, "50000.00"),
         commissioner)
    ended = call(integrator, f"/agreements/{clubs_id}/end", {
        "how": "exited", "ended_on": "2027-08-31", "reason": "moved to the leisure trust",
        "exit_plan_executed": True, "exit_notes": "staff and kit transferred"}, commissioner, 200)
    assert ended["status"] == "ended"

    # Lessons for others.
    lesson = call(integrator, "/lessons", lesson_body(
        need_id=need_id, agreement_id=clubs_id, stage="exit", went="well",
        what="a clean hand-over", why="the exit plan was written on day one",
        tags=["Exit", "exit", "planning"]), commissioner)
    assert UUID(lesson["id"])
    call(integrator, "/lessons", lesson_body(need_id=need_id), commissioner)
    call(integrator, f"/needs/{need_id}/stage", {"stage": "management", "notes": "running"},
         commissioner, 200)

    # The records, as their own streams have them, for any council reader.
    staff = auth(Role.COUNCIL_STAFF)
    record = need_record(integrator, staff, need_id)
    assert record["stage"] == "management"
    assert record["is_open"] is True
    assert record["pooled_budget"] == "1400000.50"
    # 1,300,000 awarded + 50,000 (the variation) + 45,000 (the business case)
    assert record["committed"] == "1395000.00"
    assert [c["partner"] for c in record["contributions"]] == ["Northshire ICB",
                                                               "Northshire Police"]
    assert record["engagements"][0]["provider_ids"] == [hillside, valley, trust, applicant]
    (made,) = record["decisions"]
    assert [(a["title"], a["arrangement_type"], a["allocation"]) for a in made["awards"]] == [
        ("Family cooking sessions", "grant", "300000.00"),
        ("Activity programme", "formal_contract", "800000.00"),
        ("Holiday clubs", "shared_service", "200000.00"),
    ]
    assert record["version"] == 10

    cooking_record = agreement_record(integrator, staff, cooking_id)
    assert cooking_record["budget"] == "345000.00"
    assert cooking_record["spent"] == "86250.00"
    assert cooking_record["parties"] == [{"provider_id": hillside, "allocation": "345000.00"}]
    assert cooking_record["risk_share"] == {"council_pct": "70", "provider_pct": "30",
                                            "notes": None}
    assert [(v["kind"], v["budget_change"], v["business_case_id"])
            for v in cooking_record["variations"]] == [("business_case", "45000.00", case)]
    assert {c["business_case_id"]: c["status"] for c in cooking_record["business_cases"]} == {
        case: "approved", other: "rejected"}

    activity_record = agreement_record(integrator, auth(Role.COUNCIL_STAFF), activity_id)
    assert activity_record["status"] == "active"
    assert [(v["kind"], v["budget_change"], v["new_budget"])
            for v in activity_record["variations"]] == [("growth", "50000.00", "850000.00")]
    assert [(e["previous_end"], e["new_end"]) for e in activity_record["extensions"]] == [
        ("2029-03-31", "2030-03-31")]
    assert activity_record["spent"] == "200000.00"
    assert activity_record["version"] == 7

    clubs_record = agreement_record(integrator, staff, clubs_id)
    assert clubs_record["ending"] == {
        "how": "exited", "ended_on": "2027-08-31", "reason": "moved to the leisure trust",
        "exit_plan_executed": True, "exit_notes": "staff and kit transferred"}
    assert clubs_record["parties"] == [{"provider_id": trust, "allocation": "200000.00"}]

    # What the integrator will publish: every event of the commission, as its contract says.
    published = stored_events(integrator)
    by_stream: dict[str, list[str]] = {}
    for envelope in published:
        by_stream.setdefault(envelope.stream_id, []).append(envelope.type)
    assert by_stream[need_id] == [
        "NeedDefined", "NeedContributionPledged", "NeedContributionPledged", "OptionsAppraised",
        "MarketEngaged", "CommissioningDecided", "NeedStageReached", "CommitmentVaried",
        "CommitmentVaried", "NeedStageReached",
    ]
    assert by_stream[cooking_id] == [
        "AgreementDrafted", "AgreementSigned", "AgreementActivated", "BusinessCaseProposed",
        "BusinessCaseApproved", "AgreementVaried", "BusinessCaseProposed",
        "BusinessCaseRejected", "SpendRecorded",
    ]
    assert by_stream[clubs_id] == ["AgreementDrafted", "AgreementSigned", "AgreementActivated",
                                   "AgreementEnded"]
    # The admin set the scheme and approved the business case (with its commitment); the
    # commissioner did everything else.
    assert {e.actor for e in published if e.type not in (
        "SchemeOfDelegationAdopted", "DelegationLimitsSet", "BusinessCaseApproved",
        "AgreementVaried", "CommitmentVaried")} == {"commissioner:jo"}
    assert {e.actor for e in published if e.type == "BusinessCaseApproved"} == {
        "integrator_admin:sam"}
