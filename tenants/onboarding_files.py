"""Reading onboarding files (CSV or XLSX) as a stream of validated rows — pure, no database.

* :func:`open_table` recognises the format from the bytes (an XLSX workbook is a zip archive; a
  CSV file is UTF-8 text), and yields ``(line, cells)`` one record at a time: nothing but the
  current row is held in memory beyond the file itself.
* :func:`map_header` maps the header row onto a kind's canonical columns (accepting French names,
  case- and accent-insensitively), reporting missing and doubled columns.
* ``check_school``, ``check_staff`` and ``check_student`` validate one data row cell by cell and
  return the typed row (a failed cell left empty) with *every* error of the row.

Errors are :class:`CellError`: the 1-based line (the header is line 1; 0 for the file as a whole),
the column, the offending value, an English message, and a stable ``code`` with the ``params``
formatted into the message: pages translate ``MESSAGES[code]`` (a msgid) with those values.

XLSX workbooks are checked before they are opened (:func:`check_workbook`): an archive that
unpacks to more than :data:`MAX_UNPACKED_BYTES` or compresses suspiciously well is refused, so a
tiny zip bomb cannot make the reader allocate gigabytes; rows are read no wider than the kind's
columns, and blank rows count toward the row limit.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import struct
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Literal

import msgspec

from core.identity import normalise_email
from core.school.csv_import import (
    _EMAIL,
    EMAIL_MAX,
    FILE,
    MAX_AGE,
    MIN_AGE,
    NAME_MAX,
    RELATIONS,
    _fold,
    header_key,
    parse_date,
    sniff_delimiter,
)
from core.school.rules import STAFF_NUMBER_RE, normalise_pupil_code
from core.tenancy import SLUG_RE

Kind = Literal["schools", "staff", "students"]
KINDS: tuple[str, ...] = ("schools", "staff", "students")
CLASS_MAX = 60
ADDRESS_MAX = 300
SCHOOL_CODE_RE = re.compile(r"^[0-9A-Z]{4,12}$")
_TEXT_SNIFF = 64 * 1024
#: An XLSX workbook may unpack to this much at most (a 100,000-pupil workbook unpacks to about 60 MiB).
MAX_UNPACKED_BYTES = 160 * 1024 * 1024
#: A member larger than :data:`RATIO_FLOOR` may not unpack to more than this many times its packed size.
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
#: The shared strings are loaded whole by the reader: at most this much XML (a 100,000-pupil workbook has ~25 MiB).
MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024
#: Members of an XLSX archive (a workbook has a dozen or so).
MAX_MEMBERS = 1000
#: Cells read per XLSX row beyond the kind's known columns.
EXTRA_COLUMNS = 24

#: Canonical column → accepted header names, per kind (see :func:`header_key` for the folding).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "schools": {
        "code": ("code", "school_code", "code_etablissement", "code_ecole", "code_gresa"),
        "name_ar": ("name_ar", "nom_ar", "arabic_name", "nom_arabe"),
        "name_fr": ("name_fr", "nom_fr", "nom", "name", "nom_francais"),
        "name_en": ("name_en", "nom_en", "english_name"),
        "cycle": ("cycle", "type", "niveau"),
        "province": ("province", "direction", "direction_provinciale", "province_code"),
        "address": ("address", "adresse"),
        "slug": ("slug", "identifiant"),
    },
    "staff": {
        "school": ("school", "school_code", "ecole", "etablissement", "code_etablissement"),
        "email": ("email", "e_mail", "courriel"),
        "full_name": ("full_name", "nom_complet", "name", "nom"),
        "full_name_ar": ("full_name_ar", "nom_complet_ar", "nom_ar"),
        "role": ("role", "fonction"),
        "staff_number": ("staff_number", "matricule", "ppr", "numero_de_somme", "som"),
        "locale": ("locale", "langue", "language"),
    },
    "students": {
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
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "schools": ("code", "name_ar", "name_fr", "cycle", "province"),
    "staff": ("school", "email", "full_name", "role"),
    "students": ("school", "national_code", "last_name", "first_name"),
}
_ALIASES = {kind: {a: c for c, aliases in cols.items() for a in aliases} for kind, cols in COLUMNS.items()}
CYCLES = {
    "primaire": "primaire",
    "primary": "primaire",
    "ecole": "primaire",
    "ابتدائي": "primaire",
    "college": "college",
    "middle": "college",
    "secondaire_collegial": "college",
    "اعدادي": "college",
    "lycee": "lycee",
    "high": "lycee",
    "secondaire_qualifiant": "lycee",
    "ثانوي": "lycee",
}
STAFF_ROLES = {
    "teacher": "teacher",
    "enseignant": "teacher",
    "enseignante": "teacher",
    "professeur": "teacher",
    "director": "school_director",
    "school_director": "school_director",
    "directeur": "school_director",
    "directrice": "school_director",
}


class CellError(msgspec.Struct, frozen=True):
    """One problem: the 1-based line (0 for the whole file), the column, the value, an English message,
    a stable ``code`` (a key of :data:`MESSAGES`) and the values formatted into it."""

    row: int
    column: str
    value: str
    message: str
    code: str = ""
    params: dict[str, str] = {}


#: Every error's code → its message id (English, with ``{named}`` values); pages translate it.
MESSAGES: dict[str, str] = {
    "not_csv_xlsx": "this is not a CSV or XLSX file",
    "old_excel": "this is an old Excel (.xls) workbook: save it as .xlsx or “CSV UTF-8” and try again",
    "utf16": "the file is UTF-16 text: save it as “CSV UTF-8” and try again",
    "not_utf8": "the file is not UTF-8 text: save it as “CSV UTF-8” and try again",
    "not_utf8_at": "the file is not UTF-8 text (invalid byte 0x{byte} at offset {offset}): "
    "save it as “CSV UTF-8” and try again",
    "nul_bytes": "the file contains NUL bytes: it is not a CSV text file",
    "bad_csv": "unreadable CSV: {detail}",
    "bad_xlsx": "this zip archive is not a readable XLSX workbook",
    "xlsx_too_big": "the workbook unpacks to more than {limit} MiB: save it as “CSV UTF-8” or split it",
    "xlsx_packed": "the workbook is packed suspiciously tightly ({name}): it was not opened",
    "empty": "the file is empty",
    "too_large": "the file is larger than {limit} MiB: split it",
    "too_many_rows": "more than {limit} rows: split the file",
    "only_header": "the file has only a header row",
    "two_columns": "two columns mean {column}: {first} and this",
    "missing_column": "required column missing (accepted names: {accepted})",
    "unknown_columns": "unrecognised column names",
    "required": "required",
    "too_long": "longer than {limit} characters",
    "not_email": "not an e-mail address",
    "school_code": "a school code is 4 to 12 letters or digits",
    "cycle": "must be primaire, collège or lycée",
    "slug": "lower-case letters, digits and dashes, 1–80 characters",
    "role": "must be teacher or director (enseignant, directeur)",
    "staff_number": "a national staff number is 5 to 10 digits",
    "staff_number_required": "required for a teacher",
    "locale": "must be ar, fr or en",
    "pupil_code": "not a pupil code (one letter followed by nine digits, e.g. J130012345)",
    "date_format": "not a date: write YYYY-MM-DD or DD/MM/YYYY",
    "no_such_day": "no such day in the calendar",
    "implausible_birth": "implausible birth date for a pupil (age {age}; expected {low} to {high})",
    "gender": "must be F or M",
    "relation": "must be mother, father or guardian (mère, père, tuteur)",
    "guardian_email_required": "required when a guardian name or relation is given",
    "guardian_twice": "the same guardian is named twice on this row",
    "duplicate_row": "duplicate of row {first} in this file",
    "same_slug": "the same slug as row {first}",
    "same_number": "the same number as row {first}",
    "slug_taken": "this slug is taken: give another one",
    "province_foreign": "this province belongs to another region",
    "province_unknown": "no such province in this region",
    "school_code_foreign": "a school of another region has this code",
    "school_differs": "this school exists with other details: {fields}",
    "school_foreign": "the school {school} belongs to another region",
    "school_unknown": "no school {school} (by code or slug) in this region",
    "no_class": "no class of this name in the school for {year}",
    "enrolled_elsewhere": "already enrolled at another school ({school})",
    "pupil_differs": "already registered in this school with other details",
    "pupil_other_region": "already registered in another region",
    "guardian_name_required": "required for a new guardian (no account uses this e-mail)",
    "number_taken": "this staff number belongs to someone else",
    "other_number": "this person already has another staff number",
    "commit_failed": "nothing was written: the import failed unexpectedly; try again or contact support",
    "preview_failed": "the file could not be checked: try again or contact support",
}


def problem(row: int, column: str, value: str, code: str, **params: object) -> CellError:
    """An error with its code and values (the English message is formatted from :data:`MESSAGES`)."""
    values = {k: str(v) for k, v in params.items()}
    return CellError(row, column, _shown(value), MESSAGES[code].format(**values), code, values)


def translated(error: CellError) -> str:
    """The error's message in the current request's language."""
    from core.i18n import gettext_

    msgid = MESSAGES.get(error.code)
    return gettext_(msgid, **error.params) if msgid else error.message


class FileProblem(Exception):
    """The file as a whole cannot be read (format, encoding, structure)."""

    def __init__(self, error: CellError) -> None:
        super().__init__(error.message)
        self.error = error


def file_error(code: str, value: str = "", row: int = 0, **params: object) -> FileProblem:
    """A :class:`FileProblem` about the whole file."""
    return FileProblem(problem(row, FILE, value, code, **params))


def _shown(value: str) -> str:
    return value if len(value) <= 120 else value[:119] + "…"


# -- formats -----------------------------------------------------------------------------------


def detect_format(head: bytes) -> str:
    """``xlsx`` (a zip archive), ``csv`` (text); :class:`FileProblem` for anything else."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith((b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK")):
        raise file_error("not_csv_xlsx")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise file_error("old_excel")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise file_error("utf16")
    if b"\x00" in head:
        raise file_error("not_csv_xlsx")
    return "csv"


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _member_count(stream: IO[bytes]) -> int:
    """Entries of a zip archive, from its end-of-central-directory record (read before any entry is parsed)."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    tail_size = min(size, 22 + 65535)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    stream.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        raise file_error("bad_xlsx")
    return int(struct.unpack("<H", tail[at + 10 : at + 12])[0])


def check_workbook(stream: IO[bytes]) -> None:
    """Refuse an XLSX archive before opening it: too many members, too large unpacked, or packed like a bomb."""
    if _member_count(stream) > MAX_MEMBERS:
        raise file_error("bad_xlsx")
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, struct.error):
        raise file_error("bad_xlsx") from None
    finally:
        stream.seek(0)
    if len(members) > MAX_MEMBERS:
        raise file_error("bad_xlsx")
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise file_error("xlsx_packed", info.filename[:80], name=info.filename[:80])
        if info.filename.lower().endswith("sharedstrings.xml") and info.file_size > MAX_SHARED_STRINGS_BYTES:
            raise file_error("xlsx_too_big", info.filename[:80], limit=MAX_SHARED_STRINGS_BYTES // 2**20)
    if total > MAX_UNPACKED_BYTES:
        raise file_error("xlsx_too_big", limit=MAX_UNPACKED_BYTES // 2**20)


def _xlsx_records(stream: IO[bytes], width: int, max_rows: int) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    check_workbook(stream)
    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, struct.error):
        raise file_error("bad_xlsx") from None
    try:
        sheet = book.worksheets[0]
        # The declared <dimension> is not trusted: no padding to it, rows no wider than ``width``.
        sheet.reset_dimensions()
        blank = (None,) * width
        for line, values in enumerate(sheet.iter_rows(max_col=width, values_only=True), start=1):
            if line > max_rows:
                # Blank rows count too: a sheet cannot make the reader walk a million empty rows.
                raise file_error("too_many_rows", row=line, limit=max_rows - 1)
            if values == blank or not values:
                continue
            cells = [_cell_text(v) for v in values]
            if any(c.strip() for c in cells):
                yield line, cells
    finally:
        book.close()


def _csv_records(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    # Decoded incrementally: a bad byte is reported with the line it is on.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")
    try:
        first = text.readline()
    except UnicodeDecodeError:
        raise file_error("not_utf8", row=1) from None
    delimiter = sniff_delimiter(first)

    # A chain, not a generator: dropping it never closes (or reads from) the detached wrapper.
    reader = csv.reader(itertools.chain((first,), text), delimiter=delimiter)
    previous = 0
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if any("\x00" in c for c in cells):
                raise file_error("nul_bytes", row=line)
            if any(c.strip() for c in cells):
                yield line, cells
    except UnicodeDecodeError:
        raise file_error("not_utf8", row=previous + 1) from None
    except csv.Error as exc:
        raise file_error("bad_csv", row=reader.line_num, detail=exc) from None
    finally:
        text.detach()


def open_table(
    stream: IO[bytes], *, width: int = 64, max_rows: int = 1_048_577
) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The format and the non-blank records (line, cells) of a CSV or XLSX file, read lazily.

    ``width`` caps the cells read per XLSX row; ``max_rows`` the sheet rows read, blank or not.
    """
    head = stream.read(_TEXT_SNIFF)
    stream.seek(0)
    if not head.strip():
        raise file_error("empty")
    fmt = detect_format(head)
    if fmt == "csv":
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as exc:
            raise file_error("not_utf8_at", byte=f"{head[exc.start]:02x}", offset=exc.start) from None
        return fmt, _csv_records(stream)
    return fmt, _xlsx_records(stream, width, max_rows)


