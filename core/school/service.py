"""School-structure services: classes, rooms, staff, pupils, guardians, enrolments and transfers.

Assignments, timetables and duties are in :mod:`core.school.timetable`; what each audience reads, in
:mod:`core.school.reads`.

Every function runs inside a transaction its caller opened with ``db.scoped(scope)``; lookups of
tenant-owned rows always carry the scope filter, so an id from another school reads as missing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar.exceptions import NotFoundException

from core import audit
from core.context import RequestContext
from core.db import Database, scope_sql
from core.errors import Conflict, Invalid, NotFound
from core.identity import normalise_email
from core.school.rules import STAFF_NUMBER_RE, normalise_pupil_code
from core.sql import SQL
from core.tenancy import SLUG_RE, TenantInfo

WEEKDAYS = ("", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _scope(ctx: RequestContext, alias: str = "") -> SQL:
    return scope_sql(ctx.scope, alias)


def _cols(school: TenantInfo) -> list[Any]:
    cols = school.scope_columns()
    return [cols["region_id"], cols["province_id"], cols["school_id"]]


def require_school(ctx: RequestContext) -> TenantInfo:
    """The request's tenant, which must be a school."""
    tenant = ctx.require_tenant()
    if tenant.kind != "school":
        raise NotFound("This works inside a school: use /t/<school>/….", code="not_a_school")
    return tenant


async def current_year(db: Database, on: date | None = None) -> dict[str, Any]:
    """The school year containing ``on`` (today), else the latest one."""
    on = on or date.today()
    row = await db.fetchrow(
        "SELECT id, label, starts_on, ends_on FROM school_year WHERE starts_on <= {} AND ends_on >= {} "
        "ORDER BY starts_on DESC LIMIT 1",
        on,
        on,
    )
    row = row or await db.fetchrow("SELECT id, label, starts_on, ends_on FROM school_year ORDER BY starts_on DESC")
    if row is None:
        raise NotFoundException("No school year is configured.")
    return row


# -- classes and rooms -----------------------------------------------------------------------


async def check_level(db: Database, level_code: str, track_code: str | None) -> None:
    """400 unless the level exists and the track applies to it."""
    if await db.fetchval("SELECT id FROM level WHERE code = {}", level_code) is None:
        raise Invalid("level_code", f"unknown level {level_code!r}")
    if track_code is not None:
        levels = await db.fetchval("SELECT levels FROM track WHERE code = {}", track_code)
        if levels is None or level_code not in levels.split(","):
            raise Invalid("track_code", f"track {track_code!r} does not exist at level {level_code}")


async def is_teacher_at(db: Database, person_id: int, school: TenantInfo) -> bool:
    """Whether a person holds a teacher membership covering the school."""
    rows = await db.fetch(
        "SELECT t.path FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {} "
        "AND m.role = 'teacher'",
        person_id,
    )
    return any(int(p) == school.id for r in rows for p in r["path"].split("/") if p)


async def explain_not_teacher(db: Database, person_id: int, school: TenantInfo) -> Invalid:
    """A clear refusal for a person who does not teach at the school."""
    row = await db.fetchrow(
        "SELECT t.path FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {} "
        "AND m.role = 'teacher' ORDER BY m.id",
        person_id,
    )
    if row is None:
        return Invalid("teacher_id", f"person {person_id} is not a teacher")
    region = int(row["path"].split("/")[1])
    if region != school.region_id:
        return Invalid("teacher_id", f"teacher {person_id} belongs to another region and cannot teach here")
    return Invalid("teacher_id", f"teacher {person_id} is not on the staff of this school")


async def create_class(
    ctx: RequestContext,
    school: TenantInfo,
    *,
    level_code: str,
    track_code: str | None,
    name: str,
    capacity: int,
    homeroom_teacher_id: int | None,
) -> int:
    """A class for the current year."""
    db = ctx.services.db
    await check_level(db, level_code, track_code)
    if homeroom_teacher_id is not None and not await is_teacher_at(db, homeroom_teacher_id, school):
        raise await explain_not_teacher(db, homeroom_teacher_id, school)
    year = await current_year(db)
    if (
        await db.fetchval(
            "SELECT id FROM school_class WHERE school_id = {} AND school_year_id = {} AND name = {}",
            school.id,
            year["id"],
            name,
        )
        is not None
    ):
        raise Conflict(f"A class named {name!r} exists this year.")
    row = await db.fetchrow(
        "INSERT INTO school_class (region_id, province_id, school_id, school_year_id, level_code, track_code, name, "
        "homeroom_teacher_id, capacity) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
        *_cols(school),
        year["id"],
        level_code,
        track_code,
        name,
        homeroom_teacher_id,
        capacity,
    )
    assert row is not None
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="class.create",
        object_type="class",
        object_id=row["id"],
        tenant=school,
        after={"name": name, "level": level_code, "track": track_code},
    )
    return int(row["id"])


