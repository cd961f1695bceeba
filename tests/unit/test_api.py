"""The three services in process: auth, validation, limits, correlation ids, and read models that
follow the shared log. All services of one test share its var dir, so they share the embedded log
and the identity database, as they do in the embedded deployment."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from council.platform.identity import Role, TokenStore
from council.platform.runtime import MAX_BODY_BYTES, Runtime, ServiceSpec, create_service_app
from council.platform.settings import Settings
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.service import SPEC as OUTCOMES
from council.services.provider_registry.service import SPEC as REGISTRY
from tests.problems import assert_errors, loc_of
from tests.waiting import eventually

Auth = dict[str, str]


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


def _client(spec: ServiceSpec, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(spec, settings)) as client:
        yield client


@pytest.fixture
def registry(settings: Settings) -> Iterator[TestClient]:
    yield from _client(REGISTRY, settings)


@pytest.fixture
def integrator(settings: Settings) -> Iterator[TestClient]:
    yield from _client(INTEGRATOR, settings)


@pytest.fixture
def outcomes(settings: Settings) -> Iterator[TestClient]:
    yield from _client(OUTCOMES, settings)


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def stored_events(client: TestClient) -> list[Any]:
    app = runtime_of(client).app
    return [app.to_envelope(n) for n in app.recorder.select_notifications(start=1, limit=1000)]




def register(client: TestClient, headers: Auth, name: str, kind: str = "vcse",
             **extra: str) -> Any:
    """Register a valid applicant of `kind` (an SME with its size); `extra` are headers."""
    body: dict[str, Any] = {"name": name, "organisation_type": kind}
    if kind == "sme":
        body["sme_size"] = {"headcount": 12, "turnover_gbp": 900_000}
    response = client.post("/providers", json=body, headers={**headers, **extra})
    assert response.status_code in (200, 201), response.text
    return response


def error_locations(response: Any) -> list[list[Any]]:
    return [loc_of(e) for e in response.json()["errors"]]


# --------------------------------------------------------------------------- operations


@pytest.mark.parametrize("spec", [REGISTRY, INTEGRATOR, OUTCOMES], ids=lambda s: s.name)
def test_health_and_readiness_need_no_token(spec: ServiceSpec, settings: Settings) -> None:
    with TestClient(create_service_app(spec, settings)) as client:
        health = client.get("/health")
        ready = client.get("/ready")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": spec.name}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["service"] == spec.name
    assert body["checks"] == {"store": "ok", "log": "ok", "parked": "ok", "log_findings": "ok",
                              "workers": "ok"}
    assert body["parked"] == {}
    assert body["log_findings"] == []
    assert body["relay_pending"] == 0


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def test_metrics_count_requests_by_route_and_say_what_is_left_to_publish_and_apply(
    registry: TestClient, admin: Auth
) -> None:
    provider_id = register(registry, admin, "Brookfield Tool Library").json()["provider_id"]
    registry.get(f"/providers/{provider_id}", headers=admin)
    registry.get(f"/providers/{uuid4()}", headers=admin)
    registry.get("/providers/not-a-uuid", headers=admin)
    registry.get("/no/such/page")

    response = registry.get("/metrics")  # open, like /health: for the internal network

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    route = "/providers/{provider_id}"
    assert _sample(text, "council_http_requests_total", service="provider_registry",
                   method="POST", route="/providers", status="201") == 1
    assert _sample(text, "council_http_requests_total", method="GET", route=route,
                   status="200") == 1
    assert _sample(text, "council_http_requests_total", route=route, status="404") == 1
    assert _sample(text, "council_http_requests_total", route=route, status="422") == 1
    assert _sample(text, "council_http_requests_total", route="unmatched", status="404") == 1
    assert provider_id not in text  # series per route, never per id
    assert _sample(text, "council_http_request_duration_seconds_count", method="GET",
                   route=route) == 3
    assert _sample(text, "council_event_store_events", service="provider_registry") == 1
    runtime = runtime_of(registry)
    eventually(runtime.relay.pending, lambda pending: pending == 0)
    text = registry.get("/metrics").text
    assert _sample(text, "council_relay_pending_events", service="provider_registry") == 0
    assert _sample(text, "council_projection_behind_records",
                   projection="provider_registry.directory") is not None
    assert _sample(text, "council_worker_up", group="relay") == 1


def test_the_three_services_share_one_log_and_one_identity_database(
    registry: TestClient, integrator: TestClient, outcomes: TestClient, settings: Settings
) -> None:
    urls = {runtime_of(c).event_log.url for c in (registry, integrator, outcomes)}
    assert urls == {f"embedded://{settings.var_dir / 'shared-log.sqlite'}"}
    assert (settings.var_dir / "identity.sqlite").exists()


# --------------------------------------------------------------------------- authentication


def test_registering_without_a_token_is_unauthorised(registry: TestClient) -> None:
    response = registry.post("/providers", json={"name": "A", "organisation_type": "sme"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "missing bearer token" in response.json()["detail"]
    assert stored_events(registry) == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer cit_000000000000_notarealsecret", "Bearer nonsense", "Basic dXNlcjpwYXNz"],
)
def test_registering_with_a_bad_token_is_unauthorised(
    registry: TestClient, authorization: str
) -> None:
    response = registry.post(
        "/providers", json={"name": "A", "organisation_type": "sme"},
        headers={"Authorization": authorization},
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert stored_events(registry) == []


def test_a_revoked_token_is_unauthorised(registry: TestClient, tokens: TokenStore) -> None:
    issued = tokens.create(Role.COMMISSIONER, "jo")
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert registry.get(f"/providers/{uuid4()}", headers=headers).status_code == 404

    tokens.revoke(issued.principal.token_id)
    response = registry.get(f"/providers/{uuid4()}", headers=headers)

    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked token"


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.REGULATOR, Role.PROVIDER],
                         ids=lambda r: r.value)
def test_roles_that_may_not_write_are_forbidden(
    registry: TestClient, auth: Callable[..., Auth], role: Role
) -> None:
    response = registry.post(
        "/providers", json={"name": "A", "organisation_type": "sme"}, headers=auth(role)
    )

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert f"role {role.value} may not do this" in detail
    assert "commissioner, integrator_admin" in detail
    assert stored_events(registry) == []


def test_a_provider_token_reads_its_own_record_and_no_other(
    registry: TestClient, auth: Callable[..., Auth], admin: Auth
) -> None:
    own = register(registry, admin, "Hillside Kitchen").json()
    other = register(registry, admin, "Valley Care").json()
    headers = auth(Role.PROVIDER, provider_id=UUID(own["provider_id"]))

    assert registry.get(f"/providers/{own['provider_id']}", headers=headers).status_code == 200
    # Another provider's record does not exist as far as this token can tell.
    assert registry.get(f"/providers/{other['provider_id']}", headers=headers).status_code == 404


@pytest.mark.parametrize("role", [Role.INTEGRATOR_ADMIN, Role.COMMISSIONER],
                         ids=lambda r: r.value)
def test_council_writers_register_providers(
    registry: TestClient, auth: Callable[..., Auth], role: Role
) -> None:
    response = registry.post(
        "/providers", json={"name": "  Hillside Kitchen  ", "organisation_type": "vcse"},
        headers=auth(role),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    provider_id = UUID(body["provider_id"])
    assert response.headers["Location"] == f"/providers/{provider_id}"
    assert body["name"] == "Hillside Kitchen"  # surrounding whitespace stripped
    assert body["organisation_type"] == "vcse"
    assert body["version"] == 1
    (event,) = stored_events(registry)
    assert event.type == "ProviderRegistered"
    assert event.stream_id == str(provider_id)
    assert event.actor == f"{role.value}:{role.value}-user"


# --------------------------------------------------------------------------- reading back


def test_a_registered_provider_reads_back(
    registry: TestClient, admin: Auth, auth: Callable[..., Auth]
) -> None:
    created = register(registry, admin, "Northside Trust", "public_body").json()

    for reader in (Role.COUNCIL_STAFF, Role.COMMISSIONER):
        response = registry.get(f"/providers/{created['provider_id']}", headers=auth(reader))
        assert response.status_code == 200
        assert response.json() == created
    # Regulators read through the audit API alone (each read scoped and recorded).
    regulator = registry.get(f"/providers/{created['provider_id']}",
                             headers=auth(Role.REGULATOR))
    assert regulator.status_code == 403


def test_an_unknown_provider_is_not_found(registry: TestClient, admin: Auth) -> None:
    missing = uuid4()
    response = registry.get(f"/providers/{missing}", headers=admin)

    assert response.status_code == 404
    assert response.json()["detail"] == f"no provider {missing}"


def test_a_provider_id_that_is_not_a_uuid_is_unprocessable(
    registry: TestClient, admin: Auth
) -> None:
    response = registry.get("/providers/not-a-uuid", headers=admin)

    assert response.status_code == 422
    assert error_locations(response) == [["path", "provider_id"]]


# --------------------------------------------------------------------------- idempotency


def test_a_retried_registration_returns_the_same_provider(
    registry: TestClient, admin: Auth
) -> None:
    first = register(registry, admin, "Hillside Kitchen", **{"Idempotency-Key": "req-7"})
    again = register(registry, admin, "Hillside Kitchen", **{"Idempotency-Key": "req-7"})
    other = register(registry, admin, "Hillside Kitchen", **{"Idempotency-Key": "req-8"})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert other.status_code == 201
    assert other.json()["provider_id"] != first.json()["provider_id"]
    streams = [e.stream_id for e in stored_events(registry)]
    assert streams == [first.json()["provider_id"], other.json()["provider_id"]]


def test_an_empty_idempotency_key_is_unprocessable(registry: TestClient, admin: Auth) -> None:
    response = registry.post(
        "/providers", json={"name": "A", "organisation_type": "sme"},
        headers={**admin, "Idempotency-Key": ""},
    )

    assert response.status_code == 422
    assert error_locations(response) == [["header", "Idempotency-Key"]]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"organisation_type": "sme"}, ["body", "name"], "missing"),
        ({"name": "", "organisation_type": "sme"}, ["body", "name"], "string_too_short"),
        ({"name": "   ", "organisation_type": "sme"}, ["body", "name"], "string_too_short"),
        ({"name": "x" * 201, "organisation_type": "sme"}, ["body", "name"], "string_too_long"),
        ({"name": "A"}, ["body", "organisation_type"], "missing"),
        ({"name": "A", "organisation_type": "charity"}, ["body", "organisation_type"], "enum"),
        ({"name": "A", "organisation_type": "SME"}, ["body", "organisation_type"], "enum"),
        ({"name": "A", "organisation_type": "sme", "colour": "red"}, ["body", "colour"],
         "extra_forbidden"),
        ({"name": 123, "organisation_type": "sme"}, ["body", "name"], "string_type"),
        ({"name": ["A"], "organisation_type": "sme"}, ["body", "name"], "string_type"),
        ({"name": "A", "organisation_type": None}, ["body", "organisation_type"], "enum"),
    ],
    ids=["missing-name", "empty-name", "blank-name", "long-name", "missing-type",
         "unknown-type", "upper-case-type", "extra-field", "number-name", "list-name",
         "null-type"],
)
def test_bad_registrations_name_the_field(
    registry: TestClient, admin: Auth, body: dict[str, Any], loc: list[str], error_type: str
) -> None:
    response = registry.post("/providers", json=body, headers=admin)

    assert response.status_code == 422
    assert_errors(response, [(loc, error_type)])
    assert stored_events(registry) == []


def test_a_body_that_is_not_an_object_is_unprocessable(registry: TestClient, admin: Auth) -> None:
    response = registry.post("/providers", json=["Hillside Kitchen", "vcse"], headers=admin)

    assert response.status_code == 422
    assert error_locations(response) == [["body"]]
    assert stored_events(registry) == []


def test_malformed_json_is_unprocessable(registry: TestClient, admin: Auth) -> None:
    response = registry.post(
        "/providers", content=b'{"name": "A", "organisation_type": ',
        headers={**admin, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert "json" in error["message"].lower()
    assert loc_of(error)[0] == "body"
    assert stored_events(registry) == []


def test_an_oversized_body_is_refused_before_anything_else(
    registry: TestClient, admin: Auth
) -> None:
    padding = " " * MAX_BODY_BYTES
    body = json.dumps({"name": "A", "organisation_type": "sme"}).encode() + padding.encode()
    response = registry.post(
        "/providers", content=body,
        headers={**admin, "Content-Type": "application/json", "X-Correlation-ID": "big-1"},
    )

    assert response.status_code == 413
    assert str(len(body)) in response.json()["detail"]
    assert response.headers["x-correlation-id"] == "big-1"
    assert stored_events(registry) == []
    # Refused on size alone: not even a token is needed to learn that.
    assert registry.post("/providers", content=body,
                         headers={"Content-Type": "application/json"}).status_code == 413


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent without Content-Length (Transfer-Encoding: chunked)."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_an_oversized_chunked_body_is_refused(registry: TestClient, admin: Auth) -> None:
    body = json.dumps({"name": "A", "organisation_type": "sme"}).encode() + b" " * (
        3 * MAX_BODY_BYTES
    )
    response = registry.post(
        "/providers", content=chunked(body),
        headers={**admin, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert f"more than {MAX_BODY_BYTES} bytes" in response.json()["detail"]
    assert stored_events(registry) == []


def test_a_small_chunked_body_is_passed_on_whole(registry: TestClient, admin: Auth) -> None:
    body = json.dumps({"name": "Chunked Care", "organisation_type": "community_group"}).encode()
    response = registry.post(
        "/providers", content=chunked(body, size=7),
        headers={**admin, "Content-Type": "application/json"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Chunked Care"
    assert response.json()["organisation_type"] == "community_group"


def test_a_body_of_exactly_the_limit_is_accepted(registry: TestClient, admin: Auth) -> None:
    start = json.dumps({"name": "A", "organisation_type": "vcse"}).encode()
    body = start + b" " * (MAX_BODY_BYTES - len(start))
    assert len(body) == MAX_BODY_BYTES

    response = registry.post(
        "/providers", content=body, headers={**admin, "Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text


# --------------------------------------------------------------------------- correlation ids


def test_a_correlation_id_is_echoed_and_recorded_on_the_event(
    registry: TestClient, admin: Auth
) -> None:
    response = register(registry, admin, "Hillside Kitchen", **{"X-Correlation-ID": "req-abc.1"})

    assert response.headers["x-correlation-id"] == "req-abc.1"
    (event,) = stored_events(registry)
    assert event.correlation_id == "req-abc.1"
    assert event.actor == "integrator_admin:sam"
    assert event.organisation == "council"
    assert event.stream_id == response.json()["provider_id"]


def test_a_missing_or_unsafe_correlation_id_is_replaced(
    registry: TestClient, admin: Auth
) -> None:
    plain = register(registry, admin, "Plain")
    unsafe = register(registry, admin, "Unsafe", **{"X-Correlation-ID": "bad id; drop"})
    too_long = register(registry, admin, "Long", **{"X-Correlation-ID": "a" * 101})

    given = [r.headers["x-correlation-id"] for r in (plain, unsafe, too_long)]
    assert all(len(g) == 32 and int(g, 16) >= 0 for g in given)  # fresh uuid4 hex ids
    assert len(set(given)) == 3
    by_stream = {e.stream_id: e.correlation_id for e in stored_events(registry)}
    for response, correlation_id in zip((plain, unsafe, too_long), given, strict=True):
        assert by_stream[response.json()["provider_id"]] == correlation_id


def test_even_errors_carry_the_correlation_id(registry: TestClient) -> None:
    response = registry.get(f"/providers/{uuid4()}", headers={"X-Correlation-ID": "trace-401"})

    assert response.status_code == 401
    assert response.headers["x-correlation-id"] == "trace-401"


# --------------------------------------------------------------------------- integrator


def test_the_network_follows_the_registry_through_the_shared_log(
    registry: TestClient, integrator: TestClient, admin: Auth, auth: Callable[..., Auth]
) -> None:
    staff = auth(Role.COUNCIL_STAFF)
    hillside = register(registry, admin, "Hillside Kitchen", "vcse").json()
    northside = register(registry, admin, "Northside Trust", "public_body").json()
    riverside = register(registry, admin, "Riverside Meals", "vcse").json()

    listed = eventually(
        lambda: integrator.get("/network/providers", headers=staff).json(),
        lambda providers: len(providers) >= 3,
    )

    assert [(p["provider_id"], p["name"], p["organisation_type"], p["status"])
            for p in listed] == [
        (hillside["provider_id"], "Hillside Kitchen", "vcse", "applied"),
        (northside["provider_id"], "Northside Trust", "public_body", "applied"),
        (riverside["provider_id"], "Riverside Meals", "vcse", "applied"),
    ]
    assert listed[0]["registered_at"] == listed[0]["updated_at"]
    summary = integrator.get("/network/summary", headers=staff)
    assert summary.status_code == 200
    assert summary.json()["providers_by_organisation_type"] == {"vcse": 2, "public_body": 1}


def test_a_retried_registration_counts_once_in_the_network(
    registry: TestClient, integrator: TestClient, admin: Auth
) -> None:
    for _ in range(3):
        register(registry, admin, "Hillside Kitchen", "sme", **{"Idempotency-Key": "once"})
    # The log keeps a source's order: once this later provider shows, the retries are applied.
    marker = register(registry, admin, "Zeta Community Group", "community_group").json()

    eventually(
        lambda: integrator.get("/network/providers", headers=admin).json(),
        lambda providers: marker["provider_id"] in {p["provider_id"] for p in providers},
    )

    names = [p["name"] for p in integrator.get("/network/providers", headers=admin).json()]
    assert names == ["Hillside Kitchen", "Zeta Community Group"]
    summary = integrator.get("/network/summary", headers=admin).json()
    assert summary["providers_by_organisation_type"] == {"sme": 1, "community_group": 1}


def test_the_network_pages(registry: TestClient, integrator: TestClient, admin: Auth) -> None:
    for name in ("A", "B", "C"):
        register(registry, admin, name)
    eventually(
        lambda: integrator.get("/network/providers", headers=admin).json(),
        lambda providers: len(providers) == 3,
    )

    page = integrator.get("/network/providers", params={"limit": 2, "offset": 1}, headers=admin)

    assert [p["name"] for p in page.json()] == ["B", "C"]
    bad = integrator.get("/network/providers", params={"limit": 0}, headers=admin)
    assert bad.status_code == 422
    assert error_locations(bad) == [["query", "limit"]]


def test_the_regulator_reads_the_network_through_the_audit_api_and_cannot_write(
    registry: TestClient, integrator: TestClient, admin: Auth, auth: Callable[..., Auth]
) -> None:
    regulator = auth(Role.REGULATOR, "ofsted")
    register(registry, admin, "Hillside Kitchen")

    trail = eventually(
        lambda: integrator.get("/audit/events", headers=regulator),
        lambda response: response.status_code == 200 and "Hillside Kitchen" in response.text,
    )
    assert json.loads(trail.text.splitlines()[0])["type"] == "ProviderRegistered"
    assert integrator.get("/network/providers", headers=regulator).status_code == 403
    assert integrator.get("/network/summary", headers=regulator).status_code == 403
    write = registry.post(
        "/providers", json={"name": "B", "organisation_type": "sme"}, headers=regulator
    )
    assert write.status_code == 403
    assert len(stored_events(registry)) == 1


@pytest.mark.parametrize("path", ["/network/providers", "/network/summary"])
def test_the_network_needs_a_council_reader(
    integrator: TestClient, auth: Callable[..., Auth], path: str
) -> None:
    assert integrator.get(path).status_code == 401
    assert integrator.get(path, headers=auth(Role.PROVIDER)).status_code == 403


def test_an_empty_network(integrator: TestClient, admin: Auth) -> None:
    assert integrator.get("/network/providers", headers=admin).json() == []
    summary = integrator.get("/network/summary", headers=admin).json()
    assert summary["providers_by_organisation_type"] == {}


# --------------------------------------------------------------------------- outcomes


def test_measures_are_defined_and_listed_from_the_log(
    outcomes: TestClient, auth: Callable[..., Auth]
) -> None:
    commissioner = auth(Role.COMMISSIONER, "jo")
    response = outcomes.post(
        "/measures",
        json={"name": "Teenage obesity rate", "unit": "% of 13-17 year olds",
              "direction": "lower_is_better"},
        headers={**commissioner, "X-Correlation-ID": "measure-1"},
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "Teenage obesity rate"
    assert created["unit"] == "% of 13-17 year olds"
    assert created["direction"] == "lower_is_better"
    (event,) = stored_events(outcomes)
    assert event.type == "OutcomeMeasureDefined"
    assert event.stream_id == created["measure_id"]
    assert (event.actor, event.correlation_id) == ("commissioner:jo", "measure-1")

    listed = eventually(
        lambda: outcomes.get("/measures", headers=auth(Role.COUNCIL_STAFF)).json(),
        lambda measures: len(measures) >= 1,
    )
    assert listed == [created]


def test_a_retried_measure_is_defined_once(outcomes: TestClient, admin: Auth) -> None:
    body = {"name": "Adults in work", "unit": "people", "direction": "higher_is_better"}
    first = outcomes.post("/measures", json=body, headers={**admin, "Idempotency-Key": "m-1"})
    again = outcomes.post("/measures", json=body, headers={**admin, "Idempotency-Key": "m-1"})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(stored_events(outcomes)) == 1


@pytest.mark.parametrize(
    ("body", "loc", "error_type"),
    [
        ({"name": "Rate", "unit": "%", "direction": "up"}, ["body", "direction"], "enum"),
        ({"name": "Rate", "unit": "%"}, ["body", "direction"], "missing"),
        ({"name": "Rate", "unit": "", "direction": "higher_is_better"}, ["body", "unit"],
         "string_too_short"),
        ({"name": "Rate", "unit": "%", "direction": "higher_is_better", "target": 3},
         ["body", "target"], "extra_forbidden"),
    ],
    ids=["unknown-direction", "missing-direction", "empty-unit", "extra-field"],
)
def test_bad_measures_name_the_field(
    outcomes: TestClient, admin: Auth, body: dict[str, Any], loc: list[str], error_type: str
) -> None:
    response = outcomes.post("/measures", json=body, headers=admin)

    assert response.status_code == 422
    assert_errors(response, [(loc, error_type)])
    assert stored_events(outcomes) == []


@pytest.mark.parametrize("role", [Role.COUNCIL_STAFF, Role.REGULATOR, Role.PROVIDER],
                         ids=lambda r: r.value)
def test_only_council_writers_define_measures(
    outcomes: TestClient, auth: Callable[..., Auth], role: Role
) -> None:
    response = outcomes.post(
        "/measures", json={"name": "Rate", "unit": "%", "direction": "higher_is_better"},
        headers=auth(role),
    )

    assert response.status_code == 403
    assert stored_events(outcomes) == []
    assert outcomes.post("/measures", json={}).status_code == 401  # auth before validation


def test_an_idempotency_key_reused_for_a_different_provider_is_refused(
    registry: TestClient, admin: Auth
) -> None:
    headers = {**admin, "Idempotency-Key": "reuse-1"}
    first = registry.post(
        "/providers", json={"name": "Hillside Kitchen", "organisation_type": "vcse"},
        headers=headers,
    )
    assert first.status_code == 201
    other = registry.post(
        "/providers", json={"name": "Another Name", "organisation_type": "vcse"}, headers=headers
    )
    assert other.status_code == 409
    assert "reuse-1" in other.json()["detail"]
    assert len(stored_events(registry)) == 1
