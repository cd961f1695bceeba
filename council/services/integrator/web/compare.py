"""The network on two dates, compared: which providers and agreements were added, which
changed (a provider's status; an agreement's status, budget or end) and which ended. Works on
what the as-of read models hold for each date; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Seen:
    """One record as it stood on a date."""

    record_id: str
    kind: str  # "provider" or "agreement"
    name: str
    status: str
    budget: Decimal | None = None
    ends_on: str | None = None


@dataclass(frozen=True)
class Change:
    record: Seen
    was: Seen | None
    how: str  # in words


@dataclass
class Comparison:
    added: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    ended: list[Change] = field(default_factory=list)


_ENDED = {"ended", "exited", "rejected"}


def _how(was: Seen, now: Seen) -> str:
    said: list[str] = []
    if was.status != now.status:
        said.append(f"{was.status.replace('_', ' ')} → {now.status.replace('_', ' ')}")
    if was.budget is not None and now.budget is not None and was.budget != now.budget:
        said.append(f"budget £{was.budget:,.0f} → £{now.budget:,.0f}")
    if was.ends_on and now.ends_on and was.ends_on != now.ends_on:
        said.append(f"ends {was.ends_on} → {now.ends_on}")
    return "; ".join(said)


def compare(before: list[Seen], after: list[Seen]) -> Comparison:
    """What changed between `before` and `after` (each the records on one date)."""
    then = {(s.kind, s.record_id): s for s in before}
    found = Comparison()
    for now in sorted(after, key=lambda s: (s.kind, s.name.casefold(), s.record_id)):
        was = then.get((now.kind, now.record_id))
        if was is None:
            found.added.append(Change(now, None, f"new, {now.status.replace('_', ' ')}"))
            continue
        how = _how(was, now)
        if not how:
            continue
        if now.status in _ENDED and was.status not in _ENDED:
            found.ended.append(Change(now, was, how))
        else:
            found.changed.append(Change(now, was, how))
    return found
