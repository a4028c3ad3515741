"""A director's CSV of their school's pupils and guardians, imported all or nothing.

It shares the reading and checking of a pupil row (:mod:`core.school.pupil_rows`) and the
set-based checks over staged rows (:mod:`core.school.pupil_staging`) with the region's onboarding
of pupils and guardians (:mod:`tenants.onboarding_pupils`).

* :func:`parse_students_csv` — pure: bytes in, typed rows and *every* cell error out.
* :func:`check_rows` and :func:`write_rows` — inside the caller's ``db.scoped`` transaction:
  what only the database can tell (the school's classes this year, pupil codes registered anywhere
  on the platform), then the writes.
* ``POST /api/v1/school/import/students`` — a multipart upload: 422 with the report when any row is
  bad (nothing written), 201 when every row was written in one transaction, 200 for a dry run.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Response, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import Body

from core.api.platform import PayloadTooLarge, UnsupportedMediaType
from core.context import Ctx, RequestContext
from core.db import INTEGRITY_ERRORS
from core.errors import Conflict, Invalid
from core.school import guardians, service
from core.school.pupil_rows import (
    FILE,
    MAX_ROWS,
    MESSAGES,
    PUPIL_COLUMNS,
    SCHOOL_MESSAGES,
    CellError,
    GuardianCell,
    PupilRow,
    check_pupil,
    map_header,
    problem,
    sniff_delimiter,
)
from core.school.pupil_staging import ErrorLog, PupilChecks, Stage, check_staged_pupils, stage_pupil
from core.storage import ContentPolicy, ObjectTooLarge, UnsupportedType
from core.tenancy import TenantInfo

# -- the director's file: one school, one guardian a row ---------------------------------------

#: The director's columns: a pupil row without ``school``, with one guardian (its ``guardian_…``
#: columns are read as :func:`check_pupil`'s ``guardian1_…``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "national_code": ("code", *PUPIL_COLUMNS["national_code"]),
    **{c: PUPIL_COLUMNS[c] for c in ("last_name", "first_name", "last_name_ar", "first_name_ar", "birth_date")},
    **{c: PUPIL_COLUMNS[c] for c in ("gender", "class")},
    "guardian1_email": ("guardian_email", "tuteur_email", "email_tuteur", "e_mail_tuteur", "tuteur_e_mail"),
    "guardian1_name": ("guardian_name", "tuteur_nom", "nom_tuteur", "tuteur"),
    "guardian1_name_ar": ("guardian_name_ar", "tuteur_nom_ar", "nom_tuteur_ar"),
    "guardian1_relation": ("guardian_relation", "lien", "relation", "lien_de_parente", "lien_parente"),
}
REQUIRED = ("national_code", "last_name", "first_name", "class")
#: How the director's report names the guardian columns.
_REPORTED = {f"guardian1_{f}": f"guardian_{f}" for f in ("email", "name", "name_ar", "relation")}
_ORDER = {FILE: -1, **{_REPORTED.get(column, column): i for i, column in enumerate(COLUMNS)}}


class StudentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A data row of the director's file, normalised; a cell that failed validation is left empty."""

    row: int
    national_code: str
    last_name: str
    first_name: str
    last_name_ar: str = ""
    first_name_ar: str = ""
    birth_date: date | None = None
    gender: str = ""
    class_name: str = ""
    guardian_email: str = ""
    guardian_name: str = ""
    guardian_name_ar: str = ""
    guardian_relation: str = ""


class ParsedFile(msgspec.Struct, frozen=True):
    """What parsing found: the rows, every error, and how many data rows the file holds."""

    rows: list[StudentRow]
    errors: list[CellError]
    data_rows: int


class ImportReport(msgspec.Struct, kw_only=True):
    """The answer of an import: ``ok`` only when every row is valid (and, unless a dry run, written)."""

    ok: bool
    rows: int
    errors: list[CellError] = []
    created: int = 0
    #: Pupil–guardian links written at once: guardians already known to the school (a role there, or a
    #: guardian of one of its pupils). One e-mail on two rows counts twice, one person.
    guardians_linked: int = 0
    #: Invitations mailed: every other guardian (a new address or an account elsewhere, indistinguishably)
    #: is linked when they accept the one-time link.
    guardians_invited: int = 0
    dry_run: bool = False


