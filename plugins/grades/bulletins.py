"""Bulletins (report cards): one PDF per pupil, term and language, generated in the background.

- :func:`render_bulletin` turns a :class:`BulletinData` into PDF bytes, in Arabic (right to left,
  columns mirrored) or French. Pure: no database, no I/O besides reading the fonts once.
- :func:`gather_bulletins` reads a class's results for a term, set-based (a handful of queries
  per class, whatever its size).
- The job ``grades.bulletins`` renders every pupil of a class or a school in both languages off
  the event loop, stores the files under server-built keys and records ``grade_bulletin`` rows,
  reporting progress per pupil.
- :data:`BULLETIN_ROUTES`: ask for the bulletins of a class or school (202 with the job), list
  and download them (staff of the school, the pupil, the pupil's guardians; 404 for anyone else).

Arabic text goes through HarfBuzz (fpdf2 ``set_text_shaping``) so letters join and ligate, with
fpdf2's bidirectional algorithm; fpdf2 writes a ToUnicode map, so the text extracts back to
Unicode in logical order. The font is Noto Sans merged with Noto Naskh Arabic (Debian's
``fonts-noto-core``; :class:`FontsMissing` names the package when absent), cut to the characters
a bulletin needs, prepared once per process (and cached on disk) and shared between documents:
that, and drawing Latin text and numbers without the shaping machinery, is what makes rendering
fast enough for a school (see ``benchmarks/bulletins.py``).
"""

from __future__ import annotations

import asyncio
import copy
import io
import logging
import os
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import msgspec
from litestar import Response, get, post
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import FromPath, FromQuery, JSONBody

from core import audit
from core.access import scope_for
from core.context import Ctx
from core.db import Database, in_list, scope_filter
from core.jobs import JobContext, JobQueueError, covers_row, queue_of, register_job
from core.school.service import Invalid, require_school
from core.scope import Scope
from core.storage import ObjectNotFound, StorageError, build_key

log = logging.getLogger("madrasa.grades.bulletins")

Locale = Literal["ar", "fr"]
LOCALES: tuple[Locale, ...] = ("ar", "fr")
BULLETIN_JOB = "grades.bulletins"
PDF = "application/pdf"
FAMILY_ROLES = frozenset({"parent", "student"})

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


# =========================================================================== fonts

FONT_PACKAGE = "fonts-noto-core"
#: Source fonts by style: the Latin face first (its digits and punctuation win), then the Arabic.
FONT_FILES: dict[str, tuple[str, str]] = {
    "": ("NotoSans-Regular.ttf", "NotoNaskhArabic-Regular.ttf"),
    "B": ("NotoSans-Bold.ttf", "NotoNaskhArabic-Bold.ttf"),
}
#: The family name documents use for the merged bulletin font.
FAMILY = "bulletin"
#: Where fonts are looked for: ``MADRASA_FONT_DIR`` first, then Debian's folders.
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/noto"),
    Path("/usr/share/fonts/opentype/noto"),
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
)
#: Characters kept from each font: Latin for French (Latin-1, œ, typographic punctuation); the
#: Arabic letters, marks, digits and punctuation in use in Morocco (with ڤ, ڭ, گ, پ, چ) and the
#: presentation forms. The fewer glyphs, the cheaper each document's subset; text is normalised
#: to NFC first, and a character outside these ranges prints as a blank box.
_LATIN_RANGES = [(0x0020, 0x007E), (0x00A0, 0x00FF), (0x0152, 0x0153), (0x0178, 0x0178), (0x2010, 0x2027)]
_LATIN_RANGES += [(0x2030, 0x203A), (0x20AC, 0x20AC)]
_ARABIC_RANGES = [(0x060C, 0x060C), (0x061B, 0x061B), (0x061F, 0x061F), (0x0621, 0x0655), (0x0660, 0x066D)]
_ARABIC_RANGES += [(0x0670, 0x0670), (0x067E, 0x067E), (0x0686, 0x0686), (0x0698, 0x0698), (0x06A4, 0x06A4)]
_ARABIC_RANGES += [(0x06A9, 0x06A9), (0x06AD, 0x06AD), (0x06AF, 0x06AF), (0x06CC, 0x06CC), (0xFE70, 0xFEFF)]
_ARABIC_RANGES += [(0x0020, 0x007E), (0x00A0, 0x00A0), (0x00AB, 0x00AB), (0x00BB, 0x00BB), (0x200C, 0x200F)]
#: Bump when the way fonts are prepared changes (invalidates the on-disk cache).
_RECIPE = "2"


class FontsMissing(RuntimeError):
    """A font the bulletins need is not installed."""


def font_dirs() -> list[Path]:
    """Folders searched for fonts, in order."""
    extra = os.environ.get("MADRASA_FONT_DIR")
    return ([Path(extra)] if extra else []) + list(FONT_DIRS)


def find_font(filename: str) -> Path:
    """The path of an installed font file; :class:`FontsMissing` names the Debian package otherwise."""
    dirs = font_dirs()
    for folder in dirs:
        candidate = folder / filename
        if candidate.is_file():
            return candidate
    for folder in dirs:
        if folder.is_dir():
            for candidate in folder.rglob(filename):
                if candidate.is_file():
                    return candidate
    raise FontsMissing(
        f"font {filename} not found in {', '.join(str(d) for d in dirs)}: bulletins need the Debian package "
        f"{FONT_PACKAGE} (apt-get install {FONT_PACKAGE}), or MADRASA_FONT_DIR pointing at a folder with it"
    )


def check_fonts() -> None:
    """Fail early (start-up, readiness) when the bulletin fonts are missing."""
    for names in FONT_FILES.values():
        for name in names:
            find_font(name)


