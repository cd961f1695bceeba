"""What every service accepts at its edge, and how it answers what it refuses: no control
characters in text, bounded numbers in query parameters, one error body (RFC 9457 problem
details) declared on every operation."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import psycopg
import psycopg_pool
import pytest
from eventsourcing import persistence
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from council.platform import problems
from council.platform.identity import Role, TokenStore
from council.platform.problems import PROBLEM_JSON, PROBLEM_STATUSES
from council.platform.runtime import ServiceSpec, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.service import SPEC as OUTCOMES
from council.services.provider_registry.service import SPEC as REGISTRY

SPECS = {"integrator": INTEGRATOR, "provider_registry": REGISTRY, "outcomes": OUTCOMES}
HUGE = "9223372036854775808"  # one past the largest 64-bit integer


@pytest.fixture(scope="module")
def service_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(var_dir=tmp_path_factory.mktemp("edges"), relay_interval=0.01)


@pytest.fixture(scope="module")
def admin(service_settings: Settings) -> Iterator[dict[str, str]]:
    tokens = TokenStore(open_database(service_settings, "identity"))
    try:
        yield {"Authorization": f"Bearer {tokens.create(Role.INTEGRATOR_ADMIN, 'sam').token}"}
    finally:
        tokens.db.close()


@pytest.fixture(scope="module")
def clients(service_settings: Settings) -> Iterator[dict[str, TestClient]]:
    opened: dict[str, TestClient] = {}
    try:
        for name, spec in SPECS.items():
            opened[name] = TestClient(create_service_app(spec, service_settings),
                                      raise_server_exceptions=False)
            opened[name].__enter__()
        yield opened
    finally:
        for client in opened.values():
            client.__exit__(None, None, None)


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    """The response is problem details with this status, naming each of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    for word in words:
        assert word in response.text, (word, response.text)
    return body


@pytest.mark.parametrize(("service", "path"), [
    ("integrator", "/lessons?q=%00"),
    ("integrator", "/lessons?tag=%00"),
    ("integrator", "/lessons?q=a%1Bb"),
    ("integrator", "/needs?service_area=%00"),
    ("integrator", "/network/providers?category=a%00"),
    ("integrator", "/audit/events?organisation=%00"),
    ("integrator", "/audit/reads?token_id=%00"),
    ("provider_registry", "/providers?q=a%00b"),
    ("provider_registry", "/providers?area=%00"),
    ("provider_registry", "/providers?category=%7F"),
])
def test_control_characters_in_a_query_are_refused_naming_the_parameter(
    clients: dict[str, TestClient], admin: dict[str, str], service: str, path: str,
) -> None:
    response = clients[service].get(path, headers=admin)
    name = path.split("?")[1].split("=")[0]
    body = assert_problem(response, 422, name, "control character")
    assert [e["field"] for e in body["errors"]] == [f"query.{name}"]


@pytest.mark.parametrize(("service", "path"), [
    ("outcomes", "/deliveries"),
    ("outcomes", "/performance/agreements"),
    ("integrator", "/needs"),
    ("integrator", "/agreements"),
    ("integrator", "/network/providers"),
    ("integrator", "/lessons"),
    ("integrator", "/audit/reads"),
    ("provider_registry", "/providers"),
])
@pytest.mark.parametrize("name", ["offset", "limit"])
def test_a_huge_number_in_a_query_is_refused_naming_the_parameter(
    clients: dict[str, TestClient], admin: dict[str, str], service: str, path: str, name: str,
) -> None:
    response = clients[service].get(f"{path}?{name}={HUGE}", headers=admin)
    body = assert_problem(response, 422, name)
    assert [e["field"] for e in body["errors"]] == [f"query.{name}"]


@pytest.mark.parametrize("name", ["Hill\x00side", "Hill\x1bside", "Hill\u0085side",
                                  "Hill\nside"])
def test_a_provider_named_with_a_control_character_is_refused(
    clients: dict[str, TestClient], admin: dict[str, str], name: str,
) -> None:
    response = clients["provider_registry"].post(
        "/providers", json={"name": name, "organisation_type": "vcse"}, headers=admin)
    body = assert_problem(response, 422, "body.name")
    assert body["type"] == "urn:council:problem:invalid-input"


