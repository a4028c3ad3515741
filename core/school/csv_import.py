"""Pupils and guardians from files: the one place where a pupil row is read and checked.

Two importers share it: a director's CSV of their school's pupils (``POST
/api/v1/school/import/students``, below) and a region's onboarding of pupils and guardians
(:mod:`tenants.onboarding_rows`, which reads CSV or XLSX and stages rows for set-based checks).
Both read a header with :func:`map_header` and every data row with :func:`check_pupil`, which
checks each cell and reports every problem as a :class:`CellError` with a stable ``code`` (a key of
:data:`MESSAGES`) and the values of its message, so that pages can translate it.

The text helpers (:func:`fold`, :func:`header_key`, :func:`sniff_delimiter`, :func:`parse_date`,
:data:`EMAIL_RE`) are public for the other readers of tabular files.

The director's import, all or nothing:

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
from collections.abc import Callable, Mapping
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

#: At most this many data rows per file (the director's import).
MAX_ROWS = 5000
NAME_MAX = 100
CLASS_MAX = 60
EMAIL_MAX = 254
MIN_AGE, MAX_AGE = 3, 25
#: Column of errors about the file as a whole (encoding, size, structure).
FILE = "file"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
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


# -- text helpers ------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: ``Prénom`` → ``prenom``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def header_key(name: str) -> str:
    """A header cell as looked up in a column table: ``Code Massar`` → ``code_massar``."""
    return re.sub(r"[^0-9a-z]+", "_", fold(name.strip())).strip("_")


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


def shown(value: str) -> str:
    """A cell value as quoted in an error (at most 120 characters)."""
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


# -- errors ------------------------------------------------------------------------------------


class CellError(msgspec.Struct, frozen=True):
    """One problem: the 1-based line (the header is line 1; 0 for the whole file), the column, the value,
    an English message, a stable ``code`` (a key of :data:`MESSAGES`) and the values formatted into it."""

    row: int
    column: str
    value: str
    message: str
    code: str = ""
    params: dict[str, str] = {}


#: The director's import reports the same errors.
RowError = CellError

#: Every code of a file or pupil-row problem → its message id (English, with ``{named}`` values).
MESSAGES: dict[str, str] = {
    "not_csv_xlsx": "this is not a CSV or XLSX file",
    "old_excel": "this is an old Excel (.xls) workbook: save it as .xlsx or “CSV UTF-8” and try again",
    "utf16": "the file is UTF-16 text: save it as “CSV UTF-8” and try again",
    "not_utf8": "the file is not UTF-8 text: save it as “CSV UTF-8” and try again",
    "not_utf8_at": "the file is not UTF-8 text (invalid byte 0x{byte} at offset {offset}): "
    "save it as “CSV UTF-8” and try again",
    "nul_bytes": "the file contains NUL bytes: it is not a CSV text file",
    "bad_csv": "unreadable CSV: {detail}",
    "empty": "the file is empty",
    "too_many_rows": "more than {limit} rows: split the file",
    "only_header": "the file has only a header row",
    "two_columns": "two columns mean {column}: {first} and this",
    "missing_column": "required column missing (accepted names: {accepted})",
    "unknown_columns": "unrecognised column names",
    "required": "required",
    "too_long": "longer than {limit} characters",
    "not_email": "not an e-mail address",
    "pupil_code": "not a pupil code (one letter followed by nine digits, e.g. J130012345)",
    "date_format": "not a date: write YYYY-MM-DD or DD/MM/YYYY",
    "no_such_day": "no such day in the calendar",
    "implausible_birth": "implausible birth date for a pupil (age {age}; expected {low} to {high})",
    "gender": "must be F or M",
    "relation": "must be mother, father or guardian (mère, père, tuteur)",
    "guardian_email_required": "required when a guardian name or relation is given",
    "guardian_twice": "the same guardian is named twice on this row",
    "duplicate_row": "duplicate of row {first} in this file",
}
#: Codes only the director's import gives (checked against one school, row by row).
SCHOOL_MESSAGES: dict[str, str] = {
    "beyond_header": "this cell is beyond the last column of the header",
    "class_unknown": "no class named {name} in this school for {year}",
    "code_taken": "already registered (in this or another school)",
    "guardian_unknown": "required for a new guardian (no account uses this e-mail yet)",
}


def problem_maker(messages: Mapping[str, str]) -> Callable[..., CellError]:
    """A :func:`problem` that looks codes up in ``messages``."""

    def make(row: int, column: str, value: str, code: str, /, **params: object) -> CellError:
        values = {k: str(v) for k, v in params.items()}
        return CellError(row, column, shown(value), messages[code].format(**values), code, values)

    return make


#: An error with its code and values (the English message is formatted from :data:`MESSAGES`).
problem = problem_maker({**MESSAGES, **SCHOOL_MESSAGES})


class FileProblem(Exception):
    """The file as a whole cannot be read (format, encoding, structure)."""

    def __init__(self, error: CellError) -> None:
        super().__init__(error.message)
        self.error = error


def file_error(code: str, value: str = "", row: int = 0, **params: object) -> FileProblem:
    """A :class:`FileProblem` about the whole file."""
    return FileProblem(problem(row, FILE, value, code, **params))


# -- header and cells --------------------------------------------------------------------------

#: Canonical pupil column → accepted header names (compared with :func:`header_key`: case- and
#: accent-insensitively, with spaces and dashes read as ``_``: ``Date de naissance`` is ``date_de_naissance``).
PUPIL_COLUMNS: dict[str, tuple[str, ...]] = {
    "school": ("school", "school_code", "ecole", "etablissement", "code_etablissement"),
    "national_code": ("national_code", "code_massar", "massar", "code_eleve", "code_national"),
    "last_name": ("last_name", "nom", "nom_fr"),
    "first_name": ("first_name", "prenom", "prenom_fr"),
    "last_name_ar": ("last_name_ar", "nom_ar"),
    "first_name_ar": ("first_name_ar", "prenom_ar"),
    "birth_date": ("birth_date", "date_naissance", "date_de_naissance", "naissance"),
    "gender": ("gender", "sexe", "sex", "genre"),
    "class": ("class", "classe", "class_name"),
    **{
        f"guardian{n}_{field}": tuple(f"{prefix}{n}_{name}" for prefix in ("guardian", "tuteur") for name in names)
        for n in (1, 2)
        for field, names in (
            ("email", ("email", "e_mail")),
            ("name", ("name", "nom")),
            ("name_ar", ("name_ar", "nom_ar")),
            ("relation", ("relation", "lien")),
        )
    },
}


def map_header(
    columns: Mapping[str, tuple[str, ...]],
    required: tuple[str, ...],
    line: int,
    header: list[str],
    *,
    name_unknown: bool = True,
) -> tuple[dict[str, int], list[CellError]]:
    """Positions of the canonical ``columns`` in a header row, and the header's errors.

    With ``name_unknown``, a header that has errors also lists the names it did not recognise.
    """
    aliases = {alias: column for column, names in columns.items() for alias in names}
    found: dict[str, int] = {}
    errors: list[CellError] = []
    unknown: list[str] = []
    for index, name in enumerate(header):
        column = aliases.get(header_key(name))
        if column is None:
            if name.strip():
                unknown.append(name.strip())
            continue
        if column in found:
            first = header[found[column]].strip()
            errors.append(problem(line, column, name.strip(), "two_columns", column=column, first=repr(first)))
            continue
        found[column] = index
    for column in required:
        if column not in found:
            errors.append(problem(line, column, "", "missing_column", accepted=", ".join(columns[column])))
    if errors and unknown and name_unknown:
        errors.append(problem(line, FILE, ", ".join(unknown)[:120], "unknown_columns"))
    return found, errors


class Cells:
    """Reads and checks the cells of one data row, collecting its errors."""

    __slots__ = ("cells", "columns", "errors", "line", "make")

    def __init__(
        self, line: int, cells: list[str], columns: dict[str, int], make: Callable[..., CellError] = problem
    ) -> None:
        self.line, self.cells, self.columns, self.make = line, cells, columns, make
        self.errors: list[CellError] = []

    def get(self, column: str) -> str:
        index = self.columns.get(column)
        return self.cells[index].strip() if index is not None and index < len(self.cells) else ""

    def fail(self, column: str, value: str, code: str, **params: object) -> str:
        self.errors.append(self.make(self.line, column, value, code, **params))
        return ""

    def text(self, column: str, limit: int, *, required: bool = False) -> str:
        value = self.get(column)
        if not value:
            return self.fail(column, value, "required") if required else ""
        if len(value) > limit:
            return self.fail(column, value, "too_long", limit=limit)
        return value

    def email(self, column: str, *, required: bool = False) -> str:
        raw = self.get(column)
        if not raw:
            return self.fail(column, raw, "required") if required else ""
        value = normalise_email(raw)
        if len(value) > EMAIL_MAX or not EMAIL_RE.match(value):
            return self.fail(column, raw, "not_email")
        return value

    def school(self) -> str:
        raw = self.get("school")
        if not raw:
            return self.fail("school", raw, "required")
        if len(raw) > 80:
            return self.fail("school", raw, "too_long", limit=80)
        return raw


class GuardianCell(msgspec.Struct, frozen=True):
    """A guardian named on a pupil's row (position 1 or 2)."""

    position: int
    email: str
    name: str
    name_ar: str
    relation: str


