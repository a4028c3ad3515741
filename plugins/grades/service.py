"""Grades services: assessments, the mark grid (atomic, versioned), the workflow, and what families read.

Every function runs inside a transaction its caller opened with ``db.scoped(scope)``; rows of
another school read as missing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from core.plugin_api import (
    SQL,
    Conflict,
    Database,
    Event,
    Forbidden,
    Invalid,
    Locked,
    NotFound,
    PreconditionRequired,
    RequestContext,
    audit,
    in_,
    school,
    scope_sql,
)
from plugins.grades import policy, publication
from plugins.grades.terms import deadline, is_closed, school_term

STATES = ("draft", "submitted", "validated", "published")
TRANSITIONS = {
    "submit": ("draft", "submitted"),
    "validate": ("submitted", "validated"),
    "publish": ("validated", "published"),
    "reopen": (None, "draft"),  # from submitted or validated, by the director
}
DIRECTORS = frozenset({"school_director", "platform_admin", "region_admin", "province_admin"})


class Closed(Locked):
    """423: the term is closed (or the deadline passed) for this caller."""


class StaleVersion(Conflict):
    """409 with the current grid (``current`` in the problem's body), so the client can show what changed."""

    def __init__(self, msgid: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(msgid)
        if extra:
            self.extra = extra


class InvalidMarks(Invalid):
    """400 naming each wrong mark (``marks[<pupil id>]``) with its message."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__("marks", "Invalid marks: " + "; ".join(p["message"] for p in problems))
        self.extra = problems


class MarkEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One pupil's mark as sent by the grid: a score, or ``absent``/``excused``, or blank."""

    student_id: int
    score: Decimal | None = None
    status: str = "present"


def is_director(ctx: RequestContext) -> bool:
    """Whether the caller acts as the school's director (or above)."""
    return bool(ctx.roles & DIRECTORS)


def etag(assessment_id: int, version: int) -> str:
    """The grid's entity tag."""
    return f'"a{assessment_id}.v{version}"'


def parse_etag(value: str | None, assessment_id: int) -> int:
    """The version named by an ``If-Match`` header; 428 when absent, 409 when it names another grid."""
    if not value:
        raise PreconditionRequired("Send If-Match with the ETag of the grid you edited.")
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    prefix = f"a{assessment_id}.v"
    if not text.startswith(prefix) or not text[len(prefix) :].isdigit():
        raise StaleVersion("If-Match does not name a version of this grid; reload it.")
    return int(text[len(prefix) :])


async def teaches(db: Database, person_id: int, class_id: int, subject_code: str) -> bool:
    """Whether a person is assigned to teach a subject in a class."""
    return (
        await db.fetchval(
            "SELECT id FROM teaching_assignment WHERE person_id = {} AND class_id = {} AND subject_code = {}",
            person_id,
            class_id,
            subject_code,
        )
        is not None
    )


async def sheet_for(ctx: RequestContext, klass: dict[str, Any], subject_code: str, term_id: int) -> dict[str, Any]:
    """The class × subject × term sheet, created on first use with the assigned teacher."""
    db = ctx.services.db
    row = await db.fetchrow(
        "SELECT id, state, teacher_id FROM grade_sheet WHERE class_id = {} AND subject_code = {} AND term_id = {}",
        klass["id"],
        subject_code,
        term_id,
    )
    if row is not None:
        return row
    teacher = await db.fetchval(
        "SELECT person_id FROM teaching_assignment WHERE class_id = {} AND subject_code = {}", klass["id"], subject_code
    )
    if teacher is None:
        raise Invalid("subject_code", f"nobody teaches {subject_code} in {klass['name']}")
    school = await ctx.services.tenants.by_id(klass["school_id"])
    assert school is not None
    cols = school.scope_columns()
    created = await db.fetchrow(
        "INSERT INTO grade_sheet (region_id, province_id, school_id, class_id, subject_code, term_id, teacher_id, "
        "state) VALUES ({}, {}, {}, {}, {}, {}, {}, 'draft') RETURNING id, state, teacher_id",
        cols["region_id"],
        cols["province_id"],
        cols["school_id"],
        klass["id"],
        subject_code,
        term_id,
        teacher,
    )
    assert created is not None
    return created


async def create_assessment(
    ctx: RequestContext,
    *,
    class_id: int,
    subject_code: str,
    term_id: int,
    kind: str,
    title: str,
    scheduled_on: date,
    max_score: Decimal,
    weight: Decimal,
) -> int:
    """Schedule an assessment (the teacher of the subject, or the director)."""
    db = ctx.services.db
    klass = await school.get_class(ctx, class_id)
    assert ctx.person_id is not None
    if not is_director(ctx) and not await teaches(db, ctx.person_id, class_id, subject_code):
        raise Forbidden(f"You do not teach {subject_code} in {klass['name']}.")
    term = await school_term(db, klass["region_id"], term_id)
    starts, ends = term["starts_on"], term["ends_on"]
    if not starts <= scheduled_on <= ends:
        raise Invalid("scheduled_on", f"the date must fall within the term ({starts} – {ends})")
    if await is_closed(db, klass["school_id"], term_id):
        raise Closed("The term is closed.")
    sheet = await sheet_for(ctx, klass, subject_code, term_id)
    position = await db.fetchval(
        "SELECT COALESCE(MAX(position), 0) + 1 FROM grade_assessment WHERE sheet_id = {} AND kind = {}",
        sheet["id"],
        kind,
    )
    row = await db.fetchrow(
        "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, subject_code, term_id, "
        "kind, position, title, scheduled_on, max_score, weight, version, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 0, {}) RETURNING id",
        klass["region_id"],
        klass["province_id"],
        klass["school_id"],
        sheet["id"],
        class_id,
        subject_code,
        term_id,
        kind,
        position,
        title,
        scheduled_on,
        max_score,
        weight,
        datetime.now(UTC),
    )
    assert row is not None
    await publication.bump(db, [klass["school_id"]])  # families see the assessment announced
    return int(row["id"])


ASSESSMENT_COLUMNS = SQL(
    "a.id, a.sheet_id, a.class_id, a.subject_code, a.term_id, a.kind, a.position, a.title, a.scheduled_on, "
    "a.max_score, a.weight, a.version, a.school_id, a.region_id, s.state, s.teacher_id"
)


async def get_assessment(ctx: RequestContext, assessment_id: int) -> dict[str, Any]:
    """An assessment inside the scope, with its sheet's state; 404 otherwise."""
    row = await ctx.services.db.fetchrow(
        SQL(
            "SELECT {} FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id WHERE a.id = {} AND {}",
            ASSESSMENT_COLUMNS,
            assessment_id,
            scope_sql(ctx.scope, "a"),
        )
    )
    if row is None:
        raise NotFound(f"No assessment {assessment_id} here.")
    return row


async def grid_frame(ctx: RequestContext, assessment_id: int) -> dict[str, Any]:
    """An assessment as :func:`get_assessment` reads it, with what the grid page shows around it, in one query.

    Added columns: ``class_name``; the subject's names ``subject_fr``/``subject_ar``/``subject_en``;
    ``closed`` (whether the school's term is closed) and ``entry_deadline`` (the region's deadline
    for the term, else the national one, as :func:`deadline` picks it). 404 outside the scope.
    """
    row = await ctx.services.db.fetchrow(
        SQL(
            "SELECT {}, c.name AS class_name, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, "
            "sub.name_en AS subject_en, "
            "(SELECT COUNT(*) FROM grade_term_close k WHERE k.school_id = a.school_id AND k.term_id = a.term_id) "
            "AS closed, "
            "(SELECT d.entry_deadline FROM grade_deadline d WHERE d.term_id = a.term_id "
            " AND (d.tenant_id IS NULL OR d.tenant_id = COALESCE(a.region_id, -1)) "
            " ORDER BY CASE WHEN d.tenant_id IS NULL THEN 1 ELSE 0 END LIMIT 1) AS entry_deadline "
            "FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id JOIN school_class c ON c.id = a.class_id "
            "LEFT JOIN subject sub ON sub.code = a.subject_code "
            "WHERE a.id = {} AND {}",
            ASSESSMENT_COLUMNS,
            assessment_id,
            scope_sql(ctx.scope, "a"),
        )
    )
    if row is None:
        raise NotFound(f"No assessment {assessment_id} here.")
    row["closed"] = bool(row["closed"])
    return row


async def family(db: Database, scope: Any, person_id: int) -> list[dict[str, Any]]:
    """A person's children (by first name) then, unless already among them, their own pupil record, in one query.

    The rows of :func:`core.school.reads.children` and :func:`~core.school.reads.own_student`
    (``self`` marks the latter, whose ``class_name`` is not read).
    """
    where = scope_sql(scope, "s")
    rows = await db.fetch(
        "SELECT 0 AS self, s.id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, s.school_id, "
        "e.class_id, c.name AS class_name FROM guardianship g JOIN student s ON s.id = g.student_id "
        "LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "LEFT JOIN school_class c ON c.id = e.class_id "
        "WHERE g.person_id = {} AND {} "
        "UNION ALL "
        "SELECT 1 AS self, s.id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, s.school_id, "
        "e.class_id, NULL AS class_name FROM student s "
        "LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "WHERE s.person_id = {} AND {} "
        "ORDER BY 1, 3",
        person_id,
        where,
        person_id,
        where,
    )
    children = [r for r in rows if not r["self"]]
    me = next((r for r in rows if r["self"]), None)
    if me is not None and all(r["id"] != me["id"] for r in children):
        children.append(me)
    for r in children:
        r["self"] = bool(r["self"])
    return children


async def pupil_marks(
    db: Database, scope: Any, student_id: int, class_id: int | None, today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A pupil's published marks with their term's number and subject's names, and their class's coming assessments.

    One query: the rows of :func:`published_marks` (``term`` the term's number, ``subject_en``
    added), by subject, kind and position; then those of :func:`upcoming`, by date.
    """
    rows = await db.fetch(
        "SELECT 0 AS part, a.subject_code, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, "
        "sub.name_en AS subject_en, t.number AS term, a.kind, a.position, a.title, a.scheduled_on, a.max_score, "
        "a.weight, m.score, m.status FROM grade_mark m JOIN grade_assessment a ON a.id = m.assessment_id "
        "JOIN grade_sheet s ON s.id = a.sheet_id JOIN subject sub ON sub.code = a.subject_code "
        "LEFT JOIN term t ON t.id = a.term_id "
        "WHERE s.state = 'published' AND m.student_id = {} AND {} "
        "UNION ALL "
        "SELECT 1 AS part, a.subject_code, sub.name_fr, sub.name_ar, sub.name_en, NULL, a.kind, a.position, a.title, "
        "a.scheduled_on, NULL, NULL, NULL, NULL FROM grade_assessment a JOIN subject sub ON sub.code = a.subject_code "
        "WHERE a.class_id = {} AND a.scheduled_on >= {} AND {} "
        "ORDER BY 1, 2, 7, 8",
        student_id,
        scope_sql(scope, "m"),
        -1 if class_id is None else class_id,
        today,
        scope_sql(scope, "a"),
    )
    marks = [r for r in rows if r["part"] == 0]
    coming = sorted((r for r in rows if r["part"] == 1), key=lambda r: str(r["scheduled_on"]))
    return marks, coming


async def check_grid_reader(ctx: RequestContext, assessment: dict[str, Any]) -> None:
    """Only the director, the sheet's teacher or a teacher of the subject in the class reads its marks.

    Anyone else gets the same 404 as for an assessment that does not exist (no unpublished marks leak to a
    teacher of another class of the same school).
    """
    if is_director(ctx) or assessment["teacher_id"] == ctx.person_id:
        return
    db = ctx.services.db
    if ctx.person_id is None or not await teaches(
        db, ctx.person_id, assessment["class_id"], assessment["subject_code"]
    ):
        raise NotFound(f"No assessment {assessment['id']} here.")


async def grid(ctx: RequestContext, assessment: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pupil of the class (open enrolment) with their mark, by name (for those who may read them)."""
    await check_grid_reader(ctx, assessment)
    return await ctx.services.db.fetch(
        "SELECT st.id AS student_id, st.national_code, st.first_name, st.last_name, st.first_name_ar, "
        "st.last_name_ar, m.score, m.status FROM enrolment e JOIN student st ON st.id = e.student_id "
        "LEFT JOIN grade_mark m ON m.assessment_id = {} AND m.student_id = st.id "
        "WHERE e.class_id = {} AND e.ends_on IS NULL ORDER BY st.last_name, st.first_name, st.id",
        assessment["id"],
        assessment["class_id"],
    )


def check_entry(entry: MarkEntry, max_score: Decimal) -> str | None:
    """Why a grid entry is invalid, or ``None``."""
    if entry.status not in ("present", "absent", "excused"):
        return "status must be present, absent or excused"
    if entry.status != "present":
        return None if entry.score is None else f"an {entry.status} pupil has no score"
    if entry.score is None:
        return None
    try:
        exponent = entry.score.as_tuple().exponent
    except (InvalidOperation, AttributeError):
        return "not a number"
    if not entry.score.is_finite():
        return "not a number"
    if isinstance(exponent, int) and exponent < -2:
        return "at most two decimals"
    if entry.score < 0 or entry.score > max_score:
        return f"must be between 0 and {max_score.normalize():f}"
    return None


async def save_grid(
    ctx: RequestContext, assessment: dict[str, Any], version: int, entries: list[MarkEntry], reason: str | None
) -> int:
    """Save a whole grid atomically; returns the new version.

    Refused (nothing written): an invalid entry (400 naming the pupil), a pupil not in the class,
    a stale version (409), a closed term or a passed deadline for a teacher (423), an edit after
    publication without a reason (400), a teacher who does not teach the subject (403).
    """
    db = ctx.services.db
    assert ctx.person_id is not None
    director = is_director(ctx)
    if (
        not director
        and assessment["teacher_id"] != ctx.person_id
        and not await teaches(db, ctx.person_id, assessment["class_id"], assessment["subject_code"])
    ):
        raise Forbidden("You do not teach this subject in this class.")
    closed = await is_closed(db, assessment["school_id"], assessment["term_id"])
    if closed and not director:
        raise Closed("The term is closed: marks are locked. A correction needs the director.")
    if closed and not reason:
        raise Invalid("reason", "a correction after the term is closed needs a reason")
    if not director:
        if assessment["state"] != "draft":
            raise Closed(f"The marks are {assessment['state']}: ask the director to reopen them.")
        limit = await deadline(db, assessment_region(assessment), assessment["term_id"])
        if limit is not None and date.today() > limit:
            raise Closed(f"The entry deadline ({limit.isoformat()}) has passed.")
    if assessment["state"] == "published" and not reason:
        raise Invalid("reason", "the marks are published: say why they change")
    max_score = Decimal(str(assessment["max_score"]))
    current = {r["student_id"]: r for r in await grid(ctx, assessment)}
    problems = []
    seen: set[int] = set()
    for entry in entries:
        if entry.student_id not in current:
            problems.append(
                {"key": f"marks[{entry.student_id}]", "message": f"pupil {entry.student_id} is not in this class"}
            )
            continue
        if entry.student_id in seen:
            problems.append({"key": f"marks[{entry.student_id}]", "message": "the pupil appears twice"})
        seen.add(entry.student_id)
        why = check_entry(entry, max_score)
        if why:
            row = current[entry.student_id]
            problems.append(
                {
                    "key": f"marks[{entry.student_id}]",
                    "message": f"{row['last_name']} {row['first_name']} ({row['national_code']}): {why}",
                }
            )
    if problems:
        raise InvalidMarks(problems)
    bumped = await db.fetchrow(
        "UPDATE grade_assessment SET version = version + 1 WHERE id = {} AND version = {} RETURNING version",
        assessment["id"],
        version,
    )
    if bumped is None:
        raise StaleVersion(
            "Someone saved these marks meanwhile; nothing was written. Here are the current marks.",
            extra={"current": await grid_payload(ctx, await get_assessment(ctx, assessment["id"]))},
        )
    now = datetime.now(UTC)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    inserts = []
    for entry in entries:
        row = current[entry.student_id]
        old = (None if row["score"] is None else Decimal(str(row["score"])), row["status"])
        new = (entry.score, entry.status)
        if row["status"] is None:  # first save of this pupil's mark
            inserts.append(entry)
            continue
        if old != new:
            before[str(entry.student_id)] = _show(*old)
            after[str(entry.student_id)] = _show(*new)
            await db.execute(
                "UPDATE grade_mark SET score = {}, status = {}, updated_at = {}, updated_by = {} "
                "WHERE assessment_id = {} AND student_id = {}",
                entry.score,
                entry.status,
                now,
                ctx.person_id,
                assessment["id"],
                entry.student_id,
            )
    if inserts:
        await db.executemany(
            "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, status, "
            "updated_at, updated_by) SELECT region_id, province_id, school_id, id, {}, {}, {}, {}, {} "
            "FROM grade_assessment WHERE id = {}",
            [(e.student_id, e.score, e.status, now, ctx.person_id, assessment["id"]) for e in inserts],
        )
    if closed or assessment["state"] != "draft":  # a correction families (or the report cards) may see
        await publication.bump(db, [assessment["school_id"]])
    if after:
        school = await ctx.services.tenants.by_id(assessment["school_id"])
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="marks.change",
            object_type="assessment",
            object_id=assessment["id"],
            tenant=school,
            before=before,
            after=after,
            reason=reason or "",
        )
    return int(bumped["version"])


def assessment_region(assessment: dict[str, Any]) -> int | None:
    """The region of an assessment row (set when the row was read with its scope columns)."""
    return assessment.get("region_id")


def _show(score: Decimal | None, status: str | None) -> str | None:
    if status in ("absent", "excused"):
        return status
    return None if score is None else f"{score:.2f}"


async def grid_payload(ctx: RequestContext, assessment: dict[str, Any]) -> dict[str, Any]:
    """The grid as the API returns it."""
    rows = await grid(ctx, assessment)
    return {
        "assessment_id": assessment["id"],
        "version": assessment["version"],
        "state": assessment["state"],
        "max_score": float(assessment["max_score"]),
        "marks": [
            {
                "student_id": r["student_id"],
                "national_code": r["national_code"],
                "name": f"{r['last_name']} {r['first_name']}",
                "name_ar": f"{r['last_name_ar']} {r['first_name_ar']}",
                "score": None if r["score"] is None else float(r["score"]),
                "status": r["status"] or "present",
            }
            for r in rows
        ],
    }


async def get_sheet(ctx: RequestContext, sheet_id: int) -> dict[str, Any]:
    """A sheet inside the scope; 404 otherwise."""
    row = await ctx.services.db.fetchrow(
        "SELECT id, class_id, subject_code, term_id, teacher_id, state, school_id, region_id "
        "FROM grade_sheet WHERE id = {} AND {}",
        sheet_id,
        scope_sql(ctx.scope),
    )
    if row is None:
        raise NotFound(f"No sheet {sheet_id} here.")
    return row


async def transition(ctx: RequestContext, sheet: dict[str, Any], action: str) -> tuple[str, list[Event]]:
    """Move a sheet along the workflow; returns the new state and the events to emit after commit."""
    if action not in TRANSITIONS:
        raise NotFound(f"No action {action!r}.")
    db = ctx.services.db
    assert ctx.person_id is not None
    source, target = TRANSITIONS[action]
    if action == "submit":
        if not is_director(ctx) and sheet["teacher_id"] != ctx.person_id:
            raise Forbidden("Only the subject's teacher submits these marks.")
    elif not is_director(ctx):
        raise Forbidden("Only the director can do this.")
    if action == "reopen":
        if sheet["state"] not in ("submitted", "validated"):
            raise Conflict(f"Marks that are {sheet['state']} cannot be reopened.")
    elif sheet["state"] != source:
        raise Conflict(f"Marks that are {sheet['state']} cannot be {target} (they must be {source}).")
    if await is_closed(db, sheet["school_id"], sheet["term_id"]):
        raise Closed("The term is closed.")
    now = datetime.now(UTC)
    changed = await db.fetchrow(
        "UPDATE grade_sheet SET state = {}, submitted_at = CASE WHEN {} = 'submitted' THEN {} ELSE submitted_at END, "
        "validated_by = CASE WHEN {} = 'validated' THEN {} ELSE validated_by END, "
        "published_at = CASE WHEN {} = 'published' THEN {} ELSE published_at END "
        "WHERE id = {} AND state = {} RETURNING id",
        target,
        target,
        now,
        target,
        ctx.person_id,
        target,
        now,
        sheet["id"],
        sheet["state"],
    )
    if changed is None:
        raise Conflict("The sheet changed meanwhile; reload it.")
    school = await ctx.services.tenants.by_id(sheet["school_id"])
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action=f"marks.{action}",
        object_type="grade_sheet",
        object_id=sheet["id"],
        tenant=school,
        before={"state": sheet["state"]},
        after={"state": target},
    )
    events = []
    if target == "published":
        await publication.bump(db, [sheet["school_id"]])
        events.append(
            Event(
                name="grades.marks_published",
                tenant_id=sheet["school_id"],
                school_id=sheet["school_id"],
                actor_id=ctx.person_id,
                data={
                    "sheet_id": sheet["id"],
                    "class_id": sheet["class_id"],
                    "subject_code": sheet["subject_code"],
                    "term_id": sheet["term_id"],
                },
            )
        )
    return target, events


async def published_marks(db: Database, scope: Any, student_ids: list[int]) -> list[dict[str, Any]]:
    """Marks of published sheets for some pupils (what a family may see)."""
    if not student_ids:
        return []
    return await db.fetch(
        "SELECT m.student_id, a.id AS assessment_id, a.subject_code, sub.name_fr AS subject_fr, "
        "sub.name_ar AS subject_ar, a.term_id, a.kind, a.position, a.title, a.scheduled_on, a.max_score, a.weight, "
        "m.score, m.status FROM grade_mark m JOIN grade_assessment a ON a.id = m.assessment_id "
        "JOIN grade_sheet s ON s.id = a.sheet_id JOIN subject sub ON sub.code = a.subject_code "
        "WHERE s.state = 'published' AND m.student_id IN {} AND {} "
        "ORDER BY a.subject_code, a.kind, a.position",
        in_(student_ids),
        scope_sql(scope, "m"),
    )


async def upcoming(db: Database, scope: Any, class_ids: list[int], today: date) -> list[dict[str, Any]]:
    """Assessments scheduled from today on for some classes."""
    if not class_ids:
        return []
    return await db.fetch(
        "SELECT a.id, a.class_id, a.subject_code, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, a.kind, "
        "a.title, a.scheduled_on FROM grade_assessment a JOIN subject sub ON sub.code = a.subject_code "
        "WHERE a.class_id IN {} AND a.scheduled_on >= {} AND {} ORDER BY a.scheduled_on",
        in_(class_ids),
        today,
        scope_sql(scope, "a"),
    )


async def missing_marks(ctx: RequestContext, school_id: int, term_id: int) -> list[dict[str, Any]]:
    """Per class × subject: the teacher, assessments held against the required number, marks still missing."""
    db = ctx.services.db
    tenant = await ctx.services.tenants.by_id(school_id)
    rule = await policy.cached(db, tenant.region_id if tenant else None)
    return await db.fetch(
        "SELECT ta.class_id, c.name AS class_name, ta.subject_code, ta.person_id AS teacher_id, "
        "p.full_name AS teacher, COALESCE(s.state, 'draft') AS state, "
        "(SELECT COUNT(*) FROM grade_assessment a WHERE a.class_id = ta.class_id AND a.subject_code = ta.subject_code "
        " AND a.term_id = {} AND a.kind = 'cc') AS assessments, CAST({} AS INTEGER) AS required, "
        "(SELECT COUNT(*) FROM grade_assessment a JOIN enrolment e ON e.class_id = a.class_id AND e.ends_on IS NULL "
        " LEFT JOIN grade_mark m ON m.assessment_id = a.id AND m.student_id = e.student_id "
        " WHERE a.class_id = ta.class_id AND a.subject_code = ta.subject_code AND a.term_id = {} "
        " AND (m.id IS NULL OR (m.status = 'present' AND m.score IS NULL))) AS missing "
        "FROM teaching_assignment ta JOIN school_class c ON c.id = ta.class_id JOIN person p ON p.id = ta.person_id "
        "LEFT JOIN grade_sheet s ON s.class_id = ta.class_id AND s.subject_code = ta.subject_code AND s.term_id = {} "
        "WHERE ta.school_id = {} AND {} ORDER BY c.name, ta.subject_code",
        term_id,
        rule.required_cc,
        term_id,
        term_id,
        school_id,
        scope_sql(ctx.scope, "ta"),
    )
