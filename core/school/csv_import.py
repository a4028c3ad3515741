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
from dataclasses import dataclass
from datetime import date
from typing import IO, Annotated, Any

import msgspec
from litestar import Response, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import Body

from core.api.platform import PayloadTooLarge, UnsupportedMediaType
from core.context import Ctx, RequestContext
from core.db import INTEGRITY_ERRORS, Database, scope_sql
from core.identity import normalise_email
from core.school import service
from core.school.rules import normalise_pupil_code
from core.scope import Scope
from core.sql import SQL, ident, join
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


# -- staging pupils: one set-based path for both importers -------------------------------------


class ErrorLog:
    """Every error counted; the first ``listed_max`` kept, and every one written to ``sink`` (JSON lines)."""

    def __init__(self, sink: IO[bytes] | None = None, listed_max: int = 10**6) -> None:
        self.count = 0
        self.listed: list[CellError] = []
        self.sink = sink
        self.listed_max = listed_max

    def keep(self, error: CellError) -> None:
        """Keep an error already counted."""
        if len(self.listed) < self.listed_max:
            self.listed.append(error)
        if self.sink is not None:
            self.sink.write(_encode(error) + b"\n")

    def add(self, error: CellError) -> None:
        self.count += 1
        self.keep(error)

    def extend(self, errors: list[CellError]) -> None:
        for error in errors:
            self.add(error)

    @property
    def room(self) -> int:
        return self.listed_max - len(self.listed)

    def lines(self) -> set[int]:
        return {e.row for e in self.listed}


_encode = msgspec.json.Encoder().encode
#: Rows staged per statement (and errors read per query when they go to a sink).
STAGE_CHUNK = 5000
_TYPES = {"integer": SQL("integer"), "text": SQL("text"), "date": SQL("date")}

#: Staging tables: name → (columns filled from the file, columns the checks derive, indexed columns,
#: the statement that stages a chunk on SQLite; PostgreSQL copies records into the same columns).
STAGES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], list[str], str]] = {
    "onb_student": (
        [
            ("line", "integer"),
            ("school_id", "integer"),
            ("province_id", "integer"),
            ("code", "text"),
            ("last_name", "text"),
            ("first_name", "text"),
            ("last_name_ar", "text"),
            ("first_name_ar", "text"),
            ("birth_date", "date"),
            ("gender", "text"),
            ("class_name", "text"),
        ],
        [("class_id", "integer"), ("student_id", "integer"), ("state", "text")],
        ["line", "code"],
        "INSERT INTO onb_student (line, school_id, province_id, code, last_name, first_name, last_name_ar, "
        "first_name_ar, birth_date, gender, class_name) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
    ),
    "onb_guardian": (
        [
            ("key", "integer"),
            ("line", "integer"),
            ("position", "integer"),
            ("email", "text"),
            ("name", "text"),
            ("name_ar", "text"),
            ("relation", "text"),
        ],
        [("person_id", "integer")],
        ["line", "email"],
        "INSERT INTO onb_guardian (key, line, position, email, name, name_ar, relation) "
        "VALUES ({}, {}, {}, {}, {}, {}, {})",
    ),
}


class Stage:
    """Temporary tables of the current transaction (described in ``stages``), filled in chunks."""

    def __init__(self, db: Database, *tables: str, stages: Mapping[str, Any] = STAGES) -> None:
        self.db = db
        self.tables = tables
        self.stages = stages
        self.pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}

    async def create(self) -> None:
        pg = self.db.dialect == "postgres"
        for table in self.tables:
            filled, derived, _, _ = self.stages[table]
            await self.db.execute(SQL("DROP TABLE IF EXISTS {}", ident(table) if pg else ident("temp", table)))
            cols = join(", ", [SQL("{} {}", ident(n), _TYPES[t]) for n, t in filled + derived])
            on_commit = SQL(" ON COMMIT DROP") if pg else SQL()
            await self.db.execute(SQL("CREATE TEMP TABLE {} ({}){}", ident(table), cols, on_commit))

    async def index(self) -> None:
        for table in self.tables:
            for column in self.stages[table][2]:
                name = ident(f"{table}_{column}")
                await self.db.execute(SQL("CREATE INDEX {} ON {} ({})", name, ident(table), ident(column)))
            if self.db.dialect == "postgres":
                await self.db.execute(SQL("ANALYZE {}", ident(table)))

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.pending[table].append(row)

    def full(self) -> bool:
        return any(len(rows) >= STAGE_CHUNK for rows in self.pending.values())

    async def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            filled, _, _, insert = self.stages[table]
            if self.db.dialect == "postgres":
                tx = self.db.engine.current_transaction.get()
                assert tx is not None
                await tx.connection.copy_records_to_table(table, records=rows, columns=[n for n, _ in filled])
            else:
                await self.db.executemany(insert, rows)
            rows.clear()