class ImportForm(msgspec.Struct):
    """Multipart upload: the CSV file, and ``dry_run`` (``"true"`` validates without writing)."""

    file: UploadFile
    dry_run: str = "false"


def _decode(data: bytes) -> str | CellError:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return problem(0, FILE, "", "utf16")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return problem(0, FILE, "", "not_utf8_at", byte=f"{data[exc.start]:02x}", offset=exc.start)
    if "\x00" in text:
        return problem(0, FILE, "", "nul_bytes")
    return text


def _records(text: str) -> tuple[list[tuple[int, list[str]]], CellError | None]:
    """Non-blank records with the line each starts on (quoted cells may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    out: list[tuple[int, list[str]]] = []
    previous = 0
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                out.append((line, cells))
    except csv.Error as exc:
        return out, problem(reader.line_num, FILE, "", "bad_csv", detail=exc)
    return out, None


def _reported(error: CellError) -> CellError:
    column = _REPORTED.get(error.column)
    return error if column is None else msgspec.structs.replace(error, column=column)


def _director_row(
    line: int, cells: list[str], columns: dict[str, int], width: int, today: date
) -> tuple[StudentRow, list[CellError]]:
    """One data row of the director's file, checked by :func:`check_pupil`."""
    pupil, errors = check_pupil(line, cells, columns, today, school=False, class_required=True)
    errors = [_reported(e) for e in errors]
    for index in range(width, len(cells)):
        if cells[index].strip():
            errors.append(problem(line, f"#{index + 1}", cells[index].strip(), "beyond_header"))
    guardian = pupil.guardians[0] if pupil.guardians else None
    row = StudentRow(
        row=line,
        national_code=pupil.national_code,
        last_name=pupil.last_name,
        first_name=pupil.first_name,
        last_name_ar=pupil.last_name_ar,
        first_name_ar=pupil.first_name_ar,
        birth_date=pupil.birth_date,
        gender=pupil.gender,
        class_name=pupil.class_name,
        guardian_email=guardian.email if guardian else "",
        guardian_name=guardian.name if guardian else "",
        guardian_name_ar=guardian.name_ar if guardian else "",
        guardian_relation=guardian.relation if guardian else "",
    )
    return row, errors


def parse_file(data: bytes, *, today: date | None = None) -> ParsedFile:
    """Parse and validate a pupils CSV; see :func:`parse_students_csv`."""
    today = today or date.today()
    text = _decode(data)
    if isinstance(text, CellError):
        return ParsedFile([], [text], 0)
    records, broken = _records(text)
    if broken is not None:
        return ParsedFile([], [broken], max(len(records) - 1, 0))
    if not records:
        return ParsedFile([], [problem(0, FILE, "", "empty")], 0)
    (header_line, header), body = records[0], records[1:]
    if len(body) > MAX_ROWS:
        return ParsedFile([], [problem(0, FILE, str(len(body)), "too_many_rows", limit=MAX_ROWS)], len(body))
    columns, header_errors = map_header(COLUMNS, REQUIRED, header_line, header, name_unknown=False)
    if header_errors:
        return ParsedFile([], [_reported(e) for e in header_errors], len(body))
    if not body:
        return ParsedFile([], [problem(0, FILE, "", "only_header")], 0)
    rows: list[StudentRow] = []
    errors: list[CellError] = []
    first_seen: dict[str, int] = {}
    for line, cells in body:
        row, found = _director_row(line, cells, columns, len(header), today)
        rows.append(row)
        errors.extend(found)
        code = row.national_code
        if code and code in first_seen:
            errors.append(problem(line, "national_code", code, "duplicate_row", first=first_seen[code]))
        elif code:
            first_seen[code] = line
    return ParsedFile(rows, sort_errors(errors), len(body))


def parse_students_csv(data: bytes, *, today: date | None = None) -> tuple[list[StudentRow], list[CellError]]:
    """Parse a pupils CSV (UTF-8, with or without BOM; ``,`` or ``;``) and report every bad cell.

    Returns every data row (best effort: a cell that failed is left empty) and every error; a file
    may be imported only when the error list is empty. Structural problems (encoding, missing
    column, too many rows) give their error and no rows.
    """
    parsed = parse_file(data, today=today)
    return parsed.rows, parsed.errors


