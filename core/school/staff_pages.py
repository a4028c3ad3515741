"""The director's rooms and staff in the portal (what ``/api/v1/school/rooms`` offers, with a session).

* ``/school/rooms`` — the school's rooms and the form adding one (:func:`core.school.service.create_room`,
  as the API calls it);
* ``/school/staff/teachers`` — a teacher joins the staff (:func:`core.school.service.add_teacher`);
* ``/school/staff/{id}/assignments`` — a teacher's class and subject (:func:`core.school.timetable.assign`);
* ``/school/staff/duties`` — a teacher's weekly duty (:func:`core.school.timetable.add_duty`).

Every page needs ``school.manage`` and reads only the school of the URL; the forms carry the session's
CSRF token (checked by the access middleware) and show their errors beside the fields, translated.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.errors import Conflict, Invalid, NotFound
from core.i18n import gettext_
from core.rendering import page
from core.school import service, timetable
from core.school.directory_portal import ASSIGNED, DUTY_ADDED, TEACHER_ADDED, staff_view
from core.school.manage_pages import form_text, read_form
from core.school.pupil_rows import MESSAGES
from core.school.rules import STAFF_NUMBER_RE
from core.school.slot_pages import CHOOSE_DAY, CLOCK

ROOM_CAPACITY = "A whole number from 1 to 500."
ROOM_TAKEN = "A room with this name exists."
ROOM_CREATED = "The room was added."
#: The pages' own messages (every one is in the catalogues; tests check it).
PAGE_MESSAGES = [ROOM_CAPACITY, ROOM_TAKEN, ROOM_CREATED]


async def _rooms_page(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    school = service.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        rooms = await timetable.school_rooms(ctx, school)
    values.setdefault("errors", {})
    values.setdefault("values", {"capacity": "40"})
    values.setdefault("notice", None)
    return page(ctx, "school/rooms.html", status=status, rooms=rooms, **values)


@get("/school/rooms", opt={"permission": "school.manage"}, include_in_schema=False)
async def rooms_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """The school's rooms and the form adding one."""
    return await _rooms_page(ctx, notice=ROOM_CREATED if done == "created" else None)


