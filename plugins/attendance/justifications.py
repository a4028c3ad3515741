"""Justifications: a family's excuse for some absences, with a reason from the region's list and an
optional document; reviewed by the director or the school's supervisor.

Functions run inside a transaction the caller opened with ``db.scoped(scope)``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.plugin_api import (
    SQL,
    Database,
    RequestContext,
    TenantInfo,
    audit,
    in_,
)
from plugins.attendance.errors import error

# -- justifications ----------------------------------------------------------------------------


async def reasons(db: Database, region_id: int | None) -> list[dict[str, Any]]:
    """The reasons families may give in a region (its own list, else the national one)."""
    rows = await db.fetch(
        "SELECT tenant_id, code, label_fr, label_ar, label_en, position FROM attendance_reason "
        "WHERE tenant_id IS NULL OR tenant_id = {} ORDER BY position, code",
        region_id or -1,
    )
    own = [r for r in rows if r["tenant_id"] is not None]
    return own or rows


async def set_reasons(ctx: RequestContext, region: TenantInfo, items: list[dict[str, str]]) -> None:
    """Replace a region's list of reasons (audited)."""
    db = ctx.services.db
    before = [r["code"] for r in await reasons(db, region.id)]
    await db.execute("DELETE FROM attendance_reason WHERE tenant_id = {}", region.id)
    for position, item in enumerate(items):
        await db.execute(
            "INSERT INTO attendance_reason (tenant_id, code, label_fr, label_ar, label_en, position) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            region.id,
            item["code"],
            item["label_fr"],
            item.get("label_ar", ""),
            item.get("label_en", ""),
            position,
        )
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="attendance.reasons",
        object_type="attendance_reason",
        object_id=region.id,
        tenant=region,
        before=before,
        after=[i["code"] for i in items],
    )


async def family_pupil(
    ctx: RequestContext, where: SQL, student_id: int, *, guardian_only: bool = False
) -> dict[str, Any]:
    """The pupil if the caller is the pupil or one of their guardians (one query); 404 otherwise.

    ``where`` is the tenant filter on the pupil (``scope_sql(scope, "s")``). ``guardian_only``: the caller must
    be a guardian (acting for the child, e.g. justifying an absence); the pupil themselves is refused, whatever
    other roles they hold.
    """
    assert ctx.person_id is not None
    self_ = SQL() if guardian_only else SQL("s.person_id = {} OR ", ctx.person_id)
    row = await ctx.services.db.fetchrow(
        SQL(
            "SELECT s.id, s.school_id, s.region_id, s.province_id, s.national_code, s.first_name, s.last_name, "
            "s.first_name_ar, s.last_name_ar, s.person_id FROM student s WHERE s.id = {} AND ({}EXISTS "
            "(SELECT 1 FROM guardianship g WHERE g.student_id = s.id AND g.person_id = {})) AND {}",
            student_id,
            self_,
            ctx.person_id,
            where,
        )
    )
    if row is None:
        raise error("no_pupil")
    return row


async def pupil_marks(db: Database, student_id: int, start: date | None = None) -> list[dict[str, Any]]:
    """A pupil's absences and lateness (newest first), with the lesson and the justification's state."""
    since = SQL("AND m.on_date >= {} ", start) if start else SQL()
    return await db.fetch(
        SQL(
            "SELECT m.id, m.on_date, m.kind, m.minutes, m.justified, m.justification_id, j.state AS justification, "
            "s.subject_code, s.starts_at, s.ends_at, sb.name_fr AS subject_fr, sb.name_ar AS subject_ar, "
            "sb.name_en AS subject_en FROM attendance_mark m JOIN attendance_session se ON se.id = m.session_id "
            "JOIN timetable_slot s ON s.id = se.slot_id LEFT JOIN subject sb ON sb.code = s.subject_code "
            "LEFT JOIN attendance_justification j ON j.id = m.justification_id "
            "WHERE m.student_id = {} {}ORDER BY m.on_date DESC, s.starts_at DESC",
            student_id,
            since,
        )
    )


