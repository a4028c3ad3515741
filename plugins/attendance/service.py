"""Attendance services: the calendar, taking attendance, corrections and notices, the teacher's day.

Rules and alerts are in :mod:`plugins.attendance.alerts`, justifications in
:mod:`plugins.attendance.justifications`.

Every function runs inside a transaction its caller opened with ``db.scoped(scope)`` (tenant rows of
another school read as missing). Presence is never stored: a session row records that attendance was
taken, mark rows exist only for absent or late pupils.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal, NamedTuple

import msgspec

from core.plugin_api import (
    CALENDAR_TOPIC,
    SQL,
    Database,
    Event,
    InvalidatedCache,
    RequestContext,
    audit,
    in_,
    join,
    school,
    scope_sql,
)
from plugins.attendance.alerts import raise_alerts
from plugins.attendance.common import (
    CACHE_SECONDS,
    is_director,
    name_of,
    slot_minutes,
)
from plugins.attendance.errors import AttendanceError, Problem, error, problem_of


class Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A pupil who was not simply present: ``absent``, or ``late`` by ``minutes``."""

    student_id: int
    status: Literal["absent", "late"]
    minutes: int | None = None


class Taken(NamedTuple):
    """What a register submission produced: its view, and what to deliver and emit after commit."""

    view: dict[str, Any]
    notices: list[int]
    alerts: list[int]
    events: list[Event]


# -- the calendar ------------------------------------------------------------------------------


#: Emptied in every process when core publishes a calendar change (terms, holidays, school years).
_calendars: InvalidatedCache[tuple[int, int | None, date], dict[str, Any]] = InvalidatedCache(
    CALENDAR_TOPIC, CACHE_SECONDS, max_entries=1000
)


async def calendar(db: Database, region_id: int | None, on: date) -> dict[str, Any]:
    """The school year containing ``on``, its terms as they apply in the region, and its holidays (cached 60 s)."""
    return await _calendars.get((id(db), region_id, on), lambda: _calendar(db, region_id, on))


async def _calendar(db: Database, region_id: int | None, on: date) -> dict[str, Any]:
    year = await school.current_year(db, on)
    terms = await db.fetch(
        "SELECT id, number, starts_on, ends_on, tenant_id FROM term WHERE school_year_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY number",
        year["id"],
        region_id or -1,
    )
    own = [r for r in terms if r["tenant_id"] is not None]
    chosen = own or [r for r in terms if r["tenant_id"] is None]
    holidays = await db.fetch(
        "SELECT starts_on, ends_on FROM holiday WHERE school_year_id = {} AND (tenant_id IS NULL OR tenant_id = {})",
        year["id"],
        region_id or -1,
    )
    return {
        "year": year,
        "terms": [(r["id"], r["starts_on"], r["ends_on"]) for r in chosen],
        "holidays": [(h["starts_on"], h["ends_on"]) for h in holidays],
    }


def school_days(cal: dict[str, Any], start: date, end: date) -> list[date]:
    """Days of ``[start, end]`` inside a term and outside holidays (weekdays decide which lessons happen)."""
    out = []
    day = start
    while day <= end:
        in_term = any(a <= day <= b for _, a, b in cal["terms"])
        if in_term and not any(a <= day <= b for a, b in cal["holidays"]):
            out.append(day)
        day += timedelta(days=1)
    return out


def check_session_day(slot: dict[str, Any], on_date: date, cal: dict[str, Any], today: date) -> None:
    """400 unless the slot's lesson takes place on that day (weekday, validity, term, holidays) and it is not future."""
    if on_date > today:
        raise error("future_day", "date")
    if on_date.isoweekday() != slot["weekday"]:
        raise error("wrong_weekday", "date", date=on_date.isoformat())
    if not slot["valid_from"] <= on_date <= slot["valid_to"]:
        raise error("outside_timetable", "date", date=on_date.isoformat())
    if not school_days(cal, on_date, on_date):
        raise error("not_a_school_day", "date", date=on_date.isoformat())


