"""Reading needs from the commissioning read model: lists, one need in full with its pooled
budget, what each partner's money bought, and the lessons recorded."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import (
    Award,
    SourcingStage,
)
from council.kernel.money import pounds
from council.platform.sql import Database, Row, Tx
from council.services.integrator.projections.agreement_queries import (
    agreement_summaries,
    chunks,
    in_list,
    money,
)

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: cm_agreements.activated_at and ended_at, the business times of those events (the market
# view's quarterly history of concentration follows them).
# 3: agreements' signatures, extensions' performance data and overrides.
# 4: results payments due (cm_results_due) and the due item a payment pays (cm_spend.due_id).
from council.services.integrator.projections.commissioning_views import (
    Contribution,
    Decision,
    LessonView,
    NeedDetail,
    NeedSummary,
    PartnerSplit,
    SpendByPartner,
)

PENNY = Decimal("0.01")


_NEED_COLUMNS = (
    "need_id, title, service_area, stage, status, closed_reason, lead_organisation, starts_on,"
    " ends_on, outcomes, budget_envelope_pence, updated_at"
)
_NEED_DETAIL_COLUMNS = (
    ", population, outputs, options, recommended, options_rationale, engagements, defined_at,"
    " defined_by"
)


def _need_figures(tx: Tx, need_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per need, in pence: contributions pledged, awarded, committed, spent; and the number of
    active agreements."""
    figures: dict[str, dict[str, int]] = {
        n: {"pledged": 0, "awarded": 0, "committed": 0, "spent": 0, "active": 0,
            "results_spent": 0, "due": 0, "partners": 0}
        for n in need_ids
    }
    for chunk in chunks(need_ids):
        queries = {
            "pledged": "SELECT need_id, SUM(amount_pence) FROM cm_contributions"
                       f" WHERE {in_list('need_id', chunk)} GROUP BY need_id",
            "awarded": "SELECT need_id, SUM(allocation_pence) FROM cm_awards"
                       f" WHERE {in_list('need_id', chunk)} GROUP BY need_id",
            "committed": "SELECT need_id, SUM(budget_pence) FROM cm_agreements"
                         f" WHERE status = 'active' AND {in_list('need_id', chunk)}"
                         " GROUP BY need_id",
            "active": "SELECT need_id, COUNT(*) FROM cm_agreements"
                      f" WHERE status = 'active' AND {in_list('need_id', chunk)} GROUP BY need_id",
            "spent": "SELECT a.need_id, SUM(s.amount_pence) FROM cm_spend s"
                     " JOIN cm_agreements a ON a.agreement_id = s.agreement_id"
                     f" WHERE {in_list('a.need_id', chunk)} GROUP BY a.need_id",
            "results_spent": "SELECT a.need_id, SUM(s.amount_pence) FROM cm_spend s"
                             " JOIN cm_agreements a ON a.agreement_id = s.agreement_id"
                             f" WHERE s.due_id IS NOT NULL AND {in_list('a.need_id', chunk)}"
                             " GROUP BY a.need_id",
            "due": "SELECT a.need_id, SUM(d.amount_pence) FROM cm_results_due d"
                   " JOIN cm_agreements a ON a.agreement_id = d.agreement_id"
                   f" WHERE d.paid_at IS NULL AND {in_list('a.need_id', chunk)} GROUP BY a.need_id",
            "partners": "SELECT need_id, COUNT(*) FROM cm_contributions"
                        f" WHERE {in_list('need_id', chunk)} GROUP BY need_id",
        }
        for figure, sql in queries.items():
            for need_id, value in tx.execute(sql, chunk):
                figures[str(need_id)][figure] = int(value)
    return figures


def _need_fields(row: Row, figures: dict[str, int]) -> dict[str, Any]:
    (need_id, title, area, stage, status, closed_reason, lead, starts_on, ends_on, outcomes,
     envelope, updated_at) = row[:12]
    return {
        "need_id": need_id, "title": title, "service_area": area, "stage": stage,
        "status": status, "closed_reason": closed_reason, "lead_organisation": lead,
        "starts_on": starts_on, "ends_on": ends_on, "outcomes": json.loads(outcomes),
        "budget_envelope": pounds(envelope),
        "pooled_budget": pounds(int(envelope) + figures["pledged"]),
        "awarded": pounds(figures["awarded"]), "committed": pounds(figures["committed"]),
        "spent": pounds(figures["spent"]), "due": pounds(figures["due"]),
        "active_agreements": figures["active"], "updated_at": updated_at,
    }