async def get_class(ctx: RequestContext, class_id: int) -> dict[str, Any]:
    """A class inside the scope, or 404."""
    row = await ctx.services.db.fetchrow(
        "SELECT id, school_id, region_id, province_id, school_year_id, level_code, track_code, name, "
        "homeroom_teacher_id, capacity FROM school_class WHERE id = {} AND {}",
        class_id,
        _scope(ctx),
    )
    if row is None:
        raise NotFoundException(f"No class {class_id} here.")
    return row


async def list_classes(ctx: RequestContext, school: TenantInfo) -> list[dict[str, Any]]:
    """Classes of a school for the current year, with their head counts."""
    db = ctx.services.db
    year = await current_year(db)
    return await db.fetch(
        "SELECT c.id, c.name, c.level_code, c.track_code, c.capacity, c.homeroom_teacher_id, "
        "(SELECT COUNT(*) FROM enrolment e WHERE e.class_id = c.id AND e.ends_on IS NULL) AS students "
        "FROM school_class c WHERE c.school_id = {} AND c.school_year_id = {} AND {} ORDER BY c.name",
        school.id,
        year["id"],
        _scope(ctx, "c"),
    )


async def create_room(ctx: RequestContext, school: TenantInfo, name: str, capacity: int) -> int:
    """A room."""
    db = ctx.services.db
    if await db.fetchval("SELECT id FROM room WHERE school_id = {} AND name = {}", school.id, name) is not None:
        raise Conflict(f"A room named {name!r} exists.")
    row = await db.fetchrow(
        "INSERT INTO room (region_id, province_id, school_id, name, capacity) VALUES ({}, {}, {}, {}, {}) RETURNING id",
        *_cols(school),
        name,
        capacity,
    )
    assert row is not None
    return int(row["id"])


async def get_room(ctx: RequestContext, room_id: int) -> dict[str, Any]:
    """A room inside the scope, or 404."""
    row = await ctx.services.db.fetchrow(
        "SELECT id, school_id, name FROM room WHERE id = {} AND {}", room_id, _scope(ctx)
    )
    if row is None:
        raise NotFoundException(f"No room {room_id} here.")
    return row


async def add_teacher(
    ctx: RequestContext,
    school: TenantInfo,
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    staff_number: str,
    locale: str,
) -> int:
    """A teacher of the school: one identity, a teacher membership, and a staff record (national number)."""
    db = ctx.services.db
    if not STAFF_NUMBER_RE.match(staff_number):
        raise Invalid("staff_number", "a national staff number is 5 to 10 digits")
    email = normalise_email(email)
    person = await ensure_person(db, email, full_name, full_name_ar, locale)
    now = datetime.now(UTC)
    owner = await staff_number_owner(db, staff_number)
    if owner is not None and owner != person:
        raise Conflict(f"The staff number {staff_number} belongs to someone else.")
    if owner is None:
        if await staff_number_owner(db, None, person_id=person) is not None:
            raise Conflict(f"{email} already has another staff number.")
        await db.execute(
            "INSERT INTO staff (region_id, province_id, school_id, person_id, staff_number, grade) "
            "VALUES ({}, {}, {}, {}, {}, '')",
            *_cols(school),
            person,
            staff_number,
        )
    if (
        await db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = 'teacher' AND tenant_id = {}", person, school.id
        )
        is None
    ):
        await db.execute(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, 'teacher', {}, {})",
            person,
            school.id,
            now,
        )
    ctx.services.grants.invalidate(person)
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="teacher.add",
        object_type="person",
        object_id=person,
        tenant=school,
        after={"staff_number": staff_number},
    )
    return int(person)


