"""Reading a pupil row from a file: text helpers, error codes, the header and the cell checks.

Both pupil importers use it: a director's CSV of their school's pupils (:mod:`core.school.csv_import`)
and a region's onboarding of pupils and guardians (:mod:`tenants.onboarding_rows`). A header is read
with :func:`map_header` and every data row with :func:`check_pupil`, which checks each cell and
reports every problem as a :class:`CellError` with a stable ``code`` (a key of :data:`MESSAGES`) and
the values of its message, so that pages can translate it. The text helpers (:func:`fold`,
:func:`header_key`, :func:`sniff_delimiter`, :func:`parse_date`, :data:`EMAIL_RE`) serve every
reader of tabular files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date

import msgspec

from core.identity import normalise_email
from core.school.rules import normalise_pupil_code

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
    "guardian_unknown": "required for a guardian not yet known to the school (a new one, or one from elsewhere)",
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
