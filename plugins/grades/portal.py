"""Portal pages of the grades module (server-rendered, under the tenant prefix ``/t/<school>/…``).

* ``/grades/`` — role-aware: a teacher's classes × subjects for the term (links to the sheets,
  a form to schedule the first assessment), the director's sheets by workflow state with the
  validate / publish / reopen buttons, and links to the marks for parents and pupils;
* ``/grades/sheets/{id}`` — one class × subject × term: its assessments, the class's statistics,
  a form to schedule another assessment, the workflow buttons;
* ``/grades/classes/{id}/assessments`` (POST) — schedule an assessment;
* ``/grades/assessments/{id}`` — THE GRID: one row per pupil, a mark (``12,5`` or ``12.5``) or
  absent / excused; saved atomically for the class with the version the form was read at
  (a stale version re-renders the current marks and writes nothing);
* ``/grades/pupils/{id}`` — published marks of one's child (or oneself) by subject, with the
  subject averages, and the assessments to come, with a switcher between children;
* ``/grades/missing`` — the director's dashboard of marks not entered before the deadline.

Every write runs inside ``db.scoped(ctx.scope)`` through :mod:`plugins.grades.service`.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup, escape

from core.access import scope_for
from core.context import Ctx, RequestContext
from core.db import Database, in_list, scope_filter
from core.i18n import gettext_, locale_var
from core.rendering import Row, page
from core.school import service as school
from core.school.service import Conflict, Invalid
from core.scope import Scope
from plugins.grades import calc, service

STATE_LABELS = {"draft": "Draft", "submitted": "Submitted", "validated": "Validated", "published": "Published"}
KIND_LABELS = {"cc": "Continuous assessment", "exam": "Exam", "activity": "Activity"}
#: Workflow buttons: action → (label, confirmation shown after it).
ACTIONS = {
    "submit": ("Submit for validation", "The marks were submitted for validation."),
    "validate": ("Validate", "The marks were validated."),
    "publish": ("Publish", "The marks were published to pupils and parents."),
    "reopen": ("Reopen", "The marks were reopened for entry."),
}
#: Longer messages of the grid (catalogue message ids).
MESSAGES = {
    "stale": "Someone else saved these marks while you were typing. Nothing of yours was saved: "
    "here are the marks saved now. Check them, enter yours again and save.",
    "scheduled": "The assessment was scheduled.",
}
#: What a mark field may hold instead of a number (lower case): absent, excused.
ABSENT_WORDS = frozenset({"a", "abs", "abs.", "absent", "absente", "غ", "غائب", "غائبة"})
EXCUSED_WORDS = frozenset({"e", "exc", "exc.", "excused", "excusé", "excusée", "excuse", "م", "معذور", "معذورة"})
STATUSES = ("present", "absent", "excused")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
CENT = Decimal("0.01")


# -- small helpers -----------------------------------------------------------------------------


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def fmt_number(value: Any, locale: str, places: int | None = None) -> str:
    """A mark as people write it: ``12,5`` in French, ``12.5`` otherwise; ``""`` for none.

    Without ``places`` trailing zeros go (``20``, ``12,5``); with it, exactly that many decimals.
    """
    number = _dec(value)
    if number is None:
        return ""
    if places is None:
        text = f"{number.quantize(CENT):f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    else:
        text = f"{number.quantize(Decimal(1).scaleb(-places)):f}"
    return text.replace(".", ",") if locale == "fr" else text


def fmt_average(value: float | None, locale: str) -> str:
    """An average (/20) rounded half up to two decimals for display; ``""`` for none."""
    shown = calc.for_display(value)
    return "" if shown is None else fmt_number(shown, locale, places=2)


def parse_decimal(raw: str) -> Decimal | None:
    """``12,5``, ``12.5``, ``١٢٫٥`` → ``Decimal('12.5')``; ``None`` when it is not a number."""
    text = raw.strip().replace(" ", "").replace("\u00a0", "").translate(ARABIC_DIGITS)
    text = text.replace("٫", ".").replace(",", ".")
    if not NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_mark(raw: str, chosen: str, max_score: Decimal) -> tuple[service.MarkEntry | None, str | None]:
    """One pupil's fields (the typed text and the chosen status) → an entry, or a translated error.

    What is typed wins: a number is a mark (present), ``A``/``abs`` absent, ``E``/``exc``
    excused; an empty field takes the chosen status (a blank mark when present).
    """
    text = raw.strip()
    word = text.lower()
    if not text:
        status = chosen if chosen in STATUSES else "present"
        return service.MarkEntry(student_id=0, score=None, status=status), None
    if word in ABSENT_WORDS:
        return service.MarkEntry(student_id=0, status="absent"), None
    if word in EXCUSED_WORDS:
        return service.MarkEntry(student_id=0, status="excused"), None
    score = parse_decimal(text)
    if score is None or not score.is_finite():
        return None, gettext_("Type a number (such as 12,5), A for absent or E for excused.")
    if score < 0 or score > max_score:
        return None, gettext_("The mark must be between 0 and {max}.", max=fmt_number(max_score, locale_var.get()))
    if score != score.quantize(CENT):
        return None, gettext_("At most two decimals.")
    return service.MarkEntry(student_id=0, score=score.quantize(CENT), status="present"), None


def person_name(row: dict[str, Any], locale: str) -> tuple[str, str | None]:
    """A pupil's name in the page's script when it exists, and the ``lang`` to mark it with."""
    if locale == "ar" and (row.get("first_name_ar") or row.get("last_name_ar")):
        return f"{row.get('last_name_ar') or ''} {row.get('first_name_ar') or ''}".strip(), None
    return f"{row['last_name']} {row['first_name']}".strip(), ("fr" if locale == "ar" else None)


def subject_name(row: dict[str, Any], locale: str, prefix: str = "subject_") -> str:
    """A subject's name in the page's language (French when missing)."""
    return row.get(f"{prefix}{locale}") or row.get(f"{prefix}fr") or row.get("subject_code") or ""


def assessment_label(row: dict[str, Any]) -> str:
    """An assessment's title, else its kind and number (``Continuous assessment 2``)."""
    if row.get("title"):
        return str(row["title"])
    return f"{gettext_(KIND_LABELS.get(row['kind'], row['kind']))} {row['position']}"


