"""What every page route shares: the router, the signed-in viewer, the "as of" date, posted
forms with their CSRF check, and the pages for "not allowed" and "not found"."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from services.integrator.projections.asof import as_of_moment
from services.integrator.web import forms
from services.integrator.web.render import page, start_clock
from services.integrator.web.session import Viewer, csrf_ok, signed_in

SignedIn = Annotated[Viewer, Depends(signed_in)]


def router() -> APIRouter:
    return APIRouter(prefix="/ui", include_in_schema=False,
                     dependencies=[Depends(start_clock)])


class AsOfDate:
    """The page's "as of" date (`?as_of=2025-03-31`): None for now."""

    def __init__(self, request: Request) -> None:
        self.text = request.query_params.get("as_of", "").strip()
        self.moment: datetime | None = None
        self.error: str | None = None
        if self.text:
            try:
                self.moment = as_of_moment(self.text)
            except ValueError:
                self.error = "Enter a date as YYYY-MM-DD"

    @property
    def day(self) -> date | None:
        return self.moment.date() if self.moment else None

    def query(self) -> str:
        return f"as_of={self.text}" if self.moment else ""


AsOf = Annotated[AsOfDate, Depends()]


async def _form(request: Request) -> dict[str, list[str]]:
    # Read here, in an async dependency, so the route itself can be a plain function that
    # FastAPI runs in its thread pool (commands and HTTP calls block).
    return forms.parse(await request.body())


async def _posted(request: Request, viewer: SignedIn) -> dict[str, list[str]]:
    """The posted form, once its CSRF token is the session's."""
    values = await _form(request)
    if not csrf_ok(viewer, (values.pop("csrf_token", None) or [""])[0]):
        raise HTTPException(403, "the form's security token is missing or stale: reload the "
                                 "page and try again")
    return values


Form = Annotated[dict[str, list[str]], Depends(_form)]  # no session yet (signing in)
Posted = Annotated[dict[str, list[str]], Depends(_posted)]


def forbidden(request: Request, viewer: Viewer, what: str) -> HTMLResponse:
    return page(request, "problem.html", viewer, status=403, title="Not allowed",
                message=f"Your role ({viewer.role_name}) may not {what}.")


def not_found(request: Request, viewer: Viewer, what: str) -> HTMLResponse:
    return page(request, "problem.html", viewer, status=404, title="Not found",
                message=f"There is no {what}.")
