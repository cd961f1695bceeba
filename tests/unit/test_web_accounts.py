"""Web users (scrypt passwords in the identity database) and expiring tokens, which sign-in
sessions are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.accounts import UserStore, hash_password, password_matches
from shared.cli import demo_users, main
from shared.identity import Role, TokenStore
from shared.settings import Settings
from shared.sql import Database, open_database

PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(Settings(var_dir=tmp_path), "identity")
    yield database
    database.close()


def test_a_password_is_stored_as_a_salted_scrypt_hash_and_checked(db: Database) -> None:
    users = UserStore(db)
    user = users.create("Jo.Smith", Role.COMMISSIONER, "Jo Smith", PASSWORD)
    assert (user.username, user.role, user.display_name) == (
        "jo.smith", Role.COMMISSIONER, "Jo Smith")
    with db.transaction() as tx:
        ((stored,),) = tx.execute("SELECT password_hash FROM web_users")
    assert stored.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in stored
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # a new salt each time
    assert users.verify("jo.smith", PASSWORD) == user
    assert users.verify("JO.SMITH ", PASSWORD) == user  # names are not case-sensitive
    assert users.verify("jo.smith", PASSWORD + "!") is None
    assert users.verify("nobody", PASSWORD) is None
    assert not password_matches(PASSWORD, stored.replace("scrypt$", "md5$"))
    assert not password_matches(PASSWORD, "garbage")


def test_accounts_refuse_bad_names_roles_short_passwords_and_duplicates(db: Database) -> None:
    users = UserStore(db)
    users.create("sam", Role.INTEGRATOR_ADMIN, "Sam", PASSWORD)
    with pytest.raises(ValueError, match="already a user sam"):
        users.create("SAM", Role.COMMISSIONER, "Sam again", PASSWORD)
    with pytest.raises(ValueError, match="at least 10 characters"):
        users.create("short", Role.COMMISSIONER, "Short", "abc")
    with pytest.raises(ValueError, match="username"):
        users.create("no spaces please", Role.COMMISSIONER, "x", PASSWORD)
    with pytest.raises(ValueError, match="roles"):
        users.create("acme", Role.PROVIDER, "A provider", PASSWORD)
    assert [u.username for u in users.list()] == ["sam"]


def test_a_disabled_user_cannot_sign_in_until_given_a_new_password(db: Database) -> None:
    users = UserStore(db)
    users.create("priya", Role.COUNCIL_STAFF, "Priya", PASSWORD)
    assert users.disable("priya")
    assert not users.disable("priya")
    assert users.verify("priya", PASSWORD) is None
    assert users.set_password("priya", "a brand new password")
    assert users.verify("priya", PASSWORD) is None
    assert users.verify("priya", "a brand new password") is not None
    assert not users.set_password("nobody", "a brand new password")


def test_a_token_past_its_expiry_is_refused(db: Database) -> None:
    tokens = TokenStore(db)
    now = datetime.now(UTC)
    live = tokens.create(Role.REGULATOR, "session", expires_at=now + timedelta(hours=1))
    gone = tokens.create(Role.REGULATOR, "session", expires_at=now - timedelta(seconds=1))
    forever = tokens.create(Role.REGULATOR, "api client")
    assert tokens.authenticate(live.token) == live.principal
    assert tokens.authenticate(gone.token) is None
    assert tokens.authenticate(forever.token) == forever.principal


def test_a_token_table_from_before_expiry_gains_the_column(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute(
            "CREATE TABLE api_tokens (token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL,"
            " role TEXT NOT NULL, label TEXT NOT NULL, provider_id TEXT,"
            " created_at TEXT NOT NULL, revoked_at TEXT)")
    tokens = TokenStore(db)
    issued = tokens.create(Role.COMMISSIONER, "old table")
    assert tokens.authenticate(issued.token) == issued.principal
    TokenStore(db)  # a second start finds the column there already


def test_the_command_line_creates_lists_and_disables_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COUNCIL_VAR_DIR", str(tmp_path))
    assert main(["users", "create", "--username", "alex", "--role", "regulator",
                 "--name", "Alex Reid"]) == 0
    password = capsys.readouterr().out.strip()
    assert len(password) >= 16
    db = open_database(Settings(var_dir=tmp_path), "identity")
    try:
        assert UserStore(db).verify("alex", password) is not None
    finally:
        db.close()
    assert main(["users", "list"]) == 0
    assert "alex\tregulator\tAlex Reid" in capsys.readouterr().out
    assert main(["users", "disable", "alex"]) == 0
    assert main(["users", "disable", "alex"]) == 1
    assert "no active user alex" in capsys.readouterr().err
    assert main(["users", "create", "--username", "alex", "--role", "regulator"]) == 2
    assert "already a user alex" in capsys.readouterr().err


def test_the_demo_users_get_new_passwords_at_each_start(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    first = {u: (role, password) for u, role, password in demo_users(settings)}
    assert {u: role for u, (role, _) in first.items()} == {
        "admin": "integrator_admin", "commissioner": "commissioner", "staff": "council_staff",
        "regulator": "regulator"}
    second = {u: password for u, _, password in demo_users(settings)}
    db = open_database(settings, "identity")
    try:
        users = UserStore(db)
        for username, (_, old) in first.items():
            assert users.verify(username, old) is None
            assert users.verify(username, second[username]) is not None
    finally:
        db.close()
