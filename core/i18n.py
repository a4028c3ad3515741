"""Translations: Babel catalogues (``core/locale/<lang>/LC_MESSAGES/messages.po``), no build step.

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


@cache
def translations(locale: str, extra_dirs: tuple[Path, ...] = ()) -> gettext.NullTranslations:
    """The merged catalogue of core and ``extra_dirs`` for a language."""
    result: gettext.NullTranslations = gettext.NullTranslations()
    for folder in (LOCALE_DIR, *extra_dirs):
        po = folder / locale / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            continue
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
    text = translations(locale_var.get()).gettext(message)
    return text.format(**values) if values else text


def text_direction(locale: str) -> str:
    """``rtl`` for Arabic, else ``ltr``."""
    return "rtl" if locale in RTL else "ltr"
