"""`council bench`'s read load: the dashboard reads on the demo data, driven by wrk (keep-alive,
a bearer token) at 4, 50 and 200 connections, each as a share of `/health` (the HTTP
framework's floor) measured the same way in the same run; then the integrator with 1 and with 2
HTTP processes (`council serve --http-workers`).

The services run as in production (`council serve`, its worker processes), on the demo data,
once every read model has caught up. Each read is asked for once before it is measured: the
first answer after the read models move is worked out, the others are kept
(council.platform.readcache).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from council.platform.identity import Role, TokenStore
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.tools.bench.limits import Load, load_average, wrk, wrk_available
from council.tools.bench.measure import Served, served, wait_until

CONNECTIONS = (4, 50, 200)
HEALTH = ("integrator", "/health")
# (service, path): {provider}, {agreement} and {need} are filled from the demo data.
READS = (
    ("integrator", "/network/summary"),
    ("integrator", "/market"),
    ("integrator", "/network/state"),
    ("integrator", "/network/providers?limit=50"),
    ("integrator", "/network/providers/{provider}"),
    ("integrator", "/needs"),
    ("integrator", "/agreements"),
    ("integrator", "/agreements/{agreement}"),
    ("integrator", "/network/performance"),
    ("integrator", "/ocds/records/{need}"),
    ("integrator", "/ocds/records"),
    ("outcomes", "/performance/agreements"),
    ("outcomes", "/performance/agreements/{agreement}"),
)
SCALE_OUT_READS = ("/health", "/network/summary", "/market", "/network/state")


@dataclass(frozen=True)
class ReadFigures:
    """A read's load at each number of connections."""

    service: str
    path: str
    loads: dict[int, Load]


def _caught_up(url: str) -> bool:
    try:
        ready = httpx.get(f"{url}/ready", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    behind = ready.get("projections_behind")
    return ready.get("relay_pending") == 0 and behind is not None and not any(behind.values())


@contextmanager
def _stack(settings: Settings, folder: Path,
           integrator_options: tuple[str, ...] = ()) -> Iterator[dict[str, Served]]:
    with ExitStack() as stack:
        found = {
            "integrator": stack.enter_context(served(
                "integrator", settings, folder / "bench-reads-integrator.log",
                integrator_options)),
            "outcomes": stack.enter_context(served(
                "outcomes", settings, folder / "bench-reads-outcomes.log")),
        }
        for name, service in found.items():
            url = service.url
            wait_until(f"{name} caught up with the log", partial(_caught_up, url),
                       timeout=600, poll=0.5)
        yield found


def _paths(url: str, token: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        provider = client.get("/network/providers", params={"limit": 1}).json()[0]
        agreement = client.get("/agreements", params={"status": "active", "limit": 1}).json()[0]
    return {"provider": provider["provider_id"], "agreement": agreement["agreement_id"],
            "need": agreement["need_id"]}


def _drive(url: str, token: str, seconds: float, connections: tuple[int, ...]) -> dict[int, Load]:
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    if response.status_code != 200:  # and the answer is now kept
        raise RuntimeError(f"bench: {url} answered {response.status_code}: {response.text[:200]}")
    return {n: wrk(url, n, seconds, token) for n in connections}


def _show(label: str, loads: dict[int, Load], health: dict[int, Load]) -> None:
    cells = []
    for n, load in loads.items():
        share = load.per_s / health[n].per_s if health.get(n) else float("nan")
        trouble = load.timeouts + load.errors + load.bad
        cells.append(f"{load.per_s:>7,.0f}/s {share:>5.2f} p99 {load.p99 * 1000:>6.0f} ms"
                     f"{f' {trouble} failed' if trouble else '':<10}")
    print(f"  {label:<38} " + "  ".join(cells), flush=True)


def run(settings: Settings, folder: Path, seconds: float,
        connections: tuple[int, ...] = CONNECTIONS) -> dict[str, object]:
    """Load the demo data into `settings`' stores, then drive each read; returns the figures
    (`health`, `reads` and `workers`: the integrator with 1 and 2 HTTP processes)."""
    from council.tools.demo import load_demo

    if not wrk_available():
        print("  read load: not measured, wrk is not installed (apt-get install wrk)")
        return {}
    load_demo(settings)
    identity = open_database(settings, "identity")
    label = f"bench {uuid.uuid4().hex[:6]}"
    token = TokenStore(identity).create(Role.INTEGRATOR_ADMIN, label).token
    identity.close()
    print(f"  read load (wrk, keep-alive, {seconds:g} s each; per number of connections: "
          "req/s, share of /health, p99; load average "
          f"{load_average()}):")
    print(f"  {'':<38} " + "  ".join(f"{f'{n} connections':<40}" for n in connections))
    reads: list[ReadFigures] = []
    with _stack(settings, folder) as stack:
        ids = _paths(stack["integrator"].url, token)
        health = _drive(stack["integrator"].url + HEALTH[1], token, seconds, connections)
        _show("/health (integrator)", health, health)
        for service, path in READS:
            filled = path.format(**ids)
            loads = _drive(stack[service].url + filled, token, seconds, connections)
            _show(path if service == "integrator" else f"{path} ({service})", loads, health)
            reads.append(ReadFigures(service, path, loads))
    print("  integrator with 1 and 2 HTTP processes (council serve --http-workers), "
          "50 connections:")
    workers: dict[int, dict[str, Load]] = {}
    for count in (1, 2):
        options = ("--http-workers", str(count)) if count > 1 else ()
        with _stack(settings, folder, options) as stack:
            url = stack["integrator"].url
            workers[count] = {path: _drive(url + path, token, seconds, (50,))[50]
                              for path in SCALE_OUT_READS}
    for path in SCALE_OUT_READS:
        one, two = workers[1][path], workers[2][path]
        print(f"  {path:<38} 1: {one.per_s:>7,.0f}/s p99 {one.p99 * 1000:>5.0f} ms   "
              f"2: {two.per_s:>7,.0f}/s p99 {two.p99 * 1000:>5.0f} ms   "
              f"x{two.per_s / one.per_s:.2f}")
    return {"health": health, "reads": reads, "workers": workers}


def run_embedded(seconds: float, connections: tuple[int, ...] = CONNECTIONS) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="council-bench-reads-") as tmp:
        settings = Settings(var_dir=Path(tmp), log_url="embedded", database_url=None)
        return run(settings, Path(tmp), seconds, connections)
