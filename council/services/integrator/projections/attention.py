"""What needs attention, for the home page: what a commissioning team would otherwise keep in a
spreadsheet of dates. Read from the integrator's own read models (standing, commissioning,
performance and the timeline), never from another service:

- accreditations, insurance and checks lapsed or lapsing within 60 days, of providers holding
  an active agreement (a lapsed insurance under a live grant is the council's risk);
- active agreements ending within six months, which need an extend-or-exit decision, and
  their break clauses;
- active agreements rated red in their latest assessed period;
- business cases proposed and not yet decided, which someone other than their proposer must
  decide (the scheme of delegation: nobody approves what they proposed);
- open needs whose commitments are near their pooled envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from council.kernel.money import pounds
from council.platform.sql import Database
from council.services.integrator.projections.performance import network_performance

LAPSING = timedelta(days=60)  # time to chase a renewal before the cover lapses
ENDING = timedelta(days=183)  # six months: the notice an extend-or-exit decision needs
NEAR_ENVELOPE_PCT = Decimal(90)  # committed at or above this share of the pooled budget


@dataclass(frozen=True)
class Lapsing:
    provider_id: str
    provider: str
    kind: str
    name: str
    expires_on: date
    lapsed: bool
    agreements: int


@dataclass(frozen=True)
class Ending:
    agreement_id: str
    title: str
    ends_on: date
    days_left: int
    break_clauses: list[str]


@dataclass(frozen=True)
class Red:
    agreement_id: str
    title: str
    period: str | None
    achievement_pct: Decimal | None


@dataclass(frozen=True)
class Waiting:
    agreement_id: str
    agreement: str
    business_case_id: str
    need: str
    cost: Decimal
    proposed_on: date
    proposed_by: str | None


@dataclass(frozen=True)
class NearEnvelope:
    need_id: str
    title: str
    committed: Decimal
    pooled: Decimal
    used_pct: Decimal


@dataclass
class Attention:
    lapsing: list[Lapsing] = field(default_factory=list)
    ending: list[Ending] = field(default_factory=list)
    red: list[Red] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    near_envelope: list[NearEnvelope] = field(default_factory=list)

    @property
    def count(self) -> int:
        return (len(self.lapsing) + len(self.ending) + len(self.red) + len(self.waiting)
                + len(self.near_envelope))


def _lapsing(db: Database, today: date) -> list[Lapsing]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT s.provider_id, COALESCE(n.name, s.provider_id), s.kind, s.name,"
            " s.expires_on, COUNT(DISTINCT a.agreement_id)"
            " FROM st_accreditations s"
            " JOIN cm_parties p ON p.provider_id = s.provider_id"
            " JOIN cm_agreements a ON a.agreement_id = p.agreement_id AND a.status = 'active'"
            " LEFT JOIN network_providers n ON n.provider_id = s.provider_id"
            " WHERE s.removed_reason IS NULL AND s.expires_on IS NOT NULL AND s.expires_on <= ?"
            # Renewed: the same cover recorded again, running later, puts the old one to rest.
            " AND NOT EXISTS (SELECT 1 FROM st_accreditations r"
            "  WHERE r.provider_id = s.provider_id AND r.kind = s.kind AND r.name = s.name"
            "  AND r.removed_reason IS NULL"
            "  AND (r.expires_on IS NULL OR r.expires_on > s.expires_on))"
            " GROUP BY s.provider_id, n.name, s.kind, s.name, s.expires_on, s.accreditation_id"
            " ORDER BY s.expires_on, 2", ((today + LAPSING).isoformat(),))
    found: list[Lapsing] = []
    for provider_id, name, kind, what, expires, agreements in rows:
        ends = date.fromisoformat(str(expires))
        found.append(Lapsing(str(provider_id), str(name), str(kind), str(what), ends,
                             ends < today, int(agreements)))
    return found


def _ending(db: Database, today: date) -> list[Ending]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT agreement_id, title, ends_on, break_clauses FROM cm_agreements"
            " WHERE status = 'active' AND ends_on <= ? ORDER BY ends_on, title",
            ((today + ENDING).isoformat(),))
    return [Ending(str(a), str(t), date.fromisoformat(str(e)),
                   (date.fromisoformat(str(e)) - today).days, list(json.loads(b or "[]")))
            for a, t, e, b in rows]


def _waiting(db: Database) -> list[Waiting]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT b.agreement_id, a.title, b.business_case_id, b.need, b.cost_pence,"
            " b.proposed_at FROM cm_business_cases b"
            " JOIN cm_agreements a ON a.agreement_id = b.agreement_id"
            " WHERE b.status = 'proposed' ORDER BY b.proposed_at")
        # Who proposed each is on its event (the commissioning tables predate the field).
        proposers: dict[tuple[str, str], str] = {}
        if rows:
            for stream, data in tx.execute(
                    "SELECT stream_id, data FROM tl_events WHERE type = 'BusinessCaseProposed'"):
                said = json.loads(data)
                if said.get("proposed_by"):
                    proposers[(str(stream), str(said.get("business_case_id")))] = str(
                        said["proposed_by"])
    return [Waiting(str(a), str(t), str(c), str(n), pounds(int(cost)),
                    date.fromisoformat(str(at)[:10]), proposers.get((str(a), str(c))))
            for a, t, c, n, cost, at in rows]


def _near_envelope(db: Database) -> list[NearEnvelope]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT n.need_id, n.title, n.budget_envelope_pence"
            " + COALESCE((SELECT SUM(c.amount_pence) FROM cm_contributions c"
            "   WHERE c.need_id = n.need_id), 0),"
            " COALESCE((SELECT SUM(w.allocation_pence) FROM cm_awards w"
            "   WHERE w.need_id = n.need_id), 0)"
            " + COALESCE((SELECT SUM(a.budget_pence - a.original_budget_pence)"
            "   FROM cm_agreements a WHERE a.need_id = n.need_id), 0)"
            " FROM cm_needs n WHERE n.status = 'open'")
    found: list[NearEnvelope] = []
    for need_id, title, pooled, committed in rows:
        if int(pooled) <= 0:
            continue
        used = (Decimal(int(committed)) * 100 / Decimal(int(pooled))).quantize(Decimal("0.1"))
        if used >= NEAR_ENVELOPE_PCT:
            found.append(NearEnvelope(str(need_id), str(title), pounds(int(committed)),
                                      pounds(int(pooled)), used))
    found.sort(key=lambda n: (-n.used_pct, n.title))
    return found


def attention(db: Database, today: date) -> Attention:
    """Everything that needs attention on `today`, most pressing first within each kind."""
    red = [Red(str(r.agreement_id), r.title, r.rag_period, r.latest_achievement_pct)
           for r in network_performance(db, status="active", today=today) if r.rag == "red"]
    return Attention(lapsing=_lapsing(db, today), ending=_ending(db, today), red=red,
                     waiting=_waiting(db), near_envelope=_near_envelope(db))


def proposed_by_viewer(case: Waiting, actor: str) -> bool:
    """Whether the person looking proposed it (and so may not decide it)."""
    return case.proposed_by is not None and case.proposed_by == actor

