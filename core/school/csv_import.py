"""CSV import of a school's pupils and guardians, all or nothing, with a per-row report.

Three layers:

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
import re
import unicodedata
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
from core.identity import normalise_email
from core.school import service
from core.school.rules import normalise_pupil_code
from core.storage import ContentPolicy, ObjectTooLarge, UnsupportedType
from core.tenancy import TenantInfo

#: At most this many data rows per file.
MAX_ROWS = 5000
NAME_MAX = 100
CLASS_MAX = 60
EMAIL_MAX = 254
MIN_AGE, MAX_AGE = 3, 25
#: Column of errors about the file as a whole (encoding, size, structure).
FILE = "file"

#: Canonical column → accepted header names (compared case- and accent-insensitively, with
#: spaces and dashes read as ``_``: ``Date de naissance`` is ``date_de_naissance``).
COLUMNS: dict[str, tuple[str, ...]] = {
    "national_code": ("national_code", "code_massar", "massar", "code", "code_eleve", "code_national"),
    "last_name": ("last_name", "nom", "nom_fr"),
    "first_name": ("first_name", "prenom", "prenom_fr"),
    "last_name_ar": ("last_name_ar", "nom_ar"),
    "first_name_ar": ("first_name_ar", "prenom_ar"),
    "birth_date": ("birth_date", "date_naissance", "date_de_naissance", "naissance"),
    "gender": ("gender", "sexe", "sex", "genre"),
    "class": ("class", "classe", "class_name"),
    "guardian_email": ("guardian_email", "tuteur_email", "email_tuteur", "e_mail_tuteur", "tuteur_e_mail"),
    "guardian_name": ("guardian_name", "tuteur_nom", "nom_tuteur", "tuteur"),
    "guardian_name_ar": ("guardian_name_ar", "tuteur_nom_ar", "nom_tuteur_ar"),
    "guardian_relation": ("guardian_relation", "lien", "relation", "lien_de_parente", "lien_parente"),
}
REQUIRED = ("national_code", "last_name", "first_name", "class")
_ALIAS = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
_ORDER = {FILE: -1, **{column: i for i, column in enumerate(COLUMNS)}}
RELATIONS = {
    "mother": "mother",
    "mere": "mother",
    "father": "father",
    "pere": "father",
    "guardian": "guardian",
    "tuteur": "guardian",
    "tutrice": "guardian",
}
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_FR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RowError(msgspec.Struct, frozen=True):
    """One problem: the 1-based line (the header is row 1; 0 for the file as a whole) and the column."""

    row: int
    column: str
    value: str
    message: str


class StudentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A data row, normalised; a cell that failed validation is left empty."""

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
    errors: list[RowError]
    data_rows: int


class ParsedRow(msgspec.Struct, frozen=True):
    """One data row and its errors."""

    row: StudentRow
    errors: list[RowError]


class ImportReport(msgspec.Struct, kw_only=True):
    """The answer of an import: ``ok`` only when every row is valid (and, unless a dry run, written)."""

    ok: bool
    rows: int
    errors: list[RowError] = []
    created: int = 0
    #: Pupil–guardian links written (one guardian e-mail on two rows counts twice, one person).
    guardians_linked: int = 0
    dry_run: bool = False


class ImportForm(msgspec.Struct):
    """Multipart upload: the CSV file, and ``dry_run`` (``"true"`` validates without writing)."""

    file: UploadFile
    dry_run: str = "false"


# -- pure parsing ------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case- and accent-insensitive form: ``Prénom`` → ``prenom``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def header_key(name: str) -> str:
    """A header cell as looked up in :data:`COLUMNS`: ``Code Massar`` → ``code_massar``."""
    return re.sub(r"[^0-9a-z]+", "_", _fold(name.strip())).strip("_")