def count_lines(stream: IO[bytes]) -> int:
    """Rough number of records (newlines) of a CSV file, for progress; reads in chunks."""
    total = 0
    while chunk := stream.read(1 << 20):
        total += chunk.count(b"\n")
    stream.seek(0)
    return max(total - 1, 0)


# -- header ------------------------------------------------------------------------------------


def map_header(kind: str, line: int, header: list[str]) -> tuple[dict[str, int], list[CellError]]:
    """Column positions of a kind's canonical columns, and the header's errors."""
    aliases = _ALIASES[kind]
    columns: dict[str, int] = {}
    errors: list[CellError] = []
    unknown: list[str] = []
    for index, name in enumerate(header):
        column = aliases.get(header_key(name))
        if column is None:
            if name.strip():
                unknown.append(name.strip())
            continue
        if column in columns:
            first = header[columns[column]].strip()
            errors.append(problem(line, column, name.strip(), "two_columns", column=column, first=repr(first)))
            continue
        columns[column] = index
    for column in REQUIRED[kind]:
        if column not in columns:
            accepted = ", ".join(COLUMNS[kind][column])
            errors.append(problem(line, column, "", "missing_column", accepted=accepted))
    if errors and unknown:
        errors.append(problem(line, FILE, ", ".join(unknown)[:120], "unknown_columns"))
    return columns, errors


