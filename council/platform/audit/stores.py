"""Checking a service's own event store against its sealed chain on the log.

The log's chain shows the log was not changed; it says nothing of the store behind it, which
the service reads its aggregates from and would go on building on. So `council audit verify`
also walks each service's store (SQLite or PostgreSQL) beside its chain: every event the relay
published (in the store, up to the relay's position when the check began) must be on the log,
every chained event on the log must be in the store, and each stored event's content, turned
into its envelope as the relay turns it, must seal to exactly the hash the log carries at its
sequence. So an event edited in the store, or deleted from it, is named (service, stream,
position, event id and the log's sequence and place), and so is an event on the log that no
store holds (put on the log, or its stored original deleted).

The relay publishes stored events in the store's order, and the log's chain numbers them in
that order, so the two walks go in step: a store event is matched with the log event of the
same id as both are read, and only what does not match is held until the end (a few events
read ahead of the other side), whatever the store's size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from council.kernel.envelope import event_id_text
from council.platform.audit.chain import ChainTip, read_tip, seal_bodies
from council.platform.audit.verify import Break, ChainSummary, Kind, Place
from council.platform.eventlog import EventLog
from council.platform.eventstore import CouncilApplication, open_application, store_database
from council.platform.settings import Settings

LOOKAHEAD = 2000  # store events read ahead looking for a log event's (a gap costs this many)
PAGE = 1000  # stored events read at once


@dataclass(slots=True)
class _Logged:
    """A distinct event read from the log: where, and what it was sealed as (no hash: read
    from before the chain)."""

    event_id: str
    stream_id: str
    position: int
    sequence: int | None
    prev_hash: str | None
    hash: str | None
    place: Place | None
    raw: bytes


@dataclass(slots=True)
class _Stored:
    notification_id: int
    event_id: str
    body: dict[str, Any]  # its envelope, as the relay makes it (empty if it cannot be made)
    problem: str | None = None  # why its envelope cannot be made


class StoreChecker:
    """One service's store against the events of its source read from the log: fed with
    `logged` (each distinct event, as the chain check reads it), then `finish`."""

    def __init__(self, source: str, app: CouncilApplication, published_up_to: int) -> None:
        self.source = source
        self.app = app
        # Up to here the relay had published when the check began: stored events after it may
        # not be on the log yet.
        self.published_up_to = published_up_to
        self.breaks: list[Break] = []
        self.matched = 0
        self.unpublished = 0
        self._store = self._stored_events()
        self._waiting_log: dict[str, _Logged] = {}
        self._waiting_store: dict[str, _Stored] = {}

    # ------------------------------------------------------------------ reading

    def _stored_events(self) -> Iterator[_Stored]:
        after = 0
        while True:
            page = self.app.recorder.select_notifications(start=after, limit=PAGE,
                                                          inclusive_of_start=False)
            for notification in page:
                if self.app.is_published(notification):
                    yield self._envelope(notification)
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _envelope(self, notification: Notification) -> _Stored:
        try:
            body = self.app.envelope_body(notification)
        except Exception as exc:  # an edit the contract cannot read is an edit too
            event_id = event_id_text(self.source, str(notification.originator_id),
                                     notification.originator_version)
            reason = str(exc).splitlines()[0][:200]
            return _Stored(notification.id, event_id, {
                "stream_id": str(notification.originator_id),
                "stream_position": notification.originator_version}, reason)
        return _Stored(notification.id, str(body["event_id"]), body)

    def logged(self, sequence: int | None, raw: bytes, place: Place | None = None) -> None:
        """An event read from the log (sequence None: from before the chain)."""
        try:
            event = json.loads(raw)
            logged = _Logged(str(event["event_id"]), str(event["stream_id"]),
                             int(event["stream_position"]), sequence, event.get("prev_hash"),
                             event.get("hash"), place, raw)
        except (ValueError, KeyError, TypeError):
            return  # the chain check names a malformed record
        stored = self._waiting_store.pop(logged.event_id, None)
        if stored is not None:
            self._match(logged, stored)
            return
        for _ in range(LOOKAHEAD):
            stored = next(self._store, None)
            if stored is None:
                break
            if stored.event_id == logged.event_id:
                self._match(logged, stored)
                return
            self._waiting_store[stored.event_id] = stored
        self._waiting_log[logged.event_id] = logged

    # ------------------------------------------------------------------ judging

    def _match(self, logged: _Logged, stored: _Stored) -> None:
        self.matched += 1
        if stored.problem is not None:
            self._break(Kind.STORE_EDITED, (
                f"{self._named(stored)} no longer reads as the event it was published as "
                f"({stored.problem}): it was changed in the store"), logged)
            return
        if logged.sequence is None or logged.hash is None or logged.prev_hash is None:
            return  # published before the chain: nothing sealed to compare with
        sealed, _ = seal_bodies([stored.body], ChainTip(logged.sequence - 1, logged.prev_hash))
        if sealed[0].hash != logged.hash:
            self._break(Kind.STORE_EDITED, (
                f"{self._named(stored)} is not what was sealed on the log: its content seals to "
                f"{sealed[0].hash[:12]}..., the log's record carries {logged.hash[:12]}...: it "
                "was changed in the store after it was published"), logged)

    def finish(self) -> None:
        """Everything left unmatched: read the rest of the store, and judge."""
        for stored in self._store:
            logged = self._waiting_log.pop(stored.event_id, None)
            if logged is not None:
                self._match(logged, stored)
            else:
                self._waiting_store[stored.event_id] = stored
        for logged in self._waiting_log.values():
            self._missing(logged)
        for stored in sorted(self._waiting_store.values(), key=lambda s: s.notification_id):
            if stored.notification_id > self.published_up_to:
                self.unpublished += 1  # not published yet when the check began
            else:
                self.breaks.append(Break(Kind.STORE_EXTRA, self.source, (
                    f"{self._named(stored)} was published (the relay had passed it) but is "
                    "not on the log: it was removed from the log, or put in the store "
                    "behind the relay"), event_id=stored.event_id))
        self._waiting_log.clear()
        self._waiting_store.clear()

    def _missing(self, logged: _Logged) -> None:
        try:
            held = self.app.recorder.select_events(UUID(logged.stream_id),
                                                   gt=logged.position - 1, lte=logged.position)
        except ValueError:
            held = []
        where = (f"stream {logged.stream_id} position {logged.position} (event "
                 f"{logged.event_id})")
        if held:
            self._break(Kind.STORE_EDITED, (
                f"{where} is on the log, and the store holds an event there that is not it "
                "(not published as it, or under another type): it was changed in the store"),
                logged)
            return
        self._break(Kind.STORE_MISSING, (
            f"{where} is on the log but not in {self.source}'s event store: it was deleted from "
            "the store, or put on the log without ever being stored"), logged)

    def _named(self, stored: _Stored) -> str:
        body = stored.body
        return (f"the stored event at stream {body['stream_id']} position "
                f"{body['stream_position']} (event {stored.event_id}, notification "
                f"{stored.notification_id})")

    def _break(self, kind: Kind, detail: str, logged: _Logged) -> None:
        self.breaks.append(Break(kind, self.source, detail, logged.sequence, logged.event_id,
                                 logged.place))

    def summarise(self, summary: ChainSummary) -> None:
        summary.stored = self.matched
        summary.unpublished = self.unpublished


@dataclass
class ServiceStore:
    """A service's event store as the check reads it: the application (which turns stored
    events into envelopes as the relay does) and how far its relay had published."""

    app: CouncilApplication
    published_up_to: int

    def checker(self, source: str) -> StoreChecker:
        return StoreChecker(source, self.app, self.published_up_to)


def relay_position(settings: Settings, source: str, relay_name: str) -> int:
    """The last stored event (notification id) the service's relay has published."""
    db = store_database(settings, source)
    try:
        with db.reading() as tx:
            if db.dialect == "sqlite":
                found = tx.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                   " AND name = 'outbox_position'")
            else:
                found = tx.execute("SELECT 1 FROM information_schema.tables WHERE"
                                   " table_schema = current_schema()"
                                   " AND table_name = 'outbox_position'")
            if not found:
                return 0  # its relay has never run: nothing is published
            position, _ = read_tip(tx, relay_name)
    finally:
        db.close()
    return position


