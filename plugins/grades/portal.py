"""Portal pages of the grades module (server-rendered, under the tenant prefix ``/t/<school>/…``).

* ``/grades/`` — role-aware: a teacher's classes × subjects for the term (links to the sheets,
  a form to schedule the first assessment), the director's sheets by workflow state with the
  validate / publish / reopen buttons, and links to the marks for parents and pupils;
* ``/grades/sheets/{id}`` — one class × subject × term: its assessments, the class's statistics,
  a form to schedule another assessment, the workflow buttons;
* ``/grades/classes/{id}/assessments`` (POST) — schedule an assessment;
* ``/grades/assessments/{id}`` — THE GRID (:mod:`plugins.grades.portal_grid`): one row per pupil,
  a mark (``12,5`` or ``12.5``) or absent / excused; saved atomically for the class with the
  version the form was read at (a stale version re-renders the current marks and writes nothing);
* ``/grades/pupils/{id}`` — published marks of one's child (or oneself) by subject, with the
  subject averages, and the assessments to come, with a switcher between children;
* ``/grades/missing`` — the director's dashboard of marks not entered before the deadline.

Every write runs inside ``db.scoped(ctx.scope)`` through :mod:`plugins.grades.service`; marks are
parsed and formatted by :mod:`plugins.grades.marks`, a region's rules come from
:mod:`plugins.grades.policy`, terms and deadlines from :mod:`plugins.grades.terms`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, Parameter
from litestar.response import Redirect
from markupsafe import Markup, escape

from core.plugin_api import (
    Conflict,
    Ctx,
    Invalid,
    NotFound,
    RequestContext,
    Row,
    Scope,
    gettext_,
    in_,
    page,
    paginate,
    school,
    scope_sql,
)
from plugins.grades import policy, service
from plugins.grades.marks import CENT, fmt_average, fmt_number, parse_decimal, parse_mark, stats_view, subject_average
from plugins.grades.portal_common import (
    ACTIONS,
    KIND_LABELS,
    MESSAGES,
    STATE_LABELS,
    assessment_label,
    form_field,
    person_name,
    read_form,
    safe_next,
    subject_name,
    teaches_or_directs,
    wide_scope,
)
from plugins.grades.portal_family import FAMILY_ROUTES, bulletins_view, page_tag, results_view
from plugins.grades.portal_grid import GRID_ROUTES
from plugins.grades.portal_workbook import WORKBOOK_ROUTES
from plugins.grades.publication import not_modified, validator_headers
from plugins.grades.results_cache import not_modified_response
from plugins.grades.terms import pick_term, school_terms, subject_row

#: Names the pages' tests and other modules read from here.
__all__ = ["ACTIONS", "KIND_LABELS", "MESSAGES", "STATE_LABELS", "fmt_average", "fmt_number", "parse_mark"]


# -- /grades/ -------------------------------------------------------------------------------


async def _teacher_rows(ctx: RequestContext, tenant_id: int, term_id: int, year_id: int) -> list[dict[str, Any]]:
    db = ctx.services.db
    assert ctx.person_id is not None
    rows = await db.fetch(
        "SELECT ta.class_id, c.name AS class_name, ta.subject_code, sub.name_fr AS subject_fr, "
        "sub.name_ar AS subject_ar, sub.name_en AS subject_en, s.id AS sheet_id, s.state, "
        "(SELECT COUNT(*) FROM grade_assessment a WHERE a.sheet_id = s.id) AS assessments, "
        "(SELECT MIN(a.scheduled_on) FROM grade_assessment a WHERE a.sheet_id = s.id AND a.scheduled_on >= {}) "
        "AS next_on FROM teaching_assignment ta JOIN school_class c ON c.id = ta.class_id "
        "JOIN subject sub ON sub.code = ta.subject_code "
        "LEFT JOIN grade_sheet s ON s.class_id = ta.class_id AND s.subject_code = ta.subject_code AND s.term_id = {} "
        "WHERE ta.person_id = {} AND ta.school_id = {} AND c.school_year_id = {} AND {} "
        "ORDER BY c.name, ta.subject_code",
        date.today(),
        term_id,
        ctx.person_id,
        tenant_id,
        year_id,
        scope_sql(ctx.scope, "ta"),
    )
    return [
        {
            **r,
            "subject": subject_name(r, ctx.locale),
            "state_label": STATE_LABELS.get(r["state"] or "draft", "Draft"),
            "next_on": r["next_on"],
        }
        for r in rows
    ]


async def _director_sheets(ctx: RequestContext, tenant_id: int, term_id: int) -> list[dict[str, Any]]:
    db = ctx.services.db
    rows = await db.fetch(
        "SELECT s.id, s.class_id, c.name AS class_name, s.subject_code, sub.name_fr AS subject_fr, "
        "sub.name_ar AS subject_ar, sub.name_en AS subject_en, s.state, p.full_name AS teacher, "
        "p.full_name_ar AS teacher_ar, "
        "(SELECT COUNT(*) FROM grade_assessment a WHERE a.sheet_id = s.id) AS assessments "
        "FROM grade_sheet s JOIN school_class c ON c.id = s.class_id JOIN subject sub ON sub.code = s.subject_code "
        "JOIN person p ON p.id = s.teacher_id WHERE s.school_id = {} AND s.term_id = {} AND {} "
        "ORDER BY c.name, s.subject_code",
        tenant_id,
        term_id,
        scope_sql(ctx.scope, "s"),
    )
    out = []
    for r in rows:
        teacher = (r["teacher_ar"] if ctx.locale == "ar" and r["teacher_ar"] else None) or r["teacher"]
        out.append({**r, "subject": subject_name(r, ctx.locale), "teacher": teacher})
    return out


def _actions_for(state: str, director: bool, teacher: bool) -> list[dict[str, str]]:
    names: list[str] = []
    if state == "draft" and (teacher or director):
        names.append("submit")
    if director and state == "submitted":
        names += ["validate", "reopen"]
    if director and state == "validated":
        names += ["publish", "reopen"]
    return [{"name": n, "label": ACTIONS[n][0]} for n in names]


async def _family_links(ctx: RequestContext) -> list[dict[str, Any]]:
    """Links to the marks of the caller's children (every school) and of themselves."""
    scope = await wide_scope(ctx, "family.view")
    if not scope:
        return []
    async with ctx.services.db.scoped(scope, write=False):
        return await _family_members(ctx, scope)


