"""Delivery reported by providers over HTTP, in process, with the three services sharing one var
dir (one embedded log, one identity database) as in the embedded deployment.

The world is built the way it happens for real: providers registered and approved on the
registry (approval hands each its credentials), the integrator's network following the registry
through the shared log, a commission decided and its agreements drafted, activated and ended on
the integrator, and the outcomes service learning of those agreements from the shared log.

Then: every bad input refused naming the field, with nothing stored; providers reporting only
against their own active agreements; replays accepted once, single and batched; batches over the
limit refused before anything is stored; corrections as new reports; every accepted report on
the shared log exactly once; the read model's units per period after corrections."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.kernel.contracts.outcomes import Channel, Periodicity
from council.kernel.envelope import EventEnvelope
from council.platform.eventlog import open_event_log
from council.platform.identity import Role, TokenStore
from council.platform.projection import ProjectionRunner
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.api.deliveries import MAX_BATCH_BYTES, MAX_BATCH_LINES
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import CONFLICT, AgreementInfo
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.services.outcomes.domain.commands import DeliveryIn
from council.services.outcomes.projections.agreements import AgreementsProjection, lookup_agreements
from council.services.outcomes.projections.deliveries import (
    DeliveriesProjection,
    get_delivery_row,
    list_deliveries,
    units_delivered,
    units_delivered_in,
)
from council.services.outcomes.service import SPEC as OUTCOMES
from council.services.provider_registry.service import SPEC as REGISTRY
from tests.problems import loc_of
from tests.waiting import eventually

Auth = dict[str, str]
# How long to wait for the shared log and the read models: generous, since a loaded machine
# may take a while to project the 10,000-line batches (waiting ends as soon as they are there).
DEADLINE_SECONDS = 60.0
MISSING = object()  # a field left out of a body
NDJSON = {"Content-Type": "application/x-ndjson"}
PERIOD = {"period_start": "2025-04-01", "period_end": "2025-04-30"}
NEED = {
    "title": "Healthy weight for teenagers",
    "service_area": "weight-management",
    "population": {"description": "Young people aged 13 to 17 in Northshire", "size": 42000},
    "outcomes": [{"description": "Fewer teenagers living with obesity"}],
    "budget_envelope": "1000000.00",
    "starts_on": "2022-01-01",
    "ends_on": "2028-03-31",
}
OPTIONS = {
    "options": [{"option": "mixed", "description": "VCSE grants and a formal contract",
                 "score": 80}],
    "recommended": "mixed",
    "rationale": "the mix reaches families the council does not",
}


# --------------------------------------------------------------------------- the world


@dataclass
class World:
    """Three services sharing one var dir, and what was set up through them."""

    settings: Settings
    registry: TestClient
    integrator: TestClient
    outcomes: TestClient
    tokens: TokenStore
    admin: Auth
    deadline: float
    providers: dict[str, UUID] = field(default_factory=dict)
    auth: dict[str, Auth] = field(default_factory=dict)  # each provider's own credentials
    agreements: dict[str, UUID] = field(default_factory=dict)

    def council(self, role: Role) -> Auth:
        return bearer(self.tokens.create(role, f"{role.value}-user").token)

    @property
    def app(self) -> Outcomes:
        app = runtime_of(self.outcomes).app
        assert isinstance(app, Outcomes)
        return app


def bearer(token: str) -> Auth:
    return {"Authorization": f"Bearer {token}"}


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime




def call(client: TestClient, path: str, body: Any, headers: Auth, expect: int = 201) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def approved_provider(world: World, name: str, kind: str) -> tuple[UUID, Auth]:
    """Register and approve a provider on the registry: its id and its credentials."""
    body: dict[str, Any] = {"name": name, "organisation_type": kind}
    if kind == "sme":
        body["sme_size"] = {"headcount": 12, "turnover_gbp": 900_000}
    provider_id = call(world.registry, "/providers", body, world.admin)["provider_id"]
    call(world.registry, f"/providers/{provider_id}/review", {"reason": "application complete"},
         world.admin, 200)
    decided = call(world.registry, f"/providers/{provider_id}/approve",
                   {"reason": "meets the council's standards"}, world.admin, 200)
    return UUID(provider_id), bearer(decided["credentials"]["token"])


def build_world(stack: ExitStack, settings: Settings, deadline: float = 10.0) -> World:
    """Providers hillside, valley and riverside, approved; agreements from one commission:
    `active` (hillside), `joint` (hillside and valley), `valley` (valley), `drafted`
    (hillside, never activated), `ended` (hillside, activated then ended), `riverside`
    (riverside, active; riverside is then suspended, so its credentials are revoked). The
    outcomes service has seen every agreement as it stands when this returns."""
    clients = [stack.enter_context(TestClient(create_service_app(spec, settings)))
               for spec in (REGISTRY, INTEGRATOR, OUTCOMES)]
    tokens = TokenStore(open_database(settings, "identity"))
    stack.callback(tokens.db.close)
    admin = bearer(tokens.create(Role.INTEGRATOR_ADMIN, "sam").token)
    world = World(settings, *clients, tokens=tokens, admin=admin, deadline=deadline)
    for name, kind in (("hillside", "vcse"), ("valley", "sme"), ("riverside", "community_group")):
        world.providers[name], world.auth[name] = approved_provider(world, name.title(), kind)

    def network_status(provider_id: UUID) -> str | None:
        response = world.integrator.get(f"/network/providers/{provider_id}", headers=admin)
        return response.json()["status"] if response.status_code == 200 else None

    for provider_id in world.providers.values():
        eventually(lambda p=provider_id: network_status(p), lambda s: s == "approved", deadline)

    hillside, valley, riverside = (str(world.providers[n])
                                   for n in ("hillside", "valley", "riverside"))
    awards = {"active": [hillside], "joint": [hillside, valley], "valley": [valley],
              "drafted": [hillside], "ended": [hillside], "riverside": [riverside]}
    need_id = call(world.integrator, "/needs", NEED, admin)["need_id"]
    call(world.integrator, f"/needs/{need_id}/options", OPTIONS, admin, 200)
    decided = call(world.integrator, f"/needs/{need_id}/decisions", {
        "awards": [{"title": f"Award {name}", "arrangement_type": "grant",
                    "provider_ids": providers, "allocation": "10000.00"}
                   for name, providers in awards.items()],
        "rationale": "best value for the outcomes sought",
        "decision_maker": "Cabinet Member for Public Health",
    }, admin)
    for name, award_id in zip(awards, decided["award_ids"], strict=True):
        world.agreements[name] = UUID(call(world.integrator, "/agreements", {
            "need_id": need_id, "award_id": award_id, "starts_on": "2022-01-01",
            "ends_on": "2028-03-31", "exit_plan": "hand the sessions to the leisure trust",
        }, admin)["agreement_id"])
        if name != "drafted":  # signed and in force today (business time: the decision's day)
            today = datetime.now(UTC).date().isoformat()
            call(world.integrator, f"/agreements/{world.agreements[name]}/sign",
                 {"signed_on": today, "signatories": ["Sam for the council"]}, admin, 200)
            call(world.integrator, f"/agreements/{world.agreements[name]}/activate",
                 {"activated_on": today}, admin, 200)
    call(world.integrator, f"/agreements/{world.agreements['ended']}/end",
         {"how": "terminated", "ended_on": datetime.now(UTC).date().isoformat(),
          "reason": "the venue closed"}, admin, 200)
    call(world.registry, f"/providers/{riverside}/suspend", {"reason": "safeguarding review"},
         admin, 200)

    expected = {world.agreements[name]: "active" for name in awards}
    expected[world.agreements["drafted"]] = "drafted"
    expected[world.agreements["ended"]] = "ended"
    views = runtime_of(world.outcomes).views
    eventually(lambda: {i: a.status for i, a in lookup_agreements(views, list(expected)).items()},
               lambda seen: seen == expected, deadline)
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("deliveries"), relay_interval=0.01)
    with ExitStack() as stack:
        yield build_world(stack, settings, DEADLINE_SECONDS)


# --------------------------------------------------------------------------- helpers


def report(agreement: UUID | str, key: str | None = None, /, **changes: Any) -> dict[str, Any]:
    """A valid delivery report (a fresh idempotency key unless given), with `changes`."""
    body: dict[str, Any] = {
        "idempotency_key": key or f"key-{uuid4().hex[:12]}",
        "agreement_id": str(agreement), "activity_type": "sessions_delivered",
        "quantity": "12", "unit": "sessions", **PERIOD,
        "location": "Northshire Community Hall", **changes,
    }
    return {k: v for k, v in body.items() if v is not MISSING}


def ndjson(*lines: Any) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line)
                     for line in lines).encode()


def post(world: World, body: Any, provider: str = "hillside",
         headers: Auth | None = None) -> Any:
    return world.outcomes.post("/deliveries", json=body,
                               headers=world.auth[provider] if headers is None else headers)


def post_batch(world: World, body: bytes, provider: str = "hillside",
               headers: Auth | None = None) -> Any:
    given = world.auth[provider] if headers is None else headers
    return world.outcomes.post("/deliveries/batch", content=body, headers={**given, **NDJSON})


def stored_count(world: World) -> int:
    return world.app.recorder.max_notification_id() or 0


def stored_reports(world: World, provider: str, *keys: str) -> list[UUID]:
    """Which of these keys' reports are in the store."""
    found = world.app._stored_reports({delivery_id_for(world.providers[provider], k)
                                       for k in keys})
    return sorted(found)


