"""HTTP entry points for councils' schemes of delegation: an integrator admin sets who may take
which financial decision up to what amount; council staff read it. Routes only translate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from council.kernel.text import QueryName
from council.platform.identity import COUNCIL_READERS, Principal, Role, acting_as, require
from council.services.integrator.api.commissioning import NOT_AUTHORISED, integrator_of
from council.services.integrator.domain.commands import DelegationLimits
from council.services.integrator.domain.delegation import SchemeOfDelegation

router = APIRouter(tags=["commissioning"])

Admin = Annotated[Principal, Depends(require(Role.INTEGRATOR_ADMIN))]
Reader = Annotated[Principal, Depends(require(*COUNCIL_READERS))]


class SchemeView(BaseModel):
    """A council's scheme of delegation: each role's limit per kind of decision, in pounds
    (`up_to` null: without limit). A role and kind not listed may not take that decision."""

    scheme_id: UUID
    council: str
    limits: list[dict[str, Any]]
    set_on: str | None
    reason: str | None
    version: int
    updated_at: datetime


def scheme_view(scheme: SchemeOfDelegation) -> SchemeView:
    return SchemeView(scheme_id=scheme.id, council=scheme.council, limits=scheme.limits,
                      set_on=scheme.set_on, reason=scheme.reason, version=scheme.version,
                      updated_at=scheme.modified_on)


@router.put("/councils/{council}/scheme-of-delegation", response_model=SchemeView,
            responses=NOT_AUTHORISED)
def set_scheme(council: QueryName, body: DelegationLimits, request: Request,
               principal: Admin) -> SchemeView:
    """Rule: a decision over its taker's limit is refused; with no scheme, only admins decide.

    Set the council's scheme of delegation (integrator admins only): every limit, replacing
    those set before. Until one is set, only an integrator admin may take financial decisions
    (awards, variations, extensions, business cases, spend, envelope raises) for the needs the
    council leads."""
    integrator = integrator_of(request)
    with acting_as(request, principal):
        return scheme_view(integrator.set_delegation_limits(council, body, principal))


@router.get("/councils/{council}/scheme-of-delegation", response_model=SchemeView,
            responses={404: {"description": "No scheme of delegation is set for the council"}})
def read_scheme(council: QueryName, request: Request, _: Reader) -> SchemeView:
    """Rule: a decision over the taker's limit is refused; nobody approves what they proposed.

    The council's scheme of delegation as it stands (read only for council staff)."""
    return scheme_view(integrator_of(request).scheme_of_delegation(council))
