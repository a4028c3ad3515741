"""What a bulletin prints: the data of one pupil's report card and how its values are written."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

Locale = Literal["ar", "fr"]
LOCALES: tuple[Locale, ...] = ("ar", "fr")

# =========================================================================== data


class Mark(msgspec.Struct, frozen=True):
    """A continuous-assessment mark: a score, or ``absent`` / ``excused``."""

    score: Decimal | None = None
    status: str = "present"


class SubjectLine(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the bulletin's table."""

    code: str
    name_ar: str
    name_fr: str
    coefficient: Decimal
    #: CC1, CC2, … in order; ``None`` where the pupil has no mark.
    marks: tuple[Mark | None, ...] = ()
    average: Decimal | None = None
    class_average: Decimal | None = None


class BulletinData(msgspec.Struct, frozen=True, kw_only=True):
    """Everything printed on one pupil's bulletin for a term."""

    student_id: int
    class_id: int
    term_id: int
    region_id: int | None
    province_id: int | None
    school_id: int
    national_code: str
    first_name: str
    last_name: str
    first_name_ar: str = ""
    last_name_ar: str = ""
    class_name: str
    level_ar: str = ""
    level_fr: str = ""
    school_name_ar: str = ""
    school_name_fr: str = ""
    region_name_ar: str = ""
    region_name_fr: str = ""
    school_year: str = ""
    term_number: int = 1
    subjects: tuple[SubjectLine, ...] = ()
    average: Decimal | None = None
    rank: int | None = None
    ranked: int = 0
    class_average: Decimal | None = None
    #: The council's remark; empty: an appreciation derived from the general average.
    remark_ar: str = ""
    remark_fr: str = ""
    primary_color: str = "#0b5d3b"
    secondary_color: str = "#c1272d"
    #: How many CC columns the table shows (at least 3, the Massar layout).
    cc_columns: int = 3
    logo: bytes | None = None
    issued_on: date | None = None

    @property
    def name_ar(self) -> str:
        """The pupil's name in Arabic (first name first)."""
        return " ".join(p for p in (self.first_name_ar, self.last_name_ar) if p)

    @property
    def name_latin(self) -> str:
        """The pupil's name in Latin letters, surname in capitals."""
        return " ".join(p for p in (self.last_name.upper(), self.first_name) if p)


# =========================================================================== formatting

TWO_PLACES = Decimal("0.01")

#: (threshold, Arabic, French): the appreciation for a general average at or above the threshold.
APPRECIATIONS: tuple[tuple[Decimal, str, str], ...] = (
    (Decimal(16), "ممتاز", "Excellent"),
    (Decimal(14), "حسن جدا", "Très bien"),
    (Decimal(12), "حسن", "Bien"),
    (Decimal(10), "مستحسن", "Assez bien"),
    (Decimal(0), "غير كاف", "Insuffisant"),
)

TEXT: dict[str, dict[Locale, str]] = {
    "title": {"ar": "بيان النقط", "fr": "Bulletin de notes"},
    "year": {"ar": "السنة الدراسية", "fr": "Année scolaire"},
    "pupil": {"ar": "التلميذ(ة)", "fr": "Élève"},
    "code": {"ar": "رمز مسار", "fr": "Code Massar"},
    "class": {"ar": "القسم", "fr": "Classe"},
    "subject": {"ar": "المادة", "fr": "Matière"},
    "coefficient": {"ar": "المعامل", "fr": "Coef."},
    "cc": {"ar": "الفرض", "fr": "CC"},
    "average": {"ar": "المعدل", "fr": "Moyenne"},
    "class_average": {"ar": "معدل القسم", "fr": "Moy. classe"},
    "general_average": {"ar": "المعدل العام", "fr": "Moyenne générale"},
    "rank": {"ar": "الرتبة", "fr": "Rang"},
    "remark": {"ar": "الملاحظة", "fr": "Appréciation"},
    "signature": {"ar": "توقيع وخاتم المدير(ة)", "fr": "Signature et cachet du directeur"},
    "issued": {"ar": "حرر في", "fr": "Fait le"},
    "absent": {"ar": "غ", "fr": "Abs"},
    "excused": {"ar": "م", "fr": "Exc"},
    "total_coefficients": {"ar": "مجموع المعاملات", "fr": "Total des coefficients"},
}
TERMS: dict[Locale, dict[int, str]] = {
    "ar": {1: "الدورة الأولى", 2: "الدورة الثانية"},
    "fr": {1: "Premier semestre", 2: "Deuxième semestre"},
}


def decimal_or_none(value: Any) -> Decimal | None:
    """A database number as :class:`Decimal` (SQLite may hand back floats or strings)."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def fmt_average(value: Decimal | float | None) -> str:
    """``14.25``: two decimals, half up; an em dash when there is none."""
    number = decimal_or_none(value)
    if number is None:
        return "—"
    return str(number.quantize(TWO_PLACES, rounding=ROUND_HALF_UP))


def fmt_coefficient(value: Decimal | float) -> str:
    """``2`` or ``1.5``."""
    number = decimal_or_none(value) or Decimal(0)
    text = f"{number.normalize():f}"
    return text


def fmt_mark(mark: Mark | None, locale: Locale) -> str:
    """A CC cell: the score, a short absence code, or empty."""
    if mark is None:
        return ""
    if mark.status == "absent":
        return TEXT["absent"][locale]
    if mark.status == "excused":
        return TEXT["excused"][locale]
    return fmt_average(mark.score) if mark.score is not None else ""


def appreciation(average: Decimal | None, locale: Locale) -> str:
    """The appreciation of a general average (``Très bien`` from 14, …); a dash without one."""
    if average is None:
        return "—"
    for threshold, ar, fr in APPRECIATIONS:
        if average >= threshold:
            return ar if locale == "ar" else fr
    return APPRECIATIONS[-1][1] if locale == "ar" else APPRECIATIONS[-1][2]


def fmt_date(day: date, locale: Locale) -> str:
    """``29/11/2026`` (both languages; Moroccan documents write dates day first)."""
    return day.strftime("%d/%m/%Y")


def _rgb(colour: str, fallback: tuple[int, int, int] = (11, 93, 59)) -> tuple[int, int, int]:
    text = (colour or "").lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    try:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)) if len(text) == 6 else fallback
    except ValueError:
        return fallback


def _tint(rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """``rgb`` mixed with white (``amount`` 0 → the colour, 1 → white)."""
    return tuple(round(c + (255 - c) * amount) for c in rgb)  # type: ignore[return-value]


def _needs_shaping(text: str) -> bool:
    """Whether a string has characters that need HarfBuzz (right-to-left or joining scripts)."""
    return any(ord(ch) >= 0x0590 and not 0x2000 <= ord(ch) <= 0x206F for ch in text)


def _has_latin_letters(text: str) -> bool:
    return any(ch.isalpha() and ord(ch) < 0x0590 for ch in text)