async def ensure_person(db: Database, email: str, full_name: str, full_name_ar: str, locale: str) -> int:
    """The identity behind an e-mail, created (without a password) if it is new: one person, many roles."""
    person = await db.fetchval("SELECT id FROM person WHERE email = {}", email)
    if person is not None:
        return int(person)
    row = await db.fetchrow(
        "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
        "VALUES ({}, NULL, {}, {}, {}, {}, {}) RETURNING id",
        email,
        full_name,
        full_name_ar,
        locale,
        True,
        datetime.now(UTC),
    )
    assert row is not None
    return int(row["id"])


async def staff_number_owner(db: Database, staff_number: str | None, *, person_id: int | None = None) -> int | None:
    """Who holds a staff number (or whether a person has one), across all regions; ids only."""
    if db.dialect == "postgres":
        return await db.fetchval("SELECT madrasa_staff_owner({}, {})", staff_number, person_id)
    if staff_number is not None:
        return await db.fetchval("SELECT person_id FROM staff WHERE staff_number = {}", staff_number)
    return await db.fetchval("SELECT person_id FROM staff WHERE person_id = {}", person_id)


# -- pupils, guardians, enrolment -------------------------------------------------------------


async def create_student(
    ctx: RequestContext,
    school: TenantInfo,
    *,
    national_code: str,
    first_name: str,
    last_name: str,
    first_name_ar: str = "",
    last_name_ar: str = "",
    birth_date: date | None = None,
    gender: str = "",
) -> int:
    """A pupil at a school; the code is unique across the whole platform."""
    db = ctx.services.db
    try:
        code = normalise_pupil_code(national_code)
    except ValueError as exc:
        raise Invalid("national_code", str(exc)) from None
    # The unique index spans every region; the existence check must too (RLS would hide the row).
    if await code_taken(db, code):
        raise Conflict(f"The pupil code {code} is already registered (possibly in another school or region).")
    row = await db.fetchrow(
        "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
        "first_name_ar, last_name_ar, birth_date, gender, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
        *_cols(school),
        code,
        first_name,
        last_name,
        first_name_ar,
        last_name_ar,
        birth_date,
        gender,
        datetime.now(UTC),
    )
    assert row is not None
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="student.create",
        object_type="student",
        object_id=row["id"],
        tenant=school,
        after={"code": code},
    )
    return int(row["id"])


async def code_taken(db: Database, code: str) -> bool:
    """Whether a pupil code exists anywhere on the platform (answers yes/no only)."""
    if db.dialect == "postgres":
        return bool(await db.fetchval("SELECT madrasa_pupil_code_taken({})", code))
    return await db.fetchval("SELECT id FROM student WHERE national_code = {}", code) is not None


async def get_student(ctx: RequestContext, student_id: int) -> dict[str, Any]:
    """A pupil inside the scope, or 404."""
    row = await ctx.services.db.fetchrow(
        "SELECT id, national_code, first_name, last_name, first_name_ar, last_name_ar, birth_date, gender, "
        "person_id, region_id, province_id, school_id FROM student WHERE id = {} AND {}",
        student_id,
        _scope(ctx),
    )
    if row is None:
        raise NotFoundException(f"No pupil {student_id} here.")
    return row


async def add_guardian(
    ctx: RequestContext,
    student: dict[str, Any],
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    relation: str,
    locale: str,
) -> int:
    """Link a guardian (one identity across the platform) to a pupil and grant the parent role there."""
    db = ctx.services.db
    email = normalise_email(email)
    person = await ensure_person(db, email, full_name, full_name_ar, locale)
    await link_guardianship(db, student, person, relation)
    ctx.services.grants.invalidate(person)
    school = await ctx.services.tenants.by_id(student["school_id"])
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="guardian.link",
        object_type="student",
        object_id=student["id"],
        tenant=school,
        after={"guardian": person, "relation": relation},
    )
    return int(person)


async def link_guardianship(db: Database, student: dict[str, Any], person: int, relation: str) -> None:
    """Make ``person`` a guardian of ``student`` (once) and grant them the parent role at the pupil's school."""
    if (
        await db.fetchval("SELECT id FROM guardianship WHERE student_id = {} AND person_id = {}", student["id"], person)
        is None
    ):
        await db.execute(
            "INSERT INTO guardianship (region_id, province_id, school_id, student_id, person_id, relation) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            student["region_id"],
            student["province_id"],
            student["school_id"],
            student["id"],
            person,
            relation,
        )
    await grant_parent(db, person, student["school_id"])


