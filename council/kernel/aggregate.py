"""The base of every aggregate in the platform: `eventsourcing`'s Aggregate, with events
stamped in business time (see council.kernel.clock) so historic records keep their real dates."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.domain import Aggregate

from council.kernel import clock


class CouncilAggregate(Aggregate):
    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()

    class Created(Event, Aggregate.Created):
        pass
