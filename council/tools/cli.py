"""The `council` command line: start the stack, load the demo data, serve one service, manage
tokens and web users, rebuild projections, check infrastructure, verify and export the audit
trail, erase a data subject's personal data, run benchmarks. It only translates arguments into
calls."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from council.kernel.errors import InfrastructureUnavailable, PersistenceNotConfigured
from council.platform.settings import SERVICE_NAMES, Settings
from council.platform.workers import GROUPS
from council.tools.console import progress_bar, service_spec

# How `council serve` starts a worker process: `council work <service> --group ...`.
WORK_COMMAND = (sys.executable, "-m", "council.tools.cli", "work")


def _fail(message: str, code: int = 2) -> int:
    print(f"council: {message}", file=sys.stderr)
    return code


def _apply_overrides(args: argparse.Namespace) -> None:
    """Command-line options win over the environment, and reach child processes through it."""
    for option, env in (("database_url", "COUNCIL_DATABASE_URL"), ("log_url", "COUNCIL_LOG_URL"),
                        ("var_dir", "COUNCIL_VAR_DIR")):
        value = getattr(args, option, None)
        if value:
            os.environ[env] = str(value)


def preflight(settings: Settings) -> None:
    """Reach every configured store and the log now, so a bad URL fails fast and clearly; and
    read the audit signing key and the personal-data secret (each made on first use by
    default), so a bad key file does too."""
    from council.platform.audit.keys import load_signing_key
    from council.platform.eventlog import open_event_log
    from council.platform.sql import open_database
    from council.services.outcomes.adapters.vault import load_secret

    open_database(settings, "identity").close()
    open_event_log(settings).close()
    load_signing_key(settings)
    load_secret(settings)


def cmd_check(args: argparse.Namespace) -> int:
    settings = Settings()
    preflight(settings)
    store = "PostgreSQL" if settings.uses_postgres else f"SQLite under {settings.var_dir}/"
    print(f"ok: event stores on {store}; shared log at {settings.log_url}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from council.platform.logs import configure_logging
    from council.platform.runtime import create_service_app
    from council.platform.workers import tune_gc

    settings = Settings()
    configure_logging(args.service, settings.log_level, settings.log_format)
    preflight(settings)
    if args.http_workers > 1:
        return _serve_http_workers(args.service, args.http_workers, settings, args.http_only)
    api = create_service_app(service_spec(args.service), settings,
                             workers="elsewhere" if args.http_only else settings.workers,
                             worker_command=WORK_COMMAND)
    tune_gc()
    uvicorn.run(
        api, host=settings.host, port=settings.port_of(args.service),
        log_config=None, access_log=False, timeout_graceful_shutdown=10,
    )
    return 0


def _serve_http_workers(service: str, count: int, settings: Settings,
                        http_only: bool) -> int:
    """`count` HTTP processes sharing the service's port (uvicorn's workers), and its
    background work once, in child processes of this one (unless `http_only`): state is in
    the stores and the log, so any HTTP process answers any request."""
    import uvicorn

    from council.platform.workers import WorkerProcesses

    os.environ["COUNCIL_SERVE_SERVICE"] = service
    background = WorkerProcesses(WORK_COMMAND, service,
                                 [] if http_only else service_spec(service).groups(settings))
    background.start()
    try:
        uvicorn.run(
            "council.tools.http_worker:http_worker_app", factory=True, workers=count,
            host=settings.host, port=settings.port_of(service), log_config=None, access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        background.stop()  # after the last request: the relay publishes what was stored
    return 0


def cmd_work(args: argparse.Namespace) -> int:
    import threading

    from council.platform.workers import lower_priority, watch_parent

    # First of all: a stop asked for while starting still ends with the relay's drain.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.parent:
        watch_parent(args.parent)

    from council.platform.logs import configure_logging
    from council.platform.runtime import run_workers

    settings = Settings()
    configure_logging(args.service, settings.log_level, settings.log_format)
    spec = service_spec(args.service)
    groups = args.group or spec.groups(settings)
    lower_priority(groups)
    from council.platform.runtime import WorkerDied

    try:
        run_workers(spec, settings, groups, stop)
    except WorkerDied:
        return 1  # started again by the service (council.platform.workers)
    return 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def load_demo_data(settings: Settings) -> None:
    """Load the demo data set (once) and say what it holds."""
    from council.tools.demo import load_demo

    where = "PostgreSQL" if settings.uses_postgres else f"SQLite under {settings.var_dir}/"
    print(f"Demo data (Northshire County Council): event stores on {where}; shared log at "
          f"{settings.log_url}", flush=True)
    summary = load_demo(settings, progress_bar(sys.stdout))
    if summary.already_loaded:
        print("  demo data already loaded; nothing added", flush=True)
        return
    print(f"Loaded in {summary.seconds:.1f} s:")
    for line in summary.lines():
        print(f"  {line}")
    sys.stdout.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    from council.platform.logs import configure_logging
    from council.tools.demo import DemoError

    settings = Settings()
    configure_logging("demo", settings.log_level, settings.log_format)
    preflight(settings)
    try:
        load_demo_data(settings)
    except DemoError as exc:
        return _fail(str(exc), 1)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from council.platform.logs import configure_logging

    settings = Settings()
    configure_logging("council", settings.log_level, settings.log_format)
    preflight(settings)
    if args.demo:
        from council.tools.demo import DemoError

        try:
            load_demo_data(settings)
        except DemoError as exc:
            return _fail(f"cannot load the demo data: {exc}", 1)
    children = {
        name: subprocess.Popen([sys.executable, "-m", "council.tools.cli", "serve", name])
        for name in SERVICE_NAMES
    }
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    def given_up() -> bool:
        return stopping or any(c.poll() is not None for c in children.values())

    waiting = _wait_healthy(settings, args.start_timeout, given_up)
    code = 0
    if waiting and not stopping:
        print(f"council: not healthy in time: {', '.join(sorted(waiting))}", file=sys.stderr)
        code = 1
    elif not given_up():
        # The banner comes last, once the read models have caught up with the log: what
        # the services log while starting would otherwise scroll it away.
        attention = _wait_settled(settings, args.ready_timeout, given_up)
        if not given_up():
            _announce(settings, args, attention)
    if code == 0:
        while not stopping and all(c.poll() is None for c in children.values()):
            time.sleep(0.2)
        dead = [n for n, c in children.items() if c.poll() is not None]
        if dead and not stopping:
            print(f"council: {', '.join(dead)} stopped unexpectedly", file=sys.stderr)
            code = 1
    _shutdown(children)
    return code


def _wait_healthy(settings: Settings, timeout: float, given_up: Callable[[], bool]) -> set[str]:
    """The services not answering /health when `timeout` ran out (or when `given_up`)."""
    deadline = time.monotonic() + timeout
    waiting = set(SERVICE_NAMES)
    while waiting and not given_up() and time.monotonic() < deadline:
        waiting = {n for n in waiting if not _healthy(settings.url_of(n))}
        if waiting:
            time.sleep(0.2)
    return waiting


def _readiness(url: str) -> dict[str, Any] | None:
    """/ready's report (served with 200 or 503), or None when there is none to read."""
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=5) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as refused:
        body = refused.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        report = json.loads(body)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def settled(report: dict[str, Any] | None) -> bool:
    """Whether a service has started its background work and caught up: its relay has
    published what is stored, and every read model has applied the whole log."""
    if report is None:
        return False
    behind = report.get("projections_behind")
    workers = report.get("workers") or {}
    return (report.get("relay_pending") == 0 and isinstance(behind, dict)
            and all(n == 0 for n in behind.values())
            and all(state in ("running", "thread") for state in workers.values()))


