"""Delivery reported over HTTP on both deployments (embedded: SQLite and the file log;
scale-out: PostgreSQL event stores and read models, Kafka with several partitions): the world
built through the registry and the integrator as for real, then the core flow — who may report
what, bad input refused, replays accepted once, a 10,000-line batch accepted with a correct
per-line report, a batch over the limit refused with nothing stored, corrections — and at the
end every accepted report on the shared log exactly once and counted in the read model."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from council.platform.eventlog import open_event_log
from council.platform.identity import Role
from council.platform.settings import Settings
from council.services.outcomes.domain.aggregates import delivery_id_for
from council.services.outcomes.projections.deliveries import (
    get_delivery_row,
    units_delivered,
    units_delivered_in,
)
from tests.unit.test_deliveries_api import (
    MISSING,
    World,
    build_world,
    eventually,
    ndjson,
    post,
    post_batch,
    report,
    runtime_of,
    stored_count,
)

DEADLINE_SECONDS = 120.0
LINES = 10_000


@pytest.fixture
def settings_options() -> dict[str, Any]:
    return {"relay_interval": 0.01}  # tests that wait on many relay round trips


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    with ExitStack() as stack:
        yield build_world(stack, settings, DEADLINE_SECONDS)


def on_the_log(world: World) -> Counter[UUID]:
    """Each delivery report on the shared log and how many times, once the relay has caught up
    (read from the start of the outcomes topic, every partition)."""
    runtime = runtime_of(world.outcomes)
    eventually(runtime.relay.pending, lambda pending: pending == 0, world.deadline)
    log = open_event_log(world.settings)
    try:
        counts: Counter[UUID] = Counter()
        for records in log.read_all([log.topic_for("outcomes")]):
            for record in records:
                if record.envelope.type == "DeliveryReported":
                    counts[UUID(record.envelope.data["delivery_id"])] += 1
        return counts
    finally:
        log.close()


def the_batch(agreement: UUID) -> tuple[bytes, list[dict[str, Any]], dict[int, str]]:
    """A 10,000-line batch: good reports, replays of earlier lines, five bad lines (one of them
    malformed JSON), and blank lines. Returns the body, the distinct good reports, and the
    field expected for each bad line (by line number)."""
    good: list[dict[str, Any]] = []
    lines: list[Any] = []
    bad: dict[int, str] = {}
    bad_at = {1000: ({"quantity": "-1"}, "quantity"),
              2000: ({"activity_type": "juggling"}, "activity_type"),
              3000: ({"unit": "hours"}, "unit"),
              4000: ({"period_end": "2024-01-01"}, "period_end")}
    for i in range(LINES):
        number = i + 1
        if number in bad_at:
            change, field_name = bad_at[number]
            lines.append(report(agreement, **change))
            bad[number] = field_name
        elif number == 5000:
            lines.append('{"idempotency_key": "broken", "quantity": ')
            bad[number] = ""
        elif number % 2000 == 1 and number > 1:  # replays of the line 1,000 lines before
            lines.append(lines[i - 1000])
        else:
            body = report(agreement, f"batch-{i}", quantity=str(i % 9 + 1),
                          period_start="2024-03-01", period_end="2024-03-31",
                          location=MISSING if i % 2 else f"Venue {i % 50}")
            good.append(body)
            lines.append(body)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    return ("\n\n" + text + "\n").encode(), good, bad


def test_delivery_reporting_end_to_end(world: World) -> None:
    valley = world.providers["valley"]
    active, joint = world.agreements["active"], world.agreements["joint"]
    accepted: set[UUID] = set()

    # One report: new, then a replay; its key reused for something else.
    body = report(active)
    first = post(world, body)
    assert first.status_code == 201, first.text
    accepted.add(UUID(first.json()["delivery_id"]))
    assert post(world, body).json() == first.json()
    assert post(world, {**body, "quantity": "13"}).status_code == 409

    # Who may report what.
    before = stored_count(world)
    assert post(world, report(world.agreements["valley"])).status_code == 403
    assert post(world, report(world.agreements["drafted"])).status_code == 409
    assert post(world, report(world.agreements["ended"])).status_code == 409
    assert post(world, report(active), headers={}).status_code == 401
    assert post(world, report(world.agreements["riverside"]), "riverside").status_code == 401
    assert post(world, report(active), headers=world.council(Role.COMMISSIONER)).status_code \
        == 403
    for change in ({"activity_type": "juggling"}, {"quantity": "-2"}, {"quantity": "many"},
                   {"period_end": "2025-03-01"}):
        assert post(world, report(active, **change)).status_code == 422, change
    assert stored_count(world) == before

    # A 10,000-line batch (blank lines besides), then the same batch again.
    batch, good, bad = the_batch(joint)
    response = post_batch(world, batch, "valley")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["lines"] == LINES
    assert (result["accepted"], result["duplicates"]) == (len(good), LINES - len(good) - len(bad))
    # Lines are numbered as in the body: it starts with two blank lines.
    assert {r["line"] - 2: r["field"] or "" for r in result["rejected"]} == bad
    accepted |= {delivery_id_for(valley, g["idempotency_key"]) for g in good}
    again = post_batch(world, batch, "valley").json()
    assert (again["accepted"], again["already_stored"], again["duplicates"],
            len(again["rejected"])) == (0, LINES - len(bad), 0, len(bad))

    # Over the limit: refused before anything is stored.
    before = stored_count(world)
    over = ndjson(*(report(active, f"over-{i}") for i in range(LINES + 1)))
    assert post_batch(world, over).status_code == 413
    assert stored_count(world) == before

    # A correction, and a correction of the correction.
    period = {"period_start": "2024-05-01", "period_end": "2024-05-31"}
    original = post(world, report(joint, quantity="10", **period)).json()
    corrected = post(world, report(joint, quantity="6", corrects=original["delivery_id"],
                                   **period)).json()
    final = post(world, report(joint, quantity="7", corrects=corrected["delivery_id"],
                               **period)).json()
    fork = post(world, report(joint, quantity="5", corrects=original["delivery_id"], **period))
    assert fork.status_code == 409, fork.text
    accepted |= {UUID(d["delivery_id"]) for d in (original, corrected, final)}

    # Every accepted report is on the shared log once, and nothing else is.
    counts = on_the_log(world)
    assert set(counts) == accepted
    assert set(counts.values()) == {1}

    # The read model counts them, corrections applied.
    views = runtime_of(world.outcomes).views
    eventually(lambda: get_delivery_row(views, UUID(final["delivery_id"])),
               lambda row: row is not None, world.deadline)
    # (Eventually: on Kafka the three reports may sit in three partitions, read in any order.)
    eventually(lambda: units_delivered_in(views, joint, "2024-05"),
               lambda units: units == {"sessions_delivered": Decimal(7)}, world.deadline)
    expected = sum((Decimal(g["quantity"]) for g in good), Decimal(0))
    eventually(lambda: units_delivered_in(views, joint, "2024-03"),
               lambda units: units == {"sessions_delivered": expected}, world.deadline)
    (march,) = [u for u in units_delivered(views, agreement_ids=[joint]) if u.period == "2024-03"]
    assert march.reports == len(good)
    assert world.outcomes.get(f"/deliveries/{original['delivery_id']}",
                              headers=world.auth["hillside"]).json()["superseded_by"] == \
        corrected["delivery_id"]


def test_a_batch_is_stored_in_the_order_it_was_sent(settings: Settings) -> None:
    """The store writes many reports per statement; their notifications (and so the shared
    log) keep the order of the lines, across statements and transactions."""
    from council.kernel.contracts.outcomes import Channel
    from council.platform.eventstore import open_application
    from council.services.outcomes.application import Outcomes
    from council.services.outcomes.domain.acceptance import AgreementInfo
    from council.services.outcomes.domain.commands import DeliveryIn

    app = open_application(Outcomes, settings)
    try:
        provider, agreement = uuid4(), uuid4()
        app.agreements = lambda ids: {agreement: AgreementInfo(agreement, "active",
                                                               frozenset({provider}))}
        keys = [f"order-{i}" for i in range(2600)]
        batch = app.report_deliveries(provider, [
            (i, DeliveryIn.model_validate(report(agreement, key))) for i, key in enumerate(keys)
        ], Channel.HTTP)
        assert batch.rejected == []
        notifications = app.recorder.select_notifications(start=1, limit=10_000)
        assert [n.originator_id for n in notifications] == [delivery_id_for(provider, k)
                                                            for k in keys]
        ids = [n.id for n in notifications]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
    finally:
        app.close()
