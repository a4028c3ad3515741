"""The ``tenants`` built-in plugin: tenant management routes (always on)."""

from __future__ import annotations

from typing import Any

from core.hookspecs import hookimpl
from core.plugins import PluginInfo


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Tenant management cannot be switched off."""
    return PluginInfo(
        name="tenants",
        label="Tenants",
        description="Tenant tree, programmes, modules, people",
        version="0.1.0",
        toggleable=False,
    )


@hookimpl
def madrasa_routes() -> list[Any]:
    """The tenant-management API."""
    from tenants.controllers import ROUTES

    return list(ROUTES)
