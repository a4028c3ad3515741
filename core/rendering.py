"""Rendering portal pages: the Jinja2 environment's globals and the page helper."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from litestar import MediaType
from litestar.response import Template

from core.context import RequestContext
from core.i18n import LOCALES, format_number, format_percent, gettext_, text_direction


def configure_templates(engine: Any) -> None:
    """Jinja2 globals shared by every template (translation, text direction, numbers in the page's language)."""
    env: Environment = engine.engine
    env.globals["_"] = gettext_
    env.globals["text_direction"] = text_direction
    env.globals["LOCALES"] = LOCALES
    env.filters["number"] = format_number
    env.filters["percent"] = format_percent
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