# -- sessions ----------------------------------------------------------------------------------

SLOT_COLUMNS = SQL(
    "s.id, s.class_id, s.subject_code, s.teacher_id, s.weekday, s.starts_at, s.ends_at, s.valid_from, s.valid_to, "
    "s.region_id, s.province_id, s.school_id, c.name AS class_name, c.homeroom_teacher_id"
)


async def get_slot(ctx: RequestContext, slot_id: int) -> dict[str, Any]:
    """A timetable slot of the request's school inside the scope; 404 otherwise."""
    tenant = ctx.require_tenant()
    row = await ctx.services.db.fetchrow(
        SQL(
            "SELECT {} FROM timetable_slot s JOIN school_class c ON c.id = s.class_id "
            "WHERE s.id = {} AND s.school_id = {} AND {}",
            SLOT_COLUMNS,
            slot_id,
            tenant.id,
            scope_sql(ctx.scope, "s"),
        )
    )
    if row is None:
        raise error("no_lesson", slot_id=slot_id)
    return row


def check_teacher(ctx: RequestContext, slot: dict[str, Any]) -> None:
    """403 unless the caller teaches this lesson (or directs the school)."""
    if not is_director(ctx) and slot["teacher_id"] != ctx.person_id:
        raise error("not_your_lesson")


async def roster(db: Database, class_id: int, on_date: date) -> list[dict[str, Any]]:
    """Pupils enrolled in the class on that day (``ends_on`` is the last day in the class), by name."""
    return await db.fetch(
        "SELECT st.id, st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar "
        "FROM enrolment e JOIN student st ON st.id = e.student_id WHERE e.class_id = {} AND e.starts_on <= {} "
        "AND (e.ends_on IS NULL OR e.ends_on >= {}) ORDER BY st.last_name, st.first_name, st.id",
        class_id,
        on_date,
        on_date,
    )


PUPIL_COLUMNS = SQL(
    "st.id AS student_id, st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar, "
    "m.kind, m.minutes, j.state AS justification"
)


def build_view(slot: dict[str, Any], on_date: date, rows: list[dict[str, Any]], version: int | None) -> dict[str, Any]:
    """The register as shown: every pupil with ``status`` present/absent/late (``version`` None: not taken).

    ``rows`` are pupils with their mark's ``kind``, ``minutes`` and ``justification`` (None when present).
    """
    pupils = []
    absent = late = 0
    for p in rows:
        kind = p["kind"]
        if kind == "absent":
            absent += 1
        elif kind == "late":
            late += 1
        pupils.append(
            {
                "student_id": p["student_id"],
                "national_code": p["national_code"],
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "first_name_ar": p["first_name_ar"],
                "last_name_ar": p["last_name_ar"],
                "status": kind or "present",
                "minutes": p["minutes"] if kind == "late" else None,
                "justification": p["justification"] if kind else None,
            }
        )
    return {
        "slot_id": slot["id"],
        "class_id": slot["class_id"],
        "class_name": slot["class_name"],
        "subject_code": slot["subject_code"],
        "date": on_date,
        "starts_at": slot["starts_at"].strftime("%H:%M"),
        "ends_at": slot["ends_at"].strftime("%H:%M"),
        "taken": version is not None,
        "version": version or 0,
        "pupils": pupils,
        "absent": absent,
        "late": late,
        "present": len(pupils) - absent - late,
    }