def test_multi_line_text_keeps_its_newlines_but_refuses_other_controls(
    clients: dict[str, TestClient], admin: dict[str, str],
) -> None:
    registry = clients["provider_registry"]
    kept = registry.post("/providers", json={
        "name": "Hillside", "organisation_type": "vcse",
        "description": "Sessions for teenagers.\n\tTwice a week."}, headers=admin)
    assert kept.status_code == 201, kept.text
    refused = registry.post("/providers", json={
        "name": "Hillside", "organisation_type": "vcse",
        "description": "Sessions\x00 for teenagers."}, headers=admin)
    assert_problem(refused, 422, "body.description")


def test_every_kind_of_error_is_problem_details(
    clients: dict[str, TestClient], admin: dict[str, str],
) -> None:
    registry = clients["provider_registry"]
    assert_problem(registry.get("/no-such-page"), 404)
    assert_problem(registry.delete("/providers"), 405)
    unauthorised = assert_problem(registry.post("/providers", json={}), 401, "bearer")
    assert unauthorised["type"] == "about:blank"
    missing = registry.get("/providers/00000000-0000-0000-0000-000000000000", headers=admin)
    assert assert_problem(missing, 404)["type"] == "urn:council:problem:not-found"
    invalid = assert_problem(registry.post("/providers", json={"name": "x"}, headers=admin), 422)
    assert {"field": "body.organisation_type", "message": "Field required",
            "type": "missing"} in invalid["errors"]
    assert invalid["instance"] == "/providers"
    assert invalid["correlation_id"]
    large = registry.post("/providers", content=b"x" * (2 * 1024 * 1024),
                          headers={**admin, "Content-Type": "application/json"})
    assert_problem(large, 413, "over the limit")
    wrong_type = registry.post("/providers/import", content=b"name", headers={
        **admin, "Content-Type": "text/plain"})
    assert_problem(wrong_type, 415, "text/csv")


