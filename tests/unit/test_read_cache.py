"""Dashboard reads kept until the read models move (council.platform.readcache): the same answer
again for nothing, a 304 for a client that holds it, and never a kept answer once a read model has
applied something new. Lists come a page at a time, with links to the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from council.platform import parking
from council.platform.identity import Role, TokenStore
from council.platform.readcache import DEFAULT_PAGE, read_position
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.service import SPEC as INTEGRATOR
from council.services.provider_registry.service import SPEC as REGISTRY
from tests.waiting import eventually

Auth = dict[str, str]


@pytest.fixture
def auth(tokens: TokenStore) -> Callable[[Role], Auth]:
    def make(role: Role) -> Auth:
        issued = tokens.create(role, f"{role.value}-user",
                               uuid4() if role is Role.PROVIDER else None)
        return {"Authorization": f"Bearer {issued.token}"}

    return make


@pytest.fixture
def admin(auth: Callable[[Role], Auth]) -> Auth:
    return auth(Role.INTEGRATOR_ADMIN)


@pytest.fixture
def registry(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(REGISTRY, settings)) as client:
        yield client


@pytest.fixture
def integrator(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        yield client


def runtime_of(client: TestClient) -> Runtime:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert isinstance(runtime, Runtime)
    return runtime


def register(registry: TestClient, headers: Auth, name: str) -> str:
    response = registry.post("/providers", json={"name": name, "organisation_type": "vcse"},
                             headers=headers)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["provider_id"])


def caught_up(integrator: TestClient) -> None:
    """Wait until the network read model has applied everything on the log now."""
    runtime = runtime_of(integrator)
    runner = runtime.runner("integrator.network")

    def behind() -> int:
        ends = runtime.event_log.end_position(runner.topics) or {}
        at = runner.position()
        return sum(max(0, end - at.get(key, 0)) for key, end in ends.items())

    eventually(behind, lambda n: n == 0)


def relayed(registry: TestClient) -> None:
    """Wait until the registry has published everything it stored."""
    eventually(lambda: runtime_of(registry).relay.pending(), lambda n: n == 0)


def vcse(response: Any) -> int:
    return int(response.json()["providers_by_organisation_type"].get("vcse", 0))


def test_a_kept_answer_is_never_served_after_the_read_model_moved(
    registry: TestClient, integrator: TestClient, admin: Auth
) -> None:
    register(registry, admin, "Hillside Kitchen")
    relayed(registry)
    caught_up(integrator)
    first = integrator.get("/network/summary", headers=admin)
    etag = first.headers["etag"]
    assert vcse(first) == 1
    again = integrator.get("/network/summary", headers={**admin, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag

    register(registry, admin, "Riverside Meals")
    relayed(registry)
    caught_up(integrator)

    # One request each, no polling: the read model has moved, so neither the kept body nor a
    # 304 for the old ETag may be the answer.
    revalidated = integrator.get("/network/summary", headers={**admin, "If-None-Match": etag})
    assert revalidated.status_code == 200
    assert vcse(revalidated) == 2
    assert revalidated.headers["etag"] != etag
    assert vcse(integrator.get("/network/summary", headers=admin)) == 2
    listed = integrator.get("/network/providers", headers=admin).json()
    assert [p["name"] for p in listed] == ["Hillside Kitchen", "Riverside Meals"]


def test_an_unchanged_answer_is_the_same_bytes_and_etag(
    registry: TestClient, integrator: TestClient, admin: Auth, auth: Callable[[Role], Auth]
) -> None:
    register(registry, admin, "Hillside Kitchen")
    relayed(registry)
    caught_up(integrator)
    staff = auth(Role.COUNCIL_STAFF)

    first = integrator.get("/market", headers=staff)
    second = integrator.get("/market", headers=staff)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    assert "Authorization" in first.headers["vary"]
    # Another reader's answer has its own tag: what a reader may see depends on who it is.
    assert integrator.get("/market", headers=admin).headers["etag"] != first.headers["etag"]


def test_parking_moves_the_read_position(integrator: TestClient) -> None:
    views = runtime_of(integrator).views
    before = read_position(views)
    with views.transaction() as tx:
        parking.park(tx, "integrator.network", "an item", "a reason")
    parked = read_position(views)
    with views.transaction() as tx:  # retried after a fix: applied, no longer parked
        parking.unpark(tx, "integrator.network", "an item")

    assert parked != before
    assert read_position(views) != parked


def test_lists_come_a_page_at_a_time_with_links(
    registry: TestClient, integrator: TestClient, admin: Auth
) -> None:
    for name in ("A", "B", "C"):
        register(registry, admin, name)
    relayed(registry)
    caught_up(integrator)

    first = integrator.get("/network/providers", params={"limit": 2}, headers=admin)
    last = integrator.get("/network/providers", params={"limit": 2, "offset": 2},
                          headers=admin)
    whole = integrator.get("/network/providers", headers=admin)

    assert [p["name"] for p in first.json()] == ["A", "B"]
    assert 'offset=2>; rel="next"' in first.headers["link"]
    assert 'rel="prev"' not in first.headers["link"]
    assert [p["name"] for p in last.json()] == ["C"]
    assert 'offset=0>; rel="prev"' in last.headers["link"]
    assert 'rel="next"' not in last.headers["link"]
    assert f"limit={DEFAULT_PAGE}" in whole.headers["link"]
    assert len(whole.json()) == 3
