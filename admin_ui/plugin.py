"""The ``admin_ui`` built-in plugin (always on): administration pages for the people who run tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.context import RequestContext
from core.hookspecs import hookimpl
from core.plugins import MenuItem, PluginInfo

ADMINS = frozenset({"platform_admin", "region_admin", "province_admin", "programme_manager"})


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """The administration UI cannot be switched off."""
    return PluginInfo(
        name="admin_ui",
        label="Administration",
        version="0.1.0",
        toggleable=False,
        description="Administration pages for platform, region and programme managers",
    )


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """The administration console for administrators."""
    return [
        MenuItem(label="Administration", url="/admin/", order=90, roles=ADMINS),
        # on the landing page: a programme manager has no portal of a tenant, only the console
        MenuItem(label="Administration", url="/admin/", order=90, roles=ADMINS, kinds=frozenset({"landing"})),
    ]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The administration pages."""
    from admin_ui.console_pages import ROUTES as CONSOLE
    from admin_ui.exchange_pages import ROUTES as EXCHANGE
    from admin_ui.onboarding_pages import ROUTES as ONBOARDING

    return [*CONSOLE, *ONBOARDING, *EXCHANGE]


@hookimpl
def madrasa_template_dirs() -> list[Path]:
    """The administration templates (``admin/…``)."""
    return [Path(__file__).parent / "templates"]
