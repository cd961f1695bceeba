"""Reading the audit trail from the configured log (embedded or Kafka): the signed checkpoints on
the audit topic, then every source's chain, each checked by council.platform.audit.verify, and,
given the services' stores, each store against its chain (council.platform.audit.stores)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from council.kernel.contracts.audit import CHECKPOINT, SOURCE, AuditCheckpointSigned
from council.platform.audit.checkpoints import signature_problem
from council.platform.audit.keys import key_id
from council.platform.audit.stores import ServiceStore, StoreChecker
from council.platform.audit.verify import (
    Break,
    ChainChecker,
    ChainSummary,
    CheckpointRef,
    Kind,
    Place,
    Report,
)
from council.platform.eventlog import EventLog
from council.platform.settings import SERVICE_NAMES

Progress = Callable[[str, int, int], None]
Keep = Callable[[str], Callable[[int, bytes], None] | None]


@dataclass
class CheckpointBook:
    """The checkpoints read so far whose signatures verify, by chain and count."""

    key: Ed25519PublicKey | None
    by_chain: dict[str, dict[int, list[CheckpointRef]]] = field(default_factory=dict)
    valid: list[tuple[AuditCheckpointSigned, bytes]] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    _seen: set[bytes] = field(default_factory=set)

    def chain(self, source: str) -> dict[int, list[CheckpointRef]]:
        return self.by_chain.setdefault(source, {})

    def add(self, raw: bytes, place: Place | str) -> None:
        if raw in self._seen:
            return  # the same checkpoint written twice
        self._seen.add(raw)
        try:
            envelope = json.loads(raw)
            checkpoint = AuditCheckpointSigned.model_validate(envelope["data"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            self.breaks.append(Break(Kind.CHECKPOINT_SIGNATURE, SOURCE,
                                     f"not a readable checkpoint: {reason}", place=_place(place)))
            return
        if self.key is None:
            problem: str | None = "there is no public key to check it against (--public-key)"
        else:
            problem = signature_problem(checkpoint, self.key)
        if problem is not None:
            self.breaks.append(Break(
                Kind.CHECKPOINT_SIGNATURE, checkpoint.chain,
                f"the checkpoint over {checkpoint.count} events signed {checkpoint.signed_at} "
                f"({place}) is not genuine: {problem}", checkpoint.count,
                place=_place(place)))
            return
        refs = self.chain(checkpoint.chain).setdefault(checkpoint.count, [])
        refs.append(CheckpointRef(checkpoint.count, checkpoint.hash, checkpoint.signed_at, place))
        self.valid.append((checkpoint, raw))

    def add_pinned(self, path: Path) -> None:
        """Checkpoints a regulator kept (a bundle's checkpoints.ndjson, or one per line)."""
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            if line.strip():
                self.add(line.strip(), f"pinned {path} line {number}")


def _place(place: Place | str) -> Place | None:
    return place if isinstance(place, Place) else None


def is_checkpoint(raw: bytes) -> bool:
    # Canonical JSON: the type member is spelled exactly so (keys sorted, no whitespace).
    return f'"type":"{CHECKPOINT}"'.encode() in raw


def read_checkpoints(event_log: EventLog, book: CheckpointBook,
                     audit: ChainChecker | None = None) -> int:
    """Every checkpoint on the audit topic into `book`; anything else there goes to `audit`'s
    chain check. Returns how many records were read."""
    topic = event_log.topic_for(SOURCE)
    read = 0
    for batch in event_log.read_all([topic]):
        for record in batch:
            read += 1
            place = Place(topic, record.partition, record.offset)
            if is_checkpoint(record.value):
                book.add(record.value, place)
            elif audit is not None:
                audit.process(record.value, place)
    return read


def verify_log(event_log: EventLog, *, sources: Sequence[str] = SERVICE_NAMES,
               key: Ed25519PublicKey | None = None, pins: Iterable[Path] = (),
               allow_unchained: bool = False, progress: Progress | None = None,
               keep: Keep | None = None,
               stores: Mapping[str, ServiceStore | Break] | None = None,
               ) -> tuple[Report, CheckpointBook]:
    """Check every source's chain on the log against the checkpoints there (and any pinned),
    and each source's event store in `stores` against its chain (a Break there: the store
    could not be opened, a failure if the log holds events of that source)."""
    report = Report(key_id=key_id(key) if key is not None else None)
    book = CheckpointBook(key)
    for path in pins:
        book.add_pinned(path)
    audit = ChainChecker(SOURCE, book.chain(SOURCE))
    read_checkpoints(event_log, book, audit)
    sizes = record_counts(event_log, [event_log.topic_for(s) for s in sources])
    checkers = []
    store_checks: dict[str, _StoreCheck] = {}
    for source in sources:
        checker = ChainChecker(source, book.chain(source), keep(source) if keep else None)
        store = stores.get(source) if stores is not None else None
        if isinstance(store, ServiceStore):
            store_checks[source] = _StoreCheck.beside(checker, store)
        elif store is not None:
            store_checks[source] = _StoreCheck(source, None, unopened=store)
        topic = event_log.topic_for(source)
        total, done = sizes.get(topic, 0), 0
        for batch in event_log.read_all([topic]):
            for record in batch:
                checker.process(record.value, Place(topic, record.partition, record.offset))
            done += len(batch)
            if progress is not None:
                progress(f"verifying {source}", done, max(total, done))
        if progress is not None and done == 0:
            progress(f"verifying {source}", 0, 0)
        checkers.append(checker)
    if audit.summary.records:
        checkers.append(audit)
    for checker in checkers:
        report.chains.append(checker.finish())
        report.breaks.extend(checker.breaks)
        if checker.source in store_checks:
            report.breaks.extend(store_checks[checker.source].finish(report.chains[-1]))
    report.breaks.extend(book.breaks)
    report.checkpoints = len(book.valid)
    unknown = sorted(set(book.by_chain) - set(sources) - {SOURCE})
    for chain in unknown:
        if book.by_chain[chain]:
            report.notes.append(f"checkpoints for {chain}, which is not a source checked here")
    settle_unchained(report, allow_unchained)
    return report, book


@dataclass
class _StoreCheck:
    """A store checked beside its chain: fed each distinct event the chain check reads. A
    store that fails while being read is reported so, and not read further."""

    source: str
    checker: StoreChecker | None
    failure: str | None = None
    unopened: Break | None = None  # why the store could not be opened

    @classmethod
    def beside(cls, chain: ChainChecker, store: ServiceStore) -> _StoreCheck:
        try:
            found = cls(chain.source, store.checker(chain.source))
        except Exception as exc:
            return cls(chain.source, None, str(exc).splitlines()[0][:300])
        export = chain.keep

        def keep(sequence: int, raw: bytes) -> None:
            if export is not None:
                export(sequence, raw)
            found.logged(sequence, raw, chain.place_of(sequence))

        chain.keep = keep
        chain.also = found.logged
        return found

    def logged(self, sequence: int | None, raw: bytes, place: Place | None) -> None:
        if self.checker is None:
            return
        try:
            self.checker.logged(sequence, raw, place)
        except Exception as exc:
            self.checker, self.failure = None, str(exc).splitlines()[0][:300]

    def finish(self, summary: ChainSummary) -> list[Break]:
        if self.unopened is not None:
            return [self.unopened] if summary.records else []
        if self.checker is not None:
            try:
                self.checker.finish()
                self.checker.summarise(summary)
                return self.checker.breaks
            except Exception as exc:
                self.failure = str(exc).splitlines()[0][:300]
        return [Break(Kind.STORE_UNREADABLE, self.source,
                      f"its event store could not be read to the end: {self.failure}")]


def settle_unchained(report: Report, allow: bool) -> None:
    """Events from before the chain fail verification unless the caller accepts them."""
    if allow:
        report.accepted = [b for b in report.breaks if b.kind is Kind.UNCHAINED]
        report.breaks = [b for b in report.breaks if b.kind is not Kind.UNCHAINED]


def record_counts(event_log: EventLog, topics: Sequence[str]) -> dict[str, int]:
    """About how many records each topic holds (for progress bars only; 0 if unknown)."""
    from council.platform.eventlog.embedded import EmbeddedEventLog

    try:
        if isinstance(event_log, EmbeddedEventLog):
            return _embedded_counts(event_log.path, topics)
        bootstrap = getattr(event_log, "bootstrap", None)
        if isinstance(bootstrap, str):
            return _kafka_counts(bootstrap, topics)
    except Exception:  # noqa: S110 - a progress bar is not worth failing for
        pass
    return {}


def _embedded_counts(path: Path, topics: Sequence[str]) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        marks = ",".join("?" * len(topics))
        rows = conn.execute(
            f"SELECT topic, COUNT(*) FROM log_records WHERE topic IN ({marks}) GROUP BY topic",
            tuple(topics)).fetchall()
    finally:
        conn.close()
    return {str(topic): int(n) for topic, n in rows}


def _kafka_counts(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                  enable_auto_commit=False, client_id="council-audit-count")
    try:
        counts: dict[str, int] = {}
        for topic in topics:
            partitions = [TopicPartition(topic, p)
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            if not partitions:
                continue
            ends = consumer.end_offsets(partitions)
            starts = consumer.beginning_offsets(partitions)
            counts[topic] = sum(max(0, ends[p] - starts[p]) for p in partitions)
        return counts
    finally:
        consumer.close()
