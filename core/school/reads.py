"""What each audience reads of the school structure: a teacher's classes and week, a class's pupils,
a guardian's children, a pupil's own record. Single statements within the caller's scope.
"""

from __future__ import annotations

from typing import Any

from core.db import Database, scope_sql
from core.school.service import current_year
from core.scope import Scope
from core.sql import SQL

SLOT_COLUMNS = SQL(
    "s.id, s.weekday, s.starts_at, s.ends_at, s.valid_from, s.valid_to, s.subject_code, s.class_id, s.teacher_id, "
    "s.school_id, c.name AS class_name, r.name AS room_name, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, "
    "sub.name_en AS subject_en, p.full_name AS teacher_name"
)
SLOT_JOINS = SQL(
    "FROM timetable_slot s JOIN school_class c ON c.id = s.class_id LEFT JOIN room r ON r.id = s.room_id "
    "JOIN subject sub ON sub.code = s.subject_code JOIN person p ON p.id = s.teacher_id"
)


async def teacher_classes(db: Database, scope: Scope, person_id: int) -> list[dict[str, Any]]:
    """Classes a teacher teaches (or leads) this year, across their schools."""
    year = await current_year(db)
    return await db.fetch(
        "SELECT DISTINCT c.id, c.name, c.level_code, c.track_code, c.school_id, t.slug AS school, "
        "(c.homeroom_teacher_id = {}) AS homeroom FROM school_class c JOIN tenant t ON t.id = c.school_id "
        "LEFT JOIN teaching_assignment a ON a.class_id = c.id AND a.person_id = {} "
        "WHERE c.school_year_id = {} AND (a.id IS NOT NULL OR c.homeroom_teacher_id = {}) AND {} "
        "ORDER BY t.slug, c.name",
        person_id,
        person_id,
        year["id"],
        person_id,
        scope_sql(scope, "c"),
    )


async def class_students(db: Database, scope: Scope, class_id: int) -> list[dict[str, Any]]:
    """Pupils currently in a class, by name."""
    return await db.fetch(
        "SELECT s.id, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar "
        "FROM enrolment e JOIN student s ON s.id = e.student_id "
        "WHERE e.class_id = {} AND e.ends_on IS NULL AND {} ORDER BY s.last_name, s.first_name",
        class_id,
        scope_sql(scope, "s"),
    )


async def teacher_slots(db: Database, scope: Scope, person_id: int) -> list[dict[str, Any]]:
    """A teacher's weekly lessons in every school of the scope."""
    return await db.fetch(
        "SELECT {} {} WHERE s.teacher_id = {} AND {} ORDER BY s.weekday, s.starts_at",
        SLOT_COLUMNS,
        SLOT_JOINS,
        person_id,
        scope_sql(scope, "s"),
    )


async def class_slots(db: Database, scope: Scope, class_id: int) -> list[dict[str, Any]]:
    """A class's weekly lessons."""
    return await db.fetch(
        "SELECT {} {} WHERE s.class_id = {} AND {} ORDER BY s.weekday, s.starts_at",
        SLOT_COLUMNS,
        SLOT_JOINS,
        class_id,
        scope_sql(scope, "s"),
    )


async def duties(db: Database, scope: Scope, person_id: int) -> list[dict[str, Any]]:
    """A teacher's duty roster."""
    return await db.fetch(
        "SELECT id, label, weekday, starts_at, ends_at, valid_from, valid_to, school_id "
        "FROM duty_slot WHERE person_id = {} AND {} ORDER BY weekday, starts_at",
        person_id,
        scope_sql(scope),
    )


async def children(db: Database, scope: Scope, person_id: int) -> list[dict[str, Any]]:
    """A guardian's children, wherever they are, with their current class."""
    return await db.fetch(
        "SELECT s.id, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, s.school_id, "
        "t.slug AS school, t.name_fr AS school_fr, t.name_ar AS school_ar, e.class_id, c.name AS class_name, "
        "r.slug AS region, r.name_fr AS region_fr, r.name_ar AS region_ar "
        "FROM guardianship g JOIN student s ON s.id = g.student_id JOIN tenant t ON t.id = s.school_id "
        "JOIN tenant r ON r.id = s.region_id "
        "LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "LEFT JOIN school_class c ON c.id = e.class_id "
        "WHERE g.person_id = {} AND {} ORDER BY s.first_name",
        person_id,
        scope_sql(scope, "s"),
    )


async def own_student(db: Database, scope: Scope, person_id: int) -> dict[str, Any] | None:
    """The pupil record of a student's login, with the current class."""
    return await db.fetchrow(
        "SELECT s.id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, s.school_id, e.class_id "
        "FROM student s LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "WHERE s.person_id = {} AND {}",
        person_id,
        scope_sql(scope, "s"),
    )
