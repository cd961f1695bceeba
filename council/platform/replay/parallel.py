"""Folding a long log in two processes: the same fold, the same statements, the same answer.

Per event, a full replay reads the record from the log, validates its envelope, runs the
projection's `apply` (which validates the event's data and works out its statements), and
SQLite runs those statements, all on one core (docs/performance.md). The work splits into two
halves that need little from each other:

- this process reads the log and runs the statements on the read model: it owns both;
- a child process validates each record and folds it (council.platform.replay.fold.fold_batch, as a
  replay in one process does: duplicates passed over, each projection's `apply`, the very code
  the live runners run) on a Tx that sends the statements back here, in the order they were
  issued. Writes are held back and batched (BatchingTx) as they are in one process; a read
  sends what is held back first and waits for its rows, so it sees every earlier write.

What crosses the pipes is cheap to send: raw records one way (bytes), statements' parameters
the other (strings and numbers), as columns, PIECE records at a time. Validated envelopes would
not be: building one again costs about what validating it does, so validation goes where the
projections run. The child never touches the log or the read model; if either side fails, the
replay fails with its reason.

The child sends from the thread doing the work, not from a helper thread (as a Queue would): a
helper needs the interpreter lock for every message, and a thread busy folding gives it up only
at the interpreter's switch interval, which would cap how many messages go per second. Nothing can
deadlock: records are written here by a thread of their own, so this process's main thread
only ever waits for the child's messages, and the child waits on a send only until this
process reads it.
"""

from __future__ import annotations

import contextlib
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

from council.platform.eventlog import LogRecord
from council.platform.replay.fold import BatchingTx, FoldCount, Folder, fold_batch, raw
from council.platform.sql import Row, Tx
from council.platform.workers import rare_collections, tune_gc

# Records go to the child PIECE at a time, about a hundred KiB: read into memory the allocator
# keeps (a batch of 5,000 records, 4 MiB, would be read into fresh pages every time), DEPTH
# pieces ahead of it, through a pipe of PIPE_BYTES when the system allows it.
PIECE = 128
DEPTH = 16
PIPE_BYTES = 1 << 20
# Records read from the log at a time: reading is done between pieces, and the child must not
# run out of records meanwhile (a read this size takes less time than the child needs for what
# the pipe holds; a read of a whole 5,000-record batch from Kafka would take longer).
READ = 1024
WAIT_S = 5.0
# Rows cross the pipes as columns: pickle remembers every tuple it writes (a dict entry each),
# so a list of values per column pickles much quicker than a list of rows.
Columns = tuple[list[list[Any]], int]  # the columns, and how many rows (for rows of none)
Statements = list[tuple[str, Columns]]


def _columns(rows: Sequence[Sequence[Any]]) -> Columns:
    return [list(column) for column in zip(*rows, strict=True)], len(rows)


def _rows(columns: Columns) -> list[tuple[Any, ...]]:
    values, count = columns
    return list(zip(*values, strict=True)) if values else [()] * count


def fold_in_two(batches: Iterable[list[LogRecord]], folder: Folder,
                transaction: Callable[[], AbstractContextManager[Tx]],
                moment: datetime | None = None, per_transaction: int = 5000,
                ) -> Iterator[FoldCount]:
    """Fold `batches` into the read model `transaction` opens (a transaction per
    `per_transaction` records or so), the events folded by a child process PIECE records at a
    time; yields what each piece folded. The folder's projections go to the child by pickle:
    they must keep no state of their own (the read model is their state)."""
    context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
    inbox, records = context.Pipe(duplex=False)  # raw records to the child
    up, statements = context.Pipe(duplex=False)  # statements and reads from the child
    rows, down = context.Pipe(duplex=False)  # the rows of its reads, back
    _widened(statements)
    here, there = _Channel(up, down), _Channel(rows, statements)
    child = context.Process(target=_fold, args=(folder, moment, inbox, there),
                            name="council-replay-fold", daemon=True)
    child.start()
    there.close()  # the child's ends: once it exits, reading here ends (EOFError)
    inbox.close()
    feed = _Feed(iter(batches), records)
    try:
        # Full collections would otherwise go through everything this process holds (modules,
        # schemas) again and again, while the child waits for records.
        with rare_collections():
            yield from _run_pieces(feed, here, child, transaction, per_transaction)
        child.join(timeout=WAIT_S)  # it has nothing left to do but exit
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        feed.close()
        records.close()
        here.close()


def _run_pieces(feed: _Feed, here: _Channel, child: Any,
                transaction: Callable[[], AbstractContextManager[Tx]],
                per_transaction: int) -> Iterator[FoldCount]:
    """Run the statements of each piece the child folds, keeping it fed, until it has folded
    everything; what each piece folded."""
    feed.fill()
    count: FoldCount | None = FoldCount()
    while count is not None:
        with transaction() as tx:
            folded = 0
            while folded < per_transaction:
                count = _serve(tx, here, child)
                if count is None:
                    break
                feed.folded()
                yield count
                folded += count.read
                feed.fill()


