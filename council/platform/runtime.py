"""What every service's HTTP entry point shares: start-up of its store, relay and projections,
/health and /ready, correlation ids, size limits and error translation."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from council.kernel.context import new_correlation_id
from council.kernel.errors import InfrastructureUnavailable
from council.platform import problems
from council.platform.audit.checkpoints import CheckpointWriter
from council.platform.eventlog import EventLog, open_event_log
from council.platform.eventstore import CouncilApplication, open_application, store_database
from council.platform.identity import TokenStore
from council.platform.metrics import CONTENT_TYPE as METRICS_TYPE
from council.platform.metrics import Figures, ServiceMetrics
from council.platform.projection import Projection, ProjectionRunner
from council.platform.readcache import ReadCache, code_fingerprint, read_position
from council.platform.readiness import (
    ProgressWatch,
    findings_check,
    log_findings,
    parked_by_projection,
    parked_check,
)
from council.platform.relay import OutboxRelay
from council.platform.settings import Settings
from council.platform.sql import Database, open_database, setup_lock
from council.platform.workers import (
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
# Open data: any web page may read it (Open Referral UK asks for exactly this header).
CORS_HEADERS = {"Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "x-correlation-id"}


@dataclass
class ServiceSpec:
    """How to assemble one service: its application, its read models and its routes."""

    name: str
    application: type[CouncilApplication]
    projections: Callable[[], Sequence[Projection]]
    routers: Sequence[APIRouter]
    max_body_bytes: dict[str, int] = field(default_factory=dict)  # path prefix -> limit
    # open data read by anyone, from any web page: these paths answer every origin (CORS)
    public_prefixes: tuple[str, ...] = ()
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
    # projections its further workers follow the log with (the payments process's marks), in
    # the same views database: /ready reports them like the read models; the CLI retries
    # what they parked and rebuilds them
    followers: Callable[[], Sequence[Projection]] = lambda: ()

    def groups(self, settings: Settings) -> list[str]:
        """The groups of background work this service has here (see council.platform.workers)."""
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
            self.relay = OutboxRelay(self.app, open_event_log(settings, True), self.store_db,
                                     batch_size=RELAY_BATCH)
            self.checkpoints = CheckpointWriter.for_service(
                settings, spec.name, self.store_db, open_event_log(settings, True),
                self.relay.name)
            if settings.audit_checkpoint_each_batch:  # a writer of its own: its own thread
                self.relay.checkpoints = CheckpointWriter.for_service(
                    settings, spec.name, self.store_db, open_event_log(settings, True),
                    self.relay.name)
            self.views: Database = open_database(settings, f"{spec.name}_views")
            self.runners = [ProjectionRunner(p, self.views, open_event_log(settings, True))
                            for p in spec.projections()]
            # Only watched from here (positions, what they parked): the workers run them.
            self.followers = [ProjectionRunner(p, self.views, self.event_log)
                              for p in spec.followers()]
            self.tokens = TokenStore(open_database(settings, "identity"))
            if spec.wire is not None:
                spec.wire(self)
        self._threads: dict[str, list[threading.Thread]] = {}
        self._started: set[str] = set()
        self.processes: WorkerProcesses | None = None
        self.elsewhere = False  # background work run by the process that started this one
        self.progress = ProgressWatch(settings.worker_stall_seconds)

    def runner(self, name: str) -> ProjectionRunner:
        return next(r for r in self.runners if r.projection.name == name)

    def workers(self, group: str) -> list[Worker]:
        """The background workers of one group (see council.platform.workers)."""
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
            self._run(group, self.workers(group))
            self._started.add(group)

    def start_serving(self) -> None:
        """Run the workers serving this (HTTP) process's own reads, as its threads."""
        if self.spec.serving is not None:
            self._run("serving", self.spec.serving(self))

    def _run(self, group: str, workers: Sequence[Worker]) -> None:
        interval = self.settings.relay_interval
        for worker in workers:
            thread = threading.Thread(
                target=worker.run, args=(self.stop, interval), name=type(worker).__name__,
                daemon=True,
            )
            thread.start()
            self._threads.setdefault(group, []).append(thread)

    def dead_groups(self) -> list[str]:
        """The groups run here with a worker thread that ended before it was asked to stop
        (each worker catches its own failures, so one that ended met something it should
        not have)."""
        if self.stop.is_set():
            return []
        return sorted(group for group, threads in self._threads.items()
                      if any(not thread.is_alive() for thread in threads))

    def start_processes(self, command: Sequence[str]) -> None:
        """Run the background work in child processes of this one (see council.platform.workers),
        each started by `command`."""
        self.processes = WorkerProcesses(command, self.spec.name, self.spec.groups(self.settings))
        self.processes.start()

    def close(self) -> None:
        if self.processes is not None:
            self.processes.stop()
        self.stop.set()
        for thread in (t for threads in self._threads.values() for t in threads):
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
        """Where each group of background work runs, and whether its process is up (or its
        threads, when they run here)."""
        if self.processes is not None:
            return {group: "running" if alive else "restarting"
                    for group, alive in self.processes.status().items()}
        if self.elsewhere:  # its supervisor says; a stalled read model still shows below
            return dict.fromkeys(self.spec.groups(self.settings), ELSEWHERE)
        dead = self.dead_groups()
        return {group: "dead" if group in dead else "thread" for group in sorted(self._started)}

    def parked(self) -> dict[str, dict[str, Any]]:
        return parked_by_projection(self.views)

    def log_findings(self) -> list[dict[str, Any]]:
        """What this service's readers (read models, workers, ingest) found wrong with the
        log."""
        return log_findings(self.views, self.store_db)

    def stalled(self, behind: dict[str, int] | None) -> list[str]:
        """The read models (and workers' projections) behind the log that have not moved for
        settings.worker_stall_seconds."""
        if behind is None:
            return []
        return [runner.projection.name for runner in (*self.runners, *self.followers)
                if self.progress.stalled(runner.projection.name, runner.position(),
                                         behind.get(runner.projection.name, 0))]