async def create_justification(
    ctx: RequestContext,
    pupil: dict[str, Any],
    mark_ids: list[int],
    reason_code: str,
    note: str,
    file_key: str | None,
    file_type: str | None,
    file_size: int | None,
) -> int:
    """A family's justification of some of a pupil's absences (pending review); 400 on a wrong mark or reason,
    409 when one of them is already justified or awaiting review.

    Two submissions racing for the same absence: the marks are locked first (``FOR UPDATE`` on PostgreSQL;
    SQLite serialises write transactions), and the link is written only to marks still free, so the second
    one gets 409 and writes nothing.
    """
    db = ctx.services.db
    codes = {r["code"] for r in await reasons(db, pupil["region_id"])}
    if reason_code not in codes:
        raise error("unknown_reason", "reason", codes=", ".join(sorted(codes)))
    if not mark_ids:
        raise error("no_absence_chosen", "absences")
    ids = sorted(set(mark_ids))
    listed = in_(ids)
    if db.dialect == "postgres":
        await db.fetch(
            SQL(
                "SELECT m.id FROM attendance_mark m WHERE m.student_id = {} AND m.id IN {} ORDER BY m.id FOR UPDATE",
                pupil["id"],
                listed,
            )
        )
    rows = await db.fetch(
        SQL(
            "SELECT m.id, m.kind, m.justification_id, j.state FROM attendance_mark m "
            "LEFT JOIN attendance_justification j ON j.id = m.justification_id WHERE m.student_id = {} AND m.id IN {}",
            pupil["id"],
            listed,
        )
    )
    found = {r["id"]: r for r in rows}
    for mid in ids:
        if mid not in found:
            raise error("not_this_pupils_absence", "absences", mark_id=mid)
        if found[mid]["kind"] != "absent":
            raise error("late_not_absence", "absences", mark_id=mid)
        if found[mid]["state"] in ("pending", "accepted"):
            raise error("already_justified", mark_id=mid, state=found[mid]["state"])
    row = await db.fetchrow(
        "INSERT INTO attendance_justification (region_id, province_id, school_id, student_id, submitted_by, "
        "reason_code, note, file_key, file_type, file_size, state, created_at, review_note) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'pending', {}, '') RETURNING id",
        pupil["region_id"],
        pupil["province_id"],
        pupil["school_id"],
        pupil["id"],
        ctx.person_id,
        reason_code,
        note,
        file_key,
        file_type,
        file_size,
        ctx.services.clock.utcnow(),
    )
    assert row is not None
    linked = await db.fetch(
        SQL(
            "UPDATE attendance_mark SET justification_id = {} WHERE student_id = {} AND id IN {} "
            "AND kind = 'absent' AND (justification_id IS NULL OR justification_id IN "
            "(SELECT r.id FROM attendance_justification r WHERE r.state = 'rejected')) RETURNING id",
            row["id"],
            pupil["id"],
            listed,
        )
    )
    if len(linked) != len(ids):
        raise error("justified_meanwhile", "absences")
    return int(row["id"])


JUSTIFICATION_COLUMNS = SQL(
    "j.id, j.student_id, j.reason_code, j.note, j.file_key, j.file_type, j.file_size, j.state, j.created_at, "
    "j.reviewed_by, j.reviewed_at, j.review_note, j.school_id, st.first_name, st.last_name, st.first_name_ar, "
    "st.last_name_ar, st.national_code"
)


async def get_justification(
    db: Database, where: SQL, justification_id: int, school_id: int | None = None
) -> dict[str, Any]:
    """A justification inside the scope (``where``: ``scope_sql(scope, "j")``) and the school, when given;
    404 otherwise."""
    in_school = SQL(" AND j.school_id = {}", school_id) if school_id is not None else SQL()
    row = await db.fetchrow(
        SQL(
            "SELECT {} FROM attendance_justification j JOIN student st ON st.id = j.student_id "
            "WHERE j.id = {}{} AND {}",
            JUSTIFICATION_COLUMNS,
            justification_id,
            in_school,
            where,
        )
    )
    if row is None:
        raise error("no_justification", justification_id=justification_id)
    return row


async def justification_marks(db: Database, justification_id: int) -> list[dict[str, Any]]:
    """The absences a justification covers."""
    return await db.fetch(
        "SELECT m.id, m.on_date, m.minutes, s.subject_code, s.starts_at FROM attendance_mark m "
        "JOIN attendance_session se ON se.id = m.session_id JOIN timetable_slot s ON s.id = se.slot_id "
        "WHERE m.justification_id = {} ORDER BY m.on_date, s.starts_at",
        justification_id,
    )


async def review(ctx: RequestContext, justification: dict[str, Any], decision: str, note: str) -> dict[str, Any]:
    """Accept or reject a pending justification (the covered absences become justified or stay unjustified)."""
    if decision not in ("accepted", "rejected"):
        raise error("bad_decision", "decision")
    db = ctx.services.db
    now = ctx.services.clock.utcnow()
    changed = await db.fetchrow(
        "UPDATE attendance_justification SET state = {}, reviewed_by = {}, reviewed_at = {}, review_note = {} "
        "WHERE id = {} AND state = 'pending' RETURNING id",
        decision,
        ctx.person_id,
        now,
        note,
        justification["id"],
    )
    if changed is None:
        raise error("already_reviewed", state=justification["state"])
    await db.execute(
        "UPDATE attendance_mark SET justified = (kind = 'absent' AND {}) WHERE justification_id = {}",
        decision == "accepted",
        justification["id"],
    )
    school = await ctx.services.tenants.by_id(justification["school_id"])
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action=f"attendance.justification_{decision}",
        object_type="attendance_justification",
        object_id=justification["id"],
        tenant=school,
        before={"state": "pending"},
        after={"state": decision},
        reason=note,
    )
    return {**justification, "state": decision, "reviewed_by": ctx.person_id, "reviewed_at": now, "review_note": note}
