"""Web users (scrypt passwords in the identity database) and expiring tokens, which sign-in
sessions are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from council.platform.accounts import (
    Attempt,
    SignInThrottle,
    Throttle,
    UserStore,
    hash_password,
    password_matches,
)
from council.platform.identity import Role, TokenStore
from council.platform.settings import Settings
from council.platform.sql import Database, open_database
from council.tools.cli import demo_users, main

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


# --------------------------------------------------------------------------- throttling


NOW = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)


def failures(throttle: SignInThrottle, name: str, times: list[datetime],
             address: str = "203.0.113.7") -> list[Attempt | Throttle]:
    """Sign-ins to `name` that fail, at these moments."""
    return [throttle.begin(name, address, at) for at in times]


def test_failures_are_counted_over_a_sliding_window(db: Database) -> None:
    throttle = SignInThrottle(db, window=timedelta(minutes=15), per_account=3)
    # 14:00, 14:05, 14:10 fail: the third reaches the limit.
    made = failures(throttle, "jo", [NOW + timedelta(minutes=m) for m in (0, 5, 10)])
    assert [a.account_failures for a in made if isinstance(a, Attempt)] == [1, 2, 3]
    third = made[-1]
    assert isinstance(third, Attempt)
    begun = throttle.begun_by(third, "jo", "203.0.113.7", NOW + timedelta(minutes=10))
    # Refused until the first (14:00) leaves the 15-minute window: 14:15.
    assert begun == Throttle("account", 3, NOW + timedelta(minutes=15))
    assert throttle.begin("JO ", "198.51.100.4", NOW + timedelta(minutes=14)) == begun
    assert begun.retry_after(NOW + timedelta(minutes=14, seconds=30)) == 30
    # At 14:15 two failures are left in the window (14:05, 14:10): one more try is allowed.
    fourth = throttle.begin("jo", "203.0.113.7", NOW + timedelta(minutes=15))
    assert isinstance(fourth, Attempt)
    assert fourth.account_failures == 3
    # Another process, another connection to the identity database: the same count.
    again = SignInThrottle(db, window=timedelta(minutes=15), per_account=3)
    assert isinstance(again.begin("jo", "x", NOW + timedelta(minutes=16)), Throttle)


def test_a_right_password_forgets_the_names_failures_not_the_addresss(db: Database) -> None:
    throttle = SignInThrottle(db, per_account=3, per_address=4)
    failures(throttle, "jo", [NOW, NOW])
    right = throttle.begin("jo", "203.0.113.7", NOW)
    assert isinstance(right, Attempt)
    throttle.succeeded(right, "jo")
    after = throttle.begin("jo", "203.0.113.7", NOW)
    assert isinstance(after, Attempt)
    assert (after.account_failures, after.address_failures) == (1, 3)
    fourth = throttle.begin("priya", "203.0.113.7", NOW)
    assert isinstance(fourth, Attempt)
    assert fourth.address_failures == 4
    refused = throttle.begin("sam", "203.0.113.7", NOW)
    assert isinstance(refused, Throttle)
    assert refused.by == "address"


def test_failures_are_kept_under_a_hash_of_the_name_given(db: Database) -> None:
    throttle = SignInThrottle(db)
    throttle.begin("my secret password", "203.0.113.7", NOW)
    with db.transaction() as tx:
        stored = tx.execute("SELECT * FROM sign_in_failures")
    assert "my secret password" not in repr(stored)


def test_a_session_issued_before_a_password_change_is_no_longer_valid(db: Database) -> None:
    users = UserStore(db)
    tokens = TokenStore(db)
    users.create("priya", Role.COUNCIL_STAFF, "Priya", PASSWORD)
    session = tokens.create(Role.COUNCIL_STAFF, "Priya", account="priya")
    api_token = tokens.create(Role.COUNCIL_STAFF, "a script")
    assert users.session_valid(session.principal)
    users.set_password("priya", "a brand new password")
    assert tokens.authenticate(session.token) is None  # revoked
    assert tokens.authenticate(api_token.token) is not None  # not a session of the account
    # Issued while the password changed (a sign-in racing the change), so not revoked: the
    # check on every request still refuses it.
    with db.transaction() as tx:
        tx.execute("UPDATE api_tokens SET revoked_at = NULL WHERE token_id = ?",
                   (session.principal.token_id,))
    assert tokens.authenticate(session.token) is not None
    assert not users.session_valid(session.principal)
    newer = tokens.create(Role.COUNCIL_STAFF, "Priya", account="priya")
    assert users.session_valid(newer.principal)
    users.disable("priya")
    assert not users.session_valid(newer.principal)
    assert tokens.authenticate(newer.token) is None
