"""Assembly of the integrator service (used by `council serve integrator`)."""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from functools import partial
from typing import IO
from uuid import UUID

import structlog

from council.kernel.contracts.provider_registry import ProviderStatus
from council.platform.runtime import Runtime, ServiceSpec, Worker
from council.services.integrator import api, projections, web
from council.services.integrator.application import Integrator
from council.services.integrator.processes.results_payments import (
    ResultsPaymentsToRecord,
    results_workers,
)
from council.services.integrator.projections.network import get_provider
from council.services.integrator.projections.performance import performance_evidence
from council.services.integrator.projections.replay import SnapshotWorker, snapshot_folder
from council.services.integrator.web.views import KeptViewsCloser

log = structlog.get_logger("integrator")


def wire(runtime: Runtime) -> None:
    """Commissioning asks the network projection whether a provider is approved, and the
    performance projection what performance data it holds for an agreement (extensions)."""
    assert isinstance(runtime.app, Integrator)

    def provider_status(provider_id: UUID) -> ProviderStatus | None:
        provider = get_provider(runtime.views, provider_id)
        return provider.status if provider else None

    runtime.app.provider_status = provider_status
    runtime.app.performance_evidence = partial(performance_evidence, runtime.views)


def serving(runtime: Runtime) -> list[Worker]:
    """Snapshots for the HTTP process's as-of views, kept up to date with the log in the
    background. They are a cache: without them (var/ not writable, say) the views replay the
    whole log instead."""
    kept: list[Worker] = [KeptViewsCloser(runtime)]
    try:
        lock = _snapshot_lock(runtime)
        if lock is None:
            # Another HTTP process of this service keeps the store (`--http-workers`): two
            # writers of one store would collide, so this one's as-of views replay the log.
            log.info("as_of_snapshots_kept_by_another_http_process")
            return kept
        try:
            return [_Locked(SnapshotWorker(runtime.settings, runtime.event_log), lock), *kept]
        except BaseException:
            lock.close()
            raise
    except (OSError, sqlite3.Error) as exc:
        log.warning("as_of_snapshots_unavailable", error=str(exc))
        return kept


def _snapshot_lock(runtime: Runtime) -> IO[bytes] | None:
    """The snapshot store's writer lock, if this is the first of the service's HTTP processes
    to take it (None otherwise); held until closed."""
    folder = snapshot_folder(runtime.settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    handle = open(folder.parent / f"{folder.name}.writer.lock", "ab")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class _Locked:
    """A worker that holds a lock while it runs, and lets it go when it stops."""

    def __init__(self, worker: Worker, lock: IO[bytes]) -> None:
        self.worker = worker
        self.lock = lock

    def run(self, stop: threading.Event, idle_wait: float) -> None:
        try:
            self.worker.run(stop, idle_wait)
        finally:
            self.lock.close()


SPEC = ServiceSpec(
    name="integrator",
    application=Integrator,
    projections=projections.service_projections,
    routers=[api.router, web.router],
    # open contracting data and the transparency code's registers: published for anyone
    public_prefixes=(api.ocds.PREFIX, api.transparency.PREFIX),
    wire=wire,
    # results payments calculated by the outcomes service become due on the agreements
    workers=results_workers,
    followers=lambda: [ResultsPaymentsToRecord()],
    serving=serving,
)