async def grant_parent(db: Database, person_id: int, school_id: int) -> None:
    """The parent membership at a school (idempotent)."""
    if (
        await db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = 'parent' AND tenant_id = {}",
            person_id,
            school_id,
        )
        is None
    ):
        await db.execute(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, 'parent', {}, {})",
            person_id,
            school_id,
            datetime.now(UTC),
        )


async def enrol(ctx: RequestContext, student: dict[str, Any], class_id: int, on: date | None = None) -> int:
    """Put a pupil in a class of their school, closing any open enrolment the day before."""
    db = ctx.services.db
    klass = await get_class(ctx, class_id)
    if klass["school_id"] != student["school_id"]:
        raise Invalid("class_id", f"class {class_id} belongs to another school than the pupil")
    on = on or date.today()
    open_row = await db.fetchrow(
        "SELECT id, class_id FROM enrolment WHERE student_id = {} AND ends_on IS NULL", student["id"]
    )
    if open_row is not None:
        if open_row["class_id"] == class_id:
            return int(open_row["id"])
        await db.execute(
            "UPDATE enrolment SET ends_on = {}, status = 'moved' WHERE id = {}", on - timedelta(days=1), open_row["id"]
        )
    row = await db.fetchrow(
        "INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, starts_on, "
        "status) VALUES ({}, {}, {}, {}, {}, {}, {}, 'active') RETURNING id",
        klass["region_id"],
        student["province_id"],
        klass["school_id"],
        student["id"],
        class_id,
        klass["school_year_id"],
        on,
    )
    assert row is not None
    school = await ctx.services.tenants.by_id(klass["school_id"])
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="student.enrol",
        object_type="student",
        object_id=student["id"],
        tenant=school,
        after={"class": class_id},
    )
    return int(row["id"])


async def transfer(
    ctx: RequestContext, student: dict[str, Any], destination: TenantInfo, on: date | None = None
) -> None:
    """Move a pupil to another school: history stays, new data belongs to (and is seen by) the new school."""
    db = ctx.services.db
    if destination.kind != "school":
        raise Invalid("to_school", f"{destination.slug} is not a school")
    if destination.id == student["school_id"]:
        raise Invalid("to_school", "the pupil is already in that school")
    on = on or date.today()
    await db.execute(
        "UPDATE enrolment SET ends_on = {}, status = 'transferred' WHERE student_id = {} AND ends_on IS NULL",
        on - timedelta(days=1),
        student["id"],
    )
    cols = _cols(destination)
    await db.execute(
        "UPDATE student SET region_id = {}, province_id = {}, school_id = {} WHERE id = {}", *cols, student["id"]
    )
    guardians = await db.fetch("SELECT person_id FROM guardianship WHERE student_id = {}", student["id"])
    await db.execute(
        "UPDATE guardianship SET region_id = {}, province_id = {}, school_id = {} WHERE student_id = {}",
        *cols,
        student["id"],
    )
    for g in guardians:
        await grant_parent(db, g["person_id"], destination.id)
        ctx.services.grants.invalidate(g["person_id"])
    if student["person_id"]:
        await db.execute(
            "UPDATE membership SET tenant_id = {} WHERE person_id = {} AND role = 'student'",
            destination.id,
            student["person_id"],
        )
        ctx.services.grants.invalidate(student["person_id"])
    origin = await ctx.services.tenants.by_id(student["school_id"])
    for tenant in (origin, destination):
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="student.transfer",
            object_type="student",
            object_id=student["id"],
            tenant=tenant,
            before={"school": origin.slug if origin else None},
            after={"school": destination.slug},
        )


class NoSuchSchool(NotFoundException):
    """A transfer names no school of the platform."""


async def transfer_to(ctx: RequestContext, student_id: int, slug: str) -> TenantInfo:
    """Transfer a pupil of the request's scope to the school ``slug`` (:class:`NoSuchSchool` when there is none).

    The move writes rows into the destination school: the scope is widened to it, and nothing else.
    """
    if not SLUG_RE.match(slug):
        raise NoSuchSchool(f"No school {slug!r}.")
    destination = await ctx.services.tenants.by_slug(slug)
    if destination is None or destination.kind != "school":
        raise NoSuchSchool(f"No school {slug!r}.")
    widened = type(ctx.scope)(ctx.scope.nodes | {destination.id}, ctx.scope.platform)
    async with ctx.services.db.scoped(widened):
        student = await get_student(ctx, student_id)
        await transfer(ctx, student, destination)
    return destination