def _cache_dir() -> Path | None:
    """A private folder for prepared fonts (``MADRASA_FONT_CACHE``, else the user's cache folder)."""
    configured = os.environ.get("MADRASA_FONT_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            home = Path.home()
        except RuntimeError:  # no home folder known
            return None
        base = str(home / ".cache") if home != Path("/") else ""
    return Path(base) / "madrasa" / "fonts" if base else None


def _subset(path: Path, ranges: list[tuple[int, int]]) -> io.BytesIO:
    from fontTools import subset as ftsubset
    from fontTools.ttLib import TTFont

    options = ftsubset.Options()  # fontTools' default layout features: those HarfBuzz applies
    options.hinting = False
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.glyph_names = True
    options.name_IDs = ["*"]
    options.drop_tables += ["DSIG", "FFTM", "meta", "MATH"]
    font = TTFont(path, recalcTimestamp=False)
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=[cp for start, end in ranges for cp in range(start, end + 1)])
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    out.seek(0)
    return out


def _build(latin: Path, arabic: Path) -> tuple[bytes, bytes]:
    """One font with both scripts (for shaping) and its outlines-only twin (for embedding)."""
    from fontTools.merge import Merger
    from fontTools.merge import Options as MergeOptions
    from fontTools.ttLib import TTFont

    merged = Merger(options=MergeOptions(drop_tables=["vmtx", "vhea", "MATH"])).merge(
        [_subset(latin, _LATIN_RANGES), _subset(arabic, _ARABIC_RANGES)]
    )
    out = io.BytesIO()
    merged.save(out)
    shaping = out.getvalue()
    # What a PDF's embedded CIDFontType2 needs, with the same glyph ids: outlines and metrics.
    # No layout (shaping is done), no character map (the PDF maps codes to glyphs), no names.
    font = TTFont(io.BytesIO(shaping), recalcTimestamp=False)
    for tag in ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "hdmx", "kern", "cmap", "OS/2", "VDMX", "LTSH", "gasp"):
        if tag in font:
            del font[tag]
    font["post"].formatType = 3.0
    out = io.BytesIO()
    font.save(out)
    return shaping, out.getvalue()


def _prepared_bytes(style: str, latin: Path, arabic: Path) -> tuple[bytes, bytes]:
    """The two font files of a style, from the cache folder when a previous process made them."""
    import hashlib

    import fontTools

    key = hashlib.sha256(
        repr(
            (_RECIPE, fontTools.version, [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (latin, arabic)])
        ).encode()
    ).hexdigest()[:16]
    folder = _cache_dir()
    names = (f"{FAMILY}-{style or 'R'}-{key}.shaping.ttf", f"{FAMILY}-{style or 'R'}-{key}.embedding.ttf")
    if folder is not None:
        try:
            return (folder / names[0]).read_bytes(), (folder / names[1]).read_bytes()
        except OSError:
            pass
    shaping, embedding = _build(latin, arabic)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            for name, data in zip(names, (shaping, embedding), strict=True):
                tmp = folder / f".{name}.{os.getpid()}.{threading.get_ident()}"
                tmp.write_bytes(data)
                os.replace(tmp, folder / name)
        except OSError:
            log.info("font cache not writable", extra={"folder": str(folder)})
    return shaping, embedding


@dataclass
class _PreparedFont:
    """A font prepared once per process and shared by every document."""

    style: str
    shaping: bytes  # both scripts with their layout tables, for HarfBuzz
    embedding: bytes  # the same glyph ids, outlines and metrics only, for fpdf2's per-document subset
    path: Path | None = None  # the shaping font on disk, only when fpdf2's public API is used
    base: Any = None  # fpdf2 TTFFont parsed once from ``shaping``
    face: Any = None  # uharfbuzz Face over ``shaping``
    order: tuple[str, ...] = ()


