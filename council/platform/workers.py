"""A service's background work in processes of its own, beside the HTTP process.

`council serve <service>` answers HTTP in one process and runs its background work in child
processes (`council work <service> --group ...`), one per group:

- ``relay``: the outbox relay, store -> shared log;
- ``projections``: every read model of the service;
- ``workers``: the service's further workers (the outcomes service's payments process), when it
  has any;
- ``ingest``: what consumes input from outside other than HTTP (the outcomes service's Kafka
  delivery ingest, on the scale-out deployment).

Why: CPython runs one thread of a process at a time. As threads of the HTTP process, the relay
and the projections took the interpreter from request handlers as soon as a delivery batch's
first events were stored, and an HTTP batch waited on them. As processes
they use the machine's other cores, and a request holds its process's interpreter to itself.

The read models and further workers run at a lower CPU priority (nice 10) than the HTTP process,
the relay and the ingest: when the machine is busy, accepting and publishing come first and
the read models, eventually consistent anyway, catch up after.

A child is the service's, not a service of its own: it dies with its parent, even a parent
killed outright (on Linux the kernel sends it SIGKILL; elsewhere it sees its stdin close), so
a crashed service never leaves a relay or projection behind to run beside the one a restart
starts. The parent stops them with SIGTERM once it has finished serving requests: the relay
then publishes everything stored before it exits. A child that dies on its own is started
again, after a pause that grows while it keeps dying.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import structlog

log = structlog.get_logger("workers")

RELAY, PROJECTIONS, WORKERS, INGEST = "relay", "projections", "workers", "ingest"
GROUPS = (RELAY, PROJECTIONS, WORKERS, INGEST)
BACKGROUND_NICE = 10  # added to the niceness of the groups below
LOW_PRIORITY = frozenset({PROJECTIONS, WORKERS})
STOP_TIMEOUT_S = 30.0
# The cyclic garbage collector's thresholds in a service's processes (see tune_gc).
GC_THRESHOLDS = (50_000, 20, 20)
_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    with contextlib.suppress(Exception):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


# Looked up here, not in the child: between fork and exec (where _die_with_parent runs) the
# child should do as little as it can, the parent having other threads.
_PRCTL = _prctl() if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _Child:
    def __init__(self, command: Sequence[str], service: str, group: str) -> None:
        self.command = command
        self.service = service
        self.group = group
        self.process: subprocess.Popen[bytes] | None = None
        self.failures = 0
        self.restart_at = 0.0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self.command, self.service, "--group", self.group, "--parent", str(os.getpid())],
            stdin=subprocess.PIPE,  # closed when this process dies, however it dies
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class WorkerProcesses:
    """The child processes running one service's background groups, supervised. `command`
    starts one (given the service, `--group` and `--parent`): the tool that started the service
    names it (`council work`), so the platform never names a layer above it."""

    def __init__(self, command: Sequence[str], service: str, groups: Sequence[str]) -> None:
        self.children = [_Child(command, service, group) for group in groups]
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        for child in self.children:
            child.start()
        self._supervisor = threading.Thread(target=self._supervise, name="worker-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def status(self) -> dict[str, bool]:
        return {child.group: child.alive for child in self.children}

    def _supervise(self) -> None:
        # Children are started again from this thread, so it lives until they have stopped:
        # the kernel's parent-death signal is tied to the thread that started a child.
        while not self._stop.wait(0.5):
            with self._lock:
                for child in self.children:
                    self._check(child)
        self._stopped.wait()

    def _check(self, child: _Child) -> None:
        if child.alive or self._stop.is_set():
            return
        now = time.monotonic()
        if child.restart_at == 0.0:
            code = child.process.returncode if child.process else None
            child.failures += 1
            child.restart_at = now + min(0.5 * 2 ** (child.failures - 1), 30.0)
            log.error("worker_process_died", group=child.group, exit_code=code,
                      restarting_in_s=round(child.restart_at - now, 1))
        elif now >= child.restart_at:
            child.restart_at = 0.0
            child.start()

    def stop(self) -> None:
        """SIGTERM every child and wait for it (the relay publishes what is stored first)."""
        self._stop.set()
        try:
            self._stop_children()
        finally:
            self._stopped.set()
            if self._supervisor is not None:
                self._supervisor.join(timeout=5)

    def _stop_children(self) -> None:
        with self._lock:
            running = [c.process for c in self.children if c.alive and c.process]
            for process in running:
                process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("worker_process_killed", pid=process.pid)
                    process.kill()
                    process.wait(timeout=5)


def tune_gc() -> None:
    """Collect cyclic garbage every 50,000 allocations instead of every 700, leaving what the
    process made while starting (modules, schemas, pools) out of every pass.

    Python's default suits short scripts. A service holds thousands of objects per batch (a
    delivery batch: each report's aggregate, event, dicts and outcome) until the batch is
    stored, so a collection ran every few hundred of them and each older-generation pass went
    through all the batch held, a good share of the Kafka ingest's CPU per report (see
    docs/performance.md). Memory stays
    bounded: reference counting still frees everything not in a cycle at once; only cyclic
    garbage waits a little longer."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """tune_gc for the block's duration, in a process that goes on after it (a full replay in
    a CLI or a bench): the thresholds put back, and what it froze unfrozen, unless something
    else had frozen it already (theirs to undo)."""
    thresholds = gc.get_threshold()
    froze = not gc.get_freeze_count()
    if froze:
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if froze:
            gc.unfreeze()


def lower_priority(groups: Sequence[str]) -> None:
    """Yield the CPU to the write path when this process only runs read-side work."""
    if groups and set(groups) <= LOW_PRIORITY and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(BACKGROUND_NICE)


def watch_parent(parent: int) -> None:
    """In a child: exit at once if the parent is gone (stdin closed, or re-parented), as the
    threads of a killed process would; SIGINT (a terminal's Ctrl-C reaches the whole process
    group) is left to the parent, which stops its children once it has stopped serving."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != parent:
        os._exit(1)

    def wait_for_eof() -> None:
        # The raw descriptor: a buffered stdin's lock would trouble the interpreter's exit.
        with contextlib.suppress(OSError):
            while os.read(0, 1024):
                pass
        os._exit(1)

    threading.Thread(target=wait_for_eof, name="parent-watch", daemon=True).start()
