"""Council staff's accounts for the web pages: a username, the name their decisions are recorded
under, a role, and a password, kept in the shared identity database beside the API tokens.

Passwords are chosen by people, so unlike tokens they are hashed slowly: scrypt (memory-hard,
in the standard library) with a random salt per account, its parameters stored with the hash so
they can be raised later without locking anyone out. Signing in issues an ordinary, expiring
API token (council.platform.identity.TokenStore) for the account's role, naming the account: the
session cookie carries it, and the web pages present it to the other services, which accept it like
any token. Disabling an account or changing its password revokes every session it has, and
each request checks the session's account is still enabled and the session newer than its
password.

Guessing is throttled (`SignInThrottle`): failed sign-ins are counted per account name and per
client address over a sliding window kept in the identity database, so the count holds across
every process of the deployment and across restarts. Once either reaches its limit, every
sign-in to that name (from that address) is refused, the right password too, until the oldest
failure counted leaves the window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from council.platform.identity import Principal, Role, TokenStore, revoke_account
from council.platform.sql import Database, Tx

# The roles a person can sign in with; providers use API credentials, not the council's pages.
STAFF_ROLES = (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER, Role.COUNCIL_STAFF, Role.REGULATOR)
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# scrypt cost: 2^14 x 8 x 128 bytes = 16 MiB per check (OWASP's minimum is 2^13..2^17): slow
# enough to make guessing dear, quick enough for a sign-in (its time: docs/performance.md)
_N, _R, _P, _LEN = 2**14, 8, 1, 32

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS web_users ("
    " username TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL,"
    " password_hash TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT,"
    " sessions_from TEXT)"
)


def _add_sessions_from(tx: Tx, dialect: str) -> None:
    """Tables made before sessions ended with a password change get the column: when the
    account's password last changed (NULL: sessions from any time are its)."""
    if dialect == "postgres":
        tx.execute("ALTER TABLE web_users ADD COLUMN IF NOT EXISTS sessions_from TEXT")
    elif "sessions_from" not in {row[1] for row in tx.execute("PRAGMA table_info(web_users)")}:
        tx.execute("ALTER TABLE web_users ADD COLUMN sessions_from TEXT")


def _now_text() -> str:
    # Fixed width (microseconds always written), so stored moments compare as text.
    return datetime.now(UTC).isoformat(timespec="microseconds")


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


class Refusal(StrEnum):
    """Why a name and password do not sign in
    (council.kernel.contracts.integrator.SignInRefusal)."""

    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a reason, not a password
    UNKNOWN_ACCOUNT = "unknown_account"
    ACCOUNT_DISABLED = "account_disabled"


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        TokenStore(db)  # its table: disabling an account revokes the account's sessions
        with db.transaction() as tx:
            tx.execute(_SCHEMA)
            _add_sessions_from(tx, db.dialect)

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
        user, _ = self.check(username, password)
        return user

    def check(self, username: str, password: str) -> tuple[User | None, Refusal | None]:
        """The account if the password is its password and it is not disabled; else why not.
        The password is checked in every case, so every answer takes as long."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT password_hash, disabled_at FROM web_users WHERE username = ?",
                (username.strip().lower(),))
        stored = rows[0][0] if rows else _DUMMY
        matches = password_matches(password, stored)
        if not rows:
            return None, Refusal.UNKNOWN_ACCOUNT
        if not matches:
            return None, Refusal.WRONG_PASSWORD
        if rows[0][1] is not None:
            return None, Refusal.ACCOUNT_DISABLED
        return self.get(username), None

    def set_password(self, username: str, password: str) -> bool:
        """A new password (re-enabling the account); every session it had ends."""
        name = self._checked(username, None, password)
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE web_users SET password_hash = ?, disabled_at = NULL, sessions_from = ?"
                " WHERE username = ? RETURNING username",
                (hash_password(password), _now_text(), name))
            if rows:
                revoke_account(tx, name)
        return bool(rows)

    def disable(self, username: str) -> bool:
        """No more signing in, and every session the account has ends at once."""
        name = username.strip().lower()
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE web_users SET disabled_at = ? WHERE username = ? AND disabled_at IS NULL"
                " RETURNING username", (_now_text(), name))
            revoke_account(tx, name)
        return bool(rows)

    def session_valid(self, principal: Principal) -> bool:
        """Whether a sign-in session may still be used: its account exists, is enabled, and
        its password has not changed since the session was issued. (Disabling or a new
        password also revokes the sessions; this catches one issued while that happened.)"""
        if principal.account is None:
            return True  # not a sign-in session (an API token presented as one)
        with self.db.reading() as tx:
            rows = tx.execute(
                "SELECT u.disabled_at, u.sessions_from, t.created_at FROM web_users u,"
                " api_tokens t WHERE u.username = ? AND t.token_id = ?",
                (principal.account, principal.token_id))
        if not rows:
            return False
        disabled, sessions_from, issued = rows[0]
        if disabled is not None:
            return False
        return sessions_from is None or datetime.fromisoformat(issued) >= datetime.fromisoformat(
            sessions_from)

    def list(self) -> list[User]:
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT username, display_name, role, created_at, disabled_at"
                              " FROM web_users ORDER BY username")
        return [User(n, d, Role(r), c, x) for n, d, r, c, x in rows]


# ---------------------------------------------------------------------- throttling sign-in

WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5  # failed sign-ins to one name within the window
ADDRESS_LIMIT = 20  # failed sign-ins from one client address within the window, any names

_FAILURES = (
    "CREATE TABLE IF NOT EXISTS sign_in_failures ("
    " attempt_id TEXT PRIMARY KEY, account_key TEXT NOT NULL, address TEXT NOT NULL,"
    " failed_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sign_in_failures_account ON sign_in_failures"
    " (account_key, failed_at)",
    "CREATE INDEX IF NOT EXISTS sign_in_failures_address ON sign_in_failures"
    " (address, failed_at)",
)


def account_key(username: str) -> str:
    """What failures to a name are counted under: a hash of the name as given (normalised),
    so a password typed into the username box is not kept in the clear."""
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class Throttle:
    """Sign-ins refused: to one name (`by` account) or from one address, until `until`."""

    by: str  # "account" or "address"
    failures: int
    until: datetime

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the throttle lifts (at least 1)."""
        left = (self.until - (now or datetime.now(UTC))).total_seconds()
        return max(1, int(left) + (left % 1 > 0))


