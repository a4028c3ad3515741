"""School API: directors manage structure; teachers, parents and pupils read what concerns them."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from core.context import Ctx, RequestContext
from core.permissions import PUBLIC
from core.school import guardians, reads, service, timetable
from core.school.calendar import CALENDAR_ROUTES

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
#: A time of day as ``HH:MM`` (seconds optional).
ClockTime = Annotated[
    str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$", examples=["08:00", "10:30"])
]


class ClassIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new class."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    level_code: Annotated[str, msgspec.Meta(max_length=8)]
    track_code: Annotated[str, msgspec.Meta(max_length=12)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=1, le=60)] = 45
    homeroom_teacher_id: int | None = None


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new room."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=60)]
    capacity: Annotated[int, msgspec.Meta(ge=1, le=500)] = 40


class StudentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new pupil, optionally enrolled at once."""

    national_code: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]
    first_name: Name
    last_name: Name
    first_name_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""
    last_name_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""
    birth_date: date | None = None
    gender: Literal["", "F", "M"] = ""
    class_id: int | None = None


class GuardianIn(msgspec.Struct, forbid_unknown_fields=True):
    """A guardian to link to a pupil (created if the e-mail is new)."""

    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    full_name: Name
    full_name_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""
    relation: Literal["mother", "father", "guardian"] = "guardian"
    locale: Literal["ar", "fr", "en"] = "ar"


class TeacherIn(msgspec.Struct, forbid_unknown_fields=True):
    """A teacher joining the school's staff."""

    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    full_name: Name
    staff_number: Annotated[str, msgspec.Meta(min_length=1, max_length=12)]
    full_name_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""
    locale: Literal["ar", "fr", "en"] = "fr"


class EnrolIn(msgspec.Struct, forbid_unknown_fields=True):
    """Move a pupil into a class of their school."""

    class_id: int


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    """Transfer a pupil to another school."""

    to_school: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]


class AssignmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A teacher for a subject in a class."""

    teacher_id: int
    class_id: int
    subject_code: Annotated[str, msgspec.Meta(max_length=16)]


class SlotIn(msgspec.Struct, forbid_unknown_fields=True):
    """A weekly lesson."""

    class_id: int
    subject_code: Annotated[str, msgspec.Meta(max_length=16)]
    teacher_id: int
    weekday: Annotated[int, msgspec.Meta(ge=1, le=7)]
    starts_at: ClockTime
    ends_at: ClockTime
    room_id: int | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class DutyIn(msgspec.Struct, forbid_unknown_fields=True):
    """A weekly duty (supervision, permanence)."""

    teacher_id: int
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    weekday: Annotated[int, msgspec.Meta(ge=1, le=7)]
    starts_at: ClockTime
    ends_at: ClockTime


class DutyOut(msgspec.Struct):
    """A duty on the roster."""

    id: int
    label: str
    weekday: int
    starts_at: str
    ends_at: str
    school_id: int


class Created(msgspec.Struct):
    """The id of what was created."""

    id: int


class ClassOut(msgspec.Struct):
    """A class."""

    id: int
    name: str
    level_code: str
    track_code: str | None
    school: str | None = None
    students: int | None = None
    homeroom: bool | None = None


class StudentOut(msgspec.Struct):
    """A pupil as lists show them."""

    id: int
    national_code: str
    first_name: str
    last_name: str
    first_name_ar: str
    last_name_ar: str


class SlotOut(msgspec.Struct):
    """A weekly lesson as timetables show it."""

    id: int
    weekday: int
    starts_at: str
    ends_at: str
    subject_code: str
    subject: str
    class_id: int
    class_name: str
    room: str | None
    teacher_id: int
    teacher: str
    school_id: int
    valid_from: date
    valid_to: date


class ChildOut(msgspec.Struct):
    """A guardian's child."""

    id: int
    national_code: str
    first_name: str
    last_name: str
    first_name_ar: str
    last_name_ar: str
    school: str
    school_name: str
    class_id: int | None
    class_name: str | None
    #: The region of the child's school (a family may have children in several regions).
    region: str = ""
    region_name: str = ""


