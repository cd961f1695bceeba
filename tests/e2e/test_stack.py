"""The whole stack as separate processes, in both deployments: the slice end to end, crashes
in the middle of relaying and projecting, and clear failures on unreachable infrastructure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from council.tools.tansu import free_port
from tests.e2e.stack import Stack, wait_for

pytestmark = pytest.mark.e2e

KINDS = ["public_body", "vcse", "sme", "large_private", "community_group", "partnership"]
SME_SIZE = {"headcount": 8, "turnover_gbp": 400_000}



def register(stack: Stack, name: str, kind: str, key: str | None = None,
             correlation: str | None = None, members: list[str] | None = None) -> httpx.Response:
    """Register an applicant; an SME gives its size, a partnership its member providers."""
    headers: dict[str, str] = {}
    if key:
        headers["Idempotency-Key"] = key
    if correlation:
        headers["X-Correlation-ID"] = correlation
    body: dict[str, Any] = {"name": name, "organisation_type": kind}
    if kind == "sme":
        body["sme_size"] = SME_SIZE
    if kind == "partnership":
        body["members"] = members
    return stack.post("provider_registry", "/providers", body, **headers)


def network(stack: Stack) -> list[dict[str, str]]:
    providers: list[dict[str, str]] = stack.get("integrator", "/network/providers?limit=5000")
    return providers


def test_registered_provider_appears_in_the_integrators_network(stack: Stack) -> None:
    response = register(stack, "Northshire Community Transport", "community_group",
                        correlation="e2e-slice-1")
    assert response.status_code == 201
    provider_id = response.json()["provider_id"]

    listed = wait_for(
        lambda: [p for p in network(stack) if p["provider_id"] == provider_id], 10, "projection"
    )
    assert listed[0]["name"] == "Northshire Community Transport"
    assert listed[0]["organisation_type"] == "community_group"
    # Readers other than admins see it too; the correlation id crossed from one service's log
    # to the other's through the event.
    assert stack.get("integrator", "/network/providers", stack.staff_token)
    applied = [line for line in stack.log_lines("integrator")
               if line.get("event") == "event_applied"]
    assert any(line.get("correlation_id") == "e2e-slice-1" for line in applied)
    for service in ("integrator", "provider_registry", "outcomes"):
        ready = httpx.get(f"{stack.url(service)}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"store": "ok", "log": "ok", "parked": "ok",
                                          "log_findings": "ok", "workers": "ok"}

    # One lifecycle step: the council approves the provider in the registry, and the
    # integrator's network shows it approved, with the reason, once the event has crossed.
    for action, reason in (("review", "application complete"),
                           ("approve", "meets the council's standards")):
        decided = stack.post("provider_registry", f"/providers/{provider_id}/{action}",
                             {"reason": reason})
        assert decided.status_code == 200, decided.text
    assert decided.json()["provider"]["status"] == "approved"
    assert decided.json()["credentials"]["token"]

    def approved() -> dict[str, str] | None:
        found: dict[str, str] = stack.get("integrator", f"/network/providers/{provider_id}")
        return found if found["status"] == "approved" else None

    member = wait_for(approved, 10, "approval projected")
    assert member["status_reason"] == "meets the council's standards"
    assert member["status_changed_by"] == "integrator_admin:e2e admin"
    assert [p["provider_id"] for p in stack.get(
        "integrator", "/network/providers?status=approved")] == [provider_id]
    assert stack.get("integrator", "/network/summary")["providers_by_status"] == {"approved": 1}


def _register_all(stack: Stack, start: int, stop: int, ids: dict[int, str]) -> None:
    """Register providers start..stop-1 (a partnership has providers 0 and 1 as members)."""
    for i in range(start, stop):
        key = f"e2e-crash-{i}"

        def attempt(i: int = i, key: str = key) -> bool:
            members = [ids[0], ids[1]] if KINDS[i % len(KINDS)] == "partnership" else None
            response = register(stack, f"Provider {i:03d}", KINDS[i % len(KINDS)], key,
                                members=members)
            if response.status_code in (200, 201):
                ids[i] = response.json()["provider_id"]
                return True
            assert response.status_code != 422, response.text  # a refused body: the test's fault
            return False

        wait_for(attempt, 30, f"registration {i}")


def test_killing_services_mid_relay_and_mid_projection_loses_and_duplicates_nothing(
    stack: Stack,
) -> None:
    total = 180
    ids: dict[int, str] = {}
    _register_all(stack, 0, 60, ids)
    stack.kill("provider_registry")  # the relay is most likely part-way through
    stack.kill("integrator")
    stack.start("provider_registry")
    _register_all(stack, 60, 120, ids)
    stack.start("integrator")
    stack.kill("provider_registry")
    stack.start("provider_registry")
    _register_all(stack, 115, total, ids)  # 115..119 are retries: accepted once

    def complete() -> dict[str, int] | None:
        summary: dict[str, int] = stack.get("integrator", "/network/summary")[
            "providers_by_organisation_type"]
        return summary if sum(summary.values()) >= total else None

    counts = wait_for(complete, 30, "all providers projected")
    expected = {kind: len([i for i in range(total) if KINDS[i % len(KINDS)] == kind])
                for kind in KINDS}
    assert counts == expected  # a doubled event would inflate a count
    names = sorted(p["name"] for p in network(stack))
    assert names == [f"Provider {i:03d}" for i in range(total)]


def _run_council(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "council.tools.cli", *args], capture_output=True, text=True,
        timeout=60,
        env={**os.environ, "COUNCIL_VAR_DIR": str(tmp_path), **env},
    )


@pytest.mark.parametrize(("env", "named"), [
    ({"COUNCIL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"},
     "postgresql://postgres@127.0.0.1:1/test"),
    ({"COUNCIL_LOG_URL": "kafka://127.0.0.1:1"}, "kafka://127.0.0.1:1"),
])
@pytest.mark.parametrize("command", [["serve", "provider_registry"], ["up"]])
def test_unreachable_infrastructure_fails_fast_naming_the_url(
    env: dict[str, str], named: str, command: list[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    result = _run_council(command, env, tmp_path)
    assert result.returncode == 2
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30  # fails fast, not after a long retry loop


def test_council_up_serves_all_three_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    ports = {s: free_port() for s in ("integrator", "provider_registry", "outcomes")}
    env = {**os.environ, "COUNCIL_VAR_DIR": str(tmp_path / "var"),
           **{f"COUNCIL_{s.upper()}_PORT": str(p) for s, p in ports.items()}}
    out = tmp_path / "up.out"
    with open(out, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "council.tools.cli", "up"], env=env,
                                   stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "admin token" in out.read_text(), 60, "council up")
            for port in ports.values():
                assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
            token = out.read_text().split("admin token (demo): ")[1].split()[0]
            response = httpx.get(f"http://127.0.0.1:{ports['integrator']}/network/providers",
                                 headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=40) == 0
    for port in ports.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_council_up_prints_the_urls_last_once_the_demo_is_loaded_and_caught_up(
    tmp_path: Path,
) -> None:
    """What `make run` shows: the demo load, the services starting (JSON lines: not a
    terminal), then the URLs, token and passwords once every read model has caught up, with no
    line per event applied to scroll them away."""
    ports = {s: free_port() for s in ("integrator", "provider_registry", "outcomes")}
    env = {**os.environ, "COUNCIL_VAR_DIR": str(tmp_path / "var"),
           **{f"COUNCIL_{s.upper()}_PORT": str(p) for s, p in ports.items()}}
    env.pop("COUNCIL_LOG_LEVEL", None)
    env.pop("COUNCIL_LOG_FORMAT", None)
    out = tmp_path / "up.out"
    with open(out, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "council.tools.cli", "up", "--demo"],
                                   env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "Ctrl-C stops all three." in out.read_text(), 600, "the banner")
            token = out.read_text().split("admin token (demo): ")[1].split()[0]
            summary = httpx.get(f"http://127.0.0.1:{ports['integrator']}/network/summary",
                                headers={"Authorization": f"Bearer {token}"}).json()
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=40) == 0
    # The network read model had the whole demo when the URLs were printed.
    assert sum(summary["providers_by_status"].values()) == 152
    before, _, rest = out.read_text().partition("Council Integrator is running:")
    banner = rest.partition("Ctrl-C stops all three.")[0]
    assert "Loaded in" in before
    assert "event_applied" not in before + rest
    assert "web pages:" in banner
    assert "commissioner" in banner
    logged = [json.loads(line) for line in before.splitlines() if line.startswith("{")]
    assert {line["event"] for line in logged} >= {"service_started"}
    assert all(line["level"] != "debug" for line in logged)
