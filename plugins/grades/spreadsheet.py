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

* :func:`build_template` and :func:`parse_upload` (:func:`read_upload`) — pure;
* :func:`load_sheet` and :func:`apply_upload` — inside the caller's ``db.scoped`` transaction:
  reconcile the file with the class and the sheet's assessments, then save each changed grid with
  :func:`plugins.grades.service.save_grid`, all in one transaction (any failure writes nothing);
  grids whose marks equal the stored ones are skipped, so uploading the same file twice changes
  nothing (no version bump, no audit row);
* ``GET``/``POST /api/v1/grades/sheets/{sheet_id}/xlsx`` (:data:`SPREADSHEET_ROUTES`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from anyio import to_thread
from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import column_index_from_string, get_column_letter

from core.api.platform import PayloadTooLarge, UnsupportedMediaType
from core.context import Ctx, RequestContext
from core.db import scope_filter
from core.school.rules import normalise_pupil_code
from core.school.service import get_class
from core.storage import XLSX, ContentPolicy, ObjectTooLarge, UnsupportedType
from plugins.grades import service

# -- layout and vocabulary ---------------------------------------------------------------------

SHEET_TITLE = "Notes"
#: The very hidden sheet holding the signed identity.
IDENTITY_SHEET = "madrasa"
HEADER_ROW = 17
FIRST_ROW = 18
NUMBER_COLUMN = "B"
CODE_COLUMN = "C"
NAME_COLUMN = "D"
LATIN_COLUMN = "E"
#: Massar's columns of the first, second and third continuous assessments (positions 1, 2, 3).
MARK_COLUMNS: dict[int, str] = {1: "G", 2: "I", 3: "K"}
POSITION_OF = {column: position for position, column in MARK_COLUMNS.items()}
#: Columns of a pupil row the parser reads or tolerates (B, D and E are for people and ignored).
KNOWN_COLUMNS = frozenset({NUMBER_COLUMN, CODE_COLUMN, NAME_COLUMN, LATIN_COLUMN, *MARK_COLUMNS.values()})
#: Column of errors about the file as a whole.
FILE = "file"
#: At most this many pupil rows.
MAX_ROWS = 300
#: Refuse archives that inflate beyond this (a zip bomb is not a mark sheet).
MAX_UNZIPPED_BYTES = 64 * 1024 * 1024
MAX_ZIP_ENTRIES = 500

CODE_LABEL = "رقم التلميذ / Code élève"
NAME_LABEL = "الاسم الكامل / Nom complet"
LATIN_LABEL = "الاسم بالحروف اللاتينية / Nom (latin)"
NUMBER_LABEL = "ر.ت / N°"
MARK_LABELS = {1: "الفرض 1 / Contrôle 1", 2: "الفرض 2 / Contrôle 2", 3: "الفرض 3 / Contrôle 3"}

#: Header block: field → (row, label). Values sit in column D next to their label in column C.
HEADER_FIELDS: dict[str, tuple[int, str]] = {
    "academy": (5, "الأكاديمية / Académie"),
    "directorate": (6, "المديرية / Direction provinciale"),
    "school": (7, "المؤسسة / Établissement"),
    "level": (8, "المستوى / Niveau"),
    "class": (9, "القسم / Classe"),
    "teacher": (10, "الأستاذ(ة) / Enseignant(e)"),
    "semester": (11, "الدورة / Semestre"),
    "subject": (12, "المادة / Matière"),
    "year": (13, "السنة الدراسية / Année scolaire"),
}

#: What the template writes for an absent / excused pupil.
ABSENT_MARK = "غ"
EXCUSED_MARK = "م"
#: Accepted words (compared case-insensitively, spaces ignored).
ABSENT_WORDS = frozenset({"غ", "غائب", "غائبة", "abs", "absent", "absente"})
EXCUSED_WORDS = frozenset({"م", "مبرر", "غيابمبرر", "exc", "excuse", "excusé", "excusée", "excused"})
LEGEND = (
    "غ = غائب(ة) / ABS = absent(e) — م = غياب مبرر / EXC = absence excusée — "
    "النقطة من 0 إلى 20 بمنزلتين عشريتين على الأكثر / note de 0 à 20, deux décimales au plus (12,5)"
)
WARNING = (
    "لا تغير ترتيب الأعمدة ولا الصفوف الأولى / Ne déplacez ni les colonnes ni les lignes d'en-tête : "
    "seules les colonnes G, I et K sont lues"
)
SEMESTERS_AR = {1: "الدورة الأولى", 2: "الدورة الثانية"}

_NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫", "01234567890123456789.")
_IDENTITY_RE = re.compile(r"^madrasa:(\d+):(\d+):([A-Za-z0-9_-]{1,16}):(\d+):(\d+)$")
_VERSIONS_RE = re.compile(r"^(?:[1-3]=\d+\.\d+(?:;[1-3]=\d+\.\d+)*)?$")
_SIGNING_CONTEXT = "madrasa.grades.xlsx.v1"


# -- the shapes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetIdentity:
    """Which sheet a workbook belongs to, and the key that signs it.

    Only the five ids are compared; the labels name the sheet in error messages.
    """

    school_id: int
    class_id: int
    subject_code: str
    term_id: int
    teacher_id: int
    secret: str = field(default="", repr=False, compare=False)
    class_name: str = field(default="", compare=False)
    subject: str = field(default="", compare=False)
    semester: int = field(default=0, compare=False)
    teacher: str = field(default="", compare=False)

    def text(self) -> str:
        """``madrasa:<school id>:<class id>:<subject>:<term id>:<teacher id>``."""
        return f"madrasa:{self.school_id}:{self.class_id}:{self.subject_code}:{self.term_id}:{self.teacher_id}"


@dataclass(frozen=True)
class Column:
    """A CC assessment of the sheet in its Massar column."""

    position: int
    assessment_id: int
    version: int
    max_score: Decimal = Decimal(20)
    title: str = ""


@dataclass(frozen=True)
class SheetInfo:
    """What the template shows and carries."""

    identity: SheetIdentity
    academy: str
    directorate: str
    school: str
    level: str
    class_name: str
    teacher: str
    semester: int
    subject: str
    year: str = ""
    columns: tuple[Column, ...] = ()

    def filename(self) -> str:
        """``massar-<class>-<subject>-S<n>.xlsx``."""
        return f"massar-{self.class_name}-{self.identity.subject_code}-S{self.semester}.xlsx"


@dataclass(frozen=True)
class Pupil:
    """A pupil row of the template."""

    student_id: int
    code: str
    name: str
    name_latin: str = ""


class CellMark(msgspec.Struct, frozen=True):
    """A mark cell as read: a score, or absent / excused, or blank (no score, present)."""

    score: Decimal | None = None
    status: str = "present"

    @property
    def blank(self) -> bool:
        """Whether the cell says nothing."""
        return self.score is None and self.status == "present"


BLANK = CellMark()


class CellError(msgspec.Struct, frozen=True):
    """A problem at a place: the Excel row (0 for the file as a whole), column letter and cell (``G19``)."""

    row: int
    column: str
    cell: str
    value: str
    message: str


class ParsedRow(msgspec.Struct, frozen=True):
    """A pupil row: the code (empty when invalid) and the marks by position (1, 2, 3); bad cells read blank."""

    row: int
    code: str
    name: str
    marks: dict[int, CellMark]


class Upload(msgspec.Struct, frozen=True):
    """Everything :func:`read_upload` found."""

    rows: list[ParsedRow]
    errors: list[CellError]
    #: The identity the file carries (``None`` when it is missing, forged or another sheet's).
    identity: SheetIdentity | None = None
    #: Position → ``(assessment id, version)`` the file was built from.
    versions: dict[int, tuple[int, int]] = {}
    #: The file cannot be read as this sheet's template at all (no rows to reconcile).
    fatal: bool = False


class UploadReport(msgspec.Struct, kw_only=True):
    """The answer of an upload: ``ok`` only when every cell is valid and the marks were saved.

    ``changed`` and ``unchanged`` count the CC grids (assessments) saved and left as they were;
    ``marks`` counts the pupils' marks that changed.
    """

    ok: bool
    changed: int = 0
    unchanged: int = 0
    marks: int = 0
    rows: int = 0
    errors: list[CellError] = []


class XlsxForm(msgspec.Struct):
    """Multipart upload: the workbook, and a reason (needed to correct published or closed marks)."""

    file: UploadFile
    reason: str | None = None


# -- signing -----------------------------------------------------------------------------------


def versions_text(versions: Mapping[int, tuple[int, int]]) -> str:
    """``1=<assessment id>.<version>;2=…`` in position order."""
    return ";".join(f"{p}={aid}.{v}" for p, (aid, v) in sorted(versions.items()))


def sign(secret: str, identity: str, versions: str) -> str:
    """The HMAC-SHA256 (hex) of an identity and its versions with the application's secret."""
    message = f"{_SIGNING_CONTEXT}\n{identity}\n{versions}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- building the template ---------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _mark_value(mark: CellMark | None) -> str | int | float | None:
    if mark is None:
        return None
    if mark.status == "absent":
        return ABSENT_MARK
    if mark.status == "excused":
        return EXCUSED_MARK
    return None if mark.score is None else _number(Decimal(str(mark.score)))


def semester_label(number: int) -> str:
    """``الدورة الأولى / Semestre 1``."""
    return f"{SEMESTERS_AR.get(number, f'الدورة {number}')} / Semestre {number}"


def build_template(info: SheetInfo, pupils: Sequence[Pupil], marks: Mapping[int, Mapping[int, CellMark]]) -> bytes:
    """The Massar-layout workbook of a sheet: its header block, its pupils and their current marks.

    ``marks`` maps a position (1–3) to each pupil's stored mark (by student id).
    """
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET_TITLE
    ws.sheet_view.rightToLeft = True
    bold = Font(bold=True)
    title = Font(bold=True, size=13)
    thin = Side(style="thin", color="808080")
    boxed = Border(left=thin, right=thin, top=thin, bottom=thin)
    header_fill = PatternFill("solid", fgColor="D9E1F2")
    entry_fill = PatternFill("solid", fgColor="FFF9DB")
    centred = Alignment(horizontal="center", vertical="center", wrap_text=True)

    ws["C1"] = "المملكة المغربية / Royaume du Maroc"
    ws["C2"] = (
        "وزارة التربية الوطنية والتعليم الأولي والرياضة / "
        "Ministère de l'Éducation nationale, du Préscolaire et des Sports"
    )
    ws["C3"] = "ورقة نقط المراقبة المستمرة / Relevé des notes du contrôle continu"
    for ref in ("C1", "C2", "C3"):
        ws[ref].font = title
    values = {
        "academy": info.academy,
        "directorate": info.directorate,
        "school": info.school,
        "level": info.level,
        "class": info.class_name,
        "teacher": info.teacher,
        "semester": semester_label(info.semester),
        "subject": info.subject,
        "year": info.year,
    }
    for name, (row, label) in HEADER_FIELDS.items():
        ws[f"C{row}"] = label
        ws[f"C{row}"].font = bold
        ws[f"D{row}"] = values[name]
    ws["C14"] = LEGEND
    ws["C15"] = WARNING
    ws["C15"].font = Font(italic=True, color="9C0006")

    by_position = {c.position: c for c in info.columns}
    headers = {
        NUMBER_COLUMN: NUMBER_LABEL,
        CODE_COLUMN: CODE_LABEL,
        NAME_COLUMN: NAME_LABEL,
        LATIN_COLUMN: LATIN_LABEL,
        **{MARK_COLUMNS[p]: MARK_LABELS[p] for p in MARK_COLUMNS},
    }
    for column, label in headers.items():
        cell = ws[f"{column}{HEADER_ROW}"]
        cell.value = label
        cell.font = bold
        cell.fill = header_fill
        cell.alignment = centred
        cell.border = boxed
    for position, column in MARK_COLUMNS.items():
        known = by_position.get(position)
        if known is not None and known.max_score != 20:
            ws[f"{column}{HEADER_ROW - 1}"] = f"/ {_number(known.max_score)}"
    ws.row_dimensions[HEADER_ROW].height = 32

    for index, pupil in enumerate(pupils, start=1):
        row = FIRST_ROW + index - 1
        ws[f"{NUMBER_COLUMN}{row}"] = index
        ws[f"{CODE_COLUMN}{row}"] = pupil.code
        ws[f"{NAME_COLUMN}{row}"] = pupil.name
        ws[f"{LATIN_COLUMN}{row}"] = pupil.name_latin
        for column in (NUMBER_COLUMN, CODE_COLUMN, NAME_COLUMN, LATIN_COLUMN):
            ws[f"{column}{row}"].border = boxed
        for position, column in MARK_COLUMNS.items():
            cell = ws[f"{column}{row}"]
            cell.value = _mark_value(marks.get(position, {}).get(pupil.student_id))
            cell.number_format = "0.00"
            cell.alignment = centred
            cell.border = boxed
            cell.fill = entry_fill
    widths = {"A": 2, "B": 6, "C": 34, "D": 34, "E": 26, "F": 2, "G": 16, "H": 2, "I": 16, "J": 2, "K": 16}
    for column, width in widths.items():
        ws.column_dimensions[column].width = width
    ws.freeze_panes = f"A{FIRST_ROW}"

    hidden = wb.create_sheet(IDENTITY_SHEET)
    hidden.sheet_state = "veryHidden"
    identity = info.identity.text()
    versions = versions_text({c.position: (c.assessment_id, c.version) for c in info.columns})
    hidden["A1"] = identity
    hidden["A2"] = versions
    hidden["A3"] = sign(info.identity.secret, identity, versions)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# -- parsing an upload (pure) ------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _word(text: str) -> str:
    return unicodedata.normalize("NFC", re.sub(r"\s+", "", text)).casefold()


def read_mark(value: Any, max_score: Decimal = Decimal(20)) -> CellMark | str:
    """A mark cell's value as a :class:`CellMark`, or why it is not one."""
    limit = f"{_number(max_score)}"
    if _empty(value):
        return BLANK
    if isinstance(value, bool):
        return "TRUE/FALSE is not a mark: type a number, غ/ABS or م/EXC"
    if isinstance(value, (datetime, date, time, timedelta)):
        return "a date or time, not a mark (the spreadsheet turned what was typed into a date): type 12,5 or 12.5"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "not a number"
        number = Decimal(repr(value))
    elif isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("="):
            return "a formula: type the mark itself"
        word = _word(text)
        if word in ABSENT_WORDS:
            return CellMark(None, "absent")
        if word in EXCUSED_WORDS:
            return CellMark(None, "excused")
        text = text.translate(_DIGITS).replace(" ", "").replace("\u00a0", "")
        if not _NUMBER_RE.match(text):
            return (
                f"not a mark: write a number from 0 to {limit} (12,5 or 12.5), "
                "غ or ABS for an absent pupil, م or EXC for an excused absence, or leave it empty"
            )
        number = Decimal(text.replace(",", "."))
    else:
        return "not a mark"
    try:
        exponent = number.normalize().as_tuple().exponent
    except InvalidOperation:
        return "not a number"
    if number < 0:
        return f"negative: a mark is between 0 and {limit}"
    if number > max_score:
        return f"above the maximum: a mark is between 0 and {limit}"
    if isinstance(exponent, int) and exponent < -2:
        return "too many decimals: at most two (e.g. 12.25)"
    return CellMark(number.quantize(Decimal("0.01")), "present")


def _file_error(message: str, value: str = "") -> CellError:
    return CellError(0, FILE, "", value, message)


def _check_archive(data: bytes) -> CellError | None:
    if not data:
        return _file_error("the file is empty: upload the .xlsx workbook")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            names = {e.filename for e in entries}
    except (zipfile.BadZipFile, ValueError, OSError):
        return _file_error(
            "not an .xlsx workbook (the file is not a valid Excel archive): save it as “Excel workbook (.xlsx)”"
        )
    if len(entries) > MAX_ZIP_ENTRIES or sum(e.file_size for e in entries) > MAX_UNZIPPED_BYTES:
        return _file_error("the workbook is far too large once unpacked to be a mark sheet")
    if "xl/workbook.xml" not in names:
        return _file_error(
            "not an .xlsx workbook (it may be an .ods or .docx file): save it as “Excel workbook (.xlsx)”"
        )
    return None


def _identity_of(wb: Any, expected: SheetIdentity) -> tuple[SheetIdentity | None, dict[int, tuple[int, int]], str]:
    """The file's signed identity and versions, or why it cannot be trusted."""
    if IDENTITY_SHEET not in wb.sheetnames:
        return (
            None,
            {},
            (
                "this workbook is not a madrasa template of this sheet (its hidden identity is missing): "
                "download the template of this sheet and fill it in"
            ),
        )
    cells = wb[IDENTITY_SHEET]
    identity, versions, signature = (str(cells[f"A{n}"].value or "").strip() for n in (1, 2, 3))
    good = sign(expected.secret, identity, versions) if expected.secret else ""
    match = _IDENTITY_RE.match(identity)
    if not good or not hmac.compare_digest(good, signature) or not match or not _VERSIONS_RE.match(versions):
        return (
            None,
            {},
            (
                "the template's identity was altered (its signature does not match): "
                "download a fresh template of this sheet"
            ),
        )
    school_id, class_id, subject, term_id, teacher_id = match.groups()
    found = SheetIdentity(int(school_id), int(class_id), subject, int(term_id), int(teacher_id))
    parsed: dict[int, tuple[int, int]] = {}
    for item in filter(None, versions.split(";")):
        position, rest = item.split("=")
        aid, version = rest.split(".")
        parsed[int(position)] = (int(aid), int(version))
    return found, parsed, ""


def _mismatch(found: SheetIdentity, expected: SheetIdentity, header: Mapping[str, Any]) -> CellError | None:
    """One error naming how the file's sheet differs from the expected one, at the header cell showing it."""
    differences = []

    def shown(name: str) -> str:
        value = _shown(header.get(name))
        return f" ({value})" if value else ""

    if found.school_id != expected.school_id:
        differences.append(("school", f"another school{shown('school')}"))
    if found.class_id != expected.class_id:
        differences.append(("class", f"another class{shown('class')}"))
    if found.subject_code != expected.subject_code:
        differences.append(("subject", f"another subject ({found.subject_code})"))
    if found.term_id != expected.term_id:
        differences.append(("semester", f"another semester{shown('semester')}"))
    if found.teacher_id != expected.teacher_id:
        differences.append(("teacher", f"another teacher{shown('teacher')}"))
    if not differences:
        return None
    this = " ".join(
        part
        for part in (
            expected.class_name,
            expected.subject or expected.subject_code,
            f"S{expected.semester}" if expected.semester else "",
            f"({expected.teacher})" if expected.teacher else "",
        )
        if part
    )
    first, _ = differences[0]
    row = HEADER_FIELDS[first][0]
    message = (
        "this file is the template of "
        + " and ".join(text for _, text in differences)
        + (f", not of this sheet ({this})" if this else ", not of this sheet")
        + ": download the template of this sheet"
    )
    return CellError(row, "D", f"D{row}", _shown(header.get(first)), message)


def _unreadable(exc: Exception) -> CellError:
    return _file_error(f"the workbook cannot be read ({type(exc).__name__}): save it again as .xlsx and retry")


def read_upload(data: bytes, expected: SheetIdentity, max_scores: Mapping[int, Decimal] | None = None) -> Upload:
    """Parse and validate an uploaded workbook; see :func:`parse_upload`."""
    problem = _check_archive(data)
    if problem is not None:
        return Upload([], [problem], fatal=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        return Upload([], [_unreadable(exc)], fatal=True)
    try:
        return _read_workbook(wb, expected, max_scores or {})
    except Exception as exc:  # a damaged sheet fails while streaming
        return Upload([], [_unreadable(exc)], fatal=True)
    finally:
        wb.close()


def _read_workbook(wb: Any, expected: SheetIdentity, max_scores: Mapping[int, Decimal]) -> Upload:
    found, versions, why = _identity_of(wb, expected)
    if found is None:
        return Upload([], [_file_error(why)], fatal=True)
    sheets = [name for name in wb.sheetnames if name != IDENTITY_SHEET]
    if not sheets:
        return Upload([], [_file_error("the workbook has no mark sheet")], fatal=True)
    ws = wb[SHEET_TITLE] if SHEET_TITLE in sheets else wb[sheets[0]]
    header: dict[str, Any] = {}
    rows_of_header = {row: name for name, (row, _) in HEADER_FIELDS.items()}
    value_index = column_index_from_string("D") - 1
    for number, values in enumerate(ws.iter_rows(min_row=1, max_row=HEADER_ROW - 1, values_only=True), start=1):
        if number in rows_of_header and len(values) > value_index:
            header[rows_of_header[number]] = values[value_index]
    mismatch = _mismatch(found, expected, header)
    if mismatch is not None:
        return Upload([], [mismatch], fatal=True)
    titles = next(iter(ws.iter_rows(min_row=HEADER_ROW, max_row=HEADER_ROW, values_only=True)), ())
    errors: list[CellError] = []
    for column, label in ((CODE_COLUMN, CODE_LABEL), *((MARK_COLUMNS[p], MARK_LABELS[p]) for p in MARK_COLUMNS)):
        index = column_index_from_string(column) - 1
        value = titles[index] if index < len(titles) else None
        if str(value or "").strip() != label:
            message = (
                f"the header of column {column} should read “{label}”: columns or rows were moved, added or "
                "deleted; keep the template's layout (pupils from row 18)"
            )
            errors.append(CellError(HEADER_ROW, column, f"{column}{HEADER_ROW}", _shown(value), message))
    if errors:
        return Upload([], errors, found, versions, fatal=True)
    rows: list[ParsedRow] = []
    first_seen: dict[str, int] = {}
    code_index = column_index_from_string(CODE_COLUMN) - 1
    name_index = column_index_from_string(NAME_COLUMN) - 1
    for number, values in enumerate(ws.iter_rows(min_row=FIRST_ROW, values_only=True), start=FIRST_ROW):
        if all(_empty(v) for v in values):
            continue
        if len(rows) >= MAX_ROWS:
            message = f"more than {MAX_ROWS} pupil rows: this is not one class's mark sheet"
            return Upload([], [_file_error(message)], found, versions, fatal=True)
        parsed, row_errors = _read_row(number, values, code_index, name_index, max_scores)
        errors.extend(row_errors)
        if parsed.code:
            if parsed.code in first_seen:
                message = f"the pupil appears twice: duplicate of row {first_seen[parsed.code]}"
                errors.append(CellError(number, CODE_COLUMN, f"{CODE_COLUMN}{number}", parsed.code, message))
            else:
                first_seen[parsed.code] = number
        rows.append(parsed)
    return Upload(rows, sort_errors(errors), found, versions)


def _read_row(
    number: int, values: tuple[Any, ...], code_index: int, name_index: int, max_scores: Mapping[int, Decimal]
) -> tuple[ParsedRow, list[CellError]]:
    errors: list[CellError] = []

    def fail(column: str, value: Any, message: str) -> None:
        errors.append(CellError(number, column, f"{column}{number}", _shown(value), message))

    raw_code = values[code_index] if code_index < len(values) else None
    code = ""
    marks: dict[int, CellMark] = {}
    for position, column in MARK_COLUMNS.items():
        index = column_index_from_string(column) - 1
        value = values[index] if index < len(values) else None
        mark = read_mark(value, max_scores.get(position, Decimal(20)))
        if isinstance(mark, str):
            fail(column, value, mark)
            marks[position] = BLANK
        else:
            marks[position] = mark
    if _empty(raw_code):
        fail(CODE_COLUMN, raw_code, "the pupil code is missing: every row needs its pupil's code")
    else:
        try:
            code = normalise_pupil_code(str(raw_code))
        except ValueError as exc:
            fail(CODE_COLUMN, raw_code, str(exc))
    for index, value in enumerate(values):
        column = get_column_letter(index + 1)
        if column not in KNOWN_COLUMNS and not _empty(value):
            fail(
                column,
                value,
                f"nothing is read from column {column}: marks go in columns G, I and K (Contrôle 1, 2, 3)",
            )
    raw_name = values[name_index] if name_index < len(values) else None
    return ParsedRow(number, code, "" if raw_name is None else str(raw_name).strip(), marks), errors


def sort_errors(errors: list[CellError]) -> list[CellError]:
    """By row, then column."""
    return sorted(errors, key=lambda e: (e.row, len(e.column), e.column))


def parse_upload(
    data: bytes, expected: SheetIdentity, max_scores: Mapping[int, Decimal] | None = None
) -> tuple[list[ParsedRow], list[CellError]]:
    """Parse an uploaded workbook and report every bad cell; pure.

    ``expected`` is the sheet the file must belong to (its ``secret`` checks the signature);
    ``max_scores`` gives the maximum of each position's assessment (20 when not given). A file that
    is not an xlsx workbook, lacks or alters its identity, or belongs to another class, subject,
    semester or teacher gives one error and no rows. Otherwise every pupil row comes back (a bad
    cell reads blank) with every error; a file may be applied only when the error list is empty.
    """
    parsed = read_upload(data, expected, max_scores)
    return parsed.rows, parsed.errors


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
    where, args = scope_filter(ctx.scope, "a")
    rows = await ctx.services.db.fetch(
        f"SELECT {service.ASSESSMENT_COLUMNS} FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id "
        f"WHERE a.sheet_id = {{}} AND a.kind = 'cc' AND a.position IN (1, 2, 3) AND {where} ORDER BY a.position",
        sheet_id,
        *args,
    )
    return {int(r["position"]): r for r in rows}


async def class_pupils(ctx: RequestContext, class_id: int) -> list[Pupil]:
    """The pupils of a class (open enrolment), in the grid's order."""
    where, args = scope_filter(ctx.scope, "st")
    rows = await ctx.services.db.fetch(
        "SELECT st.id, st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar "
        "FROM enrolment e JOIN student st ON st.id = e.student_id "
        f"WHERE e.class_id = {{}} AND e.ends_on IS NULL AND {where} ORDER BY st.last_name, st.first_name, st.id",
        class_id,
        *args,
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
        raise PermissionDeniedException("Only the subject's teacher or the director can use this sheet's workbook.")
    klass = await get_class(ctx, sheet["class_id"])
    tenants = ctx.services.tenants
    school = await tenants.by_id(sheet["school_id"])
    assert school is not None
    region = await tenants.by_id(school.region_id) if school.region_id else None
    province = await tenants.by_id(school.province_id) if school.province_id else None
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
        school=_both(school.name_ar, school.name_fr),
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


class SpreadsheetController(Controller):
    """``/api/v1/grades/sheets/{sheet_id}/xlsx``: the Massar workbook of a sheet, down and up."""

    path = "/api/v1/grades/sheets"
    tags = ["grades"]

    @get("/{sheet_id:int}/xlsx", opt={"permission": "grades.enter"}, media_type=XLSX)
    async def download(self, ctx: Ctx, sheet_id: FromPath[int]) -> Response[bytes]:
        """The sheet's marks as a Massar-layout workbook (the subject's teacher or the director)."""
        async with ctx.services.db.scoped(ctx.scope, write=False):
            info, pupils, marks = await template_for(ctx, sheet_id)
        content = await to_thread.run_sync(build_template, info, pupils, marks)
        return Response(
            content,
            media_type=XLSX,
            headers={"Content-Disposition": _disposition(info.filename()), "Cache-Control": "no-store"},
        )

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
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            _, info = await load_sheet(ctx, sheet_id)
        content = await data.file.read()
        policy = ContentPolicy.from_settings(ctx.services.settings)
        try:
            # Browsers declare spreadsheets inconsistently: the bytes decide (a zip archive).
            policy.check(len(content), XLSX, content)
        except ObjectTooLarge as exc:
            raise PayloadTooLarge(f"The file is larger than {exc.limit} bytes.") from None
        except UnsupportedType:
            raise UnsupportedMediaType("This is not an Excel workbook: save it as .xlsx and try again.") from None
        maxima = {c.position: c.max_score for c in info.columns}
        parsed = await to_thread.run_sync(read_upload, content, info.identity, maxima)
        if parsed.fatal:
            report = UploadReport(ok=False, errors=parsed.errors)
        else:
            async with db.scoped(ctx.scope, write=not parsed.errors):
                report = await apply_upload(ctx, sheet_id, parsed, (data.reason or "").strip() or None)
        return Response(report, status_code=200 if report.ok else 422)


SPREADSHEET_ROUTES: list[Any] = [SpreadsheetController]