def logged(world: World) -> list[EventEnvelope]:
    """The outcomes service's events on the shared log, once the relay has caught up."""
    runtime = runtime_of(world.outcomes)
    eventually(runtime.relay.pending, lambda pending: pending == 0, world.deadline)
    log = open_event_log(world.settings)
    try:
        return [record.envelope for records in log.read_all([log.topic_for("outcomes")])
                for record in records]
    finally:
        log.close()


def logged_deliveries(world: World) -> Counter[UUID]:
    """How many times each delivery report is on the shared log, once the relay has caught up."""
    return Counter(UUID(e.data["delivery_id"]) for e in logged(world)
                   if e.type == "DeliveryReported")


def projected(world: World, delivery_id: UUID | str) -> Any:
    """The delivery's row in the read model, once it is there."""
    views = runtime_of(world.outcomes).views
    return eventually(lambda: get_delivery_row(views, UUID(str(delivery_id))),
                      lambda row: row is not None, world.deadline)


# --------------------------------------------------------------------------- one report


def test_a_report_is_stored_and_reads_back(world: World) -> None:
    body = report(world.agreements["active"], quantity="12.5", activity_type="care_hours",
                  unit=MISSING)
    response = post(world, body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["delivery_id"] == str(delivery_id_for(world.providers["hillside"],
                                                         body["idempotency_key"]))
    assert (created["provider_id"], created["agreement_id"]) == (
        str(world.providers["hillside"]), str(world.agreements["active"]))
    assert (created["activity_type"], created["quantity"], created["unit"]) == (
        "care_hours", "12.5", "hours")
    assert (created["period_start"], created["period_end"]) == ("2025-04-01", "2025-04-30")
    assert (created["corrects"], created["superseded_by"], created["channel"]) == (
        None, None, "http")
    read = world.outcomes.get(f"/deliveries/{created['delivery_id']}",
                              headers=world.auth["hillside"])
    assert read.status_code == 200
    assert read.json() == created
    row = projected(world, created["delivery_id"])
    assert (row.quantity, row.month, row.quarter, row.superseded_by) == (
        Decimal("12.5"), "2025-04", "2025-Q2", None)
    assert row.reported_by == "provider:Hillside"


def test_the_event_records_the_provider_as_actor_and_organisation(world: World) -> None:
    created = post(world, report(world.agreements["active"])).json()
    notifications = world.app.recorder.select_notifications(start=1, limit=100_000)
    (envelope,) = [world.app.to_envelope(n) for n in notifications
                   if str(n.originator_id) == created["delivery_id"]]
    assert (envelope.type, envelope.stream_id) == ("DeliveryReported", created["delivery_id"])
    assert envelope.organisation == str(world.providers["hillside"])
    assert envelope.actor == "provider:Hillside"


def test_the_same_report_again_is_accepted_once(world: World) -> None:
    body = report(world.agreements["active"])
    first = post(world, body)
    assert first.status_code == 201
    before = stored_count(world)
    again = post(world, {**body, "quantity": "12.0"})  # the same number, written differently
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert stored_count(world) == before


@pytest.mark.parametrize("change", [
    {"quantity": "13"}, {"activity_type": "people_reached", "unit": "people"},
    {"period_end": "2025-04-29"}, {"location": "Elsewhere"}, {"location": MISSING},
])
def test_a_key_used_for_a_different_report_is_a_conflict(world: World,
                                                         change: dict[str, Any]) -> None:
    body = report(world.agreements["active"])
    assert post(world, body).status_code == 201
    before = stored_count(world)
    response = post(world, {k: v for k, v in {**body, **change}.items() if v is not MISSING})
    assert response.status_code == 409, response.text
    assert "was already used for a different report" in response.json()["detail"]
    assert stored_count(world) == before


def test_a_key_is_the_providers_own(world: World) -> None:
    """Two providers may use the same key under a joint agreement: two reports."""
    body = report(world.agreements["joint"])
    first = post(world, body, "hillside")
    second = post(world, body, "valley")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["delivery_id"] != second.json()["delivery_id"]


TOMORROW = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
BAD_INPUT = [
    ("unknown activity type", {"activity_type": "juggling"}, "activity_type",
     "not a known activity type"),
    ("unit not the activity's", {"unit": "hours"}, "unit",
     "sessions_delivered is counted in sessions, not hours"),
    ("negative quantity", {"quantity": -3}, "quantity", "greater than 0"),
    ("zero quantity", {"quantity": 0}, "quantity", "greater than 0"),
    ("non-numeric quantity", {"quantity": "twelve"}, "quantity", "valid decimal"),
    ("boolean quantity", {"quantity": True}, "quantity", "quantity must be a number"),
    ("empty quantity", {"quantity": " "}, "quantity", "quantity must be a number"),
    ("not-a-number quantity", {"quantity": "NaN"}, "quantity", "finite number"),
    ("infinite quantity", {"quantity": "Infinity"}, "quantity", "finite number"),
    ("huge quantity", {"quantity": "1e10"}, "quantity", "less than or equal to"),
    ("list quantity", {"quantity": [1]}, "quantity", "Decimal input"),
    ("period ends before it starts", {"period_start": "2025-04-30", "period_end": "2025-04-01"},
     "period_end", "period_end is before period_start"),
    ("period starts in the future", {"period_start": TOMORROW, "period_end": TOMORROW},
     "period_start", "in the future"),
    ("period ends in the future", {"period_end": TOMORROW}, "period_end", "in the future"),
    ("a date that is not a date", {"period_start": "2025-02-30"}, "period_start", "date"),
    ("missing key", {"idempotency_key": MISSING}, "idempotency_key", "Field required"),
    ("empty key", {"idempotency_key": "  "}, "idempotency_key", "at least 1 character"),
    ("key too long", {"idempotency_key": "k" * 201}, "idempotency_key", "at most 200"),
    ("missing agreement", {"agreement_id": MISSING}, "agreement_id", "Field required"),
    ("agreement not a uuid", {"agreement_id": "42"}, "agreement_id", "UUID"),
    ("missing activity type", {"activity_type": MISSING}, "activity_type", "Field required"),
    ("missing quantity", {"quantity": MISSING}, "quantity", "Field required"),
    ("missing period start", {"period_start": MISSING}, "period_start", "Field required"),
    ("missing period end", {"period_end": MISSING}, "period_end", "Field required"),
    ("an extra field", {"price": "9.99"}, "price", "Extra inputs are not permitted"),
    ("corrects not a uuid", {"corrects": "the last one"}, "corrects", "UUID"),
    ("a period in year 1", {"period_start": "0001-01-01"}, "period_start", "between"),
    ("a period before the agreement began",
     {"period_start": "1900-01-01", "period_end": "2024-11-30"}, "period_start",
     "before the agreement started on 2022-01-01"),
    ("a date-time for a date", {"period_start": "2025-04-01T00:00:00"}, "period_start",
     "not a date-time"),
    ("a quantity finer than a millionth", {"quantity": "1e-999999999"}, "quantity",
     "decimal places"),
    ("a control character in the location", {"location": "Hall\u0000"}, "location",
     "control character"),
    ("a line break in the location", {"location": "Hall\nRoom 2"}, "location",
     "line break"),
]


@pytest.mark.parametrize(("change", "field_name", "message"),
                         [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_unprocessable_naming_the_field(
    world: World, change: dict[str, Any], field_name: str, message: str
) -> None:
    before = stored_count(world)
    response = post(world, report(world.agreements["active"], **change))
    assert response.status_code == 422, response.text
    (error,) = [e for e in response.json()["errors"] if e["field"] == f"body.{field_name}"]
    assert message in error["message"]
    assert stored_count(world) == before


@pytest.mark.parametrize(("change", "field_name", "message"),
                         [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_in_a_batch_is_rejected_line_by_line(
    world: World, change: dict[str, Any], field_name: str, message: str
) -> None:
    good = report(world.agreements["active"])
    response = post_batch(world, ndjson(good, report(world.agreements["active"], **change)))
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["lines"], result["accepted"], result["duplicates"]) == (2, 1, 0)
    (rejected,) = result["rejected"]
    assert (rejected["line"], rejected["field"]) == (2, field_name)
    assert message in rejected["reason"]
    assert not rejected["reason"].startswith("Value error")


@pytest.mark.parametrize("body", ["", "[]", "12", '"a report"', "not json", "{"])
def test_a_body_that_is_not_a_report_is_unprocessable(world: World, body: str) -> None:
    response = world.outcomes.post("/deliveries", content=body.encode(),
                                   headers={**world.auth["hillside"],
                                            "Content-Type": "application/json"})
    assert response.status_code == 422, response.text


def test_an_unknown_agreement_is_unprocessable(world: World) -> None:
    before = stored_count(world)
    unknown = uuid4()
    response = post(world, report(unknown))
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert loc_of(error) == ["body", "agreement_id"]
    assert f"no agreement {unknown}" in error["message"]
    assert stored_count(world) == before


# --------------------------------------------------------------------------- whose agreement


def test_another_providers_agreement_is_forbidden(world: World) -> None:
    before = stored_count(world)
    response = post(world, report(world.agreements["valley"]), "hillside")
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "the agreement is not one of this provider's"
    assert stored_count(world) == before


def test_every_party_to_a_joint_agreement_reports_against_it(world: World) -> None:
    for provider in ("hillside", "valley"):
        response = post(world, report(world.agreements["joint"]), provider)
        assert response.status_code == 201, response.text
        assert response.json()["provider_id"] == str(world.providers[provider])


@pytest.mark.parametrize(("agreement", "status"), [("drafted", "drafted"), ("ended", "ended")])
def test_an_agreement_that_is_not_active_is_a_conflict(world: World, agreement: str,
                                                       status: str) -> None:
    before = stored_count(world)
    response = post(world, report(world.agreements[agreement]))
    assert response.status_code == 409, response.text
    assert response.json()["detail"].startswith(f"the agreement is {status}, not active")
    assert stored_count(world) == before


def test_a_batch_rejects_lines_for_agreements_the_provider_may_not_report_on(
    world: World,
) -> None:
    lines = [report(world.agreements[name]) for name in
             ("active", "valley", "drafted", "ended", "joint")]
    lines.append(report(uuid4()))
    result = post_batch(world, ndjson(*lines)).json()
    assert (result["lines"], result["accepted"], result["duplicates"]) == (6, 2, 0)
    assert [(r["line"], r["field"], r["reason"].split(":")[0]) for r in result["rejected"]] == [
        (2, "agreement_id", "the agreement is not one of this provider's"),
        (3, "agreement_id", "the agreement is drafted, not active"),
        (4, "agreement_id", "the agreement is ended, not active"),
        (6, "agreement_id", f"no agreement {lines[5]['agreement_id']} in the shared log (yet)"),
    ]


# --------------------------------------------------------------------------- credentials


def _tokens(world: World) -> dict[str, tuple[Auth, int]]:
    """Headers that may not report, with the status each gets."""
    revoked = world.tokens.create(Role.PROVIDER, "Hillside (old)", world.providers["hillside"])
    world.tokens.revoke(revoked.principal.token_id)
    unknown = world.tokens.create(Role.PROVIDER, "Hillside", world.providers["hillside"]).token
    token_id = unknown.split("_")[1]
    return {
        "no token": ({}, 401),
        "not a bearer token": ({"Authorization": "Basic aGlsbHNpZGU6c2VjcmV0"}, 401),
        "malformed token": (bearer("not-a-token"), 401),
        "wrong secret": (bearer(f"cit_{token_id}_{'x' * 43}"), 401),
        "revoked token": (bearer(revoked.token), 401),
        "suspended provider's credentials": (world.auth["riverside"], 401),
        **{f"{role.value} token": (world.council(role), 403)
           for role in (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER, Role.COUNCIL_STAFF,
                        Role.REGULATOR)},
    }


def test_only_a_providers_valid_credentials_may_report(world: World) -> None:
    before = stored_count(world)
    for what, (headers, expected) in _tokens(world).items():
        agreement = world.agreements["riverside" if "suspended" in what else "active"]
        single = post(world, report(agreement), headers=headers)
        assert single.status_code == expected, (what, single.text)
        batch = post_batch(world, ndjson(report(agreement)), headers=headers)
        assert batch.status_code == expected, (what, batch.text)
        if expected == 401:
            assert single.headers["www-authenticate"] == "Bearer"
        else:
            assert "role" in single.json()["detail"]
    assert stored_count(world) == before


def test_reading_needs_credentials(world: World) -> None:
    for path in ("/deliveries", f"/deliveries/{uuid4()}", "/activity-types",
                 "/deliveries/units"):
        assert world.outcomes.get(path).status_code == 401, path


# --------------------------------------------------------------------------- batches


def test_a_batch_is_accepted_with_a_report_per_line(world: World) -> None:
    agreement = world.agreements["active"]
    good = [report(agreement, quantity=str(i + 1)) for i in range(4)]
    body = ndjson(good[0], "", good[1], "{not json", "   ", "[1, 2]", good[2],
                  report(agreement, quantity="-1"), good[3]) + b"\n\n"
    response = post_batch(world, body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["lines"], result["accepted"], result["duplicates"]) == (7, 4, 0)
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [
        (4, None), (6, None), (8, "quantity")]
    assert result["rejected"][0]["reason"].startswith("not valid JSON")
    assert result["rejected"][1]["reason"] == "a delivery report is a JSON object"
    assert len(stored_reports(world, "hillside", *(g["idempotency_key"] for g in good))) == 4


def test_windows_line_endings_and_a_charset_are_fine(world: World) -> None:
    lines = [report(world.agreements["active"]) for _ in range(3)]
    body = b"\r\n".join(json.dumps(line).encode() for line in lines) + b"\r\n"
    response = world.outcomes.post(
        "/deliveries/batch", content=body,
        headers={**world.auth["hillside"], "Content-Type": "application/x-ndjson; charset=utf-8"})
    assert response.status_code == 200, response.text
    assert response.json() == {"lines": 3, "accepted": 3, "already_stored": 0,
                               "duplicates": 0, "rejected": []}


def test_an_empty_batch_stores_nothing(world: World) -> None:
    before = stored_count(world)
    result = post_batch(world, b"\n \n").json()
    assert result == {"lines": 0, "accepted": 0, "already_stored": 0, "duplicates": 0,
                      "rejected": []}
    assert stored_count(world) == before


def test_a_replayed_batch_is_accepted_once(world: World) -> None:
    lines = [report(world.agreements["active"], quantity=str(i + 1)) for i in range(50)]
    first = post_batch(world, ndjson(*lines)).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (50, 0, [])
    before = stored_count(world)
    # Sent again (its answer was lost, say): every report is stored already, and says so.
    again = post_batch(world, ndjson(*lines)).json()
    assert (again["lines"], again["accepted"], again["already_stored"], again["duplicates"],
            again["rejected"]) == (50, 0, 50, 0, [])
    assert stored_count(world) == before
    # Half old, half new: the new half is stored, the old half recognised.
    more = [report(world.agreements["active"]) for _ in range(25)]
    mixed = post_batch(world, ndjson(*lines[:25], *more)).json()
    assert (mixed["accepted"], mixed["already_stored"], mixed["duplicates"]) == (25, 25, 0)


def test_a_duplicate_key_within_a_batch_is_accepted_once(world: World) -> None:
    body = report(world.agreements["active"])
    other = report(world.agreements["active"])
    result = post_batch(world, ndjson(body, other, body, body)).json()
    assert (result["lines"], result["accepted"], result["duplicates"], result["rejected"]) == (
        4, 2, 2, [])
    assert len(stored_reports(world, "hillside", body["idempotency_key"])) == 1


def test_a_key_reused_within_a_batch_for_a_different_report_is_rejected(world: World) -> None:
    body = report(world.agreements["active"])
    result = post_batch(world, ndjson(body, {**body, "quantity": "99"})).json()
    assert (result["accepted"], result["duplicates"]) == (1, 0)
    (rejected,) = result["rejected"]
    assert (rejected["line"], rejected["field"]) == (2, "idempotency_key")
    assert "already used for a different report" in rejected["reason"]


def test_a_single_report_replayed_in_a_batch_and_back_is_accepted_once(world: World) -> None:
    body = report(world.agreements["active"])
    assert post(world, body).status_code == 201
    result = post_batch(world, ndjson(body)).json()
    assert (result["accepted"], result["already_stored"], result["duplicates"]) == (0, 1, 0)
    batched = report(world.agreements["active"])
    post_batch(world, ndjson(batched))
    assert post(world, batched).status_code == 200


def test_a_batch_of_the_most_lines_allowed_is_accepted(world: World) -> None:
    agreement = world.agreements["joint"]
    lines = [report(agreement, f"max-{i}", quantity=str(i % 7 + 1), location=MISSING)
             for i in range(MAX_BATCH_LINES)]
    response = post_batch(world, ndjson(*lines, "", ""), "valley")
    assert response.status_code == 200, response.text
    assert response.json() == {"lines": MAX_BATCH_LINES, "accepted": MAX_BATCH_LINES,
                               "already_stored": 0, "duplicates": 0, "rejected": []}
    assert len(stored_reports(world, "valley", *(f"max-{i}" for i in range(MAX_BATCH_LINES)))) \
        == MAX_BATCH_LINES


def test_a_batch_over_the_line_limit_is_refused_with_nothing_stored(world: World) -> None:
    before = stored_count(world)
    keys = [f"over-{i}" for i in range(MAX_BATCH_LINES + 1)]
    body = ndjson(*(report(world.agreements["active"], k) for k in keys))
    response = post_batch(world, body)
    assert response.status_code == 413, response.text
    assert "10,001 reports in one batch: at most 10,000" in response.json()["detail"]
    assert stored_count(world) == before
    assert stored_reports(world, "hillside", *keys) == []


def test_a_batch_over_the_size_limit_is_refused_with_nothing_stored(world: World) -> None:
    before = stored_count(world)
    line = json.dumps(report(world.agreements["active"], location="x" * 200)).encode()
    body = b"\n".join([line] * (MAX_BATCH_BYTES // len(line) + 1))
    assert len(body) > MAX_BATCH_BYTES
    response = post_batch(world, body)
    assert response.status_code == 413, response.text
    assert stored_count(world) == before


def test_a_batch_that_is_not_ndjson_is_unsupported(world: World) -> None:
    body = ndjson(report(world.agreements["active"]))
    for content_type in ("application/json", "text/plain", "",
                         "application/x-ndjson; charset=latin-1"):
        response = world.outcomes.post(
            "/deliveries/batch", content=body,
            headers={**world.auth["hillside"], "Content-Type": content_type})
        assert response.status_code == 415, (content_type, response.text)


def test_the_same_batch_sent_twice_at_once_is_stored_once(world: World) -> None:
    lines = [report(world.agreements["active"]) for _ in range(1500)]
    body = ndjson(*lines)
    results: list[Any] = []

    def send() -> None:
        results.append(post_batch(world, body).json())

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r["rejected"] == [] for r in results), results
    assert sum(r["accepted"] for r in results) == 1500
    assert sum(r["duplicates"] + r["already_stored"] for r in results) == 1500
    counts = logged_deliveries(world)
    keys = [line["idempotency_key"] for line in lines]
    assert {counts[delivery_id_for(world.providers["hillside"], k)] for k in keys} == {1}


# --------------------------------------------------------------------------- the shared log


def test_every_accepted_report_reaches_the_shared_log_once(world: World) -> None:
    agreement = world.agreements["active"]
    single = report(agreement)
    lines = [report(agreement) for _ in range(30)]
    post(world, single)
    post(world, single)
    post_batch(world, ndjson(*lines, lines[0], report(agreement, quantity=-1)))
    post_batch(world, ndjson(*lines))
    counts = logged_deliveries(world)
    for body in (single, *lines):
        assert counts[delivery_id_for(world.providers["hillside"],
                                      body["idempotency_key"])] == 1
    assert set(counts.values()) == {1}  # nothing on the log twice, in any test so far


# --------------------------------------------------------------------------- corrections


def test_a_correction_is_a_new_report_and_the_corrected_one_stops_counting(
    world: World,
) -> None:
    agreement = world.agreements["active"]
    period = {"period_start": "2024-01-01", "period_end": "2024-01-31"}
    original = post(world, report(agreement, quantity="10", **period)).json()
    correction = post(world, report(agreement, quantity="8", corrects=original["delivery_id"],
                                    **period))
    assert correction.status_code == 201, correction.text
    corrected = correction.json()
    assert corrected["corrects"] == original["delivery_id"]
    reread = world.outcomes.get(f"/deliveries/{original['delivery_id']}",
                                headers=world.auth["hillside"]).json()
    assert (reread["quantity"], reread["superseded_by"]) == ("10", corrected["delivery_id"])

    # A correction of the correction is fine; a second correction of the original is not.
    again = post(world, report(agreement, quantity="9", corrects=corrected["delivery_id"],
                               **period))
    assert again.status_code == 201, again.text
    fork = post(world, report(agreement, quantity="7", corrects=original["delivery_id"],
                              **period))
    assert fork.status_code == 409, fork.text
    assert f"already corrected by {corrected['delivery_id']}" in fork.json()["detail"]

    views = runtime_of(world.outcomes).views
    projected(world, again.json()["delivery_id"])
    eventually(lambda: units_delivered_in(views, agreement, "2024-01"),
               lambda units: units == {"sessions_delivered": Decimal(9)}, world.deadline)
    assert units_delivered_in(views, agreement, "2024-Q1") == {"sessions_delivered": Decimal(9)}
    rows = {str(r.delivery_id): r for r in
            list_deliveries(views, agreement_id=agreement, period="2024-01")}
    assert {d: (r.quantity, str(r.superseded_by) if r.superseded_by else None)
            for d, r in rows.items()} == {
        original["delivery_id"]: (Decimal(10), corrected["delivery_id"]),
        corrected["delivery_id"]: (Decimal(8), again.json()["delivery_id"]),
        again.json()["delivery_id"]: (Decimal(9), None),
    }
    current = list_deliveries(views, agreement_id=agreement, period="2024-01",
                              include_superseded=False)
    assert [str(r.delivery_id) for r in current] == [again.json()["delivery_id"]]


def test_a_correction_may_change_what_was_reported(world: World) -> None:
    agreement = world.agreements["active"]
    original = post(world, report(agreement, quantity="10")).json()
    response = post(world, report(agreement, activity_type="people_reached", unit="people",
                                  quantity="4", period_start="2025-03-01",
                                  corrects=original["delivery_id"]))
    assert response.status_code == 201, response.text
    assert (response.json()["activity_type"], response.json()["period_start"]) == (
        "people_reached", "2025-03-01")


@pytest.mark.parametrize("whose", ["unknown", "another provider's", "another agreement's"])
def test_a_correction_names_a_report_of_the_same_provider_and_agreement(
    world: World, whose: str
) -> None:
    if whose == "unknown":
        target = str(uuid4())
    elif whose == "another provider's":
        target = post(world, report(world.agreements["joint"]), "valley").json()["delivery_id"]
    else:
        target = post(world, report(world.agreements["joint"])).json()["delivery_id"]
    agreement = world.agreements["joint" if whose == "another provider's" else "active"]
    before = stored_count(world)
    response = post(world, report(agreement, corrects=target))
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert loc_of(error) == ["body", "corrects"]
    assert target in error["message"]
    assert stored_count(world) == before
    batch = post_batch(world, ndjson(report(agreement, corrects=target))).json()
    assert [(r["line"], r["field"]) for r in batch["rejected"]] == [(1, "corrects")]


def test_corrections_within_one_batch(world: World) -> None:
    agreement = world.agreements["active"]
    period = {"period_start": "2024-02-01", "period_end": "2024-02-29"}
    first = report(agreement, quantity="10", **period)
    first_id = str(delivery_id_for(world.providers["hillside"], first["idempotency_key"]))
    second = report(agreement, quantity="11", corrects=first_id, **period)
    second_id = str(delivery_id_for(world.providers["hillside"], second["idempotency_key"]))
    third = report(agreement, quantity="12", corrects=second_id, **period)
    fork = report(agreement, quantity="13", corrects=first_id, **period)
    ahead = report(agreement, quantity="14", corrects=str(
        delivery_id_for(world.providers["hillside"], "not-yet-sent")), **period)
    result = post_batch(world, ndjson(first, second, third, fork, ahead)).json()
    assert (result["accepted"], result["duplicates"]) == (3, 0)
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [
        (4, "corrects"), (5, "corrects")]
    assert "already corrected" in result["rejected"][0]["reason"]
    again = post_batch(world, ndjson(first, second, third)).json()
    assert (again["accepted"], again["already_stored"]) == (0, 3)
    views = runtime_of(world.outcomes).views
    eventually(lambda: units_delivered_in(views, agreement, "2024-02"),
               lambda units: units == {"sessions_delivered": Decimal(12)}, world.deadline)


def test_a_correction_replayed_is_accepted_once(world: World) -> None:
    agreement = world.agreements["active"]
    original = post(world, report(agreement)).json()
    correction = report(agreement, quantity="3", corrects=original["delivery_id"])
    assert post(world, correction).status_code == 201
    assert post(world, correction).status_code == 200
    result = post_batch(world, ndjson(correction)).json()
    assert (result["accepted"], result["already_stored"]) == (0, 1)


def test_marking_a_report_superseded_stays_in_the_store(world: World) -> None:
    original = post(world, report(world.agreements["active"])).json()
    correction = post(world, report(world.agreements["active"],
                                    corrects=original["delivery_id"])).json()
    stored = world.app.recorder.select_events(UUID(original["delivery_id"]))
    assert [e.originator_version for e in stored] == [1, 2]  # reported, then superseded
    events = logged(world)
    assert {e.type for e in events} <= set(Outcomes.published.values())
    assert [e.stream_position for e in events if e.stream_id == original["delivery_id"]] == [1]
    assert [e.data["corrects"] for e in events
            if e.stream_id == correction["delivery_id"]] == [original["delivery_id"]]


# --------------------------------------------------------------------------- reading


def test_reports_are_listed_from_the_read_model(world: World) -> None:
    agreement = world.agreements["joint"]
    period = {"period_start": "2023-05-02", "period_end": "2023-06-03"}
    mine = post(world, report(agreement, **period), "hillside").json()
    theirs = post(world, report(agreement, **period), "valley").json()
    projected(world, mine["delivery_id"])
    projected(world, theirs["delivery_id"])

    def listed(headers: Auth, **query: str) -> set[str]:
        response = world.outcomes.get("/deliveries", params={"agreement_id": str(agreement),
                                                             **query}, headers=headers)
        assert response.status_code == 200, response.text
        return {row["delivery_id"] for row in response.json()}

    both = {mine["delivery_id"], theirs["delivery_id"]}
    council = world.council(Role.COUNCIL_STAFF)
    assert listed(council, period="2023-06") == both  # counted in the month the period ends
    assert listed(council, period="2023-Q2") == both
    assert listed(council, period="2023-05") == set()
    assert listed(world.auth["hillside"], period="2023-06") == {mine["delivery_id"]}
    assert listed(world.auth["hillside"], period="2023-06",
                  provider_id=str(world.providers["valley"])) == set()
    assert world.outcomes.get("/deliveries", params={"period": "2023-13"},
                              headers=council).status_code == 422


def test_a_provider_reads_only_its_own_reports(world: World) -> None:
    theirs = post(world, report(world.agreements["valley"]), "valley").json()
    path = f"/deliveries/{theirs['delivery_id']}"
    assert world.outcomes.get(path, headers=world.auth["hillside"]).status_code == 404
    assert world.outcomes.get(path, headers=world.auth["valley"]).status_code == 200
    assert world.outcomes.get(path, headers=world.council(Role.COUNCIL_STAFF)).status_code == 200
    missing = world.outcomes.get(f"/deliveries/{uuid4()}",
                                 headers=world.council(Role.COUNCIL_STAFF))
    assert missing.status_code == 404


def test_units_delivered_per_agreement_activity_and_period(world: World) -> None:
    agreement = world.agreements["valley"]
    lines = [
        report(agreement, quantity="2.5", period_start="2022-01-01", period_end="2022-01-31"),
        report(agreement, quantity="3", period_start="2022-01-10", period_end="2022-01-10"),
        report(agreement, quantity="4", period_start="2022-01-20", period_end="2022-02-05"),
        report(agreement, activity_type="meals", unit="meals", quantity="100",
               period_start="2022-03-01", period_end="2022-03-31"),
    ]
    assert post_batch(world, ndjson(*lines), "valley").json()["accepted"] == 4
    council = world.council(Role.COMMISSIONER)

    def units(**query: str) -> list[tuple[str, str, str, int]]:
        """The agreement's units in 2022 (other tests report in other years)."""
        response = world.outcomes.get("/deliveries/units", headers=council,
                                      params={"agreement_id": str(agreement), **query})
        assert response.status_code == 200, response.text
        return [(u["activity_type"], u["period"], u["units"], u["reports"])
                for u in response.json() if u["period"].startswith("2022")]

    eventually(units, lambda found: len(found) == 3, world.deadline)
    assert units() == [("sessions_delivered", "2022-01", "5.5", 2),
                       ("sessions_delivered", "2022-02", "4", 1), ("meals", "2022-03", "100", 1)]
    assert units(periodicity="quarterly") == [("meals", "2022-Q1", "100", 1),
                                              ("sessions_delivered", "2022-Q1", "9.5", 3)]
    assert units(period="2022-02") == [("sessions_delivered", "2022-02", "4", 1)]
    provider = world.outcomes.get("/deliveries/units", headers=world.auth["valley"])
    assert provider.status_code == 403


def test_the_activity_types_are_listed(world: World) -> None:
    response = world.outcomes.get("/activity-types", headers=world.auth["hillside"])
    assert response.status_code == 200
    found = {a["code"]: a for a in response.json()}
    assert found["sessions_delivered"]["unit"] == "sessions"
    assert found["care_hours"] == {"code": "care_hours", "unit": "hours", "name": "Hours of care",
                                   "description": "Hours of personal or home care delivered."}


# --------------------------------------------------------------------------- the application


def _standalone(tmp_path: Path) -> tuple[Outcomes, UUID, UUID]:
    from council.platform.eventstore import open_application

    app = open_application(Outcomes, Settings(var_dir=tmp_path))
    provider, agreement = uuid4(), uuid4()
    app.agreements = lambda ids: {agreement: AgreementInfo(agreement, "active",
                                                           frozenset({provider}))}
    return app, provider, agreement


def _parsed(agreement: UUID, *bodies: dict[str, Any]) -> list[tuple[int, DeliveryIn | Exception]]:
    return [(i, DeliveryIn.model_validate({**report(agreement), **body}))
            for i, body in enumerate(bodies)]


def test_a_concurrent_save_of_the_same_reports_is_recognised_not_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reports stored by someone else between the check and the save: the save clashes, and
    the rest is checked again and found to be replays."""
    app, provider, agreement = _standalone(tmp_path)
    reports = _parsed(agreement, *({"idempotency_key": f"k{i}"} for i in range(2500)))
    first = app.report_deliveries(provider, reports[1200:1300], Channel.HTTP)
    assert len(first.accepted) == 100
    real = app._stored_reports
    calls: list[int] = []

    def stale_then_real(ids: set[UUID]) -> dict[UUID, Any]:
        calls.append(len(ids))
        return {} if len(calls) == 1 else real(ids)

    monkeypatch.setattr(app, "_stored_reports", stale_then_real)
    batch = app.report_deliveries(provider, reports, Channel.HTTP)
    assert len(calls) == 2  # planned twice: once stale, once after the clash
    assert [o.index for o in batch.outcomes] == list(range(2500))
    assert batch.rejected == []
    assert {o.index for o in batch.accepted if o.duplicate} == set(range(1200, 1300))
    assert (app.recorder.max_notification_id() or 0) == 2500
    app.close()


def test_two_concurrent_corrections_of_one_report_do_not_both_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, provider, agreement = _standalone(tmp_path)
    (original,) = app.report_deliveries(provider, _parsed(agreement, {}), Channel.HTTP).outcomes
    assert original.delivery_id is not None
    stale = app._stored_report(original.delivery_id)  # read before the first correction
    first = app.report_deliveries(
        provider, _parsed(agreement, {"corrects": original.delivery_id}), Channel.HTTP)
    assert first.rejected == []
    loads: list[UUID] = []
    real = app._stored_report

    def stale_then_real(delivery_id: UUID) -> Any:
        loads.append(delivery_id)
        return stale if len(loads) == 1 else real(delivery_id)

    monkeypatch.setattr(app, "_stored_report", stale_then_real)
    second = app.report_deliveries(
        provider, _parsed(agreement, {"corrects": original.delivery_id}), Channel.HTTP)
    (refused,) = second.outcomes
    assert (refused.code, refused.field) == (CONFLICT, "corrects")
    assert "already corrected" in (refused.error or "")
    assert len(loads) == 2
    app.close()


# --------------------------------------------------------------------------- the read models


def _envelope(source: str, type_: str, stream: UUID, position: int, data: dict[str, Any],
              at: str = "2025-05-01T09:00:00+00:00") -> EventEnvelope:
    return EventEnvelope(event_id=uuid4(), type=type_, schema_version=1, source=source,
                         stream_id=str(stream), stream_position=position,
                         occurred_at=datetime.fromisoformat(at),
                         recorded_at=datetime.fromisoformat(at), data=data)


def _reported(delivery_id: UUID, agreement: UUID, quantity: str, end: date,
              corrects: UUID | None = None) -> EventEnvelope:
    return _envelope("outcomes", "DeliveryReported", delivery_id, 1, {
        "delivery_id": str(delivery_id), "agreement_id": str(agreement),
        "provider_id": str(uuid4()), "activity_type": "meals", "quantity": quantity,
        "unit": "meals", "period_start": (end - timedelta(days=3)).isoformat(),
        "period_end": end.isoformat(), "idempotency_key": str(delivery_id),
        "corrects": str(corrects) if corrects else None, "channel": "kafka",
    })


def _read_model(tmp_path: Path, projection: Any) -> Database:
    """An empty read model for `projection` (with the runner's position tables)."""
    db = Database.sqlite(tmp_path / "views.sqlite")
    log = open_event_log(Settings(var_dir=tmp_path))
    ProjectionRunner(projection, db, log)
    log.close()
    return db


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_corrections_apply_whatever_order_they_arrive_in(tmp_path: Path,
                                                         order: tuple[int, ...]) -> None:
    projection = DeliveriesProjection()
    db = _read_model(tmp_path, projection)
    agreement, a, b, c, other = uuid4(), uuid4(), uuid4(), uuid4(), uuid4()
    chain = [_reported(a, agreement, "10", date(2025, 3, 31)),
             _reported(b, agreement, "7", date(2025, 4, 2), corrects=a),
             _reported(c, agreement, "8.25", date(2025, 4, 2), corrects=b)]
    with db.transaction() as tx:
        projection.apply(tx, _reported(other, agreement, "1", date(2025, 6, 1)))
        for i in order:
            projection.apply(tx, chain[i])
    assert units_delivered(db, agreement_ids=[agreement]) == units_delivered(
        db, agreement_ids=[agreement], periodicity=Periodicity.MONTHLY)
    found = [(u.period, u.units, u.reports) for u in units_delivered(db)]
    assert found == [("2025-04", Decimal("8.25"), 1), ("2025-06", Decimal(1), 1)]
    quarters = [(u.period, u.units) for u in
                units_delivered(db, periodicity=Periodicity.QUARTERLY)]
    assert quarters == [("2025-Q2", Decimal("9.25"))]
    assert units_delivered_in(db, agreement, "2025-03") == {}
    assert units_delivered(db, agreement_ids=[]) == []
    assert units_delivered(db, periods=[]) == []
    db.close()


def test_agreement_status_follows_the_integrator(tmp_path: Path) -> None:
    projection = AgreementsProjection()
    db = _read_model(tmp_path, projection)
    agreement, p1, p2 = uuid4(), uuid4(), uuid4()
    drafted = _envelope("integrator", "AgreementDrafted", agreement, 1, {
        "agreement_id": str(agreement), "need_id": str(uuid4()), "title": "Cooking",
        "arrangement_type": "grant", "starts_on": "2025-01-01", "ends_on": "2026-01-01",
        "budget": "100.00", "exit_plan": "none",
        "parties": [{"provider_id": str(p1), "allocation": "60.00"},
                    {"provider_id": str(p2), "allocation": "40.00"}],
        "reward_terms": {"payment_by_results_share_pct": "10", "payment_frequency": "monthly"},
    })
    with db.transaction() as tx:
        projection.apply(tx, drafted)
    assert lookup_agreements(db, [agreement, uuid4()]) == {
        agreement: AgreementInfo(agreement, "drafted", frozenset({p1, p2}), date(2025, 1, 1),
                                 date(2026, 1, 1), "monthly")}
    # The term: extended to 2027, then ended early, in the middle of 2026.
    steps = [
        ("AgreementActivated", {"activated_on": "2025-01-02"}, "active", date(2026, 1, 1)),
        ("AgreementExtended", {"extension_id": "x1", "previous_end": "2026-01-01",
                               "new_end": "2027-01-01", "justification": "good",
                               "performance_evidence": "on track"}, "active", date(2027, 1, 1)),
        ("AgreementEnded", {"how": "terminated", "ended_on": "2026-06-30", "reason": "done",
                            "exit_plan_executed": True}, "ended", date(2026, 6, 30)),
    ]
    for position, (type_, data, status, ends_on) in enumerate(steps, start=2):
        with db.transaction() as tx:
            projection.apply(tx, _envelope("integrator", type_, agreement, position,
                                           {"agreement_id": str(agreement), **data}))
        found = lookup_agreements(db, [agreement])[agreement]
        assert (found.status, found.term, found.payment_frequency) == (
            status, (date(2025, 1, 1), ends_on), "monthly")
    assert lookup_agreements(db, []) == {}
    db.close()