async def register_view(ctx: RequestContext, slot_id: int, on_date: date) -> tuple[dict[str, Any], dict[str, Any]]:
    """The lesson and its register on a day, in one query: slot, class, the pupils enrolled that day and their
    marks; 404 outside the school or the scope, 403 for a teacher of another lesson."""
    tenant = ctx.require_tenant()
    rows = await ctx.services.db.fetch(
        SQL(
            "SELECT {}, se.version, {} "
            "FROM timetable_slot s JOIN school_class c ON c.id = s.class_id "
            "LEFT JOIN attendance_session se ON se.slot_id = s.id AND se.on_date = {} "
            "LEFT JOIN enrolment e ON e.class_id = s.class_id AND e.starts_on <= {} "
            "AND (e.ends_on IS NULL OR e.ends_on >= {}) "
            "LEFT JOIN student st ON st.id = e.student_id "
            "LEFT JOIN attendance_mark m ON m.session_id = se.id AND m.student_id = e.student_id "
            "LEFT JOIN attendance_justification j ON j.id = m.justification_id "
            "WHERE s.id = {} AND s.school_id = {} AND {} ORDER BY st.last_name, st.first_name, st.id",
            SLOT_COLUMNS,
            PUPIL_COLUMNS,
            on_date,
            on_date,
            on_date,
            slot_id,
            tenant.id,
            scope_sql(ctx.scope, "s"),
        )
    )
    if not rows:
        raise error("no_lesson", slot_id=slot_id)
    slot = rows[0]
    check_teacher(ctx, slot)
    pupils = [r for r in rows if r["student_id"] is not None]
    return slot, build_view(slot, on_date, pupils, slot["version"])


def check_entries(entries: list[Entry], pupils: dict[int, dict[str, Any]], length: int) -> list[Problem]:
    """Problems with a submission, naming the pupils (empty when it is valid)."""
    problems: list[Problem] = []
    seen: set[int] = set()
    for entry in entries:
        sid = entry.student_id
        key = f"entries[{sid}]"
        if sid not in pupils:
            problems.append(problem_of("pupil_not_in_class", key, student_id=sid))
            continue
        who = name_of(pupils[sid], "fr")
        if sid in seen:
            problems.append(problem_of("pupil_twice", key, name=who, student_id=sid))
        seen.add(sid)
        if entry.status == "late":
            if entry.minutes is None or not 1 <= entry.minutes <= length:
                problems.append(problem_of("minutes_out_of_range", key, name=who, student_id=sid, length=length))
        elif entry.minutes is not None:
            problems.append(problem_of("absent_with_minutes", key, name=who, student_id=sid))
    return problems


async def _open_session(
    db: Database, slot: dict[str, Any], on_date: date, length: int, taker: int, now: datetime
) -> tuple[int, int, bool]:
    """The lesson's register row for the day, created if needed and locked until commit: (id, version, created)."""
    insert = SQL(
        "INSERT INTO attendance_session (region_id, province_id, school_id, slot_id, class_id, on_date, minutes, "
        "teacher_id, taken_by, taken_at, updated_at, version) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 1) ",
        slot["region_id"],
        slot["province_id"],
        slot["school_id"],
        slot["id"],
        slot["class_id"],
        on_date,
        length,
        slot["teacher_id"],
        taker,
        now,
        now,
    )
    if db.dialect == "postgres":
        # One statement creates the row or takes the lock on the existing one (xmax = 0: inserted here).
        row = await db.fetchrow(
            SQL(
                "{}ON CONFLICT (slot_id, on_date) DO UPDATE SET version = attendance_session.version "
                "RETURNING id, version, (xmax = 0) AS created",
                insert,
            )
        )
        assert row is not None
        return int(row["id"]), int(row["version"]), bool(row["created"])
    created = await db.fetchrow(SQL("{}ON CONFLICT (slot_id, on_date) DO NOTHING RETURNING id", insert))
    if created is not None:
        return int(created["id"]), 1, True
    row = await db.fetchrow(
        "SELECT id, version FROM attendance_session WHERE slot_id = {} AND on_date = {}", slot["id"], on_date
    )
    assert row is not None
    return int(row["id"]), int(row["version"]), False