class FontBook:
    """The bulletin font (one family, both scripts, regular and bold) of this process; thread-safe.

    Preparing it (subset, merge) takes seconds, so the result is kept in memory and in a cache
    folder. Each document then gets a light copy of fpdf2's parsed font instead of parsing it
    again; only the per-document subset is computed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fonts: dict[str, _PreparedFont] | None = None
        self._fast = True

    def fonts(self) -> dict[str, _PreparedFont]:
        """The prepared fonts by style (raises :class:`FontsMissing` if a source is not installed)."""
        if self._fonts is None:
            with self._lock:
                if self._fonts is None:
                    self._fonts = self._load()
        return self._fonts

    def _load(self) -> dict[str, _PreparedFont]:
        import tempfile

        import uharfbuzz as hb
        from fpdf import FPDF
        from fpdf.fonts import TTFFont

        prepared: dict[str, _PreparedFont] = {}
        scratch = FPDF()
        for style, (latin_name, arabic_name) in FONT_FILES.items():
            shaping, embedding = _prepared_bytes(style, find_font(latin_name), find_font(arabic_name))
            font = _PreparedFont(style, shaping, embedding)
            try:
                font.base = TTFFont(scratch, io.BytesIO(shaping), f"{FAMILY}{style}", style)
                font.order = tuple(font.base.ttfont.getGlyphOrder())
                font.face = hb.Face(hb.Blob(shaping))
            except Exception:  # fpdf2's internals moved: use its public API (slower, same output)
                log.warning("fpdf2 font sharing unavailable; fonts are parsed per document", exc_info=True)
                self._fast = False
            prepared[style] = font
        if not self._fast:  # fpdf2's add_font() wants files
            folder = Path(tempfile.mkdtemp(prefix="madrasa-fonts-"))
            for style, font in prepared.items():
                font.path = folder / f"{FAMILY}-{style or 'R'}.ttf"
                font.path.write_bytes(font.shaping)
        return prepared

    def install(self, pdf: Any) -> None:
        """Make the family ``bulletin`` (regular and bold) available in a document."""
        from fontTools.ttLib import TTFont
        from fpdf.fonts import HarfBuzzFont, SubsetMap

        for style, prepared in self.fonts().items():
            if not self._fast:
                pdf.add_font(FAMILY, style, str(prepared.path))  # slow path: parsed per document
                continue
            font = copy.copy(prepared.base)
            font.i = len(pdf.fonts) + 1
            font.subset = SubsetMap(font)
            font.missing_glyphs = []
            font.biggest_size_pt = 0
            font.ttfont = TTFont(io.BytesIO(prepared.embedding), lazy=True, recalcTimestamp=False, recalcBBoxes=False)
            font.ttfont.setGlyphOrder(list(prepared.order))
            font._hbfont = HarfBuzzFont(prepared.face)
            pdf.fonts[f"{FAMILY}{style}"] = font

    @staticmethod
    def forget_glyph_caches() -> None:
        """Drop fpdf2's process-wide glyph memo (it would keep every document's fonts alive)."""
        from fpdf.fonts import SubsetMap

        for name in ("pick", "get_glyph"):
            clear = getattr(getattr(SubsetMap, name, None), "cache_clear", None)
            if clear is not None:
                clear()


FONTS = FontBook()


# =========================================================================== rendering

PAGE_WIDTH = 210.0
MARGIN = 12.0
CONTENT = PAGE_WIDTH - 2 * MARGIN
GREY = (90, 90, 90)
LIGHT = (245, 246, 248)


class _Writer:
    """A bulletin page: fpdf2 plus the direction-aware helpers the layout uses.

    Positions are given from the reading start of a line (:meth:`x_of`), so one layout serves
    both directions: in Arabic the start is the right margin and table columns run leftwards.
    """

    def __init__(self, data: BulletinData, locale: Locale) -> None:
        from fpdf import FPDF

        self.data = data
        self.locale = locale
        self.other: Locale = "fr" if locale == "ar" else "ar"
        self.rtl = locale == "ar"
        pdf = FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(False)
        pdf.set_creator("madrasa")
        pdf.set_title(f"{TEXT['title'][locale]} - {data.national_code}")
        pdf.set_lang("ar-MA" if self.rtl else "fr-MA")
        FONTS.install(pdf)
        pdf.set_text_shaping(True, direction="ltr")
        self._ltr = pdf.text_shaping
        pdf.set_text_shaping(True, direction="rtl")
        self._rtl = pdf.text_shaping
        self.pdf = pdf
        self.primary = _rgb(data.primary_color)
        self.secondary = _rgb(data.secondary_color, (193, 39, 45))
        self.rule = _tint(self.primary, 0.45)

    # -- primitives ----------------------------------------------------------------------

    def font(self, size: float, bold: bool = False) -> None:
        """Select the bulletin family (both scripts), a style and a size."""
        self.pdf.set_font(FAMILY, "B" if bold else "", size)

    def text(self, x: float, y: float, w: float, h: float, text: str, *, align: str = "S", fit: bool = False) -> None:
        """A line of text in the box at ``(x, y)`` (from the left); align ``S`` (start), ``E`` (end) or ``C``.

        Latin text and numbers skip the shaping engine (much faster); Arabic goes through it.
        ``fit`` shrinks the font until the text fits the width (measured only when it might not).
        """
        if not text:
            return
        text = unicodedata.normalize("NFC", text)
        pdf = self.pdf
        real = {"S": "R" if self.rtl else "L", "E": "L" if self.rtl else "R", "C": "C"}[align]
        if not _needs_shaping(text):
            self._plain(x, y, w, h, text, real, fit)
            return
        # Arabic without Latin words reads right to left even in the French bulletin.
        pdf.text_shaping = self._rtl if self.rtl or not _has_latin_letters(text) else self._ltr
        original = pdf.font_size_pt
        if fit and len(text) * original * 0.2117 > w - 2:  # ~0.6 em a character at most: else it fits
            size = original
            while size > 6 and pdf.get_string_width(text) > w - 2:
                size -= 0.5
                pdf.set_font_size(size)
        pdf.set_xy(x, y)
        pdf.cell(w, h, text, align=real)
        if pdf.font_size_pt != original:
            pdf.set_font_size(original)

    def _plain(self, x: float, y: float, w: float, h: float, text: str, align: str, fit: bool) -> None:
        """Unshaped text placed like ``cell`` would, without its per-call layout machinery."""
        pdf = self.pdf
        widths = pdf.current_font.cw
        units = sum(widths[ord(ch)] for ch in text)
        size = original = pdf.font_size_pt
        if fit:
            while size > 6 and units * size * 0.001 / pdf.k > w - 2:
                size -= 0.5
            if size != pdf.font_size_pt:
                pdf.set_font_size(size)
        width = units * size * 0.001 / pdf.k
        if align == "L":
            left = x + pdf.c_margin
        elif align == "R":
            left = x + w - pdf.c_margin - width
        else:
            left = x + (w - width) / 2
        pdf.text_shaping = None
        pdf.text(left, y + 0.5 * h + 0.3 * pdf.font_size, text)
        if size != original:
            pdf.set_font_size(original)

    def pair(self, x: float, y: float, w: float, h: float, label: str, value: str, *, align: str = "S") -> None:
        """``label value`` on one line, drawn as two runs so numbers never go through bidi reordering."""
        pdf = self.pdf
        pad = 2 * pdf.c_margin
        if _needs_shaping(label):
            pdf.text_shaping = self._rtl
            label_w = pdf.get_string_width(label) + pad
        else:
            label_w = self._width(label) + pad
        value_w = self._width(value) + pad
        offset = 0.0 if align == "S" else max(0.0, w - label_w - value_w)  # from the reading start
        if self.rtl:
            label_x = x + w - offset - label_w
            value_x = label_x - value_w
        else:
            label_x = x + offset
            value_x = label_x + label_w
        self.text(label_x, y, label_w, h, label, align="C")
        self.text(value_x, y, value_w, h, value, align="C")

    def _width(self, text: str) -> float:
        pdf = self.pdf
        return sum(pdf.current_font.cw[ord(ch)] for ch in text) * pdf.font_size_pt * 0.001 / pdf.k

    def box(self, x: float, y: float, w: float, h: float, fill: tuple[int, int, int] | None = None) -> None:
        """A ruled rectangle, filled when ``fill`` is given."""
        pdf = self.pdf
        pdf.set_draw_color(*self.rule)
        if fill is not None:
            pdf.set_fill_color(*fill)
        pdf.rect(x, y, w, h, style="DF" if fill is not None else "D")

    def x_of(self, start: float, width: float) -> float:
        """Left edge of a box ``width`` wide at ``start`` mm from the reading start of the line."""
        return PAGE_WIDTH - MARGIN - start - width if self.rtl else MARGIN + start

    def colour(self, rgb: tuple[int, int, int]) -> None:
        """Text colour."""
        self.pdf.set_text_color(*rgb)

    # -- sections ------------------------------------------------------------------------

    def header(self) -> float:
        pdf, d, loc = self.pdf, self.data, self.locale
        top = 10.0
        pdf.set_fill_color(*self.primary)
        pdf.rect(MARGIN, top, CONTENT, 24, style="F")
        pdf.set_fill_color(*self.secondary)
        pdf.rect(MARGIN, top + 24, CONTENT, 1.2, style="F")
        logo_w = 0.0
        if d.logo:
            try:
                pdf.image(io.BytesIO(d.logo), x=self.x_of(2, 20), y=top + 2, w=20, h=20, keep_aspect_ratio=True)
                logo_w = 23.0
            except Exception:  # an unreadable logo never stops a bulletin
                log.warning("school logo could not be drawn", exc_info=True)
        school = (d.school_name_ar if self.rtl else d.school_name_fr) or d.school_name_fr or d.school_name_ar
        other_school = d.school_name_fr if self.rtl else d.school_name_ar
        region = d.region_name_ar if self.rtl else d.region_name_fr
        name_w = CONTENT * 0.62 - logo_w
        x = self.x_of(3 + logo_w, name_w)
        self.colour((255, 255, 255))
        self.font(14, bold=True)
        self.text(x, top + 2, name_w, 8, school, fit=True)
        self.font(9)
        if other_school and other_school != school:
            self.text(x, top + 10, name_w, 5.5, other_school, fit=True)
        self.text(x, top + 16, name_w, 5.5, region, fit=True)
        side_w = CONTENT * 0.36
        x = self.x_of(CONTENT - side_w - 3, side_w)
        self.font(10, bold=True)
        self.text(x, top + 4, side_w, 6, TERMS[loc].get(d.term_number, ""), align="E")
        self.font(9)
        self.pair(x, top + 11, side_w, 6, TEXT["year"][loc], d.school_year, align="E")
        self.colour((0, 0, 0))
        return top + 29

    def title(self, y: float) -> float:
        d = self.data
        self.colour(self.primary)
        self.font(17, bold=True)
        self.text(MARGIN, y, CONTENT, 9, TEXT["title"][self.locale], align="C")
        self.colour(GREY)
        self.font(9)
        term = TERMS[self.other].get(d.term_number, "")
        self.text(MARGIN, y + 9, CONTENT, 5, f"{TEXT['title'][self.other]} - {term}", align="C")
        self.colour((0, 0, 0))
        return y + 17

    def pupil(self, y: float) -> float:
        d, loc = self.data, self.locale
        self.box(MARGIN, y, CONTENT, 19, fill=_tint(self.primary, 0.92))
        half = CONTENT / 2 - 4
        label_w = 26.0
        level = d.level_ar if self.rtl else d.level_fr
        cells = [
            (0.0, 2.0, TEXT["pupil"][loc], d.name_ar if self.rtl else d.name_latin),
            (CONTENT / 2 + 2, 2.0, "", d.name_latin if self.rtl else d.name_ar),
            (0.0, 10.0, TEXT["code"][loc], d.national_code),
            (CONTENT / 2 + 2, 10.0, TEXT["class"][loc], f"{d.class_name} ({level})" if level else d.class_name),
        ]
        for start, dy, label, value in cells:
            if label:
                self.font(9)
                self.colour(GREY)
                self.text(self.x_of(start + 3, label_w), y + dy, label_w, 7, label)
                self.colour((0, 0, 0))
                self.font(11, bold=True)
                self.text(self.x_of(start + 3 + label_w, half - label_w), y + dy, half - label_w, 7, value, fit=True)
            else:
                self.font(11, bold=True)
                self.text(self.x_of(start, half), y + dy, half, 7, value, align="E", fit=True)
        return y + 24

    def table(self, y: float) -> float:
        d, loc = self.data, self.locale
        n_cc = max(3, min(d.cc_columns, 5))
        widths = [0.0, 15.0, *([16.0] * n_cc), 22.0, 24.0]
        widths[0] = CONTENT - sum(widths[1:])
        starts = [sum(widths[:i]) for i in range(len(widths))]
        headers = [
            TEXT["subject"][loc],
            TEXT["coefficient"][loc],
            *[f"{TEXT['cc'][loc]} {i}" for i in range(1, n_cc + 1)],
            TEXT["average"][loc],
            TEXT["class_average"][loc],
        ]
        self.pdf.set_line_width(0.2)
        self.colour((255, 255, 255))
        self.font(8.5, bold=True)
        for start, width, label in zip(starts, widths, headers, strict=True):
            x = self.x_of(start, width)
            self.box(x, y, width, 8, fill=self.primary)
            self.text(x, y, width, 8, label, align="C", fit=True)
        y += 8
        self.colour((0, 0, 0))
        rows = len(d.subjects)
        row_h = 7.0 if rows <= 14 else max(4.5, 98.0 / rows)
        size = 9.0 if row_h >= 6 else 7.5
        average_col = len(widths) - 2
        for index, line in enumerate(d.subjects):
            fill = _tint(self.primary, 0.94) if index % 2 else (255, 255, 255)
            marks = list(line.marks[:n_cc]) + [None] * (n_cc - len(line.marks[:n_cc]))
            cells = [
                (line.name_ar if self.rtl else line.name_fr) or line.code,
                fmt_coefficient(line.coefficient),
                *[fmt_mark(m, loc) for m in marks],
                fmt_average(line.average),
                fmt_average(line.class_average) if line.class_average is not None else "",
            ]
            for col, (start, width, value) in enumerate(zip(starts, widths, cells, strict=True)):
                x = self.x_of(start, width)
                self.box(x, y, width, row_h, fill=fill)
                self.font(size, bold=col == average_col)
                if col == 0:
                    self.text(x + (0 if self.rtl else 1.5), y, width - 1.5, row_h, value, fit=True)
                else:
                    self.text(x, y, width, row_h, value, align="C")
            y += row_h
        total = sum((line.coefficient for line in d.subjects), Decimal(0))
        self.font(8.5)
        self.colour(GREY)
        self.text(self.x_of(0, widths[0]), y + 1, widths[0], 5, TEXT["total_coefficients"][loc])
        self.text(self.x_of(starts[1], widths[1]), y + 1, widths[1], 5, fmt_coefficient(total), align="C")
        self.colour((0, 0, 0))
        return y + 9

    def summary(self, y: float) -> float:
        d, loc = self.data, self.locale
        box_w = (CONTENT - 8) / 3
        items = [
            (TEXT["general_average"][loc], fmt_average(d.average)),
            (TEXT["rank"][loc], f"{d.rank} / {d.ranked}" if d.rank is not None and d.ranked else "—"),
            (TEXT["class_average"][loc], fmt_average(d.class_average)),
        ]
        for i, (label, value) in enumerate(items):
            x = self.x_of(i * (box_w + 4), box_w)
            self.box(x, y, box_w, 17, fill=_tint(self.primary, 0.88) if i == 0 else LIGHT)
            self.font(9)
            self.colour(GREY)
            self.text(x, y + 1.5, box_w, 5, label, align="C")
            self.font(15, bold=True)
            self.colour(self.primary if i == 0 else (0, 0, 0))
            self.text(x, y + 7, box_w, 8, value, align="C")
        self.colour((0, 0, 0))
        y += 21
        remark = (d.remark_ar if self.rtl else d.remark_fr) or appreciation(d.average, loc)
        label_w = 30.0
        self.box(MARGIN, y, CONTENT, 10)
        self.font(9)
        self.colour(GREY)
        self.text(self.x_of(2, label_w), y + 1.5, label_w, 7, TEXT["remark"][loc])
        self.colour((0, 0, 0))
        self.font(11, bold=True)
        self.text(self.x_of(2 + label_w, CONTENT - label_w - 4), y + 1.5, CONTENT - label_w - 4, 7, remark, fit=True)
        return y + 14

    def footer(self, y: float) -> None:
        d, loc = self.data, self.locale
        issued = d.issued_on or datetime.now(UTC).date()
        half = CONTENT / 2
        self.font(9)
        self.pair(self.x_of(0, half), y + 2, half, 6, TEXT["issued"][loc], fmt_date(issued, loc))
        self.font(9, bold=True)
        self.text(self.x_of(half, half), y + 2, half, 6, TEXT["signature"][loc], align="E")
        self.pdf.set_draw_color(*GREY)
        x = self.x_of(half + 20, half - 20)
        self.pdf.line(x, y + 26, x + half - 20, y + 26)
        self.font(7)
        self.colour(GREY)
        self.text(
            MARGIN, 284, CONTENT, 4, f"madrasa - {d.national_code} - S{d.term_number} - {d.school_year}", align="C"
        )
        self.colour((0, 0, 0))

    def render(self) -> bytes:
        self.pdf.add_page()
        y = self.header()
        y = self.title(y)
        y = self.pupil(y)
        y = self.table(y)
        y = self.summary(y)
        self.footer(y)
        return bytes(self.pdf.output())


def render_bulletin(data: BulletinData, locale: Locale) -> bytes:
    """The bulletin as PDF bytes, in Arabic (right to left) or French. Pure; safe in threads."""
    if locale not in LOCALES:
        raise ValueError(f"locale must be one of {LOCALES}, got {locale!r}")
    try:
        return _Writer(data, locale).render()
    finally:
        FONTS.forget_glyph_caches()


def render_pair(data: BulletinData, locales: Sequence[Locale] = LOCALES) -> dict[Locale, bytes]:
    """A pupil's bulletin in several languages (one thread hop for all of them)."""
    return {locale: render_bulletin(data, locale) for locale in locales}


