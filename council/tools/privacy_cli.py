"""`council privacy erase`: erase a data subject's personal data from the command line, as
`POST /data-subjects/erasure` does (council.services.outcomes.erasure), against the configured
outcomes store and vault. Translation only.

The erasure is recorded in the outcomes event store and the key destroyed at once; the outcomes
service's relay publishes DataSubjectErased to the shared log (if the service is not running,
when it next starts). A reference is read from standard input with --reference-stdin, so it
stays out of the shell's history and the process list.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from council.kernel.contracts.outcomes import LegalBasis
from council.kernel.errors import NotFound

InfraOptions = Callable[[argparse.ArgumentParser], None]


def add_privacy_parser(sub: Any, infra_options: InfraOptions) -> None:
    privacy = sub.add_parser("privacy", help="service users' personal data: erase a data "
                             "subject (crypto-shredding)")
    commands = privacy.add_subparsers(dest="privacy_command", required=True)
    erase = commands.add_parser(
        "erase", help="destroy a data subject's key: their personal data becomes unreadable "
        "everywhere, the audit chain still verifies")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--subject-id", help="the subject's id")
    who.add_argument("--reference-stdin", action="store_true",
                     help="read the subject's reference (NHS number or the provider's own) "
                     "from the first line of standard input")
    erase.add_argument("--reference-type", choices=["nhs_number", "provider_reference"],
                       default="nhs_number", help="with --reference-stdin (default nhs_number)")
    erase.add_argument("--provider-id", help="whose reference, for a provider_reference")
    erase.add_argument("--legal-basis", required=True, choices=[b.value for b in LegalBasis],
                       help="the ground under UK GDPR Article 17(1)")
    erase.add_argument("--reason", required=True,
                       help="why, e.g. the request's number (on the log for good: no "
                       "personal data)")
    erase.add_argument("--requested-on", help="when the request was made (YYYY-MM-DD)")
    erase.add_argument("--by", required=True, help="who is erasing: recorded as the actor "
                       "(integrator_admin:<by>)")
    infra_options(erase)
    erase.set_defaults(func=cmd_erase)


def cmd_erase(args: argparse.Namespace) -> int:
    from council.kernel.context import CommandContext, command_context, new_correlation_id
    from council.platform.eventstore import open_application, store_database
    from council.platform.logs import configure_logging
    from council.platform.settings import Settings
    from council.services.outcomes.adapters.personal_data import PersonalData
    from council.services.outcomes.adapters.vault import SubjectVault
    from council.services.outcomes.application import Outcomes
    from council.services.outcomes.erasure import ErasureIn, erase, purge_consumed_inbound

    body: dict[str, Any] = {"legal_basis": args.legal_basis, "reason": args.reason,
                            "requested_on": args.requested_on}
    if args.subject_id:
        body["subject_id"] = args.subject_id
    else:
        body["service_user"] = {"reference": sys.stdin.readline().rstrip("\n"),
                                "reference_type": args.reference_type,
                                "provider_id": args.provider_id}
    try:
        request = ErasureIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the request"
        print(f"council: {where}: {first['msg'].removeprefix('Value error, ')}",
              file=sys.stderr)
        return 2
    configure_logging("privacy", "warning")  # JSON lines on stderr; the result on stdout
    settings = Settings()
    app = open_application(Outcomes, settings)
    app.personal_data = PersonalData(SubjectVault.for_settings(settings))
    store_db = store_database(settings, Outcomes.service)
    context = CommandContext(actor=f"integrator_admin:{args.by}", organisation="council",
                             correlation_id=new_correlation_id())
    try:
        with command_context(context):
            done = erase(app, request)
        inbound = purge_consumed_inbound(settings, store_db)
    except NotFound as exc:
        print(f"council: {exc}", file=sys.stderr)
        return 1
    finally:
        app.close()
        store_db.close()
    erasure = done.erasure
    said = "erased" if done.created else "already erased"
    print(f"{said}: data subject {erasure.subject_id} (erasure {erasure.id}, "
          f"{erasure.legal_basis}, {erasure.created_on:%Y-%m-%d %H:%M} UTC)")
    if inbound:
        print(f"inbound delivery topic: {inbound}")
    return 0
