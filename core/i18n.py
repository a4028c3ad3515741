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
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.numbers import format_percent as babel_format_percent

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
    return gettext_in(locale_var.get(), message, **values)


def gettext_in(locale: str, message: str, **values: object) -> str:
    """Translate ``message`` into ``locale``, then format ``values`` in (left as is if they do not fit)."""
    text = translations(locale if locale in LOCALES else "fr", _catalogue_dirs).gettext(message)
    if not values:
        return text
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):
        return message.format(**values)


def text_direction(locale: str) -> str:
    """``rtl`` for Arabic, else ``ltr``."""
    return "rtl" if locale in RTL else "ltr"


#: The Babel locale each language's numbers and dates follow (Morocco's conventions for Arabic and French).
BABEL_LOCALES = {"ar": "ar_MA", "fr": "fr_MA", "en": "en"}


def format_number(value: object, locale: str, places: int | None = None) -> str:
    """A number as the reader writes it (``12,5`` in French and Arabic, ``12.5`` in English); ``""`` for none.

    Without ``places``: at most two decimals, trailing zeros dropped (``20``, ``12,5``); with it, exactly that many.
    """
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    pattern = "#,##0.##" if places is None else "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(number, format=pattern, locale=BABEL_LOCALES.get(locale, "fr_MA"))


def format_percent(value: object, locale: str, places: int = 1) -> str:
    """A share (``0.125``) as a percentage in the reader's convention (``12,5 %`` in French); ``""`` for none."""
    if value is None or value == "":
        return ""
    babel_locale = Locale.parse(BABEL_LOCALES.get(locale, "fr_MA"))
    pattern = babel_locale.percent_formats[None].pattern
    if places:
        head, _, tail = pattern.rpartition("0")
        pattern = f"{head}0.{'0' * places}{tail}"
    return babel_format_percent(Decimal(str(value)), format=pattern, locale=babel_locale)


def format_day(value: date | None, locale: str) -> str:
    """A calendar day as the reader writes it (``07/12/2026``); ``""`` for none."""
    if value is None:
        return ""
    return babel_format_date(value, "dd/MM/y", locale=BABEL_LOCALES.get(locale, "fr_MA"))
