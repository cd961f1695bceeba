"""Delivery reports over Kafka, for large providers: the inbound topic and the rejects topic.

Topics (only in the scale-out deployment, COUNCIL_LOG_URL=kafka://...; the embedded deployment
has no broker and so no inbound topic: providers there report over HTTP):

- ``<topic_prefix>.deliveries.inbound`` (COUNCIL_DELIVERIES_INBOUND_TOPIC overrides the name),
  created with COUNCIL_KAFKA_PARTITIONS partitions. Providers key each message by their provider
  id, so one provider's reports stay in one partition, in order. The value is one delivery report
  as JSON: the same fields, and the same validation, as the HTTP body (``DeliveryIn``). Each
  message carries the header ``authorization: Bearer <provider token>``: the same credentials as
  HTTP. The token, not the key, says who is reporting, and a provider may report only against
  its own active agreements.
- ``<topic_prefix>.deliveries.rejects`` (COUNCIL_DELIVERIES_REJECTS_TOPIC): one message per
  rejected report, keyed like the original, whose value is JSON ``{"reason", "field",
  "original", "topic", "partition", "offset", "provider_id"}``: why, which field (or null), the
  original value as text (cut at 64 KiB, with ``"original_truncated": true``), where it was
  read, and the provider if its credentials were valid (the headers, and so the token, are never
  repeated). Service users' personal data is never repeated: ``service_users`` in the original
  is replaced by a note, and an original that is not a JSON object but might hold it is left
  out (``"original": null``); either way with ``"original_redacted": true``. A message
  without valid provider credentials (field ``headers.authorization``),
  malformed JSON, a field that breaks a rule, another provider's agreement or an agreement that
  is not active are all rejected here with the reason.

How it is consumed (``KafkaDeliveryIngest``, a worker of the outcomes service, reading through
librdkafka, since kafka-python decodes each record in the interpreter, taking it from the work
of storing reports; rejects go out through kafka-python): partitions are assigned explicitly
and read from offsets this service tracks itself, in the table
``kafka_inbound_offsets (topic, log_partition, next_offset)`` in the outcomes store's database;
no consumer groups. Each polled batch is grouped by the reporting principal (each distinct
token is authenticated once per batch) and handed to ``Outcomes.report_deliveries`` (the
events record the provider's token as actor, and one correlation id per group); then the
rejects are produced (acks=all, flushed, every send confirmed); only then are the new offsets
stored. Delivery is at least once: if anything fails, or the process dies, before the offsets
are stored, the batch is read again from the tracked offset. A replayed report has the same
provider and idempotency key, hence the same delivery id, so it is recognised and accepted once;
a re-read batch may however produce its rejects again (each names its topic, partition and
offset, so a reader can drop the repeats). A valid report is never lost: the offset moves past
it only after it is stored. If the broker's log is shorter than the tracked offset (a topic
re-created, a broker that lost its data), the partition is read again from its start.

Scale-out: each outcomes instance consumes every inbound partition unless
COUNCIL_DELIVERIES_INGEST_PARTITIONS (e.g. ``0,2``) names the ones it owns; partitions must not
be shared between running instances (it would be harmless, replays being accepted once, but
wasteful).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import confluent_kafka
import structlog
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import ValidationError

from council.kernel.context import CommandContext, command_context, new_correlation_id
from council.kernel.contracts.outcomes import Channel
from council.kernel.errors import ContractViolation, InfrastructureUnavailable
from council.platform.eventlog.findings import LogFinding, LogWatch
from council.platform.eventlog.port import partition_key
from council.platform.identity import Principal, Role, TokenStore
from council.platform.problems import database_fault
from council.platform.settings import Settings
from council.platform.sql import Database
from council.services.outcomes.adapters.personal_data import redacted
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.acceptance import INVALID, DeliveryOutcome
from council.services.outcomes.domain.commands import DeliveryIn

if TYPE_CHECKING:
    from council.platform.runtime import Runtime, Worker

log = structlog.get_logger("kafka_ingest")

MAX_MESSAGE_BYTES = 64 * 1024  # a delivery report is a few hundred bytes
ORIGINAL_LIMIT = 64 * 1024  # how much of a rejected value the rejects topic repeats
BATCH_SIZE = 5000  # messages per batch, stored in one go
POLL_MS = 200
# Once a poll returns something, keep polling this long for more before storing the batch:
# while providers are sending, each poll returns only what arrived since the last, and every
# batch costs a few queries per provider in it plus the offsets, whatever its size.
BATCH_LINGER_S = 0.05
SEND_TIMEOUT_S = 30.0
PARTITIONS_REFRESH_S = 30.0  # how often to look for partitions added to the inbound topic
MAX_REASON = 1000  # characters of a reject's reason
# Failing this long without a batch stored, the ingest counts as stuck (see IngestHealth).
STUCK_AFTER_S = 60.0
HEARTBEAT_S = 10.0  # how often a running ingest records that it is

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kafka_inbound_offsets ("
    " topic TEXT NOT NULL, log_partition INTEGER NOT NULL, next_offset BIGINT NOT NULL,"
    " PRIMARY KEY (topic, log_partition))"
)
# The ingest's health, where the HTTP process (and an operator) can read it: the ingest may run
# in a process of its own (council.platform.workers).
_HEALTH_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kafka_inbound_health ("
    " topic TEXT PRIMARY KEY, state TEXT NOT NULL, failing_since TEXT, failures INTEGER NOT NULL,"
    " last_error TEXT, last_batch_at TEXT, updated_at TEXT NOT NULL)"
)


def bounded(reason: str) -> str:
    """A reason short enough for a reject or a log line, whatever caused it."""
    return reason if len(reason) <= MAX_REASON else reason[:MAX_REASON - 1] + "…"


def infrastructure_fault(exc: BaseException) -> bool:
    """Whether `exc` says the store or the broker is lost (read the batch again later), rather
    than that something in the batch cannot be handled (reject it, go on)."""
    return isinstance(exc, InfrastructureUnavailable) or database_fault(exc) is not None


@dataclass(frozen=True)
class IngestHealth:
    """Whether the ingest is moving: `running`, `failing` (failures since the last batch
    stored, for less than STUCK_AFTER_S) or `stuck` (failing for longer: someone must look)."""

    state: str
    failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    last_batch_at: datetime | None = None
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures,
                "failing_since": _text(self.failing_since), "last_error": self.last_error,
                "last_batch_at": _text(self.last_batch_at), "updated_at": _text(self.updated_at)}


def _text(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def read_health(db: Database, inbound: str) -> IngestHealth | None:
    """The ingest's health as it last recorded it (None: it never ran), `stuck` once it has
    been failing for STUCK_AFTER_S or has not recorded anything for that long."""
    with db.transaction() as tx:
        tx.execute(_HEALTH_SCHEMA)  # the HTTP process may ask before the ingest first ran
        rows = tx.execute("SELECT state, failures, failing_since, last_error, last_batch_at,"
                          " updated_at FROM kafka_inbound_health WHERE topic = ?", (inbound,))
    if not rows:
        return None
    state, failures, since, error, batch_at, updated = rows[0]
    health = IngestHealth(state, int(failures), _moment(since), error, _moment(batch_at),
                          _moment(updated))
    now = datetime.now(UTC)
    silent = health.updated_at is None or (now - health.updated_at).total_seconds() > (
        STUCK_AFTER_S + HEARTBEAT_S)
    long_failing = health.failing_since is not None and (
        now - health.failing_since).total_seconds() > STUCK_AFTER_S
    if silent or long_failing:
        return replace(health, state="stuck")
    return health


def inbound_topic(settings: Settings) -> str:
    return settings.deliveries_inbound_topic or f"{settings.topic_prefix}.deliveries.inbound"


def rejects_topic(settings: Settings) -> str:
    return settings.deliveries_rejects_topic or f"{settings.topic_prefix}.deliveries.rejects"


def owned_partitions(settings: Settings) -> list[int] | None:
    """The inbound partitions this instance consumes (None: all of them)."""
    given = settings.deliveries_ingest_partitions.strip()
    if not given:
        return None
    try:
        return sorted({int(p) for p in given.split(",") if p.strip()})
    except ValueError:
        raise ValueError(
            f"COUNCIL_DELIVERIES_INGEST_PARTITIONS must be partition numbers like 0,2 "
            f"(not {given!r})"
        ) from None


def partition_shares(partitions: int, processes: int) -> list[str]:
    """The inbound partitions shared out among `processes` ingest instances, as their
    COUNCIL_DELIVERIES_INGEST_PARTITIONS values (partition p to instance p mod processes)."""
    return [",".join(str(p) for p in range(first, partitions, processes))
            for first in range(min(processes, partitions))]


def kafka_bootstrap(settings: Settings) -> str | None:
    """host:port of the broker, or None when the deployment's log is not Kafka."""
    if not settings.log_url.startswith("kafka://"):
        return None
    return settings.log_url.removeprefix("kafka://").rstrip("/")