def _day(value: Any) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _safe_next(ctx: RequestContext, target: str | None, fallback: str) -> str:
    """``next`` when it leads to a grades page of this portal, else ``fallback``."""
    if target and target.startswith(ctx.url("/grades")) and "//" not in target and "\\" not in target:
        return target
    return ctx.url(fallback)


async def wide_scope(ctx: RequestContext, permission: str) -> Scope:
    """The person's scope for ``permission`` in every school (a family may span several)."""
    assert ctx.identity is not None
    grants = await ctx.services.grants.grants(ctx.identity.id)
    return scope_for(grants, ctx.services.permissions.roles_for(permission), None)


async def school_terms(db: Database, region_id: int | None) -> list[dict[str, Any]]:
    """The terms of the current school year as they apply in a region (its own calendar, else national)."""
    year = await school.current_year(db)
    rows = await db.fetch(
        "SELECT id, number, starts_on, ends_on, tenant_id FROM term WHERE school_year_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY number",
        year["id"],
        region_id or -1,
    )
    own = [r for r in rows if r["tenant_id"] is not None]
    return own or rows


def pick_term(terms: list[dict[str, Any]], wanted: int | None, today: date) -> dict[str, Any]:
    """The term asked for (when it applies here), else the one containing today (the last begun, else the first)."""
    if not terms:
        raise NotFoundException("No term is configured for this school year.")
    chosen = next((t for t in terms if t["id"] == wanted), None) if wanted is not None else None
    if chosen is not None:
        return chosen
    spans = [
        (t, date.fromisoformat(str(t["starts_on"])[:10]), date.fromisoformat(str(t["ends_on"])[:10])) for t in terms
    ]
    current = next((t for t, starts, ends in spans if starts <= today <= ends), None)
    if current is not None:
        return current
    begun = [t for t, starts, _ in spans if starts <= today]
    return begun[-1] if begun else terms[0]


