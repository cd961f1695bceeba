"""Every other address under /ui: the friendly "not found" page (included last, so every real
page is matched first)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.services.integrator.web.pages import error_page, router

routes = router()


@routes.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                  response_class=HTMLResponse)
def missing(rest: str, request: Request) -> HTMLResponse:
    return error_page(request, 404, f"There is no page at {request.url.path[:200]}. "
                                    "It may have moved: start again from the menu.")
