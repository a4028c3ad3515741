"""The Massar workbook's layout, vocabulary and shapes, and the signature of its hidden identity sheet.

Pure: no database, no I/O (see :mod:`plugins.grades.spreadsheet` for the round trip).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec
from litestar.datastructures import UploadFile

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

NUMBER_RE = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")
DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹٫", "01234567890123456789.")
IDENTITY_RE = re.compile(r"^madrasa:(\d+):(\d+):([A-Za-z0-9_-]{1,16}):(\d+):(\d+)$")
VERSIONS_RE = re.compile(r"^(?:[1-3]=\d+\.\d+(?:;[1-3]=\d+\.\d+)*)?$")
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
