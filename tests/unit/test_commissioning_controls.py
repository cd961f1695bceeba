"""The integrator's commissioning controls over HTTP, right by construction: the pooled envelope
holds after the award (variations and business cases included), a scheme of delegation says
who may take which financial decision up to what amount (never the proposer), and dates that
cannot be true are refused (spend for a month not yet begun, extensions with no performance
data, before the start or past the need's horizon, signatures in the future or before the
decision, activation before signature).

Business time in these tests is the real date (the service runs in its own thread), so dates
are worked out from today."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts.provider_registry import ProviderStatus
from council.platform.identity import Role, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.service import SPEC as INTEGRATOR

Auth = dict[str, str]
LEAD = "Northshire County Council"
P1, P2 = (UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in (1, 2))
TODAY = datetime.now(UTC).date()

NEED = {
    "title": "Healthy weight for teenagers", "service_area": "weight-management",
    "population": {"description": "Young people aged 13 to 17 in Northshire"},
    "outcomes": [{"description": "Fewer teenagers living with obesity"}],
    "budget_envelope": "1000000.00", "starts_on": "2026-04-01", "ends_on": "2034-03-31",
}
OPTIONS = {
    "options": [{"option": "mixed", "description": "VCSE grants and a formal contract"}],
    "recommended": "mixed", "rationale": "the mix reaches families the council does not",
}
REASON = {"reason": "need and outcomes agreed"}
# What a council sets: a commissioner decides up to £50,000 of each kind, an integrator admin
# without a limit.
KINDS = ("award", "variation", "extension", "business_case", "spend", "envelope_raise",
         "performance_override")
SCHEME = {
    "limits": [{"role": "commissioner", "kind": k, "up_to": "50000.00"} for k in KINDS]
    + [{"role": "integrator_admin", "kind": k, "up_to": None} for k in KINDS],
    "reason": "Financial regulations 2026, part 4",
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[[Role, str], Auth]:
    def make(role: Role, label: str) -> Auth:
        return {"Authorization": f"Bearer {tokens.create(role, label).token}"}

    return make


@pytest.fixture
def admin(auth: Callable[[Role, str], Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN, "sam")


@pytest.fixture
def jo(auth: Callable[[Role, str], Auth]) -> Auth:
    return auth(Role.COMMISSIONER, "Jo Bloggs")


@pytest.fixture
def kim(auth: Callable[[Role, str], Auth]) -> Auth:
    return auth(Role.COMMISSIONER, "Kim Lee")


@pytest.fixture
def evidence() -> dict[UUID, str]:
    """Performance data the integrator knows of, by agreement (none unless a test adds it)."""
    return {}


@pytest.fixture
def client(settings: Settings, evidence: dict[UUID, str]) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as test_client:
        runtime: Runtime = test_client.app.state.runtime  # type: ignore[attr-defined]
        statuses = {P1: ProviderStatus.APPROVED, P2: ProviderStatus.APPROVED}
        runtime.app.provider_status = statuses.get  # type: ignore[attr-defined]
        runtime.app.performance_evidence = evidence.get  # type: ignore[attr-defined]
        yield test_client


def call(client: TestClient, path: str, body: Any, headers: Auth, expect: int = 201) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def refused(client: TestClient, path: str, body: Any, headers: Auth, status: int,
            *words: str) -> str:
    """The step is refused with `status`, saying `words`; returns the answer's text."""
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.text
    for said in words:
        assert said in response.text, (said, response.text)
    return response.text


