"""Teaching assignments, timetable slots and duties: who teaches what, when and where, without clashes.

Every function runs inside a transaction its caller opened with ``db.scoped(scope)``. A slot that
double-books a teacher (also across two schools), a room or a class is refused with the clash named.
"""

from __future__ import annotations

from datetime import date, time
from typing import Any

import msgspec
from litestar.exceptions import NotFoundException

from core import audit
from core.context import RequestContext
from core.errors import Conflict, Invalid
from core.school.rules import Slot, check_slot
from core.school.service import (
    WEEKDAYS,
    _cols,
    _scope,
    current_year,
    explain_not_teacher,
    get_class,
    get_room,
    is_teacher_at,
)
from core.tenancy import TenantInfo


async def assign(ctx: RequestContext, school: TenantInfo, person_id: int, class_id: int, subject_code: str) -> int:
    """A teacher teaches a subject to a class this year."""
    db = ctx.services.db
    klass = await get_class(ctx, class_id)
    if klass["school_id"] != school.id:
        raise Invalid("class_id", f"class {class_id} is not in this school")
    if not await is_teacher_at(db, person_id, school):
        raise await explain_not_teacher(db, person_id, school)
    taught = await db.fetchval(
        "SELECT id FROM subject_coefficient WHERE level_code = {} AND subject_code = {} "
        "AND (track_code IS NULL OR track_code = {})",
        klass["level_code"],
        subject_code,
        klass["track_code"] or "",
    )
    if taught is None:
        raise Invalid("subject_code", f"{subject_code} is not taught at {klass['level_code']}")
    existing = await db.fetchrow(
        "SELECT id, person_id FROM teaching_assignment WHERE class_id = {} AND subject_code = {} "
        "AND school_year_id = {}",
        class_id,
        subject_code,
        klass["school_year_id"],
    )
    if existing is not None:
        if existing["person_id"] == person_id:
            return int(existing["id"])
        raise Conflict(TAUGHT_BY_ANOTHER, subject=subject_code, class_name=klass["name"])
    row = await db.fetchrow(
        "INSERT INTO teaching_assignment (region_id, province_id, school_id, person_id, class_id, subject_code, "
        "school_year_id) VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
        *_cols(school),
        person_id,
        class_id,
        subject_code,
        klass["school_year_id"],
    )
    assert row is not None
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="assignment.create",
        object_type="class",
        object_id=class_id,
        tenant=school,
        after={"teacher": person_id, "subject": subject_code},
    )
    return int(row["id"])


#: A clash named as the API says it (catalogue message ids; ``{day}`` is an English weekday name).
CLASH_TEACHER = "Clash: the teacher already teaches {class_name} on {day} {starts}–{ends}."
CLASH_ELSEWHERE = "Clash: the teacher already teaches in another school on {day} {starts}–{ends}."
CLASH_ROOM = "Clash: room {room} is taken by {class_name} on {day} {starts}–{ends}."
CLASH_CLASS = "Clash: class {class_name} already has {subject} on {day} {starts}–{ends}."
CLASH_DUTY = "Clash: the teacher already has the duty “{duty}” then."
CLASH_MESSAGES = [CLASH_TEACHER, CLASH_ELSEWHERE, CLASH_ROOM, CLASH_CLASS, CLASH_DUTY]
#: Another teacher already holds the class's subject this year.
TAUGHT_BY_ANOTHER = "{subject} in {class_name} is already taught by another teacher."


class Clash(msgspec.Struct, frozen=True):
    """A clash: its message id and the values formatted into it."""

    msgid: str
    values: dict[str, str]

    def __str__(self) -> str:
        return self.msgid.format(**self.values)


def _when(weekday: int, starts: time, ends: time) -> dict[str, str]:
    return {"day": WEEKDAYS[weekday], "starts": hm(starts), "ends": hm(ends)}


def _describe(kind: str, row: dict[str, Any]) -> Clash:
    when = _when(row["weekday"], row["starts_at"], row["ends_at"])
    if kind == "teacher":
        if not row.get("class_name"):
            return Clash(CLASH_ELSEWHERE, when)
        return Clash(CLASH_TEACHER, {"class_name": row["class_name"], **when})
    if kind == "room":
        return Clash(CLASH_ROOM, {"room": row["room_name"], "class_name": row["class_name"], **when})
    return Clash(CLASH_CLASS, {"class_name": row["class_name"], "subject": row["subject_code"], **when})


def hm(value: time) -> str:
    """A time of day as ``HH:MM``."""
    return value.strftime("%H:%M")


