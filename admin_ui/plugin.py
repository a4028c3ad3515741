"""The ``admin_ui`` built-in plugin (always on); its pages arrive with tenant onboarding."""

from __future__ import annotations

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
    """A link to the API documentation for administrators until the admin pages exist."""
    return [MenuItem(label="API documentation", url="/schema/swagger", order=90, roles=ADMINS)]
