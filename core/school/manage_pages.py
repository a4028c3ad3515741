"""The director's school management in the portal (what ``/api/v1/school/…`` offers, with a session).

* ``/school/import`` — the pupils' CSV: a check (dry run) or an import, all or nothing, with the report
  row by row and cell by cell (:func:`core.school.csv_import.import_students`, as the API calls it);
* ``/school/classes`` — the year's classes with their head counts, and the form opening a class
  (:func:`core.school.service.create_class`, as the API calls it).

Every page needs ``school.manage`` and reads only the school of the URL; the forms carry the session's
CSRF token (checked by the access middleware) and show their errors beside the fields, translated.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.errors import Conflict, Invalid
from core.rendering import Row, page
from core.school import csv_import, service
from core.school.pupil_rows import FILE, MESSAGES, SCHOOL_MESSAGES, CellError
from core.school.reference import LEVELS, TRACKS

#: How the report names the file's columns (catalogue message ids).
COLUMN_LABELS = {
    FILE: "Whole file",
    "national_code": "Massar code",
    "last_name": "Last name",
    "first_name": "First name",
    "last_name_ar": "Last name in Arabic",
    "first_name_ar": "First name in Arabic",
    "birth_date": "Birth date",
    "gender": "Gender",
    "class": "Class",
    "guardian_email": "Guardian e-mail",
    "guardian_name": "Guardian",
    "guardian_name_ar": "Guardian's name in Arabic",
    "guardian_relation": "Relation",
}
CHOOSE_FILE = "Choose a CSV file."
CONFLICT = "Nothing was imported: a pupil of the file was registered meanwhile. Check the file again."
#: The page's own messages (every one is in the catalogues; tests check it).
PAGE_MESSAGES = [CHOOSE_FILE, CONFLICT, csv_import.TOO_LARGE, csv_import.NOT_CSV, *COLUMN_LABELS.values()]


async def read_form(request: Request[Any, Any, Any]) -> Any:
    """The posted form (empty when the body is not a form)."""
    if request.content_type[0] not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    return await request.form()


def form_text(form: Any, name: str, limit: int = 200) -> str:
    """A text field of the form, stripped and cut to ``limit`` (empty when absent or a file)."""
    value = form.get(name) if form else None
    return value.strip()[:limit] if isinstance(value, str) else ""


def _cell(error: CellError) -> Row:
    """One problem of the report, with its message id and values (translated by the template)."""
    msgid = {**MESSAGES, **SCHOOL_MESSAGES}.get(error.code)
    return Row(
        row=error.row,
        column=error.column,
        column_label=COLUMN_LABELS.get(error.column),
        value=error.value,
        message=msgid or error.message,
        params=error.params if msgid else {},
    )


def _import_page(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    values.setdefault("report", None)
    values.setdefault("file_error", None)
    values.setdefault("conflict", None)
    return page(ctx, "school/import.html", status=status, **values)


@get("/school/import", opt={"permission": "school.manage"}, include_in_schema=False)
async def import_form(ctx: Ctx) -> Any:
    """The upload form of the pupils' CSV and the columns it takes."""
    service.require_school(ctx)
    return _import_page(ctx)


