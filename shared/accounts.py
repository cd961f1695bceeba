"""Council staff's accounts for the web pages: a username, the name their decisions are recorded
under, a role, and a password, kept in the shared identity database beside the API tokens.

Passwords are chosen by people, so unlike tokens they are hashed slowly: scrypt (memory-hard,
in the standard library) with a random salt per account, its parameters stored with the hash so
they can be raised later without locking anyone out. Signing in issues an ordinary, expiring
API token (shared.identity.TokenStore) for the account's role: the session cookie carries it,
and the web pages present it to the other services, which accept it like any token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.identity import Role
from shared.sql import Database

# The roles a person can sign in with; providers use API credentials, not the council's pages.
STAFF_ROLES = (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER, Role.COUNCIL_STAFF, Role.REGULATOR)
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# scrypt cost: 2^14 x 8 x 128 bytes = 16 MiB and ~50 ms per check (OWASP's minimum is 2^13..2^17)
_N, _R, _P, _LEN = 2**14, 8, 1, 32

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS web_users ("
    " username TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL,"
    " password_hash TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT)"
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN,
                            maxmem=64 * 1024 * 1024)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p), dklen=len(expected),
                               maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(given, expected)


# Checked when the username is unknown, so a wrong name takes as long as a wrong password.
_DUMMY = hash_password("not a password of anyone's", b"0" * 16)


def new_password() -> str:
    """A password to hand out (16 URL-safe characters, 96 bits)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: Role
    created_at: str
    disabled_at: str | None = None


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            tx.execute(_SCHEMA)

    @staticmethod
    def _checked(username: str, role: Role | None, password: str | None) -> str:
        name = username.strip().lower()
        if not USERNAME.match(name):
            raise ValueError("a username is 2 to 64 lower-case letters, digits, '.', '_' or '-'")
        if role is not None and role not in STAFF_ROLES:
            raise ValueError(f"web users have one of the roles "
                             f"{', '.join(r.value for r in STAFF_ROLES)}")
        if password is not None and len(password) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        return name

    def create(self, username: str, role: Role, display_name: str, password: str) -> User:
        name = self._checked(username, role, password)
        shown = display_name.strip() or name
        created = datetime.now(UTC).isoformat()
        with self.db.transaction() as tx:
            if tx.execute("SELECT 1 FROM web_users WHERE username = ?", (name,)):
                raise ValueError(f"there is already a user {name}")
            tx.execute(
                "INSERT INTO web_users (username, display_name, role, password_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (name, shown, role.value, hash_password(password),
                                            created))
        return User(name, shown, role, created)

    def get(self, username: str) -> User | None:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT username, display_name, role, created_at, disabled_at FROM web_users"
                " WHERE username = ?", (username.strip().lower(),))
        if not rows:
            return None
        name, shown, role, created, disabled = rows[0]
        return User(name, shown, Role(role), created, disabled)

    def verify(self, username: str, password: str) -> User | None:
        """The account, if it exists, is not disabled and the password is its password."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT password_hash FROM web_users WHERE username = ? AND disabled_at IS NULL",
                (username.strip().lower(),))
        stored = rows[0][0] if rows else _DUMMY
        if not password_matches(password, stored) or not rows:
            return None
        return self.get(username)

    def set_password(self, username: str, password: str) -> bool:
        name = self._checked(username, None, password)
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE web_users SET password_hash = ?, disabled_at = NULL WHERE username = ?"
                " RETURNING username", (hash_password(password), name))
        return bool(rows)

    def disable(self, username: str) -> bool:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE web_users SET disabled_at = ? WHERE username = ? AND disabled_at IS NULL"
                " RETURNING username", (datetime.now(UTC).isoformat(), username.strip().lower()))
        return bool(rows)

    def list(self) -> list[User]:
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT username, display_name, role, created_at, disabled_at"
                              " FROM web_users ORDER BY username")
        return [User(n, d, Role(r), c, x) for n, d, r, c, x in rows]