async def _family_members(ctx: RequestContext, scope: Scope) -> list[dict[str, Any]]:
    assert ctx.person_id is not None
    rows = await service.family(ctx.services.db, scope, ctx.person_id)
    out = []
    for r in rows:
        tenant = await ctx.services.tenants.by_id(r["school_id"])
        if tenant is None:
            continue
        name, lang = person_name(r, ctx.locale)
        out.append(
            {
                "id": r["id"],
                "name": name,
                "name_lang": lang,
                "self": bool(r.get("self")),
                "school_id": r["school_id"],
                "school": tenant.title(ctx.locale),
                "class_id": r.get("class_id"),
                "class_name": r.get("class_name"),
                "url": f"/t/{tenant.slug}/grades/pupils/{r['id']}",
            }
        )
    return out


@get("/grades/", opt={"permission": "grades.view"}, include_in_schema=False, name="grades-home")
async def grades_home(ctx: Ctx, term_id: FromQuery[int | None] = None, done: FromQuery[str | None] = None) -> Any:
    """The grades home: what the caller does with marks here, by role."""
    tenant = ctx.require_tenant()
    db = ctx.services.db
    roles = ctx.roles
    teaching: list[dict[str, Any]] = []
    sheets: dict[str, list[dict[str, Any]]] = {}
    terms: list[dict[str, Any]] = []
    term: dict[str, Any] | None = None
    is_school = tenant.kind == "school"
    director = "school_director" in roles
    if is_school and roles & {"teacher", "school_director", "region_admin", "province_admin", "platform_admin"}:
        async with db.scoped(ctx.scope, write=False):
            terms = await school_terms(db, tenant.region_id)
            term = pick_term(terms, term_id, date.today())
            year = await school.current_year(db)
            if "teacher" in roles:
                teaching = await _teacher_rows(ctx, tenant.id, term["id"], year["id"])
            if service.is_director(ctx):
                for row in await _director_sheets(ctx, tenant.id, term["id"]):
                    row["actions"] = _actions_for(row["state"], director, False) if director else []
                    sheets.setdefault(row["state"], []).append(row)
    family = await _family_links(ctx) if roles & {"parent", "student"} else []
    groups = [
        {"state": s, "label": STATE_LABELS[s], "sheets": sheets[s]}
        for s in ("submitted", "validated", "draft", "published")
        if s in sheets
    ]
    return page(
        ctx,
        "grades/home.html",
        is_school=is_school,
        term=term,
        terms=terms,
        teaching=teaching,
        groups=groups,
        oversees=is_school and service.is_director(ctx),
        director=director,
        family=family,
        done=ACTIONS[done][1] if done in ACTIONS else None,
        today=date.today(),
        kinds=KIND_LABELS,
    )


