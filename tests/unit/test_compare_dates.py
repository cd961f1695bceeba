"""The network compared on two dates (council.services.integrator.web.compare)."""

from __future__ import annotations

from decimal import Decimal

from council.services.integrator.web.compare import Seen, compare


def test_what_was_added_changed_and_ended_between_two_dates() -> None:
    before = [Seen("p1", "provider", "Hillside", "applied"),
              Seen("p2", "provider", "Ashby Cars", "approved"),
              Seen("a1", "agreement", "Clubs", "active", Decimal(100_000), "2027-03-31"),
              Seen("a2", "agreement", "Buses", "active", Decimal(50_000), "2026-03-31")]
    after = [Seen("p1", "provider", "Hillside", "approved"),
             Seen("p2", "provider", "Ashby Cars", "approved"),
             Seen("p3", "provider", "Eastmoor Trust", "applied"),
             Seen("a1", "agreement", "Clubs", "active", Decimal(125_000), "2028-03-31"),
             Seen("a2", "agreement", "Buses", "ended", Decimal(50_000), "2026-03-31")]
    found = compare(before, after)
    assert [(c.record.name, c.how) for c in found.added] == [("Eastmoor Trust", "new, applied")]
    assert [(c.record.name, c.how) for c in found.changed] == [
        ("Clubs", "budget £100,000 → £125,000; ends 2027-03-31 → 2028-03-31"),
        ("Hillside", "applied → approved")]
    assert [(c.record.name, c.how) for c in found.ended] == [("Buses", "active → ended")]


def test_the_same_network_twice_has_nothing_to_say() -> None:
    same = [Seen("p1", "provider", "Hillside", "approved")]
    found = compare(same, same)
    assert (found.added, found.changed, found.ended) == ([], [], [])