def _need_workings(fields: dict[str, Any], figures: dict[str, int]) -> dict[str, str]:
    results = pounds(figures["results_spent"])
    partners = figures["partners"]
    return {
        "pooled_budget": f"£, pounds and pence: the lead's envelope of "
                         f"{money(fields['budget_envelope'])}"
                         + (f" and {partners} partner contributions of "
                            f"{money(pounds(figures['pledged']))}" if partners else ""),
        "awarded": "£: allocated by the need's commissioning decisions",
        "committed": f"£: the current budgets of its {figures['active']} active agreements",
        "spent": f"£: payments under its agreements: {money(fields['spent'] - results)} "
                 f"recorded by hand and {money(results)} of results payments",
        "due": "£: results payments due under its agreements and not paid yet, net of "
               "credits to recover",
    }


def list_needs(
    db: Database,
    limit: int = 1000,
    offset: int = 0,
    *,
    status: str | None = None,
    service_area: str | None = None,
    stage: SourcingStage | None = None,
) -> list[NeedSummary]:
    """Needs in the order they were defined; filters combine."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("service_area", service_area),
                          ("stage", stage.value if stage else None)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_NEED_COLUMNS} FROM cm_needs{clause} ORDER BY defined_at, need_id"
            " LIMIT ? OFFSET ?", (*params, limit, offset))
        figures = _need_figures(tx, [str(r[0]) for r in rows])
    return [NeedSummary(**_need_fields(r, figures[str(r[0])])) for r in rows]


def _contributions(tx: Tx, need_id: str, lead: str, envelope: int,
                   defined_at: str) -> list[Contribution]:
    found = [Contribution(contribution_id="envelope", partner=lead, amount=pounds(envelope),
                          is_lead=True, note="the lead organisation's budget envelope",
                          pledged_at=datetime.fromisoformat(defined_at))]
    for contribution_id, partner, amount, note, at in tx.execute(
        "SELECT contribution_id, partner, amount_pence, note, pledged_at FROM cm_contributions"
        " WHERE need_id = ? ORDER BY pledged_at, contribution_id", (need_id,),
    ):
        found.append(Contribution(contribution_id=contribution_id, partner=partner,
                                  amount=pounds(amount), is_lead=partner == lead, note=note,
                                  pledged_at=at))
    return found


def get_need(db: Database, need_id: UUID) -> NeedDetail | None:
    key = str(need_id)
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_NEED_COLUMNS}{_NEED_DETAIL_COLUMNS} FROM cm_needs WHERE need_id = ?",
            (key,))
        if not rows:
            return None
        row = rows[0]
        figures = _need_figures(tx, [key])[key]
        (population, outputs, options, recommended, rationale, engagements, defined_at,
         defined_by) = row[12:]
        contributions = _contributions(tx, key, str(row[6]), int(row[10]), str(defined_at))
        awards: dict[str, list[Award]] = {}
        for decision_id, award_id, title, kind, providers, allocation in tx.execute(
            "SELECT decision_id, award_id, title, arrangement_type, provider_ids,"
            " allocation_pence FROM cm_awards WHERE need_id = ? ORDER BY decision_id, ordinal",
            (key,),
        ):
            awards.setdefault(str(decision_id), []).append(Award(
                award_id=award_id, title=title, arrangement_type=kind,
                provider_ids=json.loads(providers), allocation=pounds(allocation)))
        decisions = [
            Decision(decision_id=d, rationale=why, decision_maker=who, decided_at=at,
                     awards=awards.get(str(d), []))
            for d, why, who, at in tx.execute(
                "SELECT decision_id, rationale, decision_maker, decided_at FROM cm_decisions"
                " WHERE need_id = ? ORDER BY decided_at, decision_id", (key,))
        ]
        agreements = agreement_summaries(tx, " WHERE need_id = ?", [key])
    fields = _need_fields(row, figures)
    return NeedDetail(
        **fields, workings=_need_workings(fields, figures), population=json.loads(population),
        outputs=json.loads(outputs), options=json.loads(options), recommended=recommended,
        options_rationale=rationale, engagements=json.loads(engagements),
        contributions=contributions, decisions=decisions, agreements=agreements,
        defined_at=defined_at, defined_by=defined_by,
    )


def split_pro_rata(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total` shared in proportion to `weights` to the penny, the way agreement budgets are
    shared between parties: each part rounded down, then the pennies left over one each to the
    largest remainders (the first, the lead, first on a tie), so the parts add up exactly. A
    negative total (credits to recover) is shared as its size is."""
    if total < 0:
        return [-part for part in split_pro_rata(-total, weights)]
    whole = sum(weights, Decimal(0))
    if not weights or whole <= 0:
        return [Decimal("0.00") for _ in weights]
    exact = [total * w / whole for w in weights]
    parts = [e.quantize(PENNY, rounding=ROUND_DOWN) for e in exact]
    left = int((total - sum(parts, Decimal(0))) / PENNY)
    for i in sorted(range(len(parts)), key=lambda i: parts[i] - exact[i])[:left]:
        parts[i] += PENNY
    return parts