def slot_out(row: dict[str, Any], locale: str) -> SlotOut:
    """A slot row for the API."""
    subject = row.get(f"subject_{locale}") or row["subject_fr"]
    return SlotOut(
        row["id"],
        row["weekday"],
        timetable.hm(row["starts_at"]),
        timetable.hm(row["ends_at"]),
        row["subject_code"],
        subject,
        row["class_id"],
        row["class_name"],
        row["room_name"],
        row["teacher_id"],
        row["teacher_name"],
        row["school_id"],
        row["valid_from"],
        row["valid_to"],
    )


class SchoolController(Controller):
    """``/api/v1/school``: a director's management of the request's school."""

    path = "/api/v1/school"
    tags = ["school"]

    @get("/classes", opt={"permission": "school.view"})
    async def classes(self, ctx: Ctx) -> list[ClassOut]:
        """Classes of the school this year with head counts."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await service.list_classes(ctx, school)
        return [
            ClassOut(r["id"], r["name"], r["level_code"], r["track_code"], school.slug, int(r["students"]))
            for r in rows
        ]

    @post("/classes", opt={"permission": "school.manage"}, status_code=201)
    async def create_class(self, ctx: Ctx, data: JSONBody[ClassIn]) -> Created:
        """Open a class for the current year."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(
                await service.create_class(
                    ctx,
                    school,
                    level_code=data.level_code,
                    track_code=data.track_code,
                    name=data.name,
                    capacity=data.capacity,
                    homeroom_teacher_id=data.homeroom_teacher_id,
                )
            )

    @post("/rooms", opt={"permission": "school.manage"}, status_code=201)
    async def create_room(self, ctx: Ctx, data: JSONBody[RoomIn]) -> Created:
        """Add a room."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(await service.create_room(ctx, school, data.name, data.capacity))

    @post("/students", opt={"permission": "school.manage"}, status_code=201)
    async def create_student(self, ctx: Ctx, data: JSONBody[StudentIn]) -> Created:
        """Register a pupil (and enrol them when ``class_id`` is given); all or nothing."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            student_id = await service.create_student(
                ctx,
                school,
                national_code=data.national_code,
                first_name=data.first_name,
                last_name=data.last_name,
                first_name_ar=data.first_name_ar,
                last_name_ar=data.last_name_ar,
                birth_date=data.birth_date,
                gender=data.gender,
            )
            if data.class_id is not None:
                await service.enrol(ctx, await service.get_student(ctx, student_id), data.class_id)
        return Created(student_id)

    @post(
        "/students/{student_id:int}/guardians",
        opt={"permission": "school.manage"},
        status_code=201,
        responses={
            202: ResponseSpec(
                guardians.GuardianLink, description="Someone outside the school's reach: an invitation was mailed."
            )
        },
    )
    async def add_guardian(
        self, ctx: Ctx, student_id: FromPath[int], data: JSONBody[GuardianIn]
    ) -> Response[guardians.GuardianLink]:
        """Link a guardian to a pupil.

        Someone already within the school's reach (a member of the school, or a guardian of one of its pupils)
        is linked at once: 201 ``{"status": "linked", "id": <person>}``. Anyone else — an address with no account
        or an account elsewhere, indistinguishably — is mailed a one-time invitation: 202
        ``{"status": "invited", "id": null, "invitation_id": …}``; the link and the parent role come when they
        accept it.
        """
        service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            student = await service.get_student(ctx, student_id)
            result, pending = await guardians.link(
                ctx,
                student,
                email=data.email,
                full_name=data.full_name,
                full_name_ar=data.full_name_ar,
                relation=data.relation,
                locale=data.locale,
            )
        if pending is not None:
            await guardians.send(ctx.services, pending)
        return Response(result, status_code=201 if result.status == "linked" else 202)

    @post("/students/{student_id:int}/enrolment", opt={"permission": "school.manage"}, status_code=200)
    async def enrol(self, ctx: Ctx, student_id: FromPath[int], data: JSONBody[EnrolIn]) -> Created:
        """Put a pupil in a class of the school."""
        service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            student = await service.get_student(ctx, student_id)
            return Created(await service.enrol(ctx, student, data.class_id))

    @post("/students/{student_id:int}/transfer", opt={"permission": "school.manage"}, status_code=200)
    async def transfer(self, ctx: Ctx, student_id: FromPath[int], data: JSONBody[TransferIn]) -> dict[str, str]:
        """Transfer a pupil to another school; their record follows, the old school keeps the history."""
        service.require_school(ctx)
        destination = await service.transfer_to(ctx, student_id, data.to_school)
        return {"student": str(student_id), "school": destination.slug}

    @post("/teachers", opt={"permission": "school.manage"}, status_code=201)
    async def add_teacher(self, ctx: Ctx, data: JSONBody[TeacherIn]) -> Created:
        """Add a teacher (a new or existing identity) to the school's staff with their national staff number."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(
                await service.add_teacher(
                    ctx,
                    school,
                    email=data.email,
                    full_name=data.full_name,
                    full_name_ar=data.full_name_ar,
                    staff_number=data.staff_number,
                    locale=data.locale,
                )
            )

    @post("/assignments", opt={"permission": "school.manage"}, status_code=201)
    async def assign(self, ctx: Ctx, data: JSONBody[AssignmentIn]) -> Created:
        """A teacher of the school teaches a subject to a class."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(await timetable.assign(ctx, school, data.teacher_id, data.class_id, data.subject_code))

    @post("/timetable", opt={"permission": "school.manage"}, status_code=201)
    async def add_slot(self, ctx: Ctx, data: JSONBody[SlotIn]) -> Created:
        """Add a weekly lesson; a double-booked teacher, room or class is refused with the clash named."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(
                await timetable.add_slot(
                    ctx,
                    school,
                    class_id=data.class_id,
                    subject_code=data.subject_code,
                    teacher_id=data.teacher_id,
                    room_id=data.room_id,
                    weekday=data.weekday,
                    starts_at=time.fromisoformat(data.starts_at),
                    ends_at=time.fromisoformat(data.ends_at),
                    valid_from=data.valid_from,
                    valid_to=data.valid_to,
                )
            )

    @post("/duties", opt={"permission": "school.manage"}, status_code=201)
    async def add_duty(self, ctx: Ctx, data: JSONBody[DutyIn]) -> Created:
        """Put a teacher on the duty roster; refused when it overlaps their lessons or duties."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(
                await timetable.add_duty(
                    ctx,
                    school,
                    person_id=data.teacher_id,
                    label=data.label,
                    weekday=data.weekday,
                    starts_at=time.fromisoformat(data.starts_at),
                    ends_at=time.fromisoformat(data.ends_at),
                )
            )

    @delete("/timetable/{slot_id:int}", opt={"permission": "school.manage"}, status_code=204)
    async def delete_slot(self, ctx: Ctx, slot_id: FromPath[int]) -> None:
        """Remove a weekly lesson."""
        school = service.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            await timetable.delete_slot(ctx, school, slot_id)

    @get("/classes/{class_id:int}/timetable", opt={"permission": "school.view"})
    async def class_timetable(self, ctx: Ctx, class_id: FromPath[int]) -> list[SlotOut]:
        """A class's week."""
        async with ctx.services.db.scoped(ctx.scope, write=False):
            await service.get_class(ctx, class_id)
            rows = await reads.class_slots(ctx.services.db, ctx.scope, class_id)
        return [slot_out(r, ctx.locale) for r in rows]


