"""One error body for every JSON API answer that is not a success: RFC 9457 problem details.

Every error is ``Content-Type: application/problem+json``::

    {"type": "urn:council:problem:invalid-input", "title": "Invalid input", "status": 422,
     "detail": "query.offset: Input should be less than or equal to 1000000",
     "instance": "/deliveries", "correlation_id": "...",
     "errors": [{"field": "query.offset", "message": "Input should be less than ..."}]}

- ``type`` says what kind of problem it is (a URN of ours, see PROBLEM_TYPES; ``about:blank``
  when the HTTP status says it all, as RFC 9457 advises); ``title`` names that kind;
- ``status`` is the HTTP status; ``detail`` says what went wrong this time, in words;
- ``instance`` is the path asked for; ``correlation_id`` the request's (also a header), to find
  it in the logs;
- ``errors`` (for 422 only) names each field at fault: ``body.<field>``, ``query.<name>``,
  ``path.<name>`` or ``header.<name>``, with the reason (``message``) and, for a program to
  act on, the kind of error (``type``, pydantic's: missing, string_too_long, value_error...).
  What was sent is never repeated: a body may hold personal data.

A lost database or broker answers 503 with ``Retry-After``; anything unforeseen 500, with the
correlation id to look it up and nothing of the fault itself.

`install(api)` translates every exception into this body; `declare(api)` adds it to the
OpenAPI description of every operation, so no route can leave an error undeclared. The web
pages under /ui keep their own answers (HTML pages and redirects).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import psycopg
import psycopg_pool
import structlog
from eventsourcing import persistence
from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from council.kernel.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InfrastructureUnavailable,
    InvalidInput,
    NotAuthorised,
    NotFound,
)

log = structlog.get_logger("problems")

PROBLEM_JSON = "application/problem+json"
# Every operation declares these (see `declare`).
PROBLEM_STATUSES = (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503)
RETRY_AFTER_S = 5  # what a 503 tells a client to wait before trying again
_PREFIX = "urn:council:problem:"
PROBLEM_TYPES = {
    "invalid-input": "Invalid input",  # 422: a field breaks a rule; `errors` names it
    "rule-broken": "Refused by a business rule",  # 409
    "not-authorised": "Beyond the authority delegated",  # 403: the scheme of delegation
    "concurrent-change": "Changed by someone else first",  # 409: safe to retry
    "not-found": "Not found",  # 404
    "unavailable": "Service temporarily unavailable",  # 503: a lost database or broker
    "internal": "Internal error",  # 500
}
_WEB_PAGES = "/ui"  # HTML pages: their own answers, not problem details
_MAX_DETAIL = 2000


class FieldError(BaseModel):
    field: str = Field(description="where: body.<field>, query.<name>, path.<name> or "
                       "header.<name> (body alone for the body as a whole)")
    message: str = Field(description="what is wrong with it")
    type: str | None = Field(default=None, description="the kind of error, for a program to "
                             "act on: pydantic's error type (missing, string_too_long, enum, "
                             "value_error, ...)")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (application/problem+json)."""

    type: str = Field(default="about:blank", description="the kind of problem: a URN "
                      "urn:council:problem:<kind>, or about:blank when the status says it all")
    title: str = Field(description="the kind of problem, in words")
    status: int = Field(description="the HTTP status code")
    detail: str = Field(description="what went wrong this time")
    instance: str | None = Field(default=None, description="the path asked for")
    correlation_id: str | None = Field(default=None, description="the request's correlation "
                                       "id (also the x-correlation-id header)")
    errors: list[FieldError] | None = Field(default=None, description="the fields at fault "
                                            "(422)")


def problem(request: Request | None, status: int, detail: str, *, kind: str | None = None,
            errors: Sequence[FieldError] = (),
            headers: dict[str, str] | None = None) -> JSONResponse:
    """The problem details answer for `status`."""
    title = PROBLEM_TYPES[kind] if kind else _phrase(status)
    body = Problem(
        type=f"{_PREFIX}{kind}" if kind else "about:blank", title=title, status=status,
        detail=detail[:_MAX_DETAIL] or title,
        instance=request.url.path if request is not None else None,
        correlation_id=getattr(request.state, "correlation_id", None) if request else None,
        errors=list(errors) or None,
    )
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status,
                        media_type=PROBLEM_JSON, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _message(error: dict[str, Any]) -> str:
    return str(error.get("msg", "")).removeprefix("Value error, ")