# =========================================================================== gathering


async def gather_bulletins(db: Database, scope: Scope, class_id: int, term_id: int) -> list[BulletinData]:
    """The bulletins of a class for a term, from the results computed at the term's close.

    Set-based: five queries for the class whatever its size. Pupils are those with a general
    result for the class and term, ordered by name. Run inside ``db.scoped(scope)``.
    """
    where, args = scope_filter(scope, "c")
    head = await db.fetchrow(
        "SELECT c.id, c.name, c.region_id, c.province_id, c.school_id, l.name_ar AS level_ar, "
        "l.name_fr AS level_fr, y.label AS year_label, s.name_ar AS school_ar, s.name_fr AS school_fr, "
        "s.display_name, s.primary_color, s.secondary_color, r.name_ar AS region_ar, r.name_fr AS region_fr, "
        "t.number AS term_number "
        "FROM school_class c JOIN tenant s ON s.id = c.school_id LEFT JOIN tenant r ON r.id = c.region_id "
        "LEFT JOIN level l ON l.code = c.level_code LEFT JOIN school_year y ON y.id = c.school_year_id "
        "LEFT JOIN term t ON t.id = {} "
        f"WHERE c.id = {{}} AND {where}",
        term_id,
        class_id,
        *args,
    )
    if head is None:
        return []
    where, args = scope_filter(scope, "g")
    pupils = await db.fetch(
        "SELECT g.student_id, g.average, g.rank, g.ranked, st.national_code, st.first_name, st.last_name, "
        "st.first_name_ar, st.last_name_ar FROM grade_general_result g JOIN student st ON st.id = g.student_id "
        f"WHERE g.class_id = {{}} AND g.term_id = {{}} AND {where} "
        "ORDER BY st.last_name, st.first_name, st.id",
        class_id,
        term_id,
        *args,
    )
    if not pupils:
        return []
    where, args = scope_filter(scope, "r")
    results = await db.fetch(
        "SELECT r.student_id, r.subject_code, r.average, r.coefficient, sub.name_ar, sub.name_fr, sub.id AS position "
        "FROM grade_subject_result r LEFT JOIN subject sub ON sub.code = r.subject_code "
        f"WHERE r.class_id = {{}} AND r.term_id = {{}} AND {where}",
        class_id,
        term_id,
        *args,
    )
    where, args = scope_filter(scope, "k")
    stats = await db.fetch(
        "SELECT k.subject_code, k.mean FROM grade_class_stats k "
        f"WHERE k.class_id = {{}} AND k.term_id = {{}} AND {where}",
        class_id,
        term_id,
        *args,
    )
    where, args = scope_filter(scope, "a")
    marks = await db.fetch(
        "SELECT a.subject_code, a.position, m.student_id, m.score, m.status FROM grade_assessment a "
        "JOIN grade_sheet sh ON sh.id = a.sheet_id JOIN grade_mark m ON m.assessment_id = a.id "
        "WHERE a.class_id = {} AND a.term_id = {} AND a.kind = 'cc' AND sh.state IN ('validated', 'published') "
        f"AND {where}",
        class_id,
        term_id,
        *args,
    )
    class_means = {row["subject_code"] or "": decimal_or_none(row["mean"]) for row in stats}
    by_pupil: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in results:
        by_pupil[row["student_id"]].append(row)
    pupil_marks: dict[tuple[int, str], dict[int, Mark]] = defaultdict(dict)
    cc_columns = 3
    for row in marks:
        position = int(row["position"] or 1)
        cc_columns = max(cc_columns, position)
        pupil_marks[(row["student_id"], row["subject_code"])][position] = Mark(
            decimal_or_none(row["score"]), row["status"] or "present"
        )
    cc_columns = min(cc_columns, 5)
    school_fr = head["display_name"] or head["school_fr"] or ""
    out = []
    for pupil in pupils:
        lines = []
        for row in sorted(
            by_pupil.get(pupil["student_id"], []), key=lambda r: (r["position"] or 10_000, r["subject_code"])
        ):
            got = pupil_marks.get((pupil["student_id"], row["subject_code"]), {})
            lines.append(
                SubjectLine(
                    code=row["subject_code"],
                    name_ar=row["name_ar"] or "",
                    name_fr=row["name_fr"] or row["subject_code"],
                    coefficient=decimal_or_none(row["coefficient"]) or Decimal(1),
                    marks=tuple(got.get(i) for i in range(1, cc_columns + 1)),
                    average=decimal_or_none(row["average"]),
                    class_average=class_means.get(row["subject_code"]),
                )
            )
        out.append(
            BulletinData(
                student_id=pupil["student_id"],
                class_id=class_id,
                term_id=term_id,
                region_id=head["region_id"],
                province_id=head["province_id"],
                school_id=head["school_id"],
                national_code=pupil["national_code"],
                first_name=pupil["first_name"] or "",
                last_name=pupil["last_name"] or "",
                first_name_ar=pupil["first_name_ar"] or "",
                last_name_ar=pupil["last_name_ar"] or "",
                class_name=head["name"],
                level_ar=head["level_ar"] or "",
                level_fr=head["level_fr"] or "",
                school_name_ar=head["school_ar"] or "",
                school_name_fr=school_fr,
                region_name_ar=head["region_ar"] or "",
                region_name_fr=head["region_fr"] or "",
                school_year=head["year_label"] or "",
                term_number=int(head["term_number"] or 1),
                subjects=tuple(lines),
                average=decimal_or_none(pupil["average"]),
                rank=pupil["rank"],
                ranked=int(pupil["ranked"] or 0),
                class_average=class_means.get(""),
                primary_color=head["primary_color"] or "#0b5d3b",
                secondary_color=head["secondary_color"] or "#c1272d",
                cc_columns=cc_columns,
            )
        )
    return out