class PupilRow(msgspec.Struct, frozen=True, kw_only=True):
    """A pupil row, normalised (a cell that failed is left empty), with up to two guardians."""

    line: int
    school: str
    national_code: str
    last_name: str
    first_name: str
    last_name_ar: str
    first_name_ar: str
    birth_date: date | None
    gender: str
    class_name: str
    guardians: tuple[GuardianCell, ...]


def _date_problem(c: Cells, raw: str, reason: str) -> None:
    """Map :func:`parse_date`'s reason onto an error code."""
    if reason.startswith("not a date"):
        c.fail("birth_date", raw, "date_format")
    elif reason.startswith("no such day"):
        c.fail("birth_date", raw, "no_such_day")
    else:
        age = re.search(r"age (-?\d+)", reason)
        c.fail("birth_date", raw, "implausible_birth", age=age.group(1) if age else "?", low=MIN_AGE, high=MAX_AGE)


def check_pupil(
    line: int,
    cells: list[str],
    columns: dict[str, int],
    today: date,
    *,
    school: bool = True,
    class_required: bool = False,
) -> tuple[PupilRow, list[CellError]]:
    """Validate one pupil row cell by cell (the pupil and up to two guardians); every error of the row.

    ``school``: the row names its school (region onboarding); ``class_required``: the class cell must be filled.
    """
    c = Cells(line, cells, columns)
    school_key = c.school() if school else ""
    raw_code = c.get("national_code")
    code = ""
    if not raw_code:
        c.fail("national_code", raw_code, "required")
    else:
        try:
            code = normalise_pupil_code(raw_code)
        except ValueError:
            c.fail("national_code", raw_code, "pupil_code")
    last_name = c.text("last_name", NAME_MAX, required=True)
    first_name = c.text("first_name", NAME_MAX, required=True)
    last_name_ar = c.text("last_name_ar", NAME_MAX)
    first_name_ar = c.text("first_name_ar", NAME_MAX)
    born: date | None = None
    if raw := c.get("birth_date"):
        try:
            born = parse_date(raw, today)
        except ValueError as exc:
            _date_problem(c, raw, str(exc))
    gender = c.get("gender").upper()
    if gender not in ("", "F", "M"):
        gender = c.fail("gender", c.get("gender"), "gender")
    class_name = c.text("class", CLASS_MAX, required=class_required)
    guardians: list[GuardianCell] = []
    for n in (1, 2):
        email = c.email(f"guardian{n}_email")
        name = c.text(f"guardian{n}_name", NAME_MAX)
        name_ar = c.text(f"guardian{n}_name_ar", NAME_MAX)
        relation = ""
        if raw := c.get(f"guardian{n}_relation"):
            relation = RELATIONS.get(header_key(raw), "")
            if not relation:
                c.fail(f"guardian{n}_relation", raw, "relation")
        if not c.get(f"guardian{n}_email") and (name or name_ar or relation):
            c.fail(f"guardian{n}_email", "", "guardian_email_required")
        if email:
            if any(g.email == email for g in guardians):
                c.fail(f"guardian{n}_email", email, "guardian_twice")
            else:
                guardians.append(GuardianCell(n, email, name, name_ar, relation or "guardian"))
    row = PupilRow(
        line=line,
        school=school_key,
        national_code=code,
        last_name=last_name,
        first_name=first_name,
        last_name_ar=last_name_ar,
        first_name_ar=first_name_ar,
        birth_date=born,
        gender=gender,
        class_name=class_name,
        guardians=tuple(guardians),
    )
    return row, c.errors


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
    #: Pupil–guardian links written (one guardian e-mail on two rows counts twice, one person).
    guardians_linked: int = 0
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


