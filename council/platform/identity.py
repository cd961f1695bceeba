"""Identity and access shared by all services: roles, bearer tokens, and the FastAPI guard.

Tokens are random secrets shown once at creation; only their SHA-256 is stored (a token has
256 bits of entropy, so a fast hash is enough: there is nothing to brute-force). A token may
expire (the web pages' sign-in sessions do); one past its expiry is refused like a revoked one.
Every write endpoint names the roles it accepts; the guard answers 401 without a valid token and
403 for the wrong role, and sets the command context so each event records its actor.

A regulator's token may carry a scope (an organisation, provider or agreement, and/or a range of
business dates); only routes that honour scopes admit a scoped token. Who may use a route is
decided in one place, `admission_refusal`, for the HTTP API's guard and the web pages alike.

A sign-in session's token names the account it was issued for, so disabling the account or
changing its password revokes every session it has (`revoke_account`).

Checking a token is on every request's path, so each HTTP process keeps the tokens it has
verified (`TokenStore.authenticate`). Every revocation, by whichever process, counts up one
*revocation generation* in the same transaction; a kept token is used only while the
generation is the one it was verified under, so a revoked token is refused by the next request
after the revocation commits, in every process. Reading the generation is one indexed row in
one round trip (no transaction around it), cheaper than finding and checking the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from council.kernel.clock import moment_text, parse_moment
from council.kernel.context import CommandContext, command_context, new_correlation_id
from council.platform.sql import Database, Tx

TOKEN_PREFIX = "cit"  # noqa: S105 - a label, not a secret


class Role(StrEnum):
    INTEGRATOR_ADMIN = "integrator_admin"
    COMMISSIONER = "commissioner"
    COUNCIL_STAFF = "council_staff"  # read-only council staff
    PROVIDER = "provider"  # bound to one provider id
    REGULATOR = "regulator"  # read-only, audit


COUNCIL_WRITERS = (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER)
# Regulators are not council readers: they read through the audit API alone, where every read
# is scoped and itself recorded (council/services/integrator/api/audit.py).
COUNCIL_READERS = (*COUNCIL_WRITERS, Role.COUNCIL_STAFF)
ANY_ROLE = tuple(Role)


SCOPE_KEYS = ("organisation", "provider", "agreement", "from", "to")


@dataclass(frozen=True)
class Scope:
    """What a regulator's token may see: events concerning one organisation, provider or
    agreement, that occurred (business time) from `starts` to `ends`, both inclusive. Given as
    `key=value` items: organisation=<name>, provider=<uuid>, agreement=<uuid>, from=<date or
    date-time>, to=<date or date-time> (a date in `to` means the end of that day, UTC)."""

    organisation: str | None = None
    provider: UUID | None = None
    agreement: UUID | None = None
    starts: datetime | None = None
    ends: datetime | None = None

    @classmethod
    def parse(cls, items: Iterable[str]) -> Scope | None:
        """A scope from `key=value` items (None for none); ValueError naming the bad item."""
        given: dict[str, str] = {}
        for item in items:
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or key not in SCOPE_KEYS or not value:
                raise ValueError(f"scope {item!r}: expected one of "
                                 f"{', '.join(k + '=...' for k in SCOPE_KEYS)}")
            if key in given:
                raise ValueError(f"scope {key} given twice")
            given[key] = value
        return cls.from_items(given) if given else None

    @classmethod
    def from_items(cls, items: dict[str, str]) -> Scope:
        def uuid_of(key: str) -> UUID | None:
            try:
                return UUID(items[key]) if key in items else None
            except ValueError:
                raise ValueError(f"scope {key}={items[key]!r} is not a UUID") from None

        def moment_of(key: str, end_of_day: bool) -> datetime | None:
            try:
                return parse_moment(items[key], end_of_day=end_of_day) if key in items else None
            except ValueError as exc:
                raise ValueError(f"scope {key}: {exc}") from None

        scope = cls(items.get("organisation"), uuid_of("provider"), uuid_of("agreement"),
                    moment_of("from", False), moment_of("to", True))
        if scope.starts and scope.ends and scope.starts > scope.ends:
            raise ValueError("scope to must not be before from")
        return scope

    def items(self) -> dict[str, str]:
        values = {"organisation": self.organisation,
                  "provider": str(self.provider) if self.provider else None,
                  "agreement": str(self.agreement) if self.agreement else None,
                  "from": moment_text(self.starts, end_of_day=False) if self.starts else None,
                  "to": moment_text(self.ends, end_of_day=True) if self.ends else None}
        return {k: v for k, v in values.items() if v is not None}

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.items().items())


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    label: str
    provider_id: UUID | None = None
    scope: Scope | None = None
    account: str | None = None  # the web user a sign-in session was issued for

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.label}"


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    principal: Principal


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    " token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL, role TEXT NOT NULL,"
    " label TEXT NOT NULL, provider_id TEXT, created_at TEXT NOT NULL, revoked_at TEXT,"
    " expires_at TEXT)"
)


def _add_scope_column(tx: Tx, dialect: str) -> None:
    """Token tables made before scopes existed get the column (NULL: unscoped)."""
    if dialect == "postgres":
        present = tx.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = 'api_tokens' AND column_name = 'scope'")
        if not present:  # IF NOT EXISTS: services starting together may race to add it
            tx.execute("ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS scope TEXT")
    elif "scope" not in {row[1] for row in tx.execute("PRAGMA table_info(api_tokens)")}:
        tx.execute("ALTER TABLE api_tokens ADD COLUMN scope TEXT")


# One row counting revocations (see the module's docstring); `singleton` is always 1.
_REVOCATIONS = (
    "CREATE TABLE IF NOT EXISTS api_token_revocations ("
    " singleton INTEGER PRIMARY KEY, generation BIGINT NOT NULL)"
)
KEPT_TOKENS = 4096  # verified tokens kept per process; past that the kept ones are let go


def _count_revocation(tx: Tx) -> None:
    """A token was revoked: tokens verified before now must be checked again."""
    tx.execute("UPDATE api_token_revocations SET generation = generation + 1"
               " WHERE singleton = 1")


def _scope_of(stored: str | None) -> Scope | None:
    return Scope.from_items(json.loads(stored)) if stored else None


def _add_column(tx: Tx, dialect: str, column: str) -> None:
    """Tables made before a column existed get it (NULL for their tokens: no expiry, no
    account)."""
    if dialect == "postgres":
        tx.execute(f"ALTER TABLE api_tokens ADD COLUMN IF NOT EXISTS {column} TEXT")
    elif column not in {row[1] for row in tx.execute("PRAGMA table_info(api_tokens)")}:
        tx.execute(f"ALTER TABLE api_tokens ADD COLUMN {column} TEXT")


def revoke_account(tx: Tx, account: str) -> int:
    """Revoke every live token issued for a web user's account (its sign-in sessions), in the
    caller's transaction; how many were revoked."""
    rows = tx.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE account = ? AND revoked_at IS NULL"
        " RETURNING token_id", (datetime.now(UTC).isoformat(), account))
    if rows:
        _count_revocation(tx)
    return len(rows)


