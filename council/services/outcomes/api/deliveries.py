"""HTTP entry points for delivery reported by providers: one report as JSON, or up to 10,000 as
NDJSON (one JSON object per line); reading reports back; the activity types providers report.

Only a provider's own credentials (role `provider`, issued by the registry on approval) may
report, and only against agreements that name the provider as a party and are active. Every
report carries the provider's own `idempotency_key`: sending it again is accepted once.

How a single report is answered:

- 201: the report is new and stored;
- 200: a replay of a report already stored (same key, same content: agreement, activity type,
  quantity as a number, unit, period, location and what it corrects), recognised even if the
  agreement has ended since: nothing new is stored;
- 401: no, unknown or revoked credentials;
- 403: not a provider's credentials, or the agreement is not one of this provider's;
- 409: the agreement is not active (drafted or ended: the agreement exists and is the
  provider's, but its state refuses delivery), the key was used for a different report, or the
  report it corrects was already corrected;
- 422: bad input, naming the field: an unknown activity type, a unit that is not the activity's,
  a quantity that is not a positive number, a period that ends before it starts or is not over
  yet, an agreement the shared log has not mentioned, a correction of a report that is not this
  provider's under the same agreement, a missing or unknown field.

A batch is answered 200 with a report per line: how many lines (blank lines are ignored),
how many were accepted as new, how many were stored already before this batch (`already_stored`:
sent again after an answer was lost, say, even when the earlier attempt seemed to fail), how
many repeat an earlier line of the batch (`duplicates`), and each rejected line with the field
at fault and the reason, for the same reasons as above. A batch over 10,000 lines is refused (413)
before anything is stored, as is a body over the size limit.

A correction is a new report naming the delivery it corrects (`corrects`); nothing is edited in
place. The corrected report stays, marked `superseded_by` the correction, and no longer counts.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError

from council.kernel.contracts.outcomes import Channel, Periodicity
from council.kernel.errors import InvalidInput, NotFound
from council.kernel.text import MAX_OFFSET
from council.platform.identity import ANY_ROLE, COUNCIL_READERS, Principal, Role, acting_as, require
from council.platform.runtime import Runtime
from council.services.outcomes.adapters.personal_data import (
    ServiceUserView,
    may_read,
    read_service_users,
)
from council.services.outcomes.adapters.vault import SubjectVault
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import CONFLICT, FORBIDDEN, DeliveryOutcome
from council.services.outcomes.domain.activities import activity_types
from council.services.outcomes.domain.aggregates import DeliveryReport
from council.services.outcomes.domain.commands import DeliveryIn
from council.services.outcomes.projections.data_subjects import sealed_records
from council.services.outcomes.projections.deliveries import (
    DeliveryRow,
    list_deliveries,
    periodicity_of,
    units_delivered,
)

router = APIRouter(tags=["delivery"])

BATCH_PATH = "/deliveries/batch"
MAX_BATCH_LINES = 10_000
MAX_BATCH_BYTES = 16 * 1024 * 1024  # the body limit set for BATCH_PATH in service.SPEC
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson"})
UTF8 = frozenset({"utf-8", "utf8", "us-ascii"})
PERIOD = r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$"

Provider = Annotated[Principal, Depends(require(Role.PROVIDER))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS, Role.PROVIDER))]
CouncilReader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]
Anyone = Annotated[Principal, Depends(require(*ANY_ROLE))]


class DeliveryView(BaseModel):
    """A delivery report as stored."""

    delivery_id: UUID
    agreement_id: UUID
    provider_id: UUID
    activity_type: str
    quantity: Decimal
    unit: str
    period_start: date
    period_end: date
    location: str | None
    idempotency_key: str
    corrects: UUID | None = Field(description="the delivery this report corrects")
    superseded_by: UUID | None = Field(description="the report that corrects this one")
    channel: Channel
    reported_at: datetime
    service_users: list[ServiceUserView] = Field(
        default_factory=list, description="who it was for, if the report names anyone: "
        "readable by the council's writers and the reporting provider, else withheld; erased "
        "once the subject's key is destroyed")


class DeliveryListItem(DeliveryRow):
    """A delivery report as the read model holds it, with its service users (as above)."""

    service_users: list[ServiceUserView] = Field(default_factory=list)


class RejectedLine(BaseModel):
    line: int = Field(description="line number in the body, counting from 1 (blank lines too)")
    field: str | None = Field(description="the field at fault; null when the line as a whole is")
    reason: str


class BatchReport(BaseModel):
    lines: int = Field(description="report lines in the body (blank lines aside)")
    accepted: int = Field(description="reports stored now")
    already_stored: int = Field(description="reports stored before this batch, with the "
                                "same key and content: by an earlier request, perhaps an "
                                "earlier attempt at this batch whose answer was lost. They are "
                                "stored, once; nothing new was stored for them")
    duplicates: int = Field(description="repeats of an earlier line of this batch (same key "
                            "and content), accepted once")
    rejected: list[RejectedLine]


class ActivityTypeView(BaseModel):
    code: str
    unit: str
    name: str
    description: str


class DeliveredUnitsView(BaseModel):
    agreement_id: UUID
    activity_type: str
    period: str
    unit: str
    units: Decimal
    reports: int


def outcomes_of(request: Request) -> Outcomes:
    runtime: Runtime = request.app.state.runtime
    assert isinstance(runtime.app, Outcomes)
    return runtime.app


def vault_of(request: Request) -> SubjectVault | None:
    personal = outcomes_of(request).personal_data
    return personal.vault if personal is not None else None


def _provider_id(principal: Principal) -> UUID:
    assert principal.provider_id is not None  # the token store binds provider tokens
    return principal.provider_id


def view_of(report: DeliveryReport, request: Request, principal: Principal) -> DeliveryView:
    """The report as stored, with its service users as the principal may see them."""
    users = []
    if report.service_users:
        readable = {report.id} if may_read(principal, report.provider_id) else set()
        users = read_service_users(vault_of(request), {report.id: report.service_users},
                                   readable)[report.id]
    return DeliveryView(
        delivery_id=report.id, agreement_id=report.agreement_id,
        provider_id=report.provider_id, activity_type=report.activity_type,
        quantity=report.quantity, unit=report.unit,
        period_start=date.fromisoformat(report.period_start),
        period_end=date.fromisoformat(report.period_end), location=report.location,
        idempotency_key=report.idempotency_key, corrects=report.corrects,
        superseded_by=report.superseded_by, channel=Channel(report.channel),
        reported_at=report.created_on, service_users=users,
    )


def _refused(outcome: DeliveryOutcome) -> Exception:
    reason = outcome.error or "refused"
    if outcome.code == FORBIDDEN:
        return HTTPException(status.HTTP_403_FORBIDDEN, detail=reason)
    if outcome.code == CONFLICT:
        return HTTPException(status.HTTP_409_CONFLICT, detail=reason)
    return InvalidInput(outcome.field or "", reason)


@router.post(
    "/deliveries", status_code=status.HTTP_201_CREATED, response_model=DeliveryView,
    responses={200: {"model": DeliveryView, "description": "a replay of a report already "
                     "stored"},
               403: {"description": "the agreement is not one of this provider's"},
               409: {"description": "the agreement is not active, the key was used for a "
                                    "different report, or the corrected report was already "
                                    "corrected"}},
)
def report_delivery(
    body: DeliveryIn, request: Request, response: Response, principal: Provider
) -> DeliveryView:
    """Report one delivery (records DeliveryReported). Sending the same report again with the
    same `idempotency_key` is accepted once (200 the second time)."""
    outcomes = outcomes_of(request)
    with acting_as(request, principal):
        batch = outcomes.report_deliveries(_provider_id(principal), [(0, body)], Channel.HTTP)
    (outcome,) = batch.outcomes
    if outcome.error is not None or outcome.delivery_id is None:
        raise _refused(outcome)
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    return view_of(outcomes.delivery(outcome.delivery_id), request, principal)


async def ndjson_body(request: Request) -> bytes:
    """The request body, once its content type says it is NDJSON in UTF-8."""
    content_type = request.headers.get("content-type", "")
    media, *params = [part.strip().lower() for part in content_type.split(";")]
    charset = next((p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")),
                   "utf-8")
    if media not in NDJSON_TYPES or charset not in UTF8:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send one JSON report per line with Content-Type: application/x-ndjson "
                   f"(UTF-8); got {content_type or 'no Content-Type'!r}",
        )
    return await request.body()


def parse_lines(body: bytes) -> list[tuple[int, DeliveryIn | Exception]]:
    """Each non-blank line of an NDJSON body, numbered from 1, parsed as a report or the error
    that stopped it. Raises HTTPException 413 over MAX_BATCH_LINES."""
    lines = [(number, line) for number, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    if len(lines) > MAX_BATCH_LINES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"{len(lines):,} reports in one batch: at most {MAX_BATCH_LINES:,}; "
                   "nothing was stored, send them in smaller batches",
        )
    parsed: list[tuple[int, DeliveryIn | Exception]] = []
    for number, line in lines:
        try:
            parsed.append((number, DeliveryIn.model_validate_json(line)))
        except ValidationError as exc:
            parsed.append((number, exc))
    return parsed


@router.post(
    BATCH_PATH, response_model=BatchReport,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-ndjson": {"schema": {"type": "string"}, "example": (
            '{"idempotency_key": "2026-04-hall-1", "agreement_id": '
            '"3f0c8a1e-5b9d-4c1e-9a57-3c1e2b9d7f10", "activity_type": "sessions_delivered", '
            '"quantity": 12, "period_start": "2026-04-01", "period_end": "2026-04-30", '
            '"location": "Northshire Community Hall"}\n')}}}},
    responses={413: {"description": f"over {MAX_BATCH_LINES:,} lines or the size limit; "
                                    "nothing stored"},
               415: {"description": "the body is not UTF-8 NDJSON"}},
)
def report_deliveries(
    request: Request, principal: Provider, body: Annotated[bytes, Depends(ndjson_body)]
) -> BatchReport:
    """Report up to 10,000 deliveries, one JSON report per line (`Content-Type:
    application/x-ndjson`, blank lines ignored). Each line is stored, recognised as a replay,
    or rejected with the field and reason; a malformed line is rejected on its own. Sending
    the whole batch again stores nothing new."""
    parsed = parse_lines(body)
    with acting_as(request, principal):
        batch = outcomes_of(request).report_deliveries(_provider_id(principal), parsed,
                                                       Channel.HTTP)
    accepted = batch.accepted
    stored_before = sum(1 for o in accepted if o.already_stored)
    repeated = sum(1 for o in accepted if o.duplicate and not o.already_stored)
    return BatchReport(
        lines=len(parsed), accepted=len(accepted) - stored_before - repeated,
        already_stored=stored_before, duplicates=repeated,
        rejected=[RejectedLine(line=o.index, field=o.field, reason=o.error or "")
                  for o in batch.rejected],
    )


@router.get("/deliveries", response_model=list[DeliveryListItem])
def deliveries(
    request: Request, principal: Reader,
    agreement_id: UUID | None = None,
    provider_id: UUID | None = None,
    period: Annotated[str | None, Query(pattern=PERIOD, description="a month (2026-04) or a "
                                        "quarter (2026-Q2): reports whose period ends in it")]
    = None,
    include_superseded: Annotated[bool, Query(description="include corrected reports")] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[DeliveryListItem]:
    """Delivery reports as projected from the shared log, newest period first. A provider sees
    only its own."""
    if principal.role is Role.PROVIDER:
        if provider_id not in (None, principal.provider_id):
            return []
        provider_id = principal.provider_id
    runtime: Runtime = request.app.state.runtime
    rows = list_deliveries(runtime.views, agreement_id=agreement_id, provider_id=provider_id,
                           period=period, include_superseded=include_superseded, limit=limit,
                           offset=offset)
    return with_service_users(request, principal, rows)


def with_service_users(request: Request, principal: Principal,
                       rows: list[DeliveryRow]) -> list[DeliveryListItem]:
    """The rows with their service users (one query for the page's sealed records, and the
    vault only when any row names someone)."""
    runtime: Runtime = request.app.state.runtime
    sealed = sealed_records(runtime.views, [r.delivery_id for r in rows])
    readable = {r.delivery_id for r in rows
                if r.delivery_id in sealed and may_read(principal, r.provider_id)}
    users = (read_service_users(vault_of(request), sealed, readable)
             if sealed else {})
    # The rows are validated already: constructed, not validated again (up to 1,000 a page).
    return [DeliveryListItem.model_construct(**dict(row), service_users=users.get(row.delivery_id,
                                                                                   []))
            for row in rows]


@router.get("/deliveries/units", response_model=list[DeliveredUnitsView])
def delivered_units(
    request: Request, _: CouncilReader,
    agreement_id: Annotated[list[UUID] | None, Query()] = None,
    periodicity: Periodicity = Periodicity.MONTHLY,
    period: Annotated[str | None, Query(pattern=PERIOD)] = None,
) -> list[DeliveredUnitsView]:
    """Units delivered per agreement, activity type and period (monthly or quarterly; a given
    `period` decides which), after corrections, as projected from the shared log."""
    runtime: Runtime = request.app.state.runtime
    found = units_delivered(runtime.views, agreement_ids=agreement_id,
                            periodicity=periodicity_of(period) if period else periodicity,
                            periods=[period] if period else None)
    return [DeliveredUnitsView(agreement_id=u.agreement_id, activity_type=u.activity_type,
                               period=u.period, unit=u.unit, units=u.units, reports=u.reports)
            for u in found]


@router.get("/deliveries/{delivery_id}", response_model=DeliveryView)
def delivery(delivery_id: UUID, request: Request, principal: Reader) -> DeliveryView:
    """One delivery report, from the store (so at once after it was accepted). A provider
    reads only its own."""
    report = outcomes_of(request).delivery(delivery_id)
    if principal.role is Role.PROVIDER and report.provider_id != principal.provider_id:
        raise NotFound(f"no delivery report {delivery_id}")
    return view_of(report, request, principal)


@router.get("/activity-types", response_model=list[ActivityTypeView])
def list_activity_types(_: Anyone) -> list[ActivityTypeView]:
    """What providers may report delivering, each with the one unit it is counted in."""
    return [ActivityTypeView(code=a.code, unit=a.unit, name=a.name, description=a.description)
            for a in activity_types().values()]
