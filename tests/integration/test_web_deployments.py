"""The web pages on the scale-out deployment (PostgreSQL read models and tokens, Kafka log): the
same onboarding and commissioning through the pages as on the embedded default, the provider
registry's API over real HTTP, and the network "as of" a date rebuilt from Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from council.platform.settings import Settings
from council.tools.tansu import free_port
from tests.unit.test_web_pages import (  # the fixtures, with this module's settings
    app,  # noqa: F401
    onboard_and_commission,
    registry,  # noqa: F401
    users,  # noqa: F401
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, kafka_bootstrap: str,
             pg_schema_prefix: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=postgres_url, schema_prefix=pg_schema_prefix,
                    log_url=f"kafka://{kafka_bootstrap}", topic_prefix=pg_schema_prefix,
                    relay_interval=0.01, provider_registry_port=free_port())


def test_a_provider_onboarded_and_commissioned_on_postgres_and_kafka(
    app: TestClient, registry: str,  # noqa: F811
) -> None:
    settings = app.app.state.runtime.settings  # type: ignore[attr-defined]
    assert settings.uses_postgres
    assert settings.log_url.startswith("kafka://")
    onboard_and_commission(app)
