"""`council serve` runs a service's relay, projections and workers in child processes: they do
the work, are started again if they die, die with their service however it dies, and a clean
stop publishes everything stored first."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from council.platform.eventlog import open_event_log
from council.platform.eventstore import open_application, store_database
from council.platform.relay import OutboxRelay
from council.services.provider_registry.application import ProviderRegistry
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = Stack(tmp_path, {"COUNCIL_LOG_URL": "embedded"})
    built.start("provider_registry")
    built.start("integrator")
    yield built
    built.stop_all()


def _children(pid: int) -> dict[str, int]:
    """The service's worker processes by group."""
    found: dict[str, int] = {}
    children = [c for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]  # restarts come from a thread
    for child in children:
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--group" in argv:
            found[argv[argv.index(b"--group") + 1].decode()] = int(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return stat[0] != "Z"


def _register(stack: Stack, n: int) -> str:
    response = stack.post("provider_registry", "/providers",
                          {"name": f"Worker Test Provider {n}",
                           "organisation_type": "community_group"},
                          **{"Idempotency-Key": f"workers-{n}"})
    assert response.status_code in (200, 201), response.text
    provider_id: str = response.json()["provider_id"]
    return provider_id


def _projected(stack: Stack, provider_id: str) -> bool:
    response = httpx.get(f"{stack.url('integrator')}/network/providers/{provider_id}",
                         headers=stack.headers(), timeout=5)
    return response.status_code == 200


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_workers_run_apart_restart_and_die_with_the_service(stack: Stack) -> None:
    registry = stack.processes["provider_registry"].pid
    groups = _children(registry)
    assert set(groups) == {"relay", "projections"}
    ready = httpx.get(f"{stack.url('provider_registry')}/ready", timeout=5).json()
    assert ready["workers"] == {"relay": "running", "projections": "running"}

    # The relay process publishes; the integrator's projections process applies.
    first = _register(stack, 1)
    wait_for(lambda: _projected(stack, first), 30, "the first provider projected")

    # A relay process that dies is started again, and publishes what was stored meanwhile.
    os.kill(groups["relay"], signal.SIGKILL)
    second = _register(stack, 2)
    wait_for(lambda: _children(registry).get("relay") not in (None, groups["relay"]), 30,
             "a new relay process")
    wait_for(lambda: _projected(stack, second), 30, "the second provider projected")

    # Killed outright, the service takes its worker processes with it.
    workers = list(_children(registry).values())
    stack.kill("provider_registry")
    wait_for(lambda: not any(_alive(pid) for pid in workers), 10, "the workers gone")


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_clean_stop_publishes_what_was_stored(stack: Stack) -> None:
    registry = stack.processes["provider_registry"].pid

    def relays_started() -> int:
        return len([line for line in stack.log_lines("provider_registry")
                    if line.get("event") == "workers_started" and line.get("groups") == ["relay"]])

    wait_for(lambda: relays_started() >= 1, 60, "the relay process at work")
    os.kill(_children(registry)["relay"], signal.SIGKILL)  # the one stopping is a restarted one
    wait_for(lambda: relays_started() >= 2, 60, "a new relay process at work")
    relay = _children(registry)["relay"]
    os.kill(relay, signal.SIGSTOP)  # the relay falls behind
    for n in range(3, 23):
        _register(stack, n)
    os.kill(relay, signal.SIGCONT)
    stack.stop_all()  # SIGTERM: requests finish, then the relay process drains and exits
    registry = open_application(ProviderRegistry, stack.settings)
    event_log = open_event_log(stack.settings)
    db = store_database(stack.settings, ProviderRegistry.service)
    try:
        assert registry.recorder.max_notification_id()
        assert OutboxRelay(registry, event_log, db).pending() == 0
    finally:
        event_log.close()
        registry.close()
        db.close()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_several_http_processes_share_one_set_of_workers(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"COUNCIL_LOG_URL": "embedded"})
    try:
        stack.start("provider_registry")
        stack.start("integrator", "--http-workers", "2")
        integrator = stack.processes["integrator"].pid
        assert set(_children(integrator)) == {"relay", "projections", "workers"}
        http = [c for c in _all_children(integrator) if b"spawn_main" in _argv(c)]
        assert len(http) == 2
        ready = wait_for(lambda: (r := httpx.get(f"{stack.url('integrator')}/ready",
                                                 timeout=5)).status_code == 200 and r.json(),
                         60, "the integrator ready")
        assert set(ready["workers"].values()) == {"elsewhere"}

        provider_id = _register(stack, 1)
        wait_for(lambda: _projected(stack, provider_id), 30, "the provider projected")
        workers = [*_children(integrator).values(), *http]
    finally:
        stack.stop_all()
    wait_for(lambda: not any(_alive(pid) for pid in workers), 20, "every child gone")


def _argv(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _all_children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()]
