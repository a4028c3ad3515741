"""The teacher's week of lessons, each leading to its register: ``/attendance/week?day=YYYY-MM-DD``.

The timetable of the week containing ``day`` (today by default), day by day, from the same read as the
attendance home (:func:`plugins.attendance.service.teacher_day`): each lesson of today or a past day links
to its register (past days open read-only for a teacher; corrections are the director's), later ones are
listed without a link. Links go to the previous and the next week (never past the current one).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import get
from litestar.params import FromQuery

from core.plugin_api import Ctx, Row, page, school
from plugins.attendance import service
from plugins.attendance.errors import PAGE_HANDLERS

#: Weekday names as catalogue message ids (ISO numbering, 1 = Monday), as core's timetable pages.
WEEKDAY_NAMES = ("", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@get(
    "/attendance/week",
    opt={"permission": "attendance.take"},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def week_page(ctx: Ctx, day: FromQuery[date | None] = None) -> Any:
    """The caller's lessons of a week, each with its register (today and past days)."""
    tenant = school.require_school(ctx)
    today = ctx.services.clock.today()
    anchor = min(day or today, today)
    monday = anchor - timedelta(days=anchor.weekday())
    days = []
    async with ctx.services.db.scoped(ctx.scope, write=False):
        for offset in range(7):
            on = monday + timedelta(days=offset)
            lessons = [
                Row(
                    slot_id=r["slot_id"],
                    class_name=r["class_name"],
                    subject_code=r["subject_code"],
                    time=f"{r['starts_at'].strftime('%H:%M')}–{r['ends_at'].strftime('%H:%M')}",
                    taken=r["session_id"] is not None,
                    absent=r["absent"],
                    late=r["late"],
                    url=ctx.url(f"/attendance/sessions/{r['slot_id']}/{on.isoformat()}") if on <= today else None,
                )
                for r in await service.teacher_day(ctx, tenant.id, on)
            ]
            if lessons:
                days.append(Row(date=on, name=WEEKDAY_NAMES[on.isoweekday()], today=on == today, lessons=lessons))
    following = monday + timedelta(days=7)
    return page(
        ctx,
        "attendance/week.html",
        days=days,
        monday=monday,
        sunday=monday + timedelta(days=6),
        today=today,
        previous=(monday - timedelta(days=7)).isoformat(),
        following=following.isoformat() if following <= today else None,
    )


WEEK_ROUTES: list[Any] = [week_page]