async def _teaches(ctx: RequestContext, class_id: int) -> None:
    """403 unless the caller teaches or leads the class (directors and admins pass)."""
    if ctx.roles & {"school_director", "region_admin", "province_admin", "platform_admin"}:
        return
    assert ctx.person_id is not None
    rows = await reads.teacher_classes(ctx.services.db, ctx.scope, ctx.person_id)
    if not any(r["id"] == class_id for r in rows):
        raise PermissionDeniedException("You do not teach this class.")


class MeController(Controller):
    """``/api/v1/me``: what concerns the caller as teacher, guardian or pupil, in every school."""

    path = "/api/v1/me"
    tags = ["me"]

    @get("/classes", opt={"permission": "school.view"})
    async def my_classes(self, ctx: Ctx) -> list[ClassOut]:
        """Classes the caller teaches or leads this year."""
        assert ctx.person_id is not None
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await reads.teacher_classes(ctx.services.db, ctx.scope, ctx.person_id)
        return [
            ClassOut(r["id"], r["name"], r["level_code"], r["track_code"], r["school"], None, bool(r["homeroom"]))
            for r in rows
        ]

    @get("/classes/{class_id:int}/students", opt={"permission": "school.view"})
    async def class_students(self, ctx: Ctx, class_id: FromPath[int]) -> list[StudentOut]:
        """The pupils of a class the caller teaches."""
        async with ctx.services.db.scoped(ctx.scope, write=False):
            await service.get_class(ctx, class_id)
            await _teaches(ctx, class_id)
            rows = await reads.class_students(ctx.services.db, ctx.scope, class_id)
        return [
            StudentOut(
                r["id"], r["national_code"], r["first_name"], r["last_name"], r["first_name_ar"], r["last_name_ar"]
            )
            for r in rows
        ]

    @get("/timetable", opt={"permission": "timetable.view", "replica": True})
    async def my_timetable(self, ctx: Ctx) -> list[SlotOut]:
        """The caller's week: lessons taught, or (pupils) their class's lessons."""
        assert ctx.person_id is not None
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            rows = await reads.teacher_slots(db, ctx.scope, ctx.person_id)
            if "student" in ctx.roles:
                me = await reads.own_student(db, ctx.scope, ctx.person_id)
                if me and me["class_id"]:
                    rows += await reads.class_slots(db, ctx.scope, me["class_id"])
        return [slot_out(r, ctx.locale) for r in rows]

    @get("/duties", opt={"permission": "school.view"})
    async def my_duties(self, ctx: Ctx) -> list[DutyOut]:
        """The caller's duty roster in every school."""
        assert ctx.person_id is not None
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await reads.duties(ctx.services.db, ctx.scope, ctx.person_id)
        return [
            DutyOut(
                r["id"],
                r["label"],
                r["weekday"],
                timetable.hm(r["starts_at"]),
                timetable.hm(r["ends_at"]),
                r["school_id"],
            )
            for r in rows
        ]

    @get("/children", opt={"permission": "family.view", "replica": True})
    async def my_children(self, ctx: Ctx) -> list[ChildOut]:
        """The caller's children, across schools and regions, whatever tenant the token or address names."""
        assert ctx.person_id is not None
        scope = await ctx.scope_everywhere("family.view")
        async with ctx.services.db.scoped(scope, write=False):
            rows = await reads.children(ctx.services.db, scope, ctx.person_id)
        return [child_out(r, ctx.locale) for r in rows]

    @get("/children/{student_id:int}/timetable", opt={"permission": "family.view", "replica": True})
    async def child_timetable(self, ctx: Ctx, student_id: FromPath[int]) -> list[SlotOut]:
        """One child's week (404 for anyone who is not the caller's child)."""
        assert ctx.person_id is not None
        db = ctx.services.db
        scope = await ctx.scope_everywhere("family.view")
        async with db.scoped(scope, write=False):
            child = next((c for c in await reads.children(db, scope, ctx.person_id) if c["id"] == student_id), None)
            if child is None:
                raise NotFoundException("No such child.")
            rows = await reads.class_slots(db, scope, child["class_id"]) if child["class_id"] else []
        return [slot_out(r, ctx.locale) for r in rows]


