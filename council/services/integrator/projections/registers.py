"""The Local Government Transparency Code's registers, read from the integrator's read models:
spend over £500 in a quarter (the commissioning projection's payments, with the network
projection's names and registration numbers) and the contracts register over £5,000 (its
agreements). The rules of what is published are in domain/transparency.py; the columns and
their Table Schema here.

Money leaves as Decimal pounds (the read models keep whole pence); dates as ISO 8601.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from council.kernel.contracts.integrator import ArrangementType, SourcingOption
from council.kernel.contracts.provider_registry import OrganisationType
from council.kernel.money import pounds
from council.kernel.periods import Period
from council.platform.sql import Database, Tx
from council.platform.tables import Column, data_package
from council.services.integrator.domain.transparency import (
    MERCHANT_CATEGORIES,
    contract_is_published,
    procurement_route,
    registration_number,
    spend_is_published,
    supplier_kind,
)
from council.services.integrator.projections.network import provider_identifiers

_MONEY = "pounds, to the penny"
_IRRECOVERABLE_VAT = ("VAT that cannot be recovered, in pounds; empty: the platform records "
                      "amounts as paid and no VAT apart from them")
SPEND_COLUMNS: tuple[Column, ...] = (
    Column("transaction_id", required=True, description="the payment's id (unique with the "
           "agreement id)"),
    Column("date_incurred", "date", required=True, description="the date the expenditure "
           "was incurred: when the payment was recorded"),
    Column("department", required=True, description="the department (service area) which "
           "incurred the expenditure"),
    Column("beneficiary", required=True, description="who was paid"),
    Column("beneficiary_registration_number", description="Companies House or charity "
           "number, as text"),
    Column("purpose", required=True, description="summary of the purpose of the expenditure"),
    Column("amount", "number", required=True, description=f"{_MONEY}; negative for a credit "
           "recovered from the provider"),
    Column("irrecoverable_vat", "number", description=_IRRECOVERABLE_VAT),
    Column("merchant_category", required=True),
    Column("agreement_id", required=True),
    Column("period_paid_for", required=True, pattern=r"[0-9]{4}-(0[1-9]|1[0-2])",
           description="the month the payment is for (YYYY-MM)"),
    Column("beneficiary_id", required=True, description="the provider's id in the registry"),
)
CONTRACT_COLUMNS: tuple[Column, ...] = (
    Column("reference", required=True, description="reference number: the agreement's id"),
    Column("title", required=True, description="title of the agreement"),
    Column("department", required=True, description="the department (service area) "
           "responsible"),
    Column("description", required=True, description="the goods or services provided"),
    Column("supplier_names", required=True, description="separated by semicolons"),
    Column("supplier_ids", required=True, description="the suppliers' ids in the registry, "
           "separated by semicolons"),
    Column("value", "number", required=True, description="the sum to be paid over the length "
           f"of the agreement (its current budget), {_MONEY}"),
    Column("irrecoverable_vat", "number", description=_IRRECOVERABLE_VAT),
    Column("start_date", "date", required=True),
    Column("end_date", "date", required=True, description="after any extensions"),
    Column("review_date", "date", description="empty: the platform records no review date"),
    Column("procurement_route", required=True,
           enum=("published invitation to tender", "invitation to quote", "neither")),
    Column("supplier_sme_or_vcse", description="per supplier, in order: SME, VCSE or empty; "
           "separated by semicolons"),
    Column("supplier_registration_numbers", description="per supplier, in order: Companies "
           "House or charity number; separated by semicolons"),
    Column("arrangement_type", required=True, enum=tuple(t.value for t in ArrangementType)),
    Column("signed_on", "date"),
    Column("status", required=True, enum=("drafted", "active", "ended")),
    Column("ended_on", "date"),
)


def spend_package(csv_path: str) -> dict[str, Any]:
    return data_package(
        "spend-over-500", "Expenditure exceeding £500 (Local Government Transparency Code 2015)",
        csv_path, SPEND_COLUMNS, primary_key=("agreement_id", "transaction_id"),
        description="Each payment to a provider, or credit recovered from one, of more than "
                    "£500, in the quarter asked for.")


def contracts_package(csv_path: str) -> dict[str, Any]:
    return data_package(
        "contracts-register", "Contracts exceeding £5,000 (Local Government Transparency Code "
        "2015)", csv_path, CONTRACT_COLUMNS, primary_key=("reference",),
        description="Every agreement signed or in force worth more than £5,000.")


def _names_and_kinds(tx: Tx, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i:i + 500])
        for pid, name, kind in tx.execute(
            "SELECT provider_id, name, organisation_type FROM network_providers"
            f" WHERE provider_id IN ({','.join('?' * len(chunk))})", chunk,
        ):
            found[str(pid)] = (name, kind)
    return found


def spend_register(db: Database, quarter: Period) -> list[dict[str, object]]:
    """The items of expenditure over £500 incurred in `quarter`, by date then id."""
    first = quarter.first.isoformat()
    after = (quarter.last + timedelta(days=1)).isoformat()
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT s.spend_id, s.recorded_at, s.agreement_id, s.provider_id, s.amount_pence,"
            " s.period, a.title, a.arrangement_type, n.service_area"
            " FROM cm_spend s JOIN cm_agreements a ON a.agreement_id = s.agreement_id"
            " LEFT JOIN cm_needs n ON n.need_id = a.need_id"
            " WHERE s.recorded_at >= ? AND s.recorded_at < ?"
            " ORDER BY s.recorded_at, s.agreement_id, s.spend_id", (first, after),
        )
        chosen = [r for r in rows if spend_is_published(pounds(int(r[4])))]
        ids = sorted({str(r[3]) for r in chosen})
        names, identifiers = _names_and_kinds(tx, ids), provider_identifiers(tx, ids)
    register: list[dict[str, object]] = []
    for spend_id, recorded_at, agreement_id, pid, amount, period, title, kind, area in chosen:
        value = pounds(int(amount))
        what = "credit recovered under" if value < 0 else "payment under"
        register.append({
            "transaction_id": spend_id,
            "date_incurred": datetime.fromisoformat(recorded_at).date().isoformat(),
            "department": area or "",
            "beneficiary": names.get(str(pid), (f"Provider {pid}", ""))[0],
            "beneficiary_registration_number": registration_number(
                identifiers.get(str(pid), {})),
            "purpose": f"{title}: {what} the agreement, for {period}",
            "amount": value,
            "irrecoverable_vat": None,
            "merchant_category": MERCHANT_CATEGORIES[ArrangementType(kind)],
            "agreement_id": agreement_id,
            "period_paid_for": period,
            "beneficiary_id": pid,
        })
    return register


def contracts_register(db: Database) -> list[dict[str, object]]:
    """Every agreement signed or in force (or ended after either) worth more than £5,000, in
    the order they were drafted."""
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT a.agreement_id, a.title, a.arrangement_type, a.status, a.starts_on,"
            " a.ends_on, a.budget_pence, a.signed_on, a.activated_on, a.ended_on,"
            " n.service_area, n.title, n.recommended, n.engagements"
            " FROM cm_agreements a LEFT JOIN cm_needs n ON n.need_id = a.need_id"
            " WHERE a.signed_on IS NOT NULL OR a.activated_on IS NOT NULL"
            " ORDER BY a.drafted_at, a.agreement_id")
        chosen = [r for r in rows if contract_is_published(pounds(int(r[6])))]
        agreement_ids = [str(r[0]) for r in chosen]
        parties: dict[str, list[str]] = {a: [] for a in agreement_ids}
        for i in range(0, len(agreement_ids), 500):
            chunk = agreement_ids[i:i + 500]
            for agreement_id, pid in tx.execute(
                "SELECT agreement_id, provider_id FROM cm_parties WHERE agreement_id IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY agreement_id, ordinal", chunk,
            ):
                parties[str(agreement_id)].append(str(pid))
        ids = sorted({p for ps in parties.values() for p in ps})
        names, identifiers = _names_and_kinds(tx, ids), provider_identifiers(tx, ids)
    register: list[dict[str, object]] = []
    for (agreement_id, title, kind, status, starts_on, ends_on, budget, signed_on, _activated,
         ended_on, area, need_title, recommended, engagements) in chosen:
        suppliers = parties[str(agreement_id)]
        known = [names.get(p, (f"Provider {p}", "")) for p in suppliers]
        register.append({
            "reference": agreement_id,
            "title": title,
            "department": area or "",
            "description": f"{MERCHANT_CATEGORIES[ArrangementType(kind)]} towards the need: "
                           f"{need_title}" if need_title else title,
            "supplier_names": "; ".join(name for name, _ in known),
            "supplier_ids": "; ".join(suppliers),
            "value": pounds(int(budget)),
            "irrecoverable_vat": None,
            "start_date": starts_on,
            "end_date": ends_on,
            "review_date": None,
            "procurement_route": procurement_route(
                SourcingOption(recommended) if recommended else None,
                bool(json.loads(engagements)) if engagements else False),
            "supplier_sme_or_vcse": "; ".join(
                supplier_kind(OrganisationType(k)) if k else "" for _, k in known),
            "supplier_registration_numbers": "; ".join(
                registration_number(identifiers.get(p, {})) for p in suppliers),
            "arrangement_type": kind,
            "signed_on": signed_on,
            "status": status,
            "ended_on": ended_on,
        })
    return register
