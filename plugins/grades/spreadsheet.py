"""The Massar spreadsheet round trip: download a sheet's marks as ``.xlsx``, fill it in, upload it back.

The workbook is laid out like the mark sheets Massar exports, so teachers work the way they already
do (headers in Arabic and French, the sheet read right to left):

* rows 1–16, the header block: kingdom and ministry, the title, then label (column C) and value
  (column D) for the academy (row 5), provincial directorate (6), school (7), level (8), class (9),
  teacher (10), semester (11), subject (12) and school year (13); a legend (14) and a warning (15);
* row 17, the column headers; from row 18 one pupil a row: B the row number, C the pupil code,
  D the full name (Arabic when known), E the name in Latin letters, and G, I and K the first, second
  and third continuous assessments (``kind = 'cc'``, positions 1, 2 and 3 of the sheet).

A mark cell holds a number from 0 to the assessment's maximum with at most two decimals (a number
cell, or text such as ``12,5`` with a French decimal comma, or Arabic-Indic digits), nothing (no
mark), or a word of the small vocabulary below: ``غ``/``ABS`` for an absent pupil, ``م``/``EXC``
for an excused absence. The template writes ``غ`` and ``م``.

A very hidden sheet (``madrasa``, invisible from the spreadsheet's menus) carries the identity
``madrasa:<school id>:<class id>:<subject>:<term id>:<teacher id>`` (cell A1), the versions of the
sheet's CC grids the file was built from (A2, ``<position>=<assessment id>.<version>;…``) and an
HMAC-SHA256 of both with the application's secret key (A3), so a forged or edited identity is
refused, and a grid saved by someone else since the download is detected (409) instead of being
overwritten.

Three layers, like the CSV import of pupils:

* :func:`~plugins.grades.spreadsheet_book.build_template` and
  :func:`~plugins.grades.spreadsheet_book.parse_upload` (``read_upload``) — pure, on the layout and
  shapes of :mod:`plugins.grades.spreadsheet_layout`;
* :func:`load_sheet` and :func:`apply_upload` (this module) — inside the caller's ``db.scoped`` transaction:
  reconcile the file with the class and the sheet's assessments, then save each changed grid with
  :func:`plugins.grades.service.save_grid`, all in one transaction (any failure writes nothing);
  grids whose marks equal the stored ones are skipped, so uploading the same file twice changes
  nothing (no version bump, no audit row);
* ``GET``/``POST /api/v1/grades/sheets/{sheet_id}/xlsx`` (:data:`SPREADSHEET_ROUTES`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath

from core.plugin_api import (
    XLSX,
    ContentPolicy,
    Ctx,
    Forbidden,
    ObjectTooLarge,
    RequestContext,
    TooLarge,
    UnsupportedMedia,
    UnsupportedType,
    school,
    scope_sql,
)
from plugins.grades import service
from plugins.grades.spreadsheet_book import build_template, read_upload, sort_errors
from plugins.grades.spreadsheet_layout import (
    BLANK,
    CODE_COLUMN,
    HEADER_ROW,
    MARK_COLUMNS,
    MARK_LABELS,
    CellError,
    CellMark,
    Column,
    Pupil,
    SheetIdentity,
    SheetInfo,
    Upload,
    UploadReport,
    XlsxForm,
)

# -- the database side (inside the caller's scoped transaction) -------------------------------


def _both(ar: str | None, fr: str | None) -> str:
    parts = [p for p in ((ar or "").strip(), (fr or "").strip()) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return " / ".join(parts)


async def may_enter(ctx: RequestContext, sheet: Mapping[str, Any]) -> bool:
    """The subject's teacher (of the sheet, or assigned to the class) or the director."""
    assert ctx.person_id is not None
    return (
        service.is_director(ctx)
        or sheet["teacher_id"] == ctx.person_id
        or await service.teaches(ctx.services.db, ctx.person_id, sheet["class_id"], sheet["subject_code"])
    )


