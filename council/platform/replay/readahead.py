"""Reading the log in a second process while this one works through it.

Decoding Kafka's fetches costs about as much per record as indexing it, so the snapshot store's
first indexing of a long Kafka log reads ahead in a child process of its own, with its own
connection to the log, and receives the raw records through a pipe: the two halves of the work
then run on two cores. The child only reads; if it fails, the reader fails with its reason.
(A full replay splits its work the other way round: council.platform.replay.parallel.)
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Iterator, Sequence
from typing import Any

from council.kernel.errors import InfrastructureUnavailable
from council.platform.eventlog import LogPosition, LogRecord
from council.platform.settings import Settings

DEPTH = 6  # batches held in the pipe: enough to keep both sides busy, bounded in memory
WAIT_S = 5.0


def read_ahead(settings: Settings, topics: Sequence[str], position: LogPosition | None = None,
               batch: int = 5000, url: str | None = None) -> Iterator[list[LogRecord]]:
    """Batches of everything the log of `settings` holds on `topics` after `position`, read by
    a child process (what EventLog.read_all gives, one process over). With `url`, the child
    refuses to read a log at any other address (settings that do not name the log meant)."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    pipe: Any = context.Queue(maxsize=DEPTH)
    child = context.Process(
        target=_read, args=(settings.model_dump(), list(topics), dict(position or {}), batch,
                            url, pipe),
        name="council-read-ahead", daemon=True)
    child.start()
    try:
        while True:
            try:
                item = pipe.get(timeout=WAIT_S)
            except queue.Empty:
                if not child.is_alive():
                    raise InfrastructureUnavailable(
                        f"the log reader stopped (exit code {child.exitcode})") from None
                continue
            if item is None:
                return
            if isinstance(item, str):
                raise InfrastructureUnavailable(item)
            yield [LogRecord(t, p, o, v) for t, p, o, v in item]
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        pipe.close()


def _read(settings: dict[str, Any], topics: list[str], position: LogPosition, batch: int,
          url: str | None, pipe: Any) -> None:
    from council.platform.eventlog import open_event_log

    try:
        event_log = open_event_log(Settings(**settings))
        try:
            if url is not None and event_log.url != url:
                raise ValueError(f"the settings name the log {event_log.url}, not {url}")
            for records in event_log.read_all(topics, position, limit=batch):
                pipe.put([(r.topic, r.partition, r.offset, r.value) for r in records])
        finally:
            event_log.close()
        pipe.put(None)
    except Exception as exc:  # reported to the reader, which fails with it
        pipe.put(f"reading {topics} ahead: {type(exc).__name__}: {exc}")