class _Feed:
    """The log's records, to the child as raw records in pieces, then None (the end): DEPTH
    pieces ahead of what the child has folded. They are read and pickled by the caller's
    thread, between the statements it runs (a thread reading meanwhile would take the
    interpreter lock each time a statement lets it go, and the statements would wait for it),
    and written by a thread of their own: a write waits while the pipe is full, and the
    caller's thread must never wait on the child (the child may be waiting for it, to answer a
    read). The pipe is widened so that a write mostly goes in at once."""

    def __init__(self, batches: Iterator[list[LogRecord]], records: Any) -> None:
        self.batches: Iterator[list[LogRecord]] | None = batches
        self.held: list[LogRecord] = []  # of the batch being sent
        self.records = records
        _widened(records)
        self.unfolded = 0  # pieces sent (or to be) the child has not folded
        self.out: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="council-replay-records",
                                       daemon=True)
        self.writer.start()

    def fill(self) -> None:
        """Send pieces until DEPTH are ahead."""
        while self.unfolded < DEPTH and (blob := self._piece()) is not None:
            self.out.put(blob)
            self.unfolded += 1

    def folded(self) -> None:
        """The child has folded a piece."""
        self.unfolded -= 1

    def close(self) -> None:
        """Stop the writer (call once the child has exited: a write it waits on then fails)."""
        self.out.put(None)
        self.writer.join(timeout=WAIT_S)

    def _write(self) -> None:
        while (blob := self.out.get()) is not None:
            try:
                self.records.send_bytes(blob)
            except OSError:  # the child is gone; the replay sees it and fails
                return

    def _piece(self) -> bytes | None:
        """The next piece pickled, the end (None pickled) once, then None."""
        while not self.held and self.batches is not None:
            self.held = next(self.batches, [])
            if not self.held:
                self.batches = None
                return pickle.dumps(None)
        if not self.held:
            return None
        piece, self.held = self.held[:PIECE], self.held[PIECE:]
        return pickle.dumps(_columns(raw(piece)), protocol=pickle.HIGHEST_PROTOCOL)


def _widened(pipe: Any) -> None:
    """Make the pipe's buffer as large as the system lets an unprivileged process (Linux:
    PIPE_BYTES, against 64 KiB by default); elsewhere, or if refused, it stays as it is."""
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class _Channel:
    """Two one-way pipes as one two-way channel: a two-way multiprocessing.Pipe is a socket
    pair, which costs more per message than a pipe."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader = reader
        self.writer = writer

    def send(self, message: Any) -> None:
        self.writer.send(message)

    def recv(self) -> Any:
        return self.reader.recv()

    def poll(self, timeout: float) -> bool:
        return bool(self.reader.poll(timeout))

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def _serve(tx: Tx, here: Any, child: Any) -> FoldCount | None:
    """Run the statements of one piece the child folded, answering its reads; what the piece
    folded, or None once the child has folded everything."""
    while True:
        message = _receive(here, child)
        kind = message[0]
        if kind == "read":
            _, held, sql, params = message
            _run(tx, held)
            here.send(tx.execute(sql, params))
        elif kind == "piece":
            _run(tx, message[1])
            return FoldCount(*message[2])
        elif kind == "done":
            return None
        else:
            raise message[1]


def _receive(here: Any, child: Any) -> tuple[Any, ...]:
    while not here.poll(WAIT_S):
        if not child.is_alive():
            raise _stopped(child)
    try:
        message: tuple[Any, ...] = here.recv()
    except EOFError:
        child.join(timeout=WAIT_S)
        raise _stopped(child) from None
    return message


def _stopped(child: Any) -> RuntimeError:
    return RuntimeError(f"the replay's second process stopped (exit code {child.exitcode})")


def _run(tx: Tx, statements: Statements) -> None:
    for sql, columns in statements:
        tx.executemany(sql, _rows(columns))


# ---------------------------------------------------------------------- the child


class _RemoteTx:
    """A Tx whose statements run in the parent: writes (and anything else run many times) are
    held until the piece ends or a read comes; a read sends them first and waits for its
    rows."""

    def __init__(self, parent: Any) -> None:
        self.parent = parent
        self.held: Statements = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.parent.send(("read", self.take(), sql, tuple(params)))
        rows: list[Row] = self.parent.recv()
        return rows

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.held.append((sql, _columns(list(rows))))

    def take(self) -> Statements:
        held, self.held = self.held, []
        return held


def _fold(folder: Folder, moment: datetime | None, records: Any, parent: Any) -> None:
    tune_gc()  # what the child has loaded stays out of collections, which come rarely
    try:
        remote = _RemoteTx(parent)
        # BatchingTx over the remote Tx: what runs in the parent is what a replay in one
        # process runs (see BatchingTx), statement for statement.
        tx = BatchingTx(remote)
        seen: dict[str, int] = {}
        while (columns := _next_piece(records)) is not None:
            count = fold_batch(tx, folder, _rows(columns), seen, moment)
            tx.flush()
            parent.send(("piece", remote.take(), astuple(count)))
        parent.send(("done",))
    except BaseException as exc:  # the parent raises it
        parent.send(("failed", _portable(exc)))


def _next_piece(records: Any) -> Columns | None:
    """The next piece, or None at the end; SystemExit if the parent is gone (killed: nothing
    would ever come)."""
    while not records.poll(WAIT_S):
        parent = multiprocessing.parent_process()
        if parent is not None and not parent.is_alive():
            raise SystemExit(1)
    # Only ever what fold_in_two pickled, in the process that started this one.
    piece: Columns | None = pickle.loads(records.recv_bytes())  # noqa: S301
    return piece


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