async def find_clash(ctx: RequestContext, school: TenantInfo, slot: Slot) -> Clash | None:
    """The first clash of a slot with the school's timetable or the teacher's other schools, described."""
    db = ctx.services.db
    rows = await db.fetch(
        "SELECT s.id, s.weekday, s.starts_at, s.ends_at, s.class_id, s.teacher_id, s.room_id, s.subject_code, "
        "c.name AS class_name, r.name AS room_name FROM timetable_slot s JOIN school_class c ON c.id = s.class_id "
        "LEFT JOIN room r ON r.id = s.room_id WHERE s.school_id = {} AND s.weekday = {} AND s.starts_at < {} "
        "AND {} < s.ends_at AND s.valid_from <= {} AND {} <= s.valid_to AND s.id <> {} "
        "AND (s.teacher_id = {} OR s.class_id = {} OR (s.room_id IS NOT NULL AND s.room_id = {}))",
        school.id,
        slot.weekday,
        slot.ends_at,
        slot.starts_at,
        slot.valid_to,
        slot.valid_from,
        slot.id or 0,
        slot.teacher_id,
        slot.class_id,
        slot.room_id if slot.room_id is not None else -1,
    )
    for kind in ("teacher", "room", "class"):
        for row in rows:
            if (
                (kind == "teacher" and row["teacher_id"] == slot.teacher_id)
                or (kind == "room" and slot.room_id is not None and row["room_id"] == slot.room_id)
                or (kind == "class" and row["class_id"] == slot.class_id)
            ):
                return _describe(kind, row)
    if db.dialect == "postgres":
        elsewhere = await db.fetch(
            "SELECT school_id, starts_at, ends_at FROM madrasa_teacher_busy({}, {}, {}, {}, {}, {}, {}) "
            "WHERE school_id <> {}",
            slot.teacher_id,
            slot.weekday,
            slot.starts_at,
            slot.ends_at,
            slot.valid_from,
            slot.valid_to,
            slot.id or 0,
            school.id,
        )
    else:
        elsewhere = await db.fetch(
            "SELECT school_id, starts_at, ends_at FROM timetable_slot WHERE teacher_id = {} AND weekday = {} "
            "AND starts_at < {} AND {} < ends_at AND valid_from <= {} AND {} <= valid_to AND school_id <> {}",
            slot.teacher_id,
            slot.weekday,
            slot.ends_at,
            slot.starts_at,
            slot.valid_to,
            slot.valid_from,
            school.id,
        )
    if elsewhere:
        row = elsewhere[0]
        return Clash(CLASH_ELSEWHERE, _when(slot.weekday, row["starts_at"], row["ends_at"]))
    return None


async def add_slot(
    ctx: RequestContext,
    school: TenantInfo,
    *,
    class_id: int,
    subject_code: str,
    teacher_id: int,
    room_id: int | None,
    weekday: int,
    starts_at: time,
    ends_at: time,
    valid_from: date | None,
    valid_to: date | None,
) -> int:
    """A weekly lesson; refused with the reason when the teacher, room or class is already busy."""
    db = ctx.services.db
    klass = await get_class(ctx, class_id)
    if klass["school_id"] != school.id:
        raise Invalid("class_id", f"class {class_id} is not in this school")
    if room_id is not None:
        room = await get_room(ctx, room_id)
        if room["school_id"] != school.id:
            raise Invalid("room_id", f"room {room_id} is not in this school")
    assigned = await db.fetchval(
        "SELECT id FROM teaching_assignment WHERE class_id = {} AND subject_code = {} AND person_id = {}",
        class_id,
        subject_code,
        teacher_id,
    )
    if assigned is None:
        raise Invalid("teacher_id", f"teacher {teacher_id} is not assigned to teach {subject_code} in {klass['name']}")
    year = await db.fetchrow("SELECT starts_on, ends_on FROM school_year WHERE id = {}", klass["school_year_id"])
    assert year is not None
    slot = Slot(
        weekday=weekday,
        starts_at=starts_at,
        ends_at=ends_at,
        valid_from=valid_from or year["starts_on"],
        valid_to=valid_to or year["ends_on"],
        class_id=class_id,
        teacher_id=teacher_id,
        room_id=room_id,
    )
    try:
        check_slot(slot)
    except ValueError as exc:
        raise Invalid("slot", str(exc)) from None
    clash = await find_clash(ctx, school, slot)
    if clash:
        raise Conflict(clash.msgid, **clash.values)
    row = await db.fetchrow(
        "INSERT INTO timetable_slot (region_id, province_id, school_id, class_id, subject_code, teacher_id, room_id, "
        "weekday, starts_at, ends_at, valid_from, valid_to) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) "
        "RETURNING id",
        *_cols(school),
        class_id,
        subject_code,
        teacher_id,
        room_id,
        weekday,
        starts_at,
        ends_at,
        slot.valid_from,
        slot.valid_to,
    )
    assert row is not None
    return int(row["id"])