# -- database checks and writes (inside the caller's scoped transaction) -----------------------


async def check_rows(
    ctx: RequestContext, school: TenantInfo, rows: list[StudentRow], known: set[tuple[int, str]]
) -> tuple[list[CellError], dict[int, int]]:
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
    errors: list[CellError] = []
    class_of: dict[int, int] = {}
    for row in rows:
        if row.class_name and (row.row, "class") not in known:
            class_id = exact.get(row.class_name)
            matches = folded.get(row.class_name.casefold(), [])
            if class_id is None and len(matches) == 1:
                class_id = matches[0]
            if class_id is None:
                errors.append(
                    problem(
                        row.row, "class", row.class_name, "class_unknown", name=repr(row.class_name), year=year["label"]
                    )
                )
            else:
                class_of[row.row] = class_id
        if row.national_code and (row.row, "national_code") not in known:
            if await service.code_taken(db, row.national_code):
                errors.append(problem(row.row, "national_code", row.national_code, "code_taken"))
        email = row.guardian_email
        if email and email not in named and (row.row, "guardian_email") not in known:
            if email not in existing:
                existing[email] = await db.fetchval("SELECT id FROM person WHERE email = {}", email) is not None
            if not existing[email]:
                errors.append(problem(row.row, "guardian_name", "", "guardian_unknown"))
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
