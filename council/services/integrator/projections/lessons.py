"""Lessons as a team reads them before it commissions: those recorded on similar needs (in the
same categories, or tagged with them), and the list with the need each is about. Read from
the commissioning read model's lesson tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from council.platform.sql import Database
from council.services.integrator.projections.commissioning_views import LessonView


@dataclass(frozen=True)
class LessonAbout:
    lesson: LessonView
    need_id: str | None  # the need it is about, directly or through its agreement
    need_title: str | None
    agreement_title: str | None


_SELECT = (
    "SELECT l.lesson_id, l.need_id, l.agreement_id, l.stage, l.went, l.what, l.why, l.tags,"
    " l.recorded_at, l.recorded_by, COALESCE(l.need_id, a.need_id), n.title, a.title"
    " FROM cm_lessons l LEFT JOIN cm_agreements a ON a.agreement_id = l.agreement_id"
    " LEFT JOIN cm_needs n ON n.need_id = COALESCE(l.need_id, a.need_id)")


def _about(row: Sequence[Any]) -> LessonAbout:
    (lesson_id, need, agreement, stage, went, what, why, tags, at, by, about, need_title,
     agreement_title) = row
    view = LessonView(lesson_id=lesson_id, need_id=need, agreement_id=agreement, stage=stage,
                      went=went, what=what, why=why, tags=json.loads(tags), recorded_at=at,
                      recorded_by=by)
    return LessonAbout(view, str(about) if about else None, need_title, agreement_title)


def similar_lessons(db: Database, need_id: UUID, categories: Sequence[str],
                    tags: Sequence[str] = (), limit: int = 20) -> list[LessonAbout]:
    """Lessons recorded on other needs (or their agreements) in any of `categories`, or
    tagged with any of `tags`; what went badly first (that is what saves a repeat), then the
    newest."""
    where: list[str] = []
    params: list[Any] = []
    if categories:
        where.append(f"n.service_area IN ({','.join('?' * len(categories))})")
        params.extend(categories)
    if tags:
        where.append("l.lesson_id IN (SELECT lesson_id FROM cm_lesson_tags WHERE tag IN"
                     f" ({','.join('?' * len(tags))}))")
        params.extend(t.casefold() for t in tags)
    if not where:
        return []
    with db.transaction() as tx:
        rows = tx.execute(
            f"{_SELECT} WHERE ({' OR '.join(where)})"
            " AND COALESCE(l.need_id, a.need_id, '') <> ?"
            " ORDER BY CASE WHEN l.went = 'badly' THEN 0 ELSE 1 END, l.recorded_at DESC,"
            " l.lesson_id LIMIT ?", (*params, str(need_id), limit))
    return [_about(r) for r in rows]


def lessons_page(db: Database, *, q: str = "", went: str = "", tag: str = "",
                 stage: str = "", limit: int = 50, offset: int = 0,
                 ) -> tuple[list[LessonAbout], int]:
    """Lessons newest first, filtered (every word of `q` in what happened, why or the tags),
    and how many match in all."""
    where: list[str] = []
    params: list[Any] = []
    for word in q.casefold().split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("l.search_text LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    if went:
        where.append("l.went = ?")
        params.append(went)
    if tag:
        where.append("l.lesson_id IN (SELECT lesson_id FROM cm_lesson_tags WHERE tag = ?)")
        params.append(tag.strip().casefold())
    if stage:
        where.append("l.stage = ?")
        params.append(stage)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with db.transaction() as tx:
        ((total,),) = tx.execute(f"SELECT COUNT(*) FROM cm_lessons l{clause}", params)
        rows = tx.execute(f"{_SELECT}{clause} ORDER BY l.recorded_at DESC, l.lesson_id"
                          " LIMIT ? OFFSET ?", (*params, limit, offset))
    return [_about(r) for r in rows], int(total)


def lesson_tags(db: Database) -> list[str]:
    with db.transaction() as tx:
        return [str(t) for (t,) in tx.execute(
            "SELECT DISTINCT tag FROM cm_lesson_tags ORDER BY tag")]
