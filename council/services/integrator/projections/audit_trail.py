"""The audit trail as a regulator reads it: which events of the shared log a query selects, how a
token's scope narrows the query, and the network state cut down to the scope.

What an event *concerns* (the organisation, provider and agreement filters):

- an **agreement**: the events of its own stream, and every event whose data names its id
  (the outcomes service's rate cards, attributions, payments and delivery reports, lessons);
- a **provider**: the events of its own stream (the registry's record of it), every event whose
  data names its id (awards, parties, market engagement, partnership members, spend, delivery
  reports), and everything that concerns an agreement it is a party to;
- an **organisation** (a name such as `Northshire Police`, or `council`, or a provider's id, any
  case): events recorded on its behalf (the envelope's `organisation`), the events of every need
  it leads or pooled budget into, and everything that concerns the agreements drafted for those
  needs.

Ids are UUIDs, so an id appearing anywhere in an event's data is a reference to that thing.
Reads of the audit trail (`AuditReadStarted`, `AuditReadFinished`) concern their reader, not
what was asked about: they match no organisation, provider or agreement filter.

Events come in log order (each stream in order), each once: a copy republished by the
at-least-once relay is passed over as every consumer passes it over. The bytes are the log's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from council.kernel.clock import moment_text
from council.platform.eventlog import EventLog
from council.platform.identity import Scope
from council.platform.settings import SERVICE_NAMES
from council.platform.sql import Database
from council.services.integrator.projections.market import (
    NetworkState,
    NetworkTotals,
    ProviderState,
)
from council.services.integrator.projections.need_queries import list_needs

TRAIL_SOURCES = SERVICE_NAMES
AUDIT_READ_TYPES = frozenset({"AuditReadStarted", "AuditReadFinished"})
# The log holds canonical JSON (no spaces), so these bytes find the events worth parsing.
_RESOLVING_TYPES = (b'"type":"AgreementDrafted"', b'"type":"NeedDefined"',
                    b'"type":"NeedContributionPledged"')


class OutsideScope(Exception):
    """The query asks for something the token's scope does not cover."""

    def __init__(self, scope: Scope, asked: str) -> None:
        super().__init__(f"this token is scoped to {scope.describe()}; {asked} is outside it")
        self.scope = scope


@dataclass(frozen=True)
class TrailQuery:
    """Which events to read: every filter given must hold. Times are inclusive bounds."""

    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    organisation: str | None = None
    provider: UUID | None = None
    agreement: UUID | None = None
    sources: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def described(self) -> dict[str, str]:
        """The query by its HTTP parameter names, as an audit read records it."""
        values: dict[str, str | None] = {
            "from": _text(self.occurred_from, False), "to": _text(self.occurred_to, True),
            "recorded_from": _text(self.recorded_from, False),
            "recorded_to": _text(self.recorded_to, True),
            "organisation": self.organisation,
            "provider": str(self.provider) if self.provider else None,
            "agreement": str(self.agreement) if self.agreement else None,
            "source": ",".join(self.sources) or None, "type": ",".join(self.types) or None,
        }
        return {k: v for k, v in values.items() if v is not None}


def _text(moment: datetime | None, end_of_day: bool) -> str | None:
    return moment_text(moment, end_of_day=end_of_day) if moment else None


def within_scope(query: TrailQuery, scope: Scope | None) -> TrailQuery:
    """The query narrowed to `scope`: what the scope fixes applies to every read, and a filter
    naming something else (another provider, a date outside the range) raises OutsideScope.
    Filters on other dimensions only narrow further (a provider-scoped token may ask for one
    agreement: it sees the events concerning both)."""
    if scope is None:
        return query
    for name, fixed in (("organisation", scope.organisation), ("provider", scope.provider),
                        ("agreement", scope.agreement)):
        asked = getattr(query, name)
        if fixed is not None and asked is not None and _differs(asked, fixed):
            raise OutsideScope(scope, f"{name}={asked}")
    narrowed = replace(query, organisation=scope.organisation or query.organisation,
                       provider=scope.provider or query.provider,
                       agreement=scope.agreement or query.agreement)
    if scope.starts is not None:
        if query.occurred_from is not None and query.occurred_from < scope.starts:
            raise OutsideScope(scope, f"from={_text(query.occurred_from, False)}")
        if query.occurred_to is not None and query.occurred_to < scope.starts:
            raise OutsideScope(scope, f"to={_text(query.occurred_to, True)}")
        narrowed = replace(narrowed, occurred_from=query.occurred_from or scope.starts)
    if scope.ends is not None:
        if query.occurred_to is not None and query.occurred_to > scope.ends:
            raise OutsideScope(scope, f"to={_text(query.occurred_to, True)}")
        if query.occurred_from is not None and query.occurred_from > scope.ends:
            raise OutsideScope(scope, f"from={_text(query.occurred_from, False)}")
        narrowed = replace(narrowed, occurred_to=query.occurred_to or scope.ends)
    return narrowed