def _wait_settled(settings: Settings, timeout: float,
                  given_up: Callable[[], bool]) -> list[str]:
    """Wait until every service has settled (or `timeout`); what /ready still says is wrong."""
    deadline = time.monotonic() + timeout
    tty = sys.stdout.isatty()
    said = False
    reports: dict[str, dict[str, Any] | None] = {}
    while not given_up():
        reports = {name: _readiness(settings.url_of(name)) for name in SERVICE_NAMES}
        if all(settled(r) for r in reports.values()) or time.monotonic() >= deadline:
            break
        behind = sum(sum(((r or {}).get("projections_behind") or {}).values())
                     for r in reports.values())
        if tty:
            print(f"\r  read models catching up with the shared log: {behind:>7,} records "
                  "to apply", end="", flush=True)
        elif not said:
            print("Waiting for the read models to catch up with the shared log...", flush=True)
        said = True
        time.sleep(0.5)
    if said and tty:
        print()
    return _attention(reports)


def _attention(reports: dict[str, dict[str, Any] | None]) -> list[str]:
    """One line per check a service's /ready does not pass (or per service not settled)."""
    lines = []
    for name, report in reports.items():
        if report is None:
            lines.append(f"{name}: /ready did not answer")
            continue
        checks = report.get("checks") or {}
        lines.extend(f"{name} {check}: {said}" for check, said in checks.items() if said != "ok")
        if not settled(report):
            lines.append(f"{name}: still catching up with the shared log (see /ready)")
    return lines


