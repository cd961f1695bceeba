"""The outbox relay: copies a service's stored events to the shared log, in order, at least once.

The event store is the source of truth. The relay reads its notification log after the last
position it published, appends that batch to the shared log, then records the new position in
the same database as the store. A crash between the append and the save republishes the batch;
events keep their ids, so consumers drop the duplicates.

Each batch is sealed into the source's audit hash chain (council.platform.audit.chain) as it is
published; the chain's tip is saved in the same row as the position, so a republished batch is
sealed the same way and its duplicates are byte-identical. Given a checkpoint writer, the relay
signs a checkpoint over the chain's new tip as soon as each batch is on the log: an event forged
onto the log at the chain's tip is then told from the real one published after it by a signature,
not only once a later event links to one of them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from council.platform.audit.chain import ChainTip, add_tip_columns, read_tip, seal_bodies
from council.platform.eventlog import EventLog
from council.platform.eventstore import CouncilApplication
from council.platform.sql import Database

if TYPE_CHECKING:
    from council.platform.audit.checkpoints import CheckpointWriter

log = structlog.get_logger("relay")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox_position ("
    " relay TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)"
)


class OutboxRelay:
    def __init__(
        self, app: CouncilApplication, event_log: EventLog, db: Database, batch_size: int = 500,
        checkpoints: CheckpointWriter | None = None,
    ) -> None:
        self.app = app
        self.event_log = event_log
        self.db = db
        self.batch_size = batch_size
        self.checkpoints = checkpoints  # signs each batch's new tip, if given
        self.name = f"{app.service}->{event_log.topic_for(app.service)}"
        # The position this relay last saved. A service runs one relay, so once it has saved,
        # it knows the position without asking the database before every batch (a round
        # trip, or three with the transaction, per batch). Until then it reads it.
        self._saved: int | None = None
        with db.transaction() as tx:
            tx.execute(_SCHEMA)
            add_tip_columns(tx, db.dialect)

    def position(self) -> int:
        if self._saved is not None:
            return self._saved
        with self.db.reading() as tx:
            rows = tx.execute(
                "SELECT notification_id FROM outbox_position WHERE relay = ?", (self.name,)
            )
        return int(rows[0][0]) if rows else 0

    def _resume(self) -> tuple[int, ChainTip]:
        with self.db.transaction() as tx:
            return read_tip(tx, self.name)

    def _save(self, notification_id: int, tip: ChainTip) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO outbox_position (relay, notification_id, chain_sequence, chain_hash)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (relay) DO UPDATE SET"
                " notification_id = excluded.notification_id,"
                " chain_sequence = excluded.chain_sequence, chain_hash = excluded.chain_hash",
                (self.name, notification_id, tip.sequence, tip.hash),
            )
        self._saved = notification_id

    def relay_once(self) -> int:
        """Publish the next batch; returns how many events it carried."""
        after, tip = self._resume()
        notifications = self.app.recorder.select_notifications(
            start=after, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        bodies = [self.app.envelope_body(n) for n in notifications if self.app.is_published(n)]
        envelopes, tip = seal_bodies(bodies, tip)
        self.event_log.append(envelopes)
        self._save(notifications[-1].id, tip)
        if self.checkpoints is not None and envelopes:
            self._sign()
        return len(notifications)

    def _sign(self) -> None:
        """A checkpoint over the batch just published. A failure loses nothing: the service's
        checkpoint writer signs the tip again within a second."""
        assert self.checkpoints is not None
        try:
            self.checkpoints.write(force=True)
        except Exception as exc:
            log.error("audit_checkpoint_failed", relay=self.name, error=str(exc))

    def pending(self) -> int:
        """How many stored events have not been published yet."""
        newest = self.app.recorder.max_notification_id() or 0
        return max(0, newest - self.position())

    def drain(self) -> int:
        """Publish everything stored so far."""
        total = 0
        while moved := self.relay_once():
            total += moved
        return total

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        """Relay until `stop` is set, backing off on errors (nothing is skipped on failure)."""
        backoff = idle_wait
        while not stop.is_set():
            try:
                moved = self.relay_once()
                backoff = idle_wait
            except Exception as exc:
                log.error("relay_failed", relay=self.name, error=str(exc))
                backoff = min(backoff * 2 if backoff > idle_wait else 0.5, 10.0)
                stop.wait(backoff)
                continue
            if moved:
                log.debug("relayed", relay=self.name, events=moved)
            else:
                stop.wait(idle_wait)
