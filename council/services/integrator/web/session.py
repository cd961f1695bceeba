"""Signing in to the council's pages, the session cookie, CSRF protection and what each role may
do on the pages.

A sign-in checks the account's password (council.platform.accounts) and issues an expiring API token
for its role in the shared identity store, naming the account; the cookie carries that token. So a
session is revoked by signing out (the token is revoked), expires with the token, ends when the
account is disabled or its password changes (checked on every request), and the pages can
present it to the provider registry, which accepts it like any token: every event records the
person as actor. Sign-in is throttled per account name and per client address
(council.platform.accounts.SignInThrottle): past the limit, even the right password is refused for a
while.

The cookie is HttpOnly and SameSite=Lax, scoped to /ui, and Secure when the page was served over
HTTPS. Every form carries a CSRF token derived from the session's secret (HMAC), checked on each
POST; the sign-in form, before there is a session, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi import HTTPException, Request, Response

from council.kernel.contracts.integrator import SignInRefusal, ThrottledBy
from council.platform.accounts import Attempt, Refusal, SignInThrottle, Throttle, UserStore
from council.platform.identity import COUNCIL_WRITERS, Principal, Role, TokenStore
from council.services.integrator.domain.access import Record, Sight
from council.services.integrator.domain.commands import SignInFailure, ThrottleBegun

SESSION_COOKIE = "council_session"
SIGN_IN_COOKIE = "council_sign_in"
COOKIE_PATH = "/ui"
SESSION_LENGTH = timedelta(hours=8)  # a working day; then sign in again

ROLE_NAMES = {
    Role.INTEGRATOR_ADMIN: "Integrator admin",
    Role.COMMISSIONER: "Commissioner",
    Role.COUNCIL_STAFF: "Council staff (read only)",
    Role.REGULATOR: "Regulator (read only)",
}
# A page of one record: its kind and id (as links to it are written).
_RECORD_PAGE = re.compile(r"^/ui/(providers|agreements|needs)/([0-9a-fA-F-]{36})(?:[/?#]|$)")
_RECORD_KINDS: dict[str, Record] = {"providers": "provider", "agreements": "agreement",
                                    "needs": "need"}


@dataclass(frozen=True)
class Viewer:
    """The person signed in to the pages, and what their role lets them do there."""

    principal: Principal
    token: str
    sight: Sight

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def name(self) -> str:
        return self.principal.label

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role.value)

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def may_commission(self) -> bool:
        """Needs, decisions, agreements and their changes: the council's writers."""
        return self.role in COUNCIL_WRITERS

    @property
    def may_register(self) -> bool:
        """Register a provider, add its capabilities and standing: the council's writers."""
        return self.role in COUNCIL_WRITERS

    @property
    def may_decide(self) -> bool:
        """Lifecycle decisions (review, approve, suspend...) shape the market: admins only."""
        return self.role is Role.INTEGRATOR_ADMIN

    @property
    def scoped(self) -> bool:
        return not self.sight.whole

    def may_open(self, href: str) -> bool:
        """Whether a link to this page of ours leads somewhere the viewer may look: always,
        unscoped; scoped, the audit timeline and the pages of records within the scope (the
        pages themselves refuse the rest: council.services.integrator.web.pages.page_access)."""
        if not self.scoped:
            return True
        if href == "/ui/audit" or href.startswith(("/ui/audit?", "/ui/audit#")):
            return True
        found = _RECORD_PAGE.match(href)
        return found is not None and self.sight.sees(_RECORD_KINDS[found.group(1)],
                                                     found.group(2))

    @property
    def home(self) -> str:
        """Where "home" is: what needs attention, or for a scoped viewer the record its scope
        names (or the audit timeline)."""
        scope = self.principal.scope
        if scope is None:
            return "/ui/home"
        if scope.provider is not None:
            return f"/ui/providers/{scope.provider}"
        if scope.agreement is not None:
            return f"/ui/agreements/{scope.agreement}"
        return "/ui/audit"


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"council-csrf", hashlib.sha256).hexdigest()


def tokens_of(request: Request) -> TokenStore:
    store: TokenStore = request.app.state.runtime.tokens
    return store


def users_of(request: Request) -> UserStore:
    """The accounts, in the identity database the service's token store uses."""
    state = request.app.state
    users: UserStore | None = getattr(state, "web_users", None)
    if users is None:
        users = UserStore(tokens_of(request).db)
        state.web_users = users
    return users


