"""What one principal may see, decided in one place for the regulator API and the web pages.

An unscoped principal sees everything its role admits it to. A scoped one (a regulator's token
held to an organisation, a provider or an agreement, and/or a range of business dates) sees:

- records: the page of a provider, agreement or need only if its scope concerns that record
  as a whole (a provider-scoped token: the provider and the agreements it is a party to; an
  agreement-scoped one: that agreement; an organisation-scoped one: the needs it leads or
  pooled budget into and their agreements; see council.services.integrator.projections.audit_trail
  for what "concerns" means), every scope item at once;
- events: those its scope concerns (the same rule as the API's trail), never other people's
  reads of the audit trail or the council's failed sign-ins;
- moments: views as of a moment inside its date range only, by default the range's end (the
  state then sums up all that happened before, as `GET /audit/state` does).

Which routes admit a scoped principal at all is `council.platform.identity.admission_refusal`'s to
say; this says, record by record, what such a route may show.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Literal
from uuid import UUID

from council.platform.eventlog import EventLog
from council.platform.identity import Principal, Scope
from council.platform.sql import Database
from council.services.integrator.projections.audit_trail import (
    AUDIT_READ_TYPES,
    Subject,
    TrailQuery,
    as_of_within_scope,
    scoped_state,
    subjects_of,
    within_scope,
)
from council.services.integrator.projections.market import NetworkState

Record = Literal["provider", "agreement", "need"]

# Events about the council's own staff rather than the network: their failed sign-ins. A
# scoped principal never sees them.
SIGN_IN_TYPES = frozenset({"SignInFailed", "SignInThrottled"})


class Sight:
    """What `principal` may see: everything, or what its scope's `subjects` concern."""

    def __init__(self, principal: Principal, event_log: EventLog) -> None:
        self.principal = principal
        self.event_log = event_log

    @cached_property
    def subjects(self) -> tuple[Subject, ...]:
        """The scope's organisation, provider and agreement, resolved to their needs and
        agreements from the log itself (as the regulator API resolves them); read once, when
        first needed."""
        if self.scope is None:
            return ()
        return tuple(subjects_of(self.event_log, within_scope(TrailQuery(), self.scope)))

    @property
    def scope(self) -> Scope | None:
        return self.principal.scope

    @property
    def whole(self) -> bool:
        """Sees the whole network (no scope)."""
        return self.scope is None

    def narrowed(self, query: TrailQuery) -> TrailQuery:
        """The query held to the scope (raises OutsideScope for a filter outside it)."""
        return within_scope(query, self.scope)

    def moment(self, as_of: datetime | None) -> datetime | None:
        """The moment a view may show: `as_of` if inside the date range, the range's end if
        none is asked for (raises OutsideScope outside it)."""
        return as_of_within_scope(as_of, self.scope)

    def sees(self, kind: Record, record_id: UUID | str) -> bool:
        """Whether the page of this provider, agreement or need is within sight."""
        if self.whole:
            return True
        wanted = str(record_id)
        return all(wanted in s.streams or (kind == "provider" and s.on_behalf_of is not None
                                           and s.on_behalf_of == wanted.casefold())
                   for s in self.subjects)

    def about(self) -> list[tuple[list[str], str | None]]:
        """Each scope item as (ids, organisation) for the timeline's `within` filter: an event
        must be about one of the ids, or recorded on behalf of the organisation, for every
        item. Empty when the scope names no record (dates only) or there is none."""
        return [(sorted(s.ids), s.on_behalf_of) for s in self.subjects]

    def private_types(self) -> frozenset[str]:
        """Event types withheld from this principal (as the regulator API withholds them)."""
        return frozenset() if self.whole else SIGN_IN_TYPES

    def hidden_types(self) -> Sequence[str]:
        """Event types the pages' timeline withholds: those, and for a scoped viewer every
        audit read too (the API shows a regulator its own reads; the timeline cannot tell a
        reader's own from another's, so it shows none)."""
        return () if self.whole else sorted(self.private_types() | AUDIT_READ_TYPES)

    def state(self, state: NetworkState, db: Database) -> NetworkState:
        """The network state cut down to the scope (its totals those of what is shown)."""
        if self.whole or not self.subjects:
            return state
        return scoped_state(state, db, within_scope(TrailQuery(), self.scope), self.subjects)

    def describe(self) -> str:
        return self.scope.describe() if self.scope else "everything"
