"""Portal pages of the school structure: role home blocks, timetables, the child switcher.

Pages live under the tenant prefix like every portal page (``/t/<school>/…``):

* ``/timetable`` — the caller's week: lessons taught in every school and duties (teachers),
  their class's lessons (pupils), links to the children's weeks (parents);
* ``/children`` — a guardian's children in every school and region, each linking to its page
  under the child's own school prefix;
* ``/children/{id}`` — one child's week with a switcher to the other children;
* ``/timetable/classes`` and ``/timetable/classes/{id}`` — a school's classes and their weeks
  (directors and teachers);
* ``/guardian-invitations/{token}`` — the mailed link of a guardian invitation: the pupil named, and a
  button that accepts it (:mod:`core.school.guardians`).

A person's own lessons and children may lie in several schools (one login across regions), so
those reads use the union of the person's grants (``scope_for(…, None)``) rather than the
request's scope, which is narrowed to the tenant of the URL; every query still filters by the
person, and PostgreSQL's row-level security sees exactly that union.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from core.access import roles_at
from core.context import Ctx, RequestContext
from core.errors import Invalid
from core.i18n import gettext_
from core.permissions import PUBLIC
from core.plugins import LessonLink, LessonOfWeek
from core.rendering import page
from core.school import guardians, reads, service, timetable
from core.scope import Scope
from core.sql import in_

#: Weekday names as catalogue message ids (ISO numbering, 1 = Monday).
WEEKDAY_NAMES = ("", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DIRECTORS = frozenset({"school_director", "region_admin", "province_admin", "programme_manager", "platform_admin"})


# -- helpers -----------------------------------------------------------------------------------


async def _wide_scope(ctx: RequestContext, permission: str) -> Scope:
    """The person's scope for ``permission`` in every school they belong to (not only this tenant)."""
    return await ctx.scope_everywhere(permission)


async def _reference_day(ctx: RequestContext) -> date:
    """Today, brought inside the current school year (so the summer still shows the last timetable)."""
    today = date.today()
    try:
        year = await service.current_year(ctx.services.db, today)
    except NotFoundException:
        return today
    return min(max(today, year["starts_on"]), year["ends_on"])


def _valid(row: dict[str, Any], on: date) -> bool:
    return bool(row["valid_from"] <= on <= row["valid_to"])


def _person_name(row: dict[str, Any], locale: str) -> tuple[str, str | None]:
    """A pupil's name in the page's script when it exists, with the ``lang`` to mark it with."""
    if locale == "ar" and (row.get("first_name_ar") or row.get("last_name_ar")):
        return f"{row.get('first_name_ar') or ''} {row.get('last_name_ar') or ''}".strip(), None
    name = f"{row['first_name']} {row['last_name']}".strip()
    return name, ("fr" if locale == "ar" else None)


async def _school_titles(ctx: RequestContext, ids: set[int]) -> dict[int, str]:
    out = {}
    for school_id in sorted(ids):
        tenant = await ctx.services.tenants.by_id(school_id)
        out[school_id] = tenant.title(ctx.locale) if tenant else str(school_id)
    return out


async def _teacher_names(ctx: RequestContext, ids: set[int]) -> dict[int, str]:
    """Teachers' names in Arabic, for Arabic pages (where a person has one)."""
    if ctx.locale != "ar" or not ids:
        return {}
    rows = await ctx.services.db.fetch("SELECT id, full_name_ar FROM person WHERE id IN {}", in_(sorted(ids)))
    return {r["id"]: r["full_name_ar"] for r in rows if r["full_name_ar"]}


def _lesson(row: dict[str, Any], locale: str, schools: dict[int, str], names: dict[int, str]) -> dict[str, Any]:
    return {
        "kind": "lesson",
        "slot_id": int(row["id"]),
        "weekday": int(row["weekday"]),
        "starts": timetable.hm(row["starts_at"]),
        "ends": timetable.hm(row["ends_at"]),
        "subject": row.get(f"subject_{locale}") or row["subject_fr"],
        "subject_code": row["subject_code"],
        "class_name": row["class_name"],
        "room": row["room_name"],
        "teacher": names.get(row["teacher_id"]) or row["teacher_name"],
        "school": schools.get(row["school_id"]),
    }


