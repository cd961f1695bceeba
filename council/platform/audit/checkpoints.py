"""Signed checkpoints: every so often each service signs (Ed25519) its chain's tip, the count of
events it has published and the last one's hash, and puts the statement on the `<prefix>.audit`
topic, where it is replayable like everything else. A regulator who keeps a checkpoint can later
prove the log still holds exactly those events, whatever the platform's operators do: rewriting
history means forging a signature made with a key that never leaves the deployment.

The writer runs beside the relay in each service (and once more at shutdown, after the relay's
last batch), reading the tip the relay saved; it signs after `audit_checkpoint_every` new events,
or `audit_checkpoint_seconds` after its last checkpoint if anything new was published since.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from council.kernel.contracts.audit import CHECKPOINT, SOURCE, AuditCheckpointSigned
from council.kernel.envelope import EventEnvelope, canonical_json, event_id_for
from council.platform.audit.chain import ChainTip, add_tip_columns, read_tip
from council.platform.audit.keys import key_id, load_signing_key, signature_valid
from council.platform.eventlog import EventLog
from council.platform.settings import Settings
from council.platform.sql import Database

log = structlog.get_logger("audit")

_WRITTEN = (
    "CREATE TABLE IF NOT EXISTS audit_checkpoint_written ("
    " chain TEXT PRIMARY KEY, count BIGINT NOT NULL, signed_at TEXT NOT NULL)"
)
_OUTBOX = (
    "CREATE TABLE IF NOT EXISTS outbox_position ("
    " relay TEXT PRIMARY KEY, notification_id BIGINT NOT NULL)"
)


def statement(checkpoint: AuditCheckpointSigned) -> bytes:
    """The exact bytes signed: the canonical JSON of every field but the signature."""
    return canonical_json(checkpoint.model_dump(mode="json", exclude={"signature"}))


def sign(key: Ed25519PrivateKey, chain: str, tip: ChainTip,
         at: datetime | None = None) -> AuditCheckpointSigned:
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    unsigned = AuditCheckpointSigned(
        chain=chain, count=tip.sequence, hash=tip.hash,
        signed_at=moment.isoformat(timespec="microseconds"),
        key_id=key_id(key.public_key()), signature="",
    )
    signature = base64.b64encode(key.sign(statement(unsigned))).decode("ascii")
    return unsigned.model_copy(update={"signature": signature})


def signature_problem(checkpoint: AuditCheckpointSigned, key: Ed25519PublicKey) -> str | None:
    """None if `key` signed this checkpoint, else what is wrong."""
    if checkpoint.key_id != key_id(key):
        return f"signed by key {checkpoint.key_id}, not the trusted key {key_id(key)}"
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except ValueError:
        return "its signature is not base64"
    if not signature_valid(key, signature, statement(checkpoint)):
        return "its Ed25519 signature does not match its content"
    return None


def envelope_of(checkpoint: AuditCheckpointSigned) -> EventEnvelope:
    """The checkpoint as an event on the audit topic. Its id follows from (chain, count), so the
    same tip signed twice (a restart) is one checkpoint to a reader that drops duplicates."""
    at = datetime.fromisoformat(checkpoint.signed_at)
    return EventEnvelope(
        event_id=event_id_for(SOURCE, checkpoint.chain, checkpoint.count),
        type=CHECKPOINT, schema_version=1, source=SOURCE, stream_id=checkpoint.chain,
        stream_position=checkpoint.count, occurred_at=at, recorded_at=at,
        actor="system:audit-checkpoint", data=checkpoint.model_dump(mode="json"),
    )


class CheckpointWriter:
    """Signs checkpoints over one relay's chain (the relay's tip, in the store's database)."""

    def __init__(self, chain: str, relay_name: str, db: Database, event_log: EventLog,
                 key: Ed25519PrivateKey, every: int = 1000, seconds: float = 60.0) -> None:
        self.chain = chain
        self.relay_name = relay_name
        self.db = db
        self.event_log = event_log
        self.key = key
        self.every = every
        self.seconds = seconds
        with db.transaction() as tx:
            tx.execute(_OUTBOX)
            add_tip_columns(tx, db.dialect)
            tx.execute(_WRITTEN)

    @classmethod
    def for_service(cls, settings: Settings, service: str, db: Database, event_log: EventLog,
                    relay_name: str | None = None) -> CheckpointWriter:
        """The writer over `service`'s chain, signing with the deployment's key. The relay's
        row is found by its name (by default the name OutboxRelay gives itself)."""
        return cls(service, relay_name or f"{service}->{event_log.topic_for(service)}", db,
                   event_log, load_signing_key(settings), settings.audit_checkpoint_every,
                   settings.audit_checkpoint_seconds)

    def _state(self) -> tuple[ChainTip, int, datetime | None]:
        with self.db.transaction() as tx:
            _, tip = read_tip(tx, self.relay_name)
            rows = tx.execute(
                "SELECT count, signed_at FROM audit_checkpoint_written WHERE chain = ?",
                (self.chain,))
        if not rows:
            return tip, 0, None
        return tip, int(rows[0][0]), datetime.fromisoformat(str(rows[0][1]))

    def write(self, force: bool = False) -> AuditCheckpointSigned | None:
        """Sign and publish a checkpoint if one is due (or, with `force`, if anything was
        published since the last); returns it, or None."""
        tip, last_count, last_at = self._state()
        if tip.sequence <= last_count:
            return None
        now = datetime.now(UTC)
        due = (force or last_at is None or tip.sequence - last_count >= self.every
               or (now - last_at).total_seconds() >= self.seconds)
        if not due:
            return None
        checkpoint = sign(self.key, self.chain, tip, now)
        self.event_log.append([envelope_of(checkpoint)])
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO audit_checkpoint_written (chain, count, signed_at) VALUES (?, ?, ?)"
                " ON CONFLICT (chain) DO UPDATE SET count = excluded.count,"
                " signed_at = excluded.signed_at",
                (self.chain, checkpoint.count, checkpoint.signed_at))
        log.debug("audit_checkpoint_signed", chain=self.chain, count=checkpoint.count,
                  hash=checkpoint.hash)
        return checkpoint

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        """Check about once a second until `stop` is set (a failure is retried: the tip stays)."""
        while not stop.is_set():
            try:
                self.write()
            except Exception as exc:
                log.error("audit_checkpoint_failed", chain=self.chain, error=str(exc))
            stop.wait(max(idle_wait, 1.0))
