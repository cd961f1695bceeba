"""Replaying the shared log into read models: a fast fold (fold), reading ahead (readahead) and
business-time snapshots for views "as of" a date (snapshots)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from council.platform.eventlog import LogRecord
from council.platform.replay.fold import FoldCount, Folder, fold_batch, raw
from council.platform.replay.parallel import READ, fold_in_two
from council.platform.sql import Tx

# Records from which a replay is worth a second process: starting one costs about what
# validating this many records does.
IN_TWO_FROM = 100_000


def replay(event_log: Any, folder: Folder,
           transaction: Callable[[], AbstractContextManager[Tx]],
           moment: datetime | None = None, topics: Sequence[str] | None = None,
           progress: Callable[[str, int, int], None] | None = None,
           batch: int = 5000, in_two_from: int | None = IN_TWO_FROM) -> FoldCount:
    """Read the whole log from its beginning and fold it, in log order, into the read model
    `transaction` opens (one transaction per batch); with `moment`, only the events that had
    occurred by then. `topics` narrows what is read to those of the folder's topics. A log of
    `in_two_from` records or more (None: never) is folded in two processes
    (council.platform.replay.parallel); a shorter one, or one whose length the log cannot tell,
    here."""
    wanted = [t for t in folder.topics if topics is None or t in topics]
    ends = (event_log.end_position(wanted) if progress is not None or in_two_from is not None
            else None)
    total = sum(ends.values()) if ends else 0
    shown = progress if progress is not None and total else None
    if in_two_from is not None and ends is not None and total >= in_two_from:
        batches = fold_in_two(event_log.read_all(wanted, limit=min(batch, READ)), folder,
                              transaction, moment, per_transaction=batch)
    else:
        batches = _fold_here(event_log.read_all(wanted, limit=batch), folder, transaction,
                             moment)
    count = FoldCount()
    for done in batches:
        count.add(done)
        if shown is not None:
            shown("replaying the log", min(count.read, total), total)
    if shown is not None:
        shown("replaying the log", total, total)
    return count


def _fold_here(batches: Iterable[list[LogRecord]], folder: Folder,
               transaction: Callable[[], AbstractContextManager[Tx]],
               moment: datetime | None) -> Iterator[FoldCount]:
    """What each batch folded, folded in this process."""
    seen: dict[str, int] = {}
    for records in batches:
        with transaction() as tx:
            yield fold_batch(tx, folder, raw(records), seen, moment)