def _differs(asked: str | UUID, fixed: str | UUID) -> bool:
    if isinstance(asked, str) and isinstance(fixed, str):
        return asked.strip().casefold() != fixed.strip().casefold()
    return asked != fixed


def as_of_within_scope(as_of: datetime | None, scope: Scope | None) -> datetime | None:
    """The moment a scoped token may see the state at: inside its date range (the state then
    sums up all that happened before); without one asked, the end of the range if it is set."""
    if scope is None:
        return as_of
    if as_of is None:
        return scope.ends
    if (scope.starts and as_of < scope.starts) or (scope.ends and as_of > scope.ends):
        raise OutsideScope(scope, f"as_of={moment_text(as_of)}")
    return as_of


# ---------------------------------------------------------------------- subjects


@dataclass(frozen=True)
class Subject:
    """One filter as events can be tested against it: the streams whose every event concerns it,
    the ids whose mention in an event's data does, and (for an organisation) the name an event
    may be recorded on behalf of."""

    streams: frozenset[str]
    ids: frozenset[str]
    on_behalf_of: str | None = None

    def concerns(self, event: dict[str, Any]) -> bool:
        if event["stream_id"] in self.streams:
            return True
        if self.on_behalf_of is not None and \
                str(event.get("organisation") or "").casefold() == self.on_behalf_of:
            return True
        return _mentions(event.get("data"), self.ids)


def _mentions(value: Any, ids: frozenset[str]) -> bool:
    if isinstance(value, str):
        return value in ids
    if isinstance(value, dict):
        return any(_mentions(v, ids) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, ids) for v in value)
    return False


@dataclass
class _Commissioning:
    """Who leads, pooled into and is party to what, from the integrator's own events."""

    agreements_of_provider: dict[str, set[str]] = field(default_factory=dict)
    agreements_of_need: dict[str, set[str]] = field(default_factory=dict)
    needs_of_organisation: dict[str, set[str]] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        data, kind = event.get("data") or {}, event["type"]
        if kind == "AgreementDrafted":
            agreement = event["stream_id"]
            self.agreements_of_need.setdefault(str(data.get("need_id")), set()).add(agreement)
            for party in data.get("parties") or ():
                self.agreements_of_provider.setdefault(str(party.get("provider_id")),
                                                       set()).add(agreement)
        elif kind in ("NeedDefined", "NeedContributionPledged"):
            name = data.get("lead_organisation" if kind == "NeedDefined" else "partner")
            if isinstance(name, str):
                self.needs_of_organisation.setdefault(name.strip().casefold(),
                                                      set()).add(event["stream_id"])


def _commissioning(event_log: EventLog) -> _Commissioning:
    found = _Commissioning()
    for batch in event_log.read_all([event_log.topic_for("integrator")]):
        for record in batch:
            if any(kind in record.value for kind in _RESOLVING_TYPES):
                found.add(json.loads(record.value))
    return found


def subjects_of(event_log: EventLog, query: TrailQuery) -> list[Subject]:
    """The query's organisation, provider and agreement filters as Subjects (each must hold).
    Providers and organisations are resolved to their agreements from the log itself."""
    subjects: list[Subject] = []
    if query.agreement is not None:
        subjects.append(Subject(frozenset({str(query.agreement)}),
                                frozenset({str(query.agreement)})))
    if query.provider is None and query.organisation is None:
        return subjects
    known = _commissioning(event_log)
    if query.provider is not None:
        provider = str(query.provider)
        agreements = known.agreements_of_provider.get(provider, set())
        subjects.append(Subject(frozenset({provider, *agreements}),
                                frozenset({provider, *agreements})))
    if query.organisation is not None:
        name = query.organisation.strip().casefold()
        needs = known.needs_of_organisation.get(name, set())
        agreements = {a for n in needs for a in known.agreements_of_need.get(n, set())}
        subjects.append(Subject(frozenset({*needs, *agreements}), frozenset({*needs, *agreements}),
                                on_behalf_of=name))
    return subjects


