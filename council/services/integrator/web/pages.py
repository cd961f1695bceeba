"""What every page route shares: the router, who may open which page (`page_access`), the
signed-in viewer, the "as of" date, posted forms with their CSRF check, and the pages for "not
allowed" and "not found"."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from datetime import date, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from council.kernel.clock import moment_text
from council.kernel.contracts.integrator import AuditEndpoint
from council.kernel.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InfrastructureUnavailable,
    NotAuthorised,
    NotFound,
)
from council.kernel.text import without_controls
from council.platform.identity import Role, admission_refusal
from council.platform.problems import database_fault
from council.services.integrator.api.audit import RecordedRead
from council.services.integrator.domain.access import Record
from council.services.integrator.projections.asof import as_of_moment
from council.services.integrator.projections.audit_trail import OutsideScope
from council.services.integrator.web import forms
from council.services.integrator.web.render import page, start_clock
from council.services.integrator.web.session import (
    ROLE_NAMES,
    Viewer,
    csrf_ok,
    current_viewer,
    signed_in,
)

log = structlog.get_logger("web")

SignedIn = Annotated[Viewer, Depends(signed_in)]

# The pages that honour a scope (council.platform.identity.admission_refusal): the route, and which
# of its path parameters names the record the page is about, which must be within the viewer's
# scope (council.services.integrator.domain.access.Sight). Every other page shows the whole network,
# or runs a command, and is refused to a scoped viewer; a page added later is refused until it is
# listed here.
SCOPED_PAGES: dict[str, Record | None] = {
    "/ui": None, "/ui/": None, "/ui/sign-in": None, "/ui/sign-out": None,
    "/ui/audit": None,
    "/ui/providers/{provider_id}": "provider",
    "/ui/agreements/{agreement_id}": "agreement",
    "/ui/needs/{need_id}": "need",
}


class PageRefused(Exception):
    """A page the viewer may not open: answered 403 with the friendly page."""

    def __init__(self, viewer: Viewer, message: str) -> None:
        super().__init__(message)
        self.viewer = viewer
        self.message = message

    def answer(self, request: Request) -> HTMLResponse:
        return page(request, "problem.html", self.viewer, status=403, title="Not allowed",
                    message=self.message)


# What each error status is called on its page.
ERROR_TITLES = {400: "Not understood", 403: "Not allowed", 404: "Not found",
                405: "Not done here", 409: "Could not be done", 413: "Too large",
                422: "Not understood", 429: "Too many requests", 500: "Something went wrong",
                503: "Not available just now"}


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The friendly page for an error status: what happened in words, never a raw body."""
    title = ERROR_TITLES.get(status, "Something went wrong" if status >= 500 else
                             "Could not be done")
    return page(request, "problem.html", current_viewer(request), status=status, title=title,
                message=message, reference=getattr(request.state, "correlation_id", None))


def _not_understood(request: Request, exc: RequestValidationError) -> HTMLResponse:
    """A bad id in a page's address is a page that does not exist; anything else in the
    address is a question asked wrongly."""
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if loc[:1] == ["path"] and loc[-1].endswith("_id"):
            what = loc[-1].removesuffix("_id").replace("_", " ")
            given = str(request.path_params.get(loc[-1], ""))[:60]
            return error_page(request, 404, f"There is no {what} {given}: a {what}'s id "
                                            "looks like 5b81cd6c-2d4a-48c4-a402-594cf3556e25. "
                                            "Check the address, or find it from the lists.")
    fields = ", ".join(sorted({str(e.get("loc", ("", ""))[-1]) for e in exc.errors()}))
    return error_page(request, 400, f"This address asks for something the page does not "
                                    f"understand ({fields}): check it, or start again from "
                                    "the menu.")


