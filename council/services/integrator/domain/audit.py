"""An audit read: someone (a regulator, internal audit) reading the audit trail. Recorded as it
starts, before anything is served, and again when it ends with how much was returned, so what a
reader saw is itself part of the trail. A failed sign-in to the web pages, and the throttle it
may begin, are part of the trail too. No I/O here."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate
from council.kernel.errors import DomainRuleBroken


class AuditRead(CouncilAggregate):
    id: UUID

    class Started(CouncilAggregate.Created):
        token_id: str
        role: str
        label: str
        endpoint: str
        query: dict[str, str]
        scope: dict[str, str]

    class Finished(CouncilAggregate.Event):
        returned: int
        completed: bool

    @event(Started)
    def __init__(self, token_id: str, role: str, label: str, endpoint: str,
                 query: dict[str, str], scope: dict[str, str]) -> None:
        self.token_id = token_id
        self.role = role
        self.label = label
        self.endpoint = endpoint
        self.query = query
        self.scope = scope
        self.returned: int | None = None
        self.completed = False

    def finish(self, returned: int, completed: bool) -> None:
        if self.returned is not None:
            raise DomainRuleBroken(f"audit read {self.id} has already finished")
        if returned < 0:
            raise DomainRuleBroken("an audit read cannot return fewer than no items")
        self._finished(returned, completed)

    @event(Finished)
    def _finished(self, returned: int, completed: bool) -> None:
        self.returned = returned
        self.completed = completed


def check_failures_counted(account_failures: int, address_failures: int) -> None:
    if account_failures < 1 and address_failures < 1:
        raise DomainRuleBroken("a failed sign-in counts at least itself")


class SignInAttempt(CouncilAggregate):
    """One failed sign-in (never with what was typed as the password), and the throttle it
    began, if it brought the failures to the limit."""

    id: UUID

    class Failed(CouncilAggregate.Created):
        account: str | None
        address: str
        reason: str
        account_failures: int
        address_failures: int

    class Throttled(CouncilAggregate.Event):
        account: str | None
        address: str
        by: str
        failures: int
        window_seconds: int
        until: datetime

    @event(Failed)
    def __init__(self, account: str | None, address: str, reason: str, account_failures: int,
                 address_failures: int) -> None:
        check_failures_counted(account_failures, address_failures)
        self.account = account
        self.address = address
        self.reason = reason
        self.account_failures = account_failures
        self.address_failures = address_failures
        self.throttled_until: datetime | None = None

    def throttle(self, by: str, failures: int, window_seconds: int, until: datetime) -> None:
        if self.throttled_until is not None:
            raise DomainRuleBroken(f"sign-in attempt {self.id} has already begun a throttle")
        self._throttled(self.account, self.address, by, failures, window_seconds, until)

    @event(Throttled)
    def _throttled(self, account: str | None, address: str, by: str, failures: int,
                   window_seconds: int, until: datetime) -> None:
        self.throttled_until = until
