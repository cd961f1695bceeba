"""`council bench --deployment pages`: how long each web page takes the server on the demo data.

Loads the demo data set into a fresh embedded deployment, serves the integrator in process,
signs in and asks for every page ROUNDS times, reading the server's own time from each answer's
Server-Timing header (the page's work, from routing to rendered HTML: what a faster network
would not hide). "As of" pages are asked for a new date each round ("cold": the read models
rebuilt from the log for that date) and for one date again ("warm": the rebuilt ones reused).
"""

from __future__ import annotations

import re
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from council.platform.accounts import UserStore
from council.platform.identity import Role
from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.platform.sql import open_database
from council.services.integrator.web.sync import wait_caught_up

ROUNDS = 20
PASSWORD = "bench only, not a secret"  # noqa: S105 - a throwaway account in a temporary folder
TIMING = re.compile(r"app;dur=([0-9.]+)")


def _sign_in(client: TestClient) -> None:
    form = client.get("/ui/sign-in").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce is not None
    answer = client.post("/ui/sign-in", data={"nonce": nonce.group(1), "username": "bench",
                                              "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def _first(client: TestClient, page: str, pattern: str) -> str:
    found = re.search(pattern, client.get(page).text)
    assert found is not None, f"no {pattern} on {page}"
    return found.group(0)


def row(label: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"  {label:<44} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms"
          f"  max {times[-1]:7.1f} ms")


def run(settings: Settings, rounds: int = ROUNDS) -> dict[str, list[float]]:
    from council.services.integrator.service import SPEC
    from council.tools.demo import load_demo

    print("\nweb pages: server time per page on the demo data (embedded deployment, "
          f"{rounds} requests each)")
    started = time.perf_counter()
    load_demo(settings, lambda *_: None)
    print(f"  (demo data loaded in {time.perf_counter() - started:.1f} s)")
    db = open_database(settings, "identity")
    try:
        UserStore(db).create("bench", Role.REGULATOR, "Bench", PASSWORD)
    finally:
        db.close()
    measured: dict[str, list[float]] = {}
    with TestClient(create_service_app(SPEC, settings)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        wait_caught_up(runtime)
        _sign_in(client)
        provider = _first(client, "/ui/network?status=approved&category=home-care",
                          r"/ui/providers/[0-9a-f-]{36}")
        need = _first(client, "/ui/commissioning", r"/ui/needs/[0-9a-f-]{36}")
        agreement = _first(client, "/ui/commissioning?agreement_status=active",
                           r"/ui/agreements/[0-9a-f-]{36}")
        pages = {
            "sign-in": "/ui/sign-in", "network": "/ui/network",
            "network, searched": "/ui/network?q=care&organisation_type=vcse",
            "provider": provider, "commissioning": "/ui/commissioning", "need": need,
            "agreement": agreement, "outcomes": "/ui/outcomes", "market": "/ui/market",
            "audit timeline": "/ui/audit",
            "audit, filtered": "/ui/audit?source=integrator&q=growth",
            "network as of a date (warm)": "/ui/network?as_of=2025-03-31",
            "home (what needs attention)": "/ui/home", "lessons": "/ui/lessons",
            "network, sorted, page 2": "/ui/network?sort=committed&dir=desc&page=2",
            "network exported (.xlsx)": "/ui/network/providers.xlsx",
            "need, picking providers": f"{need}?pick_category=public-health&pick_type=vcse",
            "award preview (fragment)": f"{need}/award-preview?awards.0.provider_ids="
                                        f"{provider.rsplit('/', 1)[1]}"
                                        "&awards.0.allocation=10000.00",
        }
        client.get("/ui/network?as_of=2025-03-31")  # the warm date, built once
        for _ in range(rounds):
            for label, path in pages.items():
                measured.setdefault(label, []).append(timed(client, path))
        day = date(2024, 1, 1)
        for i in range(rounds):  # a date not asked for before: rebuilt from the log
            day += timedelta(days=37)
            label = "audit as of a new date (cold)" if i % 2 else "market as of a new date (cold)"
            path = "/ui/audit" if i % 2 else "/ui/market"
            measured.setdefault(label, []).append(timed(client, f"{path}?as_of={day}"))
    for label, times in measured.items():
        row(label, times)
    return measured


def timed(client: TestClient, path: str) -> float:
    answer = client.get(path)
    assert answer.status_code == 200, f"{path}: {answer.status_code}"
    found = TIMING.search(answer.headers.get("server-timing", ""))
    assert found is not None, f"{path} sent no Server-Timing"
    return float(found.group(1))


def main() -> int:
    import tempfile

    from council.platform.logs import configure_logging

    configure_logging("bench", "warning")
    with tempfile.TemporaryDirectory(prefix="council-bench-pages-") as tmp:
        run(Settings(var_dir=Path(tmp), log_url="embedded", database_url=None))
    return 0
