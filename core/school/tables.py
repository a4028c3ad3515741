"""Tables of the school structure.

Reference data (levels, tracks, subjects, school years, terms, holidays, coefficients) is
platform data: it has no scope columns, and a region or school override names its node in
``tenant_id``. Everything about a school's people and timetable carries the scope columns of
the school it belongs to and has forced row-level security on PostgreSQL.
"""

from __future__ import annotations

from piccolo.columns import Boolean, Date, Integer, Numeric, Serial, Time, Timestamptz, Varchar
from piccolo.table import Table


class Level(Table, tablename="level"):
    """A year of study: ``1AP``…``6AP``, ``1AC``…``3AC``, ``TC``, ``1BAC``, ``2BAC``."""

    id = Serial(primary_key=True)
    code = Varchar(length=8, unique=True)
    cycle = Varchar(length=16)  # primaire, college, lycee
    rank = Integer()
    name_ar = Varchar(length=100)
    name_fr = Varchar(length=100)
    name_en = Varchar(length=100)


class Track(Table, tablename="track"):
    """A branch of the lycée (sciences maths, lettres…) for the levels it applies to."""

    id = Serial(primary_key=True)
    code = Varchar(length=12, unique=True)
    levels = Varchar(length=40)  # comma-separated level codes
    name_ar = Varchar(length=100)
    name_fr = Varchar(length=100)
    name_en = Varchar(length=100)


class Subject(Table, tablename="subject"):
    """A taught subject."""

    id = Serial(primary_key=True)
    code = Varchar(length=16, unique=True)
    name_ar = Varchar(length=100)
    name_fr = Varchar(length=100)
    name_en = Varchar(length=100)


class SubjectCoefficient(Table, tablename="subject_coefficient"):
    """Coefficient and weekly hours of a subject at a level (and track); a region or school may override."""

    id = Serial(primary_key=True)
    tenant_id = Integer(null=True, default=None)  # NULL: the national rule
    level_code = Varchar(length=8)
    track_code = Varchar(length=12, null=True, default=None)
    subject_code = Varchar(length=16)
    coefficient = Numeric(digits=(5, 2))
    weekly_hours = Numeric(digits=(4, 1))


class SchoolYear(Table, tablename="school_year"):
    """A school year, e.g. ``2026-2027``."""

    id = Serial(primary_key=True)
    label = Varchar(length=9, unique=True)
    starts_on = Date()
    ends_on = Date()


class Term(Table, tablename="term"):
    """A term (semester) of a year; rows with a ``tenant_id`` are a region's own calendar."""

    id = Serial(primary_key=True)
    school_year_id = Integer(index=True)
    tenant_id = Integer(null=True, default=None)
    number = Integer()
    starts_on = Date()
    ends_on = Date()


class Holiday(Table, tablename="holiday"):
    """A holiday period; national when ``tenant_id`` is NULL, else a region's."""

    id = Serial(primary_key=True)
    school_year_id = Integer(index=True)
    tenant_id = Integer(null=True, default=None)
    name_fr = Varchar(length=100)
    name_ar = Varchar(length=100, default="")
    starts_on = Date()
    ends_on = Date()


class _Scoped(Table):
    """Scope columns shared by tenant-owned school tables."""

    region_id = Integer(index=True)
    province_id = Integer()
    school_id = Integer(index=True)


class Room(_Scoped, tablename="room"):
    """A room of a school."""

    id = Serial(primary_key=True)
    name = Varchar(length=60)
    capacity = Integer(default=40)


class SchoolClass(_Scoped, tablename="school_class"):
    """A class (section) of a school for a year."""

    id = Serial(primary_key=True)
    school_year_id = Integer(index=True)
    level_code = Varchar(length=8)
    track_code = Varchar(length=12, null=True, default=None)
    name = Varchar(length=60)
    homeroom_teacher_id = Integer(null=True, default=None)
    capacity = Integer(default=45)


class Student(_Scoped, tablename="student"):
    """A pupil; the scope columns follow the pupil's current school."""

    id = Serial(primary_key=True)
    national_code = Varchar(length=10, unique=True)
    person_id = Integer(null=True, default=None, index=True)
    first_name = Varchar(length=100)
    last_name = Varchar(length=100)
    first_name_ar = Varchar(length=100, default="")
    last_name_ar = Varchar(length=100, default="")
    birth_date = Date(null=True, default=None)
    gender = Varchar(length=1, default="")
    created_at = Timestamptz()


class Guardianship(_Scoped, tablename="guardianship"):
    """A guardian (a person) of a pupil; scoped like the pupil."""

    id = Serial(primary_key=True)
    student_id = Integer(index=True)
    person_id = Integer(index=True)
    relation = Varchar(length=16, default="guardian")


class Staff(_Scoped, tablename="staff"):
    """A staff member's record at their main posting."""

    id = Serial(primary_key=True)
    person_id = Integer(unique=True)
    staff_number = Varchar(length=12, unique=True)
    grade = Varchar(length=40, default="")


class Enrolment(_Scoped, tablename="enrolment"):
    """A pupil in a class for a year; ``ends_on`` closes it (transfer, leaving)."""

    id = Serial(primary_key=True)
    student_id = Integer(index=True)
    class_id = Integer(index=True)
    school_year_id = Integer()
    starts_on = Date()
    ends_on = Date(null=True, default=None)
    status = Varchar(length=16, default="active")


class TeachingAssignment(_Scoped, tablename="teaching_assignment"):
    """A teacher teaching a subject to a class for a year."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    class_id = Integer(index=True)
    subject_code = Varchar(length=16)
    school_year_id = Integer()


class TimetableSlot(_Scoped, tablename="timetable_slot"):
    """A weekly lesson: day, times, class, subject, teacher, room, valid between two dates."""

    id = Serial(primary_key=True)
    class_id = Integer(index=True)
    subject_code = Varchar(length=16)
    teacher_id = Integer(index=True)
    room_id = Integer(null=True, default=None, index=True)
    weekday = Integer()  # ISO: 1 = Monday … 7 = Sunday
    starts_at = Time()
    ends_at = Time()
    valid_from = Date()
    valid_to = Date()


class DutySlot(_Scoped, tablename="duty_slot"):
    """A teacher's weekly duty (supervision, permanence) outside lessons."""

    id = Serial(primary_key=True)
    person_id = Integer(index=True)
    label = Varchar(length=100)
    weekday = Integer()
    starts_at = Time()
    ends_at = Time()
    valid_from = Date()
    valid_to = Date()


class CalendarFeed(Table, tablename="calendar_feed"):
    """The secret of a person's iCalendar feed (stored hashed; rotating replaces it)."""

    id = Serial(primary_key=True)
    person_id = Integer(unique=True)
    token_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    active = Boolean(default=True)


REFERENCE_TABLES: list[type[Table]] = [Level, Track, Subject, SubjectCoefficient, SchoolYear, Term, Holiday]
SCOPED_TABLES: list[type[Table]] = [
    Room,
    SchoolClass,
    Student,
    Guardianship,
    Staff,
    Enrolment,
    TeachingAssignment,
    TimetableSlot,
    DutySlot,
]
SCHOOL_TABLES: list[type[Table]] = [*REFERENCE_TABLES, *SCOPED_TABLES, CalendarFeed]
