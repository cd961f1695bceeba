"""A council's scheme of delegation: who may take which financial decision, up to what amount;
and the policy that checks a decision against it. No I/O here. Money is Decimal pounds.

The limits are data an integrator admin sets (each set replaces the last), never constants.
Before a council has a scheme, the policy fails safe: only an integrator admin may take
financial decisions for its needs. Whatever the scheme, nobody approves what they proposed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.contracts.integrator import DecisionKind, DelegatedRole
from council.kernel.errors import InvalidInput, NotAuthorised

# How each kind of decision is named in a sentence: one of them, several of them.
KIND_WORDS: dict[DecisionKind, tuple[str, str]] = {
    DecisionKind.AWARD: ("award", "awards"),
    DecisionKind.VARIATION: ("variation", "variations"),
    DecisionKind.EXTENSION: ("extension", "extensions"),
    DecisionKind.BUSINESS_CASE: ("business case", "business cases"),
    DecisionKind.SPEND: ("payment", "spend"),
    DecisionKind.ENVELOPE_RAISE: ("envelope raise", "envelope raises"),
    DecisionKind.PERFORMANCE_OVERRIDE: ("performance override", "performance overrides"),
}
ROLE_WORDS = {DelegatedRole.COMMISSIONER.value: "a commissioner",
              DelegatedRole.INTEGRATOR_ADMIN.value: "an integrator admin"}


def scheme_id_for(council: str) -> UUID:
    """One scheme per council, found by its name (however it is capitalised)."""
    return uuid5(NAMESPACE_URL, f"council:scheme-of-delegation:{council.strip().casefold()}")


def check_limits(limits: list[dict[str, Any]]) -> None:
    """Each role has at most one limit per kind of decision, of no less than nothing."""
    seen: set[tuple[str, str]] = set()
    for limit in limits:
        key = (str(limit["role"]), str(limit["kind"]))
        if key in seen:
            raise InvalidInput("limits", f"{key[0]} has two limits for {key[1]}: give one")
        seen.add(key)
        if limit["up_to"] is not None and limit["up_to"] < 0:
            raise InvalidInput("limits", "a limit cannot be less than nothing")
    if not limits:
        raise InvalidInput("limits", "set at least one limit")


class SchemeOfDelegation(CouncilAggregate):
    """Who may take which financial decision, up to what amount, for the needs a council
    leads."""

    id: UUID

    class Adopted(CouncilAggregate.Created):
        council: str

    @event(Adopted)
    def __init__(self, council: str) -> None:
        self.council = council
        self.limits: list[dict[str, Any]] = []
        self.set_on: str | None = None
        self.reason: str | None = None

    class LimitsSet(CouncilAggregate.Event):
        limits: list[dict[str, Any]]
        set_on: str
        reason: str

    def set_limits(self, limits: list[dict[str, Any]], set_on: str, reason: str) -> None:
        """Replace the limits with these (each: role, kind, up_to pounds or None for none)."""
        check_limits(limits)
        self._limits_set(limits, set_on, reason)

    @event(LimitsSet)
    def _limits_set(self, limits: list[dict[str, Any]], set_on: str, reason: str) -> None:
        self.limits = limits
        self.set_on = set_on
        self.reason = reason

    def limit(self, role: str, kind: DecisionKind) -> tuple[bool, Decimal | None]:
        """Whether `role` may take `kind` at all, and up to what (None: without limit)."""
        for limit in self.limits:
            if (str(limit["role"]), str(limit["kind"])) == (role, kind.value):
                return True, limit["up_to"]
        return False, None

    def roles_for(self, kind: DecisionKind, amount: Decimal) -> list[str]:
        """The roles that may take a decision of `kind` for `amount`, in the order listed."""
        return [str(limit["role"]) for limit in self.limits
                if str(limit["kind"]) == kind.value
                and (limit["up_to"] is None or amount <= limit["up_to"])]


def check_authority(
    scheme: SchemeOfDelegation | None, council: str, kind: DecisionKind, amount: Decimal,
    role: str, approver: str, proposer: str | None = None,
) -> None:
    """Refuse (NotAuthorised, naming the limit) a decision of `kind` for `amount` pounds taken
    by `approver` (role:label, in `role`) unless the council's scheme gives that role the
    authority; and whatever the scheme, by whoever proposed it."""
    one, several = KIND_WORDS[kind]
    money = f"£{amount:,.2f}"
    if proposer is not None and proposer == approver:
        raise NotAuthorised(f"{approver} proposed this {one}, so may not approve it: someone "
                            "else with authority under the scheme of delegation must")
    if scheme is None or scheme.set_on is None:
        if role == DelegatedRole.INTEGRATOR_ADMIN.value:
            return  # fail safe: without a scheme, only an integrator admin decides
        raise NotAuthorised(
            f"no scheme of delegation is set for {council}, so only an integrator admin may "
            f"approve {several} (this one is {money}); an integrator admin must set one before "
            "anyone else can")
    listed, up_to = scheme.limit(role, kind)
    if listed and (up_to is None or amount <= up_to):
        return
    roles = scheme.roles_for(kind, amount)
    who = (" or ".join(ROLE_WORDS.get(r, r) for r in roles) + " must approve it" if roles
           else "no one may approve it under the scheme: its limits must be raised first")
    under = f"under {scheme.council}'s scheme of delegation (set {scheme.set_on})"
    may = f"may approve {several} up to £{up_to:,.2f}" if listed and up_to is not None \
        else f"may not approve {several}"
    raise NotAuthorised(f"{approver} {may} {under}; this one is {money}: {who}")
