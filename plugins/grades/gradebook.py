"""The gradebook as other modules see it: the grades module's answers to the exchange hooks.

``madrasa_gradebook_read`` gives assessments (line items) and marks (results) within the caller's
scope; ``madrasa_gradebook_write`` matches or creates assessments and saves marks through
:func:`plugins.grades.service.save_grid`, so an assessment's version is bumped and each changed
mark audited exactly as when a teacher saves the grid. Sheets past draft and closed terms are
refused here, the same way for every caller. Both run inside the caller's ``db.scoped`` transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from litestar.exceptions import HTTPException

from core.plugin_api import (
    SQL,
    Gradebook,
    GradebookItem,
    GradebookProblem,
    GradebookResult,
    GradebookWrite,
    GradebookWritten,
    Invalid,
    LineItemIn,
    RequestContext,
    audit,
    hookimpl,
    in_,
    scope_sql,
)
from plugins.grades import publication, service

_CENTS = Decimal("0.01")


def _decimal(value: Any) -> Decimal | None:
    """A stored score or maximum as a two-place decimal (SQLite hands back floats or text)."""
    return None if value is None else Decimal(str(value)).quantize(_CENTS)


# -- reading ---------------------------------------------------------------------------------


async def read_gradebook(ctx: RequestContext, school_ids: list[int], class_ids: list[int] | None) -> Gradebook:
    """Assessments and marks of some schools (optionally some classes), inside ``ctx.scope``, by id."""
    if not school_ids:
        return Gradebook()
    db = ctx.services.db
    where = SQL("a.school_id IN {}", in_(sorted(set(school_ids)))) & scope_sql(ctx.scope, "a")
    if class_ids is not None:
        where = where & SQL("a.class_id IN {}", in_(sorted(set(class_ids))))
    items = await db.fetch(
        SQL(
            "SELECT a.id, a.school_id, a.class_id, a.subject_code, a.term_id, a.kind, a.position, a.title, "
            "a.scheduled_on, a.max_score, a.version, s.state FROM grade_assessment a "
            "JOIN grade_sheet s ON s.id = a.sheet_id WHERE {} ORDER BY a.id",
            where,
        )
    )
    marks = await db.fetch(
        SQL(
            "SELECT m.assessment_id, m.student_id, m.score, m.status, m.updated_at FROM grade_mark m "
            "JOIN grade_assessment a ON a.id = m.assessment_id WHERE {} ORDER BY m.id",
            where,
        )
    )
    return Gradebook(
        line_items=[
            GradebookItem(
                id=int(r["id"]),
                school_id=int(r["school_id"]),
                class_id=int(r["class_id"]),
                subject_code=r["subject_code"],
                term_id=int(r["term_id"]),
                kind=r["kind"],
                position=int(r["position"]),
                title=r["title"] or "",
                scheduled_on=r["scheduled_on"],
                max_score=_decimal(r["max_score"]) or Decimal(0),
                state=r["state"],
                version=int(r["version"]),
            )
            for r in items
        ],
        results=[
            GradebookResult(
                line_item_id=int(m["assessment_id"]),
                student_id=int(m["student_id"]),
                score=_decimal(m["score"]),
                status=m["status"],
                updated_at=m["updated_at"],
            )
            for m in marks
        ],
    )


# -- writing ---------------------------------------------------------------------------------


class _Writer:
    """One school's write: line items first, then each assessment's marks as one grid save."""

    def __init__(self, ctx: RequestContext, write: GradebookWrite) -> None:
        self.ctx = ctx
        self.db = ctx.services.db
        self.write = write
        self.out = GradebookWritten()
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: {"created": 0, "updated": 0, "linked": 0})
        #: line item key → {"id", "locked" (the sheet's state past draft, or None)}
        self.items: dict[str, dict[str, Any]] = {}
        self.positions: dict[int, int] = {}

    def problem(self, kind: str, key: str, field: str, msgid: str, **values: Any) -> None:
        """Record a refusal (the caller rolls back)."""
        self.out.problems.append(
            GradebookProblem(
                kind=kind,
                key=key,
                field=field,
                message=msgid.format(**values) if values else msgid,
                msgid=msgid,
                values={k: str(v) for k, v in values.items()},
            )
        )

    async def run(self) -> GradebookWritten:
        """Write every line item, then every result; counts by kind (``lineItems``, ``results``)."""
        for item in self.write.line_items:
            await self.line_item(item)
        await self.results()
        if self.write.line_items:  # assessments announced to families may have changed
            await publication.bump(self.db, [self.write.school_id])
        self.out.counts = {k: dict(v) for k, v in self.counts.items()}
        return self.out

    async def sheet(self, item: LineItemIn) -> dict[str, Any] | None:
        """The class × subject × term sheet, created as a draft with the subject's teacher when there is none."""
        klass = await self.db.fetchrow(
            "SELECT id, school_id, name FROM school_class WHERE id = {} AND school_id = {}",
            item.class_id,
            self.write.school_id,
        )
        if klass is None:
            self.problem("line_item", item.key, "class", "the class is not one of this school")
            return None
        try:
            return await service.sheet_for(self.ctx, klass, item.subject_code, item.term_id)
        except Invalid:
            self.problem(
                "line_item",
                item.key,
                "class",
                "nobody teaches {subject} in that class",
                subject=item.subject_code,
            )
            return None

    async def line_item(self, item: LineItemIn) -> None:
        """Match (previous id, else same title and date on the sheet), update, or create an assessment."""
        if await service.is_closed(self.db, self.write.school_id, item.term_id):
            self.problem("line_item", item.key, "term", "that term is closed at the school: marks are locked")
            return
        sheet = await self.sheet(item)
        if sheet is None:
            return
        sheet_id = int(sheet["id"])
        locked = None if sheet["state"] == "draft" else str(sheet["state"])
        found = None
        if item.previous_id is not None:
            found = await self.db.fetchval(
                SQL(
                    "SELECT id FROM grade_assessment WHERE id = {} AND sheet_id = {} AND {}",
                    item.previous_id,
                    sheet_id,
                    scope_sql(self.ctx.scope),
                ),
            )
        if found is None:
            found = await self.db.fetchval(
                "SELECT id FROM grade_assessment WHERE sheet_id = {} AND title = {} AND scheduled_on = {} ORDER BY id",
                sheet_id,
                item.title,
                item.scheduled_on,
            )
            if found is not None:
                self.counts["lineItems"]["linked"] += 1
        if found is not None:
            stored = await self.db.fetchrow(
                "SELECT id, title, kind, scheduled_on, max_score FROM grade_assessment WHERE id = {}", found
            )
            assert stored is not None
            same = (stored["title"], stored["kind"], stored["scheduled_on"], _decimal(stored["max_score"])) == (
                item.title,
                item.kind,
                item.scheduled_on,
                item.max_score,
            )
            if locked is not None and not same:
                self.problem("line_item", item.key, "sheet", "the mark sheet is {state}: not overwritten", state=locked)
                return
            if not same:
                await self.change_assessment(stored, item)
            if item.previous_id is not None and locked is None:
                self.counts["lineItems"]["updated"] += 1
        elif locked is not None:
            self.problem("line_item", item.key, "sheet", "the mark sheet is {state}: not overwritten", state=locked)
            return
        else:
            found = await self.create_assessment(sheet_id, item)
            self.counts["lineItems"]["created"] += 1
        self.items[item.key] = {"id": int(found), "locked": locked}
        self.out.line_items[item.key] = int(found)

    async def change_assessment(self, stored: dict[str, Any], item: LineItemIn) -> None:
        """New title, kind, date or maximum: the version is bumped (an open grid must reload) and the change audited."""
        await self.db.execute(
            "UPDATE grade_assessment SET title = {}, kind = {}, scheduled_on = {}, max_score = {}, "
            "version = version + 1 WHERE id = {}",
            item.title,
            item.kind,
            item.scheduled_on,
            item.max_score,
            stored["id"],
        )
        school = await self.ctx.services.tenants.by_id(self.write.school_id)
        await audit.record(
            self.db,
            actor_id=self.ctx.person_id,
            action="assessment.change",
            object_type="assessment",
            object_id=stored["id"],
            tenant=school,
            before=_describe(stored["title"], stored["kind"], stored["scheduled_on"], _decimal(stored["max_score"])),
            after=_describe(item.title, item.kind, item.scheduled_on, item.max_score),
            reason=self.write.reason,
        )

    async def create_assessment(self, sheet_id: int, item: LineItemIn) -> int:
        """A new assessment at the end of the sheet (weight 1, version 0)."""
        if sheet_id not in self.positions:
            self.positions[sheet_id] = int(
                await self.db.fetchval(
                    "SELECT COALESCE(MAX(position), 0) FROM grade_assessment WHERE sheet_id = {}", sheet_id
                )
            )
        self.positions[sheet_id] += 1
        school = await self.ctx.services.tenants.by_id(self.write.school_id)
        assert school is not None
        cols = school.scope_columns()
        return int(
            await self.db.fetchval(
                "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, subject_code, "
                "term_id, kind, position, title, scheduled_on, max_score, weight, version, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 1, 0, {}) RETURNING id",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                sheet_id,
                item.class_id,
                item.subject_code,
                item.term_id,
                item.kind,
                self.positions[sheet_id],
                item.title,
                item.scheduled_on,
                item.max_score,
                datetime.now(UTC),
            )
        )

    async def results(self) -> None:
        """Each assessment's new or changed marks saved as one grid save; identical marks are no change."""
        by_item: dict[str, list[Any]] = defaultdict(list)
        for result in self.write.results:
            if result.line_item in self.items:
                by_item[result.line_item].append(result)
        for key, results in by_item.items():
            assessment_id = self.items[key]["id"]
            locked = self.items[key]["locked"]
            stored = {
                int(r["student_id"]): r
                for r in await self.db.fetch(
                    "SELECT id, student_id, score, status FROM grade_mark WHERE assessment_id = {}", assessment_id
                )
            }
            entries: list[service.MarkEntry] = []
            keys: dict[int, str] = {}
            for result in results:
                mark = stored.get(result.student_id)
                same = mark is not None and (mark["status"], _decimal(mark["score"])) == (result.status, result.score)
                if same:
                    assert mark is not None
                    self.out.results[result.key] = int(mark["id"])
                    continue
                if locked is not None:
                    self.problem(
                        "result", result.key, "score", "the mark sheet is {state}: not overwritten", state=locked
                    )
                    continue
                entries.append(
                    service.MarkEntry(student_id=result.student_id, score=result.score, status=result.status)
                )
                keys[result.student_id] = result.key
                self.counts["results"]["created" if mark is None else "updated"] += 1
            if entries and not self.out.problems:
                await self.save(assessment_id, entries, keys)

    async def save(self, assessment_id: int, entries: list[service.MarkEntry], keys: dict[int, str]) -> None:
        """One grid save (version bump, audit of every change); a refusal becomes a problem on the results."""
        assessment = await service.get_assessment(self.ctx, assessment_id)
        try:
            await service.save_grid(
                self.ctx, assessment, int(assessment["version"]), entries, self.write.reason or None
            )
        except HTTPException as exc:
            per_pupil = exc.extra if isinstance(exc.extra, list) else []
            named = False
            for item in per_pupil:
                student = str(item.get("key", "")).removeprefix("marks[").removesuffix("]")
                if student.isdigit() and int(student) in keys:
                    self.problem("result", keys[int(student)], "score", "{message}", message=item.get("message", ""))
                    named = True
            if not named:
                self.problem("result", next(iter(keys.values())), "score", "{message}", message=exc.detail)
            return
        ids = await self.db.fetch(
            SQL(
                "SELECT id, student_id FROM grade_mark WHERE assessment_id = {} AND student_id IN {}",
                assessment_id,
                in_(sorted(keys)),
            )
        )
        for row in ids:
            self.out.results[keys[int(row["student_id"])]] = int(row["id"])


def _describe(title: str, kind: str, scheduled_on: date, max_score: Decimal | None) -> dict[str, str]:
    return {
        "title": title,
        "kind": kind,
        "scheduled_on": scheduled_on.isoformat() if isinstance(scheduled_on, date) else str(scheduled_on),
        "max_score": "" if max_score is None else f"{max_score:.2f}",
    }


async def write_gradebook(ctx: RequestContext, write: GradebookWrite) -> GradebookWritten:
    """Write one school's line items and results (see :class:`_Writer`)."""
    return await _Writer(ctx, write).run()


# -- the hooks -------------------------------------------------------------------------------


@hookimpl
def madrasa_gradebook_read(ctx: RequestContext, school_ids: list[int], class_ids: list[int] | None) -> Any:
    """Line items and results of some schools, inside the caller's scope."""
    return read_gradebook(ctx, school_ids, class_ids)


@hookimpl
def madrasa_gradebook_write(ctx: RequestContext, write: GradebookWrite) -> Any:
    """Write line items and results through the grades services (version bump, audit, locks)."""
    return write_gradebook(ctx, write)