@post("/school/rooms", opt={"permission": "school.manage"}, include_in_schema=False)
async def create_room(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Add a room (name, capacity as the API takes them)."""
    school = service.require_school(ctx)
    form = await read_form(request)
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    raw = form.get("name") if form else None
    name = raw.strip() if isinstance(raw, str) else ""
    if not name:
        errors["name"] = (MESSAGES["required"], {})
    elif len(name) > 60:
        errors["name"] = (MESSAGES["too_long"], {"limit": 60})
    capacity_text = form_text(form, "capacity", 4) or "40"
    capacity = int(capacity_text) if capacity_text.isdigit() else 0
    if not 1 <= capacity <= 500:
        errors["capacity"] = (ROOM_CAPACITY, {})
    values = {"name": name[:60], "capacity": capacity_text}
    if not errors:
        try:
            async with ctx.services.db.scoped(ctx.scope):
                await service.create_room(ctx, school, name, capacity)
        except Conflict:
            errors["name"] = (ROOM_TAKEN, {})
    if errors:
        status = 409 if errors.get("name", ("",))[0] == ROOM_TAKEN else 400
        return await _rooms_page(ctx, status, errors=errors, values=values)
    return Redirect(ctx.url("/school/rooms?done=created"), status_code=303)


# -- staff: a teacher joins, a teaching assignment -----------------------------------------------------

STAFF_NUMBER = "A national staff number is 5 to 10 digits."
NUMBER_TAKEN = "This staff number belongs to someone else, or this person has another one."
CHOOSE_CLASS = "Choose a class of this school."
CHOOSE_SUBJECT = "Choose a subject taught at this class's level."
ALREADY_TAUGHT = "Another teacher already teaches this subject to this class."
PAGE_MESSAGES += [STAFF_NUMBER, NUMBER_TAKEN, CHOOSE_CLASS, CHOOSE_SUBJECT, ALREADY_TAUGHT]
PAGE_MESSAGES += [TEACHER_ADDED, ASSIGNED]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@post("/school/staff/teachers", opt={"permission": "school.manage"}, include_in_schema=False)
async def add_teacher(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """A teacher (new or existing identity) joins the school's staff with their national staff number."""
    school = service.require_school(ctx)
    form = await read_form(request)
    values = {name: form_text(form, name, 254) for name in ("email", "full_name", "full_name_ar", "staff_number")}
    values["locale"] = form_text(form, "locale", 2) or "fr"
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not values["email"]:
        errors["email"] = (MESSAGES["required"], {})
    elif not _EMAIL.match(values["email"]):
        errors["email"] = (MESSAGES["not_email"], {})
    for name in ("full_name", "full_name_ar"):
        if len(values[name]) > 100:
            errors[name] = (MESSAGES["too_long"], {"limit": 100})
    if not values["full_name"]:
        errors["full_name"] = (MESSAGES["required"], {})
    if not STAFF_NUMBER_RE.match(values["staff_number"]):
        errors["staff_number"] = (STAFF_NUMBER, {})
    if values["locale"] not in ("ar", "fr", "en"):
        values["locale"] = "fr"
    if not errors:
        try:
            async with ctx.services.db.scoped(ctx.scope):
                await service.add_teacher(ctx, school, **values)
        except Conflict:
            errors["staff_number"] = (NUMBER_TAKEN, {})
        except Invalid:
            errors["staff_number"] = (STAFF_NUMBER, {})
    if errors:
        status = 409 if errors.get("staff_number", ("",))[0] == NUMBER_TAKEN else 400
        return await staff_view(ctx, status, errors=errors, values=values, target="teacher")
    return Redirect(ctx.url("/school/staff?done=teacher"), status_code=303)


@post("/school/staff/{teacher_id:int}/assignments", opt={"permission": "school.manage"}, include_in_schema=False)
async def add_assignment(ctx: Ctx, teacher_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """A teacher of the school teaches a subject to a class (as the API's ``/assignments``)."""
    school = service.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        if not await service.is_teacher_at(db, teacher_id, school):
            raise NotFound("No such teacher in this school.")
    form = await read_form(request)
    class_text, subject = form_text(form, "class_id", 12), form_text(form, "subject_code", 16)
    values = {"class_id": class_text, "subject_code": subject}
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not class_text.isdigit():
        errors["class_id"] = (CHOOSE_CLASS, {})
    if not subject:
        errors["subject_code"] = (CHOOSE_SUBJECT, {})
    if not errors:
        try:
            async with db.scoped(ctx.scope):
                await timetable.assign(ctx, school, teacher_id, int(class_text), subject)
        except NotFoundException:
            errors["class_id"] = (CHOOSE_CLASS, {})
        except Invalid as exc:
            if exc.field == "subject_code":
                errors["subject_code"] = (CHOOSE_SUBJECT, {})
            else:
                errors["class_id"] = (CHOOSE_CLASS, {})
        except Conflict:
            errors["subject_code"] = (ALREADY_TAUGHT, {})
    if errors:
        status = 409 if errors.get("subject_code", ("",))[0] == ALREADY_TAUGHT else 400
        return await staff_view(ctx, status, errors=errors, values=values, target=teacher_id)
    return Redirect(ctx.url("/school/staff?done=assigned"), status_code=303)


# -- duties ----------------------------------------------------------------------------------------

CHOOSE_TEACHER = "Choose a teacher of this school."
DUTY_BUSY = "The teacher already has a duty then."
END_AFTER_START = "The duty must end after it starts."
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
PAGE_MESSAGES += [CHOOSE_TEACHER, DUTY_BUSY, END_AFTER_START, DUTY_ADDED, CHOOSE_DAY, CLOCK]


@post("/school/staff/duties", opt={"permission": "school.manage"}, include_in_schema=False)
async def add_duty(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Put a teacher on the duty roster (as the API's ``/duties``); a clash with a lesson or duty is named."""
    school = service.require_school(ctx)
    form = await read_form(request)
    values = {name: form_text(form, name, 16) for name in ("teacher_id", "weekday", "starts_at", "ends_at")}
    values["label"] = form_text(form, "label", 200)
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not values["teacher_id"].isdigit():
        errors["teacher_id"] = (CHOOSE_TEACHER, {})
    if not values["label"]:
        errors["label"] = (MESSAGES["required"], {})
    elif len(values["label"]) > 100:
        errors["label"] = (MESSAGES["too_long"], {"limit": 100})
    if values["weekday"] not in {str(n) for n in range(1, 8)}:
        errors["weekday"] = (CHOOSE_DAY, {})
    for name in ("starts_at", "ends_at"):
        if not _CLOCK.match(values[name]):
            errors[name] = (CLOCK, {})
    if not errors and values["starts_at"] >= values["ends_at"]:
        errors["ends_at"] = (END_AFTER_START, {})
    clash: tuple[str, dict[str, str]] | None = None
    if not errors:
        try:
            async with ctx.services.db.scoped(ctx.scope):
                await timetable.add_duty(
                    ctx,
                    school,
                    person_id=int(values["teacher_id"]),
                    label=values["label"],
                    weekday=int(values["weekday"]),
                    starts_at=time.fromisoformat(values["starts_at"]),
                    ends_at=time.fromisoformat(values["ends_at"]),
                )
        except Invalid as exc:
            field, message = (
                ("teacher_id", CHOOSE_TEACHER) if exc.field == "teacher_id" else ("ends_at", END_AFTER_START)
            )
            errors[field] = (message, {})
        except Conflict as exc:
            if exc.msgid in timetable.CLASH_MESSAGES:
                params = dict(exc.params)
                if "day" in params:
                    params["day"] = gettext_(params["day"])
                clash = (exc.msgid, params)
            else:
                clash = (DUTY_BUSY, {})
    if errors or clash:
        return await staff_view(ctx, 409 if clash else 400, errors=errors, values=values, target="duty", clash=clash)
    return Redirect(ctx.url("/school/staff?done=duty"), status_code=303)


STAFF_ROUTES: list[Any] = [rooms_page, create_room, add_teacher, add_assignment, add_duty]