def current_viewer(request: Request) -> Viewer | None:
    """The person the session cookie names, checked once per request (kept on the request)."""
    known: object = getattr(request.state, "viewer", _UNKNOWN)
    if known is _UNKNOWN:
        known = request.state.viewer = _viewer(request)
    assert known is None or isinstance(known, Viewer)
    return known


_UNKNOWN = object()  # not yet looked for


def _viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = tokens_of(request).authenticate(token)
    if principal is None or principal.role not in ROLE_NAMES:
        return None
    if not users_of(request).session_valid(principal):
        return None  # its account was disabled, or its password changed, since
    return Viewer(principal, token, Sight(principal, request.app.state.runtime.event_log))


def throttle_of(request: Request) -> SignInThrottle:
    """The sign-in throttle, counting in the identity database (shared by every process)."""
    state = request.app.state
    throttle: SignInThrottle | None = getattr(state, "sign_in_throttle", None)
    if throttle is None:
        throttle = state.sign_in_throttle = SignInThrottle(tokens_of(request).db)
    return throttle


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def local_path(target: str | None, default: str = "/ui/") -> str:
    """`target` if it is a page of ours (never another site: no open redirects)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def signed_in(request: Request) -> Viewer:
    """A FastAPI dependency: the viewer, or a redirect to the sign-in page and back."""
    viewer = current_viewer(request)
    if viewer is None:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first",
                            headers={"Location": f"/ui/sign-in?next={quote(back)}"})
    return viewer


@dataclass(frozen=True)
class SignInOutcome:
    """A new session's token; or the throttle that refused the sign-in; or the failure, to be
    recorded on the trail (with the throttle it began, if it did)."""

    token: str | None = None
    throttle: Throttle | None = None
    failure: SignInFailure | None = None


def sign_in(request: Request, username: str, password: str) -> SignInOutcome:
    """Check the name and password, unless sign-in to the name (or from the address) is
    throttled; a new session for the account if they are right."""
    address = client_address(request)
    throttle = throttle_of(request)
    attempt = throttle.begin(username, address)
    if isinstance(attempt, Throttle):
        return SignInOutcome(throttle=attempt)  # not even checked: the right one is refused too
    user, refusal = users_of(request).check(username, password)
    if user is not None:
        throttle.succeeded(attempt, username)
        issued = tokens_of(request).create(user.role, user.display_name,
                                           expires_at=datetime.now(UTC) + SESSION_LENGTH,
                                           account=user.username)
        return SignInOutcome(token=issued.token)
    began = throttle.begun_by(attempt, username, address)
    return SignInOutcome(throttle=began, failure=_failure(username, address, refusal, attempt,
                                                          began, throttle))


def _failure(username: str, address: str, refusal: Refusal | None, attempt: Attempt,
             began: Throttle | None, throttle: SignInThrottle) -> SignInFailure:
    reason = SignInRefusal((refusal or Refusal.WRONG_PASSWORD).value)
    known = reason is not SignInRefusal.UNKNOWN_ACCOUNT
    return SignInFailure(
        account=username.strip().lower() if known else None, address=address[:100],
        reason=reason, account_failures=attempt.account_failures,
        address_failures=attempt.address_failures,
        throttle=ThrottleBegun(by=ThrottledBy(began.by), failures=began.failures,
                               window_seconds=int(throttle.window.total_seconds()),
                               until=began.until) if began else None)


def sign_out(request: Request, viewer: Viewer) -> None:
    tokens_of(request).revoke(viewer.principal.token_id)


def _cookie(response: Response, request: Request, name: str, value: str,
            max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def keep_session(response: Response, request: Request, token: str) -> None:
    _cookie(response, request, SESSION_COOKIE, token, int(SESSION_LENGTH.total_seconds()))
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def sign_in_nonce(request: Request) -> str:
    """The sign-in form's double-submit value (the browser's, if it has one already)."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)


def remember_nonce(response: Response, request: Request, nonce: str) -> None:
    _cookie(response, request, SIGN_IN_COOKIE, nonce, 3600)


def sign_in_nonce_ok(request: Request, given: str) -> bool:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected, given)


def csrf_ok(viewer: Viewer, given: str) -> bool:
    return bool(given) and hmac.compare_digest(viewer.csrf, given)