async def delete_slot(ctx: RequestContext, school: TenantInfo, slot_id: int) -> None:
    """Remove a lesson from the timetable."""
    db = ctx.services.db
    found = await db.fetchval(
        "SELECT id FROM timetable_slot WHERE id = {} AND school_id = {} AND {}", slot_id, school.id, _scope(ctx)
    )
    if found is None:
        raise NotFoundException(f"No slot {slot_id} here.")
    await db.execute("DELETE FROM timetable_slot WHERE id = {}", slot_id)


async def add_duty(
    ctx: RequestContext, school: TenantInfo, *, person_id: int, label: str, weekday: int, starts_at: time, ends_at: time
) -> int:
    """A weekly duty for a teacher of the school, refused when it overlaps their lessons or duties."""
    db = ctx.services.db
    if not await is_teacher_at(db, person_id, school):
        raise await explain_not_teacher(db, person_id, school)
    year = await current_year(db)
    if not 1 <= weekday <= 7 or starts_at >= ends_at:
        raise Invalid("slot", "weekday 1–7 and a start before the end")
    probe = Slot(
        weekday=weekday,
        starts_at=starts_at,
        ends_at=ends_at,
        valid_from=year["starts_on"],
        valid_to=year["ends_on"],
        class_id=-1,
        teacher_id=person_id,
    )
    clash = await find_clash(ctx, school, probe)
    if clash:
        raise Conflict(clash.msgid, **clash.values)
    busy = await db.fetchval(
        "SELECT label FROM duty_slot WHERE person_id = {} AND weekday = {} AND starts_at < {} AND {} < ends_at",
        person_id,
        weekday,
        ends_at,
        starts_at,
    )
    if busy is not None:
        raise Conflict(CLASH_DUTY, duty=busy)
    row = await db.fetchrow(
        "INSERT INTO duty_slot (region_id, province_id, school_id, person_id, label, weekday, starts_at, ends_at, "
        "valid_from, valid_to) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
        *_cols(school),
        person_id,
        label,
        weekday,
        starts_at,
        ends_at,
        year["starts_on"],
        year["ends_on"],
    )
    assert row is not None
    return int(row["id"])


async def class_assignments(ctx: RequestContext, class_id: int) -> list[dict[str, Any]]:
    """Who teaches what to a class: subject (code and names) and teacher (id and names), by subject."""
    return await ctx.services.db.fetch(
        "SELECT a.subject_code, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, sub.name_en AS subject_en, "
        "a.person_id AS teacher_id, p.full_name AS teacher_name, p.full_name_ar AS teacher_name_ar "
        "FROM teaching_assignment a JOIN subject sub ON sub.code = a.subject_code JOIN person p ON p.id = a.person_id "
        "WHERE a.class_id = {} AND {} ORDER BY a.subject_code, p.full_name",
        class_id,
        _scope(ctx, "a"),
    )


async def school_duties(ctx: RequestContext, school: TenantInfo) -> list[dict[str, Any]]:
    """The school's duty roster this year: each duty with its teacher, by day and start."""
    year = await current_year(ctx.services.db)
    return await ctx.services.db.fetch(
        "SELECT d.id, d.person_id, p.full_name, p.full_name_ar, d.label, d.weekday, d.starts_at, d.ends_at "
        "FROM duty_slot d JOIN person p ON p.id = d.person_id WHERE d.school_id = {} AND d.valid_from <= {} "
        "AND {} <= d.valid_to AND {} ORDER BY d.weekday, d.starts_at, p.full_name, d.id",
        school.id,
        year["ends_on"],
        year["starts_on"],
        _scope(ctx, "d"),
    )


async def school_rooms(ctx: RequestContext, school: TenantInfo) -> list[dict[str, Any]]:
    """The rooms of a school, by name."""
    return await ctx.services.db.fetch(
        "SELECT id, name, capacity FROM room WHERE school_id = {} AND {} ORDER BY name, id", school.id, _scope(ctx)
    )