class _Cells:
    """Reads and checks the cells of one data row, collecting its errors."""

    __slots__ = ("cells", "columns", "errors", "line")

    def __init__(self, line: int, cells: list[str], columns: dict[str, int]) -> None:
        self.line, self.cells, self.columns = line, cells, columns
        self.errors: list[CellError] = []

    def get(self, column: str) -> str:
        index = self.columns.get(column)
        return self.cells[index].strip() if index is not None and index < len(self.cells) else ""

    def fail(self, column: str, value: str, code: str, **params: object) -> str:
        self.errors.append(problem(self.line, column, value, code, **params))
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
        if len(value) > EMAIL_MAX or not _EMAIL.match(value):
            return self.fail(column, raw, "not_email")
        return value

    def school(self) -> str:
        raw = self.get("school")
        if not raw:
            return self.fail("school", raw, "required")
        if len(raw) > 80:
            return self.fail("school", raw, "too_long", limit=80)
        return raw


def _key(value: str) -> str:
    return header_key(value)


# -- rows --------------------------------------------------------------------------------------


class SchoolRow(msgspec.Struct, frozen=True, kw_only=True):
    """A school of a schools file."""

    line: int
    code: str
    name_ar: str
    name_fr: str
    name_en: str
    cycle: str
    province: str
    address: str
    slug: str