async def teaches_or_directs(ctx: RequestContext, teacher_id: int | None, class_id: int, subject_code: str) -> None:
    """403 unless the caller directs the school or teaches this subject to this class."""
    assert ctx.person_id is not None
    if service.is_director(ctx) or teacher_id == ctx.person_id:
        return
    if not await service.teaches(ctx.services.db, ctx.person_id, class_id, subject_code):
        raise PermissionDeniedException("You do not teach this subject in this class.")


async def subject_row(db: Database, code: str) -> dict[str, Any]:
    """A subject's names."""
    row = await db.fetchrow(
        "SELECT code AS subject_code, name_fr AS subject_fr, name_ar AS subject_ar, name_en AS subject_en "
        "FROM subject WHERE code = {}",
        code,
    )
    return row or {"subject_code": code}


#: How long a process keeps a region's absence rule (:func:`policy`), as the core caches keep tenants.
POLICY_CACHE_SECONDS = 5.0
_policy_cache: dict[tuple[int, int | None], tuple[float, tuple[str, str]]] = {}


async def policy(db: Database, region_id: int | None) -> tuple[str, str]:
    """How absences count in averages: the region's rule, else the national one (cached a few seconds)."""
    key = (id(db), region_id)
    now = time.monotonic()
    hit = _policy_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    rule = await _load_policy(db, region_id)
    if len(_policy_cache) > 10_000:
        _policy_cache.clear()
    _policy_cache[key] = (now + POLICY_CACHE_SECONDS, rule)
    return rule


async def _load_policy(db: Database, region_id: int | None) -> tuple[str, str]:
    rows = await db.fetch(
        "SELECT tenant_id, absent_counts_as, excused_counts_as FROM grade_policy "
        "WHERE tenant_id IS NULL OR tenant_id = {}",
        region_id or -1,
    )
    chosen = next((r for r in rows if r["tenant_id"] is not None), None) or (rows[0] if rows else None)
    if chosen is None:
        return "zero", "ignore"
    return chosen["absent_counts_as"], chosen["excused_counts_as"]


def subject_average(marks: list[dict[str, Any]], rule: tuple[str, str]) -> float | None:
    """Weighted mean on /20 of marks rows (``score``, ``status``, ``max_score``, ``weight``)."""
    return calc.subject_average(
        [
            calc.MarkIn(
                score=None if m["score"] is None else float(m["score"]),
                max_score=float(m["max_score"]),
                weight=float(m["weight"]),
                status=m["status"] if m["status"] in STATUSES else "present",
            )
            for m in marks
        ],
        rule[0],  # type: ignore[arg-type]
        rule[1],  # type: ignore[arg-type]
    )


def stats_view(values: list[float | None], locale: str) -> dict[str, Any]:
    """Class statistics (values on /20) as the pages show them."""
    stats = calc.class_statistics(values)
    top = max(stats.distribution) if stats.count else 0
    return {
        "count": stats.count,
        "mean": fmt_average(stats.mean, locale),
        "median": fmt_average(stats.median, locale),
        "minimum": fmt_average(stats.minimum, locale),
        "maximum": fmt_average(stats.maximum, locale),
        "pass_share": None if stats.pass_share is None else round(stats.pass_share * 100),
        "bands": [
            {"label": f"{2 * i}–{2 * i + 2}", "count": n, "height": round(100 * n / top) if top else 0}
            for i, n in enumerate(stats.distribution)
        ],
    }