async def sql_errors(db: Database, errors: ErrorLog, query: SQL, make: Callable[[dict[str, Any]], CellError]) -> int:
    """Count the rows a query finds and keep the errors they make (every one when errors go to a sink)."""
    total = int(await db.fetchval(SQL("SELECT COUNT(*) FROM ({}) AS q", query)) or 0)
    errors.count += total
    offset = 0
    while offset < total:
        limit = STAGE_CHUNK if errors.sink is not None else errors.room
        if limit <= 0:
            break
        rows = await db.fetch(SQL("{} ORDER BY 1, 2 LIMIT {} OFFSET {}", query, int(limit), offset))
        if not rows:
            break
        for r in rows:
            errors.keep(make(r))
        offset += len(rows)
    return total


_CASTS = {"integer": "{}::integer", "timestamptz": "{}::timestamptz", "boolean": "{}::boolean", "date": "{}::date"}


def typed(db: Database, value: Any, kind: str) -> SQL:
    """A bound value in a SELECT list, cast to ``kind`` where PostgreSQL needs to know its type."""
    if db.dialect == "postgres":
        return SQL(_CASTS[kind], value)
    if kind == "date" and value is not None:
        value = value.isoformat()
    return SQL("{}", value)


def distinct(db: Database) -> SQL:
    """``IS DISTINCT FROM`` (``IS NOT`` on SQLite)."""
    return SQL("IS DISTINCT FROM") if db.dialect == "postgres" else SQL("IS NOT")


def stage_pupil(stage: Stage, row: PupilRow, school: tuple[int, int] | None) -> None:
    """Stage one checked pupil row (and its guardians) for ``school`` (``(school id, province id)``)."""
    born = row.birth_date if stage.db.dialect == "postgres" else (row.birth_date and row.birth_date.isoformat())
    stage.add(
        "onb_student",
        (
            row.line,
            school[0] if school else None,
            school[1] if school else None,
            row.national_code,
            row.last_name,
            row.first_name,
            row.last_name_ar,
            row.first_name_ar,
            born,
            row.gender,
            row.class_name,
        ),
    )
    for g in row.guardians:
        stage.add(
            "onb_guardian", (row.line * 2 + g.position, row.line, g.position, g.email, g.name, g.name_ar, g.relation)
        )


async def duplicate_codes(db: Database, errors: ErrorLog) -> None:
    """A pupil code given twice in the file: an error on every row after the first."""
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.code, (SELECT MIN(t.line) FROM onb_student t WHERE t.code = s.code) AS first "
            "FROM onb_student s WHERE s.code <> '' AND EXISTS "
            "(SELECT 1 FROM onb_student t WHERE t.code = s.code AND t.line < s.line)"
        ),
        lambda r: problem(r["line"], "national_code", r["code"], "duplicate_row", first=r["first"]),
    )


@dataclass(frozen=True)
class PupilChecks:
    """How :func:`check_staged_pupils` reports: the code of each finding and a guardian name's column.

    ``existing``: ``merge`` (region onboarding: a pupil registered in the same school with the same
    details is ``unchanged``) or ``refuse`` (a director's import: any registered code is an error).
    """

    messages: Mapping[str, str]
    existing: str = "merge"
    no_class: str = "no_class"
    code_taken: str = "code_taken"
    guardian_unknown: str = "guardian_name_required"
    guardian_column: Callable[[int], str] = lambda n: f"guardian{n}_name"