class StaffRow(msgspec.Struct, frozen=True, kw_only=True):
    """A staff member of a staff file."""

    line: int
    school: str
    email: str
    full_name: str
    full_name_ar: str
    role: str
    staff_number: str
    locale: str


class GuardianCell(msgspec.Struct, frozen=True):
    """A guardian named on a pupil's row (position 1 or 2)."""

    position: int
    email: str
    name: str
    name_ar: str
    relation: str


class StudentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A pupil of a pupils file, with up to two guardians."""

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


def slug_for(name_fr: str, code: str) -> str:
    """A school's default slug: its French name and code, ASCII, dashed (``lycee-al-farabi-14105x``)."""
    folded = _fold(name_fr)
    words = re.sub(r"[^0-9a-z]+", "-", folded).strip("-")
    base = f"{words[:60].strip('-')}-{code.lower()}".strip("-")
    return base[:80].strip("-")


def check_school(line: int, cells: list[str], columns: dict[str, int]) -> tuple[SchoolRow, list[CellError]]:
    """Validate one row of a schools file."""
    c = _Cells(line, cells, columns)
    code = c.get("code").upper()
    if not code:
        c.fail("code", code, "required")
    elif not SCHOOL_CODE_RE.match(code):
        code = c.fail("code", c.get("code"), "school_code")
    name_ar = c.text("name_ar", 200, required=True)
    name_fr = c.text("name_fr", 200, required=True)
    name_en = c.text("name_en", 200)
    raw_cycle = c.get("cycle")
    cycle = CYCLES.get(_key(raw_cycle), "")
    if not raw_cycle:
        c.fail("cycle", raw_cycle, "required")
    elif not cycle:
        c.fail("cycle", raw_cycle, "cycle")
    province = c.text("province", 80, required=True)
    address = c.text("address", ADDRESS_MAX)
    slug = c.get("slug").lower()
    if slug and not SLUG_RE.match(slug):
        slug = c.fail("slug", c.get("slug"), "slug")
    if not slug and code and name_fr:
        slug = slug_for(name_fr, code)
    row = SchoolRow(
        line=line,
        code=code,
        name_ar=name_ar,
        name_fr=name_fr,
        name_en=name_en,
        cycle=cycle,
        province=province,
        address=address,
        slug=slug,
    )
    return row, c.errors


