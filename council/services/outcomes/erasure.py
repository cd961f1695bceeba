"""Erasing a data subject's personal data (crypto-shredding), on a valid request.

`erase` records the council's decision (DataSubjectErased: the subject id, the legal basis, why,
when it was asked; the envelope says who) and then destroys the subject's key in the vault. No
byte of the store or the log changes: every record sealed with the key, wherever it is copied,
can simply never be opened again, while the audit chain still verifies and every read model
still replays.

- The decision is stored first: if the process stops before the key is gone, repeating the
  request finds the decision and finishes the erasure. A repeated request is accepted once
  (the erasure id is derived from the subject id) and answered with the erasure as recorded.
- A subject is named by its id, or by its reference (an NHS number, or a provider's own
  reference with the provider's id). Erasure forgets the reference too, so a second request by
  reference finds no subject (404, saying so); by subject id it is recognised.
- Erasing a subject the vault never knew is refused (404).
- In the scale-out deployment, the inbound delivery topic still holds what providers sent, in
  the clear, until its retention expires. After an erasure the records the ingest has already
  consumed (and so stored sealed) are deleted from it where the broker allows (Kafka's
  DeleteRecords); the answer says whether they were.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Self
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from council.kernel import clock
from council.kernel.contracts.outcomes import LegalBasis
from council.kernel.errors import NotFound
from council.kernel.text import MULTI_LINE, BusinessDate
from council.platform.settings import Settings
from council.platform.sql import Database
from council.services.outcomes.adapters.kafka_ingest import inbound_topic, kafka_bootstrap
from council.services.outcomes.adapters.personal_data import (
    PersonalData,
    ReferenceType,
    SubjectReference,
)
from council.services.outcomes.application import Outcomes
from council.services.outcomes.domain.aggregates import DataSubjectErasure, erasure_id_for

log = structlog.get_logger("erasure")

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                   MULTI_LINE]


class SubjectReferenceIn(SubjectReference):
    """A data subject named by reference: an NHS number, or a provider's own reference with
    the provider's id."""

    provider_id: UUID | None = Field(default=None, validate_default=True,
                                     description="required with a provider_reference: whose "
                                     "reference it is")

    @field_validator("provider_id")
    @classmethod
    def _whose(cls, value: UUID | None, info: ValidationInfo) -> UUID | None:
        kind = info.data.get("reference_type")
        if value is None and kind is ReferenceType.PROVIDER_REFERENCE:
            raise ValueError("a provider_reference is the provider's own: say which provider")
        return value


class ErasureIn(BaseModel):
    """A request to erase one data subject's personal data."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject_id: UUID | None = Field(default=None, description="the subject, by its id")
    service_user: SubjectReferenceIn | None = Field(
        default=None, description="or by reference (never put a reference in a URL)")
    legal_basis: LegalBasis
    reason: Reason = Field(description="why (on the shared log for good: no personal data "
                           "here, e.g. the council's request number)",
                           examples=["DSR-2026-0042: consent withdrawn by letter"])
    requested_on: BusinessDate | None = None

    @field_validator("requested_on")
    @classmethod
    def _asked_already(cls, value: date | None) -> date | None:
        if value is not None and value > clock.now().date():
            raise ValueError("requested_on is in the future")
        return value

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        if (self.subject_id is None) == (self.service_user is None):
            raise ValueError("name the data subject by subject_id or by service_user "
                             "(one of them)")
        return self


@dataclass(frozen=True)
class Erasure:
    """An erasure as recorded, and whether this request made it."""

    erasure: DataSubjectErasure
    created: bool
    inbound_purge: str | None = None  # what became of the Kafka inbound topic's copies


def _personal_data(app: Outcomes) -> PersonalData:
    if app.personal_data is None:
        raise NotFound("this service keeps no personal data (no subject key vault)")
    return app.personal_data


def subject_named(app: Outcomes, request: ErasureIn) -> UUID:
    """The subject a request names, or NotFound."""
    personal = _personal_data(app)
    if request.subject_id is not None:
        return request.subject_id
    assert request.service_user is not None
    named = request.service_user
    found = personal.subject_of(named.subject_reference(named.provider_id))
    if found is None:
        raise NotFound("no data subject has this reference: never reported, or already erased "
                       "(an erasure forgets the reference too; name the subject_id to check)")
    return found


def erase(app: Outcomes, request: ErasureIn) -> Erasure:
    """Record the erasure, then destroy the subject's key (see the module docstring)."""
    personal = _personal_data(app)
    subject_id = subject_named(app, request)
    erasure_id = erasure_id_for(subject_id)
    recorded = _recorded(app, erasure_id)
    if recorded is not None:
        personal.vault.forget(subject_id)  # finishes an erasure interrupted after recording
        return Erasure(recorded, created=False)
    if subject_id not in personal.vault.by_subject([subject_id]):
        raise NotFound(f"no data subject {subject_id}")
    erasure = DataSubjectErasure(  # type: ignore[call-arg]  # `id` is taken by the metaclass
        id=erasure_id, subject_id=subject_id, legal_basis=request.legal_basis.value,
        reason=request.reason,
        requested_on=request.requested_on.isoformat() if request.requested_on else None,
    )
    try:
        app.save(erasure)
    except IntegrityError:  # the same request, concurrently
        personal.vault.forget(subject_id)
        found = _recorded(app, erasure_id)
        assert found is not None
        return Erasure(found, created=False)
    personal.vault.forget(subject_id)
    log.info("data_subject_erased", subject_id=str(subject_id), erasure_id=str(erasure_id))
    return Erasure(erasure, created=True)


def _recorded(app: Outcomes, erasure_id: UUID) -> DataSubjectErasure | None:
    try:
        found: object = app.repository.get(erasure_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, DataSubjectErasure) else None


# ---------------------------------------------------------------------- the inbound topic


def purge_consumed_inbound(settings: Settings, store_db: Database) -> str | None:
    """Delete from the Kafka inbound delivery topic every record the ingest has consumed (its
    reports are stored, sealed). None when the deployment has no inbound topic; else what was
    done, in words. Best effort: a broker without DeleteRecords keeps them until retention."""
    bootstrap = kafka_bootstrap(settings)
    if bootstrap is None:
        return None
    topic = inbound_topic(settings)
    try:
        with store_db.transaction() as tx:
            rows = tx.execute("SELECT log_partition, next_offset FROM kafka_inbound_offsets"
                              " WHERE topic = ?", (topic,))
    except Exception:  # the ingest never ran here: nothing consumed, nothing to delete
        return f"nothing consumed from {topic} yet"
    offsets = {int(p): int(o) for p, o in rows if int(o) > 0}
    if not offsets:
        return f"nothing consumed from {topic} yet"
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.errors import KafkaError

    admin = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                 bootstrap_timeout_ms=3000, client_id="council-erasure")
        admin.delete_records({TopicPartition(topic, p): o for p, o in offsets.items()},
                             timeout_ms=5000)
    except (KafkaError, OSError, ValueError) as exc:
        log.warning("inbound_purge_failed", topic=topic, error=f"{type(exc).__name__}: {exc}")
        return (f"not purged: the broker refused to delete records from {topic} "
                f"({type(exc).__name__}); they go when its retention expires")
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
    log.info("inbound_purged", topic=topic, offsets=offsets)
    return f"purged: records before offsets {offsets} of {topic} deleted"
