"""The director's school directory in the portal: pupil search (``/school/pupils``) and the staff
(``/school/staff``: who teaches what, to which classes, in which rooms, how many hours a week).

Thin controllers over :mod:`core.school.directory`; both pages need ``school.manage`` (directors
and the school's administrators), and read only the school of the URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import FromQuery, Parameter

from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.paging import paginate
from core.rendering import Row, page
from core.school import directory, service, timetable
from core.school.portal import WEEKDAY_NAMES
from core.school.reference import SUBJECTS

_SUBJECT_COLUMN = {"ar": 1, "fr": 2, "en": 3}
TEACHER_ADDED = "The teacher joined the staff."
ASSIGNED = "The teaching assignment was added."
DUTY_ADDED = "The duty was added."
#: Notices of the staff page after a form succeeded (``?done=…``).
STAFF_NOTICES = {"teacher": TEACHER_ADDED, "assigned": ASSIGNED, "duty": DUTY_ADDED}


def _subject(row: dict[str, Any], locale: str) -> str:
    return row.get(f"subject_{locale}") or row.get("subject_fr") or row["subject_code"]


@get("/school/pupils", opt={"permission": "school.manage"}, include_in_schema=False)
async def pupil_search(
    ctx: Ctx, q: FromQuery[str | None] = None, number: Annotated[str | None, Parameter(query="page")] = None
) -> Any:
    """Search the school's pupils by name (Latin or Arabic) or Massar code."""
    school = service.require_school(ctx)
    query = (q or "").strip()[: directory.MAX_QUERY]
    rows: list[dict[str, Any]] = []
    if query:
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await directory.search_pupils(ctx, school, query)
    results = paginate([Row(r) for r in rows], number, ctx.url("/school/pupils"), {"q": query})
    return page(ctx, "school/pupil_search.html", query=query, results=results, searched=bool(query))


async def staff_view(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    """The staff page: the school's teachers and duty roster, and the forms adding to them."""
    school = service.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        year = await service.current_year(db)
        people = await directory.staff(ctx, school, year["id"])
        classes = await service.list_classes(ctx, school)
        duties = await timetable.school_duties(ctx, school)
    locale = ctx.locale
    rows = []
    for p in people:
        name = (p["full_name_ar"] if locale == "ar" and p["full_name_ar"] else None) or p["full_name"]
        subjects: dict[str, list[Row]] = {}
        for t in p["teaching"]:
            subjects.setdefault(_subject(t, locale), []).append(Row(id=t["class_id"], name=t["class_name"]))
        rows.append(
            Row(
                id=p["id"],
                name=name,
                email=p["email"],
                staff_number=p["staff_number"],
                subjects=[Row(name=s, classes=c) for s, c in subjects.items()],
                rooms=p["rooms"],
                hours=f"{p['minutes'] // 60}:{p['minutes'] % 60:02d}",
                lessons=p["lessons"],
            )
        )
    column = _SUBJECT_COLUMN.get(locale, 2)
    values.setdefault("errors", {})
    values.setdefault("values", {})
    values.setdefault("notice", None)
    values.setdefault("target", None)
    return page(
        ctx,
        "school/staff.html",
        status=status,
        staff=rows,
        class_options=[(str(c["id"]), c["name"]) for c in classes],
        teacher_options=[(str(r.id), r.name) for r in rows],
        day_options=[(str(n), gettext_(WEEKDAY_NAMES[n])) for n in range(1, 8)],
        duties=[
            Row(
                id=d["id"],
                teacher=(d["full_name_ar"] if locale == "ar" and d["full_name_ar"] else None) or d["full_name"],
                label=d["label"],
                day=gettext_(WEEKDAY_NAMES[d["weekday"]]),
                starts_at=str(d["starts_at"])[:5],
                ends_at=str(d["ends_at"])[:5],
            )
            for d in duties
        ],
        subject_options=sorted(((row[0], row[column]) for row in SUBJECTS), key=lambda kv: kv[1]),
        **values,
    )


@get("/school/staff", opt={"permission": "school.manage"}, include_in_schema=False)
async def staff_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """The school's teachers: subjects and classes, rooms, weekly hours; the forms adding to them."""
    return await staff_view(ctx, notice=STAFF_NOTICES.get(done or ""))


DIRECTORY_ROUTES: list[Any] = [pupil_search, staff_page]
