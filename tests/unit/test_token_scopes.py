"""Scoped regulator tokens: the scope is parsed strictly (each bad item named), stored with the
token and read back on every request; only regulator tokens are scoped; a token table made before
scopes existed gains the column and its tokens stay valid and unscoped; and `council tokens`
creates and lists scoped tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from council.platform.identity import Principal, Role, Scope, TokenStore
from council.platform.sql import Database
from council.tools.cli import main as council

PROVIDER = UUID("0b6a7c1e-2f4d-4e8a-9c3b-5d7e9f1a2b3c")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TokenStore]:
    db = Database.sqlite(tmp_path / "identity.sqlite")
    try:
        yield TokenStore(db)
    finally:
        db.close()


def test_a_scope_reads_its_items() -> None:
    scope = Scope.parse([f"provider={PROVIDER}", "from=2024-04-01", "to=2025-03-31",
                         "organisation= Northshire Police "])

    assert scope == Scope(
        organisation="Northshire Police", provider=PROVIDER,
        starts=datetime(2024, 4, 1, tzinfo=UTC),
        ends=datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC))
    assert scope.items() == {"organisation": "Northshire Police", "provider": str(PROVIDER),
                             "from": "2024-04-01", "to": "2025-03-31"}
    assert Scope.from_items(scope.items()) == scope
    exact = Scope.parse(["from=2024-04-01T09:30:00+01:00"])
    assert exact is not None
    assert exact.items() == {"from": "2024-04-01T08:30:00+00:00"}
    assert Scope.parse([]) is None


@pytest.mark.parametrize(("items", "message"), [
    (["provider"], "scope 'provider': expected one of organisation=..."),
    (["colour=red"], "scope 'colour=red': expected one of"),
    (["provider="], "scope 'provider=': expected"),
    (["provider=acorn"], "scope provider='acorn' is not a UUID"),
    (["agreement=42"], "scope agreement='42' is not a UUID"),
    (["from=soon"], "scope from: 'soon' is not an ISO date"),
    (["to=31/03/2025"], "scope to: '31/03/2025' is not an ISO date"),
    (["from=2025-04-01", "to=2025-03-31"], "scope to must not be before from"),
    ([f"provider={PROVIDER}", f"provider={PROVIDER}"], "scope provider given twice"),
])
def test_a_bad_scope_is_refused_naming_the_item(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        Scope.parse(items)


def test_a_scope_is_stored_with_its_token_and_read_back(store: TokenStore) -> None:
    scope = Scope.parse([f"provider={PROVIDER}", "from=2024-04-01", "to=2025-03-31"])
    issued = store.create(Role.REGULATOR, "CQC inspector", scope=scope)

    assert issued.principal == Principal(issued.principal.token_id, Role.REGULATOR,
                                         "CQC inspector", None, scope)
    assert store.authenticate(issued.token) == issued.principal
    (row,) = store.list()
    assert row[6] == f"provider={PROVIDER} from=2024-04-01 to=2025-03-31"
    unscoped = store.create(Role.REGULATOR, "Ofsted")
    found = store.authenticate(unscoped.token)
    assert found is not None
    assert found.scope is None


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.REGULATOR],
                         ids=lambda r: r.value)
def test_only_regulator_tokens_are_scoped(store: TokenStore, role: Role) -> None:
    scope = Scope.parse(["from=2024-04-01"])
    provider_id = PROVIDER if role is Role.PROVIDER else None
    with pytest.raises(ValueError, match="only regulator tokens are scoped"):
        store.create(role, "someone", provider_id, scope)
    assert store.list() == []


def test_a_token_table_from_before_scopes_gains_the_column(tmp_path: Path) -> None:
    db = Database.sqlite(tmp_path / "identity.sqlite")
    with db.transaction() as tx:  # the layout tokens had before scopes
        tx.execute(
            "CREATE TABLE api_tokens (token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,"
            " role TEXT NOT NULL, label TEXT NOT NULL, provider_id TEXT,"
            " created_at TEXT NOT NULL, revoked_at TEXT)")
        tx.execute("INSERT INTO api_tokens VALUES (?, ?, 'regulator', 'old', NULL,"
                   " '2024-01-01T00:00:00+00:00', NULL)",
                   ("a1b2c3d4e5f6", hashlib.sha256(b"secret").hexdigest()))
    try:
        store = TokenStore(db)
        TokenStore(db)  # a second service starting on the same database
        with db.transaction() as tx:
            columns = [row[1] for row in tx.execute("PRAGMA table_info(api_tokens)")]
        assert columns.count("scope") == 1
        # The old token still authenticates, unscoped.
        assert store.authenticate("cit_a1b2c3d4e5f6_secret") == Principal(
            "a1b2c3d4e5f6", Role.REGULATOR, "old")
        scoped = store.create(Role.REGULATOR, "new", scope=Scope.parse(["to=2025-03-31"]))
        assert store.authenticate(scoped.token) == scoped.principal
    finally:
        db.close()


def test_the_command_line_creates_and_lists_scoped_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("COUNCIL_DATABASE_URL", raising=False)
    code = council(["tokens", "create", "--role", "regulator", "--label", "CQC inspector",
                    "--scope", f"provider={PROVIDER}", "--scope", "from=2024-04-01",
                    "--scope", "to=2025-03-31"])
    out, err = capsys.readouterr()
    assert code == 0
    token = out.strip()
    assert token.startswith("cit_")
    assert f"scoped to provider={PROVIDER} from=2024-04-01 to=2025-03-31" in err

    assert council(["tokens", "list"]) == 0
    listed = capsys.readouterr().out
    assert "regulator\tCQC inspector" in listed
    assert listed.rstrip("\n").endswith(f"provider={PROVIDER} from=2024-04-01 to=2025-03-31")

    assert council(["tokens", "create", "--role", "regulator", "--scope", "to=whenever"]) == 2
    assert "council: scope to: 'whenever' is not an ISO date" in capsys.readouterr().err
    assert council(["tokens", "create", "--role", "commissioner", "--scope",
                    "from=2024-04-01"]) == 2
    assert "council: only regulator tokens are scoped" in capsys.readouterr().err
    assert council(["tokens", "list"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1  # nothing more was created
