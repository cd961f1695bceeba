"""The hash chain over each source's published events.

Every event a source publishes gets the next `sequence` (1, 2, ...), the `prev_hash` of the event
before it (64 zeros before the first) and its own `hash`: SHA-256 of the canonical JSON of the
envelope without `hash`. Altering an event changes its hash; removing, reordering or inserting one
breaks the sequence or the next event's `prev_hash`; signed checkpoints
(council.platform.audit.checkpoints) pin the tip. The outbox relay seals each batch as it publishes
it and keeps the chain's tip (last sequence and hash) in the same row as its position, so a batch
republished after a crash is sealed exactly as before: byte-identical duplicates, which consumers
already drop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from council.kernel.envelope import EventEnvelope, canonical_json
from council.platform.sql import Tx

GENESIS = "0" * 64

# The relay's row in outbox_position carries the tip; databases from before the chain get the
# columns added (their next event is sequence 1).
TIP_COLUMNS = (
    ("chain_sequence", "BIGINT NOT NULL DEFAULT 0"),
    ("chain_hash", "TEXT NOT NULL DEFAULT ''"),
)

_HASH_MEMBER = b',"hash":"'
_OCCURRED_MEMBER = b',"occurred_at":'


@dataclass(frozen=True)
class ChainTip:
    """The last event sealed so far: its sequence (0 before the first) and hash."""

    sequence: int = 0
    hash: str = GENESIS

    @classmethod
    def stored(cls, sequence: Any, hash_: Any) -> ChainTip:
        return cls(int(sequence or 0), str(hash_ or "") or GENESIS)


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """An event as the relay sealed it into its source's chain: the exact bytes its hash was
    computed with, ready for the log (council.platform.eventlog.Appendable). Not an envelope model:
    building one per event only to hand the log its bytes would double the relay's work of
    sealing."""

    source: str
    stream_id: str
    event_id: str
    sequence: int
    hash: str
    wire: bytes

    def to_json(self) -> bytes:
        return self.wire

    def envelope(self) -> EventEnvelope:
        return EventEnvelope.from_json(self.wire)


def seal(envelopes: Sequence[EventEnvelope], tip: ChainTip) -> tuple[list[SealedEvent], ChainTip]:
    """The envelopes chained after `tip`, in the order given, and the new tip."""
    return seal_bodies([e.model_dump(mode="json") for e in envelopes], tip)


def seal_bodies(bodies: Sequence[dict[str, Any]], tip: ChainTip
                ) -> tuple[list[SealedEvent], ChainTip]:
    """`seal` of envelopes given as their JSON values (EventEnvelope.model_dump(mode="json"),
    as the relay reads them from the store: see CouncilApplication.envelope_body)."""
    sealed: list[SealedEvent] = []
    for given in bodies:
        sequence = tip.sequence + 1
        body = {k: v for k, v in given.items() if k != "hash"}
        body.update(sequence=sequence, prev_hash=tip.hash)
        unsealed = canonical_json(body)
        digest = hashlib.sha256(unsealed).hexdigest()
        # `hash` sorts just before `occurred_at`, and every top-level member from there on is
        # a scalar, so the last `,"occurred_at":` is the envelope's own (one in `data` is
        # earlier): the sealed bytes are the unsealed ones with the hash put in there.
        at = unsealed.rfind(_OCCURRED_MEMBER)
        wire = unsealed[:at] + b',"hash":"' + digest.encode() + b'"' + unsealed[at:]
        sealed.append(SealedEvent(body["source"], body["stream_id"], body["event_id"],
                                  sequence, digest, wire))
        tip = ChainTip(sequence, digest)
    return sealed, tip


def split_hash(raw: bytes) -> tuple[str, bytes] | None:
    """The `hash` an encoded envelope carries and the bytes it must be the SHA-256 of (the
    encoding without its `hash` member); None if it carries none. Keys are sorted and every
    top-level member after `hash` is a scalar, and a quote inside a JSON string is always
    escaped, so the last `,"hash":"` is the envelope's own (one in `data` comes earlier)."""
    at = raw.rfind(_HASH_MEMBER)
    if at < 0:
        return None
    start = at + len(_HASH_MEMBER)
    end = start + 64
    if raw[end : end + 1] != b'"':
        return None
    return raw[start:end].decode("ascii", "replace"), raw[:at] + raw[end + 1 :]


def content_hash(envelope: dict[str, Any]) -> str:
    """The hash an envelope (as parsed JSON) should carry, from its content: tells an event
    whose content was altered from one only re-encoded."""
    body = {k: v for k, v in envelope.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def add_tip_columns(tx: Tx, dialect: str) -> None:
    """Give an outbox_position table from before the chain its tip columns."""
    if dialect == "sqlite":
        existing = {str(row[1]) for row in tx.execute("PRAGMA table_info(outbox_position)")}
    else:
        existing = {str(name) for (name,) in tx.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = 'outbox_position'")}
    for name, ddl in TIP_COLUMNS:
        if name not in existing:
            tx.execute(f"ALTER TABLE outbox_position ADD COLUMN {name} {ddl}")


def read_tip(tx: Tx, relay: str) -> tuple[int, ChainTip]:
    """A relay's stored position and chain tip, read together."""
    rows = tx.execute(
        "SELECT notification_id, chain_sequence, chain_hash FROM outbox_position"
        " WHERE relay = ?", (relay,))
    if not rows:
        return 0, ChainTip()
    notification_id, sequence, hash_ = rows[0]
    return int(notification_id), ChainTip.stored(sequence, hash_)
