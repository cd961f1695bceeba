"""The Transparency Code registers and the Procurement Act notices read the same from the
integrator's read models on PostgreSQL as on SQLite (their SQL is written once for both): the
data of the unit tests, on a PostgreSQL read-model database with the embedded log."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from council.platform.runtime import Runtime, create_service_app
from council.platform.settings import Settings
from council.services.integrator.service import SPEC as INTEGRATOR
from tests.unit.test_ocds import NAMES, commission
from tests.unit.test_procurement_notices import _outcomes, _unsigned
from tests.unit.test_transparency_registers import _edges, _registered
from tests.waiting import DEADLINE_SECONDS

pytestmark = pytest.mark.integration


def _client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_service_app(INTEGRATOR, settings)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        assert isinstance(runtime, Runtime)
        runtime.event_log.append([_registered(p) for p in NAMES])
        runtime.event_log.append([*commission(), *_edges(), *_unsigned(), *_outcomes()])
        yield client


def _read(client: TestClient) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        spend = client.get("/transparency/spend.csv", params={"quarter": "2024-Q2"}).text
        contracts = client.get("/transparency/contracts.csv").text
        notices = client.get("/ocds/notices").json()["releases"]
        done = (sum(1 for r in notices if r["id"].endswith("-UK9")) == 5
                and "Provider " not in contracts and "sp-g-2024-06" in spend)
        if done:
            return {"spend": list(csv.DictReader(io.StringIO(spend))),
                    "contracts": list(csv.DictReader(io.StringIO(contracts))),
                    "notices": notices}
        assert time.monotonic() < deadline, "the read models did not take the log in"
        time.sleep(0.05)


def test_the_registers_and_notices_are_the_same_on_postgresql(
    tmp_path: Path, postgres_url: str, pg_schema_prefix: str,
) -> None:
    lite = Settings(var_dir=tmp_path / "sqlite", log_url="embedded", relay_interval=0.01)
    pg = Settings(var_dir=tmp_path / "pg", log_url="embedded", relay_interval=0.01,
                  database_url=postgres_url, schema_prefix=pg_schema_prefix)
    answers = []
    for settings in (lite, pg):
        for client in _client(settings):
            answers.append(_read(client))
    assert answers[0] == answers[1]
    assert len(answers[1]["spend"]) == 10
