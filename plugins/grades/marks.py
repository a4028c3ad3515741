"""Marks as people type and read them: parsing a grid field, formatting numbers, a subject's average.

Pure functions shared by the pages, the API and the spreadsheet exchange (no database).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from core.plugin_api import format_number, gettext_, locale_var
from plugins.grades import calc
from plugins.grades.policy import GradePolicy
from plugins.grades.service import MarkEntry

#: What a mark field may hold instead of a number (lower case): absent, excused.
ABSENT_WORDS = frozenset({"a", "abs", "abs.", "absent", "absente", "غ", "غائب", "غائبة"})
EXCUSED_WORDS = frozenset({"e", "exc", "exc.", "excused", "excusé", "excusée", "excuse", "م", "معذور", "معذورة"})
STATUSES = ("present", "absent", "excused")
NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
CENT = Decimal("0.01")


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def fmt_number(value: Any, locale: str, places: int | None = None) -> str:
    """A mark as people write it, through the locale (``12,5`` in French and Arabic, ``12.5`` in English);
    ``""`` for none. Without ``places`` trailing zeros go (``20``, ``12,5``); with it, exactly that many decimals.
    """
    return format_number(_dec(value), locale, places)


def fmt_average(value: float | None, locale: str) -> str:
    """An average (/20) rounded half up to two decimals for display; ``""`` for none."""
    shown = calc.for_display(value)
    return "" if shown is None else fmt_number(shown, locale, places=2)


def parse_decimal(raw: str) -> Decimal | None:
    """``12,5``, ``12.5``, ``١٢٫٥`` → ``Decimal('12.5')``; ``None`` when it is not a number."""
    text = raw.strip().replace(" ", "").replace("\u00a0", "").translate(ARABIC_DIGITS)
    text = text.replace("٫", ".").replace(",", ".")
    if not NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def parse_mark(raw: str, chosen: str, max_score: Decimal) -> tuple[MarkEntry | None, str | None]:
    """One pupil's fields (the typed text and the chosen status) → an entry, or a translated error.

    What is typed wins: a number is a mark (present), ``A``/``abs`` absent, ``E``/``exc``
    excused; an empty field takes the chosen status (a blank mark when present).
    """
    text = raw.strip()
    word = text.lower()
    if not text:
        status = chosen if chosen in STATUSES else "present"
        return MarkEntry(student_id=0, score=None, status=status), None
    if word in ABSENT_WORDS:
        return MarkEntry(student_id=0, status="absent"), None
    if word in EXCUSED_WORDS:
        return MarkEntry(student_id=0, status="excused"), None
    score = parse_decimal(text)
    if score is None or not score.is_finite():
        return None, gettext_("Type a number (such as 12,5), A for absent or E for excused.")
    if score < 0 or score > max_score:
        return None, gettext_("The mark must be between 0 and {max}.", max=fmt_number(max_score, locale_var.get()))
    if score != score.quantize(CENT):
        return None, gettext_("At most two decimals.")
    return MarkEntry(student_id=0, score=score.quantize(CENT), status="present"), None


def subject_average(marks: list[dict[str, Any]], rule: GradePolicy) -> float | None:
    """Weighted mean on /20 of marks rows (``score``, ``status``, ``max_score``, ``weight``) under a region's rules."""
    return calc.subject_average(
        [
            calc.MarkIn(
                score=None if m["score"] is None else float(m["score"]),
                max_score=float(m["max_score"]),
                weight=float(m["weight"]),
                status=m["status"] if m["status"] in STATUSES else "present",
            )
            for m in marks
        ],
        rule.absent_counts_as,  # type: ignore[arg-type]
        rule.excused_counts_as,  # type: ignore[arg-type]
    )


def stats_view(values: list[float | None], locale: str) -> dict[str, Any]:
    """Class statistics (values on /20) as the pages show them."""
    stats = calc.class_statistics(values)
    top = max(stats.distribution) if stats.count else 0
    return {
        "count": stats.count,
        "mean": fmt_average(stats.mean, locale),
        "median": fmt_average(stats.median, locale),
        "minimum": fmt_average(stats.minimum, locale),
        "maximum": fmt_average(stats.maximum, locale),
        "pass_share": None if stats.pass_share is None else round(stats.pass_share * 100),
        "bands": [
            {"label": f"{2 * i}–{2 * i + 2}", "count": n, "height": round(100 * n / top) if top else 0}
            for i, n in enumerate(stats.distribution)
        ],
    }
