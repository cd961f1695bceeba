"""What every service's HTTP entry point shares: start-up of its store, relay and projections,
/health and /ready, correlation ids, size limits and error translation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.audit.checkpoints import CheckpointWriter
from shared.context import new_correlation_id
from shared.errors import (
    ConcurrentChange,
    DomainRuleBroken,
    InfrastructureUnavailable,
    InvalidInput,
    NotFound,
)
from shared.eventlog import EventLog, open_event_log
from shared.eventstore import CouncilApplication, open_application, store_database
from shared.identity import TokenStore
from shared.metrics import CONTENT_TYPE as METRICS_TYPE
from shared.metrics import Figures, ServiceMetrics
from shared.projection import Projection, ProjectionRunner
from shared.relay import OutboxRelay
from shared.settings import Settings
from shared.sql import Database, open_database, setup_lock
from shared.workers import (
    GROUPS,
    INGEST,
    PROJECTIONS,
    RELAY,
    WORKERS,
    WorkerProcesses,
    tune_gc,
)

log = structlog.get_logger("web")

MAX_BODY_BYTES = 1024 * 1024
RELAY_BATCH = 2000
# Polled constantly: their lines would say nothing.
_QUIET_PATHS = frozenset({"/health", "/ready", "/metrics"})
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


@dataclass
class ServiceSpec:
    """How to assemble one service: its application, its read models and its routes."""

    name: str
    application: type[CouncilApplication]
    projections: Callable[[], Sequence[Projection]]
    routers: Sequence[APIRouter]
    max_body_bytes: dict[str, int] = field(default_factory=dict)  # path prefix -> limit
    wire: Callable[[Runtime], None] | None = None  # connects the application to shared parts
    # further background workers (each with run(stop, idle_wait)), started with the service
    workers: Callable[[Runtime], Sequence[Worker]] | None = None
    # consumers of what arrives from outside other than HTTP (the outcomes service's Kafka
    # delivery ingest), in a group of their own, when `ingests` says the deployment has one
    ingest: Callable[[Runtime], Sequence[Worker]] | None = None
    # workers for what the HTTP process itself reads (the integrator's as-of snapshots): run as
    # threads of the HTTP process, wherever the background work runs
    serving: Callable[[Runtime], Sequence[Worker]] | None = None
    ingests: Callable[[Settings], bool] = lambda _: True

    def groups(self, settings: Settings) -> list[str]:
        """The groups of background work this service has here (see shared.workers)."""
        present = {RELAY: True, PROJECTIONS: True, WORKERS: self.workers is not None,
                   INGEST: self.ingest is not None and self.ingests(settings)}
        return [g for g in GROUPS if present[g]]


class Worker(Protocol):
    def run(self, stop: threading.Event, idle_wait: float) -> None: ...


class Runtime:
    """A running service: its store, log, relay, read models and worker threads."""

    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.stop = threading.Event()
        # Each part creates its tables as it opens; a service's processes start together, so
        # on PostgreSQL they do that one at a time (see setup_lock).
        with setup_lock(settings.database_url, f"council-setup:{settings.schema_prefix}"):
            self.event_log: EventLog = open_event_log(settings)
            self.app = open_application(spec.application, settings)
            self.store_db = store_database(settings, spec.name)
            # Big batches: each costs a round trip to the log and a position save, whatever
            # its size.
            self.relay = OutboxRelay(self.app, open_event_log(settings), self.store_db,
                                     batch_size=RELAY_BATCH)
            self.checkpoints = CheckpointWriter.for_service(
                settings, spec.name, self.store_db, open_event_log(settings), self.relay.name)
            if settings.audit_checkpoint_each_batch:  # a writer of its own: its own thread
                self.relay.checkpoints = CheckpointWriter.for_service(
                    settings, spec.name, self.store_db, open_event_log(settings),
                    self.relay.name)
            self.views: Database = open_database(settings, f"{spec.name}_views")
            self.runners = [ProjectionRunner(p, self.views, open_event_log(settings))
                            for p in spec.projections()]
            self.tokens = TokenStore(open_database(settings, "identity"))
            if spec.wire is not None:
                spec.wire(self)
        self._threads: list[threading.Thread] = []
        self._started: set[str] = set()
        self.processes: WorkerProcesses | None = None

    def runner(self, name: str) -> ProjectionRunner:
        return next(r for r in self.runners if r.projection.name == name)

    def workers(self, group: str) -> list[Worker]:
        """The background workers of one group (see shared.workers)."""
        if group == RELAY:  # the relay extends the audit chain; its signer goes beside it
            return [self.relay, self.checkpoints]
        if group == PROJECTIONS:
            return list(self.runners)
        if group == WORKERS:
            return list(self.spec.workers(self)) if self.spec.workers is not None else []
        if group == INGEST:
            return list(self.spec.ingest(self)) if self.spec.ingest is not None else []
        raise ValueError(f"unknown worker group {group!r}; one of {', '.join(GROUPS)}")

    def start(self, groups: Sequence[str] | None = None) -> None:
        """Run these groups' workers (default: all the service has) as threads of this
        process."""
        for group in self.spec.groups(self.settings) if groups is None else groups:
            self._run(self.workers(group))
            self._started.add(group)

    def start_serving(self) -> None:
        """Run the workers serving this (HTTP) process's own reads, as its threads."""
        if self.spec.serving is not None:
            self._run(self.spec.serving(self))

    def _run(self, workers: Sequence[Worker]) -> None:
        interval = self.settings.relay_interval
        for worker in workers:
            thread = threading.Thread(
                target=worker.run, args=(self.stop, interval), name=type(worker).__name__,
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def start_processes(self) -> None:
        """Run the background work in child processes of this one (see shared.workers)."""
        self.processes = WorkerProcesses(self.spec.name, self.spec.groups(self.settings))
        self.processes.start()

    def close(self) -> None:
        if self.processes is not None:
            self.processes.stop()
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if RELAY in self._started:
            # Publish what was stored before we go, so a clean shutdown leaves nothing behind.
            try:
                self.relay.drain()
            except Exception as exc:  # the next start publishes it; nothing is lost
                log.warning("relay_drain_on_shutdown_failed", error=str(exc))
            try:  # and sign where the chain now ends
                self.checkpoints.write(force=True)
            except Exception as exc:
                log.warning("audit_checkpoint_on_shutdown_failed", error=str(exc))
        for runner in self.runners:
            runner.event_log.close()
        self.relay.event_log.close()
        if self.relay.checkpoints is not None:
            self.relay.checkpoints.event_log.close()
        self.checkpoints.event_log.close()
        self.event_log.close()
        self.app.close()
        for db in (self.store_db, self.views, self.tokens.db):
            db.close()

    def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            self.app.recorder.max_notification_id()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unavailable: {exc}"
        try:
            self.event_log.ping()
            checks["log"] = "ok"
        except InfrastructureUnavailable as exc:
            checks["log"] = str(exc)
        return checks

    def worker_status(self) -> dict[str, str]:
        """Where each group of background work runs, and whether its process is up."""
        if self.processes is not None:
            return {group: "running" if alive else "restarting"
                    for group, alive in self.processes.status().items()}
        return {group: "thread" for group in sorted(self._started)}


WorkerMode = Literal["thread", "process"]


def run_workers(spec: ServiceSpec, settings: Settings, groups: Sequence[str],
                stop: threading.Event) -> None:
    """Run these groups of a service's background work in this process until `stop` is set
    (the body of `council work`)."""
    runtime = Runtime(spec, settings)
    tune_gc()
    try:
        runtime.start(groups)
        log.info("workers_started", groups=list(groups))
        stop.wait()
    finally:
        runtime.close()
        log.info("workers_stopped", groups=list(groups))


def create_service_app(
    spec: ServiceSpec, settings: Settings | None = None, workers: WorkerMode = "thread"
) -> FastAPI:
    """The service's HTTP app. Its relay, projections and workers run as threads of this
    process, or (`workers="process"`, what `council serve` does) in child processes."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(spec, settings)
        api.state.runtime = runtime
        api.state.tokens = runtime.tokens
        runtime.start_serving()
        api.state.metrics.watch(lambda: _figures(runtime))
        if workers == "process":
            runtime.start_processes()
        else:
            runtime.start()
        log.info("service_started", store=type(runtime.app.recorder).__module__,
                 log_url=runtime.event_log.url)
        try:
            yield
        finally:
            runtime.close()
            log.info("service_stopped")

    api = FastAPI(
        title=f"Council Integrator: {spec.name.replace('_', ' ')}",
        version="0.1.0",
        lifespan=lifespan,
    )
    metrics = ServiceMetrics(spec.name)
    api.state.metrics = metrics
    api.middleware("http")(_correlation_and_limits(spec, metrics))
    _install_error_handlers(api)

    @api.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the process is up and serving."""
        return {"status": "ok", "service": spec.name}

    @api.get("/ready", tags=["operations"])
    def ready(request: Request) -> JSONResponse:
        """Readiness: the event store and the shared log are reachable."""
        runtime: Runtime = request.app.state.runtime
        checks = runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "service": spec.name,
                                "checks": checks, "relay_pending": _pending(runtime),
                                "projections_behind": _behind(runtime),
                                "workers": runtime.worker_status()}
        return JSONResponse(body, status_code=200 if ok else 503)

    @api.get("/metrics", tags=["operations"], response_class=Response)
    def metrics_(request: Request) -> Response:
        """Prometheus metrics (text exposition format): requests by route, and the figures
        /ready gives (see shared.metrics). Open like /health: serve it to the internal network
        only."""
        return Response(request.app.state.metrics.exposition(), media_type=METRICS_TYPE)

    for router in spec.routers:
        api.include_router(router)
    return api