# -- a sheet -------------------------------------------------------------------------------------


async def _sheet_view(ctx: RequestContext, sheet_id: int) -> dict[str, Any]:
    """Everything the sheet page shows (inside a scoped transaction)."""
    db = ctx.services.db
    sheet = await service.get_sheet(ctx, sheet_id)
    await teaches_or_directs(ctx, sheet["teacher_id"], sheet["class_id"], sheet["subject_code"])
    klass = await school.get_class(ctx, sheet["class_id"])
    subject = await subject_row(db, sheet["subject_code"])
    term = await db.fetchrow("SELECT id, number, starts_on, ends_on FROM term WHERE id = {}", sheet["term_id"])
    assessments = await db.fetch(
        "SELECT {}, "
        "(SELECT COUNT(*) FROM grade_mark m WHERE m.assessment_id = a.id "
        " AND (m.score IS NOT NULL OR m.status <> 'present')) AS entered "
        "FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id "
        "WHERE a.sheet_id = {} AND {} ORDER BY a.scheduled_on, a.id",
        service.ASSESSMENT_COLUMNS,
        sheet_id,
        scope_sql(ctx.scope, "a"),
    )
    pupils = await school.class_students(db, ctx.scope, sheet["class_id"])
    marks = []
    if assessments:
        marks = await db.fetch(
            "SELECT m.assessment_id, m.student_id, m.score, m.status FROM grade_mark m "
            "WHERE m.assessment_id IN {} AND {}",
            in_([a["id"] for a in assessments]),
            scope_sql(ctx.scope, "m"),
        )
    by_assessment = {a["id"]: a for a in assessments}
    per_pupil: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in marks:
        a = by_assessment[m["assessment_id"]]
        per_pupil[m["student_id"]].append({**m, "max_score": a["max_score"], "weight": a["weight"]})
    rule = await policy.cached(db, klass["region_id"])
    averages = [subject_average(per_pupil.get(p["id"], []), rule) for p in pupils]
    closed = await service.is_closed(db, sheet["school_id"], sheet["term_id"])
    limit = await service.deadline(db, sheet["region_id"], sheet["term_id"])
    return {
        "sheet": sheet,
        "klass": klass,
        "subject": subject_name(subject, ctx.locale),
        "term": term,
        "assessments": [
            {
                **a,
                "label": assessment_label(a),
                "kind_label": KIND_LABELS.get(a["kind"], a["kind"]),
                "max": fmt_number(a["max_score"], ctx.locale),
                "weight_shown": fmt_number(a["weight"], ctx.locale),
                "scheduled_on": a["scheduled_on"],
            }
            for a in assessments
        ],
        "pupils": len(pupils),
        "stats": stats_view(averages, ctx.locale),
        "state_label": STATE_LABELS.get(sheet["state"], sheet["state"]),
        "actions": _actions_for(sheet["state"], "school_director" in ctx.roles, sheet["teacher_id"] == ctx.person_id),
        "closed": closed,
        "deadline": limit,
    }


def _schedule_defaults(term: dict[str, Any] | None) -> dict[str, str]:
    today = date.today()
    day = today
    if term is not None:
        starts, ends = term["starts_on"], term["ends_on"]
        day = min(max(today, starts), ends)
    return {"scheduled_on": day.isoformat(), "title": "", "kind": "cc", "max_score": "20", "weight": "1"}


