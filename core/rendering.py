"""Rendering portal pages: the Jinja2 environment's globals and the page helper."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar import MediaType
from litestar.response import Template

from core.context import RequestContext
from core.i18n import LOCALES, format_day, format_number, format_percent, gettext_in, locale_var, text_direction


@pass_context
def translate(context: Context, message: str, **values: Any) -> str:
    """Templates' ``_``: into the page's own language (its ``locale``), else the request's.

    The page's language is known when the template is rendered, which for an error page is after the request's
    middleware has finished, so the context variable alone would fall back to French."""
    return gettext_in(context.get("locale") or locale_var.get(), message, **values)


def _page_locale(context: Context) -> str:
    return context.get("locale") or locale_var.get()


@pass_context
def number_filter(context: Context, value: Any, places: int | None = None) -> str:
    """``{{ x | number }}`` / ``{{ x | number(1) }}``: a number in the page's language (``2,0`` in French)."""
    return format_number(value, _page_locale(context), places)


@pass_context
def percent_filter(context: Context, value: Any, places: int = 1) -> str:
    """``{{ share | percent }}``: a share (0–1) as a percentage in the page's language (``12,5 %``)."""
    return format_percent(value, _page_locale(context), places)


@pass_context
def day_filter(context: Context, value: Any) -> str:
    """``{{ day | day }}``: a date in the page's language (``07/12/2026``)."""
    return format_day(value, _page_locale(context))


def configure_templates(engine: Any) -> None:
    """Jinja2 globals shared by every template (translation, text direction, numbers in the page's language)."""
    env: Environment = engine.engine
    env.globals["_"] = translate
    env.globals["text_direction"] = text_direction
    env.globals["LOCALES"] = LOCALES
    env.filters["number"] = number_filter
    env.filters["percent"] = percent_filter
    env.filters["day"] = day_filter
    env.autoescape = True


def page(ctx: RequestContext, template: str, status: int = 200, **context: Any) -> Template:
    """Render a portal page with the context every page needs."""
    return Template(
        template_name=template,
        context={"ctx": ctx, "tenant": ctx.tenant, "locale": ctx.locale, **context},
        status_code=status,
        media_type=MediaType.HTML,
    )


class Row(dict):  # type: ignore[type-arg]
    """A dict whose keys read as attributes: Jinja's ``row.x`` then costs a lookup, not a caught exception."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