# =========================================================================== the job


def bulletin_filename(data: BulletinData, locale: Locale) -> str:
    """``S000000001-S1-ar.pdf``."""
    return f"{data.national_code}-S{data.term_number}-{locale}.pdf"


async def _classes_with_results(db: Database, scope: Scope, school_id: int, term_id: int) -> list[int]:
    where, args = scope_filter(scope, "g")
    rows = await db.fetch(
        "SELECT g.class_id, count(*) AS pupils FROM grade_general_result g "
        f"WHERE g.school_id = {{}} AND g.term_id = {{}} AND {where} GROUP BY g.class_id ORDER BY g.class_id",
        school_id,
        term_id,
        *args,
    )
    return [int(r["class_id"]) for r in rows]


async def _count_pupils(db: Database, scope: Scope, school_id: int, term_id: int, class_ids: list[int]) -> int:
    where, args = scope_filter(scope, "g")
    placeholders, ids = in_list(class_ids)
    return int(
        await db.fetchval(
            f"SELECT count(*) FROM grade_general_result g WHERE g.school_id = {{}} AND g.term_id = {{}} "
            f"AND g.class_id IN {placeholders} AND {where}",
            school_id,
            term_id,
            *ids,
            *args,
        )
        or 0
    )


async def _store(job: JobContext, data: BulletinData, pdfs: dict[Locale, bytes]) -> int:
    """Store one pupil's files and replace their ``grade_bulletin`` rows; returns files written."""
    db, storage = job.db, job.services.storage
    keys = {locale: build_key(data.school_id, "bulletins", bulletin_filename(data, locale)) for locale in pdfs}
    # Objects first: a failure below leaves an orphan object, never a row without its file.
    for locale, pdf in pdfs.items():
        await storage.put(keys[locale], pdf, PDF, tenant_id=data.school_id)
    placeholders, locales = in_list(pdfs)
    async with db.scoped(job.scope):
        old = await db.fetch(
            f"SELECT id, storage_key FROM grade_bulletin WHERE term_id = {{}} AND student_id = {{}} "
            f"AND school_id = {{}} AND locale IN {placeholders}",
            data.term_id,
            data.student_id,
            data.school_id,
            *locales,
        )
        if old:
            ids_sql, ids = in_list(r["id"] for r in old)
            await db.execute(f"DELETE FROM grade_bulletin WHERE id IN {ids_sql}", *ids)
        now = datetime.now(UTC)
        for locale in pdfs:
            await db.execute(
                "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
                "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
                data.region_id,
                data.province_id,
                data.school_id,
                data.term_id,
                data.student_id,
                data.class_id,
                keys[locale],
                locale,
                now,
            )
    for row in old:  # the previous files, once nothing points at them
        try:
            await storage.delete(row["storage_key"], tenant_id=data.school_id)
        except StorageError:
            log.warning("old bulletin not deleted", extra={"key": row["storage_key"]})
    return len(pdfs)


