"""Verified tokens kept by each HTTP process (council.platform.identity) are refused as soon as
a revocation commits in another process, on both deployments' databases; and a pooled
PostgreSQL connection the server has ended is replaced, not handed out (council.platform.sql)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from council.platform.accounts import UserStore
from council.platform.identity import Role, TokenStore
from council.platform.sql import Database

PASSWORD = "a long enough password"


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest,
              tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """Two handles on one identity database, as two processes would hold them."""
    if request.param == "sqlite":
        opened = [Database.sqlite(tmp_path / "identity.sqlite") for _ in range(2)]
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"{request.getfixturevalue('pg_schema_prefix')}_identity"
        opened = [Database(url, schema=schema) for _ in range(2)]
    try:
        yield opened[0], opened[1]
    finally:
        for db in opened:
            db.close()


def test_a_kept_token_is_refused_once_another_process_revokes_it(
        databases: tuple[Database, Database]) -> None:
    serving, other = TokenStore(databases[0]), TokenStore(databases[1])
    issued = serving.create(Role.COMMISSIONER, "jo")
    kept = serving.create(Role.COUNCIL_STAFF, "sam")
    assert serving.authenticate(issued.token) == issued.principal  # verified, now kept
    assert serving.authenticate(kept.token) == kept.principal

    assert other.revoke(issued.principal.token_id)

    assert serving.authenticate(issued.token) is None  # the very next request
    assert serving.authenticate(kept.token) == kept.principal  # checked again, still valid


def test_disabling_an_account_ends_its_kept_sessions_at_once(
        databases: tuple[Database, Database]) -> None:
    serving = TokenStore(databases[0])
    users = UserStore(databases[1])
    users.create("priya", Role.COUNCIL_STAFF, "Priya", PASSWORD)
    session = serving.create(Role.COUNCIL_STAFF, "Priya", account="priya")
    assert serving.authenticate(session.token) == session.principal

    users.disable("priya")

    assert serving.authenticate(session.token) is None


def test_a_pooled_connection_the_server_ended_is_replaced(postgres_url: str,
                                                          pg_schema_prefix: str) -> None:
    db = Database(postgres_url, schema=f"{pg_schema_prefix}_identity")
    try:
        pid = db.query("SELECT pg_backend_pid()")[0][0]
        with Database(postgres_url).transaction() as tx:
            # waits (up to 5 s) until that session has ended
            assert tx.execute("SELECT pg_terminate_backend(?, 5000)", (pid,)) == [(True,)]
        assert db.query("SELECT 1") == [(1,)]
        assert db.query("SELECT pg_backend_pid()")[0][0] != pid
    finally:
        db.close()
