"""Payment by results on worked examples; every expected amount is worked out by hand in the
comment beside it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from council.services.outcomes.domain.payments import (
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

    from council.kernel.periods import period_bounds, period_of, periodicity_of

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


# --------------------------------------------------------------------------- the term


def test_how_much_of_a_period_the_term_covers() -> None:
    from datetime import date

    from council.services.outcomes.domain.payments import cover

    starts, ends = date(2023, 10, 2), date(2026, 3, 31)
    # 2023-Q4 has 31 + 30 + 31 = 92 days; from 2 October: 30 + 30 + 31 = 91 of them
    assert (cover("2023-Q4", starts, ends).days, cover("2023-Q4", starts, ends).days_in_period
            ) == (91, 92)
    assert cover("2023-Q2", starts, ends).days == 0  # before the term began
    assert cover("2026-Q2", starts, ends).days == 0  # after it ended
    assert cover("2024-Q1", starts, ends).whole  # 91 of 91 (2024 is a leap year)
    # ended on 15 February 2025: 31 days of January + 15 of February = 46 of Q1's 90
    ended = cover("2025-Q1", date(2024, 1, 1), date(2025, 2, 15))
    assert (ended.days, ended.days_in_period) == (46, 90)
    # a month: from 10 February 2024, 20 of February's 29 days
    assert (cover("2024-02", date(2024, 2, 10), ends).days,
            cover("2024-02", date(2024, 2, 10), ends).days_in_period) == (20, 29)
    # a term ending before it starts covers nothing
    assert cover("2024-02", date(2024, 2, 10), date(2024, 2, 9)).days == 0


def test_a_period_outside_the_term_earns_nothing() -> None:
    from datetime import date

    from council.services.outcomes.domain.payments import cover

    card = RateCard(delivery=(SESSIONS,),
                    outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
                    bands=BANDS, provider_risk_pct=D("40"))
    # The agreement began on 2 October 2023: a measurement for 2023-Q2 (even one beating the
    # target by far) and sessions reported against it earn nothing at all.
    beaten = OutcomeResult(baseline=D("21.0"), actual=D("17.4"), target=D("19.0"),
                           lower_is_better=True)
    calc = calculate(card, "2023-Q2", {"sessions_delivered": D(60)}, {"teen-obesity": beaten},
                     cover("2023-Q2", date(2023, 10, 2), date(2026, 3, 31)))
    assert [(line.description, line.amount) for line in calc.lines] == [
        ("Outside the term", D("0"))]
    assert calc.lines[0].basis == (
        "the agreement's term, 2023-10-02 to 2026-03-31, does not cover 2023-Q2 "
        "(2023-04-01 to 2023-06-30): nothing due")
    assert (calc.total, calc.achievement_pct) == (D("0.00"), None)


def test_a_period_the_term_covers_in_part_is_pro_rated_by_days() -> None:
    from datetime import date

    from council.services.outcomes.domain.payments import cover

    card = RateCard(delivery=(SESSIONS, MEALS),
                    outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
                    bands=BANDS, provider_risk_pct=D("40"), period_cap=D("10000"))
    # The term starts on 15 February 2025: 14 + 31 = 45 of Q1's 90 days, a half.
    half = cover("2025-Q1", date(2025, 2, 15), date(2026, 3, 31))
    calc = calculate(card, "2025-Q1", {"sessions_delivered": D(31), "meals": D(301)},
                     {"teen-obesity": OBESITY}, half)
    # - sessions: the threshold of 40 a quarter x 45/90 = 20; 31 >= 20: 31 x £25.00 = £775.00,
    #   over the cap of £1,500.00 x 45/90 = £750.00: £750.00
    # - meals: 301 x £4.50 = £1,354.50 (units delivered in the term: paid in full)
    # - obesity: 1.4 x £10,000.00 x 0.6 = £8,400.00 x 45/90 = £4,200.00
    # - 70.0% of target: the £3,000.00 penalty x 45/90 = £1,500.00, the provider bearing 40%:
    #   -£600.00
    # subtotal £750.00 + £1,354.50 + £4,200.00 - £600.00 = £5,704.50, over the period cap of
    # £10,000.00 x 45/90 = £5,000.00: a cap line of -£704.50, total £5,000.00
    assert [(line.description, line.amount) for line in calc.lines] == [
        ("Part period", D("0")),
        ("Delivery: sessions_delivered", D("750.00")),
        ("Delivery: meals", D("1354.50")),
        ("Outcome: teen-obesity", D("4200.00")),
        ("Penalty: below 80% of target", D("-600.00")),
        ("Period cap", D("-704.50")),
    ]
    assert calc.lines[0].basis == (
        "the term covers 45 of the 90 days of 2025-Q1: outcome lines, the bonus or penalty, "
        "delivery thresholds, and line and period caps x 45/90; units delivered in the term "
        "are paid in full")
    assert calc.lines[1].basis == (
        "31 units x £25.00, capped at £750.00 (£1,500.00 x 45/90)")
    assert calc.lines[3].basis == (
        "improvement of 1.4 on the baseline 21.0 x £10,000.00 x weight 0.6 x 45/90")
    assert calc.lines[4].basis == (
        "70.0% of target achieved; £3,000.00 penalty x 45/90 = £1,500.00, the provider "
        "bearing 40%")
    assert calc.lines[5].basis == (
        "the period's payment is capped at £5,000.00 (£10,000.00 x 45/90)")
    assert (calc.total, calc.achievement_pct) == (D("5000.00"), D("70.0"))


def test_a_delivery_threshold_is_pro_rated_and_pennies_round_once() -> None:
    from datetime import date

    from council.services.outcomes.domain.payments import cover

    card = RateCard(delivery=(SESSIONS,),
                    outcomes=(OutcomeRate("employment", rate=D("500")),), bands=BANDS)
    # From 2 October 2023: 91 of 2023-Q4's 92 days.
    most = cover("2023-Q4", date(2023, 10, 2), date(2026, 3, 31))
    employment = OutcomeResult(baseline=D("50"), actual=D("56"), target=D("55"),
                               lower_is_better=False)
    calc = calculate(card, "2023-Q4", {"sessions_delivered": D(39)},
                     {"employment": employment}, most)
    # - sessions: the threshold 40 x 91/92 = 39.565...; 39 is below it: nothing
    # - employment: 6 points x £500.00 = £3,000.00 x 91/92 = £2,967.391... -> £2,967.39
    # - 120.0% of target: the £2,000.00 bonus x 91/92 = £1,978.260... -> £1,978.26
    # total £2,967.39 + £1,978.26 = £4,945.65
    assert [line.amount for line in calc.lines] == [D("0"), D("0"), D("2967.39"),
                                                    D("1978.26")]
    assert calc.lines[1].basis == (
        "39 units, below the threshold of 40 x 91/92 = 39.57: nothing due")
    assert calc.lines[3].basis == "120.0% of target achieved; £2,000.00 bonus x 91/92"
    assert calc.total == D("4945.65")


def test_a_whole_period_in_the_term_is_calculated_as_before() -> None:
    from datetime import date

    from council.services.outcomes.domain.payments import cover

    card = RateCard(outcomes=(OutcomeRate("teen-obesity", rate=D("10000"), weight=D("0.6")),),
                    bands=BANDS, provider_risk_pct=D("40"))
    whole = cover("2026-Q1", date(2025, 1, 1), date(2026, 3, 31))
    assert calculate(card, "2026-Q1", {}, {"teen-obesity": OBESITY}, whole) == calculate(
        card, "2026-Q1", {}, {"teen-obesity": OBESITY})