def workers_check(status: dict[str, str], stalled: list[str]) -> str:
    """'ok', or which groups of background work are down and which read models stalled."""
    down = [f"{group} {state}" for group, state in status.items()
            if state not in ("running", "thread", ELSEWHERE)]
    if stalled:
        down.append("stalled behind the log: " + ", ".join(stalled))
    return "; ".join(down) or "ok"


# "elsewhere": this is one of several HTTP processes of the service; the process that started
# them runs the background work (`council serve --http-workers N`).
WorkerMode = Literal["thread", "process", "elsewhere"]
ELSEWHERE: Literal["elsewhere"] = "elsewhere"


def run_workers(spec: ServiceSpec, settings: Settings, groups: Sequence[str],
                stop: threading.Event) -> None:
    """Run these groups of a service's background work in this process until `stop` is set
    (the body of `council work`)."""
    runtime = Runtime(spec, settings)
    tune_gc()
    try:
        runtime.start(groups)
        log.debug("workers_started", groups=list(groups))  # the service said it started
        while not stop.wait(1.0):
            if dead := runtime.dead_groups():
                # End the process: its parent starts it again (council.platform.workers), and /ready
                # says it is restarting meanwhile.
                log.error("worker_thread_died", groups=dead)
                raise WorkerDied(f"a worker of {', '.join(dead)} ended")
    finally:
        runtime.close()
        log.debug("workers_stopped", groups=list(groups))


class WorkerDied(RuntimeError):
    """A worker thread of `council work` ended on its own."""


# A JSON string holding nothing but a decimal in exponent form, as pydantic writes a Decimal
# such as Decimal("1.90E+3") (what arithmetic on exact amounts can leave).
_EXPONENT_DECIMAL = re.compile(rb'"(-?[0-9]+(?:\.[0-9]+)?E[+-]?[0-9]+)"')


def _plain(found: re.Match[bytes]) -> bytes:
    return b'"' + format(Decimal(found.group(1).decode()), "f").encode() + b'"'


class PlainNumbersJSON(JSONResponse):
    """JSON whose decimals read as plain numbers ("1900", never "1.90E+3"): people and
    spreadsheets read these figures, and the exponent form is a surprise to both."""

    def render(self, content: Any) -> bytes:
        body = super().render(content)
        return _EXPONENT_DECIMAL.sub(_plain, body) if b"E" in body else body