async def check_staged_pupils(
    db: Database, scope: Scope, errors: ErrorLog, year: dict[str, Any], how: PupilChecks
) -> SQL:
    """What only the database can tell about staged pupils, set by set; returns the ``differs`` condition.

    Classes of this year (matched case-insensitively), pupil codes registered in scope or anywhere on
    the platform, and guardians: a new e-mail needs a name somewhere in the file.
    """
    make = problem_maker(how.messages)

    def class_params(name: str) -> dict[str, str]:
        wanted = how.messages[how.no_class]
        return {"year": year["label"], **({"name": repr(name)} if "{name}" in wanted else {})}

    await db.execute(
        "UPDATE onb_student SET class_id = c.id FROM school_class c WHERE c.school_id = onb_student.school_id "
        "AND c.school_year_id = {} AND lower(c.name) = lower(onb_student.class_name) AND onb_student.class_name <> ''",
        year["id"],
    )
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT line, class_name FROM onb_student WHERE class_name <> '' AND class_id IS NULL "
            "AND school_id IS NOT NULL"
        ),
        lambda r: make(r["line"], "class", r["class_name"], how.no_class, **class_params(r["class_name"])),
    )
    is_not = distinct(db)
    differs = SQL(
        "(st.last_name <> s.last_name OR st.first_name <> s.first_name "
        "OR (s.last_name_ar <> '' AND st.last_name_ar <> s.last_name_ar) "
        "OR (s.first_name_ar <> '' AND st.first_name_ar <> s.first_name_ar) "
        "OR (s.birth_date IS NOT NULL AND st.birth_date {} s.birth_date) "
        "OR (s.gender <> '' AND st.gender <> s.gender) "
        "OR (s.class_id IS NOT NULL AND s.class_id {} "
        "(SELECT e.class_id FROM enrolment e WHERE e.student_id = st.id AND e.ends_on IS NULL)))",
        is_not,
        is_not,
    )
    if how.existing == "merge":
        # registered here (identical → unchanged), elsewhere in the region; the rest below
        await db.execute(
            SQL(
                "UPDATE onb_student SET student_id = st.id FROM student st WHERE st.national_code = onb_student.code "
                "AND onb_student.code <> '' AND {}",
                scope_sql(scope, "st"),
            )
        )
        await sql_errors(
            db,
            errors,
            SQL(
                "SELECT s.line, s.code, t.slug FROM onb_student s JOIN student st ON st.id = s.student_id "
                "JOIN tenant t ON t.id = st.school_id WHERE st.school_id <> s.school_id"
            ),
            lambda r: make(r["line"], "national_code", r["code"], "enrolled_elsewhere", school=r["slug"]),
        )
        await sql_errors(
            db,
            errors,
            SQL(
                "SELECT s.line, s.code FROM onb_student s JOIN student st ON st.id = s.student_id "
                "WHERE st.school_id = s.school_id AND {}",
                differs,
            ),
            lambda r: make(r["line"], "national_code", r["code"], "pupil_differs"),
        )
        await db.execute(
            SQL(
                "UPDATE onb_student SET state = 'unchanged' WHERE student_id IS NOT NULL AND line IN "
                "(SELECT s.line FROM onb_student s JOIN student st ON st.id = s.student_id "
                "WHERE st.school_id = s.school_id AND NOT {})",
                differs,
            )
        )
    taken_code = "pupil_other_region" if how.existing == "merge" else how.code_taken
    if db.dialect == "postgres":
        taken = SQL(
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code IN "
            "(SELECT madrasa_pupil_codes_taken(ARRAY(SELECT code FROM onb_student "
            "WHERE student_id IS NULL AND code <> '')::varchar[]))"
        )
    else:
        taken = SQL(
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code <> '' "
            "AND EXISTS (SELECT 1 FROM student st WHERE st.national_code = s.code)"
        )
    await sql_errors(db, errors, taken, lambda r: make(r["line"], "national_code", r["code"], taken_code))
    await db.execute("UPDATE onb_guardian SET person_id = p.id FROM person p WHERE p.email = onb_guardian.email")
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT g.line, g.position, g.email FROM onb_guardian g WHERE g.person_id IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM onb_guardian h WHERE h.email = g.email AND h.name <> '')"
        ),
        lambda r: make(r["line"], how.guardian_column(r["position"]), "", how.guardian_unknown),
    )
    return differs


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
    await check_staged_pupils(db, ctx.scope, errors, year, DIRECTOR_CHECKS)
    class_of = {
        int(r["line"]): int(r["class_id"])
        for r in await db.fetch("SELECT line, class_id FROM onb_student WHERE class_id IS NOT NULL")
    }
    return [e for e in errors.listed if (e.row, e.column) not in known], class_of


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