def field_name(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def unavailable(request: Request | None, detail: str) -> JSONResponse:
    return problem(request, 503, detail, kind="unavailable",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


# Faults of a database that was there and went away (or is restarting): the request may well
# succeed in a moment, so 503 with Retry-After, not 500.
DATABASE_FAULTS: tuple[type[Exception], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout,
    persistence.OperationalError, persistence.InterfaceError,
    persistence.ConnectionUnavailableError,
)


def database_fault(exc: BaseException) -> InfrastructureUnavailable | None:
    """The exception as InfrastructureUnavailable if it says the database is lost (None if
    it says something else). SQLite's "database is locked" after its own wait counts too."""
    if isinstance(exc, DATABASE_FAULTS) or (
        isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    ):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return InfrastructureUnavailable(f"the database is unavailable: {reason[:300]}")
    return None


def install(api: FastAPI) -> None:
    """Answer every exception an API route raises with problem details."""

    @api.exception_handler(RequestValidationError)
    async def _unprocessable(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(_WEB_PAGES):
            return await request_validation_exception_handler(request, exc)
        errors = [FieldError(field=field_name(e.get("loc", ())), message=_message(e),
                             type=e.get("type")) for e in exc.errors()]
        return invalid(request, errors)

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(_WEB_PAGES):
            return await http_exception_handler(request, exc)
        if exc.status_code < 400:  # not an error (a redirect): as FastAPI would answer it
            return await http_exception_handler(request, exc)
        if exc.status_code == 422 and isinstance(exc.detail, list):  # fields, as pydantic's
            return invalid(request, [
                FieldError(field=field_name(e.get("loc", ())), message=_message(e),
                           type=e.get("type")) for e in exc.detail if isinstance(e, dict)])
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 503:
            headers.setdefault("Retry-After", str(RETRY_AFTER_S))
        return problem(request, exc.status_code, detail, headers=headers)

    @api.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        where = f"body.{exc.field}" if exc.field else "body"
        return invalid(request, [FieldError(field=where, message=exc.message,
                                            type="value_error")])

    @api.exception_handler(DomainRuleBroken)
    async def _conflict(request: Request, exc: DomainRuleBroken) -> Response:
        return problem(request, 409, str(exc), kind="rule-broken")

    @api.exception_handler(NotAuthorised)
    async def _not_authorised(request: Request, exc: NotAuthorised) -> Response:
        return problem(request, 403, str(exc), kind="not-authorised")

    @api.exception_handler(ConcurrentChange)
    async def _concurrent(request: Request, exc: ConcurrentChange) -> Response:
        return problem(request, 409, str(exc), kind="concurrent-change")

    @api.exception_handler(NotFound)
    async def _missing(request: Request, exc: NotFound) -> Response:
        return problem(request, 404, str(exc.args[0]) if exc.args else "not found",
                       kind="not-found")

    @api.exception_handler(InfrastructureUnavailable)
    async def _unavailable(request: Request, exc: InfrastructureUnavailable) -> Response:
        return unavailable(request, str(exc))

    for fault in (*DATABASE_FAULTS, sqlite3.OperationalError):
        api.add_exception_handler(fault, _database)


async def _database(request: Request, exc: Exception) -> Response:
    lost = database_fault(exc)
    if lost is None:
        return internal_error(request, exc)
    log.warning("database_unavailable", path=request.url.path, error=str(lost))
    return unavailable(request, str(lost))


def invalid(request: Request, errors: Sequence[FieldError]) -> JSONResponse:
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return problem(request, 422, detail or "invalid input", kind="invalid-input",
                   errors=errors)


def internal_error(request: Request, exc: BaseException) -> Response:
    """500, saying nothing of the fault (it is logged, under the correlation id)."""
    log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__,
              error=str(exc)[:500], exc_info=exc)
    if request.url.path.startswith(_WEB_PAGES):  # a page, not an API: as Starlette says it
        return PlainTextResponse("Internal Server Error", status_code=500)
    return problem(request, 500, "something went wrong on our side; quote the "
                   "correlation_id if you report it", kind="internal")


# ---------------------------------------------------------------------------- OpenAPI

_SCHEMA_REF = "#/components/schemas/"


def declare(api: FastAPI) -> None:
    """Declare the problem details answers on every operation of the app's OpenAPI description
    (computed when it is first asked for, so routes added later are covered too). A status an
    operation declares itself keeps its description; one it declares with a body of its own
    (as /ready does for 503) keeps that body."""
    described = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        schema = described()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        described_problem = Problem.model_json_schema(ref_template=_SCHEMA_REF + "{model}")
        components.update(described_problem.pop("$defs", {}))  # FieldError
        components["Problem"] = described_problem
        content = {PROBLEM_JSON: {"schema": {"$ref": _SCHEMA_REF + "Problem"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status in PROBLEM_STATUSES:
                    declared = responses.setdefault(str(status), {})
                    declared.setdefault("description", _phrase(status))
                    if _is_default_validation(declared) or "content" not in declared:
                        declared["content"] = content
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        api.openapi_schema = schema
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def _is_default_validation(declared: dict[str, Any]) -> bool:
    """FastAPI's own 422 declaration (its old body), replaced by problem details."""
    ref = (declared.get("content", {}).get("application/json", {}).get("schema", {})
           .get("$ref", ""))
    return bool(ref.endswith("/HTTPValidationError"))
