"""PostgreSQL going away and coming back: the pools drop the connections the server closed
instead of failing requests with them, and what cannot reach the database answers 503 with
Retry-After, not 500."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from council.platform.sql import Database

pytestmark = pytest.mark.integration


def terminate(url: str, application_name: str) -> int:
    """Close, server side, every connection of this application name (as a restart would)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()", (application_name,),
        ).fetchall()
    return len(rows)


@pytest.fixture
def database(postgres_url: str, pg_schema_prefix: str) -> Iterator[Database]:
    db = Database(postgres_url, schema=f"{pg_schema_prefix}_faults")
    try:
        yield db
    finally:
        db.close()


def test_the_pool_replaces_connections_the_server_closed(postgres_url: str,
                                                          database: Database) -> None:
    with database.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS kept (n INTEGER)")
        tx.execute("INSERT INTO kept VALUES (1)")
    assert terminate(postgres_url, f"council:{database.schema}") >= 1
    for _ in range(4):  # every connection the pool held is dead: none is handed out
        with database.reading() as tx:
            assert tx.execute("SELECT n FROM kept") == [(1,)]
