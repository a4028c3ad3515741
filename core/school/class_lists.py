"""Class lists in the portal: the classes a teacher teaches (a director: the school's), and one class's
pupils — number, pupil code, name in Latin and Arabic letters, no photo — laid out to be printed.

* ``/classes`` — the caller's classes at this school;
* ``/classes/{id}`` — the list of a class the caller teaches or leads (directors: any class of the school);
  403 for a teacher of other classes, 404 for a class of another school.

They read through the same functions as ``/api/v1/me/classes`` and ``/api/v1/me/classes/{id}/students``.
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from core.context import Ctx, RequestContext
from core.rendering import Row, page
from core.school import reads, service
from core.school.api import _teaches

#: Who sees every class of the school rather than the classes they teach.
MANAGERS = frozenset({"school_director", "region_admin", "province_admin", "platform_admin"})


def _names(row: dict[str, Any]) -> tuple[str, str]:
    latin = f"{row['last_name'] or ''} {row['first_name'] or ''}".strip()
    arabic = f"{row['last_name_ar'] or ''} {row['first_name_ar'] or ''}".strip()
    return latin, arabic


async def _my_classes(ctx: RequestContext, school_id: int) -> list[dict[str, Any]]:
    assert ctx.person_id is not None
    if ctx.roles & MANAGERS:
        school = service.require_school(ctx)
        return [
            {**r, "homeroom": r["homeroom_teacher_id"] == ctx.person_id}
            for r in await service.list_classes(ctx, school)
        ]
    rows = await reads.teacher_classes(ctx.services.db, ctx.scope, ctx.person_id)
    return [r for r in rows if r["school_id"] == school_id]


@get("/classes", opt={"permission": "school.view"}, include_in_schema=False)
async def my_classes(ctx: Ctx) -> Any:
    """The classes the caller teaches or leads at this school (a director: every class), each with its list."""
    school = service.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        classes = await _my_classes(ctx, school.id)
    return page(ctx, "school/my_classes.html", classes=classes)


@get("/classes/{class_id:int}", opt={"permission": "school.view"}, include_in_schema=False)
async def class_list(ctx: Ctx, class_id: FromPath[int]) -> Any:
    """A class's pupils, ready to print: number, pupil code, name (no photo)."""
    school = service.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        klass = await service.get_class(ctx, class_id)
        if klass["school_id"] != school.id:
            raise NotFoundException(f"No class {class_id} here.")
        await _teaches(ctx, class_id)
        rows = await reads.class_students(db, ctx.scope, class_id)
        year = await db.fetchval("SELECT label FROM school_year WHERE id = {}", klass["school_year_id"])
    pupils = []
    for number, r in enumerate(rows, start=1):
        latin, arabic = _names(r)
        pupils.append(Row(number=number, id=r["id"], code=r["national_code"], latin=latin, arabic=arabic))
    return page(ctx, "school/class_list.html", klass=klass, pupils=pupils, year=year or "")


CLASS_LIST_ROUTES: list[Any] = [my_classes, class_list]
