"""The `council` command line: start the stack, load the demo data, serve one service, manage
tokens, rebuild projections, check infrastructure, run benchmarks. It only translates arguments
into calls."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import TextIO
from uuid import UUID

from shared.errors import InfrastructureUnavailable, PersistenceNotConfigured
from shared.settings import SERVICE_NAMES, Settings
from shared.workers import GROUPS


def _spec(service: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"services.{service}.service").SPEC


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
    """Reach every configured store and the log now, so a bad URL fails fast and clearly."""
    from shared.eventlog import open_event_log
    from shared.sql import open_database

    open_database(settings, "identity").close()
    open_event_log(settings).close()


def cmd_check(args: argparse.Namespace) -> int:
    settings = Settings()
    preflight(settings)
    store = "PostgreSQL" if settings.uses_postgres else f"SQLite under {settings.var_dir}/"
    print(f"ok: event stores on {store}; shared log at {settings.log_url}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shared.logs import configure_logging
    from shared.web import create_service_app

    settings = Settings()
    configure_logging(args.service, settings.log_level)
    preflight(settings)
    api = create_service_app(_spec(args.service), settings, workers=settings.workers)
    uvicorn.run(
        api, host=settings.host, port=settings.port_of(args.service),
        log_config=None, access_log=False, timeout_graceful_shutdown=10,
    )
    return 0


def cmd_work(args: argparse.Namespace) -> int:
    import threading

    from shared.workers import lower_priority, watch_parent

    # First of all: a stop asked for while starting still ends with the relay's drain.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.parent:
        watch_parent(args.parent)

    from shared.logs import configure_logging
    from shared.web import run_workers

    settings = Settings()
    configure_logging(args.service, settings.log_level)
    spec = _spec(args.service)
    groups = args.group or spec.groups(settings)
    lower_priority(groups)
    run_workers(spec, settings, groups, stop)
    return 0


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _progress(stream: TextIO) -> Callable[[str, int, int], None]:
    """A progress bar on a terminal; a line per quarter otherwise (logs, CI)."""
    tty = stream.isatty()
    shown: dict[str, int] = {}

    def show(phase: str, done: int, total: int) -> None:
        pct = done * 100 // total if total else 100
        if tty:
            filled = pct * 30 // 100
            stream.write(f"\r  {phase:<30} [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}%"
                         f"  {done}/{total}")
            if done >= total:
                stream.write("\n")
        elif pct // 25 > shown.get(phase, -1):
            shown[phase] = pct // 25
            stream.write(f"  {phase}: {pct}% ({done}/{total})\n")
        stream.flush()

    return show


def load_demo_data(settings: Settings) -> None:
    """Load the demo data set (once) and say what it holds."""
    from services.integrator.demo import load_demo

    where = "PostgreSQL" if settings.uses_postgres else f"SQLite under {settings.var_dir}/"
    print(f"Demo data (Northshire County Council): event stores on {where}; shared log at "
          f"{settings.log_url}", flush=True)
    summary = load_demo(settings, _progress(sys.stdout))
    if summary.already_loaded:
        print("  demo data already loaded; nothing added", flush=True)
        return
    print(f"Loaded in {summary.seconds:.1f} s:")
    for line in summary.lines():
        print(f"  {line}")
    sys.stdout.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    from services.integrator.demo import DemoError

    settings = Settings()
    preflight(settings)
    try:
        load_demo_data(settings)
    except DemoError as exc:
        return _fail(str(exc), 1)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    settings = Settings()
    preflight(settings)
    if args.demo:
        from services.integrator.demo import DemoError

        try:
            load_demo_data(settings)
        except DemoError as exc:
            return _fail(f"cannot load the demo data: {exc}", 1)
    children = {
        name: subprocess.Popen([sys.executable, "-m", "shared.cli", "serve", name])
        for name in SERVICE_NAMES
    }
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + args.start_timeout
    waiting = set(SERVICE_NAMES)
    while waiting and not stopping and time.monotonic() < deadline:
        waiting = {n for n in waiting if not _healthy(settings.url_of(n))}
        if any(c.poll() is not None for c in children.values()):
            break
        time.sleep(0.2)
    code = 0
    if waiting and not stopping:
        print(f"council: not healthy in time: {', '.join(sorted(waiting))}", file=sys.stderr)
        code = 1
    else:
        _announce(settings, args)
        while not stopping and all(c.poll() is None for c in children.values()):
            time.sleep(0.2)
        dead = [n for n, c in children.items() if c.poll() is not None]
        if dead and not stopping:
            print(f"council: {', '.join(dead)} stopped unexpectedly", file=sys.stderr)
            code = 1
    _shutdown(children)
    return code


def _announce(settings: Settings, args: argparse.Namespace) -> None:
    print("\nCouncil Integrator is running:")
    for name in SERVICE_NAMES:
        print(f"  {name:<18} {settings.url_of(name)}   (API docs: {settings.url_of(name)}/docs)")
    print(f"  event stores: {'PostgreSQL' if settings.uses_postgres else 'SQLite'}; "
          f"shared log: {settings.log_url}")
    if args.demo_token:
        from shared.identity import Role, TokenStore
        from shared.sql import open_database

        db = open_database(settings, "identity")
        issued = TokenStore(db).create(Role.INTEGRATOR_ADMIN, "demo admin")
        db.close()
        print(f"\n  admin token (demo): {issued.token}")
        print(f"  try: curl -H 'Authorization: Bearer {issued.token}' "
              f"{settings.url_of('integrator')}/network/providers")
    print("\nCtrl-C stops all three.", flush=True)


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
    from shared.identity import Role, TokenStore
    from shared.sql import open_database

    settings = Settings()
    db = open_database(settings, "identity")
    store = TokenStore(db)
    try:
        if args.action == "create":
            provider_id = UUID(args.provider_id) if args.provider_id else None
            issued = store.create(Role(args.role), args.label or args.role, provider_id)
            print(issued.token)
            print(f"token id {issued.principal.token_id} ({args.role}); shown once, "
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


def cmd_projections(args: argparse.Namespace) -> int:
    from shared.eventlog import open_event_log
    from shared.projection import ProjectionRunner
    from shared.sql import open_database

    settings = Settings()
    service = args.name.split(".", 1)[0]
    if service not in SERVICE_NAMES:
        return _fail(f"unknown projection {args.name!r}; names look like integrator.network")
    found = [p for p in _spec(service).projections() if p.name == args.name]
    if not found:
        return _fail(f"unknown projection {args.name!r}")
    db = open_database(settings, f"{service}_views")
    event_log = open_event_log(settings)
    try:
        runner = ProjectionRunner(found[0], db, event_log)
        count = runner.rebuild() if args.action == "rebuild" else runner.catch_up()
    finally:
        event_log.close()
        db.close()
    print(f"{args.name}: {args.action} read {count} log records")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from shared.bench import main as bench_main

    return bench_main(args.events, args.deployment)


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
    up.add_argument("--start-timeout", type=float, default=60.0)
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser("demo", help="load the demo data set (Northshire County Council) "
                          "into the configured stores and log; once only")
    infra_options(demo)
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICE_NAMES)
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
    revoke = tsub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    tsub.add_parser("list", help="list tokens (ids, roles, labels; never secrets)")
    for p in (tokens, create, revoke):
        infra_options(p)
    tokens.set_defaults(func=cmd_tokens)

    proj = sub.add_parser("projections", help="catch up or rebuild a read model from the log")
    proj.add_argument("action", choices=["rebuild", "catch-up"])
    proj.add_argument("name", help="e.g. integrator.network")
    infra_options(proj)
    proj.set_defaults(func=cmd_projections)

    bench = sub.add_parser("bench", help="measure store, relay and projection throughput")
    bench.add_argument("--events", type=int, default=20000)
    bench.add_argument("--deployment", choices=["embedded", "scale", "all"], default="all")
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