# ---------------------------------------------------------------------- the trail


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def selects(query: TrailQuery, subjects: Sequence[Subject], event: dict[str, Any]) -> bool:
    """Whether the query (with its resolved subjects) selects this event."""
    if query.types and event["type"] not in query.types:
        return False
    if query.occurred_from or query.occurred_to:
        occurred = _moment(event["occurred_at"])
        if (query.occurred_from and occurred < query.occurred_from) or \
                (query.occurred_to and occurred > query.occurred_to):
            return False
    if query.recorded_from or query.recorded_to:
        recorded = _moment(event["recorded_at"])
        if (query.recorded_from and recorded < query.recorded_from) or \
                (query.recorded_to and recorded > query.recorded_to):
            return False
    if subjects and event["type"] in AUDIT_READ_TYPES:
        return False
    return all(subject.concerns(event) for subject in subjects)


def trail(event_log: EventLog, query: TrailQuery, subjects: Sequence[Subject],
          reads_of: str | None = None, hidden: frozenset[str] = frozenset(),
          ) -> Iterator[bytes]:
    """The log's bytes of every event the query selects, in log order, each once. With
    `reads_of` (a token id), audit reads by other tokens are withheld: a regulator sees its own
    reads in the trail, not other readers'. Events of the `hidden` types are withheld too."""
    sources = query.sources or TRAIL_SOURCES
    seen: dict[tuple[str, str], int] = {}
    own_reads: set[str] = set()
    for batch in event_log.read_all([event_log.topic_for(s) for s in sources]):
        for record in batch:
            event = json.loads(record.value)
            stream = (event["source"], event["stream_id"])
            if seen.get(stream, 0) >= event["stream_position"]:
                continue  # a republished copy
            seen[stream] = event["stream_position"]
            if reads_of is not None and not _may_see(event, reads_of, own_reads):
                continue
            if event["type"] in hidden:
                continue
            if selects(query, subjects, event):
                yield record.value


def _may_see(event: dict[str, Any], token_id: str, own_reads: set[str]) -> bool:
    """Whether the holder of `token_id` may see this event, an audit read only if it is its own
    (a finished read names only its read id: it is the reader's if its start was)."""
    if event["type"] == "AuditReadStarted":
        if (event.get("data") or {}).get("token_id") != token_id:
            return False
        own_reads.add(event["stream_id"])
    elif event["type"] == "AuditReadFinished":
        return bool(event["stream_id"] in own_reads)
    return True


# ---------------------------------------------------------------------- the state


def scoped_state(state: NetworkState, db: Database, query: TrailQuery,
                 subjects: Sequence[Subject]) -> NetworkState:
    """The network state cut down to the providers and agreements the query's subjects concern;
    its totals are then the totals of what is shown. Without subjects, the state as it is."""
    if not subjects:
        return state
    shown: list[ProviderState] = []
    for provider in state.providers:
        pid = str(provider.provider_id)
        keep = [a for a in provider.active_agreements
                if all(_holds(s, pid, str(a.agreement_id)) for s in subjects)]
        whole = all(pid in s.streams or _is_organisation(s, pid) for s in subjects)
        if whole:
            shown.append(provider)
        elif keep:
            committed = sum((a.allocation for a in keep), Decimal(0))
            spent = sum((a.spent for a in keep), Decimal(0))
            shown.append(provider.model_copy(update={
                "active_agreements": keep, "committed": committed, "spent_under_active": spent,
                "spent_to_date": spent}))
    return NetworkState(totals=_totals(shown, db), providers=shown)


def _holds(subject: Subject, provider_id: str, agreement_id: str) -> bool:
    return agreement_id in subject.streams or provider_id in subject.streams or \
        _is_organisation(subject, provider_id)


def _is_organisation(subject: Subject, provider_id: str) -> bool:
    return subject.on_behalf_of is not None and subject.on_behalf_of == provider_id.casefold()


def _totals(providers: Iterable[ProviderState], db: Database) -> NetworkTotals:
    shown = list(providers)
    agreements = {a.agreement_id: a for p in shown for a in p.active_agreements}
    need_ids = {a.need_id for a in agreements.values()}
    needs = [n for n in list_needs(db, limit=100_000, status="open") if n.need_id in need_ids]
    return NetworkTotals(
        open_needs=len(needs),
        pooled_budget=sum((n.pooled_budget for n in needs), Decimal(0)),
        active_agreements=len(agreements),
        committed=sum((p.committed for p in shown), Decimal(0)),
        spent_to_date=sum((p.spent_to_date for p in shown), Decimal(0)),
        providers_with_active_agreements=sum(1 for p in shown if p.active_agreements),
    )
