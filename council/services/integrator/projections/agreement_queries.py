"""Reading agreements from the commissioning read model: lists, one agreement in full, the
results payments due under it, and how each figure was worked out."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from council.kernel.contracts.integrator import (
    ArrangementType,
)
from council.kernel.money import pounds
from council.platform.sql import Database, Row, Tx

# Bump when the tables below change shape: the read model is then dropped and replayed.
# 2: cm_agreements.activated_at and ended_at, the business times of those events (the market
# view's quarterly history of concentration follows them).
# 3: agreements' signatures, extensions' performance data and overrides.
# 4: results payments due (cm_results_due) and the due item a payment pays (cm_spend.due_id).
from council.services.integrator.projections.commissioning_views import (
    AgreementDetail,
    AgreementSummary,
    BusinessCase,
    Extension,
    Party,
    ResultsDueItem,
    Spend,
    Variation,
)

PENNY = Decimal("0.01")


def in_list(column: str, values: list[str]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _parties(tx: Tx, agreement_ids: list[str]) -> dict[str, list[Party]]:
    found: dict[str, list[Party]] = {a: [] for a in agreement_ids}
    for chunk in chunks(agreement_ids):
        spent = {
            (str(a), str(p)): int(total) for a, p, total in tx.execute(
                "SELECT agreement_id, provider_id, SUM(amount_pence) FROM cm_spend"
                f" WHERE {in_list('agreement_id', chunk)} GROUP BY agreement_id, provider_id",
                chunk)
        }
        for agreement_id, provider_id, allocation, original in tx.execute(
            "SELECT agreement_id, provider_id, allocation_pence, original_allocation_pence"
            f" FROM cm_parties WHERE {in_list('agreement_id', chunk)}"
            " ORDER BY agreement_id, ordinal", chunk,
        ):
            found[str(agreement_id)].append(Party(
                provider_id=provider_id, allocation=pounds(allocation),
                original_allocation=pounds(original),
                spent=pounds(spent.get((str(agreement_id), str(provider_id)), 0)),
            ))
    return found


_AGREEMENT_COLUMNS = (
    "agreement_id, need_id, decision_id, award_id, title, arrangement_type, status, starts_on,"
    " ends_on, original_ends_on, activated_on, ended_on, ended_how, budget_pence,"
    " original_budget_pence, updated_at"
)
_AGREEMENT_DETAIL_COLUMNS = (
    ", outcomes, reward_terms, risk_share, break_clauses, exit_plan, ended_reason,"
    " exit_plan_executed, exit_notes, drafted_at, signed_on, signatories"
)


def _dues(tx: Tx, agreement_ids: list[str]) -> dict[str, int]:
    """Per agreement, in pence: results payments due and not paid yet (net of credits)."""
    found: dict[str, int] = {}
    for chunk in chunks(agreement_ids):
        found.update({str(a): int(total) for a, total in tx.execute(
            "SELECT agreement_id, SUM(amount_pence) FROM cm_results_due"
            f" WHERE paid_at IS NULL AND {in_list('agreement_id', chunk)} GROUP BY agreement_id",
            chunk)})
    return found


def _summary_fields(row: Row, parties: list[Party], due: int = 0) -> dict[str, Any]:
    (agreement_id, need_id, decision_id, award_id, title, kind, status, starts_on, ends_on,
     original_ends_on, activated_on, ended_on, ended_how, budget, original_budget,
     updated_at) = row[:16]
    return {
        "agreement_id": agreement_id, "need_id": need_id, "decision_id": decision_id,
        "award_id": award_id, "title": title, "arrangement_type": kind, "status": status,
        "starts_on": starts_on, "ends_on": ends_on, "original_ends_on": original_ends_on,
        "activated_on": activated_on, "ended_on": ended_on, "ended_how": ended_how,
        "budget": pounds(budget), "original_budget": pounds(original_budget),
        "spent": sum((p.spent for p in parties), pounds(0)), "due": pounds(due),
        "parties": parties, "updated_at": updated_at,
    }


def agreement_summaries(tx: Tx, where: str, params: list[Any], limit: int = 10_000,
                         offset: int = 0) -> list[AgreementSummary]:
    rows = tx.execute(
        f"SELECT {_AGREEMENT_COLUMNS} FROM cm_agreements{where}"
        " ORDER BY drafted_at, agreement_id LIMIT ? OFFSET ?", (*params, limit, offset))
    ids = [str(r[0]) for r in rows]
    parties, dues = _parties(tx, ids), _dues(tx, ids)
    return [AgreementSummary(**_summary_fields(r, parties[str(r[0])], dues.get(str(r[0]), 0)))
            for r in rows]


def list_agreements(
    db: Database,
    limit: int = 1000,
    offset: int = 0,
    *,
    status: str | None = None,
    provider_id: UUID | None = None,
    need_id: UUID | None = None,
    arrangement_type: ArrangementType | None = None,
) -> list[AgreementSummary]:
    """Agreements in the order they were drafted; filters combine (all must hold)."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if provider_id is not None:
        where.append("agreement_id IN (SELECT agreement_id FROM cm_parties WHERE provider_id = ?)")
        params.append(str(provider_id))
    if need_id is not None:
        where.append("need_id = ?")
        params.append(str(need_id))
    if arrangement_type is not None:
        where.append("arrangement_type = ?")
        params.append(arrangement_type.value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.reading() as tx:
        return agreement_summaries(tx, clause, params, limit, offset)


def get_agreement(db: Database, agreement_id: UUID) -> AgreementDetail | None:
    key = str(agreement_id)
    with db.reading() as tx:
        rows = tx.execute(
            f"SELECT {_AGREEMENT_COLUMNS}{_AGREEMENT_DETAIL_COLUMNS} FROM cm_agreements"
            " WHERE agreement_id = ?", (key,))
        if not rows:
            return None
        row = rows[0]
        parties = _parties(tx, [key])[key]
        variations = [
            Variation(variation_id=v, kind=kind, budget_change=pounds(change),
                      new_budget=pounds(new), scope=scope, reason=reason,
                      business_case_id=case, varied_at=at)
            for v, kind, change, new, scope, reason, case, at in tx.execute(
                "SELECT variation_id, kind, budget_change_pence, new_budget_pence, scope,"
                " reason, business_case_id, varied_at FROM cm_variations WHERE agreement_id = ?"
                " ORDER BY varied_at, variation_id", (key,))
        ]
        extensions = [
            Extension(extension_id=e, previous_end=prev, new_end=new, justification=why,
                      performance_evidence=evidence, extended_at=at, performance_data=held,
                      override_reason=override, override_approved_by=approver)
            for e, prev, new, why, evidence, at, held, override, approver in tx.execute(
                "SELECT extension_id, previous_end, new_end, justification,"
                " performance_evidence, extended_at, performance_data, override_reason,"
                " override_approved_by FROM cm_extensions WHERE agreement_id = ?"
                " ORDER BY extended_at, new_end", (key,))
        ]
        cases = [
            BusinessCase(business_case_id=c, need=need, expected_outcomes=expected,
                         cost=pounds(cost), status=status, decision_reason=reason,
                         proposed_at=proposed, decided_at=decided)
            for c, need, expected, cost, status, reason, proposed, decided in tx.execute(
                "SELECT business_case_id, need, expected_outcomes, cost_pence, status,"
                " decision_reason, proposed_at, decided_at FROM cm_business_cases"
                " WHERE agreement_id = ? ORDER BY proposed_at, business_case_id", (key,))
        ]
        spend = [
            Spend(spend_id=s, provider_id=p, amount=pounds(amount), period=period,
                  reference=ref, recorded_at=at, due_id=due_id)
            for s, p, amount, period, ref, at, due_id in tx.execute(
                "SELECT spend_id, provider_id, amount_pence, period, reference, recorded_at,"
                " due_id FROM cm_spend WHERE agreement_id = ?"
                " ORDER BY period, recorded_at, spend_id", (key,))
        ]
        due_rows = tx.execute(
            "SELECT due_id, calculation_id, terms_id, period, amount_pence, shares,"
            " calculated_on, calculated_total_pence, previous_total_pence, reason,"
            " over_budget_pence, lines, recorded_at, paid_at, paid_by, paid_period"
            " FROM cm_results_due WHERE agreement_id = ? ORDER BY recorded_at, due_id", (key,))
    (outcomes, reward_terms, risk_share, break_clauses, exit_plan, ended_reason, executed,
     exit_notes, drafted_at, signed_on, signatories) = row[16:]
    fields = _summary_fields(row, parties)
    spent, budget = fields["spent"], fields["budget"]
    items = [_due_item(r, spent, budget) for r in due_rows]
    fields["due"] = sum((i.amount for i in items if i.paid_at is None), pounds(0))
    return AgreementDetail(
        **fields, signed_on=signed_on,
        signatories=json.loads(signatories) if signatories else [],
        outcomes=json.loads(outcomes),
        reward_terms=json.loads(reward_terms) if reward_terms else None,
        risk_share=json.loads(risk_share) if risk_share else None,
        break_clauses=json.loads(break_clauses), exit_plan=exit_plan, ended_reason=ended_reason,
        exit_plan_executed=None if executed is None else bool(executed), exit_notes=exit_notes,
        variations=variations, extensions=extensions, business_cases=cases, spend=spend,
        results_due=items, drafted_at=drafted_at,
        workings=_agreement_workings(fields, variations, spend, items),
    )


def money(amount: Decimal) -> str:
    """Pounds as the figures are said: £1,125.00, or -£199.99."""
    return f"-£{-amount:,.2f}" if amount < 0 else f"£{amount:,.2f}"


def counted(n: int, one: str, many: str | None = None) -> str:
    """`n` things, said: 1 variation, 2 variations."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def _due_item(row: Row, spent: Decimal, budget: Decimal) -> ResultsDueItem:
    (due_id, calculation_id, terms_id, period, amount, shares, calculated_on, total, previous,
     reason, over, lines, recorded_at, paid_at, paid_by, paid_period) = row
    amount, total = pounds(amount), pounds(total)
    previous_total = None if previous is None else pounds(previous)
    short = max(spent + amount - budget, pounds(0)) if paid_at is None and amount > 0 \
        else pounds(0)
    if paid_at is not None:
        status = "recovered" if amount < 0 else "paid"
    else:
        status = "to recover" if amount < 0 else "needs a variation" if short else "due"
    item = ResultsDueItem(
        due_id=due_id, calculation_id=calculation_id, terms_id=terms_id, period=period,
        amount=amount, shares=json.loads(shares), calculated_on=calculated_on,
        calculated_total=total, previous_total=previous_total, reason=reason,
        lines=json.loads(lines), over_budget_by=pounds(over), status=status, short_by=short,
        recorded_at=recorded_at, paid_at=paid_at, paid_by=paid_by, paid_period=paid_period,
        how="")
    return item.model_copy(update={"how": due_in_words(item, budget)})


def due_in_words(item: ResultsDueItem, budget: Decimal) -> str:
    """A due item as a finance officer signs it off: the figure, for which period, how it was
    worked out, and where it stands."""
    on = item.calculated_on.isoformat()
    if item.previous_total is None:
        said = (f"{money(item.amount)} due for {item.period}: results payment calculated {on} "
                f"(calculation {item.calculation_id}, {counted(len(item.lines), 'line')})")
    else:
        what = (f"{money(-item.amount)} to recover" if item.amount < 0
                else f"{money(item.amount)} further due")
        said = (f"{what} for {item.period}: recalculated {on} from "
                f"{money(item.previous_total)} to {money(item.calculated_total)} "
                f"({item.reason}; calculation {item.calculation_id})")
    said += "; split between the parties by their allocations, to the penny"
    if item.paid_at is not None:
        done = "recovered" if item.amount < 0 else "paid"
        said += (f"; {done} {item.paid_at.date().isoformat()} by {item.paid_by} as spend for "
                 f"{item.paid_period}")
    elif item.short_by:
        said += (f"; needs a variation: paying it would take spend {money(item.short_by)} "
                 f"over the {money(budget)} budget")
    return said


def _agreement_workings(fields: dict[str, Any], variations: list[Variation],
                        spend: list[Spend], items: list[ResultsDueItem]) -> dict[str, str]:
    by_hand = [s for s in spend if s.due_id is None]
    results = [s for s in spend if s.due_id is not None]
    open_items = [i for i in items if i.paid_at is None]
    change = sum((v.budget_change for v in variations), pounds(0))
    return {
        "budget": f"£, pounds and pence: the award of {money(fields['original_budget'])}"
                  + (f" and {counted(len(variations), 'variation')} ({money(change)})"
                     if variations else "")
                  + ", held by the parties as their allocations",
        "spent": f"£: {counted(len(spend), 'payment')} recorded: {len(by_hand)} by hand "
                 f"({money(sum((s.amount for s in by_hand), pounds(0)))}) and "
                 f"{counted(len(results), 'party share')} of results payments "
                 f"({money(sum((s.amount for s in results), pounds(0)))}, net of credits "
                 "recovered)",
        "due": f"£: {counted(len(open_items), 'results payment')} calculated by the outcomes "
               "service and not paid yet, net of credits to recover; each paid as spend when "
               "the council records it",
    }


__all__ = [
    "agreement_summaries",
    "chunks",
    "counted",
    "due_in_words",
    "get_agreement",
    "in_list",
    "list_agreements",
    "money",
]