@dataclass(frozen=True)
class Reject:
    """One rejected message, as it goes to the rejects topic."""

    reason: str
    field: str | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    original: bytes | None
    provider_id: UUID | None = None

    def to_json(self) -> bytes:
        # Service users' personal data never reaches the rejects topic (see personal_data).
        try:
            kept, removed = redacted(self.original)
        except Exception:  # whatever it holds, it cannot be read: it is not repeated
            kept, removed = None, True
        original = kept or b""
        body: dict[str, Any] = {
            "reason": bounded(self.reason),
            "field": self.field,
            "original": (original[:ORIGINAL_LIMIT].decode("utf-8", errors="replace")
                         if kept is not None else None),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "provider_id": str(self.provider_id) if self.provider_id else None,
        }
        if len(original) > ORIGINAL_LIMIT:
            body["original_truncated"] = True
        if removed:
            body["original_redacted"] = True
        return json.dumps(body, sort_keys=True, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Inbound:
    """One message as read from the inbound topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass
class IngestCounts:
    """Running totals since the worker started (a replayed report counts as a duplicate)."""

    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    failures: int = 0  # rounds that failed (the batch is read again)


@dataclass
class _FromOnePrincipal:
    principal: Principal
    items: list[tuple[Any, DeliveryIn | Exception]] = field(default_factory=list)


def _authorization(headers: Sequence[tuple[str, bytes | None]] | None) -> str | None:
    for name, value in headers or ():
        if name.lower() == "authorization":
            return (value or b"").decode("utf-8", errors="replace")
    return None


class KafkaDeliveryIngest:
    """Consumes the inbound delivery topic into the outcomes store (see the module docstring)."""

    def __init__(
        self,
        app: Outcomes,
        tokens: TokenStore,
        db: Database,
        bootstrap: str,
        *,
        inbound: str,
        rejects: str,
        partitions: int = 3,
        only_partitions: Sequence[int] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.db = db
        self.bootstrap = bootstrap
        self.inbound = inbound
        self.rejects = rejects
        self.partitions = partitions
        self.only_partitions = list(only_partitions) if only_partitions is not None else None
        self.batch_size = batch_size
        self.counts = IngestCounts()
        self._consumer: Any = None
        self._producer: Any = None
        self._assigned: list[int] = []
        self._found_partitions: list[int] = []
        self._checked_partitions = 0.0
        self._failing_since: datetime | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._last_batch_at: datetime | None = None
        self._recorded = 0.0
        self.watch = LogWatch(f"ingest {inbound}", db, self.findings)
        with db.transaction() as tx:
            tx.execute(_SCHEMA)
            tx.execute(_HEALTH_SCHEMA)
            self.watch.create(tx)

    @classmethod
    def for_settings(
        cls, app: Outcomes, tokens: TokenStore, db: Database, settings: Settings,
        batch_size: int = BATCH_SIZE,
    ) -> KafkaDeliveryIngest | None:
        """The ingest these settings call for, or None when the log is not Kafka."""
        bootstrap = kafka_bootstrap(settings)
        if bootstrap is None:
            return None
        return cls(app, tokens, db, bootstrap, inbound=inbound_topic(settings),
                   rejects=rejects_topic(settings), partitions=settings.kafka_partitions,
                   only_partitions=owned_partitions(settings), batch_size=batch_size)

    # ------------------------------------------------------------------ positions

    def position(self) -> dict[int, int]:
        """The next offset to read from each inbound partition, as stored."""
        with self.db.transaction() as tx:
            rows = tx.execute(
                "SELECT log_partition, next_offset FROM kafka_inbound_offsets WHERE topic = ?",
                (self.inbound,),
            )
        return {int(p): int(o) for p, o in rows}

    def _store_position(self, moved: dict[int, int]) -> None:
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO kafka_inbound_offsets (topic, log_partition, next_offset)"
                " VALUES (?, ?, ?) ON CONFLICT (topic, log_partition)"
                " DO UPDATE SET next_offset = excluded.next_offset",
                [(self.inbound, p, o) for p, o in sorted(moved.items())],
            )

    # ------------------------------------------------------------------ connections

    def _unreachable(self, exc: Exception) -> InfrastructureUnavailable:
        return InfrastructureUnavailable(
            f"Kafka broker at kafka://{self.bootstrap} is unreachable: {type(exc).__name__} {exc}"
        )

    def ensure_topics(self) -> None:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                     bootstrap_timeout_ms=3000, client_id="council-ingest-admin")
        except (KafkaError, OSError) as exc:
            raise self._unreachable(exc) from None
        try:
            missing = {self.inbound, self.rejects} - set(admin.list_topics())
            for topic in sorted(missing):
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([NewTopic(topic, self.partitions, 1)])
        except (KafkaError, OSError) as exc:
            raise self._unreachable(exc) from None
        finally:
            admin.close()

    def _connect(self) -> Any:
        if self._consumer is not None:
            if time.monotonic() - self._checked_partitions > PARTITIONS_REFRESH_S:
                self._assign(self._consumer)
            return self._consumer
        self.ensure_topics()
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                linger_ms=5, batch_size=256 * 1024, max_block_ms=10_000,
                request_timeout_ms=10_000, delivery_timeout_ms=30_000,
                client_id="council-ingest-rejects",
            )
            self._consumer = confluent_kafka.Consumer({
                "bootstrap.servers": self.bootstrap,
                # Required by the client, never used: partitions are assigned, offsets are
                # ours (kafka_inbound_offsets), nothing joins a group or commits.
                "group.id": "council-deliveries-ingest",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # A tracked offset beyond the log's end (the topic was re-created, the broker
                # lost its data) reads the partition again from its start: replays are harmless.
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": 16 * 1024 * 1024,
                "max.partition.fetch.bytes": 4 * 1024 * 1024,
                "fetch.wait.max.ms": 100,
                "reconnect.backoff.max.ms": 1000,
                "client.id": "council-ingest",
            })
        except (KafkaError, confluent_kafka.KafkaException, OSError) as exc:
            self._disconnect()
            raise self._unreachable(exc) from None
        self._assigned = []
        self._assign(self._consumer)
        return self._consumer

    def _assign(self, consumer: Any) -> None:
        """Assign the inbound partitions (this instance's share), each from its tracked
        offset."""
        try:
            metadata = consumer.list_topics(self.inbound, timeout=10)
        except confluent_kafka.KafkaException as exc:
            raise self._unreachable(exc) from None
        topic = metadata.topics.get(self.inbound)
        if topic is None or topic.error is not None or not topic.partitions:
            raise InfrastructureUnavailable(
                f"Kafka broker at kafka://{self.bootstrap} does not know topic {self.inbound}"
            )
        found = sorted(topic.partitions)
        self._found_partitions = found
        wanted = found if self.only_partitions is None else [
            p for p in found if p in self.only_partitions
        ]
        self._checked_partitions = time.monotonic()
        if wanted == self._assigned:
            return
        # Called only between batches, when the stored offsets are where the consumer is.
        stored = self.position()
        consumer.assign([confluent_kafka.TopicPartition(self.inbound, p, stored.get(p, 0))
                         for p in wanted])
        self._assigned = wanted
        log.info("kafka_ingest_assigned", topic=self.inbound, partitions=wanted,
                 offsets={p: stored.get(p, 0) for p in wanted})

    def _disconnect(self) -> None:
        """Drop the clients; the next round reconnects and seeks to the stored offsets."""
        consumer, producer = self._consumer, self._producer
        self._consumer = self._producer = None
        self._assigned = []
        if consumer is not None:
            with contextlib.suppress(Exception):
                consumer.close()
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=5)

    def close(self) -> None:
        self._disconnect()

    # ------------------------------------------------------------------ work

    def findings(self, position: dict[str, int]) -> list[LogFinding]:
        """What this ingest's latest fetches say is wrong with its stored offsets (see
        council.platform.eventlog.findings): partitions that end before them, and an inbound topic
        whose partition count is not the platform's."""
        consumer = self._consumer
        if consumer is None:
            return []
        found: list[LogFinding] = []
        if self._found_partitions and len(self._found_partitions) != self.partitions:
            found.append(LogFinding(self.inbound, (
                f"topic {self.inbound} has {len(self._found_partitions)} partitions, not the "
                f"{self.partitions} it is made with (COUNCIL_KAFKA_PARTITIONS): the topic was "
                "made again, or changed; a provider's reports may now be in two partitions")))
        for p in self._assigned:
            key = partition_key(self.inbound, p)
            at = position.get(key, 0)
            low, high = consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition(self.inbound, p), cached=True)
            if high >= 0 and at > high:
                found.append(LogFinding(key, (
                    f"the stored offset {at} of {key} is past the topic's end {high}: the "
                    "broker lost messages (it came back empty, or from an older copy); read "
                    f"again from offset {max(low, 0)}"), rewind_to=max(low, 0)))
        return found

    def _check_log(self, consumer: Any, idle: bool) -> None:
        stored = {partition_key(self.inbound, p): o for p, o in self.position().items()}
        rewinds = self.watch.check(stored, force=idle)
        if rewinds:
            self._store_position({int(key.rpartition(":")[2]): o for key, o in rewinds.items()})
            self._assigned = []  # seek again, to the offsets now stored
            self._assign(consumer)

    def run_once(self) -> int:
        """Read, store and acknowledge the next batch; returns how many messages it held."""
        consumer = self._connect()
        messages = self._poll(consumer, POLL_MS, self.batch_size)
        self._check_log(consumer, idle=not messages)
        if not messages:
            return 0
        deadline = time.monotonic() + BATCH_LINGER_S
        while len(messages) < self.batch_size and (left := deadline - time.monotonic()) > 0:
            more = self._poll(consumer, max(1, int(left * 1000)),
                              self.batch_size - len(messages))
            if not more:
                break
            messages.extend(more)
        self.process(messages)
        moved: dict[int, int] = {}
        for m in messages:
            moved[m.partition] = max(moved.get(m.partition, 0), m.offset + 1)
        self._store_position(moved)
        self.counts.messages += len(messages)
        self.counts.batches += 1
        return len(messages)

    def _poll(self, consumer: Any, timeout_ms: int, limit: int) -> list[Inbound]:
        try:
            polled = consumer.consume(num_messages=limit, timeout=timeout_ms / 1000)
        except (confluent_kafka.KafkaException, RuntimeError) as exc:
            raise self._unreachable(exc) from None
        messages: list[Inbound] = []
        for m in polled:
            if m.error() is not None:
                if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                raise self._unreachable(confluent_kafka.KafkaException(m.error()))
            messages.append(Inbound(m.topic(), m.partition(), m.offset(), m.key(), m.value(),
                                    list(m.headers() or [])))
        return messages

    def process(self, messages: Sequence[Any]) -> list[Reject]:
        """Store the valid reports among `messages` and produce a reject for every other one;
        returns the rejects. Raises (having stored nothing it should not have) if the store or
        the broker fails: the caller then reads the batch again."""
        rejects: list[Reject] = []
        principals: dict[str, Principal | str] = {}
        groups: dict[str, _FromOnePrincipal] = {}

        def reject(m: Any, reason: str, where: str | None, who: UUID | None = None) -> None:
            rejects.append(Reject(reason, where, m.topic, m.partition, m.offset, m.key, m.value,
                                  who))

        for m in messages:
            principal = self._principal(_authorization(m.headers), principals)
            if isinstance(principal, str):
                reject(m, principal, "headers.authorization")
                continue
            if not m.value:
                reject(m, "an empty message: the value must be one delivery report as JSON",
                       None, principal.provider_id)
                continue
            if len(m.value) > MAX_MESSAGE_BYTES:
                reject(m, f"a message of {len(m.value)} bytes is over the limit of "
                       f"{MAX_MESSAGE_BYTES} bytes for one delivery report", None,
                       principal.provider_id)
                continue
            report: DeliveryIn | Exception
            try:
                report = DeliveryIn.model_validate_json(m.value)
            except ValidationError as exc:  # rejected by report_deliveries, naming the field
                report = exc
            except Exception as exc:  # whatever else one message does, it is its own reject
                report = ValueError(f"could not be read: {type(exc).__name__}")
            group = groups.setdefault(principal.token_id, _FromOnePrincipal(principal))
            group.items.append((m, report))

        accepted = duplicates = 0
        for group in groups.values():
            outcomes = self._report(group)
            for outcome in outcomes:
                m = group.items[outcome.index][0]
                if outcome.error is not None:
                    reject(m, outcome.error, outcome.field, group.principal.provider_id)
                elif outcome.duplicate:
                    duplicates += 1
                else:
                    accepted += 1
        self._publish(rejects)
        self.counts.accepted += accepted
        self.counts.duplicates += duplicates
        self.counts.rejected += len(rejects)
        if rejects or duplicates:
            log.debug("kafka_ingest_batch", messages=len(messages), accepted=accepted,
                      duplicates=duplicates, rejected=len(rejects))
        return rejects

    def _principal(self, header: str | None, seen: dict[str, Principal | str]) -> Principal | str:
        """The provider the header's token names, or why there is none."""
        if header is None:
            return ("missing credentials: each message needs the header "
                    "'authorization: Bearer <provider token>'")
        if header in seen:
            return seen[header]
        scheme, _, token = header.strip().partition(" ")
        found: Principal | str
        if scheme.lower() != "bearer" or not token.strip():
            found = "the authorization header must be 'Bearer <provider token>'"
        else:
            principal = self.tokens.authenticate(token.strip())
            if principal is None:
                found = "invalid or revoked token"
            elif principal.role is not Role.PROVIDER or principal.provider_id is None:
                found = (f"role {principal.role.value} may not report delivery; only a "
                         "provider's token may")
            else:
                found = principal
        seen[header] = found
        return found

    def _report(self, group: _FromOnePrincipal) -> list[DeliveryOutcome]:
        principal = group.principal
        assert principal.provider_id is not None
        context = CommandContext(actor=principal.actor, organisation=str(principal.provider_id),
                                 correlation_id=new_correlation_id())
        reports = [(i, report) for i, (_, report) in enumerate(group.items)]
        with command_context(context):
            return self._report_split(principal.provider_id, reports)

    def _report_split(self, provider_id: UUID,
                      reports: list[tuple[int, DeliveryIn | Exception]]
                      ) -> list[DeliveryOutcome]:
        """Report these; if that fails for a reason other than a lost store (a report the
        store refuses as breaking its published contract, one that breaks the code), report
        each half on its own, down to the single report at fault, which is rejected: one
        report would otherwise block the partition forever, and every valid report behind it.
        """
        try:
            return self.app.report_deliveries(provider_id, reports, Channel.KAFKA).outcomes
        except Exception as exc:
            if infrastructure_fault(exc) or not reports:
                raise
            if len(reports) > 1:
                half = len(reports) // 2
                return (self._report_split(provider_id, reports[:half])
                        + self._report_split(provider_id, reports[half:]))
            log.error("kafka_ingest_report_refused", error_type=type(exc).__name__,
                      error=bounded(str(exc)))
            reason = f"could not be stored: {type(exc).__name__}"
            if isinstance(exc, ContractViolation):
                reason += f": {exc}"
            return [DeliveryOutcome(reports[0][0], error=bounded(reason), code=INVALID)]

    def _publish(self, rejects: Sequence[Reject]) -> None:
        """Produce the rejects and wait until the broker has every one (acks=all)."""
        if not rejects:
            return
        producer = self._producer
        if producer is None:
            raise InfrastructureUnavailable("the ingest has no connection to the broker")
        try:
            futures = [producer.send(self.rejects, key=r.key, value=r.to_json())
                       for r in rejects]
            producer.flush(timeout=SEND_TIMEOUT_S)
            for future in futures:
                future.get(timeout=SEND_TIMEOUT_S)
        except (KafkaError, OSError) as exc:
            raise self._unreachable(exc) from None

    def run(self, stop: threading.Event, idle_wait: float = 0.05) -> None:
        """Consume until `stop` is set; on any failure back off, reconnect and read again from
        the stored offsets (nothing is skipped)."""
        backoff = idle_wait
        try:
            while not stop.is_set():
                try:
                    moved = self.run_once()
                    backoff = idle_wait
                except Exception as exc:
                    log.error("kafka_ingest_failed", topic=self.inbound,
                              error_type=type(exc).__name__, error=bounded(str(exc)))
                    self._failed(exc)
                    self._disconnect()
                    backoff = min(backoff * 2 if backoff > idle_wait else 0.5, 10.0)
                    stop.wait(backoff)
                    continue
                self._moving(moved)
                if not moved:
                    stop.wait(idle_wait)
        finally:
            self.close()

    # ------------------------------------------------------------------ health

    def health(self) -> IngestHealth:
        """How this ingest is doing now (see IngestHealth)."""
        state = "running"
        if self._failing_since is not None:
            failing = (datetime.now(UTC) - self._failing_since).total_seconds()
            state = "stuck" if failing > STUCK_AFTER_S else "failing"
        return IngestHealth(state, self._failures, self._failing_since, self._last_error,
                            self._last_batch_at, datetime.now(UTC))

    def _failed(self, exc: Exception) -> None:
        self.counts.failures += 1
        self._failures += 1
        self._failing_since = self._failing_since or datetime.now(UTC)
        self._last_error = bounded(f"{type(exc).__name__}: {exc}")
        if self.health().state == "stuck":
            log.error("kafka_ingest_stuck", topic=self.inbound, failures=self._failures,
                      since=self._failing_since.isoformat())
        self._record(force=True)

    def _moving(self, moved: int) -> None:
        recovered = self._failing_since is not None
        if moved:
            self._last_batch_at = datetime.now(UTC)
        self._failing_since, self._failures = None, 0
        self._record(force=recovered)

    def _record(self, force: bool = False) -> None:
        """Record the health where others can read it (read_health): on every change, and
        every HEARTBEAT_S while running, so a silent ingest shows too. Best effort: a lost
        store is a failure already being recorded, or retried."""
        if not force and time.monotonic() - self._recorded < HEARTBEAT_S:
            return
        health = self.health()
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO kafka_inbound_health (topic, state, failing_since, failures,"
                    " last_error, last_batch_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (topic) DO UPDATE SET state = excluded.state,"
                    " failing_since = excluded.failing_since, failures = excluded.failures,"
                    " last_error = excluded.last_error, last_batch_at = excluded.last_batch_at,"
                    " updated_at = excluded.updated_at",
                    (self.inbound, health.state, _text(health.failing_since), health.failures,
                     health.last_error, _text(health.last_batch_at), _text(health.updated_at)))
            self._recorded = time.monotonic()
        except Exception as exc:
            log.warning("kafka_ingest_health_not_recorded", error=bounded(str(exc)))


def workers(runtime: Runtime) -> list[Worker]:
    """The outcomes service's Kafka ingest, when its log is Kafka (none with the embedded log)."""
    app = runtime.app
    assert isinstance(app, Outcomes)
    ingest = KafkaDeliveryIngest.for_settings(app, runtime.tokens, runtime.store_db,
                                              runtime.settings)
    return [ingest] if ingest is not None else []