def child_out(row: dict[str, Any], locale: str) -> ChildOut:
    """A child row for the API."""
    school_name = row["school_ar"] if locale == "ar" and row["school_ar"] else row["school_fr"]
    return ChildOut(
        row["id"],
        row["national_code"],
        row["first_name"],
        row["last_name"],
        row["first_name_ar"],
        row["last_name_ar"],
        row["school"],
        school_name,
        row["class_id"],
        row["class_name"],
        row["region"],
        row["region_ar"] if locale == "ar" and row["region_ar"] else row["region_fr"],
    )


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True):
    """The one-time token of a guardian invitation (from the mailed link)."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


@post("/api/v1/guardian-invitations/accept", opt={"permission": PUBLIC}, tags=["school"], status_code=200)
async def accept_guardian_invitation(ctx: Ctx, data: JSONBody[InvitationIn]) -> guardians.Accepted:
    """Accept a guardian invitation with its mailed token: the pupil is linked and the parent role granted at their
    school (once; a used, expired or unknown token answers 400). ``password_set`` false: choose one with the
    password-reset link."""
    _, accepted = await guardians.accept(ctx.services, data.token)
    return accepted


SCHOOL_ROUTES = [SchoolController, MeController, accept_guardian_invitation, *CALENDAR_ROUTES]