async def cc_columns(ctx: RequestContext, sheet_id: int) -> dict[int, dict[str, Any]]:
    """The sheet's CC assessments in Massar's columns (positions 1–3), with their sheet's state."""
    rows = await ctx.services.db.fetch(
        "SELECT {} FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id "
        "WHERE a.sheet_id = {} AND a.kind = 'cc' AND a.position IN (1, 2, 3) AND {} ORDER BY a.position",
        service.ASSESSMENT_COLUMNS,
        sheet_id,
        scope_sql(ctx.scope, "a"),
    )
    return {int(r["position"]): r for r in rows}


async def class_pupils(ctx: RequestContext, class_id: int) -> list[Pupil]:
    """The pupils of a class (open enrolment), in the grid's order."""
    rows = await ctx.services.db.fetch(
        "SELECT st.id, st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar "
        "FROM enrolment e JOIN student st ON st.id = e.student_id "
        "WHERE e.class_id = {} AND e.ends_on IS NULL AND {} ORDER BY st.last_name, st.first_name, st.id",
        class_id,
        scope_sql(ctx.scope, "st"),
    )
    out = []
    for r in rows:
        latin = f"{r['last_name']} {r['first_name']}".strip()
        arabic = f"{r['last_name_ar'] or ''} {r['first_name_ar'] or ''}".strip()
        out.append(Pupil(int(r["id"]), r["national_code"], arabic or latin, latin))
    return out


async def load_sheet(ctx: RequestContext, sheet_id: int) -> tuple[dict[str, Any], SheetInfo]:
    """A sheet in scope (404) the caller may enter marks on (403), and what its template shows."""
    db = ctx.services.db
    sheet = await service.get_sheet(ctx, sheet_id)
    if not await may_enter(ctx, sheet):
        raise Forbidden("Only the subject's teacher or the director can use this sheet's workbook.")
    klass = await school.get_class(ctx, sheet["class_id"])
    tenants = ctx.services.tenants
    tenant = await tenants.by_id(sheet["school_id"])
    assert tenant is not None
    region = await tenants.by_id(tenant.region_id) if tenant.region_id else None
    province = await tenants.by_id(tenant.province_id) if tenant.province_id else None
    level = await db.fetchrow("SELECT name_ar, name_fr FROM level WHERE code = {}", klass["level_code"])
    track = (
        await db.fetchrow("SELECT name_ar, name_fr FROM track WHERE code = {}", klass["track_code"])
        if klass["track_code"]
        else None
    )
    subject = await db.fetchrow("SELECT name_ar, name_fr FROM subject WHERE code = {}", sheet["subject_code"])
    term = await db.fetchrow("SELECT number FROM term WHERE id = {}", sheet["term_id"])
    teacher = await db.fetchrow("SELECT full_name, full_name_ar FROM person WHERE id = {}", sheet["teacher_id"])
    year = await db.fetchval("SELECT label FROM school_year WHERE id = {}", klass["school_year_id"])
    level_text = _both(level["name_ar"], level["name_fr"]) if level else klass["level_code"]
    if track:
        level_text = f"{level_text} — {_both(track['name_ar'], track['name_fr'])}"
    subject_text = _both(subject["name_ar"], subject["name_fr"]) if subject else sheet["subject_code"]
    teacher_text = _both(teacher["full_name_ar"], teacher["full_name"]) if teacher else ""
    semester = int(term["number"]) if term else 0
    identity = SheetIdentity(
        int(sheet["school_id"]),
        int(sheet["class_id"]),
        sheet["subject_code"],
        int(sheet["term_id"]),
        int(sheet["teacher_id"]),
        secret=ctx.services.settings.secret_key,
        class_name=klass["name"],
        subject=sheet["subject_code"],
        semester=semester,
        teacher=teacher_text,
    )
    columns = tuple(
        Column(p, int(a["id"]), int(a["version"]), Decimal(str(a["max_score"])), a["title"] or "")
        for p, a in (await cc_columns(ctx, sheet_id)).items()
    )
    info = SheetInfo(
        identity=identity,
        academy=_both(region.name_ar, region.name_fr) if region else "",
        directorate=_both(province.name_ar, province.name_fr) if province else "",
        school=_both(tenant.name_ar, tenant.name_fr),
        level=level_text,
        class_name=klass["name"],
        teacher=teacher_text,
        semester=semester,
        subject=subject_text,
        year=year or "",
        columns=columns,
    )
    return sheet, info