def test_the_web_pages_keep_their_own_answers(clients: dict[str, TestClient]) -> None:
    response = clients["integrator"].get("/ui/network", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/sign-in")


@pytest.mark.parametrize("service", list(SPECS))
def test_every_operation_declares_the_problem_answers(service: str) -> None:
    spec: ServiceSpec = SPECS[service]
    schema = create_service_app(spec, Settings(var_dir=Path("/nonexistent"))).openapi()
    assert {"Problem", "FieldError"} <= set(schema["components"]["schemas"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in PROBLEM_STATUSES:
                declared = operation["responses"].get(str(status))
                assert declared is not None, (method, path, status)
                if (path, status) != ("/ready", 503):
                    assert declared["content"] == {PROBLEM_JSON: {"schema": {
                        "$ref": "#/components/schemas/Problem"}}}, (method, path, status)


# --------------------------------------------------------------------------- every command


def _models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models(arg)


def _carries_text(annotation: Any) -> bool:
    return annotation is str or any(_carries_text(a) for a in get_args(annotation))


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(a) for a in get_args(annotation))


def command_models() -> list[type[BaseModel]]:
    """Every body any route of the three services accepts, and the models inside them."""
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = []
    for spec in SPECS.values():
        for router in spec.routers:
            for context in iter_route_contexts(router.routes):
                route = context.route
                if isinstance(route, APIRoute) and route.body_field is not None:
                    todo.extend(_models(route.body_field.field_info.annotation))
    while todo:
        model = todo.pop()
        if model.__qualname__ in found:
            continue
        found[model.__qualname__] = model
        for info in model.model_fields.values():
            todo.extend(_models(info.annotation))
    return sorted(found.values(), key=lambda m: m.__qualname__)


TEXT_FIELDS = [(model, name) for model in command_models()
               for name, info in model.model_fields.items() if _carries_text(info.annotation)]
CONTROL = st.characters(categories=("Cc", "Cs"), exclude_characters="\n\r\t")
WORDS = st.text(alphabet="abcdefghij0123456789 -", min_size=1, max_size=12)


def test_the_commands_have_text_fields_to_check() -> None:
    names = {f"{model.__name__}.{name}" for model, name in TEXT_FIELDS}
    assert {"NewProvider.name", "DeliveryIn.location", "NewNeed.title", "ContactIn.email",
            "ServiceUserIn.notes", "ErasureIn.reason"} <= names


@pytest.mark.parametrize(("model", "name"), TEXT_FIELDS,
                         ids=[f"{m.__name__}.{n}" for m, n in TEXT_FIELDS])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=WORDS, control=CONTROL, after=WORDS)
def test_no_command_accepts_a_control_character(
    model: type[BaseModel], name: str, before: str, control: str, after: str,
) -> None:
    """Whatever else is wrong with it, a body whose text holds a control character is refused
    naming that field; none is ever validated into a command."""
    value = before + control + after
    given_value: Any = [value] if _is_list(model.model_fields[name].annotation) else value
    try:
        accepted = model.model_validate({name: given_value})
    except ValidationError as exc:
        refused = [error["loc"] for error in exc.errors()]
    else:
        kept = getattr(accepted, name)
        assert control not in (kept if isinstance(kept, str) else " ".join(kept or ())), kept
        return
    assert any(loc[:1] == (name,) for loc in refused), refused


# --------------------------------------------------------------------------- a lost database


@pytest.mark.parametrize("fault", [
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("connection failed: Connection refused"),
    persistence.OperationalError("server closed the connection unexpectedly"),
    psycopg_pool.PoolTimeout("couldn't get a connection after 5.00 sec"),
    sqlite3.OperationalError("database is locked"),
])
def test_a_lost_database_answers_503_with_retry_after(fault: Exception) -> None:
    api = FastAPI()
    problems.install(api)

    @api.get("/deliveries")
    def deliveries() -> None:
        raise fault

    response = TestClient(api, raise_server_exceptions=False).get("/deliveries")
    body = assert_problem(response, 503, "database is unavailable")
    assert body["type"] == "urn:council:problem:unavailable"
    assert int(response.headers["retry-after"]) > 0


def test_an_unforeseen_fault_answers_500_saying_nothing_of_it() -> None:
    api = create_service_app(REGISTRY, Settings(var_dir=Path("/nonexistent")))

    @api.get("/broken")
    def broken() -> None:
        raise RuntimeError("secret internals")

    response = TestClient(api, raise_server_exceptions=False).get("/broken")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert body["correlation_id"] == response.headers["x-correlation-id"]


@pytest.mark.parametrize(("service", "path", "model"), [
    ("outcomes", "/deliveries", "DeliveryView"),
    ("outcomes", "/measures", "MeasureSummary"),
    ("outcomes", "/data-subjects/erasure", "ErasureView"),
    ("provider_registry", "/providers", "ProviderView"),
])
def test_a_replay_answered_200_is_declared_with_its_body(service: str, path: str,
                                                         model: str) -> None:
    schema = create_service_app(SPECS[service], Settings(var_dir=Path("/nonexistent"))).openapi()
    responses = schema["paths"][path]["post"]["responses"]
    for status in ("200", "201"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"}, status


def _leaves(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            yield from _leaves(option.get("items", {}))
        else:
            yield option


@pytest.mark.parametrize("service", list(SPECS))
def test_every_number_and_text_parameter_is_bounded(service: str) -> None:
    """A huge offset once answered 500 (it overflowed the database's integers): every number a
    path, query or header parameter takes has a declared range, every text a maximum length
    (or a pattern or a list of values that bounds it)."""
    schema = create_service_app(SPECS[service], Settings(var_dir=Path("/nonexistent"))).openapi()
    unbounded = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for leaf in _leaves(parameter["schema"]):
                    kind = leaf.get("type")
                    bounded = (
                        {"minimum", "maximum"} <= set(leaf) if kind in ("integer", "number")
                        else "maxLength" in leaf or "pattern" in leaf or "enum" in leaf
                        # a uuid or a moment parses to a value of bounded size, or is refused
                        or leaf.get("format") in ("uuid", "date-time") if kind == "string"
                        else True)
                    if not bounded and "$ref" not in leaf:
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}: {leaf}")
    assert not unbounded, "\n".join(unbounded)