def _duty(row: dict[str, Any], schools: dict[int, str]) -> dict[str, Any]:
    return {
        "kind": "duty",
        "weekday": int(row["weekday"]),
        "starts": timetable.hm(row["starts_at"]),
        "ends": timetable.hm(row["ends_at"]),
        "label": row["label"],
        "school": schools.get(row["school_id"]),
    }


def week(entries: list[dict[str, Any]], today: int | None = None) -> list[dict[str, Any]]:
    """Entries grouped by weekday (only days that have some), each day's entries by start time."""
    today = date.today().isoweekday() if today is None else today
    days = []
    for number in range(1, 8):
        items = sorted((e for e in entries if e["weekday"] == number), key=lambda e: (e["starts"], e["ends"]))
        if items:
            days.append({"number": number, "name": WEEKDAY_NAMES[number], "today": number == today, "items": items})
    return days


async def _entries(
    ctx: RequestContext, slots: list[dict[str, Any]], duties: list[dict[str, Any]], *, show_school: bool
) -> list[dict[str, Any]]:
    on = await _reference_day(ctx)
    slots = [r for r in slots if _valid(r, on)]
    duties = [r for r in duties if _valid(r, on)]
    schools = {r["school_id"] for r in slots} | {r["school_id"] for r in duties}
    titles = await _school_titles(ctx, schools) if show_school and len(schools) > 1 else {}
    names = await _teacher_names(ctx, {r["teacher_id"] for r in slots})
    return [_lesson(r, ctx.locale, titles, names) for r in slots] + [_duty(r, titles) for r in duties]


