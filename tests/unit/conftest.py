"""Fixtures shared by the unit tests: a deployment's settings in a fresh directory, and its
token store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from council.platform.identity import TokenStore
from council.platform.settings import Settings
from council.platform.sql import open_database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, relay_interval=0.01)


@pytest.fixture
def tokens(settings: Settings) -> Iterator[TokenStore]:
    store = TokenStore(open_database(settings, "identity"))
    try:
        yield store
    finally:
        store.db.close()
