"""The three services as real processes (`council serve`), for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from council.platform.identity import Role, TokenStore
from council.platform.settings import SERVICE_NAMES, Settings
from council.platform.sql import open_database
from council.tools.tansu import free_port

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, what: str = "") -> T:
    """Poll until `check` returns something truthy (tests never assert on timing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.TransportError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or check}")
        time.sleep(0.05)


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.ports = {name: free_port() for name in SERVICE_NAMES}
        self.env = {
            **os.environ,
            **env,
            "COUNCIL_VAR_DIR": str(workdir / "var"),
            # Per-event lines (debug): the tests follow correlation ids across the services.
            "COUNCIL_LOG_LEVEL": "debug",
            **{f"COUNCIL_{n.upper()}_PORT": str(p) for n, p in self.ports.items()},
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.settings = Settings(**{
            k.removeprefix("COUNCIL_").lower(): v for k, v in self.env.items()
            if k.startswith("COUNCIL_") and k.removeprefix("COUNCIL_").lower()
            in Settings.model_fields
        })
        db = open_database(self.settings, "identity")
        self.admin_token = TokenStore(db).create(Role.INTEGRATOR_ADMIN, "e2e admin").token
        self.staff_token = TokenStore(db).create(Role.COUNCIL_STAFF, "e2e staff").token
        db.close()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_path(self, service: str) -> Path:
        return self.workdir / f"{service}.log"

    def start(self, service: str, *options: str) -> None:
        """`council serve <service> [options]`, once it answers /health."""
        log = open(self.log_path(service), "ab")  # noqa: SIM115 - owned by the process
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", "council.tools.cli", "serve", service, *options],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        # Generous: on a loaded 2-core machine a service on PostgreSQL may wait its turn to
        # create its tables (the set-up lock) for many seconds.
        wait_for(lambda: self._healthy(service), 90, f"{service} /health")

    def _healthy(self, service: str) -> bool:
        process = self.processes[service]
        if process.poll() is not None:
            raise AssertionError(
                f"{service} exited {process.returncode}:\n{self.log_path(service).read_text()}"
            )
        return httpx.get(f"{self.url(service)}/health", timeout=1).status_code == 200

    def start_all(self) -> None:
        """Start the three services; if one cannot start, stop those already started, so no
        process is left holding database connections for the tests that follow."""
        try:
            for service in SERVICE_NAMES:
                self.start(service)
        except BaseException:
            self.stop_all()
            raise

    def wait_caught_up(self, timeout: float = 120.0) -> None:
        """Until every service has published what it stored and every read model has applied
        what the log holds (their worker processes catch up after a start)."""
        def caught_up(service: str) -> bool:
            ready = httpx.get(f"{self.url(service)}/ready", timeout=5).json()
            behind = ready.get("projections_behind")
            return ready.get("relay_pending") == 0 and behind is not None \
                and not any(behind.values())
        for service in SERVICE_NAMES:
            wait_for(lambda s=service: caught_up(s) or None, timeout,
                     f"{service} caught up with the log")

    def kill(self, service: str) -> None:
        """SIGKILL: no shutdown hooks, exactly like a crash."""
        process = self.processes.pop(service)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}", **extra}

    def get(self, service: str, path: str, token: str | None = None) -> Any:
        response = httpx.get(f"{self.url(service)}{path}", headers=self.headers(token), timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, service: str, path: str, body: dict[str, Any], token: str | None = None,
             **headers: str) -> httpx.Response:
        return httpx.post(f"{self.url(service)}{path}", json=body,
                          headers=self.headers(token, **headers), timeout=10)

    def log_lines(self, service: str) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path(service).read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return lines