@dataclass(frozen=True)
class _Verified:
    """A token found valid while the revocation generation was `generation`."""

    principal: Principal
    expires_at: datetime | None
    generation: int


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._verified: dict[str, _Verified] = {}  # by the token's SHA-256
        self._lock = threading.Lock()
        with db.transaction() as tx:
            tx.execute(_SCHEMA)
            _add_scope_column(tx, db.dialect)
            _add_column(tx, db.dialect, "expires_at")
            _add_column(tx, db.dialect, "account")
            tx.execute(_REVOCATIONS)
            tx.execute("INSERT INTO api_token_revocations (singleton, generation) VALUES (1, 0)"
                       " ON CONFLICT (singleton) DO NOTHING")

    def create(self, role: Role, label: str, provider_id: UUID | None = None,
               scope: Scope | None = None, expires_at: datetime | None = None,
               account: str | None = None) -> IssuedToken:
        if role is Role.PROVIDER and provider_id is None:
            raise ValueError("a provider token needs --provider-id")
        if role is not Role.PROVIDER and provider_id is not None:
            raise ValueError("only provider tokens are bound to a provider id")
        if scope is not None and role is not Role.REGULATOR:
            raise ValueError("only regulator tokens are scoped")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_id, token_hash, role, label, provider_id,"
                " created_at, scope, expires_at, account) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (token_id, _hash(secret), role.value, label,
                 str(provider_id) if provider_id else None, datetime.now(UTC).isoformat(),
                 json.dumps(scope.items(), sort_keys=True) if scope else None,
                 expires_at.astimezone(UTC).isoformat() if expires_at else None, account),
            )
        principal = Principal(token_id, role, label, provider_id, scope, account)
        return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", principal)

    def authenticate(self, token: str) -> Principal | None:
        """The principal `token` stands for, or None if it is unknown, revoked or expired.
        A token verified since the last revocation anywhere is not looked up again."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        # The generation is read before the token is looked up: a revocation committed after
        # this read counts the generation past it, so what is kept below is checked again.
        generation = self._generation()
        key = _hash(token)
        with self._lock:
            verified = self._verified.get(key)
        if verified is None or verified.generation != generation:
            verified = self._look_up(token_id, secret, generation)
            if verified is None:
                return None
            with self._lock:
                if len(self._verified) >= KEPT_TOKENS:
                    self._verified.clear()
                self._verified[key] = verified
        if verified.expires_at is not None and verified.expires_at <= datetime.now(UTC):
            return None
        return verified.principal

    def _generation(self) -> int:
        rows = self.db.query(
            "SELECT generation FROM api_token_revocations WHERE singleton = 1")
        return int(rows[0][0]) if rows else 0

    def _look_up(self, token_id: str, secret: str, generation: int) -> _Verified | None:
        rows = self.db.query(
            "SELECT token_hash, role, label, provider_id, scope, expires_at, account"
            " FROM api_tokens WHERE token_id = ? AND revoked_at IS NULL",
            (token_id,),
        )
        if not rows or not hmac.compare_digest(rows[0][0], _hash(secret)):
            return None
        _, role, label, provider_id, scope, expires_at, account = rows[0]
        principal = Principal(token_id, Role(role), label,
                              UUID(provider_id) if provider_id else None, _scope_of(scope),
                              account)
        return _Verified(principal, datetime.fromisoformat(expires_at) if expires_at else None,
                         generation)

    def revoke(self, token_id: str) -> bool:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL"
                " RETURNING token_id",
                (datetime.now(UTC).isoformat(), token_id),
            )
            if rows:
                _count_revocation(tx)
        return bool(rows)

    def list(self) -> list[tuple[str, str, str, str | None, str, str | None, str | None]]:
        """(token id, role, label, provider id, created, revoked, scope as `key=value ...`)."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT token_id, role, label, provider_id, created_at, revoked_at, scope"
                " FROM api_tokens ORDER BY created_at"
            )
        described = [(*r[:6], s.describe() if (s := _scope_of(r[6])) else None) for r in rows]
        return [tuple(r) for r in described]