def sort_errors(errors: list[CellError]) -> list[CellError]:
    """By row, then in column order."""
    return sorted(errors, key=lambda e: (e.row, _ORDER.get(e.column, len(_ORDER))))


# -- the director's checks and writes (inside the caller's scoped transaction) -------------------

#: The director's import reports with its own codes and columns.
DIRECTOR_CHECKS = PupilChecks(
    messages={**MESSAGES, **SCHOOL_MESSAGES},
    existing="refuse",
    no_class="class_unknown",
    code_taken="code_taken",
    guardian_unknown="guardian_unknown",
    guardian_column=lambda n: "guardian_name",
)


def _pupil_of(row: StudentRow) -> PupilRow:
    guardians = ()
    if row.guardian_email:
        guardian = GuardianCell(1, row.guardian_email, row.guardian_name, row.guardian_name_ar, row.guardian_relation)
        guardians = (guardian,)
    return PupilRow(
        line=row.row,
        school="",
        national_code=row.national_code,
        last_name=row.last_name,
        first_name=row.first_name,
        last_name_ar=row.last_name_ar,
        first_name_ar=row.first_name_ar,
        birth_date=row.birth_date,
        gender=row.gender,
        class_name=row.class_name,
        guardians=guardians,
    )


async def check_rows(
    ctx: RequestContext, school: TenantInfo, rows: list[StudentRow], known: set[tuple[int, str]]
) -> tuple[list[CellError], dict[int, int]]:
    """Errors only the database can tell, and each row's class id (by row number): the staged checks
    region onboarding runs, for one school. ``known`` holds ``(row, column)`` pairs already reported."""
    db = ctx.services.db
    year = await service.current_year(db)
    cols = school.scope_columns()
    stage = Stage(db, "onb_student", "onb_guardian")
    await stage.create()
    for row in rows:
        stage_pupil(stage, _pupil_of(row), (school.id, int(cols["province_id"])))
        if stage.full():
            await stage.flush()
    await stage.flush()
    await stage.index()
    errors = ErrorLog()
    await check_staged_pupils(db, ctx.scope, errors, year, DIRECTOR_CHECKS, school)
    class_of = {
        int(r["line"]): int(r["class_id"])
        for r in await db.fetch("SELECT line, class_id FROM onb_student WHERE class_id IS NOT NULL")
    }
    return [e for e in errors.listed if (e.row, e.column) not in known], class_of


async def write_rows(
    ctx: RequestContext, school: TenantInfo, rows: list[StudentRow], class_of: dict[int, int]
) -> tuple[int, int, list[guardians.PendingMail]]:
    """Create and enrol every row and link or invite its guardian; returns ``(pupils, links, mails to send)``.

    A guardian goes through :func:`core.school.guardians.link`, as a director's single link does: linked at
    once when already known to the school, else invited. The first name given for an e-mail in the file
    names it.
    """
    names: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row.guardian_email and row.guardian_name:
            names.setdefault(row.guardian_email, (row.guardian_name, row.guardian_name_ar))
    created = links = 0
    mails: list[guardians.PendingMail] = []
    for row in rows:
        student_id = await service.create_student(
            ctx,
            school,
            national_code=row.national_code,
            first_name=row.first_name,
            last_name=row.last_name,
            first_name_ar=row.first_name_ar,
            last_name_ar=row.last_name_ar,
            birth_date=row.birth_date,
            gender=row.gender,
        )
        student = await service.get_student(ctx, student_id)
        await service.enrol(ctx, student, class_of[row.row])
        created += 1
        if row.guardian_email:
            full_name, full_name_ar = names.get(row.guardian_email, ("", ""))
            _, pending = await guardians.link(
                ctx,
                student,
                email=row.guardian_email,
                full_name=full_name,
                full_name_ar=full_name_ar,
                relation=row.guardian_relation or "guardian",
                locale="ar",
            )
            if pending is None:
                links += 1
            else:
                mails.append(pending)
    return created, links, mails


#: Failures while writing that mean "someone else got there first" rather than a bug.
WRITE_CONFLICTS: tuple[type[BaseException], ...] = (HTTPException, *INTEGRITY_ERRORS)


