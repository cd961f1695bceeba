"""The pages' own stylesheet and script, served from the package (nothing from elsewhere: the
pages work offline)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from council.services.integrator.web.render import HERE

routes = APIRouter(prefix="/ui/static", include_in_schema=False)

_TYPES = {"site.css": "text/css; charset=utf-8", "site.js": "text/javascript; charset=utf-8"}


@routes.get("/{name}")
def static(name: str) -> Response:
    if name not in _TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response((HERE / "static" / name).read_bytes(), media_type=_TYPES[name],
                    headers={"Cache-Control": "public, max-age=300"})