_bearer = HTTPBearer(auto_error=False)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def admission_refusal(principal: Principal, roles: Iterable[Role], *,
                      honours_scope: bool) -> str | None:
    """Why `principal` may not use a route admitting `roles`, or None if it may. A scoped
    principal only where the route `honours_scope` (enforces it, record by record), so no route
    can serve a scoped token more than its scope. The one rule of admission: the API's guard
    (`require`) and the web pages (council.services.integrator.web.pages) both ask it."""
    allowed = frozenset(roles)
    if principal.role not in allowed:
        return (f"role {principal.role.value} may not do this; "
                f"allowed: {', '.join(sorted(r.value for r in allowed))}")
    if principal.scope is not None and not honours_scope:
        return (f"this token is scoped ({principal.scope.describe()}); only what honours a "
                "scope serves it: the audit API (/audit/...) and, in the web pages, the audit "
                "timeline and the pages of the records in scope")
    return None


def require(*roles: Role, honours_scope: bool = False) -> Callable[..., Principal]:
    """A FastAPI dependency admitting only `roles`; a scoped token only where the route
    `honours_scope` (see `admission_refusal`)."""

    def guard(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Principal:
        if credentials is None:
            raise _unauthorised("missing bearer token (Authorization: Bearer <token>)")
        store: TokenStore = request.app.state.tokens
        principal = store.authenticate(credentials.credentials)
        if principal is None:
            raise _unauthorised("invalid or revoked token")
        refusal = admission_refusal(principal, roles, honours_scope=honours_scope)
        if refusal is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=refusal)
        return principal

    return guard


@contextmanager
def acting_as(request: Request, principal: Principal) -> Iterator[CommandContext]:
    """Run a command as `principal`, in the request's correlation: its events record both."""
    ctx = CommandContext(
        actor=principal.actor,
        organisation=str(principal.provider_id) if principal.provider_id else "council",
        correlation_id=getattr(request.state, "correlation_id", None) or new_correlation_id(),
    )
    with command_context(ctx):
        yield ctx