class PageRoute(APIRoute):
    """A page's route: a PageRefused raised anywhere in answering it (a dependency included)
    becomes the friendly 403 page, and every other error the friendly page for its status
    (a bad id: 404; a lost database: 503; a fault of ours: 500, logged with its reference),
    never a raw JSON body or a bare "Internal Server Error"."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except PageRefused as refused:
                return refused.answer(request)
            except RequestValidationError as exc:
                return _not_understood(request, exc)
            except HTTPException as exc:
                if exc.status_code < 400:  # a redirect (to sign in)
                    raise
                return error_page(request, exc.status_code, str(exc.detail))
            except NotFound as exc:
                return error_page(request, 404, str(exc.args[0]) if exc.args else "Not found.")
            except (DomainRuleBroken, ConcurrentChange) as exc:
                return error_page(request, 409, str(exc))
            except NotAuthorised as exc:
                return error_page(request, 403, str(exc))
            except InfrastructureUnavailable as exc:
                return _unavailable(request, str(exc))
            except Exception as exc:
                lost = database_fault(exc)
                if lost is not None:
                    return _unavailable(request, str(lost))
                log.exception("page_failed", path=request.url.path)
                return error_page(request, 500, "The page could not be built: the fault is "
                                                "ours and has been logged. Try again in a "
                                                "moment; if it persists, give the reference "
                                                "below to the integrator's administrators.")

        return answer


def _unavailable(request: Request, why: str) -> HTMLResponse:
    response = error_page(request, 503, f"The records cannot be reached just now ({why}). "
                                        "Nothing was lost: try again in a moment.")
    response.headers["Retry-After"] = "5"
    return response


def page_access(request: Request) -> None:
    """Whether the signed-in viewer may open this page at all (the rule the API's guard uses,
    council.platform.identity.admission_refusal), and, for a scoped viewer, whether the record it is
    about is within the scope. Not signed in: the route's own dependency sends them to sign
    in."""
    viewer = current_viewer(request)
    if viewer is None:
        return
    route = getattr(request.scope.get("route"), "path", "")
    refusal = admission_refusal(viewer.principal, tuple(ROLE_NAMES),
                                honours_scope=route in SCOPED_PAGES)
    if refusal is not None:
        raise PageRefused(viewer, _refusal_words(viewer, refusal))
    kind = SCOPED_PAGES.get(route)
    if kind is not None and viewer.scoped:
        record = str(request.path_params.get(f"{kind}_id", ""))
        if not viewer.sight.sees(kind, record):
            raise PageRefused(viewer, f"This {kind} is outside what you may see "
                                      f"({viewer.sight.describe()}).")


def _refusal_words(viewer: Viewer, refusal: str) -> str:
    if viewer.scoped:
        return (f"This page shows more than what you may see ({viewer.sight.describe()}). "
                "You may open the audit timeline and the pages of the records in your scope.")
    return f"Your role ({viewer.role_name}) may not do this: {refusal}."


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
    return APIRouter(prefix="/ui", include_in_schema=False, route_class=PageRoute,
                     dependencies=[Depends(start_clock), Depends(page_access),
                                   Depends(recorded_page_read)])


class AsOfDate:
    """The page's "as of" date (`?as_of=2025-03-31`): None for now. A viewer scoped to a range
    of dates sees the pages as of a moment inside it, by default its end."""

    def __init__(self, request: Request) -> None:
        self.text = request.query_params.get("as_of", "").strip()
        self.moment: datetime | None = None
        self.error: str | None = None
        if self.text:
            try:
                self.moment = as_of_moment(self.text)
            except ValueError:
                self.error = "Enter a date as YYYY-MM-DD"
        viewer = current_viewer(request)
        if viewer is not None and viewer.scoped:
            self._within(viewer)

    def _within(self, viewer: Viewer) -> None:
        try:
            moment = viewer.sight.moment(self.moment)
        except OutsideScope:
            raise PageRefused(viewer, f"{self.text} is outside the dates you may see "
                                      f"({viewer.sight.describe()}).") from None
        if moment is not None and moment != self.moment:
            self.moment = moment
            self.text = moment_text(moment, end_of_day=True)

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
