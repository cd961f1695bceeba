"""Signing in and out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.integrator.web import forms
from services.integrator.web.pages import Form, Posted, SignedIn, router
from services.integrator.web.render import page, redirect
from services.integrator.web.session import (
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
    token = sign_in(request, username, password) if not state.errors else None
    if token is None:
        if not state.errors:
            state.errors[forms.FORM_LEVEL] = "The username or password is not right"
        return _form(request, state, 401 if not state.field_errors() else 422)
    response = redirect(request, local_path(state.value("next")))
    keep_session(response, request, token)
    return response


@routes.post("/sign-out")
def sign_out_posted(request: Request, viewer: SignedIn, _: Posted) -> Response:
    sign_out(request, viewer)
    response = redirect(request, "/ui/sign-in", "You have signed out")
    end_session(response)
    return response