async def _add_lesson_links(ctx: RequestContext, slots: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """The links modules put on this week's lessons (``madrasa_lesson_links``: a register to take…), by slot."""
    if not slots:
        return
    today = ctx.services.clock.today()
    monday = today - timedelta(days=today.isoweekday() - 1)
    slugs = {r["school_id"]: (await ctx.services.tenants.by_id(r["school_id"])) for r in slots}
    lessons = [
        LessonOfWeek(
            slot_id=int(r["id"]),
            school_id=int(r["school_id"]),
            school_slug=slugs[r["school_id"]].slug if slugs[r["school_id"]] else "",
            on_date=monday + timedelta(days=int(r["weekday"]) - 1),
            teacher_id=r["teacher_id"],
        )
        for r in slots
    ]
    found: list[LessonLink] = await ctx.services.plugins.collect(
        "madrasa_lesson_links", ctx.disabled_modules, ctx=ctx, lessons=lessons
    )
    by_slot: dict[int, list[LessonLink]] = {}
    for link in found:
        by_slot.setdefault(link.slot_id, []).append(link)
    for entry in entries:
        if entry.get("slot_id") in by_slot:
            entry["links"] = by_slot[entry["slot_id"]]


async def _children(ctx: RequestContext, scope: Scope) -> list[dict[str, Any]]:
    """The caller's children (wherever they are) as the pages show them."""
    assert ctx.person_id is not None
    rows = await reads.children(ctx.services.db, scope, ctx.person_id)
    titles = await _school_titles(ctx, {r["school_id"] for r in rows})
    out = []
    for r in rows:
        name, lang = _person_name(r, ctx.locale)
        out.append(
            {
                "id": r["id"],
                "name": name,
                "name_lang": lang,
                "school_id": r["school_id"],
                "school_slug": r["school"],
                "school": titles[r["school_id"]],
                "class_id": r["class_id"],
                "class_name": r["class_name"],
                "url": f"/t/{r['school']}/children/{r['id']}",
            }
        )
    return out


# -- pages ---------------------------------------------------------------------------------------


@get("/timetable", opt={"permission": "timetable.view", "replica": True}, include_in_schema=False)
async def my_timetable(ctx: Ctx) -> Any:
    """The caller's week, in every school: lessons taught and duties, or (pupils) their class's lessons."""
    assert ctx.person_id is not None
    db = ctx.services.db
    scope = await _wide_scope(ctx, "timetable.view")
    family = await _wide_scope(ctx, "family.view")
    async with db.scoped(scope, write=False):
        slots = await reads.teacher_slots(db, scope, ctx.person_id)
        duties = await reads.duties(db, scope, ctx.person_id)
        entries = await _entries(ctx, slots, duties, show_school=True)
        await _add_lesson_links(ctx, slots, entries)
        me = await reads.own_student(db, scope, ctx.person_id)
        if me and me["class_id"]:
            # A pupil's lessons name their teacher (a teacher's own lessons do not).
            lessons = await _entries(ctx, await reads.class_slots(db, scope, me["class_id"]), [], show_school=True)
            entries += [{**e, "show_teacher": True} for e in lessons]
    children: list[dict[str, Any]] = []
    if family:
        async with db.scoped(family, write=False):
            children = await _children(ctx, family)
    return page(ctx, "school/timetable.html", days=week(entries), children=children, teaching=bool(duties or slots))


@get("/children", opt={"permission": "family.view", "replica": True}, include_in_schema=False)
async def my_children(ctx: Ctx) -> Any:
    """A guardian's children across all their schools and regions, each with school and class."""
    scope = await _wide_scope(ctx, "family.view")
    async with ctx.services.db.scoped(scope, write=False):
        children = await _children(ctx, scope)
    return page(ctx, "school/children.html", children=children)


@get("/children/{student_id:int}", opt={"permission": "family.view", "replica": True}, include_in_schema=False)
async def child_timetable(ctx: Ctx, student_id: FromPath[int]) -> Any:
    """One child's week with a switcher to the others (404 for anyone who is not the caller's child)."""
    db = ctx.services.db
    scope = await _wide_scope(ctx, "family.view")
    async with db.scoped(scope, write=False):
        children = await _children(ctx, scope)
        child = next((c for c in children if c["id"] == student_id), None)
        if child is None:
            raise NotFoundException("No such child.")
        tenant = ctx.require_tenant()
        if child["school_id"] != tenant.id:
            # The child's pages live under the child's school; send the guardian there.
            return Redirect(child["url"])
        slots = await reads.class_slots(db, scope, child["class_id"]) if child["class_id"] else []
        entries = await _entries(ctx, slots, [], show_school=False)
    return page(ctx, "school/child.html", child=child, children=children, days=week(entries))


@get("/timetable/classes", opt={"permission": "school.view"}, include_in_schema=False)
async def school_classes(ctx: Ctx) -> Any:
    """The school's classes this year, each linking to its week."""
    school = service.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        classes = await service.list_classes(ctx, school)
    return page(ctx, "school/classes.html", classes=classes)


async def class_page(ctx: RequestContext, class_id: int, status: int = 200, **values: Any) -> Template:
    """A class's week; for those who manage the school, its lessons with the forms that add and remove them."""
    from core.school.slot_pages import manage_view  # it renders this page again on a form error

    school = service.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        klass = await service.get_class(ctx, class_id)
        if klass["school_id"] != school.id:
            raise NotFoundException(f"No class {class_id} here.")
        slots = await reads.class_slots(db, ctx.scope, class_id)
        entries = await _entries(ctx, slots, [], show_school=False)
        manage = await manage_view(ctx, school, class_id, slots) if can_manage(ctx) else None
    return page(ctx, "school/class.html", status=status, klass=klass, days=week(entries), manage=manage, **values)


def can_manage(ctx: RequestContext) -> bool:
    """Whether the caller may change the school's structure here (``school.manage``)."""
    return bool(ctx.services.permissions.roles_for("school.manage") & ctx.roles)


@get("/timetable/classes/{class_id:int}", opt={"permission": "school.view"}, include_in_schema=False)
async def class_timetable(ctx: Ctx, class_id: FromPath[int], done: FromQuery[str | None] = None) -> Any:
    """A class's week (with the lesson forms for those who manage the school)."""
    return await class_page(ctx, class_id, done=done)


# -- accepting a guardian invitation (the mailed one-time link) ----------------------------------


class AcceptForm(msgspec.Struct):
    """The form accepting a guardian invitation."""

    csrf_token: str = ""


def _invitation_page(
    ctx: RequestContext, request: Request[Any, Any, Any], token: str, *, status: int = 200, **values: Any
) -> Template:
    from core.portal import _form_page  # core.portal imports this module

    values.setdefault("invitation", None)
    values.setdefault("accepted", None)
    template = _form_page(ctx, request, "school/guardian_invitation.html", status=status, token=token, **values)
    template.headers["referrer-policy"] = "no-referrer"  # the token is in the address
    template.headers["cache-control"] = "no-store"
    return template


def _invitation_view(ctx: RequestContext, row: dict[str, Any]) -> dict[str, Any]:
    name, lang = _person_name(row, ctx.locale)
    return {"pupil": name, "pupil_lang": lang}


@get("/guardian-invitations/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False)
async def guardian_invitation(ctx: Ctx, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The mailed link: who invites the visitor to follow which pupil, and a button to accept."""
    row = await guardians.invitation_for(ctx.services, token)
    if row is None:
        return _invitation_page(ctx, request, token, status=404)
    return _invitation_page(ctx, request, token, invitation=_invitation_view(ctx, row))


@post("/guardian-invitations/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False, status_code=200)
async def accept_guardian_invitation(
    ctx: Ctx,
    request: Request[Any, Any, Any],
    token: FromPath[str],
    data: Annotated[AcceptForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template:
    """Accept the invitation: the pupil is linked and the parent role granted (once)."""
    from core.portal import FORM_EXPIRED, _form_token_ok  # core.portal imports this module

    row = await guardians.invitation_for(ctx.services, token)
    if row is None:
        return _invitation_page(ctx, request, token, status=404)
    if not _form_token_ok(ctx, request, data.csrf_token):
        return _invitation_page(
            ctx, request, token, status=403, invitation=_invitation_view(ctx, row), error=gettext_(FORM_EXPIRED)
        )
    try:
        _, accepted = await guardians.accept(ctx.services, token)
    except Invalid:
        return _invitation_page(ctx, request, token, status=404)
    return _invitation_page(ctx, request, token, accepted=accepted)


# -- the home page's role-aware block -----------------------------------------------------------


async def home_sections(ctx: RequestContext) -> list[dict[str, Any]]:
    """Blocks for the logged-in person's home page, by the roles they hold at the tenant.

    Each dict has the fields of :class:`core.plugins.DashboardCard` — ``title`` (a catalogue
    message id, translated by the template), ``body`` (already translated), ``url`` (relative
    to the portal root, for ``ctx.url``) and ``order`` — so ``DashboardCard(**section)`` works.
    Roles are read from the grants, since the home page is public and its context has none.
    """
    if ctx.identity is None or ctx.tenant is None:
        return []
    grants = await ctx.services.grants.grants(ctx.identity.id)
    roles = roles_at(grants, ctx.tenant)
    sections = []
    if roles & {"teacher", "student"}:
        sections.append(
            {
                "title": "My timetable",
                "body": gettext_("Your lessons of the week, day by day."),
                "url": "/timetable",
                "order": 5,
            }
        )
    if "parent" in roles:
        sections.append(
            {
                "title": "My children",
                "body": gettext_("Your children's classes and timetables, in every school."),
                "url": "/children",
                "order": 6,
            }
        )
    if roles & DIRECTORS and ctx.tenant.kind == "school":
        sections.append(
            {
                "title": "Class timetables",
                "body": gettext_("The week of every class of the school."),
                "url": "/timetable/classes",
                "order": 7,
            }
        )
    return sections


SCHOOL_PORTAL_ROUTES: list[Any] = [
    my_timetable,
    my_children,
    child_timetable,
    school_classes,
    class_timetable,
    guardian_invitation,
    accept_guardian_invitation,
]
