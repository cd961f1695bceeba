"""Results payments flow into an agreement's spend (the integrator's domain): a payment the
outcomes service calculated becomes due on the Agreement, split between its parties by their
allocations with the variations' penny rule; the council pays it (each party its share, as
spend) or, for a credit, recovers it; a recalculation's difference is a further amount due, or
a credit when negative, with its reason; a due amount the budget cannot take is flagged as
needing a variation and cannot be paid until the budget allows.

Worked by hand (the agreement of tests.unit.test_commissioning.new_agreement: budget £900.00,
P1 £600.00 and P2 £300.00, so P1 holds two thirds, P2 one third; term 2026-07-01 to
2029-03-31):

- £1,125.00 due for 2026-Q3: 1,125.00 x 600/900 = 750.00, x 300/900 = 375.00 (no pennies left)
  but the budget is £900.00: paying it would take spend to £1,125.00, £225.00 over: flagged.
  Varied up by £300.00 to £1,200.00 (P1 £800.00, P2 £400.00), it is paid: spend £1,125.00.
- Recalculated to £1,425.00 (late measurement): £300.00 further due, split 200.00 / 100.00,
  over a £1,200.00 budget by £225.00 until varied again (+£300.00: £1,500.00).
- Recalculated to £1,225.01 (delivery correction): -£199.99 to recover: 199.99 x 2/3 =
  133.3266..., x 1/3 = 66.6633...: 133.32 + 66.66 = 199.98, the penny left to the larger
  remainder (P1's .0066 over P2's .0033): P1 -133.33, P2 -66.66. Spend after recovering it:
  1,125.00 + 300.00 - 199.99 = £1,225.01, the period's latest total; P1 750.00 + 200.00 -
  133.33 = £816.67, P2 375.00 + 100.00 - 66.66 = £408.34 (together £1,225.01).
- Three equal parties and £1,000.00: 333.33 each and a penny left, all remainders equal: the
  lead (first) party takes it: 333.34, 333.33, 333.33.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from council.kernel.contracts.integrator import VariationKind
from council.kernel.errors import DomainRuleBroken
from council.services.integrator.domain.agreements import Agreement, results_month, share_out
from tests.unit.test_commissioning import P1, P2, P3, active, new_agreement, replay, unchanged

D = Decimal
TERMS = uuid4()
NOW = "2029-12"  # business time in these tests: every month paid for has begun


def due(agreement: Agreement, calculation_id: str, amount: str, total: str,
        previous: str | None = None, reason: str = "results payment calculated",
        period: str = "2026-Q3", on: str = "2026-10-01") -> bool:
    return agreement.record_results_due(
        calculation_id, TERMS, period, D(amount), D(total), D(previous) if previous else None,
        reason, on)


def pay(agreement: Agreement, due_id: str) -> None:
    agreement.pay_results_due(due_id, [f"{due_id}-{n}" for n in range(len(agreement.parties))],
                              "REM-1", this_month=NOW)


def party_spend(agreement: Agreement) -> dict[object, Decimal]:
    spent: dict[object, Decimal] = {}
    for s in agreement.spend.values():
        spent[s["provider_id"]] = spent.get(s["provider_id"], D(0)) + s["amount"]
    return spent


# --------------------------------------------------------------------------- the split


@pytest.mark.parametrize(("total", "weights", "shares"), [
    ("1125.00", ("600", "300"), ("750.00", "375.00")),
    ("1125.01", ("600", "300"), ("750.01", "375.00")),
    ("1000.00", ("100", "100", "100"), ("333.34", "333.33", "333.33")),
    ("-199.99", ("600", "300"), ("-133.33", "-66.66")),
    ("0.01", ("1", "1"), ("0.01", "0.00")),
])
def test_a_results_payment_is_shared_by_allocation_to_the_penny(
        total: str, weights: tuple[str, ...], shares: tuple[str, ...]) -> None:
    assert share_out(D(total), [D(w) for w in weights]) == [D(s) for s in shares]


def test_the_split_is_the_rule_variations_scale_parties_by() -> None:
    agreement = active(((P1, "100.00"), (P2, "100.00"), (P3, "100.00")))
    agreement.vary("v1", VariationKind.GROWTH, D("700.00"), None, "more")
    # 300.00 -> 1,000.00: the same shares share_out gives £1,000.00
    assert [p["allocation"] for p in agreement.parties] == share_out(
        D("1000.00"), [D("100"), D("100"), D("100")])


@pytest.mark.parametrize(("period", "starts", "ends", "month"), [
    ("2026-Q3", "2026-07-01", "2029-03-31", "2026-09"),
    ("2026-Q3", "2026-07-01", "2026-08-15", "2026-08"),  # the term ends within the quarter
    ("2026-Q3", "2026-08-10", "2029-03-31", "2026-09"),
    ("2026-08", "2026-07-01", "2029-03-31", "2026-08"),
])
def test_a_results_payment_is_spend_for_the_last_month_of_its_period_within_the_term(
        period: str, starts: str, ends: str, month: str) -> None:
    assert results_month(period, starts, ends) == month


# --------------------------------------------------------------------------- due, then paid


def test_a_calculation_becomes_due_split_between_the_parties_once() -> None:
    agreement = active()
    assert due(agreement, "c1", "600.00", "600.00")
    assert not due(agreement, "c1", "600.00", "600.00")  # the same calculation, again
    (event,) = agreement.collect_events()
    item = agreement.results_due["c1"]
    assert (item["period"], item["amount"], item["paid"], item["over_budget_by"]) == (
        "2026-Q3", D("600.00"), False, D(0))
    assert [(s["provider_id"], s["amount"]) for s in item["shares"]] == [
        (P1, D("400.00")), (P2, D("200.00"))]
    assert agreement.due == D("600.00")
    assert agreement.spent == D(0)
    assert event.shares == item["shares"]


def test_nothing_is_due_for_a_calculation_of_nothing() -> None:
    agreement = active()
    assert not due(agreement, "c0", "0.00", "0.00")
    assert agreement.collect_events() == []


def test_paying_moves_spend_by_each_partys_share_for_the_month_in_the_term() -> None:
    agreement = active()
    due(agreement, "c1", "600.00", "600.00")
    pay(agreement, "c1")
    assert agreement.spent == D("600.00")
    assert agreement.due == D(0)
    assert agreement.results_due["c1"]["paid"]
    assert sorted((s["provider_id"], s["amount"], s["period"], s["due_id"])
                  for s in agreement.spend.values()) == sorted([
        (P1, D("400.00"), "2026-09", "c1"), (P2, D("200.00"), "2026-09", "c1")])
    agreement.collect_events()
    unchanged(agreement, lambda: pay(agreement, "c1"), "already paid")
    unchanged(agreement, lambda: pay(agreement, "c9"), "no results payment c9")


def test_a_recalculation_adjusts_what_is_due_and_spent_worked_by_hand() -> None:
    agreement = active()
    # £1,125.00 for 2026-Q3, over the £900.00 budget by £225.00: due, flagged.
    due(agreement, "c1", "1125.00", "1125.00")
    assert agreement.results_due["c1"]["over_budget_by"] == D("225.00")
    agreement.collect_events()
    unchanged(agreement, lambda: pay(agreement, "c1"),
              r"£1,125.00 would take spend to £1,125.00, over the £900.00 budget: vary")
    agreement.vary("v1", VariationKind.BUDGET_CHANGE, D("300.00"), None, "results")
    pay(agreement, "c1")
    assert agreement.spent == D("1125.00")

    # Recalculated to £1,425.00: £300.00 further due, £225.00 over the £1,200.00 budget.
    due(agreement, "c2", "300.00", "1425.00", "1125.00", "late measurement for 2026-Q3")
    item = agreement.results_due["c2"]
    assert (item["amount"], item["previous_total"], item["calculated_total"], item["reason"],
            item["over_budget_by"]) == (D("300.00"), D("1125.00"), D("1425.00"),
                                        "late measurement for 2026-Q3", D("225.00"))
    agreement.vary("v2", VariationKind.BUDGET_CHANGE, D("300.00"), None, "results")
    pay(agreement, "c2")

    # Recalculated to £1,225.01: -£199.99 to recover, P1 -133.33 and P2 -66.66.
    due(agreement, "c3", "-199.99", "1225.01", "1425.00", "delivery correction")
    item = agreement.results_due["c3"]
    assert [s["amount"] for s in item["shares"]] == [D("-133.33"), D("-66.66")]
    assert item["over_budget_by"] == D(0)
    assert agreement.due == D("-199.99")
    pay(agreement, "c3")
    assert agreement.spent == D("1225.01")
    assert party_spend(agreement) == {P1: D("816.67"), P2: D("408.34")}
    assert agreement.due == D(0)


def test_due_amounts_are_flagged_while_everything_due_would_exceed_the_budget() -> None:
    agreement = active()
    agreement.record_spend("s1", P1, D("400.00"), "2026-07", None, this_month=NOW)
    due(agreement, "c1", "300.00", "300.00")  # 400 + 300 = 700 of 900: fine
    due(agreement, "c2", "300.00", "600.00", "300.00", "late measurement")  # 1,000: over 100
    assert agreement.results_due["c1"]["over_budget_by"] == D(0)
    assert agreement.results_due["c2"]["over_budget_by"] == D("100.00")
    pay(agreement, "c1")  # 700 spent: the budget takes it
    agreement.collect_events()
    unchanged(agreement, lambda: pay(agreement, "c2"), "over the £900.00 budget")


def test_nothing_is_paid_before_the_agreement_is_in_force() -> None:
    agreement = new_agreement()
    due(agreement, "c1", "100.00", "100.00")
    agreement.collect_events()
    unchanged(agreement, lambda: pay(agreement, "c1"), "before the agreement is active")


def test_a_credit_cannot_take_spend_below_nothing() -> None:
    agreement = active()
    due(agreement, "c1", "-50.00", "0.00", "50.00", "delivery correction")
    with pytest.raises(DomainRuleBroken, match="recover"):
        pay(agreement, "c1")


def test_due_items_and_their_payment_replay_from_the_events() -> None:
    agreement = new_agreement()
    agreement.activate("2026-07-01")
    due(agreement, "c1", "600.00", "600.00")
    pay(agreement, "c1")
    rebuilt = replay(agreement.collect_events())
    assert rebuilt.results_due == agreement.results_due
    assert rebuilt.spend == agreement.spend
    assert rebuilt.spent == D("600.00")
