"""Lessons: what went well or badly in an arrangement and why, kept so other commissioners
learn from success and failure. No I/O here."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from council.kernel.aggregate import CouncilAggregate


class Lesson(CouncilAggregate):
    id: UUID

    class Recorded(CouncilAggregate.Created):
        need_id: UUID | None
        agreement_id: UUID | None
        stage: str
        went: str
        what: str
        why: str
        tags: list[str]

    @event(Recorded)
    def __init__(
        self, need_id: UUID | None, agreement_id: UUID | None, stage: str, went: str, what: str,
        why: str, tags: list[str],
    ) -> None:
        self.need_id = need_id
        self.agreement_id = agreement_id
        self.stage = stage
        self.went = went
        self.what = what
        self.why = why
        self.tags = tags