async def read_form(request: Request[Any, Any, Any]) -> Any:
    """The posted form (empty when the body is not a form)."""
    content_type = request.content_type[0]
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    return await request.form()


def _field(form: Any, name: str) -> str:
    value = form.get(name) if form else None
    return value if isinstance(value, str) else ""


# -- /grades/ -------------------------------------------------------------------------------


async def _teacher_rows(ctx: RequestContext, tenant_id: int, term_id: int, year_id: int) -> list[dict[str, Any]]:
    db = ctx.services.db
    assert ctx.person_id is not None
    where, args = scope_filter(ctx.scope, "ta")
    rows = await db.fetch(
        "SELECT ta.class_id, c.name AS class_name, ta.subject_code, sub.name_fr AS subject_fr, "
        "sub.name_ar AS subject_ar, sub.name_en AS subject_en, s.id AS sheet_id, s.state, "
        "(SELECT COUNT(*) FROM grade_assessment a WHERE a.sheet_id = s.id) AS assessments, "
        "(SELECT MIN(a.scheduled_on) FROM grade_assessment a WHERE a.sheet_id = s.id AND a.scheduled_on >= {}) "
        "AS next_on FROM teaching_assignment ta JOIN school_class c ON c.id = ta.class_id "
        "JOIN subject sub ON sub.code = ta.subject_code "
        "LEFT JOIN grade_sheet s ON s.class_id = ta.class_id AND s.subject_code = ta.subject_code AND s.term_id = {} "
        f"WHERE ta.person_id = {{}} AND ta.school_id = {{}} AND c.school_year_id = {{}} AND {where} "
        "ORDER BY c.name, ta.subject_code",
        date.today(),
        term_id,
        ctx.person_id,
        tenant_id,
        year_id,
        *args,
    )
    return [
        {
            **r,
            "subject": subject_name(r, ctx.locale),
            "state_label": STATE_LABELS.get(r["state"] or "draft", "Draft"),
            "next_on": _day(r["next_on"]),
        }
        for r in rows
    ]


