"""What a regulator's token may do, checked route by route from the three services' own OpenAPI
documents (so a route added later is checked too): every write is refused with 403 and records
nothing; every read outside the audit API is refused (a regulator reads through the audit API
alone, where each read is scoped and recorded); a scoped token is refused even reference data;
and nothing a regulator can read holds a provider's credentials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from council.platform.eventlog import open_event_log
from council.platform.identity import Role, Scope, TokenStore
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import SERVICE_NAMES, Settings
from council.platform.sql import open_database
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.outcomes.service import SPEC as OUTCOMES
from council.services.provider_registry.service import SPEC as REGISTRY

Auth = dict[str, str]
AUDIT_READS = frozenset({"/audit/events", "/audit/state", "/audit/reads"})
OPEN = frozenset({"/health", "/ready", "/metrics"})  # no token needed
PUBLIC = ("/oruk", "/ocds", "/transparency")  # open data: no token needed, read by anyone
REFERENCE = frozenset({"/activity-types"})  # reference data any unscoped token may read
SAMPLE_BODIES = {
    "application/json": b"{}",
    "text/csv": b"name,organisation_type\nLeeds Lunch Club,vcse\n",
    "application/x-ndjson": b'{"idempotency_key": "k", "quantity": 1}\n',
}


@dataclass
class Services:
    clients: dict[str, TestClient]
    tokens: TokenStore
    settings: Settings
    provider_id: str
    credentials: str  # the provider's token, issued on approval

    def bearer(self, role: Role, *scope: str) -> Auth:
        issued = self.tokens.create(role, f"{role.value} person", scope=Scope.parse(scope))
        return {"Authorization": f"Bearer {issued.token}"}

    def recorded(self) -> dict[str, int]:
        """How many events each service has stored, and the log holds."""
        counts = {}
        for name, client in self.clients.items():
            runtime = client.app.state.runtime  # type: ignore[attr-defined]
            assert isinstance(runtime, Runtime)
            counts[name] = runtime.app.recorder.max_notification_id() or 0
        log = open_event_log(self.settings)
        try:
            counts["log"] = sum(len(b) for b in log.read_all(
                [log.topic_for(s) for s in SERVICE_NAMES]))
        finally:
            log.close()
        return counts

    def settled(self) -> dict[str, int]:
        """The counts once the relays have published everything stored."""
        deadline = time.monotonic() + 20
        while (counts := self.recorded())["log"] != sum(
                v for k, v in counts.items() if k != "log"):
            assert time.monotonic() < deadline, f"the relays did not publish: {counts}"
            time.sleep(0.02)
        return counts


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    settings = Settings(var_dir=Path(tmp_path_factory.mktemp("access")), relay_interval=0.01)
    tokens = TokenStore(open_database(settings, "identity"))
    admin = {"Authorization": f"Bearer {tokens.create(Role.INTEGRATOR_ADMIN, 'sam').token}"}
    with TestClient(create_service_app(REGISTRY, settings)) as registry, \
            TestClient(create_service_app(INTEGRATOR, settings)) as integrator, \
            TestClient(create_service_app(OUTCOMES, settings)) as outcomes:
        created = registry.post("/providers", headers=admin,
                                json={"name": "Hillside Kitchen", "organisation_type": "vcse"})
        provider_id = created.json()["provider_id"]
        for step in ("review", "approve"):
            done = registry.post(f"/providers/{provider_id}/{step}", headers=admin,
                                 json={"reason": "checks passed"})
            assert done.status_code == 200, done.text
        credentials = done.json()["credentials"]["token"]
        clients = {"provider_registry": registry, "integrator": integrator, "outcomes": outcomes}
        yield Services(clients, tokens, settings, provider_id, credentials)
    tokens.db.close()


def routes(spec_name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every route in a service's OpenAPI document."""
    spec = {"integrator": INTEGRATOR, "provider_registry": REGISTRY, "outcomes": OUTCOMES}
    document = create_service_app(spec[spec_name], Settings()).openapi()
    return [(method.upper(), path, operation)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()]


