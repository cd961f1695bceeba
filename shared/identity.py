"""Identity and access shared by all services: roles, bearer tokens, and the FastAPI guard.

Tokens are random secrets shown once at creation; only their SHA-256 is stored (a token has
256 bits of entropy, so a fast hash is enough: there is nothing to brute-force). Every write
endpoint names the roles it accepts; the guard answers 401 without a valid token and 403 for
the wrong role, and sets the command context so each event records its actor.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.context import CommandContext, command_context, new_correlation_id
from shared.sql import Database

TOKEN_PREFIX = "cit"  # noqa: S105 - a label, not a secret


class Role(StrEnum):
    INTEGRATOR_ADMIN = "integrator_admin"
    COMMISSIONER = "commissioner"
    COUNCIL_STAFF = "council_staff"  # read-only council staff
    PROVIDER = "provider"  # bound to one provider id
    REGULATOR = "regulator"  # read-only, audit


COUNCIL_WRITERS = (Role.INTEGRATOR_ADMIN, Role.COMMISSIONER)
COUNCIL_READERS = (*COUNCIL_WRITERS, Role.COUNCIL_STAFF, Role.REGULATOR)
ANY_ROLE = tuple(Role)


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    label: str
    provider_id: UUID | None = None

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
    " label TEXT NOT NULL, provider_id TEXT, created_at TEXT NOT NULL, revoked_at TEXT)"
)


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        with db.transaction() as tx:
            tx.execute(_SCHEMA)

    def create(self, role: Role, label: str, provider_id: UUID | None = None) -> IssuedToken:
        if role is Role.PROVIDER and provider_id is None:
            raise ValueError("a provider token needs --provider-id")
        if role is not Role.PROVIDER and provider_id is not None:
            raise ValueError("only provider tokens are bound to a provider id")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO api_tokens (token_id, token_hash, role, label, provider_id,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, _hash(secret), role.value, label,
                 str(provider_id) if provider_id else None, datetime.now(UTC).isoformat()),
            )
        principal = Principal(token_id, role, label, provider_id)
        return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", principal)

    def authenticate(self, token: str) -> Principal | None:
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or not token_id or not secret:
            return None
        with self.db.reading() as tx:
            rows = tx.execute(
                "SELECT token_hash, role, label, provider_id FROM api_tokens"
                " WHERE token_id = ? AND revoked_at IS NULL",
                (token_id,),
            )
        if not rows or not hmac.compare_digest(rows[0][0], _hash(secret)):
            return None
        _, role, label, provider_id = rows[0]
        return Principal(token_id, Role(role), label, UUID(provider_id) if provider_id else None)

    def revoke(self, token_id: str) -> bool:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL"
                " RETURNING token_id",
                (datetime.now(UTC).isoformat(), token_id),
            )
        return bool(rows)

    def list(self) -> list[tuple[str, str, str, str | None, str, str | None]]:
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT token_id, role, label, provider_id, created_at, revoked_at"
                " FROM api_tokens ORDER BY created_at"
            )
        return [tuple(r) for r in rows]


_bearer = HTTPBearer(auto_error=False)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def require(*roles: Role) -> Callable[..., Principal]:
    """A FastAPI dependency admitting only `roles`."""
    allowed = frozenset(roles)

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
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value} may not do this; "
                f"allowed: {', '.join(sorted(r.value for r in allowed))}",
            )
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
