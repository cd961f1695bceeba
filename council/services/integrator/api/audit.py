"""HTTP entry points of the regulator API: the audit trail streamed as NDJSON, the network state
as of a date, and the log of audit reads. Read-only; for regulators and the council's internal
audit (integrator_admin). A scoped token sees only its scope, and every read is recorded as an
event (who, what, within which scope; then how much was returned) before anything is served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from council.kernel.clock import moment_text, parse_moment
from council.kernel.context import CommandContext, command_context
from council.kernel.contracts.integrator import AuditEndpoint
from council.kernel.text import MAX_OFFSET, QueryName
from council.platform.identity import Principal, Role, require
from council.platform.runtime import Runtime
from council.platform.settings import SERVICE_NAMES
from council.services.integrator.application import Integrator
from council.services.integrator.domain.access import Sight
from council.services.integrator.projections.asof import state_as_of
from council.services.integrator.projections.audit import AuditReadView, list_reads
from council.services.integrator.projections.audit_trail import (
    OutsideScope,
    Subject,
    TrailQuery,
    scoped_state,
    subjects_of,
    trail,
)
from council.services.integrator.projections.market import NetworkState, network_state

router = APIRouter(prefix="/audit", tags=["regulator API"])

AUDITORS = (Role.REGULATOR, Role.INTEGRATOR_ADMIN)
Auditor = Annotated[Principal, Depends(require(*AUDITORS, honours_scope=True))]
NDJSON = "application/x-ndjson"
CHUNK_BYTES = 64 * 1024  # events are sent in chunks of about this size, not one by one

Source = Literal["integrator", "provider_registry", "outcomes"]
assert set(Source.__args__) == set(SERVICE_NAMES)  # type: ignore[attr-defined]
_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,199}$")
_MOMENT_HELP = "an ISO date or date-time (UTC if no zone); "


def _invalid(name: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422, detail=[{"type": "value_error", "loc": ["query", name], "msg": message}]
    )


def _moment(name: str, value: str | None, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise _invalid(name, str(exc)) from None


def _range(lower: str, upper: str, starts: datetime | None,
           ends: datetime | None) -> None:
    if starts and ends and ends < starts:
        raise _invalid(upper, f"must not be before {lower}")


def _when(description: str, alias: str | None = None) -> Any:
    return Query(alias=alias, max_length=40, examples=["2024-04-01"],
                 description=_MOMENT_HELP + description)


def trail_query(
    occurred_from: Annotated[str | None, _when(
        "events that occurred (business time) at or after it; a date is the start of the day",
        "from")] = None,
    occurred_to: Annotated[str | None, _when(
        "events that occurred at or before it; a date is the end of the day", "to")] = None,
    recorded_from: Annotated[str | None, _when("events recorded at or after it")] = None,
    recorded_to: Annotated[str | None, _when("events recorded at or before it")] = None,
    organisation: Annotated[QueryName | None, Query(
        description="events concerning this organisation (any case): recorded on its behalf, "
                    "or about needs it leads or pooled budget into and their agreements")] = None,
    provider: Annotated[UUID | None, Query(
        description="events concerning this provider: its own record, events naming it, and "
                    "its agreements' events")] = None,
    agreement: Annotated[UUID | None, Query(
        description="events concerning this agreement: its own and events naming it")] = None,
    sources: Annotated[list[Source] | None, Query(
        alias="source", description="only events recorded by these services (repeatable)")] = None,
    types: Annotated[list[QueryName] | None, Query(
        alias="type", description="only events of these types (repeatable), as in the catalogue",
        )] = None,
) -> TrailQuery:
    query = TrailQuery(
        occurred_from=_moment("from", occurred_from, False),
        occurred_to=_moment("to", occurred_to, True),
        recorded_from=_moment("recorded_from", recorded_from, False),
        recorded_to=_moment("recorded_to", recorded_to, True),
        organisation=organisation.strip() if organisation else None,
        provider=provider, agreement=agreement,
        sources=tuple(dict.fromkeys(sources or ())), types=tuple(dict.fromkeys(types or ())),
    )
    for kind in query.types:
        if not _EVENT_TYPE.match(kind):
            raise _invalid("type", f"{kind[:50]!r} is not an event type name (e.g. "
                                   "AgreementDrafted)")
    if organisation is not None and not query.organisation:
        raise _invalid("organisation", "must not be blank")
    _range("from", "to", query.occurred_from, query.occurred_to)
    _range("recorded_from", "recorded_to", query.recorded_from, query.recorded_to)
    return query


Asked = Annotated[TrailQuery, Depends(trail_query)]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _integrator(request: Request) -> Integrator:
    app = _runtime(request).app
    assert isinstance(app, Integrator)
    return app


def _scoped(request: Request, principal: Principal, query: TrailQuery) -> TrailQuery:
    try:
        return Sight(principal, _runtime(request).event_log).narrowed(query)
    except OutsideScope as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None


def _context(request: Request, principal: Principal) -> CommandContext:
    # A regulator reads for its own body, not on the council's behalf.
    return CommandContext(
        actor=principal.actor,
        organisation="regulator" if principal.role is Role.REGULATOR else "council",
        correlation_id=request.state.correlation_id,
    )


class RecordedRead:
    """One audit read: recorded as it starts, finished once with what was returned."""

    def __init__(self, request: Request, principal: Principal, endpoint: AuditEndpoint,
                 query: dict[str, str]) -> None:
        self.integrator = _integrator(request)
        self.context = _context(request, principal)
        scope = principal.scope.items() if principal.scope else {}
        with command_context(self.context):
            self.read_id = self.integrator.start_audit_read(
                principal.token_id, principal.role.value, principal.label, endpoint.value,
                query, scope)

    def finish(self, returned: int, completed: bool = True) -> None:
        with command_context(self.context):
            self.integrator.finish_audit_read(self.read_id, returned, completed)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Audit-Read-Id": str(self.read_id)}


# ---------------------------------------------------------------------- the trail


class ClosingStreamingResponse(StreamingResponse):
    """A streaming response that closes its body once the response is over, however it ended.
    When a reader hangs up, Starlette stops iterating the body but leaves the generator for
    the garbage collector to close, so its `finally` (recording the read as incomplete) ran
    only at the next cyclic collection: soon with Python's default thresholds, possibly never
    on an idle service with the thresholds the services run with
    (council.platform.workers.tune_gc)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                await close()