def _announce(settings: Settings, args: argparse.Namespace, attention: Sequence[str] = ()) -> None:
    print("\nCouncil Integrator is running:")
    for name in SERVICE_NAMES:
        print(f"  {name:<18} {settings.url_of(name)}   (API docs: {settings.url_of(name)}/docs)")
    print(f"  event stores: {'PostgreSQL' if settings.uses_postgres else 'SQLite'}; "
          f"shared log: {settings.log_url}")
    if args.demo_token:
        from council.platform.identity import Role, TokenStore
        from council.platform.sql import open_database

        db = open_database(settings, "identity")
        issued = TokenStore(db).create(Role.INTEGRATOR_ADMIN, "demo admin")
        db.close()
        print(f"\n  admin token (demo): {issued.token}")
        print(f"  try: curl -H 'Authorization: Bearer {issued.token}' "
              f"{settings.url_of('integrator')}/network/providers")
    if args.demo:
        print(f"\n  web pages: {settings.url_of('integrator')}/ui/  sign in as (demo; new "
              "passwords each start):")
        for username, role, password in demo_users(settings):
            print(f"    {username:<13} {password}   ({role})")
    if attention:
        print("\n  not ready yet (each service's /ready says more):")
        for line in attention:
            print(f"    {line}")
    print("\nCtrl-C stops all three.", flush=True)


# The demo's web users: one per role a person signs in with.
DEMO_USERS = (
    ("admin", "integrator_admin", "Sam Okafor (integrator admin)"),
    ("commissioner", "commissioner", "Jo Smith (commissioner)"),
    ("staff", "council_staff", "Priya Shah (council staff)"),
    ("regulator", "regulator", "Alex Reid (regulator)"),
)


def demo_users(settings: Settings) -> list[tuple[str, str, str]]:
    """Create the demo's web users, or give them new passwords: (username, role, password)."""
    from council.platform.accounts import UserStore, new_password
    from council.platform.identity import Role
    from council.platform.sql import open_database

    db = open_database(settings, "identity")
    try:
        users = UserStore(db)
        shown = []
        for username, role, name in DEMO_USERS:
            password = new_password()
            if not users.set_password(username, password):
                users.create(username, Role(role), name, password)
            shown.append((username, role, password))
        return shown
    finally:
        db.close()