@post("/school/import", opt={"permission": "school.manage"}, include_in_schema=False, status_code=200)
async def import_upload(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Check (``action=check``) or import the file; the report is the page, nothing is written on any error."""
    school = service.require_school(ctx)
    form = await read_form(request)
    upload = form.get("file") if form else None
    dry_run = form_text(form, "action") == "check"
    content = await upload.read() if isinstance(upload, UploadFile) else b""
    if not content:
        return _import_page(ctx, 400, file_error=(CHOOSE_FILE, {}))
    refused = csv_import.upload_problem(ctx, content)
    if refused is not None:
        return _import_page(ctx, 400, file_error=refused)
    try:
        report = await csv_import.import_students(ctx, school, content, dry_run=dry_run)
    except Conflict:
        return _import_page(ctx, 409, conflict=CONFLICT)
    view = Row(
        ok=report.ok,
        dry_run=report.dry_run,
        rows=report.rows,
        errors=[_cell(e) for e in report.errors],
        created=report.created,
        linked=report.guardians_linked,
        invited=report.guardians_invited,
    )
    return _import_page(ctx, 200 if report.ok else 422, report=view, filename=getattr(upload, "filename", ""))


# -- classes ---------------------------------------------------------------------------------------

CHOOSE_LEVEL = "Choose a level."
TRACK_LEVEL = "This track does not exist at this level."
CAPACITY = "A whole number from 1 to 60."
CLASS_TAKEN = "A class with this name exists this year."
CLASS_CREATED = "The class was opened."
PAGE_MESSAGES += [CHOOSE_LEVEL, TRACK_LEVEL, CAPACITY, CLASS_TAKEN, CLASS_CREATED]
_LOCALE_COLUMN = {"ar": 3, "fr": 4, "en": 5}


def _levels(locale: str) -> list[tuple[str, str]]:
    return [(row[0], row[_LOCALE_COLUMN.get(locale, 4)]) for row in LEVELS]


def _tracks(locale: str) -> list[tuple[str, str]]:
    return [(row[0], row[_LOCALE_COLUMN.get(locale, 4) - 1]) for row in TRACKS]


async def _classes_page(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    school = service.require_school(ctx)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        classes = await service.list_classes(ctx, school)
    values.setdefault("errors", {})
    values.setdefault("values", {"capacity": "45"})
    values.setdefault("notice", None)
    levels, tracks = dict(_levels(ctx.locale)), dict(_tracks(ctx.locale))
    rows = [
        Row(c, level=levels.get(c["level_code"], c["level_code"]), track=tracks.get(c["track_code"] or "", ""))
        for c in classes
    ]
    return page(
        ctx,
        "school/manage_classes.html",
        status=status,
        classes=rows,
        levels=_levels(ctx.locale),
        tracks=_tracks(ctx.locale),
        **values,
    )


@get("/school/classes", opt={"permission": "school.manage"}, include_in_schema=False)
async def classes_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """The school's classes this year (pupils and capacity) and the form opening one."""
    return await _classes_page(ctx, notice=CLASS_CREATED if done == "created" else None)


@post("/school/classes", opt={"permission": "school.manage"}, include_in_schema=False)
async def create_class(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Open a class for the current year (name, level, track, capacity as the API takes them)."""
    school = service.require_school(ctx)
    form = await read_form(request)
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    name = form.get("name") if form else None
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        errors["name"] = (MESSAGES["required"], {})
    elif len(name) > 60:
        errors["name"] = (MESSAGES["too_long"], {"limit": 60})
    level = form_text(form, "level_code", 8)
    if level not in {row[0] for row in LEVELS}:
        errors["level_code"] = (CHOOSE_LEVEL, {})
    track = form_text(form, "track_code", 12) or None
    capacity_text = form_text(form, "capacity", 3) or "45"
    capacity = int(capacity_text) if capacity_text.isdigit() else 0
    if not 1 <= capacity <= 60:
        errors["capacity"] = (CAPACITY, {})
    values = {"name": name[:60], "level_code": level, "track_code": track or "", "capacity": capacity_text}
    if not errors:
        try:
            async with ctx.services.db.scoped(ctx.scope):
                await service.create_class(
                    ctx,
                    school,
                    level_code=level,
                    track_code=track,
                    name=name,
                    capacity=capacity,
                    homeroom_teacher_id=None,
                )
        except Invalid as exc:
            errors["track_code" if exc.field == "track_code" else "level_code"] = (
                TRACK_LEVEL if exc.field == "track_code" else CHOOSE_LEVEL,
                {},
            )
        except Conflict:
            errors["name"] = (CLASS_TAKEN, {})
    if errors:
        status = 409 if errors.get("name", ("",))[0] == CLASS_TAKEN else 400
        return await _classes_page(ctx, status, errors=errors, values=values)
    return Redirect(ctx.url("/school/classes?done=created"), status_code=303)


MANAGE_ROUTES: list[Any] = [import_form, import_upload, classes_page, create_class]
