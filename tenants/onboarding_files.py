"""Reading onboarding files (CSV or XLSX) as a stream of validated rows — pure, no database.

* :func:`open_table` recognises the format from the bytes (an XLSX workbook is a zip archive; a
  CSV file is UTF-8 text), and yields ``(line, cells)`` one record at a time: nothing but the
  current row is held in memory beyond the file itself.
* :func:`map_header` maps the header row onto a kind's canonical columns (accepting French names,
  case- and accent-insensitively), reporting missing and doubled columns.
* ``check_school``, ``check_staff`` and ``check_student`` validate one data row cell by cell and
  return the typed row (a failed cell left empty) with *every* error of the row.

Errors are :class:`core.school.csv_import.RowError`: the 1-based line (the header is line 1; 0
for the file as a whole), the column, the offending value and a message.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
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
    NAME_MAX,
    RELATIONS,
    RowError,
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


class FileProblem(Exception):
    """The file as a whole cannot be read (format, encoding, structure)."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


def file_error(message: str, value: str = "", row: int = 0) -> FileProblem:
    """A :class:`FileProblem` about the whole file."""
    return FileProblem(RowError(row, FILE, value, message))


def _shown(value: str) -> str:
    return value if len(value) <= 120 else value[:119] + "…"


# -- formats -----------------------------------------------------------------------------------


def detect_format(head: bytes) -> str:
    """``xlsx`` (a zip archive), ``csv`` (text); :class:`FileProblem` for anything else."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith((b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK")):
        raise file_error("this is not a CSV or XLSX file")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise file_error("this is an old Excel (.xls) workbook: save it as .xlsx or “CSV UTF-8” and try again")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise file_error("the file is UTF-16 text: save it as “CSV UTF-8” and try again")
    if b"\x00" in head:
        raise file_error("this is not a CSV or XLSX file (binary content)")
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


def _xlsx_records(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise file_error(f"this zip archive is not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        sheet = book.worksheets[0]
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
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
        raise file_error("the file is not UTF-8 text: save it as “CSV UTF-8” and try again", row=1) from None
    delimiter = sniff_delimiter(first)

    def lines() -> Iterator[str]:
        yield first
        yield from text

    reader = csv.reader(lines(), delimiter=delimiter)
    previous = 0
    try:
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if any("\x00" in c for c in cells):
                raise file_error("the file contains NUL bytes: it is not a CSV text file", row=line)
            if any(c.strip() for c in cells):
                yield line, cells
    except UnicodeDecodeError:
        raise file_error("the file is not UTF-8 text: save it as “CSV UTF-8” and try again", row=previous + 1) from None
    except csv.Error as exc:
        raise file_error(f"unreadable CSV: {exc}", row=reader.line_num) from None
    finally:
        text.detach()


def open_table(stream: IO[bytes]) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The format and the non-blank records (line, cells) of a CSV or XLSX file, read lazily."""
    head = stream.read(_TEXT_SNIFF)
    stream.seek(0)
    if not head.strip():
        raise file_error("the file is empty")
    fmt = detect_format(head)
    if fmt == "csv":
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError as exc:
            raise file_error(
                f"the file is not UTF-8 text (invalid byte 0x{head[exc.start]:02x} at offset {exc.start}): "
                "save it as “CSV UTF-8” and try again"
            ) from None
        return fmt, _csv_records(stream)
    return fmt, _xlsx_records(stream)


def count_lines(stream: IO[bytes]) -> int:
    """Rough number of records (newlines) of a CSV file, for progress; reads in chunks."""
    total = 0
    while chunk := stream.read(1 << 20):
        total += chunk.count(b"\n")
    stream.seek(0)
    return max(total - 1, 0)


# -- header ------------------------------------------------------------------------------------


def map_header(kind: str, line: int, header: list[str]) -> tuple[dict[str, int], list[RowError]]:
    """Column positions of a kind's canonical columns, and the header's errors."""
    aliases = _ALIASES[kind]
    columns: dict[str, int] = {}
    errors: list[RowError] = []
    unknown: list[str] = []
    for index, name in enumerate(header):
        column = aliases.get(header_key(name))
        if column is None:
            if name.strip():
                unknown.append(name.strip())
            continue
        if column in columns:
            first = header[columns[column]].strip()
            errors.append(RowError(line, column, name.strip(), f"two columns mean {column}: {first!r} and this"))
            continue
        columns[column] = index
    for column in REQUIRED[kind]:
        if column not in columns:
            accepted = ", ".join(COLUMNS[kind][column])
            errors.append(RowError(line, column, "", f"required column missing (accepted names: {accepted})"))
    if errors and unknown:
        errors.append(RowError(line, FILE, ", ".join(unknown)[:120], "unrecognised column names"))
    return columns, errors


