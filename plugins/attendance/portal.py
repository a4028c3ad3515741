"""Portal pages of the attendance module (server-rendered, phone first, under ``/t/<tenant>/…``).

* ``/attendance/`` — role-aware: a teacher's lessons of the day (take attendance), a family's
  children with their absences, the director's links (review, statistics, alerts), a region's
  or province's dashboard link;
* ``/attendance/sessions/{slot}/{date}`` — THE REGISTER: every pupil present unless marked absent
  or late (with minutes), saved in one request; the director corrects a past day with a reason;
* ``/attendance/pupils/{id}`` — a child's absences and lateness with the state of their
  justification, and the form to justify absences (reason, note, document);
* ``/attendance/review`` — the director's pending justifications, accepted or rejected;
* ``/attendance/stats`` — statistics per class (school) or per school (province, region), the
  at-risk list, the CSV export (:mod:`plugins.attendance.portal_stats`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup, escape

from core.plugin_api import (
    SQL,
    Ctx,
    DashboardCard,
    NotFound,
    RequestContext,
    Row,
    gettext_,
    page,
    school,
    scope_sql,
)
from plugins.attendance import api, common, justifications, notify, service
from plugins.attendance.errors import PAGE_HANDLERS, AttendanceError, error
from plugins.attendance.notices_api import undelivered_items
from plugins.attendance.portal_stats import STATS_PAGES

#: An absence still to justify (SQL on ``m``): not justified, and no justification waiting or accepted (none, or
#: only a rejected one).
TO_JUSTIFY = SQL(
    "NOT m.justified AND (m.justification_id IS NULL OR EXISTS (SELECT 1 FROM attendance_justification tj "
    "WHERE tj.id = m.justification_id AND tj.state = 'rejected'))"
)


def pending_count(school_id: int, where: SQL) -> SQL:
    """How many of the school's justifications wait for review (``where``: the tenant filter on ``j``)."""
    return SQL(
        "SELECT COUNT(*) FROM attendance_justification j WHERE j.school_id = {} AND j.state = 'pending' AND {}",
        school_id,
        where,
    )


STATE_LABELS = {
    None: "To justify",
    "pending": "Justification sent",
    "accepted": "Justified",
    "rejected": "Justification rejected",
}


def _hm(value: Any) -> str:
    return value.strftime("%H:%M")


async def _form(request: Request[Any, Any, Any]) -> Any:
    content_type = request.content_type[0]
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    return await request.form()


def _field(form: Any, name: str) -> str:
    value = form.get(name) if form else None
    return value if isinstance(value, str) else ""


def _message(exc: HTTPException) -> str:
    if isinstance(exc, AttendanceError):
        return exc.text()
    extra = exc.extra if isinstance(exc.extra, list) else []
    if extra:
        return "; ".join(str(item.get("message", "")) for item in extra if isinstance(item, dict))
    return str(exc.detail)


# -- home --------------------------------------------------------------------------------------


