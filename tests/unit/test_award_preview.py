"""What an award would do to the market before it is decided
(council.services.integrator.domain.award_preview), with the figures worked by hand."""

from __future__ import annotations

from decimal import Decimal

from council.services.integrator.domain.award_preview import Held, Proposed, preview, split

WM, PH, SS = "weight-management", "public-health", "stop-smoking"


def test_an_award_to_a_new_vcse_moves_the_shares_and_the_concentration() -> None:
    # Now: A (VCSE) holds £600 in weight management (so public health), B (SME) £400 in stop
    # smoking (so public health): £1,000 in all, VCSE 60%, SME 40%.
    held = [Held("A", (WM, PH), 600_00), Held("B", (SS, PH), 400_00)]
    kinds = {"A": "vcse", "B": "sme", "C": "vcse"}
    found = preview(held, kinds, [WM, PH], [Proposed(("C",), 1000_00)])
    assert (found.before.total_pence, found.before.vcse_pct, found.before.sme_pct) == (
        1000_00, Decimal("60.00"), Decimal("40.00"))
    # With £1,000 to C (VCSE): £2,000; VCSE 600 + 1,000 = 1,600 -> 80%; SME 400 -> 20%.
    assert (found.after.total_pence, found.after.vcse_pct, found.after.sme_pct) == (
        2000_00, Decimal("80.00"), Decimal("20.00"))
    weight, health = found.categories
    # Weight management: A alone (HHI 100^2 = 10,000), then A 37.5% and C 62.5%:
    # 37.5^2 + 62.5^2 = 1,406.25 + 3,906.25 = 5,312.50; C holds most, over half.
    assert (weight.providers_before, weight.providers_after) == (1, 2)
    assert (weight.hhi_before, weight.hhi_after) == (Decimal("10000.00"), Decimal("5312.50"))
    assert (weight.largest_after, weight.largest_share_after, weight.dependent) == (
        "C", Decimal("62.50"), True)
    # Public health: A 60%, B 40% (3,600 + 1,600 = 5,200), then A 30%, B 20%, C 50%
    # (900 + 400 + 2,500 = 3,800); C's half is where dependence begins.
    assert (health.providers_before, health.providers_after) == (2, 3)
    assert (health.hhi_before, health.hhi_after) == (Decimal("5200.00"), Decimal("3800.00"))
    assert (health.largest_share_after, health.dependent) == (Decimal("50.00"), True)
    assert found.single_provider_awards == 1


def test_a_partnership_shares_the_award_as_a_decision_does() -> None:
    # £100.01 between three: £33.33 each (£99.99), the 2p over to the first.
    assert split(100_01, 3) == [33_35, 33_33, 33_33]
    found = preview([], {"A": "vcse", "B": "sme"}, [WM, PH], [Proposed(("A", "B"), 100_00)])
    assert (found.after.vcse_pct, found.after.sme_pct) == (Decimal("50.00"), Decimal("50.00"))
    assert found.categories[0].hhi_after == Decimal("5000.00")  # 50^2 + 50^2
    assert found.categories[0].hhi_before is None  # nothing held before
    assert found.single_provider_awards == 0


def test_nothing_picked_changes_nothing() -> None:
    held = [Held("A", (WM, PH), 600_00)]
    found = preview(held, {"A": "vcse"}, [WM, PH], [Proposed(("B",), 0)])
    assert found.before == found.after
    assert all(c.hhi_before == c.hhi_after for c in found.categories)
