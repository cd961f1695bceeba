"""The network projection: every provider in the council's network, from the shared log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.integrator.domain import MemberStatus, NetworkProvider
from shared.contracts.provider_registry import SOURCE as REGISTRY
from shared.contracts.provider_registry import ProviderRegistered
from shared.envelope import EventEnvelope
from shared.projection import Projection
from shared.sql import Database, Tx


class NetworkProjection(Projection):
    name = "integrator.network"
    sources = (REGISTRY,)

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS network_providers ("
            " provider_id TEXT PRIMARY KEY, name TEXT NOT NULL, organisation_type TEXT NOT NULL,"
            " status TEXT NOT NULL, registered_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        # Running totals, kept by increments: a double-applied event would show here.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS network_counts ("
            " organisation_type TEXT PRIMARY KEY, providers INTEGER NOT NULL)"
        )

    def drop(self, tx: Tx) -> None:
        tx.execute("DROP TABLE IF EXISTS network_providers")
        tx.execute("DROP TABLE IF EXISTS network_counts")

    def apply(self, tx: Tx, event: EventEnvelope) -> None:
        if event.type == "ProviderRegistered":
            data = ProviderRegistered.model_validate(event.data)
            at = event.occurred_at.isoformat()
            tx.execute(
                "INSERT INTO network_providers (provider_id, name, organisation_type, status,"
                " registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (provider_id) DO NOTHING",
                (str(data.provider_id), data.name, data.organisation_type.value,
                 MemberStatus.REGISTERED.value, at, at),
            )
            tx.execute(
                "INSERT INTO network_counts (organisation_type, providers) VALUES (?, 1)"
                " ON CONFLICT (organisation_type)"
                " DO UPDATE SET providers = network_counts.providers + 1",
                (data.organisation_type.value,),
            )


def list_providers(db: Database, limit: int = 1000, offset: int = 0) -> list[NetworkProvider]:
    with db.transaction() as tx:
        rows = tx.execute(
            "SELECT provider_id, name, organisation_type, status, registered_at, updated_at"
            " FROM network_providers ORDER BY name, provider_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
    return [
        NetworkProvider(
            provider_id=r[0], name=r[1], organisation_type=r[2], status=r[3],
            registered_at=datetime.fromisoformat(r[4]), updated_at=datetime.fromisoformat(r[5]),
        )
        for r in rows
    ]


def provider_counts(db: Database) -> dict[str, int]:
    """Providers in the network per organisation type."""
    with db.transaction() as tx:
        rows = tx.execute("SELECT organisation_type, providers FROM network_counts")
    return {str(kind): int(n) for kind, n in rows}


def projections() -> Sequence[Projection]:
    return (NetworkProjection(),)
