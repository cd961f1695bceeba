"""Payment by results on worked examples; every expected amount is worked out by hand in the
comment beside it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.outcomes.payments import (
    Band,
    DeliveryRate,
    OutcomeRate,
    OutcomeResult,
    RateCard,
    calculate,
)

SESSIONS = DeliveryRate("sessions_delivered", rate=D("25"), threshold=D("40"), cap=D("1500"))
MEALS = DeliveryRate("meals", rate=D("4.50"))
BANDS = (
    Band(D("110"), None, D("2000"), "target exceeded"),
    Band(D("80"), D("110"), D("0"), "on track"),
    Band(D("0"), D("80"), D("-3000"), "below 80% of target"),
)
OBESITY = OutcomeResult(baseline=D("21.0"), actual=D("19.6"), target=D("19.0"),
                        lower_is_better=True)


def amounts(card: RateCard, units: dict[str, D], results: dict[str, OutcomeResult]
            ) -> tuple[list[D], D]:
    calc = calculate(card, "2026-04", units, results)
    return [line.amount for line in calc.lines], calc.total


def test_delivery_lines_pay_every_unit_once_over_the_threshold() -> None:
    card = RateCard(delivery=(SESSIONS, MEALS))
    # 52 sessions x £25 = £1,300.00; 301 meals x £4.50 = £1,354.50; total £2,654.50
    assert amounts(card, {"sessions_delivered": D(52), "meals": D(301)}, {}) == (
        [D("1300.00"), D("1354.50")], D("2654.50"))


def test_below_the_threshold_a_delivery_line_pays_nothing() -> None:
    card = RateCard(delivery=(SESSIONS,))
    # 39 sessions < threshold 40: £0; exactly 40: 40 x £25 = £1,000.00
    assert amounts(card, {"sessions_delivered": D(39)}, {}) == ([D("0")], D("0.00"))
    assert amounts(card, {"sessions_delivered": D(40)}, {}) == ([D("1000.00")], D("1000.00"))


def test_a_line_cap_limits_the_line() -> None:
    card = RateCard(delivery=(SESSIONS,))
    # 70 x £25 = £1,750.00, capped at £1,500.00
    calc = calculate(card, "2026-04", {"sessions_delivered": D(70)}, {})
    assert calc.total == D("1500.00")
    assert "capped at £1,500.00" in calc.lines[0].basis


def test_outcome_payment_with_attribution_and_a_penalty_shared_by_risk() -> None:
    card = RateCard(
        outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
        bands=BANDS, provider_risk_pct=D("40"),
    )
    # improvement 21.0 - 19.6 = 1.4 points x £10,000 x 0.6 = £8,400.00
    # achieved 1.4 of the 2.0 targeted (21.0 - 19.0) = 70.0% -> band "below 80%": -£3,000,
    # the provider bearing 40%: -£1,200.00. Total £8,400.00 - £1,200.00 = £7,200.00
    calc = calculate(card, "2026-Q1", {}, {"teen-obesity": OBESITY})
    assert [line.amount for line in calc.lines] == [D("8400.00"), D("-1200.00")]
    assert calc.achievement_pct == D("70.0")
    assert calc.total == D("7200.00")
    assert calc.lines[1].description == "Penalty: below 80% of target"


def test_higher_is_better_outcome_earns_a_bonus_in_full() -> None:
    employment = OutcomeResult(baseline=D("50"), actual=D("56"), target=D("55"),
                               lower_is_better=False)
    card = RateCard(outcomes=(OutcomeRate("employment", rate=D("500")),), bands=BANDS,
                    provider_risk_pct=D("40"))
    # improvement 6 points x £500 = £3,000.00; achieved 6 of 5 targeted = 120.0% -> bonus
    # £2,000.00 paid in full (risk share applies to penalties only). Total £5,000.00
    calc = calculate(card, "2026-Q1", {}, {"employment": employment})
    assert [line.amount for line in calc.lines] == [D("3000.00"), D("2000.00")]
    assert calc.total == D("5000.00")


def test_on_track_band_adds_nothing_but_is_shown() -> None:
    on_track = OutcomeResult(baseline=D("21.0"), actual=D("19.2"), target=D("19.0"),
                             lower_is_better=True)
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("1000")),), bands=BANDS)
    # improvement 1.8 x £1,000 = £1,800.00; 1.8 / 2.0 = 90.0% -> on track, £0.00
    calc = calculate(card, "2026-Q1", {}, {"teen-obesity": on_track})
    assert [line.amount for line in calc.lines] == [D("1800.00"), D("0.00")]
    assert calc.total == D("1800.00")


def test_an_outcome_below_its_threshold_or_getting_worse_pays_nothing() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), threshold=D("0.5")),))
    small = OutcomeResult(baseline=D("21.0"), actual=D("20.7"), target=None, lower_is_better=True)
    worse = OutcomeResult(baseline=D("21.0"), actual=D("22.0"), target=None, lower_is_better=True)
    # improvement 0.3 < threshold 0.5: £0; worse than baseline: improvement 0, £0
    assert amounts(card, {}, {"teen-obesity": small}) == ([D("0")], D("0.00"))
    assert amounts(card, {}, {"teen-obesity": worse}) == ([D("0")], D("0.00"))


def test_no_measurement_yet_pays_nothing_and_no_band() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000")),), bands=BANDS)
    pending = OutcomeResult(baseline=D("21.0"), actual=None, target=D("19.0"),
                            lower_is_better=True)
    calc = calculate(card, "2026-Q1", {}, {"teen-obesity": pending})
    assert [line.amount for line in calc.lines] == [D("0")]
    assert calc.achievement_pct is None
    assert calc.total == D("0.00")


def test_the_payment_is_never_negative() -> None:
    card = RateCard(delivery=(SESSIONS,),
                    outcomes=(OutcomeRate("teen-obesity", rate=D("100")),), bands=BANDS)
    flat = OutcomeResult(baseline=D("21.0"), actual=D("20.9"), target=D("19.0"),
                         lower_is_better=True)
    # sessions 10 < 40: £0; improvement 0.1 x £100 = £10.00; 0.1 / 2.0 = 5.0% -> -£3,000.00
    # at 100% risk; subtotal -£2,990.00 -> floored: +£2,990.00 line, total £0.00
    calc = calculate(card, "2026-04", {"sessions_delivered": D(10)}, {"teen-obesity": flat})
    assert [line.amount for line in calc.lines] == [D("0"), D("10.00"), D("-3000.00"),
                                                    D("2990.00")]
    assert calc.total == D("0.00")


def test_the_period_cap_limits_the_total() -> None:
    card = RateCard(delivery=(MEALS,), period_cap=D("10000"))
    # 2,744 meals x £4.50 = £12,348.00, capped at £10,000.00
    # with a cap line of -£2,348.00
    calc = calculate(card, "2026-04", {"meals": D(2744)}, {})
    assert [line.amount for line in calc.lines] == [D("12348.00"), D("-2348.00")]
    assert calc.total == D("10000.00")


def test_pennies_round_half_up() -> None:
    card = RateCard(delivery=(DeliveryRate("calls", rate=D("0.335")),))
    # 3 x £0.335 = £1.005 -> £1.01 (half up)
    assert amounts(card, {"calls": D(3)}, {}) == ([D("1.01")], D("1.01"))


def test_a_late_correction_changes_the_payment_by_the_difference() -> None:
    card = RateCard(delivery=(SESSIONS, MEALS))
    before = calculate(card, "2026-04", {"sessions_delivered": D(52), "meals": D(301)}, {})
    # the provider corrects 52 sessions to 48: 48 x £25 = £1,200.00 (was £1,300.00)
    after = calculate(card, "2026-04", {"sessions_delivered": D(48), "meals": D(301)}, {})
    assert (before.total, after.total, after.total - before.total) == (
        D("2654.50"), D("2554.50"), D("-100.00"))


def test_a_late_measurement_turns_a_nil_outcome_line_into_a_payment() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
                    bands=BANDS, provider_risk_pct=D("40"))
    pending = OutcomeResult(baseline=D("21.0"), actual=None, target=D("19.0"),
                            lower_is_better=True)
    first = calculate(card, "2026-Q1", {}, {"teen-obesity": pending})
    late = calculate(card, "2026-Q1", {}, {"teen-obesity": OBESITY})
    # nothing at first; then £7,200.00 as worked out above: a difference of £7,200.00
    assert (first.total, late.total) == (D("0.00"), D("7200.00"))


def test_band_edges_include_their_minimum_and_exclude_their_maximum() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("1000")),), bands=BANDS)
    at_80 = OutcomeResult(baseline=D("21.0"), actual=D("19.4"), target=D("19.0"),
                          lower_is_better=True)
    at_110 = OutcomeResult(baseline=D("21.0"), actual=D("18.8"), target=D("19.0"),
                           lower_is_better=True)
    # 1.6 of 2.0 = 80.0%: "on track" (80 <= pct < 110), not the penalty band below it:
    # 1.6 x £1,000 = £1,600.00 + £0.00
    low = calculate(card, "2026-Q1", {}, {"teen-obesity": at_80})
    assert (low.achievement_pct, low.lines[1].description, low.total) == (
        D("80.0"), "Band: on track", D("1600.00"))
    # 2.2 of 2.0 = 110.0%: the bonus band starts there: 2.2 x £1,000 = £2,200.00 + £2,000.00
    high = calculate(card, "2026-Q1", {}, {"teen-obesity": at_110})
    assert (high.achievement_pct, high.total) == (D("110.0"), D("4200.00"))


def test_a_provider_bearing_no_risk_pays_no_penalty() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
                    bands=BANDS, provider_risk_pct=D("0"))
    # £8,400.00 as above; 70% -> the £3,000.00 penalty, the provider bearing 0%: -£0.00
    calc = calculate(card, "2026-Q1", {}, {"teen-obesity": OBESITY})
    assert [line.amount for line in calc.lines] == [D("8400.00"), D("0.00")]
    assert calc.total == D("8400.00")


def test_an_outcome_line_cap_limits_the_line() -> None:
    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), cap=D("20000")),))
    big = OutcomeResult(baseline=D("21.0"), actual=D("18.5"), target=None, lower_is_better=True)
    # 2.5 points x £10,000 x 1 = £25,000.00, capped at £20,000.00
    calc = calculate(card, "2026-Q1", {}, {"teen-obesity": big})
    assert calc.total == D("20000.00")
    assert calc.lines[0].basis.endswith("capped at £20,000.00")


def test_periods_are_months_or_calendar_quarters() -> None:
    from datetime import date

    from services.outcomes.payments import period_bounds, period_of, periodicity_of

    assert period_of(date(2026, 4, 5), "monthly") == "2026-04"
    assert period_of(date(2026, 4, 5), "quarterly") == "2026-Q2"
    assert period_of(date(2026, 12, 31), "quarterly") == "2026-Q4"
    assert period_bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))  # a leap year
    assert period_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_bounds("2026-Q4") == (date(2026, 10, 1), date(2026, 12, 31))
    assert period_bounds("2026-Q1") == (date(2026, 1, 1), date(2026, 3, 31))
    assert (periodicity_of("2026-04"), periodicity_of("2026-Q2")) == ("monthly", "quarterly")
    with pytest.raises(ValueError, match="neither a month"):
        period_bounds("2026-13")