Stores = dict[str, "ServiceStore | Break"]


@contextmanager
def service_stores(settings: Settings, applications: Mapping[str, type[CouncilApplication]],
                   event_log: EventLog) -> Iterator[Stores]:
    """Each service's store (`applications`: source -> its application class, which the
    caller names, so the platform never reaches up into the services), as configured (SQLite
    files or PostgreSQL schemas), opened for the block; or, for one that cannot be, why not (a
    failure once its chain has events: a store that is not there is not an empty one)."""
    stores: Stores = {}
    with ExitStack() as opened:
        for source, application in applications.items():
            if not settings.uses_postgres and not settings.sqlite_path(source).exists():
                stores[source] = Break(Kind.STORE_UNREADABLE, source, (
                    f"there is no event store at {settings.sqlite_path(source)}"))
                continue
            try:
                # The relay's position first: what it had published by then is on the log.
                published = relay_position(settings, source,
                                           f"{source}->{event_log.topic_for(source)}")
                app = open_application(application, settings)
                opened.callback(app.close)
            except Exception as exc:
                stores[source] = Break(Kind.STORE_UNREADABLE, source, (
                    f"its event store cannot be opened: {str(exc).splitlines()[0][:300]}"))
                continue
            stores[source] = ServiceStore(app, published)
        yield stores