def sniff_delimiter(text: str) -> str:
    """``;`` when the first non-blank line has more semicolons than commas (outside quotes), else ``,``."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {",": 0, ";": 0}
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    return ";" if counts[";"] > counts[","] else ","


def _shown(value: str) -> str:
    return value if len(value) <= 120 else value[:119] + "…"


def parse_date(value: str, today: date) -> date:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY``, a real day, for a pupil aged 3 to 25; ``ValueError`` otherwise."""
    if match := _ISO_DATE.match(value):
        year, month, day = (int(g) for g in match.groups())
    elif match := _FR_DATE.match(value):
        day, month, year = (int(g) for g in match.groups())
    else:
        raise ValueError("not a date: write YYYY-MM-DD or DD/MM/YYYY")
    try:
        born = date(year, month, day)
    except ValueError:
        raise ValueError("no such day in the calendar") from None
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_AGE <= age <= MAX_AGE:
        raise ValueError(f"implausible birth date for a pupil (age {age}; expected {MIN_AGE} to {MAX_AGE})")
    return born


def _decode(data: bytes) -> str | RowError:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return RowError(0, FILE, "", "the file is UTF-16 text: save it as “CSV UTF-8” and try again")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return RowError(
            0,
            FILE,
            "",
            f"the file is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}): "
            "save it as “CSV UTF-8” and try again",
        )
    if "\x00" in text:
        return RowError(0, FILE, "", "the file contains NUL bytes: it is not a CSV text file")
    return text


def _records(text: str) -> tuple[list[tuple[int, list[str]]], RowError | None]:
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
        return out, RowError(reader.line_num, FILE, "", f"unreadable CSV: {exc}")
    return out, None


def _check_row(line: int, cells: list[str], columns: dict[str, int], width: int, today: date) -> ParsedRow:
    """Validate every cell of one data row."""
    errors: list[RowError] = []

    def cell(column: str) -> str:
        index = columns.get(column)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def fail(column: str, value: str, message: str) -> str:
        errors.append(RowError(line, column, _shown(value), message))
        return ""

    def text(column: str, limit: int, *, required: bool = False) -> str:
        value = cell(column)
        if not value:
            return fail(column, value, "required") if required else ""
        if len(value) > limit:
            return fail(column, value, f"longer than {limit} characters")
        return value

    code = cell("national_code")
    if not code:
        fail("national_code", code, "required")
    else:
        try:
            code = normalise_pupil_code(code)
        except ValueError as exc:
            code = fail("national_code", code, str(exc))
    last_name = text("last_name", NAME_MAX, required=True)
    first_name = text("first_name", NAME_MAX, required=True)
    last_name_ar = text("last_name_ar", NAME_MAX)
    first_name_ar = text("first_name_ar", NAME_MAX)
    born: date | None = None
    if raw := cell("birth_date"):
        try:
            born = parse_date(raw, today)
        except ValueError as exc:
            fail("birth_date", raw, str(exc))
    gender = cell("gender").upper()
    if gender not in ("", "F", "M"):
        gender = fail("gender", cell("gender"), "must be F or M")
    class_name = text("class", CLASS_MAX, required=True)
    email = normalise_email(cell("guardian_email"))
    if email and (len(email) > EMAIL_MAX or not _EMAIL.match(email)):
        email = fail("guardian_email", cell("guardian_email"), "not an e-mail address")
    guardian_name = text("guardian_name", NAME_MAX)
    guardian_name_ar = text("guardian_name_ar", NAME_MAX)
    relation = ""
    if raw := cell("guardian_relation"):
        relation = RELATIONS.get(header_key(raw), "")
        if not relation:
            fail("guardian_relation", raw, "must be mother, father or guardian (mère, père, tuteur)")
    if not cell("guardian_email") and (guardian_name or guardian_name_ar or relation):
        fail("guardian_email", "", "required when a guardian name or relation is given")
    for index in range(width, len(cells)):
        if cells[index].strip():
            fail(f"#{index + 1}", cells[index].strip(), "this cell is beyond the last column of the header")
    row = StudentRow(
        row=line,
        national_code=code,
        last_name=last_name,
        first_name=first_name,
        last_name_ar=last_name_ar,
        first_name_ar=first_name_ar,
        birth_date=born,
        gender=gender,
        class_name=class_name,
        guardian_email=email,
        guardian_name=guardian_name,
        guardian_name_ar=guardian_name_ar,
        guardian_relation=(relation or "guardian") if email else "",
    )
    return ParsedRow(row, errors)