@get("/grades/sheets/{sheet_id:int}", opt={"permission": "grades.enter"}, include_in_schema=False)
async def sheet_page(
    ctx: Ctx, sheet_id: FromPath[int], done: FromQuery[str | None] = None, scheduled: FromQuery[int | None] = None
) -> Any:
    """A class × subject × term: assessments, statistics, scheduling and workflow."""
    school.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        view = await _sheet_view(ctx, sheet_id)
    notice = ACTIONS[done][1] if done in ACTIONS else (MESSAGES["scheduled"] if scheduled else None)
    return page(
        ctx,
        "grades/sheet.html",
        **view,
        notice=notice,
        error=None,
        form=_schedule_defaults(view["term"]),
        errors={},
        kinds=KIND_LABELS,
    )


@post(
    "/grades/sheets/{sheet_id:int}/{action:str}",
    opt={"permission": "grades.enter"},
    include_in_schema=False,
    status_code=200,
)
async def sheet_action(
    ctx: Ctx, sheet_id: FromPath[int], action: FromPath[str], request: Request[Any, Any, Any]
) -> Any:
    """Workflow buttons: submit (the teacher), validate, publish, reopen (the director)."""
    school.require_school(ctx)
    db = ctx.services.db
    if action not in ACTIONS:
        raise NotFound(f"No action {action!r}.")
    try:
        async with db.scoped(ctx.scope):
            sheet = await service.get_sheet(ctx, sheet_id)
            _, events = await service.transition(ctx, sheet, action)
    except (Conflict, service.Closed) as exc:
        async with db.scoped(ctx.scope, write=False):
            view = await _sheet_view(ctx, sheet_id)
        return page(
            ctx,
            "grades/sheet.html",
            status=exc.status_code,
            **view,
            notice=None,
            error=exc.detail,
            form=_schedule_defaults(view["term"]),
            errors={},
            kinds=KIND_LABELS,
        )
    await ctx.services.emit(events)
    form = await read_form(request)
    target = safe_next(ctx, form_field(form, "next"), f"/grades/sheets/{sheet_id}")
    separator = "&" if "?" in target else "?"
    return Redirect(f"{target}{separator}done={action}", status_code=303)


# -- scheduling ------------------------------------------------------------------------------------


