"""Rendering portal pages: the Jinja2 environment's globals and the page helper."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar import MediaType
from litestar.response import Template

from core.context import RequestContext
from core.i18n import LOCALES, gettext_in, locale_var, text_direction


@pass_context
def translate(context: Context, message: str, **values: Any) -> str:
    """Templates' ``_``: into the page's own language (its ``locale``), else the request's.

    The page's language is known when the template is rendered, which for an error page is after the request's
    middleware has finished, so the context variable alone would fall back to French."""
    return gettext_in(context.get("locale") or locale_var.get(), message, **values)


def configure_templates(engine: Any) -> None:
    """Jinja2 globals shared by every template (translation and text direction)."""
    env: Environment = engine.engine
    env.globals["_"] = translate
    env.globals["text_direction"] = text_direction
    env.globals["LOCALES"] = LOCALES
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
