"""The shared log on Kafka (any broker speaking the Kafka protocol).

Topics per source service, key = stream id (so a stream stays in one partition, in order),
acks="all" with the idempotent producer. Readers assign partitions explicitly and seek to the
offsets they track themselves: no consumer-group joins, which are slow and which projections
do not want (their positions live with their read models).

Appends go through librdkafka (confluent-kafka): kafka-python's producer spends interpreter
time on every message, which capped the outbox relay well below what the store can give it;
librdkafka batches and sends in its own threads, outside the interpreter. Its partitioner is set
to murmur2, Kafka's Java client's and kafka-python's, so each stream id keeps the partition it
always had. Reads go through librdkafka too (kafka-python decoded every record in the
interpreter, in every reader); topic administration stays on kafka-python.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import confluent_kafka
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog.findings import LogFinding
from council.platform.eventlog.port import (
    Appendable,
    EventLog,
    LogPosition,
    LogRecord,
    advance,
    partition_key,
)

SEND_TIMEOUT_S = 30.0
# How long a read waits for a fetch to say whether more records exist before saying the broker
# does not answer. Long enough for a slow broker: a read that gave up sooner would give up on
# every try there (a fetch after a seek, or a topic's metadata, takes a few round trips), and
# what a read waits for is kept by the consumer for the next one anyway.
READ_WAIT_S = 30.0
POLL_S = 0.1  # each wait for records within a read (librdkafka fetches meanwhile)
PARTITIONS_REFRESH_S = 30.0  # how often a reader looks for partitions added to a topic
BOOTSTRAP_TIMEOUT_MS = 3000  # kafka-python 3: how long a client waits for a first broker


class KafkaEventLog(EventLog):
    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "council",
        partitions: int = 3,
        sources: Sequence[str] = ("integrator", "provider_registry", "outcomes"),
        checked: bool = False,
    ) -> None:
        """Reaches the broker and makes the topics of `sources` if missing, unless `checked`
        (another log of this process did)."""
        super().__init__(topic_prefix)
        self.bootstrap = bootstrap
        self.partitions = partitions
        self._lock = threading.Lock()
        self._producer: Any = None
        self._consumer: Any = None
        self._assigned: dict[str, tuple[str, int]] = {}  # partition key -> (topic, partition)
        self._expected: LogPosition = {}  # where the consumer reads next, by partition key
        self._partition_cache: dict[str, tuple[float, list[int]]] = {}
        if not checked:
            self.ping()
            self.ensure_topics([self.topic_for(s) for s in sources])

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def _unreachable(self, exc: Exception) -> InfrastructureUnavailable:
        detail = str(exc)  # kafka-python's errors already start with their class name
        if not detail.startswith(type(exc).__name__):
            detail = f"{type(exc).__name__} {detail}".strip()
        return InfrastructureUnavailable(f"Kafka broker at {self.url} is unreachable: {detail}")

    def _admin(self) -> Any:
        try:
            return KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                request_timeout_ms=5000,
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                client_id="council-admin",
            )
        except (KafkaError, OSError) as exc:
            raise self._unreachable(exc) from None

    def ping(self) -> None:
        admin = self._admin()
        try:
            admin.list_topics()
        except (KafkaError, OSError) as exc:
            raise self._unreachable(exc) from None
        finally:
            admin.close()

    def ensure_topics(self, topics: Sequence[str]) -> None:
        admin = self._admin()
        try:
            missing = set(topics) - set(admin.list_topics())
            for topic in sorted(missing):
                with contextlib.suppress(TopicAlreadyExistsError):  # another service was first
                    admin.create_topics([NewTopic(topic, self.partitions, 1)])
        finally:
            admin.close()

    def _producer_(self) -> confluent_kafka.Producer:
        if self._producer is None:
            self._producer = confluent_kafka.Producer({
                "bootstrap.servers": self.bootstrap,
                "client.id": "council-producer",
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",  # = Java's and kafka-python's for keyed messages
                "linger.ms": 2,
                "message.max.bytes": 8 * 1024 * 1024,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 1024 * 1024,
                "message.timeout.ms": int(SEND_TIMEOUT_S * 1000),
            })
        producer: confluent_kafka.Producer = self._producer
        return producer

    def append(self, envelopes: Sequence[Appendable]) -> None:
        if not envelopes:
            return
        producer = self._producer_()
        failed: list[Any] = []

        def delivered(error: Any, _: Any) -> None:
            if error is not None:
                failed.append(error)

        for env in envelopes:
            self._produce(producer, self.topic_for(env.source), env.stream_id.encode(),
                          env.to_json(), delivered)
        left = producer.flush(SEND_TIMEOUT_S)
        if left or failed:
            # A producer that failed may be fenced or stuck: start afresh next time. The caller
            # appends the batch again (at least once; readers drop what arrives twice).
            self._drop_producer()
            reason = failed[0] if failed else f"{left} events unconfirmed after {SEND_TIMEOUT_S} s"
            raise InfrastructureUnavailable(
                f"Kafka broker at {self.url} did not take the batch: {reason}")

    @staticmethod
    def _produce(producer: confluent_kafka.Producer, topic: str, key: bytes, value: bytes,
                 delivered: Any) -> None:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                return
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)

    def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.purge()
                producer.flush(0)

    def _consumer_(self) -> Any:
        if self._consumer is None:
            self._consumer = confluent_kafka.Consumer({
                "bootstrap.servers": self.bootstrap,
                # Required by the client, never used: partitions are assigned and positions
                # are the reader's own; nothing joins a group or commits.
                "group.id": "council-reader",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": 16 * 1024 * 1024,
                "max.partition.fetch.bytes": 4 * 1024 * 1024,
                # Followers want new events promptly; a broker holding an empty fetch for
                # the default 500 ms would also delay the first read after a seek.
                "fetch.wait.max.ms": 100,
                "client.id": "council-reader",
            })
        return self._consumer

    def _partitions(self, consumer: Any, topic: str) -> list[int]:
        """The topic's partitions, looked up again every PARTITIONS_REFRESH_S (a topic not
        there yet: every second). If the broker does not answer, the partitions known before
        (reading goes on meanwhile)."""
        known = self._partition_cache.get(topic)
        if known is not None and time.monotonic() < known[0]:
            return known[1]
        try:
            found = consumer.list_topics(topic, timeout=READ_WAIT_S).topics.get(topic)
        except confluent_kafka.KafkaException as exc:
            if known is not None and known[1]:
                self._partition_cache[topic] = (time.monotonic() + 1.0, known[1])
                return known[1]
            raise self._unreachable(exc) from None
        partitions = sorted(found.partitions) if found is not None and found.error is None \
            else []
        refresh = PARTITIONS_REFRESH_S if partitions else 1.0
        self._partition_cache[topic] = (time.monotonic() + refresh, partitions)
        return partitions

    def _assign(self, topics: Sequence[str], position: LogPosition) -> None:
        """Read each partition of `topics` from `position`: the assignment, and each
        partition's next offset, change only when the reader's position is not where the
        last read left it."""
        consumer = self._consumer_()
        wanted = {partition_key(t, p): (t, p) for t in topics for p in self._partitions(
            consumer, t)}
        offsets = {key: position.get(key, 0) for key in wanted}
        if wanted.keys() != self._assigned.keys() or any(
                self._expected.get(key) != offset for key, offset in offsets.items()):
            consumer.assign([confluent_kafka.TopicPartition(t, p, offsets[key])
                             for key, (t, p) in wanted.items()])
            self._assigned = wanted
            self._expected = dict(offsets)

    def read(self, topics: Sequence[str], position: LogPosition, limit: int) -> list[LogRecord]:
        with self._lock:
            self._assign(topics, position)
            if not self._assigned:
                return []
            consumer = self._consumer_()
            deadline = time.monotonic() + READ_WAIT_S
            while True:
                records = self._poll(consumer, limit)
                if records or self._at_end(consumer):
                    return records
                if time.monotonic() > deadline:
                    # What the consumer fetches meanwhile stays queued for the next read.
                    # Empty would say "nothing more": a reader replaying the log would stop
                    # short without knowing. Say the broker is not answering instead.
                    raise InfrastructureUnavailable(
                        f"Kafka broker at {self.url} did not say within {READ_WAIT_S:.0f} s "
                        "whether more records exist"
                    )

    def end_position(self, topics: Sequence[str]) -> LogPosition | None:
        with self._lock:
            consumer = self._consumer_()
            ends: LogPosition = {}
            try:
                for topic in topics:
                    for p in self._partitions(consumer, topic):
                        _, high = consumer.get_watermark_offsets(
                            confluent_kafka.TopicPartition(topic, p), timeout=5)
                        ends[partition_key(topic, p)] = int(high)
            except (confluent_kafka.KafkaException, RuntimeError):
                return None
        return ends

    def _poll(self, consumer: Any, limit: int) -> list[LogRecord]:
        """The records the consumer has (waiting up to POLL_S). An error among them does not
        lose the records around it: the consumer has moved past them, so they are returned
        (the error is the broker's, and the next poll meets it again if it lasts); an error
        with no records makes the next read seek again to the reader's position."""
        try:
            messages = consumer.consume(num_messages=limit, timeout=POLL_S)
        except (confluent_kafka.KafkaException, RuntimeError) as exc:
            self._assigned = {}
            raise self._unreachable(exc) from None
        records: list[LogRecord] = []
        failed: Any = None
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                    failed = error
                continue
            records.append(LogRecord(m.topic(), m.partition(), m.offset(), m.value()))
        if failed is not None and not records:
            self._assigned = {}
            raise self._unreachable(confluent_kafka.KafkaException(failed))
        self._expected.update(advance({}, records))  # where each partition's next read starts
        return records

    def findings(self, topics: Sequence[str], position: LogPosition) -> list[LogFinding]:
        """From this reader's latest fetches (each fetch answer carries its partition's end,
        which a Kafka-protocol broker states reliably, unlike some brokers' end offsets) and
        the topics' metadata: partitions this position is past the end of, partitions gone,
        and topics whose partition count is not the platform's."""
        with self._lock:
            if self._consumer is None:
                return []
            found: list[LogFinding] = []
            for topic in topics:
                known = self._partition_cache.get(topic, (0.0, []))[1]
                found.extend(self._layout_findings(topic, known, position))
            for key, (topic, partition) in sorted(self._assigned.items()):
                at = position.get(key, 0)
                low, high = self._consumer.get_watermark_offsets(
                    confluent_kafka.TopicPartition(topic, partition), cached=True)
                if high >= 0 and at > high:
                    start = max(low, 0)
                    found.append(LogFinding(
                        key, f"the saved position {at} of {key} is past the log's end {high}: "
                        "the log lost records this reader had read (a broker that came back "
                        f"empty, or from an older copy); read again from offset {start}",
                        rewind_to=start))
            return found

    def _layout_findings(self, topic: str, partitions: list[int],
                         position: LogPosition) -> list[LogFinding]:
        if not partitions:
            return []
        found: list[LogFinding] = []
        if len(partitions) != self.partitions:
            found.append(LogFinding(
                topic, f"topic {topic} has {len(partitions)} partitions, not the "
                f"{self.partitions} it is made with (COUNCIL_KAFKA_PARTITIONS): the topic was "
                "made again, or changed; a stream's events may now be in two partitions"))
        for key, at in sorted(position.items()):
            name, _, number = key.rpartition(":")
            if name == topic and number.isdigit() and int(number) not in partitions:
                found.append(LogFinding(
                    key, f"partition {key} is gone (topic {topic} has {len(partitions)} "
                    f"partitions): records read from it up to offset {at} are no longer on "
                    "the log"))
        return found

    def _at_end(self, consumer: Any) -> bool:
        """Whether every partition is read up to the high watermark of its latest fetch. An
        empty poll alone proves nothing: the fetch after a seek may still be in flight. (The
        fetch's watermark is used rather than asking the broker for end offsets, which some
        Kafka-protocol brokers answer with the last batch's base offset.)"""
        for key, (topic, partition) in self._assigned.items():
            _, high = consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition(topic, partition), cached=True)
            if high < 0 or self._expected.get(key, 0) < high:
                return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(5)
                self._producer = None
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            self._assigned, self._expected = {}, {}
