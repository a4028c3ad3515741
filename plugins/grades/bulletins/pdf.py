"""Rendering a bulletin to PDF (fpdf2), in Arabic (right to left, columns mirrored) or French.

Pure: no database, no I/O besides reading the fonts once (:mod:`plugins.grades.bulletins.fonts`).
"""

from __future__ import annotations

import io
import logging
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from plugins.grades.bulletins import fonts
from plugins.grades.bulletins.fonts import FAMILY
from plugins.grades.bulletins.model import (
    LOCALES,
    TERMS,
    TEXT,
    BulletinData,
    Locale,
    _has_latin_letters,
    _needs_shaping,
    _rgb,
    _tint,
    appreciation,
    fmt_average,
    fmt_coefficient,
    fmt_date,
    fmt_mark,
)

log = logging.getLogger("madrasa.grades.bulletins")

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
        fonts.FONTS.install(pdf)
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
        fonts.FONTS.forget_glyph_caches()


def render_pair(data: BulletinData, locales: Sequence[Locale] = LOCALES) -> dict[Locale, bytes]:
    """A pupil's bulletin in several languages (one thread hop for all of them)."""
    return {locale: render_bulletin(data, locale) for locale in locales}
