"""The director's term close and report cards (bulletins) in the portal.

* ``/grades/close`` — for a term: whether it is closed (with the button that closes it), each class
  with its pupils with results and report cards, a button to generate a class's or the whole school's;
* ``/grades/jobs/{id}`` — a generation's progress bar (HTMX polls ``…/progress``), then the downloads;
* ``/grades/classes/{id}/bulletins`` — a class's report cards per pupil (each downloaded from
  ``/grades/bulletins/{id}``, :mod:`plugins.grades.portal_family`), and all of them as one zip.

The pages call the same functions as the API (:func:`plugins.grades.close.close_school_term`,
:mod:`plugins.grades.bulletins.service`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from core.plugin_api import Ctx, Invalid, NotFound, RequestContext, Row, page, school, visible_job
from plugins.grades import service
from plugins.grades.bulletins import service as bulletins
from plugins.grades.bulletins.jobs import BULLETIN_JOB
from plugins.grades.close import TermAlreadyClosed, close_school_term
from plugins.grades.portal_common import form_field, person_name, read_form
from plugins.grades.terms import pick_term, school_terms

CONFIRM = "Tick the box to confirm: closing locks the term's marks."
NOTICES = {
    "closed": "The term was closed: averages and ranks are computed and the marks are locked.",
}


async def _close_view(ctx: RequestContext, term_id: int | None) -> dict[str, Any]:
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        terms = await school_terms(db, tenant.region_id)
        term = pick_term(terms, term_id, date.today())
        year = await school.current_year(db)
        closed = await service.is_closed(db, tenant.id, term["id"])
        classes = [Row(r) for r in await bulletins.term_overview(ctx, tenant, term["id"], year["id"])]
    return {"terms": terms, "term": term, "closed": closed, "classes": classes}


@get("/grades/close", opt={"permission": "grades.validate"}, include_in_schema=False)
async def close_page(ctx: Ctx, term_id: FromQuery[int | None] = None, done: FromQuery[str | None] = None) -> Any:
    """A term's close and its report cards, class by class."""
    view = await _close_view(ctx, term_id)
    return page(ctx, "grades/close.html", **view, notice=NOTICES.get(done or ""), error=None)


@post(
    "/grades/terms/{term_id:int}/close",
    opt={"permission": "grades.validate"},
    include_in_schema=False,
    status_code=200,
)
async def close_action(ctx: Ctx, term_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Close the term for the school (averages, ranks, statistics; the marks are locked), once confirmed."""
    if form_field(await read_form(request), "confirm") != "yes":
        view = await _close_view(ctx, term_id)
        return page(ctx, "grades/close.html", status=400, **view, notice=None, error=CONFIRM, confirm_error=True)
    try:
        await close_school_term(ctx, term_id)
    except TermAlreadyClosed:
        view = await _close_view(ctx, term_id)
        return page(ctx, "grades/close.html", status=409, **view, notice=None, error="This term is already closed.")
    return Redirect(ctx.url(f"/grades/close?term_id={term_id}&done=closed"), status_code=303)


@post("/grades/bulletins", opt={"permission": "grades.validate"}, include_in_schema=False, status_code=200)
async def generate(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Start generating a class's (or the whole school's) report cards; then follow the job."""
    tenant = school.require_school(ctx)
    form = await read_form(request)
    raw_term, raw_class = form_field(form, "term_id").strip(), form_field(form, "class_id").strip()
    job_id = None
    if raw_term.isdigit() and (not raw_class or raw_class.isdigit()):
        try:
            job_id = await bulletins.request_bulletins(
                ctx, tenant, int(raw_term), int(raw_class) if raw_class else None
            )
        except Invalid:
            job_id = None  # a term that is not this school's
    if job_id is None:
        view = await _close_view(ctx, None)
        return page(ctx, "grades/close.html", status=400, **view, notice=None, error="Choose a term and a class.")
    return Redirect(ctx.url(f"/grades/jobs/{job_id}"), status_code=303)


async def _job_view(ctx: RequestContext, job_id: str) -> dict[str, Any]:
    school.require_school(ctx)
    job = await visible_job(ctx, job_id)
    if job.kind != BULLETIN_JOB:
        raise NotFound("No such job.")
    return {"job": job, "class_id": job.params.get("class_id"), "term_id": job.params.get("term_id")}


@get("/grades/jobs/{job_id:str}", opt={"permission": "grades.validate"}, include_in_schema=False)
async def job_page(ctx: Ctx, job_id: FromPath[str]) -> Any:
    """A report-card generation: its progress bar (polled), then the downloads."""
    return page(ctx, "grades/job.html", **await _job_view(ctx, job_id))


@get("/grades/jobs/{job_id:str}/progress", opt={"permission": "grades.validate"}, include_in_schema=False)
async def job_progress(ctx: Ctx, job_id: FromPath[str]) -> Any:
    """The progress fragment HTMX polls while the report cards are generated."""
    view = await _job_view(ctx, job_id)
    # 286 tells HTMX to stop polling once the job has ended.
    return page(ctx, "grades/job_progress.html", status=286 if view["job"].finished else 200, **view)


@get("/grades/classes/{class_id:int}/bulletins", opt={"permission": "grades.validate"}, include_in_schema=False)
async def class_page(ctx: Ctx, class_id: FromPath[int], term_id: FromQuery[int | None] = None) -> Any:
    """A class's report cards for a term: one line per pupil with its files, and the zip of all."""
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        klass = await school.get_class(ctx, class_id)
        if klass["school_id"] != tenant.id:
            raise NotFound(f"No class {class_id} here.")
        terms = await school_terms(db, tenant.region_id)
        term = pick_term(terms, term_id, date.today())
    pupils: dict[int, Row] = {}
    for row in await bulletins.class_bulletins(ctx, class_id, term["id"]):
        name, lang = person_name(row, ctx.locale)
        pupil = pupils.setdefault(row["student_id"], Row(name=name, lang=lang, code=row["national_code"], files=[]))
        pupil["files"].append(Row(id=row["id"], locale=row["locale"]))
    return page(ctx, "grades/class_bulletins.html", klass=klass, term=term, terms=terms, pupils=list(pupils.values()))


@get(
    "/grades/classes/{class_id:int}/bulletins.zip",
    opt={"permission": "grades.validate", "bulk_export": "grades.bulletins"},
    include_in_schema=False,
    media_type="application/zip",
)
async def class_zip(ctx: Ctx, class_id: FromPath[int], term_id: FromQuery[int]) -> Response[bytes]:
    """Every report card of a class for a term, in one zip."""
    tenant = school.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        klass = await school.get_class(ctx, class_id)
    if klass["school_id"] != tenant.id:
        raise NotFound(f"No class {class_id} here.")
    data = await bulletins.class_zip(ctx, class_id, term_id)
    name = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_" else "-" for ch in str(klass["name"])) or str(
        class_id
    )
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="bulletins-{name or class_id}-{term_id}.zip"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


#: Messages of these pages (for the catalogue test).
MESSAGES = [*NOTICES.values(), CONFIRM, "This term is already closed.", "Choose a term and a class."]

RESULTS_PORTAL_ROUTES: list[Any] = [
    close_page,
    close_action,
    generate,
    job_page,
    job_progress,
    class_page,
    class_zip,
]
