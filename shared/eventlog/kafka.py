"""The shared log on Kafka (any broker speaking the Kafka protocol).

Topics per source service, key = stream id (so a stream stays in one partition, in order),
acks="all" with the idempotent producer. Readers assign partitions explicitly and seek to the
offsets they track themselves: no consumer-group joins, which are slow and which projections
do not want (their positions live with their read models).

Appends go through librdkafka (confluent-kafka): kafka-python's producer spends some 20 us of
interpreter time per message, which capped the outbox relay near 20,000 events/s even alone;
librdkafka batches and sends in its own threads, outside the interpreter. Its partitioner is set
to murmur2, Kafka's Java client's and kafka-python's, so each stream id keeps the partition it
always had. Reads and the admin calls stay on kafka-python.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import confluent_kafka
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from shared.envelope import EventEnvelope
from shared.errors import InfrastructureUnavailable
from shared.eventlog.port import EventLog, LogPosition, LogRecord, partition_key

SEND_TIMEOUT_S = 30.0
# How long a read waits for a fetch to say whether more records exist before answering empty.
READ_WAIT_S = 2.0
BOOTSTRAP_TIMEOUT_MS = 3000  # kafka-python 3: how long a client waits for a first broker


class KafkaEventLog(EventLog):
    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "council",
        partitions: int = 3,
        sources: Sequence[str] = ("integrator", "provider_registry", "outcomes"),
    ) -> None:
        super().__init__(topic_prefix)
        self.bootstrap = bootstrap
        self.partitions = partitions
        self._lock = threading.Lock()
        self._producer: Any = None
        self._consumer: Any = None
        self._assigned: dict[str, TopicPartition] = {}
        self._expected: LogPosition = {}
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

    def append(self, envelopes: Sequence[EventEnvelope]) -> None:
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
            try:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    fetch_max_bytes=16 * 1024 * 1024,
                    max_partition_fetch_bytes=4 * 1024 * 1024,
                    # Followers want new events promptly; a broker holding an empty fetch for
                    # the default 500 ms would also delay the first read after a seek.
                    fetch_max_wait_ms=100,
                    client_id="council-reader",
                )
            except (KafkaError, OSError) as exc:
                raise self._unreachable(exc) from None
        return self._consumer

    def _assign(self, topics: Sequence[str]) -> None:
        consumer = self._consumer_()
        wanted: dict[str, TopicPartition] = {}
        for topic in topics:
            for p in sorted(consumer.partitions_for_topic(topic) or ()):
                wanted[partition_key(topic, p)] = TopicPartition(topic, p)
        if wanted.keys() != self._assigned.keys():
            consumer.assign(list(wanted.values()))
            self._assigned = wanted
            self._expected = {}

    def read(self, topics: Sequence[str], position: LogPosition, limit: int) -> list[LogRecord]:
        with self._lock:
            self._assign(topics)
            consumer = self._consumer_()
            for key, tp in self._assigned.items():
                want = position.get(key, 0)
                if self._expected.get(key) != want:
                    consumer.seek(tp, want)
                    self._expected[key] = want
            deadline = time.monotonic() + READ_WAIT_S
            while True:
                records = self._poll(consumer, limit)
                if records or self._at_end(consumer):
                    return records
                if time.monotonic() > deadline:
                    # Empty would say "nothing more": a reader replaying the log would stop
                    # short without knowing. Say the broker is not answering instead.
                    raise InfrastructureUnavailable(
                        f"Kafka broker at {self.url} did not say within {READ_WAIT_S:.0f} s "
                        "whether more records exist"
                    )

    def _poll(self, consumer: Any, limit: int) -> list[LogRecord]:
        batches = consumer.poll(timeout_ms=100, max_records=limit)
        records: list[LogRecord] = []
        for tp, messages in batches.items():
            for m in messages:
                records.append(LogRecord(tp.topic, tp.partition, m.offset, m.value))
            if messages:
                self._expected[partition_key(tp.topic, tp.partition)] = messages[-1].offset + 1
        return records

    def _at_end(self, consumer: Any) -> bool:
        """Whether every partition is read up to the high watermark of its latest fetch. An
        empty poll alone proves nothing: the fetch after a seek may still be in flight. (The
        fetch's watermark is used rather than end_offsets(), which some Kafka-protocol brokers
        answer with the last batch's base offset.)"""
        for key, tp in self._assigned.items():
            highwater = consumer.highwater(tp)
            if highwater is None or self._expected.get(key, 0) < highwater:
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