class _Cells:
    """Reads and checks the cells of one data row, collecting its errors."""

    __slots__ = ("cells", "columns", "errors", "line")

    def __init__(self, line: int, cells: list[str], columns: dict[str, int]) -> None:
        self.line, self.cells, self.columns = line, cells, columns
        self.errors: list[RowError] = []

    def get(self, column: str) -> str:
        index = self.columns.get(column)
        return self.cells[index].strip() if index is not None and index < len(self.cells) else ""

    def fail(self, column: str, value: str, message: str) -> str:
        self.errors.append(RowError(self.line, column, _shown(value), message))
        return ""

    def text(self, column: str, limit: int, *, required: bool = False) -> str:
        value = self.get(column)
        if not value:
            return self.fail(column, value, "required") if required else ""
        if len(value) > limit:
            return self.fail(column, value, f"longer than {limit} characters")
        return value

    def email(self, column: str, *, required: bool = False) -> str:
        raw = self.get(column)
        if not raw:
            return self.fail(column, raw, "required") if required else ""
        value = normalise_email(raw)
        if len(value) > EMAIL_MAX or not _EMAIL.match(value):
            return self.fail(column, raw, "not an e-mail address")
        return value

    def school(self) -> str:
        raw = self.get("school")
        if not raw:
            return self.fail("school", raw, "required")
        if len(raw) > 80:
            return self.fail("school", raw, "longer than 80 characters")
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


def check_school(line: int, cells: list[str], columns: dict[str, int]) -> tuple[SchoolRow, list[RowError]]:
    """Validate one row of a schools file."""
    c = _Cells(line, cells, columns)
    code = c.get("code").upper()
    if not code:
        c.fail("code", code, "required")
    elif not SCHOOL_CODE_RE.match(code):
        code = c.fail("code", c.get("code"), "a school code is 4 to 12 letters or digits")
    name_ar = c.text("name_ar", 200, required=True)
    name_fr = c.text("name_fr", 200, required=True)
    name_en = c.text("name_en", 200)
    raw_cycle = c.get("cycle")
    cycle = CYCLES.get(_key(raw_cycle), "")
    if not raw_cycle:
        c.fail("cycle", raw_cycle, "required")
    elif not cycle:
        c.fail("cycle", raw_cycle, "must be primaire, collège or lycée")
    province = c.text("province", 80, required=True)
    address = c.text("address", ADDRESS_MAX)
    slug = c.get("slug").lower()
    if slug and not SLUG_RE.match(slug):
        slug = c.fail("slug", c.get("slug"), "lower-case letters, digits and dashes, 1–80 characters")
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


def check_staff(line: int, cells: list[str], columns: dict[str, int]) -> tuple[StaffRow, list[RowError]]:
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
        c.fail("role", raw_role, "must be teacher or director (enseignant, directeur)")
    number = c.get("staff_number")
    if number and not STAFF_NUMBER_RE.match(number):
        number = c.fail("staff_number", number, "a national staff number is 5 to 10 digits")
    elif role == "teacher" and not number and "staff_number" in columns:
        c.fail("staff_number", "", "required for a teacher")
    locale = c.get("locale").lower() or "fr"
    if locale not in ("ar", "fr", "en"):
        locale = c.fail("locale", c.get("locale"), "must be ar, fr or en") or "fr"
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


def check_student(
    line: int, cells: list[str], columns: dict[str, int], today: date
) -> tuple[StudentRow, list[RowError]]:
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
        except ValueError as exc:
            c.fail("national_code", raw_code, str(exc))
    last_name = c.text("last_name", NAME_MAX, required=True)
    first_name = c.text("first_name", NAME_MAX, required=True)
    last_name_ar = c.text("last_name_ar", NAME_MAX)
    first_name_ar = c.text("first_name_ar", NAME_MAX)
    born: date | None = None
    if raw := c.get("birth_date"):
        try:
            born = parse_date(raw, today)
        except ValueError as exc:
            c.fail("birth_date", raw, str(exc))
    gender = c.get("gender").upper()
    if gender not in ("", "F", "M"):
        gender = c.fail("gender", c.get("gender"), "must be F or M")
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
                c.fail(f"guardian{n}_relation", raw, "must be mother, father or guardian (mère, père, tuteur)")
        if not c.get(f"guardian{n}_email") and (name or name_ar or relation):
            c.fail(f"guardian{n}_email", "", "required when a guardian name or relation is given")
        if email:
            if any(g.email == email for g in guardians):
                c.fail(f"guardian{n}_email", email, "the same guardian is named twice on this row")
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