def _stored(row: Mapping[str, Any]) -> CellMark:
    status = row["status"] or "present"
    if status != "present":
        return CellMark(None, status)
    return CellMark(None if row["score"] is None else Decimal(str(row["score"])), "present")


async def template_for(
    ctx: RequestContext, sheet_id: int
) -> tuple[SheetInfo, list[Pupil], dict[int, dict[int, CellMark]]]:
    """What :func:`build_template` needs for a sheet."""
    sheet, info = await load_sheet(ctx, sheet_id)
    pupils = await class_pupils(ctx, sheet["class_id"])
    marks: dict[int, dict[int, CellMark]] = {}
    for position, assessment in (await cc_columns(ctx, sheet_id)).items():
        marks[position] = {int(r["student_id"]): _stored(r) for r in await service.grid(ctx, assessment)}
    return info, pupils, marks


async def apply_upload(ctx: RequestContext, sheet_id: int, parsed: Upload, reason: str | None) -> UploadReport:
    """Reconcile a parsed file with the class and the sheet, then save every changed grid.

    Runs inside one write transaction opened by the caller: a 422 report writes nothing, and an
    exception (a grid saved meanwhile: 409; a closed term: 423; …) rolls every grid back.
    """
    sheet, info = await load_sheet(ctx, sheet_id)
    if parsed.identity is None or parsed.identity != info.identity:
        raise service.StaleVersion(
            "The sheet changed while the file was read (its teacher or class); nothing was written. Try again."
        )
    errors = list(parsed.errors)
    pupils = await class_pupils(ctx, sheet["class_id"])
    by_code = {p.code: p for p in pupils}
    in_file: set[str] = set()
    for row in parsed.rows:
        if not row.code:
            continue
        in_file.add(row.code)
        if row.code not in by_code:
            errors.append(
                CellError(
                    row.row,
                    CODE_COLUMN,
                    f"{CODE_COLUMN}{row.row}",
                    row.code,
                    f"{row.code} is not a pupil of {info.class_name}: remove this row",
                )
            )
    missing = [p for p in pupils if p.code not in in_file]
    if missing:
        named = ", ".join(f"{p.code} ({p.name_latin or p.name})" for p in missing)
        errors.append(
            CellError(
                0,
                CODE_COLUMN,
                "",
                ", ".join(p.code for p in missing),
                f"{len(missing)} pupil(s) of {info.class_name} missing from the file: {named}; "
                "add their rows (their marks may stay empty)",
            )
        )
    assessments = await cc_columns(ctx, sheet_id)
    for position, column in MARK_COLUMNS.items():
        used = any(not row.marks.get(position, BLANK).blank for row in parsed.rows)
        if used and position not in assessments:
            errors.append(
                CellError(
                    HEADER_ROW,
                    column,
                    f"{column}{HEADER_ROW}",
                    MARK_LABELS[position],
                    f"column {column} holds marks but CC{position} is not scheduled for {info.class_name} in "
                    f"{sheet['subject_code']}: schedule CC{position} first (a file does not create assessments)",
                )
            )
    if errors:
        return UploadReport(ok=False, rows=len(parsed.rows), errors=sort_errors(errors))

    changes: dict[int, list[service.MarkEntry]] = {}
    for position, assessment in assessments.items():
        stored = {int(r["student_id"]): _stored(r) for r in await service.grid(ctx, assessment)}
        entries = []
        for row in parsed.rows:
            pupil = by_code[row.code]
            new = row.marks.get(position, BLANK)
            old = stored.get(pupil.student_id, BLANK)
            if new != old:
                entries.append(service.MarkEntry(pupil.student_id, new.score, new.status))
        if entries:
            changes[position] = entries
    stale = []
    for position in changes:
        current = assessments[position]
        built = parsed.versions.get(position)
        if built is None:
            built = (int(current["id"]), 0)
        if built != (int(current["id"]), int(current["version"])):
            stale.append(
                f"CC{position} (column {MARK_COLUMNS[position]}) was saved after this file was made "
                f"(file: version {built[1]}, now: version {current['version']})"
            )
    if stale:
        raise service.StaleVersion(
            "; ".join(stale) + ". Nothing was written: download a fresh template and copy your changes into it.",
            extra={"assessments": [int(assessments[p]["id"]) for p in changes]},
        )
    for position, entries in changes.items():
        assessment = assessments[position]
        await service.save_grid(ctx, assessment, int(assessment["version"]), entries, reason)
    return UploadReport(
        ok=True,
        changed=len(changes),
        unchanged=len(assessments) - len(changes),
        marks=sum(len(e) for e in changes.values()),
        rows=len(parsed.rows),
    )