def _chunks(lines: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
    """NDJSON in chunks of about CHUNK_BYTES, each with how many events it holds."""
    buffer: list[bytes] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line) + 1
        if size >= CHUNK_BYTES:
            yield b"\n".join(buffer) + b"\n", len(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"\n".join(buffer) + b"\n", len(buffer)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}},
                     "description": "one event envelope per line, the log's exact bytes"}},
)
def audit_events(request: Request, principal: Auditor, asked: Asked) -> StreamingResponse:
    """The audit trail: every event on the shared log the filters select, within the token's
    scope, as NDJSON (one envelope per line, byte for byte as on the log, so its hashes can be
    checked), in log order, each event once. Filters combine; what an event *concerns* is in
    the README ("Regulator API"). The read is recorded before the first byte is sent and again
    when the stream ends (`X-Audit-Read-Id` names it)."""
    query = _scoped(request, principal, asked)
    runtime = _runtime(request)
    subjects: list[Subject] = subjects_of(runtime.event_log, query)
    read = RecordedRead(request, principal, AuditEndpoint.EVENTS, query.described())
    reads_of = principal.token_id if principal.role is Role.REGULATOR else None
    hidden = Sight(principal, runtime.event_log).private_types()
    chunks = _chunks(trail(runtime.event_log, query, subjects, reads_of, hidden))

    async def body() -> AsyncIterator[bytes]:
        sent, completed = 0, False
        try:
            while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                data, count = chunk
                yield data
                sent += count  # counted once the server has taken it
            completed = True
        finally:
            with anyio.CancelScope(shield=True):  # a reader hanging up is recorded too
                await anyio.to_thread.run_sync(read.finish, sent, completed)

    return ClosingStreamingResponse(body(), media_type=NDJSON, headers=read.headers)


# ---------------------------------------------------------------------- the state


class AuditState(BaseModel):
    as_of: datetime | None = Field(description="the moment (business time); none: now")
    scope: dict[str, str] = Field(description="the token's scope; empty if unscoped")
    filters: dict[str, str] = Field(description="organisation, provider, agreement applied")
    state: NetworkState


@router.get("/state", response_model=AuditState)
def audit_state(
    request: Request,
    principal: Auditor,
    as_of: Annotated[str | None, _when(
        "the network as it stood then; a date is the end of that day; none: now (or the end "
        "of the token's date range)")] = None,
    organisation: Annotated[QueryName | None, Query()] = None,
    provider: Annotated[UUID | None, Query()] = None,
    agreement: Annotated[UUID | None, Query()] = None,
) -> AuditState:
    """The network state (providers x agreements x outcomes x budgets and spend) as it stood at
    `as_of`, replayed from the log, cut down to the providers and agreements the filters and
    the token's scope concern; its totals are then those of what is shown. Recorded as a read."""
    moment = _moment("as_of", as_of, True)
    subject = TrailQuery(organisation=organisation.strip() if organisation else None,
                         provider=provider, agreement=agreement)
    if organisation is not None and not subject.organisation:
        raise _invalid("organisation", "must not be blank")
    query = _scoped(request, principal, subject)
    try:
        moment = Sight(principal, _runtime(request).event_log).moment(moment)
    except OutsideScope as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    filters = {k: v for k, v in query.described().items()
               if k in ("organisation", "provider", "agreement")}
    described = {**filters, **({"as_of": moment_text(moment, end_of_day=True)} if moment else {})}
    runtime = _runtime(request)
    subjects = subjects_of(runtime.event_log, query)
    read = RecordedRead(request, principal, AuditEndpoint.STATE, described)
    if moment is None:
        state = scoped_state(network_state(runtime.views), runtime.views, query, subjects)
    else:
        with state_as_of(runtime.event_log, None, moment) as db:
            state = scoped_state(network_state(db, moment.date()), db, query, subjects)
    read.finish(len(state.providers))
    return AuditState(as_of=moment, scope=principal.scope.items() if principal.scope else {},
                      filters=filters, state=state)


# ---------------------------------------------------------------------- the reads


@router.get("/reads", response_model=list[AuditReadView])
def audit_reads(
    request: Request,
    principal: Auditor,
    token_id: Annotated[QueryName | None, Query(
        description="only this token's reads (a regulator sees only its own)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AuditReadView]:
    """Who read the audit trail, what they asked for, within which scope, when, and how much
    they received; newest first. The council's internal audit sees every read, a regulator only
    its own token's. This read is recorded too (it shows from the next read on)."""
    if principal.role is Role.REGULATOR:
        if token_id not in (None, principal.token_id):
            raise HTTPException(status_code=403,
                                detail="a regulator sees only its own token's reads")
        token_id = principal.token_id
    described = {"token_id": token_id} if token_id else {}
    read = RecordedRead(request, principal, AuditEndpoint.READS,
                 {**described, "limit": str(limit), "offset": str(offset)})
    found = list_reads(_runtime(request).views, token_id=token_id, limit=limit, offset=offset)
    read.finish(len(found))
    return found
