"""Signing in and out. A failed sign-in, and the throttle it may begin, are recorded on the
audit trail (SignInFailed, SignInThrottled), with no password in them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from council.kernel.context import CommandContext, command_context, new_correlation_id
from council.platform.accounts import Throttle
from council.services.integrator.application import Integrator
from council.services.integrator.domain.commands import SignInFailure
from council.services.integrator.web import forms
from council.services.integrator.web.pages import Form, Posted, SignedIn, router
from council.services.integrator.web.render import page, redirect
from council.services.integrator.web.session import (
    client_address,
    current_viewer,
    end_session,
    keep_session,
    local_path,
    remember_nonce,
    sign_in,
    sign_in_nonce,
    sign_in_nonce_ok,
    sign_out,
)

routes = router()
root = APIRouter(include_in_schema=False)


@root.get("/")
def site_root() -> Response:
    """The service's root is the pages' front door."""
    return RedirectResponse("/ui/", status_code=303)


@routes.get("", response_class=HTMLResponse)
@routes.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    viewer = current_viewer(request)
    return RedirectResponse(viewer.home if viewer else "/ui/sign-in", status_code=303)


def _form(request: Request, state: forms.FormState, status: int = 200) -> HTMLResponse:
    nonce = sign_in_nonce(request)
    response = page(request, "sign_in.html", None, status=status, form=state, nonce=nonce,
                    next=local_path(request.query_params.get("next") or state.value("next")))
    remember_nonce(response, request, nonce)
    return response


@routes.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> Response:
    if current_viewer(request):
        return RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    return _form(request, forms.FormState())


@routes.post("/sign-in", response_class=HTMLResponse)
def sign_in_posted(request: Request, values: Form) -> Response:
    state = forms.FormState({k: v for k, v in values.items() if k != "password"})
    if not sign_in_nonce_ok(request, state.value("nonce")):
        state.errors[forms.FORM_LEVEL] = ("The sign-in form had expired; it has been reloaded, "
                                          "please sign in again")
        return _form(request, state, 400)
    username, password = state.value("username"), (values.get("password") or [""])[0]
    if not username:
        state.errors["username"] = "Enter your username"
    if not password:
        state.errors["password"] = "Enter your password"  # noqa: S105 - a message
    if state.errors:
        return _form(request, state, 422)
    outcome = sign_in(request, username, password)
    if outcome.failure is not None:
        _record(request, outcome.failure)
    if outcome.throttle is not None:
        return _throttled(request, state, outcome.throttle)
    if outcome.token is None:
        state.errors[forms.FORM_LEVEL] = "The username or password is not right"
        return _form(request, state, 401)
    response = redirect(request, local_path(state.value("next")))
    keep_session(response, request, outcome.token)
    return response


def _throttled(request: Request, state: forms.FormState, throttle: Throttle) -> HTMLResponse:
    """429, saying when to try again (and Retry-After, for anything that reads it)."""
    now = datetime.now(UTC)
    wait = throttle.retry_after(now)
    minutes = max(1, round(wait / 60))
    whose = "this account" if throttle.by == "account" else "this network address"
    state.errors[forms.FORM_LEVEL] = (
        f"Too many failed sign-ins to {whose}: signing in is paused until "
        f"{throttle.until:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''}). "
        "Try again then; until then even the right password is refused.")
    response = _form(request, state, 429)
    response.headers["Retry-After"] = str(wait)
    return response


def _record(request: Request, failure: SignInFailure) -> None:
    """Put the failure (and the throttle it began) on the audit trail, as the integrator's
    event, before answering."""
    app = request.app.state.runtime.app
    assert isinstance(app, Integrator)
    context = CommandContext(actor=f"sign-in:{client_address(request)}"[:200],
                             organisation="council",
                             correlation_id=getattr(request.state, "correlation_id", None)
                             or new_correlation_id())
    with command_context(context):
        app.record_sign_in_failure(failure)


@routes.post("/sign-out")
def sign_out_posted(request: Request, viewer: SignedIn, _: Posted) -> Response:
    sign_out(request, viewer)
    response = redirect(request, "/ui/sign-in", "You have signed out")
    end_session(response)
    return response
