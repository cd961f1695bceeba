"""Folding a long log in two processes, the same fold, the same statements, the same answer.

Per event, a full replay reads the record from the log, validates its envelope, runs the
projection's `apply` (which validates the event's data and works out its statements), and
SQLite runs those statements. On one core that is about 24 us an event (some 42,000 events/s).
The work splits into two halves that need little from each other:

- this process reads the log and runs the statements on the read model: it owns both;
- a child process validates each record and folds it (shared.replay.fold.fold_batch, as a
  replay in one process does: duplicates passed over, each projection's `apply`, the very code
  the live runners run) on a Tx that sends the statements back here, in the order they were
  issued. Writes are held back and batched (BatchingTx) as they are in one process; a read
  sends what is held back first and waits for its rows, so it sees every earlier write.

What crosses the pipes is cheap to send: raw records one way (bytes), statements' parameters
the other (strings and numbers), a batch of 5,000 records at a time, as columns. Validated
envelopes would not be: building one again costs about what validating it does, so validation
goes where the projections run. The child never touches the log or the read model; if either
side fails, the replay fails with its reason.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple
from datetime import datetime
from typing import Any

from shared.eventlog import LogRecord
from shared.replay.fold import BatchingTx, FoldCount, Folder, fold_batch, raw
from shared.sql import Row, Tx

DEPTH = 4  # batches in each pipe: enough to keep both sides busy, bounded in memory
WAIT_S = 5.0
# Rows cross the pipes as columns: pickle remembers every tuple it writes (a dict entry each),
# so a list of values per column pickles several times faster than a list of rows.
Columns = tuple[list[list[Any]], int]  # the columns, and how many rows (for rows of none)
Statements = list[tuple[str, Columns]]


def _columns(rows: Sequence[Sequence[Any]]) -> Columns:
    return [list(column) for column in zip(*rows, strict=True)], len(rows)


def _rows(columns: Columns) -> list[tuple[Any, ...]]:
    values, count = columns
    return list(zip(*values, strict=True)) if values else [()] * count


def fold_in_two(batches: Iterable[list[LogRecord]], folder: Folder,
                transaction: Callable[[], AbstractContextManager[Tx]],
                moment: datetime | None = None) -> Iterator[FoldCount]:
    """Fold `batches` (read here, in a thread) into the read model `transaction` opens (one
    transaction per batch, as in one process), the events folded by a child process; yields
    what each batch folded. The folder's projections go to the child by pickle: they must keep
    no state of their own (the read model is their state)."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    inbox: Any = context.Queue(maxsize=DEPTH)
    outbox: Any = context.Queue(maxsize=DEPTH)
    answers: Any = context.Queue()
    child = context.Process(target=_fold, args=(folder, moment, inbox, outbox, answers),
                            name="council-replay-fold", daemon=True)
    child.start()
    reader = _Reader(batches, inbox)
    reader.start()
    try:
        while True:
            with transaction() as tx:
                count = _serve(tx, outbox, answers, child)
            if count is None:
                break
            yield count
        reader.join()
        if reader.failed is not None:
            raise reader.failed
        child.join(timeout=WAIT_S)  # it has nothing left to do but exit
    finally:
        reader.stop.set()
        reader.join(timeout=60)
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        for pipe in (inbox, answers):  # nothing left in them is wanted any more
            pipe.cancel_join_thread()
        for pipe in (inbox, outbox, answers):
            pipe.close()


def _serve(tx: Tx, outbox: Any, answers: Any, child: Any) -> FoldCount | None:
    """Run the statements of one batch the child folded, answering its reads; what the batch
    folded, or None once the child has folded everything."""
    while True:
        message = _receive(outbox, child)
        kind = message[0]
        if kind == "read":
            _, held, sql, params = message
            _run(tx, held)
            answers.put(tx.execute(sql, params))
        elif kind == "batch":
            _run(tx, message[1])
            return FoldCount(*message[2])
        elif kind == "done":
            return None
        else:
            raise message[1]


def _receive(outbox: Any, child: Any) -> tuple[Any, ...]:
    while True:
        try:
            message: tuple[Any, ...] = outbox.get(timeout=WAIT_S)
            return message
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the replay's second process stopped (exit code"
                                   f" {child.exitcode})") from None


def _run(tx: Tx, statements: Statements) -> None:
    for sql, columns in statements:
        tx.executemany(sql, _rows(columns))


class _Reader(threading.Thread):
    """Reads the log into the child's inbox (raw records), then None; a failure to read is
    kept in `failed` (the child is then told the log ends: the replay raises it)."""

    def __init__(self, batches: Iterable[list[LogRecord]], inbox: Any) -> None:
        super().__init__(name="council-replay-reader", daemon=True)
        self.batches = batches
        self.inbox = inbox
        self.stop = threading.Event()
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            for records in self.batches:
                if not self._put(_columns(raw(records))):
                    return
        except BaseException as exc:  # raised by the replay, in its own thread
            self.failed = exc
        self._put(None)

    def _put(self, item: Columns | None) -> bool:
        while not self.stop.is_set():
            try:
                self.inbox.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False


# ---------------------------------------------------------------------- the child


class _RemoteTx:
    """A Tx whose statements run in the parent: writes (and anything else run many times) are
    held until the batch ends or a read comes; a read sends them first and waits for its
    rows."""

    def __init__(self, outbox: Any, answers: Any) -> None:
        self.outbox = outbox
        self.answers = answers
        self.held: Statements = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.outbox.put(("read", self.take(), sql, tuple(params)))
        rows: list[Row] = self.answers.get()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.held.append((sql, _columns(list(rows))))

    def take(self) -> Statements:
        held, self.held = self.held, []
        return held


def _fold(folder: Folder, moment: datetime | None, inbox: Any, outbox: Any,
          answers: Any) -> None:
    try:
        remote = _RemoteTx(outbox, answers)
        # BatchingTx over the remote Tx: what runs in the parent is what a replay in one
        # process runs (see BatchingTx), statement for statement.
        tx = BatchingTx(remote)
        seen: dict[str, int] = {}
        while (columns := inbox.get()) is not None:
            count = fold_batch(tx, folder, _rows(columns), seen, moment)
            tx.flush()
            outbox.put(("batch", remote.take(), astuple(count)))
        outbox.put(("done",))
    except BaseException as exc:  # the parent raises it
        outbox.put(("failed", _portable(exc)))


def _portable(exc: BaseException) -> BaseException:
    """The exception, able to cross the pipe (or a RuntimeError saying what it was), noting
    where it was raised."""
    exc.add_note("(raised in the replay's second process:\n"
                 f"{''.join(traceback.format_exception(exc)[-3:]).rstrip()})")
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own exception, just made
    except Exception:  # a class that cannot cross: its text can
        notes = "\n".join(getattr(exc, "__notes__", []))
        return RuntimeError(f"{type(exc).__name__}: {exc}\n{notes}")
    return exc