def set_scheme(client: TestClient, admin: Auth, scheme: dict[str, Any] = SCHEME) -> Any:
    response = client.put(f"/councils/{LEAD}/scheme-of-delegation", json=scheme, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def decided_need(client: TestClient, headers: Auth, *allocations: str,
                 pooled: str | None = None) -> tuple[str, list[str]]:
    """A need awarding `allocations`, with the ICB pooling `pooled` first."""
    need_id: str = call(client, "/needs", NEED, headers)["need_id"]
    if pooled:
        call(client, f"/needs/{need_id}/contributions",
             {"partner": "Northshire ICB", "amount": pooled}, headers)
    call(client, f"/needs/{need_id}/options", OPTIONS, headers, 200)
    decided = call(client, f"/needs/{need_id}/decisions", {
        "awards": [{"title": f"Award {i}", "arrangement_type": "grant",
                    "provider_ids": [str(P1)], "allocation": a}
                   for i, a in enumerate(allocations)],
        "rationale": "best value for the outcomes", "decision_maker": "Cabinet"}, headers)
    return need_id, decided["award_ids"]


def active_agreement(client: TestClient, headers: Auth, need_id: str, award_id: str,
                     starts_on: str = "2026-07-01", ends_on: str = "2029-03-31") -> str:
    """Drafted, signed today and in force from today."""
    agreement_id: str = call(client, "/agreements", {
        "need_id": need_id, "award_id": award_id, "starts_on": starts_on, "ends_on": ends_on,
        "exit_plan": "hand over to the leisure trust"}, headers)["agreement_id"]
    call(client, f"/agreements/{agreement_id}/sign",
         {"signed_on": TODAY.isoformat(), "signatories": ["Jo Bloggs for the council",
                                                          "A. Provider for Hillside"]},
         headers, 200)
    call(client, f"/agreements/{agreement_id}/activate",
         {"activated_on": TODAY.isoformat()}, headers, 200)
    return agreement_id


def record(client: TestClient, headers: Auth, kind: str, record_id: str) -> dict[str, Any]:
    response = client.get(f"/{kind}/{record_id}/record", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def growth(change: str) -> dict[str, Any]:
    return {"kind": "growth", "budget_change": change, "reason": "demand is up"}


# --------------------------------------------------------------------------- the pooled envelope


@pytest.fixture
def pooled(client: TestClient, admin: Auth) -> tuple[str, str]:
    """A need of £1,000,000 with £200,000 pooled by the ICB (pooled envelope £1,200,000), of
    which £1,150,000 is awarded to one agreement, active."""
    need_id, (award_id,) = decided_need(client, admin, "1150000.00", pooled="200000.00")
    return need_id, active_agreement(client, admin, need_id, award_id)


def test_a_variation_cannot_commit_more_than_the_pooled_envelope(
    client: TestClient, admin: Auth, pooled: tuple[str, str]
) -> None:
    need_id, agreement_id = pooled
    # committed 1,150,000 + 80,000 = 1,230,000 against 1,000,000 + 200,000 = 1,200,000:
    # 30,000 short.
    refused(client, f"/agreements/{agreement_id}/variations", growth("80000.00"), admin, 409,
            "this variation of £80,000.00 would commit £1,230,000.00 against the pooled "
            "envelope of £1,200,000.00: £30,000.00 short; raise the envelope first")
    assert record(client, admin, "agreements", agreement_id)["budget"] == "1150000.00"
    assert record(client, admin, "needs", need_id)["committed"] == "1150000.00"


def test_an_approved_business_case_cannot_commit_more_than_the_pooled_envelope(
    client: TestClient, admin: Auth, jo: Auth, pooled: tuple[str, str]
) -> None:
    _, agreement_id = pooled
    case = call(client, f"/agreements/{agreement_id}/business-cases",
                {"need": "the new estate", "expected_outcomes": "200 more families",
                 "cost": "60000.00"}, jo)["id"]
    # 1,150,000 + 60,000 = 1,210,000 against 1,200,000: 10,000 short.
    refused(client, f"/agreements/{agreement_id}/business-cases/{case}/approve", REASON, admin,
            409, "this business case of £60,000.00 would commit £1,210,000.00 against the "
            "pooled envelope of £1,200,000.00: £10,000.00 short")
    assert record(client, admin, "agreements", agreement_id)["budget"] == "1150000.00"


def test_raising_the_envelope_by_a_recorded_decision_makes_room(
    client: TestClient, admin: Auth, pooled: tuple[str, str]
) -> None:
    need_id, agreement_id = pooled
    raised = call(client, f"/needs/{need_id}/envelope-raises",
                  {"amount": "30000.00", "reason": "Cabinet top-up, 4 March"}, admin)
    # 1,000,000 + 30,000 of the council's own, + 200,000 of the ICB's = 1,230,000.
    assert (raised["need"]["budget_envelope"], raised["need"]["pooled_budget"]) == (
        "1030000.00", "1230000.00")
    (top_up,) = raised["need"]["envelope_raises"]
    assert (top_up["amount"], top_up["reason"], top_up["decided_by"]) == (
        "30000.00", "Cabinet top-up, 4 March", "integrator_admin:sam")

    varied = call(client, f"/agreements/{agreement_id}/variations", growth("80000.00"), admin)
    assert varied["agreement"]["budget"] == "1230000.00"
    need = record(client, admin, "needs", need_id)
    assert need["committed"] == need["pooled_budget"] == "1230000.00"
    refused(client, f"/agreements/{agreement_id}/variations", growth("0.01"), admin, 409,
            "£0.01 short")


def test_a_further_partner_contribution_also_makes_room(
    client: TestClient, admin: Auth, pooled: tuple[str, str]
) -> None:
    need_id, agreement_id = pooled
    call(client, f"/needs/{need_id}/contributions",
         {"partner": "Northshire Police", "amount": "30000.00"}, admin)
    varied = call(client, f"/agreements/{agreement_id}/variations", growth("80000.00"), admin)
    assert varied["agreement"]["budget"] == "1230000.00"


def test_a_budget_decrease_frees_the_envelope(
    client: TestClient, admin: Auth, pooled: tuple[str, str]
) -> None:
    need_id, agreement_id = pooled
    call(client, f"/agreements/{agreement_id}/variations",
         {"kind": "budget_change", "budget_change": "-50000.00", "reason": "savings"}, admin)
    # 1,150,000 - 50,000 = 1,100,000 committed: 100,000 of the 1,200,000 free again.
    assert record(client, admin, "needs", need_id)["committed"] == "1100000.00"
    call(client, f"/agreements/{agreement_id}/variations", growth("100000.00"), admin)
    assert record(client, admin, "needs", need_id)["committed"] == "1200000.00"
    refused(client, f"/agreements/{agreement_id}/variations", growth("0.01"), admin, 409,
            "would commit £1,200,000.01 against the pooled envelope of £1,200,000.00: "
            "£0.01 short")


def test_the_envelope_is_raised_only_with_a_reason_and_by_more_than_nothing(
    client: TestClient, admin: Auth, pooled: tuple[str, str]
) -> None:
    need_id, _ = pooled
    for body, field in (({"amount": "0", "reason": "top-up"}, "amount"),
                        ({"amount": "10.00"}, "reason")):
        refused(client, f"/needs/{need_id}/envelope-raises", body, admin, 422, field)


# --------------------------------------------------------------------------- who may decide


def test_the_proposer_may_not_approve_their_own_business_case(
    client: TestClient, admin: Auth, jo: Auth, kim: Auth
) -> None:
    set_scheme(client, admin)
    need_id, (award_id,) = decided_need(client, admin, "100000.00")
    agreement_id = active_agreement(client, admin, need_id, award_id)
    case = call(client, f"/agreements/{agreement_id}/business-cases",
                {"need": "the new estate", "expected_outcomes": "more families",
                 "cost": "45000.00"}, jo)["id"]

    refused(client, f"/agreements/{agreement_id}/business-cases/{case}/approve", REASON, jo,
            403, "commissioner:Jo Bloggs proposed this business case", "may not approve it")
    approved = call(client, f"/agreements/{agreement_id}/business-cases/{case}/approve",
                    REASON, kim, 200)
    (approval,) = approved["agreement"]["business_cases"]
    assert (approval["proposed_by"], approval["approved_by"]) == (
        "commissioner:Jo Bloggs", "commissioner:Kim Lee")


def test_a_commissioner_decides_up_to_their_limit_and_no_further(
    client: TestClient, admin: Auth, jo: Auth
) -> None:
    scheme = set_scheme(client, admin)
    assert scheme["set_on"] == TODAY.isoformat()
    need_id, (award_id,) = decided_need(client, jo, "50000.00")  # exactly the limit
    agreement_id = active_agreement(client, jo, need_id, award_id, ends_on="2030-03-31")

    said = refused(client, f"/agreements/{agreement_id}/variations", growth("80000.00"), jo,
                   403, f"commissioner:Jo Bloggs may approve variations up to £50,000.00 "
                   f"under {LEAD}'s scheme of delegation (set {TODAY.isoformat()}); this one "
                   "is £80,000.00: an integrator admin must approve it")
    assert "short" not in said
    refused(client, f"/needs/{need_id}/decisions", {
        "awards": [{"title": "More", "arrangement_type": "grant", "provider_ids": [str(P1)],
                    "allocation": "50000.01"}],
        "rationale": "more of the same", "decision_maker": "Cabinet"}, jo, 403,
        "may approve awards up to £50,000.00", "this one is £50,000.01")
    refused(client, f"/agreements/{agreement_id}/spend",
            {"provider_id": str(P1), "amount": "50000.01", "period": TODAY.strftime("%Y-%m")},
            jo, 403, "may approve spend up to £50,000.00")
    call(client, f"/agreements/{agreement_id}/variations", growth("50000.00"), jo)
    call(client, f"/agreements/{agreement_id}/variations", growth("80000.00"), admin)


def test_before_a_scheme_is_set_only_an_integrator_admin_decides(
    client: TestClient, admin: Auth, jo: Auth
) -> None:
    call(client, "/needs", NEED, jo)  # defining a need commits nothing
    need_id: str = call(client, "/needs", NEED, jo)["need_id"]
    call(client, f"/needs/{need_id}/options", OPTIONS, jo, 200)
    award = {"awards": [{"title": "A", "arrangement_type": "grant", "provider_ids": [str(P1)],
                         "allocation": "10.00"}],
             "rationale": "best value", "decision_maker": "Cabinet"}
    refused(client, f"/needs/{need_id}/decisions", award, jo, 403,
            f"no scheme of delegation is set for {LEAD}", "an integrator admin must set one")
    call(client, f"/needs/{need_id}/decisions", award, admin)


def test_only_an_integrator_admin_sets_the_scheme_and_council_staff_read_it(
    client: TestClient, admin: Auth, jo: Auth, auth: Callable[[Role, str], Auth]
) -> None:
    path = f"/councils/{LEAD}/scheme-of-delegation"
    staff = auth(Role.COUNCIL_STAFF, "Pat")
    assert client.get(path, headers=staff).status_code == 404  # none set yet
    assert client.put(path, json=SCHEME, headers=jo).status_code == 403
    assert client.put(path, json=SCHEME, headers=staff).status_code == 403
    set_scheme(client, admin)
    shown = client.get(path, headers=staff)
    assert shown.status_code == 200, shown.text
    assert shown.json()["council"] == LEAD
    assert {"role": "commissioner", "kind": "variation", "up_to": "50000.00"} in \
        shown.json()["limits"]
    twice = {**SCHEME, "limits": [SCHEME["limits"][0], SCHEME["limits"][0]]}
    response = client.put(path, json=twice, headers=admin)
    assert response.status_code == 422
    assert "limits" in response.text


# --------------------------------------------------------------------------- dates


def month_after(day: date) -> str:
    return (day.replace(day=28) + timedelta(days=5)).strftime("%Y-%m")


@pytest.fixture
def running(client: TestClient, admin: Auth) -> tuple[str, str]:
    """An agreement of £100,000 signed and in force from today, for a need to 2034-03-31."""
    need_id, (award_id,) = decided_need(client, admin, "100000.00")
    return need_id, active_agreement(client, admin, need_id, award_id)


def test_spend_for_a_month_not_yet_begun_is_refused(
    client: TestClient, admin: Auth, running: tuple[str, str]
) -> None:
    _, agreement_id = running
    spend = {"provider_id": str(P1), "amount": "100.00"}
    refused(client, f"/agreements/{agreement_id}/spend", {**spend, "period": month_after(TODAY)},
            admin, 422, "period", "not yet begun")
    call(client, f"/agreements/{agreement_id}/spend", {**spend, "period": TODAY.strftime("%Y-%m")},
         admin)


def test_an_extension_needs_performance_data_that_exists(
    client: TestClient, admin: Auth, running: tuple[str, str], evidence: dict[UUID, str]
) -> None:
    _, agreement_id = running
    path = f"/agreements/{agreement_id}/extensions"
    extension = {"new_end": "2030-03-31", "justification": "ahead of plan",
                 "performance_evidence": "the provider says it is going well"}
    refused(client, path, extension, admin, 409, "no performance data",
            "RAG assessment or measurement")
    evidence[UUID(agreement_id)] = "RAG green in 2026-Q2 (achievement 104.0% of target)"
    extended = call(client, path, extension, admin)
    (made,) = extended["agreement"]["extensions"]
    assert made["performance_data"] == "RAG green in 2026-Q2 (achievement 104.0% of target)"
    assert made["override_reason"] is None


def test_an_extension_without_performance_data_needs_an_authorised_override(
    client: TestClient, admin: Auth, jo: Auth, running: tuple[str, str]
) -> None:
    # A commissioner may extend this £100,000 agreement, but not override the want of data.
    set_scheme(client, admin, {**SCHEME, "limits": [
        {"role": "commissioner", "kind": "extension", "up_to": "100000.00"},
        *(limit for limit in SCHEME["limits"] if limit["role"] == "integrator_admin")]})
    _, agreement_id = running
    extension = {"new_end": "2030-03-31", "justification": "the service is new",
                 "performance_evidence": "first quarter's figures are not out yet",
                 "override_reason": "continuity of care over the winter"}
    refused(client, f"/agreements/{agreement_id}/extensions", extension, jo, 403,
            "may not approve performance overrides")
    extended = call(client, f"/agreements/{agreement_id}/extensions", extension, admin)
    (made,) = extended["agreement"]["extensions"]
    assert (made["override_reason"], made["override_approved_by"], made["performance_data"]) \
        == ("continuity of care over the winter", "integrator_admin:sam", None)


def test_an_extension_stays_within_the_needs_horizon(
    client: TestClient, admin: Auth, running: tuple[str, str], evidence: dict[UUID, str]
) -> None:
    _, agreement_id = running
    evidence[UUID(agreement_id)] = "RAG green in 2026-Q2"
    extension = {"new_end": "2034-04-01", "justification": "ahead of plan",
                 "performance_evidence": "green"}
    refused(client, f"/agreements/{agreement_id}/extensions", extension, admin, 422,
            "new_end", "2034-03-31")
    call(client, f"/agreements/{agreement_id}/extensions", {**extension, "new_end": "2034-03-31"},
         admin)


def test_an_extension_is_not_recorded_before_the_agreement_starts(
    client: TestClient, admin: Auth, evidence: dict[UUID, str]
) -> None:
    starts = TODAY + timedelta(days=40)
    need_id, (award_id,) = decided_need(client, admin, "100000.00")
    agreement_id = active_agreement(client, admin, need_id, award_id,
                                    starts_on=starts.isoformat(), ends_on="2031-03-31")
    evidence[UUID(agreement_id)] = "RAG green"
    refused(client, f"/agreements/{agreement_id}/extensions",
            {"new_end": "2032-03-31", "justification": "ahead of plan",
             "performance_evidence": "green"}, admin, 409,
            f"before the agreement starts on {starts.isoformat()}")


def test_an_agreement_is_signed_before_it_comes_into_force(
    client: TestClient, admin: Auth
) -> None:
    need_id, (award_id,) = decided_need(client, admin, "100000.00")
    agreement_id: str = call(client, "/agreements", {
        "need_id": need_id, "award_id": award_id, "starts_on": "2026-07-01",
        "ends_on": "2029-03-31", "exit_plan": "hand over"}, admin)["agreement_id"]
    path = f"/agreements/{agreement_id}"
    today = TODAY.isoformat()
    refused(client, f"{path}/activate", {"activated_on": today}, admin, 409,
            "not been signed")
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    signatories = {"signatories": ["Jo Bloggs for the council"]}
    refused(client, f"{path}/sign", {"signed_on": tomorrow, **signatories}, admin, 422,
            "signed_on", "future")
    refused(client, f"{path}/sign", {"signed_on": yesterday, **signatories}, admin, 422,
            "signed_on", f"before the commissioning decision of {today}")
    refused(client, f"{path}/sign", {"signed_on": today, "signatories": []}, admin, 422,
            "signatories")
    signed = call(client, f"{path}/sign", {"signed_on": today, **signatories}, admin, 200)
    assert (signed["signed_on"], signed["signatories"]) == (today, ["Jo Bloggs for the council"])
    refused(client, f"{path}/sign", {"signed_on": today, **signatories}, admin, 409,
            "already signed")
    refused(client, f"{path}/activate", {"activated_on": yesterday}, admin, 422,
            "activated_on", f"signed on {today}")
    assert call(client, f"{path}/activate", {"activated_on": today}, admin, 200)["status"] == \
        "active"


def test_the_api_documents_its_refusals(client: TestClient) -> None:
    """Each command that takes a financial decision says it may answer 403 (beyond the
    person's authority) and 409 (a rule broken); each that takes a date, 422."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, answers in {
        "/needs/{need_id}/decisions": {"403", "409"},
        "/needs/{need_id}/envelope-raises": {"403", "409"},
        "/agreements/{agreement_id}/variations": {"403", "409"},
        "/agreements/{agreement_id}/extensions": {"403", "409", "422"},
        "/agreements/{agreement_id}/business-cases/{case_id}/approve": {"403", "409"},
        "/agreements/{agreement_id}/spend": {"403", "409", "422"},
        "/agreements/{agreement_id}/sign": {"409", "422"},
        "/agreements/{agreement_id}/activate": {"409", "422"},
        "/councils/{council}/scheme-of-delegation": {"403"},
    }.items():
        method = "put" if path.startswith("/councils") else "post"
        documented = paths[path][method]["responses"]
        assert answers <= set(documented), (path, sorted(documented))
        assert all(documented[a]["description"] for a in answers)