async def _logo(job: JobContext, school_id: int) -> bytes | None:
    tenant = await job.services.tenants.by_id(school_id)
    if tenant is None or not tenant.logo_key:
        return None
    try:
        return await job.services.storage.get(tenant.logo_key, tenant_id=school_id)
    except StorageError:
        return None


async def bulletins_job(
    job: JobContext, *, school_id: int, term_id: int, class_id: int | None = None, locales: Sequence[str] = LOCALES
) -> dict[str, Any]:
    """Render and store the bulletins of a class (or every class of the school with results).

    Progress counts pupils; each pupil's files and rows commit together. Rendering runs in a
    thread, overlapped with storing the previous pupil, so the event loop stays free.
    """
    chosen = tuple(loc for loc in LOCALES if loc in set(locales)) or LOCALES
    db = job.db
    async with db.scoped(job.scope, write=False):
        class_ids = (
            [class_id] if class_id is not None else await _classes_with_results(db, job.scope, school_id, term_id)
        )
        total = await _count_pupils(db, job.scope, school_id, term_id, class_ids)
    await job.progress(0, total, "starting")
    logo = await _logo(job, school_id)
    issued = datetime.now(UTC).date()
    done = files = 0
    for cid in class_ids:
        async with db.scoped(job.scope, write=False):
            items = await gather_bulletins(db, job.scope, cid, term_id)
        items = [
            msgspec.structs.replace(item, logo=logo, issued_on=issued) for item in items if item.school_id == school_id
        ]
        pending: asyncio.Task[dict[Locale, bytes]] | None = None
        try:
            for index, data in enumerate(items):
                if pending is None:
                    pending = asyncio.create_task(asyncio.to_thread(render_pair, data, chosen))
                pdfs = await pending
                pending = (
                    asyncio.create_task(asyncio.to_thread(render_pair, items[index + 1], chosen))
                    if index + 1 < len(items)
                    else None
                )
                files += await _store(job, data, pdfs)
                done += 1
                await job.progress(done, total, f"{data.class_name}: {data.national_code}")
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
    return {"pupils": done, "files": files, "classes": len(class_ids), "locales": list(chosen)}


