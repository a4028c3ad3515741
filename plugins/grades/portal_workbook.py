"""The Massar workbook of a sheet in the portal: download it, upload it filled in, read the report.

* ``GET /grades/sheets/{id}/workbook`` — the sheet's Massar-layout ``.xlsx`` with the session;
* ``POST /grades/sheets/{id}/workbook`` — a multipart form (CSRF, the file, a reason): every cell
  is checked and the marks are saved all or nothing; the page lists the bad cells (nothing written).

Both call the same functions as ``/api/v1/grades/sheets/{id}/xlsx``
(:func:`plugins.grades.spreadsheet.workbook` and :func:`~plugins.grades.spreadsheet.upload_workbook`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath

from core.plugin_api import Ctx, Invalid, RequestContext, Row, TooLarge, UnsupportedMedia, gettext_, page, school
from plugins.grades import service
from plugins.grades.portal_common import form_field, read_form, subject_name, teaches_or_directs
from plugins.grades.spreadsheet import upload_workbook, workbook, workbook_response
from plugins.grades.spreadsheet_layout import UploadReport
from plugins.grades.terms import subject_row
from plugins.grades.workbook_messages import translated

#: A grid of the sheet was saved after the file was made (catalogue message id).
STALE = (
    "Marks of this sheet were saved after the file was made. Nothing was written: "
    "download a fresh workbook and copy your changes into it."
)


async def _frame(ctx: RequestContext, sheet_id: int) -> dict[str, Any]:
    """The sheet as the report page names it (404 outside the scope, 403 for another teacher)."""
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        sheet = await service.get_sheet(ctx, sheet_id)
        await teaches_or_directs(ctx, sheet["teacher_id"], sheet["class_id"], sheet["subject_code"])
        klass = await school.get_class(ctx, sheet["class_id"])
        subject = await subject_row(db, sheet["subject_code"])
    return {"sheet": sheet, "klass": klass, "subject": subject_name(subject, ctx.locale)}


@get("/grades/sheets/{sheet_id:int}/workbook", opt={"permission": "grades.enter"}, include_in_schema=False)
async def download_workbook(ctx: Ctx, sheet_id: FromPath[int]) -> Any:
    """The sheet's marks as a Massar-layout workbook (the subject's teacher or the director)."""
    school.require_school(ctx)
    return workbook_response(*(await workbook(ctx, sheet_id)))


@post(
    "/grades/sheets/{sheet_id:int}/workbook",
    opt={"permission": "grades.enter"},
    include_in_schema=False,
    status_code=200,
)
async def upload_workbook_form(ctx: Ctx, sheet_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Save the marks of a filled-in workbook and show the report cell by cell (nothing written on errors)."""
    school.require_school(ctx)
    frame = await _frame(ctx, sheet_id)
    form = await read_form(request)
    upload = form.get("file") if form else None
    reason = form_field(form, "reason").strip()[:2000]
    report: UploadReport | None = None
    error = None
    status = 200
    if not isinstance(upload, UploadFile) or not upload.filename:
        error, status = gettext_("Choose the filled-in workbook (.xlsx) to upload."), 400
    else:
        content = await upload.read()
        try:
            report = await upload_workbook(ctx, sheet_id, content, reason or None)
        except TooLarge:
            error, status = gettext_("The file is too large for a mark sheet."), 413
        except UnsupportedMedia:
            error, status = gettext_("This is not an Excel workbook: save it as .xlsx and try again."), 415
        except service.StaleVersion:
            error, status = gettext_(STALE), 409
        except (service.Closed, Invalid) as exc:
            error, status = translated(gettext_(exc.msgid, **exc.values)), exc.status_code
        if report is not None and not report.ok:
            status = 422
    problems = [Row(cell=e.cell, value=e.value, message=translated(e.message)) for e in report.errors] if report else []
    return page(
        ctx,
        "grades/workbook.html",
        status=status,
        **frame,
        report=report,
        problems=problems,
        error=error,
        reason=reason,
        needs_reason=service.is_director(ctx),
    )


WORKBOOK_ROUTES: list[Any] = [download_workbook, upload_workbook_form]
