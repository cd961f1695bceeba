"""The stack of three service processes, on each deployment, for the end-to-end tests (a test
module may define its own `stack`, as the browser tests do for the demo data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack


@pytest.fixture(params=["embedded", "scale"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    env: dict[str, str] = {"COUNCIL_LOG_URL": "embedded"}
    if request.param == "scale":
        prefix = request.getfixturevalue("pg_schema_prefix")
        env = {
            "COUNCIL_DATABASE_URL": request.getfixturevalue("postgres_url"),
            "COUNCIL_LOG_URL": f"kafka://{request.getfixturevalue('kafka_bootstrap')}",
            "COUNCIL_SCHEMA_PREFIX": prefix,
            "COUNCIL_TOPIC_PREFIX": prefix,
        }
    built = Stack(tmp_path, env)
    built.start_all()
    yield built
    built.stop_all()