@dataclass(frozen=True)
class Attempt:
    """A sign-in under way, counted as a failure until it succeeds (so attempts made at the
    same time count against each other), with the failures counted, this one included."""

    attempt_id: str
    account_failures: int
    address_failures: int


class SignInThrottle:
    """Failed sign-ins per account name and per client address over a sliding window."""

    def __init__(self, db: Database, window: timedelta = WINDOW,
                 per_account: int = ACCOUNT_LIMIT, per_address: int = ADDRESS_LIMIT) -> None:
        self.db = db
        self.window = window
        self.per_account = per_account
        self.per_address = per_address
        with db.transaction() as tx:
            for statement in _FAILURES:
                tx.execute(statement)

    def begin(self, username: str, address: str,
              now: datetime | None = None) -> Attempt | Throttle:
        """Before a password is checked: the throttle in force for this name or address, or
        the attempt, counted (and stored) as a failure until `succeeded`."""
        now = now or datetime.now(UTC)
        key = account_key(username)
        since = (now - self.window).isoformat(timespec="microseconds")
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sign_in_failures WHERE failed_at <= ?", (since,))
            by_account = self._times(tx, "account_key", key, since)
            by_address = self._times(tx, "address", address, since)
            found = (self._in_force("account", by_account, self.per_account)
                     or self._in_force("address", by_address, self.per_address))
            if found is not None:
                return found
            attempt_id = secrets.token_hex(12)
            tx.execute("INSERT INTO sign_in_failures (attempt_id, account_key, address,"
                       " failed_at) VALUES (?, ?, ?, ?)",
                       (attempt_id, key, address, now.isoformat(timespec="microseconds")))
        return Attempt(attempt_id, len(by_account) + 1, len(by_address) + 1)

    def succeeded(self, attempt: Attempt, username: str) -> None:
        """The password was right: the attempt was no failure, and the name's failures are
        forgotten (the address's are kept: another name may be the next one guessed)."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM sign_in_failures WHERE attempt_id = ?",
                       (attempt.attempt_id,))
            tx.execute("UPDATE sign_in_failures SET account_key = '' WHERE account_key = ?",
                       (account_key(username),))

    def begun_by(self, attempt: Attempt, username: str, address: str,
                 now: datetime | None = None) -> Throttle | None:
        """The throttle this failed attempt began, if it brought a count to its limit."""
        if attempt.account_failures == self.per_account:
            return self._in_force_now("account", "account_key", account_key(username),
                                      self.per_account, now)
        if attempt.address_failures == self.per_address:
            return self._in_force_now("address", "address", address, self.per_address, now)
        return None

    def _in_force_now(self, by: str, column: str, value: str, limit: int,
                      now: datetime | None) -> Throttle | None:
        since = ((now or datetime.now(UTC)) - self.window).isoformat(timespec="microseconds")
        with self.db.reading() as tx:
            return self._in_force(by, self._times(tx, column, value, since), limit)

    @staticmethod
    def _times(tx: Tx, column: str, value: str, since: str) -> list[str]:
        rows = tx.execute(f"SELECT failed_at FROM sign_in_failures WHERE {column} = ?"
                          " AND failed_at > ? ORDER BY failed_at", (value, since))
        return [str(at) for (at,) in rows]

    def _in_force(self, by: str, times: list[str], limit: int) -> Throttle | None:
        """Refused while `limit` or more failures are in the window: until the one that would
        leave fewer behind it drops out."""
        if len(times) < limit:
            return None
        until = datetime.fromisoformat(times[len(times) - limit]) + self.window
        return Throttle(by, len(times), until)
