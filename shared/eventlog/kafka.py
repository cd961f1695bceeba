"""The shared log on Kafka (any broker speaking the Kafka protocol), via kafka-python.

Topics per source service, key = stream id (so a stream stays in one partition, in order),
acks="all" with the idempotent producer. Readers assign partitions explicitly and seek to the
offsets they track themselves: no consumer-group joins, which are slow and which projections
do not want (their positions live with their read models).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
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

    def _producer_(self) -> Any:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=2,
                    batch_size=256 * 1024,
                    max_request_size=8 * 1024 * 1024,
                    client_id="council-producer",
                )
            except (KafkaError, OSError) as exc:
                raise self._unreachable(exc) from None
        return self._producer

    def append(self, envelopes: Sequence[EventEnvelope]) -> None:
        if not envelopes:
            return
        producer = self._producer_()
        futures = [
            producer.send(
                self.topic_for(env.source), key=env.stream_id.encode(), value=env.to_json()
            )
            for env in envelopes
        ]
        producer.flush(timeout=SEND_TIMEOUT_S)
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)  # raises if the broker did not take it

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

    def end_position(self, topics: Sequence[str]) -> LogPosition | None:
        with self._lock:
            self._assign(topics)
            try:
                ends = self._consumer_().end_offsets(list(self._assigned.values()))
            except (KafkaError, OSError):
                return None
        return {partition_key(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

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
                self._producer.close(timeout=5)
                self._producer = None
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
