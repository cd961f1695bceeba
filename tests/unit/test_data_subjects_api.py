"""Service users named in delivery reports, over HTTP, with the three services in process on the
embedded deployment (the world of test_deliveries_api: providers approved on the registry,
agreements commissioned and activated on the integrator): personal data readable by the
council's writers and the reporting provider only, bad personal data refused naming the field
without repeating it, replays, erasure (once, by reference or subject id; unknown subjects 404,
other roles 403), what the council holds about a subject, and the read model rebuilt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from uuid import UUID, uuid4

import pytest

from council.platform.identity import Role
from council.platform.settings import Settings
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.services.outcomes.projections.data_subjects import list_erasures
from tests.unit.test_deliveries_api import (
    DEADLINE_SECONDS,
    Auth,
    World,
    build_world,
    logged,
    ndjson,
    post,
    post_batch,
    report,
    runtime_of,
    stored_count,
)
from tests.waiting import eventually

NHS = "943 476 5919"
ALICE = {"reference_type": "nhs_number", "reference": NHS, "name": "Alice Quennell",
         "date_of_birth": "1961-07-14", "postcode": "NS1 4AB", "notes": "prefers mornings"}
BOB = {"reference": "HS-0017", "name": "Bob Ashdown", "postcode": "WX3 9PL"}
CAROL = {"reference_type": "nhs_number", "reference": "4010232137", "name": "Carol Penhale"}
PLAINTEXT = ("Alice Quennell", "9434765919", "943 476 5919", "1961-07-14", "NS1 4AB",
             "prefers mornings")
ERASE = {"legal_basis": "consent_withdrawn", "reason": "DSR-2026-0042: consent withdrawn",
         "requested_on": "2025-05-02"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(var_dir=tmp_path_factory.mktemp("data-subjects"), relay_interval=0.01)
    with ExitStack() as stack:
        yield build_world(stack, settings, DEADLINE_SECONDS)


def users_of(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(u["state"], u["name"]) for u in body["service_users"]]


def listed(world: World, delivery_id: str, headers: Auth) -> dict[str, Any]:
    """The report's item in GET /deliveries, once both read models have it."""
    def read() -> Any:
        found = world.outcomes.get("/deliveries", params={"limit": 1000}, headers=headers).json()
        return next((d for d in found if d["delivery_id"] == delivery_id), None)
    found: dict[str, Any] = eventually(read, lambda d: d is not None and bool(d["service_users"]),
                                       world.deadline)
    return found


def erase(world: World, body: dict[str, Any], expect: int = 201,
          headers: Auth | None = None) -> Any:
    response = world.outcomes.post("/data-subjects/erasure", json={**ERASE, **body},
                                   headers=world.admin if headers is None else headers)
    assert response.status_code == expect, response.text
    return response.json()


def test_personal_data_is_readable_by_council_writers_and_the_reporting_provider(
    world: World,
) -> None:
    body = report(world.agreements["joint"], service_users=[ALICE, BOB])
    created = post(world, body)
    assert created.status_code == 201, created.text
    delivery_id = created.json()["delivery_id"]
    assert users_of(created.json()) == [("readable", "Alice Quennell"),
                                        ("readable", "Bob Ashdown")]
    alice = created.json()["service_users"][0]
    assert (alice["reference"], alice["date_of_birth"], alice["postcode"]) == (
        "9434765919", "1961-07-14", "NS1 4AB")
    for role in (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER):
        read = world.outcomes.get(f"/deliveries/{delivery_id}", headers=world.council(role))
        assert users_of(read.json()) == users_of(created.json()), role
        assert users_of(listed(world, delivery_id, world.council(role))) == users_of(read.json())
    staff = world.council(Role.COUNCIL_STAFF)
    withheld = world.outcomes.get(f"/deliveries/{delivery_id}", headers=staff).json()
    assert users_of(withheld) == [("withheld", None), ("withheld", None)]
    assert [u["subject_id"] for u in withheld["service_users"]] == [
        u["subject_id"] for u in created.json()["service_users"]]
    assert users_of(listed(world, delivery_id, staff)) == users_of(withheld)
    for value in PLAINTEXT:
        assert value not in json.dumps(withheld)
    # The other party to the joint agreement does not see hillside's report at all.
    assert world.outcomes.get(f"/deliveries/{delivery_id}",
                              headers=world.auth["valley"]).status_code == 404
    assert world.outcomes.get(f"/deliveries/{delivery_id}",
                              headers=world.council(Role.REGULATOR)).status_code == 403