@get(
    "/attendance/",
    opt={"permission": "attendance.view"},
    include_in_schema=False,
    name="attendance-home",
    exception_handlers=PAGE_HANDLERS,
)
async def home(ctx: Ctx, day: FromQuery[date | None] = None) -> Any:
    """The module's home for the caller's roles (``day``: the teacher's lessons or the director's registers of
    another day; a teacher's past registers open read-only, corrections being the director's)."""
    db = ctx.services.db
    tenant = ctx.require_tenant()
    today = ctx.services.clock.today()
    shown = min(day or today, today)
    lessons: list[dict[str, Any]] = []
    registers: list[dict[str, Any]] = []
    children: list[dict[str, Any]] = []
    pending = 0
    if "teacher" in ctx.roles and tenant.kind == "school":
        async with db.scoped(ctx.scope, write=False):
            for r in await service.teacher_day(ctx, tenant.id, shown):
                lessons.append(
                    Row(
                        slot_id=r["slot_id"],
                        class_name=r["class_name"],
                        subject_code=r["subject_code"],
                        time=f"{_hm(r['starts_at'])}–{_hm(r['ends_at'])}",
                        taken=r["session_id"] is not None,
                        absent=r["absent"],
                        late=r["late"],
                        url=ctx.url(f"/attendance/sessions/{r['slot_id']}/{shown.isoformat()}"),
                    )
                )
    if ctx.roles & {"parent", "student"}:
        scope = await api.family_scope(ctx)
        since = today - timedelta(days=30)
        async with db.scoped(scope, write=False):
            rows = await db.fetch(
                SQL(
                    "SELECT s.id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, "
                    "(SELECT COUNT(*) FROM attendance_mark m WHERE m.student_id = s.id AND m.kind = 'absent' "
                    "AND m.on_date >= {}) AS absent, (SELECT COUNT(*) FROM attendance_mark m "
                    "WHERE m.student_id = s.id AND m.kind = 'absent' AND m.on_date >= {} AND {}) AS unjustified "
                    "FROM student s "
                    "WHERE s.id IN (SELECT x.id FROM student x WHERE x.person_id = {} "
                    "UNION SELECT g.student_id FROM guardianship g WHERE g.person_id = {}) "
                    "AND {} ORDER BY s.first_name, s.id",
                    since,
                    since,
                    TO_JUSTIFY,
                    ctx.person_id,
                    ctx.person_id,
                    scope_sql(scope, "s"),
                )
            )
            notices = await api.family_notices(ctx, scope, limit=10)
        for r in rows:
            name, lang = common.person_name(r, ctx.locale)
            children.append(Row(id=r["id"], name=name, lang=lang, absent=r["absent"], unjustified=r["unjustified"]))
    else:
        notices = []
    reviewer = bool(ctx.roles & {"school_director", "supervisor"}) and tenant.kind == "school"
    if reviewer:
        async with db.scoped(ctx.scope, write=False):
            pending = int(await db.fetchval(pending_count(tenant.id, scope_sql(ctx.scope, "j"))) or 0)
    undelivered: list[Row] = []
    if "school_director" in ctx.roles and tenant.kind == "school":
        async with db.scoped(ctx.scope, write=False):
            for n in (await undelivered_items(db, ctx.scope, tenant.id))[:20]:
                name, lang = common.person_name(n, ctx.locale)
                later = n["next_attempt_at"]
                undelivered.append(
                    Row(
                        kind=n["kind"],
                        id=n["id"],
                        name=name,
                        lang=lang,
                        day=n["on_date"],
                        status=n["status"],
                        attempts=n["attempts"],
                        next=later.astimezone(ctx.services.clock.tz).strftime("%H:%M") if later else "",
                        reason=n["last_error"],
                        student_id=n["student_id"],
                    )
                )
            for r in await service.teacher_day(ctx, tenant.id, shown, whole_school=True):
                registers.append(
                    Row(
                        slot_id=r["slot_id"],
                        class_name=r["class_name"],
                        subject_code=r["subject_code"],
                        time=f"{_hm(r['starts_at'])}–{_hm(r['ends_at'])}",
                        taken=r["session_id"] is not None,
                        absent=r["absent"],
                        late=r["late"],
                        url=ctx.url(f"/attendance/sessions/{r['slot_id']}/{shown.isoformat()}"),
                    )
                )
    notice_rows = []
    for n in notices:
        name, lang = common.person_name(n, ctx.locale)
        notice_rows.append(
            Row(
                kind=n["kind"],
                name=name,
                lang=lang,
                day=n["on_date"],
                absent=n["absent"],
                late=n["late"],
                hours=round((n["minutes"] or 0) / 60, 1),
                student_id=n["student_id"],
                updated=bool(n.get("updated")),
            )
        )
    return page(
        ctx,
        "attendance/home.html",
        today=today,
        shown=shown,
        lessons=lessons,
        registers=registers,
        children=children,
        notices=notice_rows,
        undelivered=undelivered,
        pending=pending,
        reviewer=reviewer,
        director="school_director" in ctx.roles,
        admin=bool(ctx.roles & ({"school_director"} | {"region_admin", "province_admin", "platform_admin"})),
    )


# -- the register ------------------------------------------------------------------------------


def register_html(
    pupils: list[dict[str, Any]], locale: str, locked: bool, posted: dict[int, tuple[str, str]] | None
) -> Markup:
    """The register's pupils as compact HTML: per pupil a fieldset named by the pupil (legend), an "absent"
    box and the minutes late (a pupil neither ticked nor late is present).

    The register is the teacher's hot page (a class of 45 on a phone, every lesson), so its rows are built here
    with every value escaped. Each control sits in a ``<label>`` with its text, in the reader's language, so
    screen readers, translation tools and copying get it; the fieldset's legend says whose box it is.
    """
    disabled = " disabled" if locked else ""
    absent_label, late_label = escape(gettext_("Absent")), escape(gettext_("Minutes late"))
    out = []
    for p in pupils:
        sid = int(p["student_id"])
        status, minutes = p["status"], p["minutes"]
        if posted is not None:
            status, minutes = posted.get(sid, ("present", ""))
        name, lang = common.person_name(p, locale)
        lang_attr = f" lang={lang}" if lang else ""
        value = f' value="{escape(minutes)}"' if minutes else ""
        out.append(
            f"<li><fieldset{disabled}><legend{lang_attr}>{escape(name)} <bdi>{escape(p['national_code'])}</bdi>"
            f"</legend><label><input type=checkbox name=a value={sid}{' checked' if status == 'absent' else ''}> "
            f"{absent_label}</label><label>{late_label} <input name=m{sid}{value} inputmode=numeric></label>"
            "</fieldset>\n"
        )
    return Markup("".join(out))