def create_service_app(
    spec: ServiceSpec, settings: Settings | None = None, workers: WorkerMode = "thread",
    worker_command: Sequence[str] = (),
) -> FastAPI:
    """The service's HTTP app. Its relay, projections and workers run as threads of this
    process, or (`workers="process"`, what `council serve` does) in child processes, each
    started by `worker_command`."""
    if workers == "process" and not worker_command:
        raise ValueError("worker processes need the command that starts one")
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(spec, settings)
        api.state.runtime = runtime
        api.state.tokens = runtime.tokens
        api.state.read_cache = ReadCache(lambda: read_position(runtime.views),
                                         salt=f"{spec.name} {code_fingerprint()}")
        runtime.start_serving()
        api.state.metrics.watch(lambda: _figures(runtime))
        if workers == "process":
            runtime.start_processes(worker_command)
        elif workers == "thread":
            runtime.start()
        else:
            runtime.elsewhere = True
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
        default_response_class=PlainNumbersJSON,
    )
    metrics = ServiceMetrics(spec.name)
    api.state.metrics = metrics
    api.middleware("http")(_correlation_and_limits(spec, metrics))
    problems.install(api)
    problems.declare(api)

    @api.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness: the process is up and serving."""
        return {"status": "ok", "service": spec.name}

    @api.get("/ready", tags=["operations"], responses={503: {
        "description": "not ready: the same report, saying which check failed",
        "content": {"application/json": {"schema": {"type": "object"}}}}})
    def ready(request: Request) -> JSONResponse:
        """Readiness: the event store and the shared log are reachable."""
        runtime: Runtime = request.app.state.runtime
        checks = runtime.readiness()
        behind, workers, parked = _behind(runtime), runtime.worker_status(), _parked(runtime)
        found = _findings(runtime)
        checks["parked"] = parked_check(parked) if parked is not None else "cannot tell"
        checks["log_findings"] = findings_check(found) if found is not None else "cannot tell"
        checks["workers"] = workers_check(workers, runtime.stalled(behind))
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ok else "not ready", "service": spec.name,
                                "checks": checks, "relay_pending": _pending(runtime),
                                "projections_behind": behind, "workers": workers,
                                "parked": parked, "log_findings": found}
        return JSONResponse(body, status_code=200 if ok else 503)

    @api.get("/metrics", tags=["operations"], response_class=Response)
    def metrics_(request: Request) -> Response:
        """Prometheus metrics (text exposition format): requests by route, and the figures
        /ready gives (see council.platform.metrics). Open like /health: serve it to the internal
        network only."""
        return Response(request.app.state.metrics.exposition(), media_type=METRICS_TYPE)

    for router in spec.routers:
        api.include_router(router)
    return api


def _figures(runtime: Runtime) -> Figures:
    try:
        stored = runtime.app.recorder.max_notification_id() or 0
    except Exception:
        stored = None
    parked = _parked(runtime)
    found = _findings(runtime)
    return Figures(stored_events=stored, relay_pending=_pending(runtime),
                   projections_behind=_behind(runtime), workers=runtime.worker_status(),
                   parked=None if parked is None else {
                       name: entry["count"] for name, entry in parked.items()},
                   parked_watched=[r.projection.name
                                   for r in (*runtime.runners, *runtime.followers)],
                   log_findings=None if found is None else len(found))


def _parked(runtime: Runtime) -> dict[str, dict[str, Any]] | None:
    try:
        return runtime.parked()
    except Exception:
        return None


def _findings(runtime: Runtime) -> list[dict[str, Any]] | None:
    try:
        return runtime.log_findings()
    except Exception:
        return None


def _behind(runtime: Runtime) -> dict[str, int] | None:
    """Per read model (and workers' projection), how many records on the log it has not
    applied yet (None when the log cannot say where it ends; a broker may answer low, so this
    is a figure, not a promise)."""
    try:
        behind: dict[str, int] = {}
        for runner in (*runtime.runners, *runtime.followers):
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
        public = bool(spec.public_prefixes) and request.url.path.startswith(spec.public_prefixes)
        if public and request.method == "OPTIONS":
            metrics.observe(request.method, _route_of(request), 204, 0.0)
            return Response(status_code=204, headers={
                **CORS_HEADERS, "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": request.headers.get(
                    "access-control-request-headers", "*")[:500],
                "Access-Control-Max-Age": "86400", "x-correlation-id": correlation_id})
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
            return problems.problem(
                request, 413,
                f"request body of {length} bytes is over the limit of {limit} bytes",
                headers={"x-correlation-id": correlation_id},
            )
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                response = await call_next(request)
            except Exception as exc:  # unforeseen: problem details, never a stack trace
                response = problems.internal_error(request, exc)
            seconds = time.perf_counter() - started
            if request.url.path not in _QUIET_PATHS:
                log.info("request", method=request.method, path=request.url.path,
                         status=response.status_code, ms=round(seconds * 1000, 2))
        metrics.observe(request.method, _route_of(request), response.status_code, seconds)
        response.headers["x-correlation-id"] = correlation_id
        if public:
            response.headers.update(CORS_HEADERS)
        return response

    return middleware


def _route_of(request: Request) -> str:
    """The route template a request matched (/providers/{provider_id}), never the path itself:
    one series per route, not per id."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
