"""What every page route shares: the router, the signed-in viewer, the "as of" date, posted
forms with their CSRF check, and the pages for "not allowed" and "not found"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from services.integrator.api.audit import RecordedRead
from services.integrator.projections.asof import as_of_moment
from services.integrator.web import forms
from services.integrator.web.render import page, start_clock
from services.integrator.web.session import Viewer, csrf_ok, current_viewer, signed_in
from shared.contracts.integrator import AuditEndpoint
from shared.identity import Role
from shared.text import without_controls

SignedIn = Annotated[Viewer, Depends(signed_in)]


def recorded_page_read(request: Request) -> Iterator[None]:
    """A regulator's every page, and the audit timeline whoever opens it, is an audit read, and
    recorded as the audit API records its reads: AuditReadStarted (who, which page and filters)
    before the page is built, AuditReadFinished (one page, whether it was built) after."""
    viewer = current_viewer(request) if request.method == "GET" else None
    path = request.url.path
    if viewer is None or path.startswith("/ui/static") or not (
            viewer.role is Role.REGULATOR or path.startswith("/ui/audit")):
        yield
        return
    cleaned = ((without_controls(k)[:100], without_controls(v)[:200])
               for k, v in request.query_params.items() if k != "path")
    asked = {k: v for k, v in cleaned if k and v}
    read = RecordedRead(request, viewer.principal, AuditEndpoint.PAGE, {"path": path, **asked})
    built = False
    try:
        yield
        built = True
    finally:
        read.finish(1 if built else 0, built)


def router() -> APIRouter:
    return APIRouter(prefix="/ui", include_in_schema=False,
                     dependencies=[Depends(start_clock), Depends(recorded_page_read)])


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
