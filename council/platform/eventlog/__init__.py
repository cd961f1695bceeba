"""The shared event log: port and adapters (embedded file log by default, Kafka at scale)."""

from __future__ import annotations

from pathlib import Path

from council.platform.eventlog.port import EventLog, LogPosition, LogRecord, advance, partition_key
from council.platform.settings import SERVICE_NAMES, Settings

__all__ = ["EventLog", "LogPosition", "LogRecord", "advance", "open_event_log", "partition_key"]


def open_event_log(settings: Settings, checked: bool = False) -> EventLog:
    """The log these settings name; raises InfrastructureUnavailable naming the URL.
    `checked`: this process has already opened one (which reached the broker and made the
    topics), so this one need not (on a slow broker each check takes several round trips,
    and a service opens a log for each of its readers)."""
    url = settings.log_url
    if url.startswith("kafka://"):
        from council.platform.eventlog.kafka import KafkaEventLog

        return KafkaEventLog(
            url.removeprefix("kafka://").rstrip("/"),
            topic_prefix=settings.topic_prefix,
            partitions=settings.kafka_partitions,
            # audit: signed checkpoints (council.platform.audit)
            sources=() if checked else (*SERVICE_NAMES, "audit"),
            checked=checked,
        )
    from council.platform.eventlog.embedded import EmbeddedEventLog

    directory = Path(url.removeprefix("embedded://")) if url != "embedded" else settings.var_dir
    return EmbeddedEventLog(directory / "shared-log.sqlite", topic_prefix=settings.topic_prefix)