def _figures(runtime: Runtime) -> Figures:
    try:
        stored = runtime.app.recorder.max_notification_id() or 0
    except Exception:
        stored = None
    return Figures(stored_events=stored, relay_pending=_pending(runtime),
                   projections_behind=_behind(runtime), workers=runtime.worker_status())


def _behind(runtime: Runtime) -> dict[str, int] | None:
    """Per read model, how many records on the log it has not applied yet (None when the log
    cannot say where it ends; a broker may answer low, so this is a figure, not a promise)."""
    try:
        behind: dict[str, int] = {}
        for runner in runtime.runners:
            ends = runtime.event_log.end_position(runner.topics)
            if ends is None:
                return None
            at = runner.position()
            behind[runner.projection.name] = sum(max(0, end - at.get(key, 0))
                                                 for key, end in ends.items())
        return behind
    except Exception:
        return None


def _pending(runtime: Runtime) -> int | None:
    try:
        return runtime.relay.pending()
    except Exception:
        return None


def _correlation_and_limits(
    spec: ServiceSpec, metrics: ServiceMetrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-correlation-id", "")
        correlation_id = given if _CORRELATION.match(given) else new_correlation_id()
        request.state.correlation_id = correlation_id
        limit = next(
            (n for prefix, n in spec.max_body_bytes.items() if request.url.path.startswith(prefix)),
            MAX_BODY_BYTES,
        )
        length = request.headers.get("content-length")
        too_large = bool(length and length.isdigit() and int(length) > limit)
        if length is None:
            # No declared length (a chunked upload): read at most `limit` bytes and pass the body
            # on cached, as Request.body() caches it, so the limit cannot be side-stepped.
            received = bytearray()
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    too_large, length = True, f"more than {limit}"
                    break
            else:
                request._body = bytes(received)
        if too_large:
            metrics.observe(request.method, _route_of(request), 413, 0.0)
            return JSONResponse(
                {"detail": f"request body of {length} bytes is over the limit of {limit} bytes"},
                status_code=413,
                headers={"x-correlation-id": correlation_id},
            )
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            response = await call_next(request)
            seconds = time.perf_counter() - started
            if request.url.path not in _QUIET_PATHS:
                log.info("request", method=request.method, path=request.url.path,
                         status=response.status_code, ms=round(seconds * 1000, 2))
        metrics.observe(request.method, _route_of(request), response.status_code, seconds)
        response.headers["x-correlation-id"] = correlation_id
        return response

    return middleware


def _route_of(request: Request) -> str:
    """The route template a request matched (/providers/{provider_id}), never the path itself:
    one series per route, not per id."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(RequestValidationError)
    async def _unprocessable(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer, without echoing what was sent: a body may hold personal data
        # (service users, contacts), and the location and message name the field already.
        errors = [{k: v for k, v in error.items() if k not in ("input", "url")}
                  for error in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @api.exception_handler(DomainRuleBroken)
    async def _conflict(_: Request, exc: DomainRuleBroken) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @api.exception_handler(ConcurrentChange)
    async def _concurrent(_: Request, exc: ConcurrentChange) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @api.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        loc = ["body", *exc.field.split(".")] if exc.field else ["body"]
        return JSONResponse(
            {"detail": [{"type": "value_error", "loc": loc, "msg": exc.message}]},
            status_code=422,
        )

    @api.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else "not found"},
                            status_code=404)

    @api.exception_handler(InfrastructureUnavailable)
    async def _unavailable(_: Request, exc: InfrastructureUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)