def spend_by_partner(db: Database, need_id: UUID) -> SpendByPartner | None:
    """The need's committed spend and spend to date, split between the lead organisation and
    its partners pro rata to their contributions to the pooled budget."""
    key = str(need_id)
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT lead_organisation, budget_envelope_pence, defined_at FROM cm_needs"
            " WHERE need_id = ?", (key,))
        if not rows:
            return None
        lead, envelope, defined_at = rows[0]
        contributions = _contributions(tx, key, str(lead), int(envelope), str(defined_at))
        figures = _need_figures(tx, [key])[key]
    by_partner: dict[str, Decimal] = {}
    for c in contributions:  # the lead first, then partners as they joined
        by_partner[c.partner] = by_partner.get(c.partner, Decimal(0)) + c.amount
    partners = list(by_partner)
    amounts = [by_partner[p] for p in partners]
    pooled = sum(amounts, Decimal(0))
    committed, spent = pounds(figures["committed"]), pounds(figures["spent"])
    due = pounds(figures["due"])
    shares = split_pro_rata(Decimal(100), amounts)
    return SpendByPartner(
        need_id=need_id, pooled_budget=pooled, committed=committed, spent=spent, due=due,
        partners=[
            PartnerSplit(partner=p, is_lead=p == lead, contribution=amount, share_pct=share,
                         committed=part_committed, spent=part_spent, due=part_due)
            for p, amount, share, part_committed, part_spent, part_due in zip(
                partners, amounts, shares, split_pro_rata(committed, amounts),
                split_pro_rata(spent, amounts), split_pro_rata(due, amounts), strict=True)
        ],
        workings={
            "share_pct": "%, 2 places: the organisation's contribution over the pooled "
                         f"budget of {money(pooled)} (the lead's envelope is its contribution)",
            "committed": f"£: the need's committed {money(committed)} (the current budgets "
                         "of its active agreements) split pro rata to the contributions",
            "spent": f"£: the need's spend of {money(spent)} (payments by hand and of "
                     "results payments) split pro rata to the contributions",
            "due": f"£: the need's results payments due of {money(due)} split pro rata to "
                   "the contributions",
            "rounding": "each part rounded down to the penny, the pennies left over one each "
                        "to the largest remainders, the lead first on a tie: the parts add up "
                        "exactly",
        },
    )


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_lessons(
    db: Database,
    q: str | None = None,
    *,
    went: str | None = None,
    tag: str | None = None,
    need_id: UUID | None = None,
    agreement_id: UUID | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[LessonView]:
    """Lessons, newest first. `q` is free text: every word must appear (in any case) in what
    happened, why, or the tags; `tag` is one exact tag."""
    where: list[str] = []
    params: list[Any] = []
    for word in (q or "").split():
        where.append("search_text LIKE ? ESCAPE '\\'")
        params.append(_like(word))
    if went is not None:
        where.append("went = ?")
        params.append(went)
    if tag is not None:
        where.append("lesson_id IN (SELECT lesson_id FROM cm_lesson_tags WHERE tag = ?)")
        params.append(tag.strip().casefold())
    if need_id is not None:
        where.append("need_id = ?")
        params.append(str(need_id))
    if agreement_id is not None:
        where.append("agreement_id = ?")
        params.append(str(agreement_id))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT lesson_id, need_id, agreement_id, stage, went, what, why, tags,"
            f" recorded_at, recorded_by FROM cm_lessons{clause}"
            " ORDER BY recorded_at DESC, lesson_id LIMIT ? OFFSET ?", (*params, limit, offset))
    return [
        LessonView(lesson_id=lesson_id, need_id=need, agreement_id=agreement, stage=stage,
                   went=went_, what=what, why=why, tags=json.loads(tags), recorded_at=at,
                   recorded_by=by)
        for lesson_id, need, agreement, stage, went_, what, why, tags, at, by in rows
    ]


__all__ = [
    "get_need",
    "list_needs",
    "search_lessons",
    "spend_by_partner",
    "split_pro_rata",
]