async def _director_sheets(ctx: RequestContext, tenant_id: int, term_id: int) -> list[dict[str, Any]]:
    db = ctx.services.db
    where, args = scope_filter(ctx.scope, "s")
    rows = await db.fetch(
        "SELECT s.id, s.class_id, c.name AS class_name, s.subject_code, sub.name_fr AS subject_fr, "
        "sub.name_ar AS subject_ar, sub.name_en AS subject_en, s.state, p.full_name AS teacher, "
        "p.full_name_ar AS teacher_ar, "
        "(SELECT COUNT(*) FROM grade_assessment a WHERE a.sheet_id = s.id) AS assessments "
        "FROM grade_sheet s JOIN school_class c ON c.id = s.class_id JOIN subject sub ON sub.code = s.subject_code "
        f"JOIN person p ON p.id = s.teacher_id WHERE s.school_id = {{}} AND s.term_id = {{}} AND {where} "
        "ORDER BY c.name, s.subject_code",
        tenant_id,
        term_id,
        *args,
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
    where, args = scope_filter(ctx.scope, "a")
    assessments = await db.fetch(
        f"SELECT {service.ASSESSMENT_COLUMNS}, "
        "(SELECT COUNT(*) FROM grade_mark m WHERE m.assessment_id = a.id "
        " AND (m.score IS NOT NULL OR m.status <> 'present')) AS entered "
        "FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id "
        f"WHERE a.sheet_id = {{}} AND {where} ORDER BY a.scheduled_on, a.id",
        sheet_id,
        *args,
    )
    pupils = await school.class_students(db, ctx.scope, sheet["class_id"])
    marks = []
    if assessments:
        placeholders, ids = in_list([a["id"] for a in assessments])
        where_m, args_m = scope_filter(ctx.scope, "m")
        marks = await db.fetch(
            "SELECT m.assessment_id, m.student_id, m.score, m.status FROM grade_mark m "
            f"WHERE m.assessment_id IN {placeholders} AND {where_m}",
            *ids,
            *args_m,
        )
    by_assessment = {a["id"]: a for a in assessments}
    per_pupil: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in marks:
        a = by_assessment[m["assessment_id"]]
        per_pupil[m["student_id"]].append({**m, "max_score": a["max_score"], "weight": a["weight"]})
    rule = await policy(db, klass["region_id"])
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
                "scheduled_on": _day(a["scheduled_on"]),
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
        starts, ends = _day(term["starts_on"]), _day(term["ends_on"])
        assert starts is not None and ends is not None
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
        raise NotFoundException(f"No action {action!r}.")
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
    target = _safe_next(ctx, _field(form, "next"), f"/grades/sheets/{sheet_id}")
    separator = "&" if "?" in target else "?"
    return Redirect(f"{target}{separator}done={action}", status_code=303)


# -- scheduling ------------------------------------------------------------------------------------


def _check_schedule(form: Any) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The schedule form → (values for the service, errors by field, the raw values to show again)."""
    raw = {
        key: _field(form, key).strip()
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
            raise NotFoundException(f"No class {class_id} here.")
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


# -- the grid ------------------------------------------------------------------------------------


def _grid_rows(ctx: RequestContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        name, lang = person_name(r, ctx.locale)
        status = r["status"] or "present"
        out.append(
            Row(
                id=r["student_id"],
                name=name,
                name_lang=lang,
                code=r["national_code"],
                status=status,
                value=fmt_number(r["score"], ctx.locale) if status == "present" else "",
                saved=r["status"] is not None,
                error=None,
                yours=None,
            )
        )
    return out


def _shown(entry: service.MarkEntry | None, raw: str, locale: str) -> str:
    """What a pupil's mark reads as (for comparing the caller's input with what is saved)."""
    if entry is None:
        return raw
    if entry.status != "present":
        return gettext_("Absent" if entry.status == "absent" else "Excused")
    return fmt_number(entry.score, locale) if entry.score is not None else "—"


def _grid_stats(rows: list[dict[str, Any]], max_score: Decimal, locale: str) -> dict[str, Any]:
    scored = [float(Decimal(str(r["score"])) * 20 / max_score) for r in rows if r["score"] is not None]
    view = stats_view(list(scored), locale)
    view["pupils"] = len(rows)
    view["absent"] = sum(1 for r in rows if r["status"] == "absent")
    view["excused"] = sum(1 for r in rows if r["status"] == "excused")
    view["entered"] = view["count"] + view["absent"] + view["excused"]
    return view


async def _grid_context(ctx: RequestContext, assessment: dict[str, Any]) -> dict[str, Any]:
    """The grid's frame: the assessment, its class and subject, whether (and why not) it can be edited.

    ``assessment`` is a row of :func:`service.grid_frame` (class name, subject names, closed, deadline).
    """
    rows = await service.grid(ctx, assessment)
    director = service.is_director(ctx)
    closed = assessment["closed"]
    limit = assessment["entry_deadline"]
    locked = None
    if not director:
        if closed:
            locked = gettext_("The term is closed: marks are locked. A correction needs the director.")
        elif assessment["state"] != "draft":
            locked = gettext_(
                "These marks are {state}: ask the director to reopen them.",
                state=gettext_(STATE_LABELS.get(assessment["state"], assessment["state"])).lower(),
            )
        elif limit is not None and date.today() > limit:
            locked = gettext_("The entry deadline ({date}) has passed.", date=limit.isoformat())
    max_score = Decimal(str(assessment["max_score"]))
    return {
        "assessment": {
            **assessment,
            "label": assessment_label(assessment),
            "kind_label": KIND_LABELS.get(assessment["kind"], assessment["kind"]),
            "scheduled_on": _day(assessment["scheduled_on"]),
        },
        "klass": {"id": assessment["class_id"], "name": assessment["class_name"]},
        "subject": subject_name(assessment, ctx.locale),
        "max": fmt_number(max_score, ctx.locale),
        "version": assessment["version"],
        "rows": _grid_rows(ctx, rows),
        "stats": _grid_stats(rows, max_score, ctx.locale),
        "locked": locked,
        "needs_reason": (assessment["state"] == "published" or closed) and director,
        "deadline": limit,
        "state_label": STATE_LABELS.get(assessment["state"], assessment["state"]),
    }


#: One pupil's row of the grid (``str.format`` fields, every value escaped before): the typed mark,
#: then the three statuses as radio buttons (the page's script keeps them in step with what is typed).
GRID_ROW = (
    '<li class="pupil{classes}" data-student="{id}" data-status="{status}">'
    '<input type="hidden" name="student" value="{id}">\n'
    '<label class="who" for="score-{id}">{name} <small class="code"><bdi>{code}</bdi></small></label>\n'
    '<div class="entry"><input type="text" inputmode="decimal" class="mark" id="score-{id}" name="score_{id}" '
    'value="{value}" autocomplete="off" spellcheck="false" maxlength="12" enterkeyhint="{hint}" '
    'aria-describedby="{described}"{attrs} placeholder="{placeholder}">\n'
    '<fieldset class="status"{disabled}><legend class="sr-only">{legend}</legend>'
    '<label class="choice choice-present"><input type="radio" name="status_{id}" value="present" tabindex="-1"'
    "{c_present}><span>{l_mark}</span></label>"
    '<label class="choice choice-absent"><input type="radio" name="status_{id}" value="absent" tabindex="-1"'
    "{c_absent}><span>{l_absent}</span></label>"
    '<label class="choice choice-excused"><input type="radio" name="status_{id}" value="excused" tabindex="-1"'
    "{c_excused}><span>{l_excused}</span></label></fieldset></div>{after}</li>\n"
)


def _grid_lines(rows: list[dict[str, Any]], locked: bool) -> Markup:
    """The grid's rows as HTML (:data:`GRID_ROW`), formatted here once per pupil rather than by the template."""
    labels = {
        "l_mark": escape(gettext_("Mark")),
        "l_absent": escape(gettext_("Absent")),
        "l_excused": escape(gettext_("Excused")),
        "disabled": " disabled" if locked else "",
    }
    placeholders = {"absent": labels["l_absent"], "excused": labels["l_excused"]}
    legend = gettext_("Status of {name}")
    yours_text = gettext_("You had typed: {value}")
    disabled = " disabled" if locked else ""
    last = len(rows) - 1
    out = []
    for i, r in enumerate(rows):
        sid, status, error, yours = int(r["id"]), r["status"], r["error"], r["yours"]
        lang = r["name_lang"]
        name = escape(r["name"])
        after = ""
        if error:
            after += f'<p class="field-error" id="error-{sid}">{escape(error)}</p>'
        if yours:
            after += f'<p class="yours">{escape(yours_text.format(value=yours))}</p>'
        out.append(
            GRID_ROW.format(
                **labels,
                id=sid,
                classes=(" has-error" if error else "") + (" changed" if yours else ""),
                status=escape(status),
                name=f'<span class="name" lang="{escape(lang)}">{name}</span>'
                if lang
                else f'<span class="name">{name}</span>',
                code=escape(r["code"] or ""),
                value=escape(r["value"]),
                hint="done" if i == last else "next",
                described=f"error-{sid} grid-hint" if error else "grid-hint",
                attrs=(' aria-invalid="true"' if error else "") + disabled,
                placeholder=placeholders.get(status, ""),
                legend=escape(legend.format(name=r["name"])),
                c_present=" checked" if status == "present" else "",
                c_absent=" checked" if status == "absent" else "",
                c_excused=" checked" if status == "excused" else "",
                after=after,
            )
        )
    return Markup("".join(out))