def parse_file(data: bytes, *, today: date | None = None) -> ParsedFile:
    """Parse and validate a pupils CSV; see :func:`parse_students_csv`."""
    today = today or date.today()
    text = _decode(data)
    if isinstance(text, RowError):
        return ParsedFile([], [text], 0)
    records, broken = _records(text)
    if broken is not None:
        return ParsedFile([], [broken], max(len(records) - 1, 0))
    if not records:
        return ParsedFile([], [RowError(0, FILE, "", "the file is empty")], 0)
    (header_line, header), body = records[0], records[1:]
    errors: list[RowError] = []
    if len(body) > MAX_ROWS:
        message = f"the file has {len(body)} rows; at most {MAX_ROWS} can be imported at once: split it"
        return ParsedFile([], [RowError(0, FILE, str(len(body)), message)], len(body))
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        column = _ALIAS.get(header_key(name))
        if column is None:
            continue
        if column in columns:
            first = header[columns[column]].strip()
            errors.append(RowError(header_line, column, name.strip(), f"two columns mean {column}: {first!r} and this"))
            continue
        columns[column] = index
    for column in REQUIRED:
        if column not in columns:
            accepted = ", ".join(COLUMNS[column])
            errors.append(RowError(header_line, column, "", f"required column missing (accepted names: {accepted})"))
    if errors:
        return ParsedFile([], errors, len(body))
    if not body:
        return ParsedFile([], [RowError(0, FILE, "", "no pupils: the file has only a header")], 0)
    rows: list[StudentRow] = []
    first_seen: dict[str, int] = {}
    for line, cells in body:
        parsed = _check_row(line, cells, columns, len(header), today)
        rows.append(parsed.row)
        errors.extend(parsed.errors)
        code = parsed.row.national_code
        if code and code in first_seen:
            errors.append(RowError(line, "national_code", code, f"duplicate of row {first_seen[code]} in this file"))
        elif code:
            first_seen[code] = line
    return ParsedFile(rows, sort_errors(errors), len(body))


def parse_students_csv(data: bytes, *, today: date | None = None) -> tuple[list[StudentRow], list[RowError]]:
    """Parse a pupils CSV (UTF-8, with or without BOM; ``,`` or ``;``) and report every bad cell.

    Returns every data row (best effort: a cell that failed is left empty) and every error; a file
    may be imported only when the error list is empty. Structural problems (encoding, missing
    column, too many rows) give their error and no rows.
    """
    parsed = parse_file(data, today=today)
    return parsed.rows, parsed.errors


def sort_errors(errors: list[RowError]) -> list[RowError]:
    """By row, then in column order."""
    return sorted(errors, key=lambda e: (e.row, _ORDER.get(e.column, len(_ORDER))))


# -- database checks and writes (inside the caller's scoped transaction) -----------------------