async def import_students(ctx: RequestContext, school: TenantInfo, data: bytes, *, dry_run: bool) -> ImportReport:
    """Validate a file fully, then (unless a dry run or any error) write it in one scoped transaction.

    A failure while writing rolls everything back and raises a 409 naming the reason.
    """
    parsed = parse_file(data)
    errors = list(parsed.errors)
    write = not dry_run and not errors
    created = links = 0
    mails: list[guardians.PendingMail] = []
    class_of: dict[int, int] = {}
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=write):
        if parsed.rows:
            found, class_of = await check_rows(ctx, school, parsed.rows, {(e.row, e.column) for e in errors})
            errors = sort_errors(errors + found)
        if write and not errors:
            try:
                created, links, mails = await write_rows(ctx, school, parsed.rows, class_of)
            except WRITE_CONFLICTS as exc:
                reason = exc.detail if isinstance(exc, HTTPException) else "a pupil code was registered meanwhile"
                raise Conflict(f"Nothing was imported: {reason}") from None
    for pending in mails:  # after the commit: an import rolled back invites nobody
        await guardians.send(ctx.services, pending)
    return ImportReport(
        ok=not errors,
        rows=parsed.data_rows,
        errors=errors,
        created=created,
        guardians_linked=links,
        guardians_invited=len(mails),
        dry_run=dry_run,
    )


#: Why an uploaded file is refused before it is read (message ids; ``{limit}`` in bytes).
TOO_LARGE = "The file is larger than {limit} bytes."
NOT_CSV = "This is not a UTF-8 CSV text file: save it as “CSV UTF-8” and try again."


def upload_problem(ctx: RequestContext, content: bytes) -> tuple[str, dict[str, Any]] | None:
    """Why the upload policy refuses ``content`` (a message id and its values), or ``None``.

    Browsers declare CSV files inconsistently: the bytes decide (UTF-8 text, no NUL).
    """
    policy = ContentPolicy.from_settings(ctx.services.settings)
    try:
        policy.check(len(content), "text/csv", content)
    except ObjectTooLarge as exc:
        return TOO_LARGE, {"limit": exc.limit}
    except UnsupportedType:
        return NOT_CSV, {}
    return None


def _flag(value: str) -> bool:
    folded = value.strip().lower()
    if folded in ("true", "1", "yes", "on"):
        return True
    if folded in ("false", "0", "no", "off", ""):
        return False
    raise Invalid("dry_run", "must be true or false")


@post(
    "/api/v1/school/import/students",
    opt={"permission": "school.manage"},
    tags=["school"],
    status_code=201,
    responses={
        200: ResponseSpec(ImportReport, description="Dry run: every row is valid; nothing was written."),
        422: ResponseSpec(ImportReport, description="Some rows are bad (all listed); nothing was written."),
    },
)
async def import_students_csv(
    ctx: Ctx, data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> Response[ImportReport]:
    """Import pupils (and their guardians) from a CSV file into classes of this school; all or nothing.

    Columns (case-insensitive, French names accepted): ``national_code``/``code_massar``,
    ``last_name``/``nom``, ``first_name``/``prenom`` and ``class``/``classe`` are required;
    ``nom_ar``, ``prenom_ar``, ``birth_date``/``date_naissance`` (YYYY-MM-DD or DD/MM/YYYY),
    ``gender``/``sexe`` (F/M), ``guardian_email``/``tuteur_email``, ``guardian_name``/``tuteur_nom``,
    ``guardian_name_ar``/``tuteur_nom_ar`` and ``guardian_relation``/``lien`` are optional.
    UTF-8 (with or without BOM), separated by ``,`` or ``;``, at most 5,000 rows.
    """
    school = service.require_school(ctx)
    dry_run = _flag(data.dry_run)
    content = await data.file.read()
    refused = upload_problem(ctx, content)
    if refused is not None:
        message, params = refused
        error = PayloadTooLarge if "limit" in params else UnsupportedMediaType
        raise error(message.format(**params))
    report = await import_students(ctx, school, content, dry_run=dry_run)
    status = 422 if not report.ok else 200 if dry_run else 201
    return Response(report, status_code=status)


IMPORT_ROUTES: list[Any] = [import_students_csv]