def _shutdown(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def cmd_tokens(args: argparse.Namespace) -> int:
    from council.platform.identity import Role, Scope, TokenStore
    from council.platform.sql import open_database

    settings = Settings()
    if args.action == "create":  # bad arguments fail before anything is opened
        provider_id = UUID(args.provider_id) if args.provider_id else None
        scope = Scope.parse(args.scope or ())
    db = open_database(settings, "identity")
    store = TokenStore(db)
    try:
        if args.action == "create":
            issued = store.create(Role(args.role), args.label or args.role, provider_id, scope)
            print(issued.token)
            scoped = f", scoped to {scope.describe()}" if scope else ""
            print(f"token id {issued.principal.token_id} ({args.role}{scoped}); shown once, "
                  "only its hash is stored", file=sys.stderr)
        elif args.action == "revoke":
            if not store.revoke(args.token_id):
                return _fail(f"no active token with id {args.token_id}", 1)
            print(f"revoked {args.token_id}")
        else:
            for row in store.list():
                print("\t".join("" if v is None else str(v) for v in row))
    finally:
        db.close()
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from council.platform.accounts import UserStore, new_password
    from council.platform.identity import Role
    from council.platform.sql import open_database

    db = open_database(Settings(), "identity")
    users = UserStore(db)
    try:
        if args.action in ("create", "set-password"):
            given = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
            password = given or new_password()
            if args.action == "create":
                user = users.create(args.username, Role(args.role), args.name or args.username,
                                    password)
                print(f"created {user.username} ({user.role.value}), recorded as "
                      f"{user.display_name!r}", file=sys.stderr)
            elif not users.set_password(args.username, password):
                return _fail(f"no user {args.username}", 1)
            if not given:
                print(password)
                print("the password is shown once; only its scrypt hash is stored",
                      file=sys.stderr)
        elif args.action == "disable":
            if not users.disable(args.username):
                return _fail(f"no active user {args.username}", 1)
            print(f"disabled {args.username}")
        else:
            for user in users.list():
                print("\t".join([user.username, user.role.value, user.display_name,
                                 user.created_at, user.disabled_at or ""]))
    finally:
        db.close()
    return 0


def _projection_of(name: str):  # type: ignore[no-untyped-def]
    """The projection (read model, or a worker's) named `name`, or the message why not."""
    service = name.split(".", 1)[0]
    if service not in SERVICE_NAMES:
        return f"unknown projection {name!r}; names look like integrator.network"
    spec = service_spec(service)
    found = [p for p in (*spec.projections(), *spec.followers()) if p.name == name]
    return found[0] if found else f"unknown projection {name!r}"


def cmd_projections(args: argparse.Namespace) -> int:
    from council.platform.eventlog import open_event_log
    from council.platform.projection import ProjectionRunner
    from council.platform.sql import open_database

    if args.action in ("parked", "retry"):
        return _parked_work(args)
    name = args.name or args.projection
    if not name:
        return _fail(f"projections {args.action} needs a projection's name")
    projection = _projection_of(name)
    if isinstance(projection, str):
        return _fail(projection)
    settings = Settings()
    service = name.split(".", 1)[0]
    db = open_database(settings, f"{service}_views")
    event_log = open_event_log(settings)
    try:
        runner = ProjectionRunner(projection, db, event_log)
        count = runner.rebuild() if args.action == "rebuild" else runner.catch_up()
    finally:
        event_log.close()
        db.close()
    print(f"{name}: {args.action} read {count} log records")
    return 0


def _parked_work(args: argparse.Namespace) -> int:
    """`council projections parked|retry [--projection NAME]`: what the read models and
    workers set aside (council.platform.parking), and applying it again after a fix."""
    from council.platform.eventlog import open_event_log
    from council.platform.parking import parked
    from council.platform.projection import ProjectionRunner
    from council.platform.sql import open_database

    name = args.projection or args.name
    if name and isinstance(_projection_of(name), str):
        return _fail(str(_projection_of(name)))
    settings = Settings()
    services = [name.split(".", 1)[0]] if name else list(SERVICE_NAMES)
    still = 0
    for service in services:
        db = open_database(settings, f"{service}_views")
        try:
            found = [p for p in parked(db) if name is None or p.projection == name]
            if args.action == "parked":
                for item in found:
                    print("\t".join(str(v) for v in (
                        item.projection, item.log_partition or "", item.log_offset
                        if item.log_offset is not None else "", item.event_id or "",
                        item.event_type or "", item.parked_at, item.attempts, item.reason)))
                continue
            event_log = open_event_log(settings)
            try:
                for projection_name in sorted({p.projection for p in found}):
                    projection = _projection_of(projection_name)
                    if isinstance(projection, str):
                        return _fail(projection)
                    done = ProjectionRunner(projection, db, event_log).retry_parked()
                    still += done.still_parked
                    print(f"{projection_name}: {done.applied} applied, "
                          f"{done.still_parked} still parked")
            finally:
                event_log.close()
        finally:
            db.close()
    return 1 if still else 0


def cmd_log(args: argparse.Namespace) -> int:
    """`council log findings|acknowledge`: what readers found wrong with the shared log (see
    council.platform.eventlog.findings), and forgetting it once looked into."""
    from council.platform.eventlog.findings import acknowledge, findings
    from council.platform.sql import open_database

    settings = Settings()
    for service in SERVICE_NAMES:
        for name in (f"{service}_views", service):
            db = open_database(settings, name)
            try:
                if args.action == "acknowledge":
                    if count := acknowledge(db):
                        print(f"{service}: {count} findings acknowledged")
                    continue
                for f in findings(db):
                    print("\t".join((service, f["found_at"], f["reader"], f["about"],
                                     f["finding"])))
            finally:
                db.close()
    return 0


def cmd_audit_replay(args: argparse.Namespace) -> int:
    """`council audit replay`: the network state rebuilt from the log, printed or written."""
    import json

    from council.platform.logs import configure_logging
    from council.services.integrator.projections.asof import as_of_moment
    from council.services.integrator.projections.replay import (
        as_csv,
        as_json,
        as_text,
        network_package,
        replayed,
        report,
    )

    configure_logging("audit", "warning")  # on stderr: stdout carries the state

    if args.as_of is not None:
        try:
            as_of_moment(args.as_of)
        except ValueError as exc:
            return _fail(f"--as-of: {exc}")
    settings = Settings()
    preflight(settings)
    with replayed(settings, args.as_of, full=args.full,
                  rebuild_snapshots=args.rebuild_snapshots, interval=args.snapshot_interval,
                  progress=progress_bar(sys.stderr)) as done:
        state, market = report(done.db, done.as_of)
    outputs = {"text": lambda: as_text(done, state, market),
               "json": lambda: json.dumps(as_json(done, state, market), indent=2) + "\n",
               "csv": lambda: as_csv(state)}
    for kind, path in (("json", args.json), ("csv", args.csv)):
        if path:
            try:
                with open(path, "w", encoding="utf-8", newline="") as out:
                    out.write(outputs[kind]())
            except OSError as exc:
                return _fail(f"--{kind}: cannot write {path}: {exc.strerror or exc}")
            print(f"council: wrote the network state as {kind.upper()} to {path}",
                  file=sys.stderr)
    if args.csv:
        # The CSV's columns and types, beside it, as every CSV the council publishes has.
        package = Path(args.csv).with_suffix(".datapackage.json")
        try:
            package.write_text(json.dumps(network_package(Path(args.csv).name), indent=2) + "\n",
                               encoding="utf-8")
        except OSError as exc:
            return _fail(f"--csv: cannot write {package}: {exc.strerror or exc}")
        print(f"council: wrote its data package (Table Schema) to {package}", file=sys.stderr)
    if args.format or not (args.json or args.csv):
        sys.stdout.write(outputs[args.format or "text"]())
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def add_audit_replay(actions: argparse._SubParsersAction[argparse.ArgumentParser],
                     infra_options: Callable[[argparse.ArgumentParser], None]) -> None:
    replay = actions.add_parser(
        "replay", help="rebuild the network state from the whole shared log, optionally as it "
        "stood on a date, and print it (or write JSON / CSV)")
    replay.add_argument("--as-of", metavar="DATE",
                        help="business date (2025-03-31: the end of that day, UTC) or date-time "
                        "(2025-03-31T17:00:00Z); from checkpointed snapshots unless --full")
    replay.add_argument("--full", action="store_true",
                        help="replay the whole log even with --as-of (no snapshots)")
    replay.add_argument("--rebuild-snapshots", action="store_true",
                        help="forget the snapshot store under var/replay/ and build it again")
    replay.add_argument("--snapshot-interval", metavar="EVENTS", type=_positive, default=50_000,
                        help="events between snapshots taken (default 50,000): fewer means "
                        "faster --as-of, more disk")
    replay.add_argument("--format", choices=["text", "json", "csv"],
                        help="what to print (default: text, unless --json/--csv write files)")
    replay.add_argument("--json", metavar="FILE", help="also write the state as JSON to FILE")
    replay.add_argument("--csv", metavar="FILE",
                        help="also write one row per provider and active agreement to FILE, "
                        "and its data package (Table Schema) to FILE.datapackage.json")
    infra_options(replay)
    replay.set_defaults(func=cmd_audit_replay)


def cmd_bench(args: argparse.Namespace) -> int:
    from council.tools.bench.run import main as bench_main

    return bench_main(args.events, args.deployment, args.replay_events, args.quick,
                      args.read_seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="council", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def infra_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database-url", help="postgresql://... (default: SQLite under var/)")
        p.add_argument("--log-url", help="kafka://host:port (default: embedded log in var/)")
        p.add_argument("--var-dir", help="where embedded files live (default: ./var)")

    up = sub.add_parser("up", help="start the three services and wait (Ctrl-C stops them)")
    infra_options(up)
    up.add_argument("--demo-token", action=argparse.BooleanOptionalAction, default=True,
                    help="create and print an integrator admin token")
    up.add_argument("--demo", action=argparse.BooleanOptionalAction, default=False,
                    help="load the demo data first, unless already loaded (make run does)")
    up.add_argument("--start-timeout", type=float, default=60.0,
                    help="seconds for every service to answer /health")
    up.add_argument("--ready-timeout", type=float, default=300.0,
                    help="seconds to wait for the read models to catch up with the log "
                    "before printing the URLs anyway")
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser("demo", help="load the demo data set (Northshire County Council) "
                          "into the configured stores and log; once only")
    infra_options(demo)
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--http-workers", type=_positive, default=1, metavar="N",
                       help="HTTP processes sharing the port (default 1); the background "
                       "work runs once beside them")
    serve.add_argument("--http-only", action="store_true",
                       help="no background work here (it runs once elsewhere: `council work`"
                       " or one `council serve` without this): another machine's HTTP tier")
    infra_options(serve)
    serve.set_defaults(func=cmd_serve)

    work = sub.add_parser("work", help="run a service's relay, projections or workers (council "
                          "serve starts these itself, one process per group)")
    work.add_argument("service", choices=SERVICE_NAMES)
    work.add_argument("--group", action="append", choices=GROUPS,
                      help="which work (repeatable; default: all of the service's)")
    work.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    infra_options(work)
    work.set_defaults(func=cmd_work)

    check = sub.add_parser("check", help="reach the configured stores and log, then exit")
    infra_options(check)
    check.set_defaults(func=cmd_check)

    tokens = sub.add_parser("tokens", help="API tokens: create, revoke, list")
    tsub = tokens.add_subparsers(dest="action", required=True)
    create = tsub.add_parser("create", help="print a new token (shown once)")
    create.add_argument("--role", required=True,
                        choices=["integrator_admin", "commissioner", "council_staff",
                                 "provider", "regulator"])
    create.add_argument("--provider-id", help="required for --role provider")
    create.add_argument("--label", help="who holds it, recorded as the actor of their events")
    create.add_argument("--scope", action="append", metavar="KEY=VALUE",
                        help="regulator tokens only, repeatable: what the token may see through "
                        "the audit API: organisation=<name>, provider=<uuid>, agreement=<uuid>, "
                        "from=<date>, to=<date> (business time, both inclusive)")
    revoke = tsub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    tsub.add_parser("list", help="list tokens (ids, roles, labels; never secrets)")
    for p in (tokens, create, revoke):
        infra_options(p)
    tokens.set_defaults(func=cmd_tokens)

    users = sub.add_parser("users", help="web users (council staff): create, set-password, "
                           "disable, list")
    usub = users.add_subparsers(dest="action", required=True)
    ucreate = usub.add_parser("create", help="create a user; prints a new password unless "
                              "--password-stdin")
    ucreate.add_argument("--username", required=True)
    ucreate.add_argument("--role", required=True,
                         choices=["integrator_admin", "commissioner", "council_staff",
                                  "regulator"])
    ucreate.add_argument("--name", help="the name their decisions are recorded under")
    upassword = usub.add_parser("set-password", help="a new password (re-enables the user)")
    upassword.add_argument("--username", required=True)
    for p in (ucreate, upassword):
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of standard input")
    udisable = usub.add_parser("disable", help="stop a user signing in")
    udisable.add_argument("username")
    ulist = usub.add_parser("list", help="list users (never passwords)")
    for p in (users, ucreate, upassword, udisable, ulist):
        infra_options(p)
    users.set_defaults(func=cmd_users)

    proj = sub.add_parser("projections", help="catch up or rebuild a read model from the "
                          "log; list what read models parked, or retry it after a fix")
    proj.add_argument("action", choices=["rebuild", "catch-up", "parked", "retry"])
    proj.add_argument("name", nargs="?", help="e.g. integrator.network")
    proj.add_argument("--projection", help="parked, retry: only this projection's")
    infra_options(proj)
    proj.set_defaults(func=cmd_projections)

    log_cmd = sub.add_parser("log", help="what readers found wrong with the shared log (it went "
                             "back, or its partitions changed); acknowledge once looked into")
    log_cmd.add_argument("action", choices=["findings", "acknowledge"])
    infra_options(log_cmd)
    log_cmd.set_defaults(func=cmd_log)

    from council.tools.audit_cli import add_audit_parser

    add_audit_replay(add_audit_parser(sub, infra_options), infra_options)

    from council.tools.privacy_cli import add_privacy_parser

    add_privacy_parser(sub, infra_options)

    bench = sub.add_parser("bench", help="measure store, relay and projection throughput")
    bench.add_argument("--events", type=int, default=20000)
    bench.add_argument("--deployment",
                       choices=["embedded", "scale", "pages", "reads", "reads-scale", "all"],
                       default="all", help="pages: only the web pages' server times; reads: "
                       "only the read load (embedded); reads-scale: only the read load on "
                       "PostgreSQL and Kafka")
    bench.add_argument("--quick", action="store_true",
                       help="a short fixed workload (CI): printed, never gating")
    bench.add_argument("--read-seconds", type=float, default=5.0,
                       help="how long wrk drives each read at each number of connections")
    bench.add_argument("--replay-events", type=int, default=1_000_000,
                       help="size of the log replayed (generated once under var/bench/); 0 skips")
    infra_options(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _apply_overrides(args)
    try:
        code: int = args.func(args)
    except (InfrastructureUnavailable, PersistenceNotConfigured) as exc:
        return _fail(f"cannot start: {exc}")
    except ValueError as exc:
        return _fail(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