# -- HTTP --------------------------------------------------------------------------------------


def _disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", unicodedata.normalize("NFKD", filename)).strip("_") or "massar.xlsx"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def workbook(ctx: RequestContext, sheet_id: int) -> tuple[bytes, str]:
    """A sheet's Massar workbook and its file name (the subject's teacher or the director; API and portal)."""
    async with ctx.services.db.scoped(ctx.scope, write=False):
        info, pupils, marks = await template_for(ctx, sheet_id)
    content = await to_thread.run_sync(build_template, info, pupils, marks)
    return content, info.filename()


def workbook_response(content: bytes, filename: str) -> Response[bytes]:
    """The workbook as a download."""
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": _disposition(filename), "Cache-Control": "no-store"},
    )


async def upload_workbook(ctx: RequestContext, sheet_id: int, content: bytes, reason: str | None) -> UploadReport:
    """Check a filled-in workbook cell by cell and save its marks, all or nothing (API and portal).

    A file that is too large (413) or not a workbook (415) raises; every other problem is in the
    report (``ok`` false, nothing written).
    """
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        _, info = await load_sheet(ctx, sheet_id)
    policy = ContentPolicy.from_settings(ctx.services.settings)
    try:
        # Browsers declare spreadsheets inconsistently: the bytes decide (a zip archive).
        policy.check(len(content), XLSX, content)
    except ObjectTooLarge as exc:
        raise TooLarge(f"The file is larger than {exc.limit} bytes.") from None
    except UnsupportedType:
        raise UnsupportedMedia("This is not an Excel workbook: save it as .xlsx and try again.") from None
    maxima = {c.position: c.max_score for c in info.columns}
    parsed = await to_thread.run_sync(read_upload, content, info.identity, maxima)
    if parsed.fatal:
        return UploadReport(ok=False, errors=parsed.errors)
    async with db.scoped(ctx.scope, write=not parsed.errors):
        return await apply_upload(ctx, sheet_id, parsed, reason)


class SpreadsheetController(Controller):
    """``/api/v1/grades/sheets/{sheet_id}/xlsx``: the Massar workbook of a sheet, down and up."""

    path = "/api/v1/grades/sheets"
    tags = ["grades"]

    @get("/{sheet_id:int}/xlsx", opt={"permission": "grades.enter", "bulk_export": "grades.xlsx"}, media_type=XLSX)
    async def download(self, ctx: Ctx, sheet_id: FromPath[int]) -> Response[bytes]:
        """The sheet's marks as a Massar-layout workbook (the subject's teacher or the director)."""
        return workbook_response(*(await workbook(ctx, sheet_id)))

    @post(
        "/{sheet_id:int}/xlsx",
        opt={"permission": "grades.enter"},
        status_code=200,
        responses={
            422: ResponseSpec(UploadReport, description="Some cells are bad (all listed); nothing was written."),
        },
    )
    async def upload(
        self,
        ctx: Ctx,
        sheet_id: FromPath[int],
        data: Annotated[XlsxForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[UploadReport]:
        """Save the marks of a filled-in workbook: every cell is checked, and all or nothing is written.

        Uploading the same file again changes nothing. A file of another class, subject, semester
        or teacher, pupils missing from the file or not in the class, and marks for a CC not yet
        scheduled are reported (422); a grid saved since the file was made is a 409.
        """
        content = await data.file.read()
        report = await upload_workbook(ctx, sheet_id, content, (data.reason or "").strip() or None)
        return Response(report, status_code=200 if report.ok else 422)


SPREADSHEET_ROUTES: list[Any] = [SpreadsheetController]