ALL_ROUTES = [(name, *route) for name in SERVICE_NAMES for route in routes(name)]
WRITES = [r for r in ALL_ROUTES if r[1] != "GET"]
READS = [r for r in ALL_ROUTES if r[1] == "GET"]


def call(services: Services, service: str, method: str, path: str, operation: dict[str, Any],
         headers: Auth) -> Any:
    """The route called with every path parameter filled (the provider's real id where one is
    asked for) and a body of the kind it declares."""
    url = path.replace("{provider_id}", services.provider_id)
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        url = url[:start] + str(uuid4()) + url[end + 1:]
    content = (operation.get("requestBody") or {}).get("content") or {}
    media = next(iter(content), "application/json")
    body = SAMPLE_BODIES.get(media, b"{}")
    return services.clients[service].request(
        method, url, content=body,
        headers={**headers, "Content-Type": media, "Idempotency-Key": "regulator-try"})


def test_the_services_have_routes_to_check() -> None:
    assert len(WRITES) >= 40  # every POST, PUT, PATCH and DELETE of the three services
    assert {m for _, m, _, _ in WRITES} >= {"POST", "PUT", "PATCH", "DELETE"}
    assert {(s, p) for s, _, p, _ in READS} >= {("integrator", p) for p in AUDIT_READS}


@pytest.mark.parametrize("scoped", [False, True], ids=["unscoped", "scoped"])
def test_every_write_refuses_a_regulator_and_records_nothing(
    services: Services, scoped: bool
) -> None:
    scope = (f"provider={services.provider_id}", "from=2024-04-01") if scoped else ()
    regulator = services.bearer(Role.REGULATOR, *scope)
    before = services.settled()

    answers = {(service, method, path): call(services, service, method, path, op, regulator)
               for service, method, path, op in WRITES}

    refused = {route: r.status_code for route, r in answers.items()}
    assert refused == dict.fromkeys(answers, 403)
    for response in answers.values():
        assert "regulator" in response.json()["detail"]
    assert services.settled() == before


def test_a_regulator_reads_only_the_audit_api(services: Services) -> None:
    regulator = services.bearer(Role.REGULATOR)
    scoped = services.bearer(Role.REGULATOR, f"provider={services.provider_id}")
    for service, method, path, op in READS:
        unscoped_answer = call(services, service, method, path, op, regulator).status_code
        scoped_answer = call(services, service, method, path, op, scoped).status_code
        if path in OPEN or (service == "integrator" and path in AUDIT_READS):
            assert (unscoped_answer, scoped_answer) == (200, 200), path
        elif path.startswith(PUBLIC):  # found or not (the ids are made up), never refused
            assert {unscoped_answer, scoped_answer} <= {200, 404}, path
        elif path in REFERENCE:
            assert (unscoped_answer, scoped_answer) == (200, 403), path
        else:
            assert (unscoped_answer, scoped_answer) == (403, 403), (service, path)


def test_nothing_a_regulator_reads_holds_a_providers_credentials(services: Services) -> None:
    regulator = services.bearer(Role.REGULATOR)
    secret = services.credentials.split("_", 2)[2]  # cit_<token id>_<secret, which may hold _>
    integrator = services.clients["integrator"]
    deadline = time.monotonic() + 20
    while services.provider_id not in integrator.get("/audit/events", headers=regulator).text:
        assert time.monotonic() < deadline, "the registry's events did not reach the log"
        time.sleep(0.05)
    for service, method, path, op in READS:
        response = call(services, service, method, path, op, regulator)
        assert secret not in response.text, path
        assert services.credentials not in response.text, path
    trail = integrator.get("/audit/events", headers=regulator).text
    assert '"type":"ProviderApproved"' in trail  # the approval is there; its credentials not