async def check_rows(
    ctx: RequestContext, school: TenantInfo, rows: list[StudentRow], known: set[tuple[int, str]]
) -> tuple[list[RowError], dict[int, int]]:
    """Errors only the database can tell, and each row's class id (by row number).

    ``known`` holds ``(row, column)`` pairs already reported, which are not checked again.
    """
    db = ctx.services.db
    year = await service.current_year(db)
    classes = await service.list_classes(ctx, school)
    exact = {c["name"]: int(c["id"]) for c in classes}
    folded: dict[str, list[int]] = {}
    for c in classes:
        folded.setdefault(c["name"].casefold(), []).append(int(c["id"]))
    named = {r.guardian_email for r in rows if r.guardian_email and r.guardian_name}
    existing: dict[str, bool] = {}
    errors: list[RowError] = []
    class_of: dict[int, int] = {}
    for row in rows:
        if row.class_name and (row.row, "class") not in known:
            class_id = exact.get(row.class_name)
            matches = folded.get(row.class_name.casefold(), [])
            if class_id is None and len(matches) == 1:
                class_id = matches[0]
            if class_id is None:
                message = f"no class named {row.class_name!r} in this school for {year['label']}"
                errors.append(RowError(row.row, "class", _shown(row.class_name), message))
            else:
                class_of[row.row] = class_id
        if row.national_code and (row.row, "national_code") not in known:
            if await service.code_taken(db, row.national_code):
                message = "already registered (in this or another school)"
                errors.append(RowError(row.row, "national_code", row.national_code, message))
        email = row.guardian_email
        if email and email not in named and (row.row, "guardian_email") not in known:
            if email not in existing:
                existing[email] = await db.fetchval("SELECT id FROM person WHERE email = {}", email) is not None
            if not existing[email]:
                message = "required for a new guardian (no account uses this e-mail yet)"
                errors.append(RowError(row.row, "guardian_name", "", message))
    return errors, class_of


async def write_rows(
    ctx: RequestContext, school: TenantInfo, rows: list[StudentRow], class_of: dict[int, int]
) -> tuple[int, int]:
    """Create, enrol and link every row; returns ``(pupils created, guardian links)``.

    One e-mail is one person: the first name given for it in the file names a new guardian.
    """
    names: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row.guardian_email and row.guardian_name:
            names.setdefault(row.guardian_email, (row.guardian_name, row.guardian_name_ar))
    created = links = 0
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
            await service.add_guardian(
                ctx,
                student,
                email=row.guardian_email,
                full_name=full_name,
                full_name_ar=full_name_ar,
                relation=row.guardian_relation or "guardian",
                locale="ar",
            )
            links += 1
    return created, links


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
    class_of: dict[int, int] = {}
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=write):
        if parsed.rows:
            found, class_of = await check_rows(ctx, school, parsed.rows, {(e.row, e.column) for e in errors})
            errors = sort_errors(errors + found)
        if write and not errors:
            try:
                created, links = await write_rows(ctx, school, parsed.rows, class_of)
            except WRITE_CONFLICTS as exc:
                reason = exc.detail if isinstance(exc, HTTPException) else "a pupil code was registered meanwhile"
                raise service.Conflict(f"Nothing was imported: {reason}") from None
    return ImportReport(
        ok=not errors,
        rows=parsed.data_rows,
        errors=errors,
        created=created,
        guardians_linked=links,
        dry_run=dry_run,
    )


def _flag(value: str) -> bool:
    folded = value.strip().lower()
    if folded in ("true", "1", "yes", "on"):
        return True
    if folded in ("false", "0", "no", "off", ""):
        return False
    raise service.Invalid("dry_run", "must be true or false")


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
    policy = ContentPolicy.from_settings(ctx.services.settings)
    try:
        # Browsers declare CSV files inconsistently: the bytes decide (UTF-8 text, no NUL).
        policy.check(len(content), "text/csv", content)
    except ObjectTooLarge as exc:
        raise PayloadTooLarge(f"The file is larger than {exc.limit} bytes.") from None
    except UnsupportedType:
        raise UnsupportedMediaType("This is not a UTF-8 CSV text file: save it as “CSV UTF-8” and try again.") from None
    report = await import_students(ctx, school, content, dry_run=dry_run)
    status = 422 if not report.ok else 200 if dry_run else 201
    return Response(report, status_code=status)


IMPORT_ROUTES: list[Any] = [import_students_csv]
