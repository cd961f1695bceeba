"""HTTP entry points for the people named in delivery reports (data subjects): what the
council holds about one of them, and erasure on a valid request. Integrator admins only (the
council's data protection work); references travel in request bodies, never in URLs, so they
reach no access log.

- `POST /data-subjects/erasure`: 201 erased now; 200 already erased (the erasure as recorded);
  404 no such subject (never reported, or named by a reference already forgotten by an
  erasure); 422 a bad request, naming the field.
- `POST /data-subjects/search` (by reference) and `GET /data-subjects/{subject_id}`: the
  subject and every report naming them, with the personal data while it is readable.
- `GET /data-subjects/erasures`: every erasure made, newest first.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from council.kernel.contracts.outcomes import LegalBasis
from council.kernel.errors import NotFound
from council.platform.identity import Principal, Role, acting_as, require
from council.platform.runtime import Runtime
from council.services.outcomes.adapters.personal_data import ServiceUserView, read_service_users
from council.services.outcomes.api.deliveries import outcomes_of
from council.services.outcomes.erasure import (
    ErasureIn,
    SubjectReferenceIn,
    erase,
    purge_consumed_inbound,
)
from council.services.outcomes.projections.data_subjects import (
    ErasureRow,
    list_erasures,
    records_of,
)

router = APIRouter(tags=["data subjects"])

Admin = Annotated[Principal, Depends(require(Role.INTEGRATOR_ADMIN))]


class ErasureView(BaseModel):
    erasure_id: UUID
    subject_id: UUID
    legal_basis: LegalBasis
    reason: str
    requested_on: date | None
    erased_at: datetime
    inbound_purge: str | None = None


class SubjectRecordView(BaseModel):
    delivery_id: UUID
    agreement_id: UUID
    provider_id: UUID
    reported_at: datetime
    service_user: ServiceUserView


class SubjectView(BaseModel):
    subject_id: UUID
    state: Literal["known", "erased", "unavailable"]  # known: its key is in the vault
    erasure: ErasureRow | None
    records: list[SubjectRecordView]


@router.post(
    "/data-subjects/erasure", status_code=status.HTTP_201_CREATED, response_model=ErasureView,
    responses={200: {"model": ErasureView, "description": "already erased: the erasure as "
                     "recorded"},
               404: {"description": "no such data subject"}},
)
def erase_subject(body: ErasureIn, request: Request, response: Response,
                  principal: Admin) -> ErasureView:
    """Erase a data subject's personal data (records DataSubjectErased, then destroys the
    subject's key: every record sealed with it becomes unreadable everywhere, while the
    audit chain still verifies). Accepted once: a repeat is answered 200."""
    runtime: Runtime = request.app.state.runtime
    with acting_as(request, principal):
        done = erase(outcomes_of(request), body)
    if not done.created:
        response.status_code = status.HTTP_200_OK
    erasure = done.erasure
    return ErasureView(
        erasure_id=erasure.id, subject_id=erasure.subject_id,
        legal_basis=LegalBasis(erasure.legal_basis), reason=erasure.reason,
        requested_on=date.fromisoformat(erasure.requested_on) if erasure.requested_on else None,
        erased_at=erasure.created_on,
        inbound_purge=purge_consumed_inbound(runtime.settings, runtime.store_db),
    )


@router.get("/data-subjects/erasures", response_model=list[ErasureRow])
def erasures(request: Request, _: Admin) -> list[ErasureRow]:
    """Every erasure, newest first, as projected from the shared log."""
    runtime: Runtime = request.app.state.runtime
    return list_erasures(runtime.views)


@router.post("/data-subjects/search", response_model=SubjectView)
def search(body: SubjectReferenceIn, request: Request, _: Admin) -> SubjectView:
    """The data subject a reference names, and what the council holds about them."""
    personal = outcomes_of(request).personal_data
    found = personal.subject_of(body.subject_reference(body.provider_id)) if personal else None
    if found is None:
        raise NotFound("no data subject has this reference: never reported, or erased")
    return _subject(request, found)


@router.get("/data-subjects/{subject_id}", response_model=SubjectView)
def subject(subject_id: UUID, request: Request, _: Admin) -> SubjectView:
    """A data subject and every report naming them (personal data while readable)."""
    return _subject(request, subject_id)


def _subject(request: Request, subject_id: UUID) -> SubjectView:
    runtime: Runtime = request.app.state.runtime
    personal = outcomes_of(request).personal_data
    vault = personal.vault if personal else None
    records = records_of(runtime.views, subject_id)
    erased = list_erasures(runtime.views, subject_id)
    known = vault is not None and bool(vault.by_subject([subject_id]))
    if not (records or erased or known):
        raise NotFound(f"no data subject {subject_id}")
    gone = bool(erased) or (vault is not None and bool(vault.erased([subject_id])))
    views = read_service_users(vault, {r.delivery_id: [r.sealed] for r in records},
                               {r.delivery_id for r in records})
    return SubjectView(
        subject_id=subject_id, state="known" if known else "erased" if gone else "unavailable",
        erasure=erased[0] if erased else None,
        records=[SubjectRecordView(delivery_id=r.delivery_id, agreement_id=r.agreement_id,
                                   provider_id=r.provider_id, reported_at=r.reported_at,
                                   service_user=views[r.delivery_id][0]) for r in records],
    )
