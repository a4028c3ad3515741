"""The director's school management in the portal (what ``/api/v1/school/…`` offers, with a session).

* ``/school/import`` — the pupils' CSV: a check (dry run) or an import, all or nothing, with the report
  row by row and cell by cell (:func:`core.school.csv_import.import_students`, as the API calls it).

Every page needs ``school.manage`` and reads only the school of the URL; the forms carry the session's
CSRF token (checked by the access middleware) and show their errors beside the fields, translated.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile

from core.context import Ctx, RequestContext
from core.errors import Conflict
from core.rendering import Row, page
from core.school import csv_import, service
from core.school.pupil_rows import FILE, MESSAGES, SCHOOL_MESSAGES, CellError

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


MANAGE_ROUTES: list[Any] = [import_form, import_upload]
