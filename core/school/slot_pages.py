"""A class's lessons for the director, on the class's week page (``/timetable/classes/{id}``).

* ``POST /timetable/classes/{id}/slots`` — add a weekly lesson (day, start, end, subject, teacher, room)
  with :func:`core.school.timetable.add_slot`, as the API; a clash is shown in the page, named;
* ``POST /timetable/classes/{id}/slots/{slot}/delete`` — remove one (:func:`core.school.timetable.delete_slot`).

Both need ``school.manage``; the page itself (:func:`core.school.portal.class_page`) shows the forms only
to those who hold it.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any

from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.errors import Conflict, Invalid
from core.i18n import gettext_
from core.school import reads, service, timetable
from core.school.manage_pages import form_text, read_form
from core.school.portal import WEEKDAY_NAMES, class_page
from core.tenancy import TenantInfo

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
CHOOSE_DAY = "Choose a day."
CLOCK = "A time as HH:MM."
CHOOSE_SUBJECT = "Choose a subject taught to this class."
NOT_ASSIGNED = "This teacher does not teach this subject to this class."
CHOOSE_ROOM = "Choose a room of this school."
END_AFTER_START = "The lesson must end after it starts."
NOTICES = {"added": "The lesson was added.", "removed": "The lesson was removed."}
PAGE_MESSAGES = [CHOOSE_DAY, CLOCK, CHOOSE_SUBJECT, NOT_ASSIGNED, CHOOSE_ROOM, END_AFTER_START, *NOTICES.values()]


def _subject(row: dict[str, Any], locale: str) -> str:
    return str(row.get(f"subject_{locale}") or row.get("subject_fr") or row["subject_code"])


async def manage_view(
    ctx: RequestContext, school: TenantInfo, class_id: int, slots: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the lesson forms need: the class's lessons, its subjects and teachers, the school's rooms, the days."""
    assignments = await timetable.class_assignments(ctx, class_id)
    rooms = await timetable.school_rooms(ctx, school)
    locale = ctx.locale
    subjects = {a["subject_code"]: _subject(a, locale) for a in assignments}
    teachers = {
        a["teacher_id"]: (a["teacher_name_ar"] if locale == "ar" and a["teacher_name_ar"] else a["teacher_name"])
        for a in assignments
    }
    lessons = [
        {
            "id": s["id"],
            "day": WEEKDAY_NAMES[int(s["weekday"])],
            "weekday": int(s["weekday"]),
            "starts": timetable.hm(s["starts_at"]),
            "ends": timetable.hm(s["ends_at"]),
            "subject": _subject(s, locale),
            "teacher": teachers.get(s["teacher_id"], s["teacher_name"]),
            "room": s["room_name"],
        }
        for s in slots
    ]
    return {
        "lessons": lessons,
        "subjects": sorted(subjects.items(), key=lambda kv: kv[1]),
        "teachers": sorted(((str(k), v) for k, v in teachers.items()), key=lambda kv: kv[1]),
        "rooms": [(str(r["id"]), r["name"]) for r in rooms],
        "days": [(str(n), gettext_(WEEKDAY_NAMES[n])) for n in range(1, 8)],
    }


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 10 else None


@post("/timetable/classes/{class_id:int}/slots", opt={"permission": "school.manage"}, include_in_schema=False)
async def add_lesson(ctx: Ctx, class_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Add a weekly lesson to the class; errors beside the fields, a clash named above the form."""
    school = service.require_school(ctx)
    form = await read_form(request)
    fields = ("weekday", "starts_at", "ends_at", "subject_code", "teacher_id", "room_id")
    values = {name: form_text(form, name, 16) for name in fields}
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    weekday = _number(values["weekday"])
    if weekday is None or not 1 <= weekday <= 7:
        errors["weekday"] = (CHOOSE_DAY, {})
    for name in ("starts_at", "ends_at"):
        if not _CLOCK.match(values[name]):
            errors[name] = (CLOCK, {})
    if not values["subject_code"]:
        errors["subject_code"] = (CHOOSE_SUBJECT, {})
    teacher_id = _number(values["teacher_id"])
    if teacher_id is None:
        errors["teacher_id"] = (NOT_ASSIGNED, {})
    room_id = _number(values["room_id"]) if values["room_id"] else None
    if values["room_id"] and room_id is None:
        errors["room_id"] = (CHOOSE_ROOM, {})
    clash: tuple[str, dict[str, str]] | None = None
    if not errors:
        assert weekday is not None and teacher_id is not None
        try:
            async with ctx.services.db.scoped(ctx.scope):
                await timetable.add_slot(
                    ctx,
                    school,
                    class_id=class_id,
                    subject_code=values["subject_code"],
                    teacher_id=teacher_id,
                    room_id=room_id,
                    weekday=weekday,
                    starts_at=time.fromisoformat(values["starts_at"]),
                    ends_at=time.fromisoformat(values["ends_at"]),
                    valid_from=None,
                    valid_to=None,
                )
        except Invalid as exc:
            if exc.field == "class_id":
                raise NotFoundException(f"No class {class_id} here.") from None
            field, message = {
                "room_id": ("room_id", CHOOSE_ROOM),
                "teacher_id": ("teacher_id", NOT_ASSIGNED),
            }.get(exc.field or "", ("ends_at", END_AFTER_START))
            errors[field] = (message, {})
        except NotFoundException:
            if room_id is None:
                raise  # the class is not the school's
            errors["room_id"] = (CHOOSE_ROOM, {})
        except Conflict as exc:
            clash = (exc.msgid, {**exc.params, "day": gettext_(exc.params.get("day", ""))})
    if errors or clash:
        return await class_page(ctx, class_id, 409 if clash else 400, errors=errors, values=values, clash=clash)
    return Redirect(ctx.url(f"/timetable/classes/{class_id}?done=added"), status_code=303)


@post(
    "/timetable/classes/{class_id:int}/slots/{slot_id:int}/delete",
    opt={"permission": "school.manage"},
    include_in_schema=False,
)
async def remove_lesson(ctx: Ctx, class_id: FromPath[int], slot_id: FromPath[int]) -> Any:
    """Remove one of the class's lessons (404 for a lesson of another class or school)."""
    school = service.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope):
        klass = await service.get_class(ctx, class_id)
        lessons = await reads.class_slots(ctx.services.db, ctx.scope, class_id)
        if klass["school_id"] != school.id or not any(s["id"] == slot_id for s in lessons):
            raise NotFoundException(f"No lesson {slot_id} in this class.")
        await timetable.delete_slot(ctx, school, slot_id)
    return Redirect(ctx.url(f"/timetable/classes/{class_id}?done=removed"), status_code=303)


SLOT_ROUTES: list[Any] = [add_lesson, remove_lesson]
