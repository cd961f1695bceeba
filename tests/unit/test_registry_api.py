"""The provider registry's HTTP API in process: registration with full details and unique
identifiers, the onboarding lifecycle with its credentials, details, capabilities, standing,
history, roles, bad input, and the events it publishes to the shared log."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts import spec_for
from council.kernel.contracts.provider_registry import ProviderStatus
from council.platform.identity import Role, TokenStore
from council.platform.runtime import MAX_BODY_BYTES, Runtime, create_service_app
from council.platform.settings import Settings
from council.services.provider_registry.application import claim_id_for
from council.services.provider_registry.domain.providers import TRANSITIONS
from council.services.provider_registry.service import SPEC
from tests.problems import assert_errors, loc_of

Auth = dict[str, str]
S = ProviderStatus
REASON = {"reason": "decided at the onboarding panel"}

# Lifecycle endpoint of each TRANSITIONS command.
ENDPOINT = {
    "start_review": "review", "approve": "approve", "reject": "reject", "suspend": "suspend",
    "reinstate": "reinstate", "exit": "exit", "graduate": "graduate", "incubate": "incubation",
}
PLAN = {
    "support_plan": "Mentoring and a start-up grant",
    "milestones": [{"title": "Safeguarding policy adopted", "due_on": "2026-09-30"},
                   {"title": "First 50 meals delivered"}],
    "reason": "a new community provider the market needs",
}


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[..., Auth]:
    def make(role: Role, label: str | None = None, provider_id: UUID | str | None = None) -> Auth:
        if role is Role.PROVIDER and provider_id is None:
            provider_id = uuid4()
        pid = UUID(str(provider_id)) if provider_id else None
        issued = tokens.create(role, label or f"{role.value}-user", pid)
        return bearer(issued.token)

    return make


@pytest.fixture
def admin(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN, "sam")


@pytest.fixture
def commissioner(auth: Callable[..., Auth]) -> Auth:
    return auth(Role.COMMISSIONER, "jo")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(SPEC, settings)) as test_client:
        yield test_client


def bearer(token: str) -> Auth:
    return {"Authorization": f"Bearer {token}"}


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def register(client: TestClient, headers: Auth, name: str = "Hillside Kitchen",
             kind: str = "vcse", **fields: Any) -> dict[str, Any]:
    body = {"name": name, "organisation_type": kind, **fields}
    if kind == "sme":
        body.setdefault("sme_size", {"headcount": 12, "turnover_gbp": 900_000})
    response = client.post("/providers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def decide(client: TestClient, headers: Auth, provider_id: str, command: str) -> Any:
    body = PLAN if command == "incubate" else REASON
    return client.post(f"/providers/{provider_id}/{ENDPOINT[command]}", json=body,
                       headers=headers)


def history(client: TestClient, headers: Auth, provider_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/providers/{provider_id}/history", headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def get(client: TestClient, headers: Auth, provider_id: str) -> dict[str, Any]:
    response = client.get(f"/providers/{provider_id}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def locations(response: Any) -> list[list[Any]]:
    return [loc_of(e) for e in response.json()["errors"]]


# Lifecycle steps (via the API) that bring an applicant to each status.
PATHS: dict[ProviderStatus, tuple[str, ...]] = {
    S.APPLIED: (),
    S.UNDER_REVIEW: ("start_review",),
    S.INCUBATING: ("start_review", "incubate"),
    S.APPROVED: ("start_review", "approve"),
    S.SUSPENDED: ("start_review", "approve", "suspend"),
    S.EXITED: ("start_review", "approve", "exit"),
    S.REJECTED: ("reject",),
}


def provider_at(client: TestClient, headers: Auth, status: ProviderStatus,
                **fields: Any) -> dict[str, Any]:
    created = register(client, headers, **fields)
    for command in PATHS[status]:
        response = decide(client, headers, created["provider_id"], command)
        assert response.status_code == 200, response.text
    found = get(client, headers, created["provider_id"])
    assert found["status"] == status.value
    return found


# --------------------------------------------------------------------------- registration


def test_a_provider_registers_with_full_details_normalised(
    client: TestClient, admin: Auth
) -> None:
    response = client.post("/providers", headers=admin, json={
        "name": "Hillside Kitchen Ltd",
        "organisation_type": "sme",
        "description": "Hot meals delivered to older people at home",
        "website": "https://hillside.example",
        "identifiers": {"companies_house": "sc 123456", "ukprn": " 1000 0001 "},
        "contact": {"name": "Ana Patel", "email": "ana@hillside.example",
                    "phone": "+44 113 496 0000"},
        "address": {"lines": ["1 Mill Lane"], "town": "Leeds", "postcode": "sw1a1aa"},
        "areas_served": ["Hillside", "Riverside"],
        "sme_size": {"headcount": 12, "turnover_gbp": 900_000},
    })

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/providers/{body['provider_id']}"
    assert (body["status"], body["version"], body["has_credentials"]) == ("applied", 1, False)
    assert body["details"] == {
        "description": "Hot meals delivered to older people at home",
        "website": "https://hillside.example",
        "identifiers": {"companies_house": "SC123456", "ukprn": "10000001"},
        "contact": {"name": "Ana Patel", "email": "ana@hillside.example",
                    "phone": "+44 113 496 0000"},
        "address": {"lines": ["1 Mill Lane"], "town": "Leeds", "postcode": "SW1A 1AA"},
        "areas_served": ["Hillside", "Riverside"],
        "sme_size": {"headcount": 12, "turnover_gbp": 900_000, "band": "small"},
    }
    assert (body["capabilities"], body["accreditations"], body["incubation"]) == ([], [], None)
    (registered,) = history(client, admin, body["provider_id"])
    assert registered["type"] == "ProviderRegistered"
    assert registered["data"]["identifiers"]["companies_house"] == "SC123456"
    assert registered["data"]["address"]["postcode"] == "SW1A 1AA"
    assert registered["data"]["sme_size"]["band"] == "small"


@pytest.mark.parametrize(
    ("headcount", "turnover", "band"),
    [(9, 2_000_000, "micro"), (10, 2_000_000, "small"), (249, 50_000_000, "medium")],
)
def test_an_sme_gets_its_size_band(
    client: TestClient, admin: Auth, headcount: int, turnover: int, band: str
) -> None:
    created = register(client, admin, kind="sme",
                       sme_size={"headcount": headcount, "turnover_gbp": turnover})
    assert created["details"]["sme_size"]["band"] == band


@pytest.mark.parametrize(
    ("fields", "field", "match"),
    [
        ({"organisation_type": "sme"}, "sme_size", "an SME must give its headcount and turnover"),
        ({"organisation_type": "sme", "sme_size": {"headcount": 250, "turnover_gbp": 1}},
         "sme_size", "register as large_private"),
        ({"organisation_type": "vcse", "sme_size": {"headcount": 3, "turnover_gbp": 1}},
         "sme_size", "applies only to organisation_type sme"),
        ({"organisation_type": "partnership"}, "members",
         "a partnership needs at least two distinct members"),
    ],
    ids=["sme-without-size", "sme-over-ceiling", "size-for-non-sme", "partnership-alone"],
)
def test_profile_rules_are_refused_on_registration(
    client: TestClient, admin: Auth, fields: dict[str, Any], field: str, match: str
) -> None:
    response = client.post("/providers", json={"name": "A", **fields}, headers=admin)

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert loc_of(error) == ["body", field]
    assert match in error["message"]
    assert runtime_of(client).app.recorder.max_notification_id() in (None, 0)


def test_a_partnership_names_registered_member_providers(
    client: TestClient, admin: Auth
) -> None:
    a = register(client, admin, "A", identifiers={"charity_number": "1234567"})["provider_id"]
    b = register(client, admin, "B")["provider_id"]

    created = register(client, admin, "A and B", "partnership", members=[a, b])
    assert created["details"]["members"] == [a, b]

    one = client.post("/providers", headers=admin,
                      json={"name": "Solo", "organisation_type": "partnership", "members": [a]})
    assert one.status_code == 422
    assert locations(one) == [["body", "members"]]
    assert "at least two distinct members" in one.text
    # Neither an unknown id nor the id of A's identifier claim (stored beside providers).
    for stranger in (str(uuid4()), str(claim_id_for("charity_number", "1234567"))):
        response = client.post("/providers", headers=admin, json={
            "name": "Ghosts", "organisation_type": "partnership", "members": [a, stranger]})
        assert response.status_code == 422
        assert locations(response) == [["body", "members"]]
        assert f"{stranger} is not a registered provider" in response.text
    members_of = client.post("/providers", headers=admin, json={
        "name": "Not a partnership", "organisation_type": "vcse", "members": [a, b]})
    assert members_of.status_code == 422
    assert locations(members_of) == [["body", "members"]]
    assert "only a partnership has member providers" in members_of.text


@pytest.mark.parametrize("closed", [S.REJECTED, S.EXITED])
def test_a_partnership_cannot_name_a_rejected_or_exited_member(
    client: TestClient, admin: Auth, closed: ProviderStatus
) -> None:
    a = register(client, admin, "A")["provider_id"]
    gone = provider_at(client, admin, closed, name="Gone")["provider_id"]
    before = runtime_of(client).app.recorder.max_notification_id()

    response = client.post("/providers", headers=admin, json={
        "name": "A and Gone", "organisation_type": "partnership", "members": [a, gone]})

    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert loc_of(error) == ["body", "members"]
    assert error["message"] == f"member {gone} is {closed.value}"
    assert runtime_of(client).app.recorder.max_notification_id() == before


def test_a_member_listed_twice_is_refused(client: TestClient, admin: Auth) -> None:
    a, b = register(client, admin, "A")["provider_id"], register(client, admin, "B")["provider_id"]
    before = runtime_of(client).app.recorder.max_notification_id()

    twice = client.post("/providers", headers=admin, json={
        "name": "A, A and B", "organisation_type": "partnership", "members": [a, a, b]})
    assert twice.status_code == 422, twice.text
    (error,) = twice.json()["errors"]
    assert loc_of(error) == ["body", "members"]
    assert "a member is listed more than once" in error["message"]
    assert runtime_of(client).app.recorder.max_notification_id() == before

    pid = register(client, admin, "A and B", "partnership", members=[a, b])["provider_id"]
    patched = client.patch(f"/providers/{pid}", json={"members": [a, b, b]}, headers=admin)
    assert patched.status_code == 422, patched.text
    assert locations(patched) == [["body", "members"]]
    assert "a member is listed more than once" in patched.text
    assert get(client, admin, pid)["details"]["members"] == [a, b]


def test_null_areas_served_registers_as_an_empty_list_and_is_published(
    client: TestClient, admin: Auth
) -> None:
    response = client.post("/providers", headers=admin, json={
        "name": "Hillside Kitchen", "organisation_type": "vcse", "areas_served": None})

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["details"]["areas_served"] == []
    pid = created["provider_id"]
    assert get(client, admin, pid)["details"]["areas_served"] == []

    # The event keeps its contract (a list, never null), so the relay publishes it.
    runtime = runtime_of(client)
    runtime.relay.drain()
    assert runtime.relay.pending() == 0
    log = runtime.event_log
    published = {record.envelope.event_id: record.envelope  # the relay is at-least-once
                 for batch in log.read_all([log.topic_for("provider_registry")])
                 for record in batch if record.envelope.stream_id == pid}
    (registered,) = published.values()
    assert registered.type == "ProviderRegistered"
    assert registered.data["areas_served"] == []


@pytest.mark.parametrize(
    ("scheme", "typed", "stored", "label"),
    [
        ("companies_house", "sc 123456", "SC123456", "Companies House number"),
        ("charity_number", "1234567", "1234567", "charity number"),
        ("ukprn", "10000001", "10000001", "UK provider reference number"),
    ],
)
def test_an_identifier_is_registered_to_one_provider_only(
    client: TestClient, admin: Auth, scheme: str, typed: str, stored: str, label: str
) -> None:
    holder = register(client, admin, "Holder", identifiers={scheme: stored})
    before = runtime_of(client).app.recorder.max_notification_id()

    response = client.post("/providers", headers=admin, json={
        "name": "Latecomer", "organisation_type": "vcse", "identifiers": {scheme: typed}})

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"{label} {stored} is already registered to provider {holder['provider_id']}"
    )
    assert runtime_of(client).app.recorder.max_notification_id() == before


@pytest.mark.parametrize("closing", ["reject", "exit"])
def test_an_identifier_is_freed_when_its_holder_is_rejected_or_exits(
    client: TestClient, admin: Auth, closing: str
) -> None:
    holder = provider_at(client, admin, S.APPROVED if closing == "exit" else S.APPLIED,
                         identifiers={"companies_house": "12345678"})
    assert decide(client, admin, holder["provider_id"], closing).status_code == 200

    again = register(client, admin, "Successor", identifiers={"companies_house": "12345678"})

    assert again["details"]["identifiers"] == {"companies_house": "12345678"}
    # ... and the new holder keeps it: a third applicant is refused naming the successor.
    third = client.post("/providers", headers=admin, json={
        "name": "Third", "organisation_type": "vcse",
        "identifiers": {"companies_house": "12345678"}})
    assert third.status_code == 409
    assert again["provider_id"] in third.json()["detail"]
    # The closed record still shows what it was registered under.
    assert get(client, admin, holder["provider_id"])["details"]["identifiers"] == {
        "companies_house": "12345678"}


def test_a_suspended_provider_keeps_its_identifier(client: TestClient, admin: Auth) -> None:
    provider_at(client, admin, S.SUSPENDED, identifiers={"charity_number": "7654321"})
    response = client.post("/providers", headers=admin, json={
        "name": "Copycat", "organisation_type": "vcse",
        "identifiers": {"charity_number": "7654321"}})
    assert response.status_code == 409


def test_a_retried_registration_with_identifiers_is_registered_once(
    client: TestClient, admin: Auth
) -> None:
    body = {"name": "Hillside", "organisation_type": "vcse",
            "identifiers": {"charity_number": "1234567"}}
    headers = {**admin, "Idempotency-Key": "apply-1"}
    first = client.post("/providers", json=body, headers=headers)
    again = client.post("/providers", json=body, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_a_retry_is_recognised_after_the_record_has_changed(
    client: TestClient, admin: Auth
) -> None:
    body = {"name": "Hillside", "organisation_type": "vcse", "description": "Meals"}
    headers = {**admin, "Idempotency-Key": "apply-2"}
    pid = client.post("/providers", json=body, headers=headers).json()["provider_id"]
    client.patch(f"/providers/{pid}", json={"name": "Hillside Meals", "description": "Food"},
                 headers=admin)

    again = client.post("/providers", json=body, headers=headers)

    assert again.status_code == 200, again.text
    assert again.json()["provider_id"] == pid
    assert again.json()["name"] == "Hillside Meals"  # the record as it stands
    other = client.post("/providers", json={**body, "name": "Hillside Meals"}, headers=headers)
    assert other.status_code == 409
    assert len(history(client, admin, pid)) == 2


# --------------------------------------------------------------------------- lifecycle


def test_approval_issues_credentials_that_suspension_revokes_and_reinstatement_renews(
    client: TestClient, admin: Auth
) -> None:
    pid = register(client, admin)["provider_id"]
    other = register(client, admin, "Valley Care")["provider_id"]

    review = decide(client, admin, pid, "start_review")
    assert review.status_code == 200
    assert review.json()["provider"]["status"] == "under_review"
    assert review.json()["credentials"] is None

    approved = decide(client, admin, pid, "approve")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["provider"]["status"] == "approved"
    assert body["provider"]["has_credentials"] is True
    first = bearer(body["credentials"]["token"])
    assert body["credentials"]["token"].startswith(f"cit_{body['credentials']['token_id']}_")
    assert get(client, first, pid)["provider_id"] == pid
    assert client.get(f"/providers/{other}", headers=first).status_code == 404
    assert client.get(f"/providers/{pid}/history", headers=first).status_code == 200
    # A provider's token is for reading and reporting, not for running the registry.
    assert decide(client, first, pid, "suspend").status_code == 403

    suspended = decide(client, admin, pid, "suspend")
    assert suspended.status_code == 200
    assert suspended.json()["provider"]["status"] == "suspended"
    assert suspended.json()["provider"]["has_credentials"] is False
    assert client.get(f"/providers/{pid}", headers=first).status_code == 401

    reinstated = decide(client, admin, pid, "reinstate")
    assert reinstated.status_code == 200
    assert reinstated.json()["provider"]["status"] == "approved"
    second = bearer(reinstated.json()["credentials"]["token"])
    assert reinstated.json()["credentials"]["token_id"] != body["credentials"]["token_id"]
    assert get(client, second, pid)["status"] == "approved"
    assert client.get(f"/providers/{pid}", headers=first).status_code == 401

    exited = decide(client, admin, pid, "exit")
    assert exited.status_code == 200
    assert exited.json()["provider"]["status"] == "exited"
    assert exited.json()["credentials"] is None
    assert client.get(f"/providers/{pid}", headers=second).status_code == 401

    assert [e["type"] for e in history(client, admin, pid)] == [
        "ProviderRegistered", "ProviderReviewStarted", "ProviderApproved", "ProviderSuspended",
        "ProviderReinstated", "ProviderExited",
    ]


@pytest.mark.parametrize("status", [S.APPLIED, S.UNDER_REVIEW, S.INCUBATING])
def test_an_application_is_rejected(
    client: TestClient, admin: Auth, status: ProviderStatus
) -> None:
    pid = provider_at(client, admin, status)["provider_id"]
    response = decide(client, admin, pid, "reject")
    assert response.status_code == 200
    assert response.json()["provider"]["status"] == "rejected"
    assert history(client, admin, pid)[-1]["data"]["reason"] == REASON["reason"]


def test_incubation_to_graduation(client: TestClient, admin: Auth,
                                  commissioner: Auth) -> None:
    pid = provider_at(client, admin, S.UNDER_REVIEW)["provider_id"]

    started = decide(client, admin, pid, "incubate")
    assert started.status_code == 200, started.text
    first, second = started.json()["milestone_ids"]
    incubation = started.json()["provider"]["incubation"]
    assert incubation["support_plan"] == PLAN["support_plan"]
    assert [(m["milestone_id"], m["title"], m["due_on"], m["met"]) for m in
            incubation["milestones"]] == [
        (first, "Safeguarding policy adopted", "2026-09-30", False),
        (second, "First 50 meals delivered", None, False),
    ]

    early = decide(client, admin, pid, "graduate")
    assert early.status_code == 409
    assert early.json()["detail"] == (
        "milestones not yet met: Safeguarding policy adopted; First 50 meals delivered")

    met = client.post(f"/providers/{pid}/incubation/milestones/{first}/met",
                      json={"evidence": "policy v1 adopted"}, headers=commissioner)
    assert met.status_code == 200, met.text
    assert met.json()["incubation"]["milestones"][0]["met"] is True
    assert met.json()["incubation"]["milestones"][0]["evidence"] == "policy v1 adopted"
    twice = client.post(f"/providers/{pid}/incubation/milestones/{first}/met",
                        json={"evidence": "again"}, headers=admin)
    assert twice.status_code == 409
    assert "already met" in twice.json()["detail"]
    unknown = client.post(f"/providers/{pid}/incubation/milestones/nope/met",
                          json={"evidence": "x"}, headers=admin)
    assert unknown.status_code == 409
    assert "no milestone nope" in unknown.json()["detail"]
    still = decide(client, admin, pid, "graduate")
    assert still.json()["detail"] == "milestones not yet met: First 50 meals delivered"

    client.post(f"/providers/{pid}/incubation/milestones/{second}/met",
                json={"evidence": "delivery log"}, headers=admin)
    graduated = decide(client, admin, pid, "graduate")

    assert graduated.status_code == 200, graduated.text
    assert graduated.json()["provider"]["status"] == "approved"
    token = bearer(graduated.json()["credentials"]["token"])
    assert get(client, token, pid)["status"] == "approved"
    assert [e["type"] for e in history(client, admin, pid)][-4:] == [
        "IncubationStarted", "IncubationMilestoneMet", "IncubationMilestoneMet",
        "ProviderGraduated",
    ]


def test_an_incubation_plan_needs_milestones(client: TestClient, admin: Auth) -> None:
    pid = provider_at(client, admin, S.UNDER_REVIEW)["provider_id"]
    response = client.post(f"/providers/{pid}/incubation", headers=admin,
                           json={**PLAN, "milestones": []})
    assert response.status_code == 422
    assert locations(response) == [["body", "milestones"]]


@pytest.mark.parametrize("status", list(ProviderStatus))
def test_illegal_lifecycle_steps_are_refused_and_change_nothing(
    client: TestClient, admin: Auth, status: ProviderStatus
) -> None:
    pid = provider_at(client, admin, status)["provider_id"]
    before = get(client, admin, pid)
    events = len(history(client, admin, pid))
    illegal = [c for c, (allowed, _) in TRANSITIONS.items() if status not in allowed]
    assert illegal

    for command in illegal:
        response = decide(client, admin, pid, command)
        assert response.status_code == 409, (command, response.text)
        assert f"a provider that is {status.value}" in response.json()["detail"]

    if status is not S.INCUBATING:
        met = client.post(f"/providers/{pid}/incubation/milestones/m1/met",
                          json={"evidence": "x"}, headers=admin)
        assert met.status_code == 409
        assert f"a provider that is {status.value} is not incubating" in met.json()["detail"]
    assert len(history(client, admin, pid)) == events
    assert get(client, admin, pid) == before


def test_lifecycle_steps_on_an_unknown_provider_are_not_found(
    client: TestClient, admin: Auth
) -> None:
    missing = uuid4()
    for command in TRANSITIONS:
        response = decide(client, admin, str(missing), command)
        assert response.status_code == 404, command
        assert response.json()["detail"] == f"no provider {missing}"


def test_an_identifier_claim_is_not_a_provider(client: TestClient, admin: Auth) -> None:
    register(client, admin, identifiers={"companies_house": "SC123456"})
    claim = claim_id_for("companies_house", "SC123456")

    assert client.get(f"/providers/{claim}", headers=admin).status_code == 404
    assert client.get(f"/providers/{claim}/history", headers=admin).status_code == 404
    assert decide(client, admin, str(claim), "start_review").status_code == 404
    assert client.patch(f"/providers/{claim}", json={"name": "X"},
                        headers=admin).status_code == 404


# --------------------------------------------------------------------------- credentials


def test_the_admin_rotates_a_providers_credentials(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin)["provider_id"]
    decide(client, admin, pid, "start_review")
    old = bearer(decide(client, admin, pid, "approve").json()["credentials"]["token"])

    rotated = client.post(f"/providers/{pid}/credentials/rotate", headers=admin)

    assert rotated.status_code == 200, rotated.text
    new = bearer(rotated.json()["token"])
    assert client.get(f"/providers/{pid}", headers=old).status_code == 401
    assert get(client, new, pid)["has_credentials"] is True
    (event,) = [e for e in history(client, admin, pid)
                if e["type"] == "ProviderCredentialsRotated"]
    assert event["data"]["credentials_id"] == rotated.json()["token_id"]


def test_a_provider_rotates_its_own_credentials_only(
    client: TestClient, admin: Auth, commissioner: Auth
) -> None:
    pid = register(client, admin)["provider_id"]
    decide(client, admin, pid, "start_review")
    own = bearer(decide(client, admin, pid, "approve").json()["credentials"]["token"])
    other = provider_at(client, admin, S.APPROVED, name="Valley Care")["provider_id"]

    assert client.post(f"/providers/{other}/credentials/rotate", headers=own).status_code == 404
    assert client.post(f"/providers/{pid}/credentials/rotate",
                       headers=commissioner).status_code == 403
    rotated = client.post(f"/providers/{pid}/credentials/rotate", headers=own)

    assert rotated.status_code == 200
    assert client.get(f"/providers/{pid}", headers=own).status_code == 401
    assert get(client, bearer(rotated.json()["token"]), pid)["provider_id"] == pid
    assert history(client, admin, pid)[-1]["actor"] == "provider:Hillside Kitchen"
    assert history(client, admin, pid)[-1]["organisation"] == pid


@pytest.mark.parametrize("status", [S.APPLIED, S.SUSPENDED, S.EXITED, S.INCUBATING])
def test_only_an_approved_provider_has_credentials_to_rotate(
    client: TestClient, admin: Auth, status: ProviderStatus
) -> None:
    pid = provider_at(client, admin, status)["provider_id"]
    response = client.post(f"/providers/{pid}/credentials/rotate", headers=admin)
    assert response.status_code == 409
    assert f"this one is {status.value}" in response.json()["detail"]


# --------------------------------------------------------------------------- roles


WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("patch", "/providers/{pid}", {"description": "Changed"}),
    ("post", "/providers/{pid}/capabilities", {"category": "home-care"}),
    ("delete", "/providers/{pid}/capabilities/c1?reason=gone", None),
    ("post", "/providers/{pid}/accreditations", {"kind": "certification", "name": "ISO 9001"}),
    ("delete", "/providers/{pid}/accreditations/a1?reason=gone", None),
    ("post", "/providers/{pid}/quality-ratings",
     {"scheme": "CQC", "rating": "Good", "rated_on": "2025-01-01"}),
    ("post", "/providers/{pid}/conflicts-of-interest",
     {"declared_by": "Cllr Smith", "interest": "Trustee", "declared_on": "2025-01-01"}),
    ("post", "/providers/{pid}/incubation/milestones/m1/met", {"evidence": "x"}),
]
DECISIONS = [(c, ENDPOINT[c]) for c in TRANSITIONS]


def call(client: TestClient, method: str, path: str, body: dict[str, Any] | None,
         headers: Auth | None = None) -> Any:
    if body is None:
        return client.request(method.upper(), path, headers=headers)
    return client.request(method.upper(), path, json=body, headers=headers)


@pytest.mark.parametrize(("command", "endpoint"), DECISIONS, ids=[c for c, _ in DECISIONS])
def test_only_the_integrator_admin_takes_lifecycle_decisions(
    client: TestClient, admin: Auth, auth: Callable[..., Auth], command: str, endpoint: str
) -> None:
    pid = register(client, admin)["provider_id"]
    body = PLAN if command == "incubate" else REASON
    path = f"/providers/{pid}/{endpoint}"

    assert client.post(path, json=body).status_code == 401
    for role in (Role.COMMISSIONER, Role.COUNCIL_STAFF, Role.REGULATOR):
        response = client.post(path, json=body, headers=auth(role))
        assert response.status_code == 403, role
        assert "allowed: integrator_admin" in response.json()["detail"]
    own = client.post(path, json=body, headers=auth(Role.PROVIDER, provider_id=pid))
    assert own.status_code == 403
    assert len(history(client, admin, pid)) == 1


WRITE_IDS = ["details", "add-capability", "remove-capability", "add-accreditation",
             "remove-accreditation", "quality-rating", "conflict-of-interest", "milestone-met"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
def test_readers_and_providers_may_not_write(
    client: TestClient, admin: Auth, auth: Callable[..., Auth], method: str, path: str,
    body: dict[str, Any] | None,
) -> None:
    pid = register(client, admin)["provider_id"]
    url = path.format(pid=pid)

    assert call(client, method, url, body).status_code == 401
    for headers in (auth(Role.COUNCIL_STAFF), auth(Role.REGULATOR),
                    auth(Role.PROVIDER, provider_id=pid)):
        response = call(client, method, url, body, headers)
        assert response.status_code == 403, response.text
        assert "commissioner, integrator_admin" in response.json()["detail"]
    assert len(history(client, admin, pid)) == 1


def test_a_commissioner_maintains_a_providers_record(
    client: TestClient, admin: Auth, commissioner: Auth
) -> None:
    pid = register(client, commissioner)["provider_id"]
    assert client.patch(f"/providers/{pid}", json={"description": "Meals"},
                        headers=commissioner).status_code == 200
    assert client.post(f"/providers/{pid}/capabilities", json={"category": "catering"},
                       headers=commissioner).status_code == 201
    assert {e["actor"] for e in history(client, admin, pid)} == {"commissioner:jo"}


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.COMMISSIONER])
def test_council_readers_read_records_and_history(
    client: TestClient, admin: Auth, auth: Callable[..., Auth], role: Role
) -> None:
    pid = register(client, admin)["provider_id"]
    headers = auth(role)
    assert get(client, headers, pid) == get(client, admin, pid)
    assert len(history(client, headers, pid)) == 1
    assert client.get("/taxonomy", headers=headers).status_code == 200


def test_reading_needs_a_token(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin)["provider_id"]
    for path in (f"/providers/{pid}", f"/providers/{pid}/history", "/taxonomy"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_provider_reads_only_its_own_history(
    client: TestClient, admin: Auth, auth: Callable[..., Auth]
) -> None:
    own = register(client, admin)["provider_id"]
    other = register(client, admin, "Valley Care")["provider_id"]
    headers = auth(Role.PROVIDER, provider_id=own)
    assert len(history(client, headers, own)) == 1
    assert client.get(f"/providers/{other}/history", headers=headers).status_code == 404


# --------------------------------------------------------------------------- details


def test_details_are_patched_field_by_field(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin, description="Meals", website="https://a.example")["provider_id"]

    response = client.patch(f"/providers/{pid}", headers=admin, json={
        "name": "Hillside Meals", "address": {"postcode": "ls1  4ap"}, "description": "Meals"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Hillside Meals"
    assert body["details"] == {"description": "Meals", "website": "https://a.example",
                               "address": {"postcode": "LS1 4AP"}}
    assert body["version"] == 2
    updated = history(client, admin, pid)[-1]
    assert updated["type"] == "ProviderDetailsUpdated"
    # Only what changed is recorded (the description was given but is the same).
    assert updated["data"]["changes"] == {"name": "Hillside Meals",
                                          "address": {"postcode": "LS1 4AP"}}


def test_a_patch_that_changes_nothing_is_refused(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin, description="Meals")["provider_id"]
    response = client.patch(f"/providers/{pid}", json={"name": "Hillside Kitchen",
                                                       "description": "Meals"}, headers=admin)
    assert response.status_code == 409
    assert "nothing to update" in response.json()["detail"]
    assert len(history(client, admin, pid)) == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"name": None}, ["body", "name"]),
        ({"name": "  "}, ["body", "name"]),
        ({"address": {"postcode": "not a postcode"}}, ["body", "address", "postcode"]),
        ({"address": {"town": "Leeds"}}, ["body", "address", "postcode"]),
        ({"identifiers": {"companies_house": "123"}}, ["body", "identifiers", "companies_house"]),
        ({"contact": {"email": "nobody"}}, ["body", "contact", "email"]),
        ({"website": "ftp://x.example"}, ["body", "website"]),
        ({"organisation_type": "sme"}, ["body", "organisation_type"]),
        ({"members": ["not-a-uuid"]}, ["body", "members", 0]),
    ],
    ids=["empty", "null-name", "blank-name", "bad-postcode", "no-postcode", "bad-company",
         "bad-email", "bad-website", "type-not-changeable", "member-not-uuid"],
)
def test_bad_patches_name_the_field(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[Any]
) -> None:
    pid = register(client, admin)["provider_id"]
    response = client.patch(f"/providers/{pid}", json=body, headers=admin)

    assert response.status_code == 422, response.text
    assert locations(response) == [loc]
    assert get(client, admin, pid)["name"] == "Hillside Kitchen"
    assert len(history(client, admin, pid)) == 1


def test_partnership_members_must_be_registered_providers(
    client: TestClient, admin: Auth
) -> None:
    a, b = register(client, admin, "A")["provider_id"], register(client, admin, "B")["provider_id"]
    pid = register(client, admin, "A and B", "partnership", members=[a, b])["provider_id"]

    stranger = str(uuid4())
    response = client.patch(f"/providers/{pid}", json={"members": [a, stranger]}, headers=admin)
    assert response.status_code == 422
    assert locations(response) == [["body", "members"]]
    itself = client.patch(f"/providers/{pid}", json={"members": [a, pid]}, headers=admin)
    assert itself.status_code == 422
    too_few = client.patch(f"/providers/{pid}", json={"members": [a]}, headers=admin)
    assert too_few.status_code == 422
    assert locations(too_few) == [["body", "members"]]
    assert "at least two distinct members" in too_few.text

    c = register(client, admin, "C")["provider_id"]
    grown = client.patch(f"/providers/{pid}", json={"members": [a, b, c]}, headers=admin)
    assert grown.status_code == 200
    assert grown.json()["details"]["members"] == [a, b, c]


def test_patching_areas_served_to_null_clears_them(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin, areas_served=["Hillside", "Riverside"])["provider_id"]

    response = client.patch(f"/providers/{pid}", json={"areas_served": None}, headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["details"]["areas_served"] == []
    assert get(client, admin, pid)["details"]["areas_served"] == []
    updated = history(client, admin, pid)[-1]
    assert updated["type"] == "ProviderDetailsUpdated"
    assert updated["data"]["changes"] == {"areas_served": []}
    # Cleared once, there is nothing left to clear.
    again = client.patch(f"/providers/{pid}", json={"areas_served": None}, headers=admin)
    assert again.status_code == 409
    assert "nothing to update" in again.json()["detail"]


def test_changing_an_identifier_releases_the_old_one(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin, identifiers={"companies_house": "11111111"})["provider_id"]
    other = register(client, admin, "Other", identifiers={"ukprn": "10000001"})["provider_id"]

    taken = client.patch(f"/providers/{pid}", json={"identifiers": {"ukprn": "10000001"}},
                         headers=admin)
    assert taken.status_code == 409
    assert f"already registered to provider {other}" in taken.json()["detail"]
    assert get(client, admin, pid)["details"]["identifiers"] == {"companies_house": "11111111"}

    moved = client.patch(f"/providers/{pid}", json={"identifiers": {"companies_house": "22222222"}},
                         headers=admin)
    assert moved.status_code == 200
    # The old number is free for someone else; the new one is not.
    register(client, admin, "Heir", identifiers={"companies_house": "11111111"})
    clash = client.post("/providers", headers=admin, json={
        "name": "Clash", "organisation_type": "vcse",
        "identifiers": {"companies_house": "22222222"}})
    assert clash.status_code == 409


def test_patching_an_unknown_provider_is_not_found(client: TestClient, admin: Auth) -> None:
    response = client.patch(f"/providers/{uuid4()}", json={"name": "X"}, headers=admin)
    assert response.status_code == 404


# --------------------------------------------------------------------------- capabilities


def test_capabilities_are_added_and_removed_with_a_reason(
    client: TestClient, admin: Auth
) -> None:
    pid = register(client, admin)["provider_id"]
    added = client.post(f"/providers/{pid}/capabilities", headers=admin, json={
        "category": "home-care", "description": "Personal care visits", "areas": ["Hillside"],
        "capacity": {"amount": 400, "unit": "hours of care per week"}})

    assert added.status_code == 201, added.text
    capability_id = added.json()["id"]
    assert added.json()["provider"]["capabilities"] == [{
        "capability_id": capability_id, "category": "home-care",
        "description": "Personal care visits", "areas": ["Hillside"],
        "capacity": {"amount": 400, "unit": "hours of care per week"}}]

    same = client.post(f"/providers/{pid}/capabilities", json={"category": "home-care"},
                       headers=admin)
    assert same.status_code == 409
    assert "already has a capability in home-care" in same.json()["detail"]

    no_reason = client.delete(f"/providers/{pid}/capabilities/{capability_id}", headers=admin)
    assert no_reason.status_code == 422
    assert locations(no_reason) == [["query", "reason"]]
    unknown = client.delete(f"/providers/{pid}/capabilities/nope",
                            params={"reason": "gone"}, headers=admin)
    assert unknown.status_code == 409
    assert "has no capability nope" in unknown.json()["detail"]

    for blank in ("", "   ", " ab "):
        short = client.delete(f"/providers/{pid}/capabilities/{capability_id}",
                              params={"reason": blank}, headers=admin)
        assert short.status_code == 422, blank
        assert locations(short) == [["query", "reason"]]

    removed = client.delete(f"/providers/{pid}/capabilities/{capability_id}",
                            params={"reason": "  no longer offered "}, headers=admin)
    assert removed.status_code == 200
    assert removed.json()["capabilities"] == []
    event = history(client, admin, pid)[-1]
    assert event["type"] == "ProviderCapabilityRemoved"
    assert event["data"]["reason"] == "no longer offered"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"category": "alchemy"}, ["body", "category"]),
        ({}, ["body", "category"]),
        ({"category": "home-care", "capacity": {"amount": -1, "unit": "places"}},
         ["body", "capacity", "amount"]),
        ({"category": "home-care", "capacity": {"amount": 1}}, ["body", "capacity", "unit"]),
        ({"category": "home-care", "rate": 12}, ["body", "rate"]),
    ],
    ids=["unknown-category", "no-category", "negative-capacity", "no-unit", "extra-field"],
)
def test_bad_capabilities_name_the_field(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[str]
) -> None:
    pid = register(client, admin)["provider_id"]
    response = client.post(f"/providers/{pid}/capabilities", json=body, headers=admin)
    assert response.status_code == 422
    assert locations(response) == [loc]
    assert len(history(client, admin, pid)) == 1


def test_an_unknown_category_points_to_the_taxonomy(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin)["provider_id"]
    response = client.post(f"/providers/{pid}/capabilities", json={"category": "alchemy"},
                           headers=admin)
    assert "GET /taxonomy" in response.json()["errors"][0]["message"]


# --------------------------------------------------------------------------- standing


def test_accreditations_show_whether_they_have_expired(client: TestClient, admin: Auth) -> None:
    pid = register(client, admin)["provider_id"]
    today = date.today()
    lapsed = client.post(f"/providers/{pid}/accreditations", headers=admin, json={
        "kind": "insurance", "name": "Public liability", "issuer": "Mutual",
        "valid_from": (today - timedelta(days=400)).isoformat(),
        "expires_on": (today - timedelta(days=1)).isoformat(), "cover_gbp": 5_000_000})
    current = client.post(f"/providers/{pid}/accreditations", headers=admin, json={
        "kind": "safeguarding_check", "name": "Enhanced DBS",
        "expires_on": today.isoformat()})
    lasting = client.post(f"/providers/{pid}/accreditations", headers=admin,
                          json={"kind": "certification", "name": "ISO 9001"})

    assert (lapsed.status_code, current.status_code, lasting.status_code) == (201, 201, 201)
    shown = {a["accreditation_id"]: a for a in get(client, admin, pid)["accreditations"]}
    assert shown[lapsed.json()["id"]]["expired"] is True
    assert shown[lapsed.json()["id"]]["cover_gbp"] == 5_000_000
    assert shown[current.json()["id"]]["expired"] is False  # valid through its last day
    assert shown[lasting.json()["id"]]["expired"] is False

    removed = client.delete(f"/providers/{pid}/accreditations/{lapsed.json()['id']}",
                            params={"reason": "expired"}, headers=admin)
    assert removed.status_code == 200
    assert [a["name"] for a in removed.json()["accreditations"]] == ["Enhanced DBS", "ISO 9001"]
    unknown = client.delete(f"/providers/{pid}/accreditations/nope", params={"reason": "x y"},
                            headers=admin)
    assert unknown.status_code == 409


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"kind": "certification", "name": "ISO", "valid_from": "2026-02-01",
          "expires_on": "2026-01-31"}, ["body", "expires_on"], "expires_on is before valid_from"),
        ({"kind": "certification", "name": "ISO", "cover_gbp": 10}, ["body", "cover_gbp"],
         "cover_gbp applies only to kind insurance"),
        ({"kind": "badge", "name": "ISO"}, ["body", "kind"], "Input should be"),
        ({"kind": "certification"}, ["body", "name"], "Field required"),
        ({"kind": "certification", "name": "ISO", "expires_on": "31/01/2026"},
         ["body", "expires_on"], "date"),
    ],
    ids=["expires-before-valid", "cover-not-insurance", "unknown-kind", "no-name", "bad-date"],
)
def test_bad_accreditations_are_refused(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[str], message: str
) -> None:
    pid = register(client, admin)["provider_id"]
    response = client.post(f"/providers/{pid}/accreditations", json=body, headers=admin)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert loc_of(error) == loc
    assert message in error["message"]
    assert len(history(client, admin, pid)) == 1


def test_quality_ratings_are_dated_and_never_in_the_future(
    client: TestClient, admin: Auth
) -> None:
    pid = register(client, admin)["provider_id"]
    later = client.post(f"/providers/{pid}/quality-ratings", headers=admin, json={
        "scheme": "CQC", "rating": "Good", "rated_on": "2025-06-01", "reference": "1-234"})
    earlier = client.post(f"/providers/{pid}/quality-ratings", headers=admin, json={
        "scheme": "CQC", "rating": "Requires improvement", "rated_on": "2024-01-15"})
    future = client.post(f"/providers/{pid}/quality-ratings", headers=admin, json={
        "scheme": "CQC", "rating": "Outstanding",
        "rated_on": (date.today() + timedelta(days=1)).isoformat()})

    assert (later.status_code, earlier.status_code) == (201, 201)
    assert future.status_code == 422
    assert locations(future) == [["body", "rated_on"]]
    assert "future" in future.json()["errors"][0]["message"]
    ratings = get(client, admin, pid)["quality_ratings"]
    assert [(r["rating"], r["rated_on"]) for r in ratings] == [
        ("Requires improvement", "2024-01-15"), ("Good", "2025-06-01")]


def test_conflicts_of_interest_are_declared_even_on_a_closed_record(
    client: TestClient, admin: Auth
) -> None:
    pid = provider_at(client, admin, S.EXITED)["provider_id"]
    body = {"declared_by": "Cllr Smith", "interest": "Former trustee",
            "declared_on": "2026-01-05"}

    declared = client.post(f"/providers/{pid}/conflicts-of-interest", json=body, headers=admin)

    assert declared.status_code == 201, declared.text
    assert declared.json()["provider"]["conflicts_of_interest"] == [
        {"declaration_id": declared.json()["id"], **body}]
    missing = client.post(f"/providers/{pid}/conflicts-of-interest", headers=admin,
                          json={"declared_by": "Cllr Smith", "declared_on": "2026-01-05"})
    assert missing.status_code == 422
    assert locations(missing) == [["body", "interest"]]


@pytest.mark.parametrize("status", [S.EXITED, S.REJECTED])
def test_a_closed_record_refuses_changes(
    client: TestClient, admin: Auth, status: ProviderStatus
) -> None:
    pid = provider_at(client, admin, status)["provider_id"]
    events = len(history(client, admin, pid))
    # Every write but declaring an interest (still possible) and meeting a milestone.
    changes = [w for w in WRITES if "conflicts" not in w[1] and "milestones" not in w[1]]
    assert len(changes) == 6
    for method, path, body in changes:
        response = call(client, method, path.format(pid=pid), body, admin)
        assert response.status_code == 409, (path, response.text)
        assert f"provider that is {status.value} is closed" in response.json()["detail"]
    assert len(history(client, admin, pid)) == events


# --------------------------------------------------------------------------- history


def test_the_history_lists_every_event_with_who_when_and_why(
    client: TestClient, admin: Auth, commissioner: Auth
) -> None:
    pid = register(client, commissioner)["provider_id"]
    client.patch(f"/providers/{pid}", json={"description": "Meals"}, headers=commissioner)
    client.post(f"/providers/{pid}/review", json={"reason": "complete application"},
                headers=admin)
    client.post(f"/providers/{pid}/approve", json={"reason": "checks passed"}, headers=admin)
    client.post(f"/providers/{pid}/suspend", json={"reason": "insurance lapsed"}, headers=admin)

    events = history(client, admin, pid)

    assert [(e["type"], e["stream_position"], e["actor"]) for e in events] == [
        ("ProviderRegistered", 1, "commissioner:jo"),
        ("ProviderDetailsUpdated", 2, "commissioner:jo"),
        ("ProviderReviewStarted", 3, "integrator_admin:sam"),
        ("ProviderApproved", 4, "integrator_admin:sam"),
        ("ProviderSuspended", 5, "integrator_admin:sam"),
    ]
    assert all(e["stream_id"] == pid and e["source"] == "provider_registry" for e in events)
    assert all(e["organisation"] == "council" for e in events)
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    assert [e["data"].get("reason") for e in events[2:]] == [
        "complete application", "checks passed", "insurance lapsed"]
    approved, suspended = events[3]["data"], events[4]["data"]
    assert suspended["revoked_credentials_id"] == approved["credentials_id"]
    assert events[1]["data"]["changes"]["description"] == "Meals"


def test_the_history_of_an_unknown_provider_is_not_found(
    client: TestClient, admin: Auth
) -> None:
    assert client.get(f"/providers/{uuid4()}/history", headers=admin).status_code == 404


# --------------------------------------------------------------------------- taxonomy


def test_the_taxonomy_lists_the_service_categories(
    client: TestClient, auth: Callable[..., Auth]
) -> None:
    response = client.get("/taxonomy", headers=auth(Role.PROVIDER))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "council-service-categories"
    assert body["version"]
    terms = {t["code"]: t for t in body["terms"]}
    assert terms["home-care"]["parent"] == "adult-social-care"
    assert terms["adult-social-care"]["parent"] is None
    assert all(t["name"] and t["description"] for t in body["terms"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"organisation_type": "vcse", "identifiers": {"companies_house": "1234"}},
         ["body", "identifiers", "companies_house"], "value_error"),
        ({"organisation_type": "vcse", "identifiers": {"charity_number": "12"}},
         ["body", "identifiers", "charity_number"], "value_error"),
        ({"organisation_type": "vcse", "identifiers": {"ukprn": "20000000"}},
         ["body", "identifiers", "ukprn"], "value_error"),
        ({"organisation_type": "vcse", "identifiers": {"vat": "GB1"}},
         ["body", "identifiers", "vat"], "extra_forbidden"),
        ({"organisation_type": "vcse", "address": {"postcode": "12345"}},
         ["body", "address", "postcode"], "value_error"),
        ({"organisation_type": "vcse", "address": {"lines": ["a"] * 5, "postcode": "LS1 4AP"}},
         ["body", "address", "lines"], "too_long"),
        ({"organisation_type": "vcse", "contact": {"phone": "call me"}},
         ["body", "contact", "phone"], "string_pattern_mismatch"),
        ({"organisation_type": "sme", "sme_size": {"headcount": -1, "turnover_gbp": 0}},
         ["body", "sme_size", "headcount"], "greater_than_equal"),
        ({"organisation_type": "sme", "sme_size": {"headcount": 5}},
         ["body", "sme_size", "turnover_gbp"], "missing"),
        ({"organisation_type": "sme", "sme_size": {"headcount": "few", "turnover_gbp": 0}},
         ["body", "sme_size", "headcount"], "int_parsing"),
        ({"organisation_type": "co-op"}, ["body", "organisation_type"], "enum"),
        ({"organisation_type": "vcse", "areas_served": "Hillside"},
         ["body", "areas_served"], "list_type"),
        ({"organisation_type": "vcse", "status": "approved"}, ["body", "status"],
         "extra_forbidden"),
    ],
    ids=["companies-house", "charity-number", "ukprn", "unknown-identifier", "postcode",
         "too-many-lines", "phone", "negative-headcount", "no-turnover", "text-headcount",
         "unknown-type", "areas-not-list", "status-not-settable"],
)
def test_bad_registrations_name_the_field(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[str], error_type: str
) -> None:
    response = client.post("/providers", json={"name": "A", **body}, headers=admin)

    assert response.status_code == 422, response.text
    assert_errors(response, [(loc, error_type)])
    assert runtime_of(client).app.recorder.max_notification_id() in (None, 0)


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({}, ["body", "reason"], "missing"),
        ({"reason": "ok"}, ["body", "reason"], "string_too_short"),
        ({"reason": "  ok   "}, ["body", "reason"], "string_too_short"),
        ({"reason": "x" * 2001}, ["body", "reason"], "string_too_long"),
        ({"reason": "good enough", "by": "me"}, ["body", "by"], "extra_forbidden"),
        ({"reason": 42}, ["body", "reason"], "string_type"),
    ],
    ids=["missing", "short", "blank-padded", "long", "extra", "number"],
)
def test_a_decision_needs_a_reason(
    client: TestClient, admin: Auth, body: dict[str, Any], loc: list[str], error_type: str
) -> None:
    pid = register(client, admin)["provider_id"]
    response = client.post(f"/providers/{pid}/review", json=body, headers=admin)
    assert response.status_code == 422
    assert_errors(response, [(loc, error_type)])
    assert get(client, admin, pid)["status"] == "applied"


@pytest.mark.parametrize("path", ["/providers/{pid}", "/providers/{pid}/approve",
                                  "/providers/{pid}/capabilities"])
def test_malformed_json_is_refused_naming_the_body(
    client: TestClient, admin: Auth, path: str
) -> None:
    pid = provider_at(client, admin, S.UNDER_REVIEW)["provider_id"]
    method = "PATCH" if path == "/providers/{pid}" else "POST"
    response = client.request(method, path.format(pid=pid), content=b'{"reason": "ok',
                              headers={**admin, "Content-Type": "application/json"})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert ("json" in error["message"].lower(), loc_of(error)[0]) == (True, "body")
    assert get(client, admin, pid)["status"] == "under_review"


def test_an_oversized_payload_is_refused(client: TestClient, admin: Auth) -> None:
    pid = provider_at(client, admin, S.UNDER_REVIEW)["provider_id"]
    body = json.dumps({"reason": "x" * MAX_BODY_BYTES}).encode()
    for method, path in (("POST", f"/providers/{pid}/approve"), ("PATCH", f"/providers/{pid}")):
        response = client.request(method, path, content=body,
                                  headers={**admin, "Content-Type": "application/json"})
        assert response.status_code == 413
        assert "over the limit" in response.json()["detail"]
    assert get(client, admin, pid)["status"] == "under_review"


def test_a_provider_id_that_is_not_a_uuid_names_the_path(client: TestClient, admin: Auth) -> None:
    response = client.post("/providers/42/approve", json=REASON, headers=admin)
    assert response.status_code == 422
    assert locations(response) == [["path", "provider_id"]]


# --------------------------------------------------------------------------- the shared log


def test_every_lifecycle_event_is_published_with_its_contract_data(
    client: TestClient, admin: Auth
) -> None:
    a = register(client, admin, "A", identifiers={"charity_number": "1111111"})["provider_id"]
    b = register(client, admin, "B")["provider_id"]
    pid = register(client, admin, "A and B", "partnership", members=[a, b],
                   identifiers={"companies_house": "SC123456"})["provider_id"]
    client.patch(f"/providers/{pid}", json={"website": "https://ab.example"}, headers=admin)
    cap = client.post(f"/providers/{pid}/capabilities", json={"category": "catering"},
                      headers=admin).json()["id"]
    client.delete(f"/providers/{pid}/capabilities/{cap}", params={"reason": "stopped"},
                  headers=admin)
    acc = client.post(f"/providers/{pid}/accreditations", headers=admin,
                      json={"kind": "certification", "name": "ISO 9001"}).json()["id"]
    client.delete(f"/providers/{pid}/accreditations/{acc}", params={"reason": "lapsed"},
                  headers=admin)
    client.post(f"/providers/{pid}/quality-ratings", headers=admin,
                json={"scheme": "CQC", "rating": "Good", "rated_on": "2025-01-01"})
    client.post(f"/providers/{pid}/conflicts-of-interest", headers=admin, json={
        "declared_by": "Cllr Smith", "interest": "Trustee", "declared_on": "2025-01-01"})
    decide(client, admin, pid, "start_review")
    milestones = decide(client, admin, pid, "incubate").json()["milestone_ids"]
    for milestone in milestones:
        client.post(f"/providers/{pid}/incubation/milestones/{milestone}/met",
                    json={"evidence": "seen"}, headers=admin)
    graduated = decide(client, admin, pid, "graduate").json()["credentials"]
    client.post(f"/providers/{pid}/credentials/rotate", headers=admin)
    decide(client, admin, pid, "suspend")
    decide(client, admin, pid, "reinstate")
    decide(client, admin, pid, "exit")
    decide(client, admin, a, "reject")
    decide(client, admin, b, "start_review")
    approved = decide(client, admin, b, "approve").json()["credentials"]

    runtime = runtime_of(client)
    runtime.relay.drain()
    log = runtime.event_log
    published = {}  # by event id: the relay is at-least-once
    for batch in log.read_all([log.topic_for("provider_registry")]):
        for record in batch:
            published[record.envelope.event_id] = record.envelope

    types = [e.type for e in sorted(published.values(),
                                    key=lambda e: (e.stream_id, e.stream_position))]
    assert set(types) == {
        "ProviderRegistered", "ProviderDetailsUpdated", "ProviderCapabilityAdded",
        "ProviderCapabilityRemoved", "AccreditationAdded", "AccreditationRemoved",
        "QualityRatingRecorded", "ConflictOfInterestDeclared", "ProviderReviewStarted",
        "IncubationStarted", "IncubationMilestoneMet", "ProviderGraduated",
        "ProviderCredentialsRotated", "ProviderSuspended", "ProviderReinstated",
        "ProviderExited", "ProviderRejected", "ProviderApproved",
    }
    # Identifier claims are the registry's bookkeeping, never part of the contract.
    assert not any("Identifier" in t for t in types)
    assert {e.stream_id for e in published.values()} == {a, b, pid}
    for envelope in published.values():
        spec = spec_for(envelope.type)
        assert spec is not None
        data = spec.data.model_validate(envelope.data)
        assert data.model_dump(mode="json", exclude_unset=True) == envelope.data
        assert str(getattr(data, spec.stream_field)) == envelope.stream_id
    by_type = {e.type: e for e in published.values()}
    assert by_type["ProviderApproved"].data["credentials_id"] == approved["token_id"]
    assert by_type["ProviderGraduated"].data["credentials_id"] == graduated["token_id"]
    assert by_type["ProviderRegistered"].actor == "integrator_admin:sam"
    registered = [e for e in published.values()
                  if e.type == "ProviderRegistered" and e.stream_id == pid]
    assert registered[0].data["members"] == [a, b]
    assert registered[0].data["identifiers"]["companies_house"] == "SC123456"
    assert len(published) == sum(len(history(client, admin, p)) for p in (a, b, pid))
