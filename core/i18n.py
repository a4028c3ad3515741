"""Translations: Babel catalogues (``core/locale/<lang>/LC_MESSAGES/*.po``), no build step.

A plugin keeps its own catalogues in ``<plugin package>/locale/<lang>/LC_MESSAGES/*.po``; every
``.po`` file there is merged (a plugin may keep one per feature). Core's catalogue wins on a clash.

Catalogues are compiled in memory at start-up from their ``.po`` files; the request's language
lives in a context variable set by the access middleware, so templates call ``_("…")``.
"""

from __future__ import annotations

import gettext
import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("ar", "fr", "en")
RTL = frozenset({"ar"})
LOCALE_DIR = Path(__file__).parent / "locale"

locale_var: ContextVar[str] = ContextVar("madrasa_locale", default="fr")
_catalogue_dirs: tuple[Path, ...] = ()


def register_catalogue_dirs(dirs: list[Path]) -> None:
    """Add plugins' ``locale`` folders to every language's catalogue (called when the app is built)."""
    global _catalogue_dirs
    merged = tuple(dict.fromkeys((*_catalogue_dirs, *dirs)))
    if merged != _catalogue_dirs:
        _catalogue_dirs = merged
        translations.cache_clear()


@cache
def translations(locale: str, extra_dirs: tuple[Path, ...] = ()) -> gettext.NullTranslations:
    """The merged catalogue of core and ``extra_dirs`` for a language."""
    result: gettext.NullTranslations = gettext.NullTranslations()
    for folder in (LOCALE_DIR, *extra_dirs):
        for po in sorted((folder / locale / "LC_MESSAGES").glob("*.po")):
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            loaded = gettext.GNUTranslations(buffer)
            if isinstance(result, gettext.GNUTranslations):
                result.add_fallback(loaded)
            else:
                result = loaded
    return result


def gettext_(message: str, **values: object) -> str:
    """Translate ``message`` into the current request's language, then format ``values`` in."""
    text = translations(locale_var.get(), _catalogue_dirs).gettext(message)
    return text.format(**values) if values else text


def text_direction(locale: str) -> str:
    """``rtl`` for Arabic, else ``ltr``."""
    return "rtl" if locale in RTL else "ltr"


#: Babel locales for numbers: Moroccan French (``12,5``, ``1 234``); Arabic and English with Latin digits.
NUMBER_LOCALES = {"ar": "ar", "fr": "fr_MA", "en": "en"}


def format_number(value: float | int | None, places: int | None = None) -> str:
    """A number in the current request's language (``""`` for none); ``places`` fixes the decimals."""
    from babel.numbers import format_decimal

    if value is None:
        return ""
    pattern = None if places is None else "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(value, format=pattern, locale=NUMBER_LOCALES.get(locale_var.get(), "fr_MA"))


def format_percent(ratio: float | int | None, places: int = 1) -> str:
    """A ratio (0.123) as a percentage in the current request's language (``12,3 %``), at most ``places`` decimals."""
    from babel.numbers import format_percent as babel_percent

    if ratio is None:
        return ""
    locale = NUMBER_LOCALES.get(locale_var.get(), "fr_MA")
    return babel_percent(round(float(ratio), places + 2), locale=locale, decimal_quantization=False)
