"""Assembly of the outcomes service (used by `council serve outcomes`)."""

from __future__ import annotations

from council.platform.runtime import Runtime, ServiceSpec
from council.services.outcomes import api, projections
from council.services.outcomes.adapters.kafka_ingest import kafka_bootstrap
from council.services.outcomes.adapters.kafka_ingest import workers as kafka_ingest_workers
from council.services.outcomes.adapters.personal_data import PersonalData
from council.services.outcomes.adapters.vault import SubjectVault
from council.services.outcomes.application import Outcomes
from council.services.outcomes.processes.payments import PaymentsToSettle, payments_workers
from council.services.outcomes.projections.agreements import lookup_agreements


def wire(runtime: Runtime) -> None:
    """Delivery is checked against the agreements as the shared log tells them; service
    users' personal data is sealed with keys from the subject key vault."""
    assert isinstance(runtime.app, Outcomes)
    runtime.app.agreements = lambda ids: lookup_agreements(runtime.views, ids)
    runtime.app.personal_data = PersonalData(SubjectVault.for_settings(runtime.settings))


SPEC = ServiceSpec(
    name="outcomes",
    application=Outcomes,
    projections=projections.projections,
    routers=[api.router],
    max_body_bytes={api.deliveries.BATCH_PATH: api.deliveries.MAX_BATCH_BYTES},
    wire=wire,
    workers=payments_workers,
    ingest=kafka_ingest_workers,
    ingests=lambda settings: kafka_bootstrap(settings) is not None,
    followers=lambda: [PaymentsToSettle()],
)