def check_staff(line: int, cells: list[str], columns: dict[str, int]) -> tuple[StaffRow, list[CellError]]:
    """Validate one row of a staff file."""
    c = _Cells(line, cells, columns)
    school = c.school()
    email = c.email("email", required=True)
    full_name = c.text("full_name", NAME_MAX * 2, required=True)
    full_name_ar = c.text("full_name_ar", NAME_MAX * 2)
    raw_role = c.get("role")
    role = STAFF_ROLES.get(_key(raw_role), "")
    if not raw_role:
        c.fail("role", raw_role, "required")
    elif not role:
        c.fail("role", raw_role, "role")
    number = c.get("staff_number")
    if number and not STAFF_NUMBER_RE.match(number):
        number = c.fail("staff_number", number, "staff_number")
    elif role == "teacher" and not number and "staff_number" in columns:
        c.fail("staff_number", "", "staff_number_required")
    locale = c.get("locale").lower() or "fr"
    if locale not in ("ar", "fr", "en"):
        locale = c.fail("locale", c.get("locale"), "locale") or "fr"
    row = StaffRow(
        line=line,
        school=school,
        email=email,
        full_name=full_name,
        full_name_ar=full_name_ar,
        role=role,
        staff_number=number,
        locale=locale,
    )
    return row, c.errors


def _date_problem(c: _Cells, raw: str, reason: str) -> None:
    """Map :func:`parse_date`'s reason onto an error code."""
    if reason.startswith("not a date"):
        c.fail("birth_date", raw, "date_format")
    elif reason.startswith("no such day"):
        c.fail("birth_date", raw, "no_such_day")
    else:
        age = re.search(r"age (-?\d+)", reason)
        c.fail("birth_date", raw, "implausible_birth", age=age.group(1) if age else "?", low=MIN_AGE, high=MAX_AGE)


def check_student(
    line: int, cells: list[str], columns: dict[str, int], today: date
) -> tuple[StudentRow, list[CellError]]:
    """Validate one row of a pupils file (pupil and up to two guardians)."""
    c = _Cells(line, cells, columns)
    school = c.school()
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
    class_name = c.text("class", CLASS_MAX)
    guardians: list[GuardianCell] = []
    for n in (1, 2):
        email = c.email(f"guardian{n}_email")
        name = c.text(f"guardian{n}_name", NAME_MAX)
        name_ar = c.text(f"guardian{n}_name_ar", NAME_MAX)
        relation = ""
        if raw := c.get(f"guardian{n}_relation"):
            relation = RELATIONS.get(_key(raw), "")
            if not relation:
                c.fail(f"guardian{n}_relation", raw, "relation")
        if not c.get(f"guardian{n}_email") and (name or name_ar or relation):
            c.fail(f"guardian{n}_email", "", "guardian_email_required")
        if email:
            if any(g.email == email for g in guardians):
                c.fail(f"guardian{n}_email", email, "guardian_twice")
            else:
                guardians.append(GuardianCell(n, email, name, name_ar, relation or "guardian"))
    row = StudentRow(
        line=line,
        school=school,
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