async def _pupils_and_marks(db: Database, class_id: int, session_id: int, on_date: date) -> list[dict[str, Any]]:
    """The pupils enrolled on the day with their mark in the (locked) session, by name."""
    return await db.fetch(
        SQL(
            "SELECT {} FROM enrolment e JOIN student st ON st.id = e.student_id "
            "LEFT JOIN attendance_mark m ON m.session_id = {} AND m.student_id = e.student_id "
            "LEFT JOIN attendance_justification j ON j.id = m.justification_id "
            "WHERE e.class_id = {} AND e.starts_on <= {} AND (e.ends_on IS NULL OR e.ends_on >= {}) "
            "ORDER BY st.last_name, st.first_name, st.id",
            PUPIL_COLUMNS,
            session_id,
            class_id,
            on_date,
            on_date,
        )
    )


async def _write_marks(
    db: Database,
    slot: dict[str, Any],
    session_id: int,
    on_date: date,
    wanted: dict[int, tuple[str, int]],
    bump: bool,
    taker: int,
    now: datetime,
    notify: list[int],
) -> list[int]:
    """Make the session's marks exactly ``wanted`` (set-based), bump its version on a correction, and create the
    day's family notices for ``notify`` (one per pupil and day: a second one is a no-op); returns the notice ids.

    A corrected mark keeps its link to a justification; whether it counts as justified is recomputed from that
    justification: only an absence covered by an accepted justification is justified (a lateness never is), so
    absent → late → absent again is justified again when the justification was accepted.

    PostgreSQL: one statement (data-modifying CTEs over arrays). SQLite: one statement per step.
    """
    cols = [slot["region_id"], slot["province_id"], slot["school_id"]]
    ids = list(wanted)
    kinds = [wanted[sid][0] for sid in ids]
    minutes = [wanted[sid][1] for sid in ids]
    upsert_tail = SQL(
        "ON CONFLICT (session_id, student_id) DO UPDATE SET kind = EXCLUDED.kind, minutes = EXCLUDED.minutes, "
        "justified = CASE WHEN EXCLUDED.kind = 'absent' THEN COALESCE((SELECT jj.state = 'accepted' "
        "FROM attendance_justification jj WHERE jj.id = attendance_mark.justification_id), {}) ELSE {} END "
        "WHERE attendance_mark.kind <> EXCLUDED.kind OR attendance_mark.minutes <> EXCLUDED.minutes",
        False,
        False,
    )
    if db.dialect == "postgres":
        version = (
            SQL(
                "ver AS (UPDATE attendance_session SET version = version + 1, updated_at = {}, taken_by = {} "
                "WHERE id = {} RETURNING id), ",
                now,
                taker,
                session_id,
            )
            if bump
            else SQL()
        )
        rows = await db.fetch(
            SQL(
                "WITH gone AS (DELETE FROM attendance_mark WHERE session_id = {} "
                "AND NOT (student_id = ANY({}::int[]))), "
                "up AS (INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, "
                "student_id, on_date, kind, minutes, justified) "
                "SELECT {}, {}, {}, {}, {}, x.sid, {}, x.kind, x.minutes, FALSE "
                "FROM unnest({}::int[], {}::text[], {}::int[]) AS x(sid, kind, minutes) {} RETURNING id), "
                "{}notices AS (INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, "
                "on_date, created_at, kind, status, channels) SELECT {}, {}, {}, x, {}, {}, 'absence', 'pending', '' "
                "FROM unnest({}::int[]) AS x {} RETURNING id) "
                "SELECT id FROM notices",
                session_id,
                ids,
                *cols,
                session_id,
                slot["class_id"],
                on_date,
                ids,
                kinds,
                minutes,
                upsert_tail,
                version,
                *cols,
                on_date,
                now,
                notify,
                NOTICE_CONFLICT,
            )
        )
        return [int(r["id"]) for r in rows]
    # Every pupil present: the session keeps no mark (``NOT IN (NULL)`` would match nothing and keep them all).
    keep = SQL(" AND student_id NOT IN {}", in_(ids)) if ids else SQL()
    await db.execute(SQL("DELETE FROM attendance_mark WHERE session_id = {}{}", session_id, keep))
    if ids:
        rows_sql = join(
            ", ",
            [
                SQL(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                    *cols,
                    session_id,
                    slot["class_id"],
                    sid,
                    on_date,
                    wanted[sid][0],
                    wanted[sid][1],
                    False,
                )
                for sid in ids
            ],
        )
        await db.execute(
            SQL(
                "INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, student_id, "
                "on_date, kind, minutes, justified) VALUES {} {}",
                rows_sql,
                upsert_tail,
            )
        )
    if bump:
        await db.execute(
            "UPDATE attendance_session SET version = version + 1, updated_at = {}, taken_by = {} WHERE id = {}",
            now,
            taker,
            session_id,
        )
    return await create_notices(db, cols, notify, on_date, now)