def _render_register(
    ctx: RequestContext,
    view: dict[str, Any],
    *,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    posted: dict[int, tuple[str, str]] | None = None,
    reason: str = "",
) -> Any:
    today = ctx.services.clock.today()
    director = common.is_director(ctx)
    locked = None
    if not director and view["date"] != today:
        locked = gettext_("Attendance of another day is corrected by the director.")
    return page(
        ctx,
        "attendance/take.html",
        status=status,
        view=view,
        rows_html=register_html(view["pupils"], ctx.locale, locked is not None, posted),
        notice=notice,
        error=error,
        locked=locked,
        needs_reason=director and view["taken"] and view["date"] < today,
        reason=reason,
    )


@get(
    "/attendance/sessions/{slot_id:int}/{on_date:date}",
    opt={"permission": "attendance.take"},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def register(
    ctx: Ctx, slot_id: FromPath[int], on_date: FromPath[date], saved: FromQuery[int | None] = None
) -> Any:
    """The class register of a lesson on a day (one query: lesson, class, pupils, marks)."""
    school.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        _, view = await service.register_view(ctx, slot_id, on_date)
    return _render_register(ctx, view, notice=gettext_("Attendance saved.") if saved else None)


def read_register_form(form: Any) -> tuple[list[service.Entry], dict[int, tuple[str, str]], list[str]]:
    """The register's form (``a``: the absent pupils' ids; ``m<pupil>``: minutes late) as entries, what was
    posted per pupil, and the error codes. A pupil ticked absent is absent, whatever minutes were typed."""
    posted: dict[int, tuple[str, str]] = {}
    entries: list[service.Entry] = []
    errors: list[str] = []
    ticked = form.getall("a") if form and "a" in form else []
    for value in ticked:
        if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
            errors.append("unknown_status")
            continue
        sid = int(value)
        if sid not in posted:
            posted[sid] = ("absent", "")
            entries.append(service.Entry(student_id=sid, status="absent"))
    for key in form.keys() if form else []:
        if not key.startswith("m") or not key[1:].isdigit() or len(key) > 13:
            continue
        sid = int(key[1:])
        minutes = _field(form, key).strip()
        if not minutes or sid in posted:
            continue
        posted[sid] = ("late", minutes)
        if not minutes.isdigit() or len(minutes) > 4:
            errors.append("minutes_not_a_number")
            continue
        entries.append(service.Entry(student_id=sid, status="late", minutes=int(minutes)))
    return entries, posted, list(dict.fromkeys(errors))


@post(
    "/attendance/sessions/{slot_id:int}/{on_date:date}",
    opt={"permission": "attendance.take"},
    include_in_schema=False,
    status_code=200,
    exception_handlers=PAGE_HANDLERS,
)
async def save_register(
    ctx: Ctx, slot_id: FromPath[int], on_date: FromPath[date], request: Request[Any, Any, Any]
) -> Any:
    """Save the register: the pupils marked absent or late; everyone else present."""
    school.require_school(ctx)
    db = ctx.services.db
    form = await _form(request)
    entries, posted, codes = read_register_form(form)
    reason = _field(form, "reason")
    message = "; ".join(error(code).text() for code in codes) if codes else None
    status_code = 400
    if message is None:
        try:
            async with db.scoped(ctx.scope):
                slot = await service.get_slot(ctx, slot_id)
                taken = await service.take(ctx, slot, on_date, entries, reason)
            await notify.enqueue_delivery(ctx.services, slot, taken.notices, taken.alerts, ctx.person_id)
            await ctx.services.emit(taken.events)
            return Redirect(ctx.url(f"/attendance/sessions/{slot_id}/{on_date.isoformat()}?saved=1"), status_code=303)
        except AttendanceError as exc:
            if exc.status_code == 404:
                raise
            message, status_code = exc.text(), exc.status_code
    async with db.scoped(ctx.scope, write=False):
        _, view = await service.register_view(ctx, slot_id, on_date)
    return _render_register(ctx, view, status=status_code, error=message, posted=posted, reason=reason)


# -- a family's page ---------------------------------------------------------------------------


async def _pupil_page(
    ctx: RequestContext, student_id: int, *, status: int = 200, error: str | None = None, notice: str | None = None
) -> Any:
    db = ctx.services.db
    scope = await api.family_scope(ctx)
    async with db.scoped(scope, write=False):
        pupil = await justifications.family_pupil(ctx, scope_sql(scope, "s"), student_id)
        marks = await justifications.pupil_marks(db, student_id)
        reasons = await justifications.reasons(db, pupil["region_id"])
        filed = await db.fetch(
            SQL(
                "SELECT {} FROM attendance_justification j JOIN student st ON st.id = j.student_id "
                "WHERE j.student_id = {} AND {} ORDER BY j.id DESC",
                justifications.JUSTIFICATION_COLUMNS,
                student_id,
                scope_sql(scope, "j"),
            )
        )
    name, lang = common.person_name(pupil, ctx.locale)
    rows = []
    for m in marks:
        state = "accepted" if m["justified"] else m["justification"]
        rows.append(
            Row(
                id=m["id"],
                day=m["on_date"],
                time=f"{_hm(m['starts_at'])}–{_hm(m['ends_at'])}",
                subject=m.get(f"subject_{ctx.locale}") or m.get("subject_fr") or m["subject_code"],
                kind=m["kind"],
                minutes=m["minutes"],
                state=state,
                state_label=STATE_LABELS.get(state, state) if m["kind"] == "absent" else "",
                can_justify=m["kind"] == "absent" and state in (None, "rejected"),
            )
        )
    return page(
        ctx,
        "attendance/pupil.html",
        status=status,
        pupil=Row(id=student_id, name=name, lang=lang),
        rows=rows,
        reasons=[Row(code=r["code"], label=r.get(f"label_{ctx.locale}") or r["label_fr"]) for r in reasons],
        justifications=[
            Row(
                id=j["id"],
                state=j["state"],
                reason=j["reason_code"],
                note=j["note"],
                has_file=bool(j["file_key"]),
                review_note=j["review_note"],
            )
            for j in filed
        ],
        can_justify="parent" in ctx.roles,
        error=error,
        notice=notice,
        absent_hours=round(sum(m["minutes"] for m in marks if m["kind"] == "absent") / 60, 1),
        unjustified_hours=round(
            sum(m["minutes"] for m in marks if m["kind"] == "absent" and not m["justified"]) / 60, 1
        ),
    )


@get(
    "/attendance/pupils/{student_id:int}",
    opt={"permission": "attendance.view", "replica": True},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def pupil_page(ctx: Ctx, student_id: FromPath[int], sent: FromQuery[int | None] = None) -> Any:
    """A child's (or one's own) absences and lateness, and the justification form."""
    notice = gettext_("Your justification was sent to the school.") if sent else None
    return await _pupil_page(ctx, student_id, notice=notice)


@post(
    "/attendance/pupils/{student_id:int}/justify",
    opt={"permission": "attendance.justify"},
    include_in_schema=False,
    status_code=200,
    exception_handlers=PAGE_HANDLERS,
)
async def justify_form(ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Send a justification from the child's page (multipart: absences, reason, note, document)."""
    form = await _form(request)
    ids = [
        int(v)
        for v in (form.getall("absence") if form and "absence" in form else [])
        if isinstance(v, str) and v.isdigit()
    ]
    upload = form.get("document") if form else None
    try:
        if not ids:
            raise error("no_absence_chosen", "absences")
        attachment = await api.read_attachment(ctx, upload if isinstance(upload, UploadFile) else None)
        await api.justify(ctx, student_id, ids, _field(form, "reason"), _field(form, "note"), attachment)
    except (NotFound, NotFoundException):
        raise
    except HTTPException as exc:
        message = _message(exc)
        return await _pupil_page(ctx, student_id, status=exc.status_code, error=message)
    return Redirect(ctx.url(f"/attendance/pupils/{student_id}?sent=1"), status_code=303)


@get(
    "/attendance/justifications/{justification_id:int}/document",
    opt={"permission": "attendance.view"},
    include_in_schema=False,
)
async def document_page(ctx: Ctx, justification_id: FromPath[int]) -> Any:
    """The document of a justification (its family, the school's reviewers)."""
    return await api.document(ctx, justification_id)


# -- the director's review ---------------------------------------------------------------------


@get(
    "/attendance/review",
    opt={"permission": "attendance.review"},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def review_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """Justifications waiting for the director, with their absences and document."""
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        rows = await db.fetch(
            SQL(
                "SELECT {} FROM attendance_justification j JOIN student st ON st.id = j.student_id "
                "WHERE j.school_id = {} AND j.state = 'pending' AND {} ORDER BY j.id",
                justifications.JUSTIFICATION_COLUMNS,
                tenant.id,
                scope_sql(ctx.scope, "j"),
            )
        )
        reasons = {r["code"]: r for r in await justifications.reasons(db, tenant.region_id)}
        items = []
        for r in rows:
            name, lang = common.person_name(r, ctx.locale)
            reason = reasons.get(r["reason_code"], {})
            items.append(
                Row(
                    id=r["id"],
                    name=name,
                    lang=lang,
                    code=r["national_code"],
                    reason=reason.get(f"label_{ctx.locale}") or reason.get("label_fr") or r["reason_code"],
                    note=r["note"],
                    has_file=bool(r["file_key"]),
                    absences=[
                        Row(day=m["on_date"], time=_hm(m["starts_at"]), subject=m["subject_code"])
                        for m in await justifications.justification_marks(db, r["id"])
                    ],
                )
            )
    notice = None
    if done == "accepted":
        notice = gettext_("The justification was accepted.")
    elif done == "rejected":
        notice = gettext_("The justification was rejected.")
    return page(ctx, "attendance/review.html", items=items, notice=notice)


@post(
    "/attendance/justifications/{justification_id:int}/review",
    opt={"permission": "attendance.review"},
    include_in_schema=False,
    status_code=200,
    exception_handlers=PAGE_HANDLERS,
)
async def review_form(ctx: Ctx, justification_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Accept or reject a justification from the review page."""
    tenant = school.require_school(ctx)
    form = await _form(request)
    decision = _field(form, "decision")
    if decision not in ("accepted", "rejected"):
        raise error("bad_decision", "decision")
    db = ctx.services.db
    async with db.scoped(ctx.scope):
        row = await justifications.get_justification(db, scope_sql(ctx.scope, "j"), justification_id, tenant.id)
        await justifications.review(ctx, row, decision, _field(form, "note").strip()[:2000])
    return Redirect(ctx.url(f"/attendance/review?done={decision}"), status_code=303)


# -- contributions -----------------------------------------------------------------------------


async def dashboard_cards(ctx: RequestContext) -> list[DashboardCard]:
    """A teacher's week of registers; a director's or supervisor's pending justifications; an administrator's
    at-risk count."""
    tenant = ctx.tenant
    if tenant is None or ctx.identity is None:
        return []
    db = ctx.services.db
    cards = []
    if ctx.roles & {"school_director", "supervisor"} and tenant.kind == "school":
        scope = await ctx.scope_for("attendance.review")
        async with db.scoped(scope, write=False):
            pending = await db.fetchval(pending_count(tenant.id, scope_sql(scope, "j")))
        cards.append(
            DashboardCard(
                title="Justifications to review",
                body=gettext_("{count} waiting", count=int(pending or 0)),
                url="/attendance/review",
                order=25,
            )
        )
    if "teacher" in ctx.roles and tenant.kind == "school":
        cards.append(
            DashboardCard(
                title="My week's registers",
                body=gettext_("Each lesson of the week leads to its register."),
                url="/attendance/week",
                order=24,
            )
        )
    if ctx.roles & {"school_director", "region_admin", "province_admin"}:
        cards.append(
            DashboardCard(
                title="Attendance statistics",
                body=gettext_("Absence rates and pupils at risk"),
                url="/attendance/stats",
                order=26,
            )
        )
    return cards


async def child_overview(ctx: RequestContext, child_id: int) -> list[dict[str, Any]]:
    """A section for a guardian's child page: absences of the last 30 days and those still to justify."""
    if ctx.identity is None:
        return []
    db = ctx.services.db
    scope = await api.family_scope(ctx)
    since = ctx.services.clock.today() - timedelta(days=30)
    async with db.scoped(scope, write=False):
        try:
            await justifications.family_pupil(ctx, scope_sql(scope, "s"), child_id)
        except (NotFound, NotFoundException):
            return []
        marks = await justifications.pupil_marks(db, child_id, since)
    absent = [m for m in marks if m["kind"] == "absent"]
    to_justify = sum(1 for m in absent if m["justification"] in (None, "rejected") and not m["justified"])
    return [
        {
            "title": "Attendance",
            "body": gettext_(
                "{absent} absences and {late} late arrivals in 30 days; {todo} to justify.",
                absent=len(absent),
                late=len(marks) - len(absent),
                todo=to_justify,
            ),
            "url": f"/attendance/pupils/{child_id}",
        }
    ]


ATTENDANCE_PORTAL: list[Any] = [
    home,
    register,
    save_register,
    pupil_page,
    justify_form,
    document_page,
    review_page,
    review_form,
    *STATS_PAGES,
]