register_job(BULLETIN_JOB, bulletins_job)


# =========================================================================== API


class BulletinRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which bulletins to generate: a class, or the whole school when ``class_id`` is null."""

    term_id: int
    class_id: int | None = None


class JobAccepted(msgspec.Struct):
    """A background job was queued; follow it at ``url``."""

    job_id: str
    url: str


class BulletinOut(msgspec.Struct):
    """A generated bulletin."""

    id: int
    student_id: int
    class_id: int
    term_id: int
    locale: str
    created_at: datetime | None
    url: str


@post("/api/v1/grades/bulletins", opt={"permission": "grades.validate"}, status_code=202, tags=["grades"])
async def generate_bulletins(ctx: Ctx, data: JSONBody[BulletinRequest]) -> JobAccepted:
    """Generate the bulletins of a class (or of the whole school) in the background."""
    school = require_school(ctx)
    svc = ctx.services
    db = svc.db
    async with db.scoped(ctx.scope, write=False):
        term = await db.fetchval(
            "SELECT id FROM term WHERE id = {} AND (tenant_id IS NULL OR tenant_id = {})",
            data.term_id,
            school.region_id,
        )
        if term is None:
            raise Invalid("term_id", f"no term {data.term_id} for this school")
        if data.class_id is not None:
            where, args = scope_filter(ctx.scope)
            found = await db.fetchval(
                f"SELECT id FROM school_class WHERE id = {{}} AND school_id = {{}} AND {where}",
                data.class_id,
                school.id,
                *args,
            )
            if found is None:
                raise NotFoundException(f"No class {data.class_id} here.")
    params = {"school_id": school.id, "term_id": data.term_id, "class_id": data.class_id}
    try:
        job_id = await queue_of(svc).enqueue(
            BULLETIN_JOB, params, scope_columns=school.scope_columns(), created_by=ctx.person_id
        )
    except JobQueueError:
        raise ServiceUnavailableException("The job queue is unavailable; try again shortly.") from None
    async with db.scoped(ctx.scope):
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="grades.bulletins.generate",
            object_type="job",
            object_id=job_id,
            tenant=school,
            after=params,
        )
    return JobAccepted(job_id, ctx.url(f"/api/v1/jobs/{job_id}"))


async def _access(ctx: Any) -> tuple[Scope, set[int]]:
    """The scope where the caller sees every bulletin (staff), and the pupils they see as family."""
    svc = ctx.services
    assert ctx.person_id is not None
    grants = await svc.grants.grants(ctx.person_id)
    staff = scope_for(grants, svc.permissions.roles_for(ctx.permission) - FAMILY_ROLES, ctx.tenant)
    where, args = scope_filter(ctx.scope, "s")
    rows = await svc.db.fetch(
        "SELECT s.id FROM student s WHERE (s.person_id = {} OR EXISTS (SELECT 1 FROM guardianship g "
        f"WHERE g.student_id = s.id AND g.person_id = {{}})) AND {where}",
        ctx.person_id,
        ctx.person_id,
        *args,
    )
    return staff, {int(r["id"]) for r in rows}


def _may_read(staff: Scope, family: set[int], row: dict[str, Any]) -> bool:
    return covers_row(staff, row) or row["student_id"] in family


BULLETIN_SQL = (
    "SELECT b.id, b.student_id, b.class_id, b.term_id, b.locale, b.storage_key, b.created_at, b.region_id, "
    "b.province_id, b.school_id FROM grade_bulletin b WHERE "
)


def _out(ctx: Any, row: dict[str, Any]) -> BulletinOut:
    created = row["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    return BulletinOut(
        row["id"],
        row["student_id"],
        row["class_id"],
        row["term_id"],
        row["locale"],
        created,
        ctx.url(f"/api/v1/grades/bulletins/{row['id']}"),
    )


@get("/api/v1/grades/bulletins", opt={"permission": "grades.view"}, tags=["grades"])
async def list_bulletins(
    ctx: Ctx,
    student_id: FromQuery[int | None] = None,
    term_id: FromQuery[int | None] = None,
    class_id: FromQuery[int | None] = None,
) -> list[BulletinOut]:
    """Bulletins the caller may read: a school's for its staff, their own or their children's for families."""
    if ctx.person_id is None:
        return []
    db = ctx.services.db
    where, args = scope_filter(ctx.scope, "b")
    filters = [where]
    for column, value in (("student_id", student_id), ("term_id", term_id), ("class_id", class_id)):
        if value is not None:
            filters.append(f"b.{column} = {{}}")
            args.append(value)
    async with db.scoped(ctx.scope, write=False):
        staff, family = await _access(ctx)
        rows = await db.fetch(BULLETIN_SQL + " AND ".join(filters) + " ORDER BY b.id DESC LIMIT 2000", *args)
    return [_out(ctx, row) for row in rows if _may_read(staff, family, row)]


@get("/api/v1/grades/bulletins/{bulletin_id:int}", opt={"permission": "grades.view"}, tags=["grades"], media_type=PDF)
async def download_bulletin(ctx: Ctx, bulletin_id: FromPath[int]) -> Response[bytes]:
    """The bulletin PDF: for the school's staff, the pupil and the pupil's guardians; 404 for anyone else."""
    if ctx.person_id is None:
        raise NotFoundException("No such bulletin.")
    svc = ctx.services
    where, args = scope_filter(ctx.scope, "b")
    async with svc.db.scoped(ctx.scope, write=False):
        row = await svc.db.fetchrow(BULLETIN_SQL + f"b.id = {{}} AND {where}", bulletin_id, *args)
        allowed = row is not None and _may_read(*(await _access(ctx)), row)
    if row is None or not allowed:
        raise NotFoundException("No such bulletin.")
    try:
        data = await svc.storage.get(row["storage_key"], tenant_id=row["school_id"])
    except ObjectNotFound:
        raise NotFoundException("This bulletin's file is missing; generate it again.") from None
    filename = row["storage_key"].rsplit("/", 1)[-1]
    return Response(
        data,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


BULLETIN_ROUTES = [generate_bulletins, list_bulletins, download_bulletin]