async def take(
    ctx: RequestContext,
    slot: dict[str, Any],
    on_date: date,
    entries: list[Entry],
    reason: str | None,
) -> Taken:
    """Record (or correct) the attendance of a lesson on a day, atomically; idempotent.

    Returns the session's view, the ids of the family notices created (at most one per pupil and
    day) and of the alerts raised, to deliver after commit, and the ``attendance.recorded`` event
    (when something changed) to emit after commit. Refused with nothing written: a
    lesson not the caller's (403), a teacher outside the lesson's day (403), a day without that
    lesson (400), a pupil not in the class (400 naming the pupil), a director's correction of a past
    day without a reason (400). Statements: the session row (created or locked), the pupils with their
    marks, one set-based write of marks, version and notices, the alert check, and the audit entry of a
    correction.
    """
    db = ctx.services.db
    assert ctx.person_id is not None
    clock = ctx.services.clock
    today = clock.today()
    check_teacher(ctx, slot)
    director = is_director(ctx)
    cal = await calendar(db, slot["region_id"], on_date)
    check_session_day(slot, on_date, cal, today)
    if not director and on_date != today:
        raise error("teacher_same_day_only")
    length = slot_minutes(slot["starts_at"], slot["ends_at"])
    now = clock.utcnow()
    session_id, version, created = await _open_session(db, slot, on_date, length, ctx.person_id, now)
    rows = await _pupils_and_marks(db, slot["class_id"], session_id, on_date)
    pupils = {r["student_id"]: r for r in rows}
    problems = check_entries(entries, pupils, length)
    if problems:
        raise AttendanceError("invalid_entries", "Some pupils of the register are not right.", problems=problems)
    wanted = {e.student_id: (e.status, length if e.status == "absent" else int(e.minutes or 0)) for e in entries}
    before = {r["student_id"]: (r["kind"], r["minutes"]) for r in rows if r["kind"] is not None}
    changed = created or before != wanted
    if changed and director and on_date < today and not (reason or "").strip():
        raise error("reason_required", "reason")
    notices: list[int] = []
    alerts: list[int] = []
    if changed:
        notify = list(wanted) if on_date == today else []
        notices = await _write_marks(db, slot, session_id, on_date, wanted, not created, ctx.person_id, now, notify)
        if not created or on_date < today:
            school = await ctx.services.tenants.by_id(slot["school_id"])
            await audit.record(
                db,
                actor_id=ctx.person_id,
                action="attendance.correct" if not created else "attendance.record_late",
                object_type="attendance_session",
                object_id=session_id,
                tenant=school,
                before=_marks_json(before),
                after=_marks_json(wanted),
                reason=(reason or "").strip(),
            )
        absent = [sid for sid, (kind, _) in wanted.items() if kind == "absent"]
        if absent:
            alerts = await raise_alerts(db, slot["region_id"], absent, today, now)
    version += 1 if changed and not created else 0
    marks = []
    for r in rows:
        kind, minutes = wanted.get(r["student_id"], (None, None))
        kept = r["justification"] if kind == "absent" and r["kind"] is not None else None
        marks.append({**r, "kind": kind, "minutes": minutes, "justification": kept})
    events = []
    if changed:
        events.append(
            Event(
                name="attendance.recorded",
                tenant_id=slot["school_id"],
                school_id=slot["school_id"],
                actor_id=ctx.person_id,
                data={
                    "slot_id": slot["id"],
                    "class_id": slot["class_id"],
                    "date": on_date.isoformat(),
                    "absent": sorted(sid for sid, (kind, _) in wanted.items() if kind == "absent"),
                    "late": sorted(sid for sid, (kind, _) in wanted.items() if kind == "late"),
                    "correction": not created,
                },
            )
        )
    return Taken(build_view(slot, on_date, marks, version), notices, alerts, events)


