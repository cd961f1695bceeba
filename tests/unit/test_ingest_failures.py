"""The Kafka delivery ingest facing a report it cannot handle and a store it cannot reach,
without a broker: one bad report is rejected on its own and never holds back the valid ones
beside it; a lost store is read again, and a long run of failures shows as a stuck ingest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from council.kernel.errors import InfrastructureUnavailable
from council.platform.identity import TokenStore
from council.platform.sql import Database
from council.services.outcomes.adapters.kafka_ingest import (
    STUCK_AFTER_S,
    KafkaDeliveryIngest,
    Reject,
    read_health,
)
from council.services.outcomes.application import DeliveryBatch
from council.services.outcomes.domain.acceptance import DeliveryOutcome
from council.services.outcomes.domain.commands import DeliveryIn

PROVIDER = uuid4()


class FragileStore:
    """An outcomes application whose store fails on the report keyed `poison`, as a fault in
    the code would (or, `lost`, on every report, as a database gone away)."""

    def __init__(self, lost: bool = False) -> None:
        self.lost = lost
        self.calls = 0

    def report_deliveries(self, provider_id: UUID,
                          reports: Sequence[tuple[int, DeliveryIn | Exception]],
                          channel: Any) -> DeliveryBatch:
        self.calls += 1
        if self.lost:
            raise InfrastructureUnavailable("PostgreSQL at ... is unreachable")
        if any(isinstance(r, DeliveryIn) and r.idempotency_key == "poison" for _, r in reports):
            raise RecursionError("maximum recursion depth exceeded")
        return DeliveryBatch([DeliveryOutcome(i, delivery_id=uuid4()) for i, _ in reports])


def delivery(key: str) -> DeliveryIn:
    return DeliveryIn(idempotency_key=key, agreement_id=uuid4(),
                      activity_type="sessions_delivered", quantity=3,
                      period_start="2025-04-01", period_end="2025-04-30")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.sqlite(tmp_path / "outcomes.sqlite")
    yield database
    database.close()


def ingest(db: Database, app: Any) -> KafkaDeliveryIngest:
    return KafkaDeliveryIngest(app, TokenStore(db), db, "127.0.0.1:1", inbound="in",
                               rejects="out")


def test_one_report_that_breaks_the_store_is_rejected_and_the_rest_stored(db: Database) -> None:
    app = FragileStore()
    reports: list[tuple[int, DeliveryIn | Exception]] = [
        (i, delivery("poison" if i == 700 else f"r-{i}")) for i in range(1000)]
    outcomes = ingest(db, app)._report_split(PROVIDER, reports)
    assert [o.index for o in outcomes] == list(range(1000))
    (refused,) = [o for o in outcomes if o.error is not None]
    assert refused.index == 700
    assert refused.error == "could not be stored: RecursionError"
    # Halved down to the report at fault: about 2 log2(1000) attempts, not 1,000.
    assert app.calls <= 2 * 11


def test_a_lost_store_is_not_a_reject_the_batch_is_read_again(db: Database) -> None:
    with pytest.raises(InfrastructureUnavailable):
        ingest(db, FragileStore(lost=True))._report_split(PROVIDER, [(0, delivery("a"))])


def test_a_reject_is_built_whatever_the_message_holds() -> None:
    deep = b"[" * 3000 + b"]" * 3000
    built = Reject("not valid JSON: recursion limit exceeded" * 100, None, "in", 0, 7, None,
                   deep)
    body = built.to_json()
    assert b"recursion limit" in body
    assert len(body) < 2000 + len(deep)


def test_a_long_run_of_failures_shows_as_stuck(db: Database) -> None:
    worker = ingest(db, FragileStore())
    assert read_health(db, "in") is None
    worker._failed(InfrastructureUnavailable("PostgreSQL is unreachable"))
    assert worker.health().state == "failing"
    assert read_health(db, "in").state == "failing"  # type: ignore[union-attr]
    worker._failing_since = datetime.now(UTC) - timedelta(seconds=STUCK_AFTER_S + 1)
    worker._failed(InfrastructureUnavailable("PostgreSQL is unreachable"))
    recorded = read_health(db, "in")
    assert recorded is not None
    assert (recorded.state, recorded.failures) == ("stuck", 2)
    assert "unreachable" in (recorded.last_error or "")
    worker._moving(12)
    assert read_health(db, "in").state == "running"  # type: ignore[union-attr]