def _render_grid(ctx: RequestContext, view: dict[str, Any], status: int = 200, **extra: Any) -> Any:
    view = {**view, "lines": _grid_lines(view["rows"], bool(view["locked"]))}
    extra.setdefault("notice", None)
    extra.setdefault("error", None)
    extra.setdefault("stale", False)
    extra.setdefault("reason", "")
    extra.setdefault("absent_words", sorted(ABSENT_WORDS))
    extra.setdefault("excused_words", sorted(EXCUSED_WORDS))
    return page(ctx, "grades/grid.html", status=status, **view, **extra)


@get("/grades/assessments/{assessment_id:int}", opt={"permission": "grades.enter"}, include_in_schema=False)
async def grid_page(ctx: Ctx, assessment_id: FromPath[int], saved: FromQuery[int | None] = None) -> Any:
    """The mark grid of an assessment for the whole class."""
    school.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        assessment = await service.grid_frame(ctx, assessment_id)
        await teaches_or_directs(ctx, assessment["teacher_id"], assessment["class_id"], assessment["subject_code"])
        view = await _grid_context(ctx, assessment)
    notice = gettext_("The marks were saved.") if saved is not None else None
    return _render_grid(ctx, view, notice=notice)


@post(
    "/grades/assessments/{assessment_id:int}",
    opt={"permission": "grades.enter"},
    include_in_schema=False,
    status_code=200,
)
async def save_grid_form(ctx: Ctx, assessment_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Save the grid for the class at once with the version the form was read at.

    Invalid marks re-render the grid with the errors beside the pupils and the values as typed;
    a stale version re-renders the current marks with a message (nothing is written).
    """
    school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        assessment = await service.grid_frame(ctx, assessment_id)
        await teaches_or_directs(ctx, assessment["teacher_id"], assessment["class_id"], assessment["subject_code"])
        view = await _grid_context(ctx, assessment)
    form = await read_form(request)
    try:
        version = int(_field(form, "version"))
    except ValueError:
        version = -1  # a form without a version cannot overwrite anything: it reads as stale
    reason = _field(form, "reason").strip()[:2000] or None
    max_score = Decimal(str(assessment["max_score"]))
    in_class = {r["id"]: r for r in view["rows"]}
    sent: list[int] = []
    for value in form.getall("student") if form else []:
        try:
            sent.append(int(value))
        except (TypeError, ValueError):
            continue
    entries: list[service.MarkEntry] = []
    typed: dict[int, tuple[service.MarkEntry | None, str]] = {}
    problems = 0
    for student_id in dict.fromkeys(sent):
        row = in_class.get(student_id)
        if row is None:
            problems += 1
            continue
        raw = _field(form, f"score_{student_id}")
        chosen = _field(form, f"status_{student_id}") or "present"
        entry, why = parse_mark(raw, chosen, max_score)
        typed[student_id] = (entry, raw.strip())
        # Keep what was typed on the page, whatever happens next.
        row["value"] = raw.strip()
        row["status"] = entry.status if entry else (chosen if chosen in STATUSES else "present")
        if why:
            row["error"] = why
            problems += 1
            continue
        assert entry is not None
        entries.append(service.MarkEntry(student_id=student_id, score=entry.score, status=entry.status))
    if problems:
        message = gettext_("Nothing was saved: correct the marks shown in red.")
        if any(s not in in_class for s in sent):
            message += " " + gettext_("Some pupils are no longer in this class: reload the page.")
        return _render_grid(ctx, view, status=400, error=message, reason=reason or "")
    try:
        async with db.scoped(ctx.scope):
            fresh = await service.get_assessment(ctx, assessment_id)
            new_version = await service.save_grid(ctx, fresh, version, entries, reason)
    except service.StaleVersion:
        async with db.scoped(ctx.scope, write=False):
            current = await service.grid_frame(ctx, assessment_id)
            now = await _grid_context(ctx, current)
        for row in now["rows"]:
            if row["id"] in typed:
                entry, raw = typed[row["id"]]
                saved = (
                    row["value"]
                    if row["status"] == "present"
                    else _shown(service.MarkEntry(student_id=0, status=row["status"]), "", ctx.locale)
                )
                mine = _shown(entry, raw, ctx.locale)
                if (saved or "—") != mine:
                    row["yours"] = mine
        return _render_grid(
            ctx,
            now,
            status=409,
            stale=True,
            error=gettext_(MESSAGES["stale"]),
            reason=reason or "",
        )
    except (service.Closed, Invalid) as exc:
        return _render_grid(ctx, view, status=exc.status_code, error=exc.detail, reason=reason or "")
    except ClientException as exc:
        if isinstance(exc, PermissionDeniedException | NotFoundException):
            raise
        # The service's own check (should the page's have missed something): show it beside the pupils.
        for item in exc.extra if isinstance(exc.extra, list) else []:
            match = re.match(r"marks\[(\d+)\]", str(item.get("key", "")))
            if match and int(match.group(1)) in in_class:
                in_class[int(match.group(1))]["error"] = str(item.get("message", ""))
        return _render_grid(ctx, view, status=exc.status_code, error=exc.detail, reason=reason or "")
    return Redirect(ctx.url(f"/grades/assessments/{assessment_id}?saved={new_version}"), status_code=303)


# -- a pupil's marks -------------------------------------------------------------------------------


def _day_html(value: Any) -> Markup:
    """A date as the pages show it: ``<time datetime="2026-10-12">12/10/2026</time>`` (empty for none)."""
    day = _day(value)
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


@get("/grades/pupils/{student_id:int}", opt={"permission": "family.view"}, include_in_schema=False)
async def pupil_page(ctx: Ctx, student_id: FromPath[int]) -> Any:
    """Published marks of one's child (or oneself) by subject with the averages, and what is coming."""
    tenant = ctx.require_tenant()
    db = ctx.services.db
    scope = await wide_scope(ctx, "family.view")
    async with db.scoped(scope, write=False):
        people = await _family_members(ctx, scope)
        child = next((p for p in people if p["id"] == student_id), None)
        if child is None:
            raise NotFoundException("No such pupil.")
        if child["school_id"] != tenant.id:
            return Redirect(child["url"])  # the pupil's pages live under the pupil's school
        rows, coming = await service.pupil_marks(db, scope, student_id, child["class_id"], date.today())
        rule = await policy(db, tenant.region_id)
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
    return page(
        ctx,
        "grades/pupil.html",
        child=child,
        people=people,
        terms=[Row(number=n, subjects=by_term[n]) for n in sorted(by_term, reverse=True)],
        upcoming=upcoming,
        absent_rule=rule[0],
        excused_rule=rule[1],
    )


# -- the director's dashboard ----------------------------------------------------------------------


@get("/grades/missing", opt={"permission": "grades.validate"}, include_in_schema=False)
async def missing_page(ctx: Ctx, term_id: FromQuery[int | None] = None) -> Any:
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
            placeholders, ids = in_list(sorted({r["teacher_id"] for r in rows}))
            teacher_ar = {
                r["id"]: r["full_name_ar"]
                for r in await db.fetch(f"SELECT id, full_name_ar FROM person WHERE id IN {placeholders}", *ids)
                if r["full_name_ar"]
            }
        codes = sorted({r["subject_code"] for r in rows})
        names: dict[str, dict[str, Any]] = {}
        if codes:
            placeholders, args = in_list(codes)
            names = {
                r["subject_code"]: r
                for r in await db.fetch(
                    "SELECT code AS subject_code, name_fr AS subject_fr, name_ar AS subject_ar, name_en AS subject_en "
                    f"FROM subject WHERE code IN {placeholders}",
                    *args,
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
    return page(
        ctx,
        "grades/missing.html",
        rows=out,
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
    grid_page,
    save_grid_form,
    pupil_page,
    missing_page,
]
