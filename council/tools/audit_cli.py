"""`council audit ...`: verify the chain (live log or bundle), export a bundle, sign a checkpoint
now, print the public key. Translation only: the work is in council.platform.audit."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from council.platform.audit.verify import Kind, Report, first_break
from council.platform.settings import SERVICE_NAMES, Settings

InfraOptions = Callable[[argparse.ArgumentParser], None]


def add_audit_parser(sub: Any, infra_options: InfraOptions) -> Any:
    """Add `council audit` and its commands; returns its sub-parsers (for more commands)."""
    audit = sub.add_parser("audit", help="the tamper-evident audit trail: verify, export, replay")
    commands = audit.add_subparsers(dest="audit_command", required=True)

    verify = commands.add_parser(
        "verify", help="walk every source's hash chain and the signed checkpoints, and check "
        "every service's event store against its chain; exit 1 at any break, naming the first")
    verify.add_argument("--bundle", type=Path, help="verify an exported bundle instead of the log")
    verify.add_argument("--public-key", type=Path, help="the council's public key (PEM) to "
                        "trust; default: the deployment's (live log) or the bundle's own")
    verify.add_argument("--pin", type=Path, action="append", default=[], help="checkpoints kept "
                        "from earlier (a bundle's checkpoints.ndjson): they must still match")
    verify.add_argument("--source", action="append", choices=SERVICE_NAMES,
                        help="only this source's chain (repeatable; default: all)")
    verify.add_argument("--allow-unchained", action="store_true", help="accept events from "
                        "before the audit chain (reported, not failed)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--log-only", action="store_true", help="check the log alone, not the "
                        "services' event stores against it (where the stores cannot be read)")
    infra_options(verify)
    verify.set_defaults(func=cmd_verify)

    export = commands.add_parser("export", help="write a self-contained bundle a regulator can "
                                 "verify with standard tools")
    export.add_argument("--out", type=Path, required=True, help="a new or empty directory")
    export.add_argument("--source", action="append", choices=SERVICE_NAMES,
                        help="only this source's events (repeatable; default: all)")
    export.add_argument("--since", help="events recorded from this date or date-time (UTC)")
    export.add_argument("--until", help="events recorded up to this date (its end) or time")
    export.add_argument("--allow-unchained", action="store_true",
                        help="export even if the log holds events from before the chain")
    infra_options(export)
    export.set_defaults(func=cmd_export)

    checkpoint = commands.add_parser("checkpoint", help="sign a checkpoint over every source's "
                                     "chain now (services do it every few events or seconds)")
    infra_options(checkpoint)
    checkpoint.set_defaults(func=cmd_checkpoint)

    key = commands.add_parser("public-key", help="print the deployment's checkpoint public key "
                              "(PEM) for regulators to pin; its id goes to stderr")
    infra_options(key)
    key.set_defaults(func=cmd_public_key)
    return commands


def _progress() -> Callable[[str, int, int], None]:
    from council.tools.console import progress_bar as bar

    return bar(sys.stderr)


def _quiet() -> None:
    """Warnings only: the commands print their own results (projections built for the OCDS
    releases would otherwise log every event)."""
    from council.platform.logs import configure_logging

    configure_logging("audit", "warning")


def _trusted_key(settings: Settings, given: Path | None, bundle: bool) -> Any:
    from council.platform.audit.keys import key_file, read_public_key

    if given is not None:
        return read_public_key(given)
    if bundle:
        return None  # the bundle's own, reported as such
    path = key_file(settings)
    return read_public_key(path) if path.exists() else None


def cmd_verify(args: argparse.Namespace) -> int:
    from council.platform.audit.stores import service_stores
    from council.platform.audit.trail import verify_log
    from council.platform.eventlog import open_event_log
    from council.services.integrator.adapters.evidence_bundle import verify_bundle
    from council.tools.console import service_applications

    _quiet()
    settings = Settings()
    key = _trusted_key(settings, args.public_key, args.bundle is not None)
    sources = tuple(args.source or SERVICE_NAMES)
    if args.bundle is not None:
        report = verify_bundle(args.bundle, key=key, pins=args.pin,
                               allow_unchained=args.allow_unchained, progress=_progress())
        where = f"bundle {args.bundle}"
    else:
        event_log = open_event_log(settings)
        try:
            applications = {} if args.log_only else service_applications(sources)
            with service_stores(settings, applications, event_log) as stores:
                report, _ = verify_log(event_log, sources=sources, key=key, pins=args.pin,
                                       allow_unchained=args.allow_unchained,
                                       progress=_progress(),
                                       stores=None if args.log_only else stores)
            where = event_log.url if args.log_only else f"{event_log.url} and the event stores"
        finally:
            event_log.close()
    if args.json:
        print(json.dumps({"verified": where, **report.as_json()}, indent=2))
    else:
        print(render(report, where))
    return 0 if report.intact else 1


def render(report: Report, where: str) -> str:
    """The report as people read it: the first break exactly, or what was verified."""
    lines = []
    if not report.intact:
        chain_breaks = [b for b in report.breaks if b.kind is not Kind.BUNDLE]
        first = first_break(chain_breaks) or report.breaks[0]
        lines.append(f"council audit verify: BROKEN ({where}): "
                     f"{_count(len(report.breaks), 'break')}")
        lines.append(f"  first broken link: {first.describe()}")
        others = [b for b in report.breaks if b is not first]
        for other in sorted(others, key=lambda b: (b.source, b.sequence or 0))[:20]:
            lines.append(f"  also: {other.describe()}")
        if len(others) > 20:
            lines.append(f"  ... and {len(others) - 20} more (--json lists them all)")
    else:
        lines.append(f"council audit verify: intact ({where})")
    for chain in report.chains:
        text = f"  {chain.source:<18} {chain.events:>9,} events"
        if chain.events:
            text += (f", sequences {chain.first_sequence:,} to {chain.last_sequence:,}, "
                     f"tip {chain.tip[:16]}...")
        if chain.checkpoints:
            verb = "matches" if chain.checkpoints == 1 else "match"
            text += (f"; {_count(chain.checkpoints, 'checkpoint')} {verb} (last at "
                     f"{chain.last_checkpoint:,})")
        if chain.duplicates:
            text += f"; {chain.duplicates:,} republished duplicates passed over"
        if chain.stored is not None:
            text += f"; {chain.stored:,} stored events match"
            if chain.unpublished:
                text += f" ({chain.unpublished:,} stored, not yet published)"
        lines.append(text)
    key = f" signed by key {report.key_id}" if report.key_id else ""
    lines.append(f"  {_count(report.events, 'event')} in {_count(len(report.chains), 'chain')};"
                 f" {_count(report.checkpoints, 'checkpoint')}{key} verified")
    for accepted in report.accepted:
        lines.append(f"  accepted (--allow-unchained): {accepted.describe()}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _moment(text: str | None, end_of_day: bool) -> datetime | None:
    if not text:
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (2025-03-31) or date-time "
                         "(2025-03-31T17:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cmd_export(args: argparse.Namespace) -> int:
    from council.platform.audit.keys import load_signing_key
    from council.platform.eventlog import open_event_log
    from council.services.integrator.adapters.evidence_bundle import ExportRefused, export_bundle

    _quiet()
    settings = Settings()
    since, until = _moment(args.since, False), _moment(args.until, True)
    if since and until and since > until:
        raise ValueError("--since is after --until")
    key = load_signing_key(settings)
    event_log = open_event_log(settings)
    try:
        summary = export_bundle(event_log, args.out, key, sources=tuple(args.source or
                                SERVICE_NAMES), since=since, until=until,
                                allow_unchained=args.allow_unchained, progress=_progress())
    except ExportRefused as exc:
        print(f"council: {exc}", file=sys.stderr)
        return 1
    finally:
        event_log.close()
    counts = ", ".join(f"{source} {n:,}" for source, n in summary.events.items())
    print(f"exported to {summary.path}: events {counts}; {summary.checkpoints} checkpoints; "
          f"{summary.ocds_releases} OCDS releases; key {summary.key_id}")
    print(f"verify it: council audit verify --bundle {summary.path} (or see its README.md)")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from council.platform.audit.checkpoints import CheckpointWriter
    from council.platform.eventlog import open_event_log
    from council.platform.eventstore import store_database

    _quiet()
    settings = Settings()
    event_log = open_event_log(settings)
    try:
        for service in SERVICE_NAMES:
            db = store_database(settings, service)
            try:
                writer = CheckpointWriter.for_service(settings, service, db, event_log)
                signed = writer.write(force=True)
            finally:
                db.close()
            if signed is None:
                print(f"  {service:<18} nothing new since the last checkpoint")
            else:
                print(f"  {service:<18} {signed.count:>9,} events, hash {signed.hash[:16]}..., "
                      f"signed {signed.signed_at} by key {signed.key_id}")
    finally:
        event_log.close()
    return 0


def cmd_public_key(args: argparse.Namespace) -> int:
    from council.platform.audit.keys import key_id, load_signing_key, public_pem

    public = load_signing_key(Settings()).public_key()
    sys.stdout.write(public_pem(public).decode("ascii"))
    print(f"key id {key_id(public)}", file=sys.stderr)
    return 0