def _check_schedule(form: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The schedule form → (values for the service, errors by field, the raw values to show again)."""
    raw = {
        key: form_field(form, key).strip()
        for key in ("subject_code", "term_id", "scheduled_on", "title", "kind", "max_score", "weight")
    }
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"subject_code": raw["subject_code"][:16], "title": raw["title"]}
    if not raw["subject_code"]:
        errors["subject_code"] = gettext_("Choose a subject.")
    try:
        values["term_id"] = int(raw["term_id"])
    except ValueError:
        errors["term_id"] = gettext_("Choose a term.")
    try:
        values["scheduled_on"] = date.fromisoformat(raw["scheduled_on"])
    except ValueError:
        errors["scheduled_on"] = gettext_("Give the date as YYYY-MM-DD.")
    if len(raw["title"]) > 100:
        errors["title"] = gettext_("At most {count} characters.", count=100)
    values["kind"] = raw["kind"] or "cc"
    if values["kind"] not in KIND_LABELS:
        errors["kind"] = gettext_("Choose a kind of assessment.")
    max_score = parse_decimal(raw["max_score"] or "20")
    if max_score is None or not 0 < max_score <= 100 or max_score != max_score.quantize(CENT):
        errors["max_score"] = gettext_("A number above 0 and at most 100, with at most two decimals.")
    values["max_score"] = max_score
    weight = parse_decimal(raw["weight"] or "1")
    if weight is None or not 0 < weight <= 10 or weight != weight.quantize(CENT):
        errors["weight"] = gettext_("A number above 0 and at most 10, with at most two decimals.")
    values["weight"] = weight
    return values, errors, {**raw, "kind": values["kind"], "max_score": raw["max_score"] or "20"}


@post(
    "/grades/classes/{class_id:int}/assessments",
    opt={"permission": "grades.enter"},
    include_in_schema=False,
    status_code=200,
)
async def schedule(ctx: Ctx, class_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Schedule an assessment for a class and subject (the form of the sheet and home pages)."""
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        klass = await school.get_class(ctx, class_id)
        if klass["school_id"] != tenant.id:
            raise NotFound(f"No class {class_id} here.")
    form = await read_form(request)
    values, errors, raw = _check_schedule(form)
    error = None
    status = 400
    if not errors:
        try:
            async with db.scoped(ctx.scope):
                created = await service.create_assessment(ctx, class_id=class_id, **values)
                sheet_id = await db.fetchval("SELECT sheet_id FROM grade_assessment WHERE id = {}", created)
            return Redirect(ctx.url(f"/grades/sheets/{sheet_id}?scheduled={created}"), status_code=303)
        except Invalid as exc:
            item = exc.extra[0] if isinstance(exc.extra, list) and exc.extra else {}
            errors[str(item.get("key", ""))] = str(item.get("message", exc.detail))
        except service.Closed as exc:
            error, status = exc.detail, exc.status_code
    async with db.scoped(ctx.scope, write=False):
        subject = await subject_row(db, values["subject_code"]) if values["subject_code"] else {}
        terms = await school_terms(db, tenant.region_id)
    return page(
        ctx,
        "grades/schedule.html",
        status=status,
        klass=klass,
        subject=subject_name(subject, ctx.locale) if subject else "",
        subject_code=values["subject_code"],
        terms=terms,
        term_id=values.get("term_id"),
        form=raw,
        errors=errors,
        error=error,
        kinds=KIND_LABELS,
    )


# -- a pupil's marks -------------------------------------------------------------------------------


def _day_html(value: Any) -> Markup:
    """A date as the pages show it: ``<time datetime="2026-10-12">12/10/2026</time>`` (empty for none)."""
    day = value
    if day is None:
        return Markup("")
    return Markup(f'<time datetime="{day.isoformat()}">{day.strftime("%d/%m/%Y")}</time>')


def _mark_row(r: dict[str, Any], locale: str, labels: dict[str, str]) -> str:
    """One published mark as a table row (assessment, date, mark), escaped here."""
    label = f"<bdi>{escape(assessment_label(r))}</bdi>"
    weight = fmt_number(r["weight"], locale)
    if weight != "1":
        label += f" <small>×{escape(weight)}</small>"
    status = r["status"]
    if status == "absent":
        score = f'<span class="tag">{labels["absent"]}</span>'
    elif status == "excused":
        score = f'<span class="tag excused">{labels["excused"]}</span>'
    elif r["score"] is not None:
        score = f"{escape(fmt_number(r['score'], locale))}<small>/{escape(fmt_number(r['max_score'], locale))}</small>"
    else:
        score = "—"
    return f'\n          <tr><td>{label}</td><td>{_day_html(r["scheduled_on"])}</td><td class="score">{score}</td></tr>'


@get("/grades/pupils/{student_id:int}", opt={"permission": "family.view", "replica": True}, include_in_schema=False)
async def pupil_page(ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Published marks of one's child (or oneself) by subject with the averages, and what is coming;
    ``ETag`` of the publication and of everything else the page shows (304 when the browser holds it)."""
    tenant = ctx.require_tenant()
    db = ctx.services.db
    scope = await wide_scope(ctx, "family.view")
    today = date.today()
    async with db.scoped(scope, write=False):
        people = await _family_members(ctx, scope)
        child = next((p for p in people if p["id"] == student_id), None)
        if child is None:
            raise NotFound("No such pupil.")
        if child["school_id"] != tenant.id:
            return Redirect(child["url"])  # the pupil's pages live under the pupil's school
        rule = await policy.cached(db, tenant.region_id)
        etag = await page_tag(ctx, scope, student_id, people, rule, today)
        if not_modified(request.headers, etag):
            return not_modified_response(etag)
        rows, coming = await service.pupil_marks(db, scope, student_id, child["class_id"], today)
        results = await results_view(ctx, scope, student_id)
    bulletins = bulletins_view(ctx, student_id, results)
    locale = ctx.locale
    labels = {"absent": escape(gettext_("Absent")), "excused": escape(gettext_("Excused"))}
    subjects: dict[tuple[int, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["term"] or 0, r["subject_code"])
        block = subjects.get(key)
        if block is None:
            block = subjects[key] = Row(
                term=key[0], code=r["subject_code"], name=subject_name(r, locale), marks=[], rows=[]
            )
        block["rows"].append(r)
        block["marks"].append(_mark_row(r, locale, labels))
    by_term: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(subjects):
        block = subjects[key]
        block["average"] = fmt_average(subject_average(block.pop("rows"), rule), locale)
        block["marks"] = Markup("".join(block["marks"]))
        by_term[key[0]].append(block)
    upcoming = [
        (
            _day_html(a["scheduled_on"]),
            subject_name(a, locale),
            a["title"] or gettext_(KIND_LABELS.get(a["kind"], a["kind"])),
        )
        for a in coming
    ]
    response = page(
        ctx,
        "grades/pupil.html",
        child=child,
        people=people,
        terms=[Row(number=n, subjects=by_term[n]) for n in sorted(by_term, reverse=True)],
        closed=[
            Row(number=n, results=results.get(n), bulletins=bulletins.get(n, []))
            for n in sorted(set(results) | set(bulletins), reverse=True)
        ],
        upcoming=upcoming,
        absent_rule=rule.absent_counts_as,
        excused_rule=rule.excused_counts_as,
    )
    for name, value in validator_headers(etag).items():
        response.headers[name] = value
    return response


# -- the director's dashboard ----------------------------------------------------------------------


@get("/grades/missing", opt={"permission": "grades.validate"}, include_in_schema=False)
async def missing_page(
    ctx: Ctx, term_id: FromQuery[int | None] = None, number: Annotated[str | None, Parameter(query="page")] = None
) -> Any:
    """Which teacher has not entered which marks (per class and subject), against the deadline."""
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        terms = await school_terms(db, tenant.region_id)
        term = pick_term(terms, term_id, date.today())
        rows = await service.missing_marks(ctx, tenant.id, term["id"])
        limit = await service.deadline(db, tenant.region_id, term["id"])
        teacher_ar = {}
        if ctx.locale == "ar" and rows:
            ids = in_(sorted({r["teacher_id"] for r in rows}))
            teacher_ar = {
                r["id"]: r["full_name_ar"]
                for r in await db.fetch("SELECT id, full_name_ar FROM person WHERE id IN {}", ids)
                if r["full_name_ar"]
            }
        codes = sorted({r["subject_code"] for r in rows})
        names: dict[str, dict[str, Any]] = {}
        if codes:
            names = {
                r["subject_code"]: r
                for r in await db.fetch(
                    "SELECT code AS subject_code, name_fr AS subject_fr, name_ar AS subject_ar, name_en AS subject_en "
                    "FROM subject WHERE code IN {}",
                    in_(codes),
                )
            }
    today = date.today()
    passed = limit is not None and today > limit
    out = []
    for r in rows:
        held, required, missing = int(r["assessments"]), int(r["required"]), int(r["missing"])
        complete = held >= required and missing == 0
        out.append(
            {
                **r,
                "teacher": teacher_ar.get(r["teacher_id"]) or r["teacher"],
                "subject": subject_name(names.get(r["subject_code"], r), ctx.locale),
                "assessments": held,
                "required": required,
                "missing": missing,
                "complete": complete,
                "late": passed and not complete,
                "state_label": STATE_LABELS.get(r["state"], r["state"]),
            }
        )
    out.sort(key=lambda r: (r["complete"], r["teacher"], r["class_name"], r["subject_code"]))
    paged = paginate(out, number, ctx.url("/grades/missing"), {"term_id": term["id"]})
    return page(
        ctx,
        "grades/missing.html",
        rows=paged.items,
        paged=paged,
        total=len(out),
        term=term,
        terms=terms,
        deadline=limit,
        passed=passed,
        days_left=(limit - today).days if limit is not None and not passed else None,
        incomplete=sum(1 for r in out if not r["complete"]),
    )


GRADES_PORTAL_ROUTES: list[Any] = [
    grades_home,
    sheet_page,
    sheet_action,
    schedule,
    *GRID_ROUTES,
    *WORKBOOK_ROUTES,
    pupil_page,
    *FAMILY_ROUTES,
    missing_page,
]
