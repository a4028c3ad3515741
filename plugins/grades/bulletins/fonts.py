"""The bulletin font: Noto Sans merged with Noto Naskh Arabic, cut to what a bulletin needs, prepared once.

Fonts are looked for in ``Settings.font_dir`` (``MADRASA_FONT_DIR``) then Debian's folders; the
prepared files are cached in ``Settings.font_cache`` (``MADRASA_FONT_CACHE``), else the user's
cache folder. :meth:`FontBook.configure` takes both from the settings (the job does it before
rendering); without it only the defaults apply.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("madrasa.grades.bulletins")

FONT_PACKAGE = "fonts-noto-core"
#: Source fonts by style: the Latin face first (its digits and punctuation win), then the Arabic.
FONT_FILES: dict[str, tuple[str, str]] = {
    "": ("NotoSans-Regular.ttf", "NotoNaskhArabic-Regular.ttf"),
    "B": ("NotoSans-Bold.ttf", "NotoNaskhArabic-Bold.ttf"),
}
#: The family name documents use for the merged bulletin font.
FAMILY = "bulletin"
#: Where fonts are looked for after ``Settings.font_dir`` (``MADRASA_FONT_DIR``): Debian's folders.
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


def font_dirs(font_dir: Path | None = None) -> list[Path]:
    """Folders searched for fonts, in order: ``font_dir`` (the setting), then :data:`FONT_DIRS`."""
    return ([font_dir] if font_dir else []) + list(FONT_DIRS)


def find_font(filename: str, font_dir: Path | None = None) -> Path:
    """The path of an installed font file; :class:`FontsMissing` names the Debian package otherwise."""
    dirs = font_dirs(font_dir)
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


def check_fonts(font_dir: Path | None = None) -> None:
    """Fail early (start-up, readiness) when the bulletin fonts are missing."""
    for names in FONT_FILES.values():
        for name in names:
            find_font(name, font_dir)


def _cache_dir(configured: Path | None = None) -> Path | None:
    """A private folder for prepared fonts (``Settings.font_cache``, else the user's cache folder)."""
    if configured:
        return configured
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


def _prepared_bytes(style: str, latin: Path, arabic: Path, cache: Path | None = None) -> tuple[bytes, bytes]:
    """The two font files of a style, from the cache folder when a previous process made them."""
    import hashlib

    import fontTools

    key = hashlib.sha256(
        repr(
            (_RECIPE, fontTools.version, [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (latin, arabic)])
        ).encode()
    ).hexdigest()[:16]
    folder = _cache_dir(cache)
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

    def __init__(self, font_dir: Path | None = None, font_cache: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._fonts: dict[str, _PreparedFont] | None = None
        self._fast = True
        self.font_dir = font_dir
        self.font_cache = font_cache

    def configure(self, font_dir: Path | None, font_cache: Path | None) -> None:
        """Where fonts are found and prepared ones kept (``Settings.font_dir``/``font_cache``)."""
        with self._lock:
            if (font_dir, font_cache) != (self.font_dir, self.font_cache):
                self.font_dir, self.font_cache = font_dir, font_cache
                self._fonts = None  # prepared again from the new place on next use

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

        # Subsetting logs every table and glyph step at INFO: thousands of lines per preparation.
        logging.getLogger("fontTools").setLevel(logging.WARNING)
        prepared: dict[str, _PreparedFont] = {}
        scratch = FPDF()
        for style, (latin_name, arabic_name) in FONT_FILES.items():
            shaping, embedding = _prepared_bytes(
                style,
                find_font(latin_name, self.font_dir),
                find_font(arabic_name, self.font_dir),
                self.font_cache,
            )
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