def _marks_json(marks: dict[int, tuple[str, int]]) -> dict[str, Any]:
    return {str(sid): {"status": kind, "minutes": minutes} for sid, (kind, minutes) in sorted(marks.items())}


#: A pupil's notice of the day exists once: a second one is a no-op, except that a notice found void at delivery
#: (the marks it was about were corrected away) is made pending again when the pupil is marked again that day.
NOTICE_CONFLICT = SQL(
    "ON CONFLICT (student_id, on_date, kind) DO UPDATE SET status = 'pending', claimed_at = NULL "
    "WHERE attendance_notice.status = 'void'"
)


async def create_notices(
    db: Database, cols: list[Any], student_ids: list[int], on_date: date, now: datetime
) -> list[int]:
    """One family notice per pupil and day: the unique key makes a second one (any session, any request) a no-op
    (see :data:`NOTICE_CONFLICT`)."""
    if not student_ids:
        return []
    values = join(
        ", ",
        [SQL("({}, {}, {}, {}, {}, {}, 'absence', 'pending', '')", *cols, sid, on_date, now) for sid in student_ids],
    )
    rows = await db.fetch(
        SQL(
            "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, created_at, kind, "
            "status, channels) VALUES {} {} RETURNING id",
            values,
            NOTICE_CONFLICT,
        )
    )
    return [int(r["id"]) for r in rows]


# -- teacher's day -----------------------------------------------------------------------------


async def teacher_day(
    ctx: RequestContext, school_id: int, on_date: date, *, whole_school: bool = False
) -> list[dict[str, Any]]:
    """The caller's lessons at the school on a day (every lesson of the school for its director), with whether
    attendance was taken and the counts."""
    db = ctx.services.db
    cal = await calendar(db, ctx.require_tenant().region_id, on_date)
    if not school_days(cal, on_date, on_date):
        return []
    teacher = SQL() if whole_school else SQL("s.teacher_id = {} AND ", ctx.person_id)
    return await db.fetch(
        SQL(
            "SELECT s.id AS slot_id, s.class_id, c.name AS class_name, s.subject_code, s.starts_at, s.ends_at, "
            "se.id AS session_id, "
            "(SELECT COUNT(*) FROM attendance_mark m WHERE m.session_id = se.id AND m.kind = 'absent') AS absent, "
            "(SELECT COUNT(*) FROM attendance_mark m WHERE m.session_id = se.id AND m.kind = 'late') AS late "
            "FROM timetable_slot s JOIN school_class c ON c.id = s.class_id "
            "LEFT JOIN attendance_session se ON se.slot_id = s.id AND se.on_date = {} "
            "WHERE {}s.school_id = {} AND s.weekday = {} AND s.valid_from <= {} AND s.valid_to >= {} "
            "AND {} ORDER BY s.starts_at, c.name",
            on_date,
            teacher,
            school_id,
            on_date.isoweekday(),
            on_date,
            on_date,
            scope_sql(ctx.scope, "s"),
        )
    )