def test_the_stored_event_and_the_log_carry_only_ciphertext(world: World) -> None:
    created = post(world, report(world.agreements["active"], service_users=[ALICE])).json()
    (event,) = [e for e in logged(world) if e.type == "DeliveryReported"
                and e.stream_id == created["delivery_id"]]
    assert event.schema_version == 2
    (sealed,) = event.data["service_users"]
    assert set(sealed) == {"subject_id", "key_id", "alg", "nonce", "ciphertext"}
    assert sealed["subject_id"] == created["service_users"][0]["subject_id"]
    for value in PLAINTEXT:
        assert value not in json.dumps(event.data)
    plain = post(world, report(world.agreements["active"])).json()
    (unnamed,) = [e for e in logged(world) if e.stream_id == plain["delivery_id"]]
    assert "service_users" not in unnamed.data  # as before reports could name anyone
    assert plain["service_users"] == []


def test_the_same_person_reported_again_is_the_same_subject(world: World) -> None:
    first = post(world, report(world.agreements["active"], service_users=[ALICE])).json()
    again = post(world, report(world.agreements["joint"],
                               service_users=[{**ALICE, "name": "Alice Q"}])).json()
    other = post(world, report(world.agreements["valley"], service_users=[ALICE, BOB]),
                 provider="valley").json()
    subject = first["service_users"][0]["subject_id"]
    assert again["service_users"][0]["subject_id"] == subject
    assert other["service_users"][0]["subject_id"] == subject  # an NHS number: anyone's
    hillside_bob = post(world, report(world.agreements["active"], service_users=[BOB])).json()
    assert (hillside_bob["service_users"][0]["subject_id"]
            != other["service_users"][1]["subject_id"])  # a provider's own reference


@pytest.mark.parametrize(("user", "field"), [
    ({**ALICE, "reference": "943 476 5918"}, "service_users.0.reference"),
    ({**ALICE, "postcode": "Alice's house"}, "service_users.0.postcode"),
    ({**ALICE, "date_of_birth": "2999-01-01"}, "service_users.0.date_of_birth"),
    ({**ALICE, "date_of_birth": "14 July 1961"}, "service_users.0.date_of_birth"),
    ({**ALICE, "religion": "none given"}, "service_users.0.religion"),
    ({key: v for key, v in ALICE.items() if key != "reference"}, "service_users.0.reference"),
])
def test_bad_personal_data_is_refused_naming_the_field_and_not_repeating_it(
    world: World, user: dict[str, Any], field: str,
) -> None:
    before = stored_count(world)
    response = post(world, report(world.agreements["active"], service_users=[user]))
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == f"body.{field}"
    assert "input" not in error
    for value in (*PLAINTEXT, "Alice's house", "943 476 5918", "14 July 1961", "none given"):
        assert value not in response.text
    line = report(world.agreements["active"], service_users=[user])
    batch = post_batch(world, ndjson(line)).json()
    assert [(r["line"], r["field"]) for r in batch["rejected"]] == [(1, field)]
    for value in (*PLAINTEXT, "Alice's house", "943 476 5918"):
        assert value not in json.dumps(batch)
    assert stored_count(world) == before


def test_naming_someone_twice_or_too_many_is_refused(world: World) -> None:
    twice = post(world, report(world.agreements["active"], service_users=[ALICE, ALICE]))
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["field"].split(".") == ["body", "service_users"]
    crowd = [{"reference": f"HS-{i}"} for i in range(101)]
    assert post(world, report(world.agreements["active"],
                              service_users=crowd)).status_code == 422


