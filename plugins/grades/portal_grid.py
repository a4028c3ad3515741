"""The mark grid of an assessment: one row per pupil, saved atomically for the class with its version.

A mark is typed as ``12,5`` or ``12.5``, or absent / excused (:func:`plugins.grades.marks.parse_mark`);
a stale version re-renders the current marks and writes nothing.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from markupsafe import Markup, escape

from core.plugin_api import Ctx, Invalid, RequestContext, Row, gettext_, page, school
from plugins.grades import service
from plugins.grades.marks import ABSENT_WORDS, EXCUSED_WORDS, STATUSES, fmt_number, parse_mark, stats_view
from plugins.grades.portal_common import (
    KIND_LABELS,
    MESSAGES,
    STATE_LABELS,
    assessment_label,
    form_field,
    person_name,
    read_form,
    subject_name,
    teaches_or_directs,
)


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
            "scheduled_on": assessment["scheduled_on"],
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
        version = int(form_field(form, "version"))
    except ValueError:
        version = -1  # a form without a version cannot overwrite anything: it reads as stale
    reason = form_field(form, "reason").strip()[:2000] or None
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
        raw = form_field(form, f"score_{student_id}")
        chosen = form_field(form, f"status_{student_id}") or "present"
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
    except service.InvalidMarks as exc:
        # The service's own check (should the page's have missed something): show it beside the pupils.
        for item in exc.extra if isinstance(exc.extra, list) else []:
            match = re.match(r"marks\[(\d+)\]", str(item.get("key", "")))
            if match and int(match.group(1)) in in_class:
                in_class[int(match.group(1))]["error"] = str(item.get("message", ""))
        return _render_grid(ctx, view, status=exc.status_code, error=exc.detail, reason=reason or "")
    except (service.Closed, Invalid) as exc:
        return _render_grid(ctx, view, status=exc.status_code, error=exc.detail, reason=reason or "")
    return Redirect(ctx.url(f"/grades/assessments/{assessment_id}?saved={new_version}"), status_code=303)


GRID_ROUTES: list[Any] = [grid_page, save_grid_form]
