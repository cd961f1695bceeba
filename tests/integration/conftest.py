"""Fixtures shared by the integration tests: the same test on each deployment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from council.platform.settings import Settings


@pytest.fixture
def settings_options() -> dict[str, Any]:
    """Further settings for both deployments (a module may ask for a quicker relay)."""
    return {}


@pytest.fixture(params=["embedded", "scale"])
def settings(request: pytest.FixtureRequest, tmp_path: Path,
             settings_options: dict[str, Any]) -> Iterator[Settings]:
    """Embedded (SQLite files, the file log) or scale-out (PostgreSQL and Kafka, in schemas
    and topics of the test's own)."""
    if request.param == "embedded":
        yield Settings(var_dir=tmp_path, log_url="embedded", **settings_options)
        return
    url = request.getfixturevalue("postgres_url")
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    prefix = request.getfixturevalue("pg_schema_prefix")
    yield Settings(var_dir=tmp_path, database_url=url, schema_prefix=prefix,
                   log_url=f"kafka://{bootstrap}", topic_prefix=prefix, **settings_options)
