"""Partner statements: for each organisation pooling budget with the council, what its money
bought, need by need: its share of what was committed, spent and is due (pro rata to its
contribution, as the need page splits it: commissioning.spend_by_partner), the agreements it
paid into, their results payments and the recalculations among them."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse

from council.platform.sql import Database
from council.services.integrator.projections.agreement_queries import get_agreement, list_agreements
from council.services.integrator.projections.commissioning_views import (
    AgreementDetail,
    NeedSummary,
    PartnerSplit,
)
from council.services.integrator.projections.need_queries import list_needs, spend_by_partner
from council.services.integrator.web.pages import SignedIn, router
from council.services.integrator.web.render import page
from council.services.integrator.web.views import runtime_of

routes = router()


@dataclass(frozen=True)
class NeedShare:
    need: NeedSummary
    share: PartnerSplit
    agreements: list[AgreementDetail]

    @property
    def recalculations(self) -> int:
        return sum(1 for a in self.agreements for d in a.results_due
                   if d.previous_total is not None)

    @property
    def results_paid(self) -> int:
        return sum(1 for a in self.agreements for d in a.results_due if d.paid_at is not None)


def _partners(db: Database) -> list[str]:
    with db.transaction() as tx:
        rows = tx.execute("SELECT DISTINCT partner FROM cm_contributions")
    return sorted({str(p) for (p,) in rows}, key=str.casefold)


def _statement(db: Database, partner: str) -> list[NeedShare]:
    with db.transaction() as tx:
        need_ids = {str(n) for (n,) in tx.execute(
            "SELECT DISTINCT need_id FROM cm_contributions WHERE LOWER(partner) = ?",
            (partner.casefold(),))}
    found: list[NeedShare] = []
    for need in list_needs(db, 5000):
        if str(need.need_id) not in need_ids:
            continue
        split = spend_by_partner(db, need.need_id)
        mine = next((p for p in split.partners if p.partner.casefold() == partner.casefold()),
                    None) if split else None
        if mine is None:
            continue
        details = [get_agreement(db, a.agreement_id)
                   for a in list_agreements(db, 1000, need_id=need.need_id)]
        found.append(NeedShare(need, mine, [d for d in details if d is not None]))
    return found


@routes.get("/partners", response_class=HTMLResponse)
def partners(request: Request, viewer: SignedIn) -> HTMLResponse:
    db = runtime_of(request).views
    everyone = _partners(db)
    asked = request.query_params.get("partner", "").strip()[:200]
    chosen = next((p for p in everyone if p.casefold() == asked.casefold()), None)
    shares = _statement(db, chosen) if chosen else []
    return page(request, "partners.html", viewer, section="commissioning", partners=everyone,
                chosen=chosen, asked=asked, shares=shares)