def test_a_replay_names_the_same_people_and_a_change_of_people_is_a_conflict(
    world: World,
) -> None:
    body = report(world.agreements["active"], service_users=[ALICE, BOB])
    first = post(world, body)
    assert first.status_code == 201
    before = stored_count(world)
    again = post(world, body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    for changed in ([ALICE], [ALICE, {**BOB, "notes": "moved"}], None):
        clash = post(world, {**body, "service_users": changed})
        assert clash.status_code == 409, (changed, clash.text)
        assert clash.json()["detail"].startswith("idempotency_key")
    # Two lines of one batch with the same key: once, and the same people.
    key = f"key-{uuid4().hex[:8]}"
    lines = [report(world.agreements["active"], key, service_users=[CAROL]),
             report(world.agreements["active"], key, service_users=[CAROL]),
             report(world.agreements["active"], key, service_users=[{**CAROL, "name": "C"}])]
    batch = post_batch(world, ndjson(*lines)).json()
    assert (batch["accepted"], batch["duplicates"]) == (1, 1)
    assert [(r["line"], r["field"]) for r in batch["rejected"]] == [(3, "idempotency_key")]
    assert stored_count(world) == before + 1


def test_erasure_makes_the_subject_unreadable_and_keeps_everyone_else(world: World) -> None:
    dave = {"reference_type": "nhs_number", "reference": "9990548609", "name": "Dave Orme"}
    first = post(world, report(world.agreements["active"], service_users=[dave, BOB])).json()
    second = post(world, report(world.agreements["active"], service_users=[dave])).json()
    subject = first["service_users"][0]["subject_id"]
    erased = erase(world, {"service_user": {"reference_type": "nhs_number",
                                            "reference": "999 054 8609"}})
    assert erased["subject_id"] == subject
    assert (erased["legal_basis"], erased["requested_on"]) == ("consent_withdrawn", "2025-05-02")
    assert erased["inbound_purge"] is None  # the embedded deployment has no inbound topic
    commissioner = world.council(Role.COMMISSIONER)
    read = world.outcomes.get(f"/deliveries/{first['delivery_id']}", headers=commissioner).json()
    assert users_of(read) == [("erased", None), ("readable", "Bob Ashdown")]
    assert users_of(world.outcomes.get(f"/deliveries/{second['delivery_id']}",
                                       headers=world.auth["hillside"]).json()) == [
        ("erased", None)]
    assert users_of(listed(world, first["delivery_id"], commissioner)) == users_of(read)
    # Accepted once: by subject id it is recognised; the reference is forgotten.
    again = erase(world, {"subject_id": subject, "legal_basis": "objection"}, expect=200)
    assert again == erased
    gone = erase(world, {"service_user": {"reference_type": "nhs_number",
                                          "reference": "9990548609"}}, expect=404)
    assert "already erased" in gone["detail"]
    (event,) = [e for e in logged(world) if e.type == "DataSubjectErased"
                and e.data["subject_id"] == subject]
    assert event.data == {"erasure_id": erased["erasure_id"], "subject_id": subject,
                          "legal_basis": "consent_withdrawn", "requested_on": "2025-05-02",
                          "reason": "DSR-2026-0042: consent withdrawn"}
    assert event.actor == "integrator_admin:sam"
    listing = eventually(lambda: world.outcomes.get("/data-subjects/erasures",
                                                    headers=world.admin).json(),
                         lambda rows: any(r["subject_id"] == subject for rows_ in [rows]
                                          for r in rows_), world.deadline)
    (row,) = [r for r in listing if r["subject_id"] == subject]
    assert (row["erasure_id"], row["erased_by"]) == (erased["erasure_id"], "integrator_admin:sam")
    held = world.outcomes.get(f"/data-subjects/{subject}", headers=world.admin).json()
    assert held["state"] == "erased"
    assert held["erasure"]["erasure_id"] == erased["erasure_id"]
    assert sorted(r["delivery_id"] for r in held["records"]) == sorted(
        [first["delivery_id"], second["delivery_id"]])
    assert {r["service_user"]["state"] for r in held["records"]} == {"erased"}
    # Reported again afterwards, Dave is someone new (nothing links him to the erased past).
    later = post(world, report(world.agreements["active"], service_users=[dave])).json()
    assert later["service_users"][0]["subject_id"] != subject
    assert users_of(later) == [("readable", "Dave Orme")]
    # A replay of a report made before the erasure stores nothing and opens nothing.
    replay = post(world, report(world.agreements["active"], second["idempotency_key"],
                                service_users=[dave]))
    assert replay.status_code == 200, replay.text
    assert users_of(replay.json()) == [("erased", None)]


def test_erasure_refusals(world: World) -> None:
    created = post(world, report(world.agreements["active"], service_users=[CAROL])).json()
    subject = created["service_users"][0]["subject_id"]
    assert "no data subject" in erase(world, {"subject_id": str(uuid4())}, 404)["detail"]
    erase(world, {"service_user": {"reference": "never-reported",
                                   "provider_id": str(world.providers["hillside"])}}, 404)
    for role in (Role.COMMISSIONER, Role.COUNCIL_STAFF, Role.REGULATOR):
        assert "role" in erase(world, {"subject_id": subject}, 403,
                               world.council(role))["detail"]
    erase(world, {"subject_id": subject}, 403, world.auth["hillside"])
    assert world.outcomes.post("/data-subjects/erasure", json={**ERASE, "subject_id": subject}
                               ).status_code == 401
    for body, where in (({"subject_id": subject, "legal_basis": "bored"}, "legal_basis"),
                        ({"subject_id": subject, "reason": " "}, "reason"),
                        ({"subject_id": subject, "requested_on": "2999-01-01"}, "requested_on"),
                        ({"service_user": {"reference": "HS-0017"}},
                         "service_user.provider_id"),
                        ({"service_user": {"reference": "1", "reference_type": "nhs_number"}},
                         "service_user.reference")):
        refused = erase(world, body, 422)
        assert refused["errors"][0]["field"] == f"body.{where}", body
    assert erase(world, {}, 422)["errors"][0]["field"].split(".") == ["body"]
    read = world.outcomes.get(f"/deliveries/{created['delivery_id']}",
                              headers=world.council(Role.COMMISSIONER)).json()
    assert users_of(read) == [("readable", "Carol Penhale")]  # nothing was erased


def test_what_the_council_holds_about_a_subject(world: World) -> None:
    created = post(world, report(world.agreements["valley"], service_users=[BOB]),
                   provider="valley").json()
    search = {"reference": "HS-0017", "provider_id": str(world.providers["valley"])}
    found = eventually(lambda: world.outcomes.post("/data-subjects/search", json=search,
                                                   headers=world.admin).json(),
                       lambda body: created["delivery_id"] in [
                           r["delivery_id"] for r in body.get("records", [])], world.deadline)
    assert found["subject_id"] == created["service_users"][0]["subject_id"]
    assert found["state"] == "known"
    assert found["erasure"] is None
    (record,) = [r for r in found["records"] if r["delivery_id"] == created["delivery_id"]]
    assert (record["service_user"]["state"], record["service_user"]["name"]) == (
        "readable", "Bob Ashdown")
    assert world.outcomes.post("/data-subjects/search", json=search,
                               headers=world.council(Role.COMMISSIONER)).status_code == 403
    assert world.outcomes.post("/data-subjects/search", json={**search, "reference": "nobody"},
                               headers=world.admin).status_code == 404
    assert world.outcomes.get(f"/data-subjects/{uuid4()}",
                              headers=world.admin).status_code == 404


def test_the_read_model_rebuilds_to_the_same_answer(world: World) -> None:
    created = post(world, report(world.agreements["active"], service_users=[ALICE, BOB])).json()
    commissioner = world.council(Role.COMMISSIONER)
    listed(world, created["delivery_id"], commissioner)
    runtime = runtime_of(world.outcomes)
    eventually(runtime.relay.pending, lambda pending: pending == 0, world.deadline)
    runner = runtime.runner("outcomes.data_subjects")
    runner.catch_up()

    def answer() -> Any:
        return (world.outcomes.get("/deliveries", params={"limit": 1000},
                                   headers=commissioner).json(),
                list_erasures(runtime.views))

    live = answer()
    assert runner.rebuild() > 0
    assert answer() == live
    assert delivery_id_for(world.providers["hillside"], created["idempotency_key"]) == UUID(
        created["delivery_id"])
