"""The ``tenants`` built-in plugin: tenant management, onboarding, rostering exchange, archives (always on)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import tenants.onboarding  # noqa: F401  (importing registers the onboarding.commit job)
from core.hookspecs import hookimpl
from core.migrate import MigrationSet
from core.plugins import MenuItem, PluginInfo

if TYPE_CHECKING:
    import argparse

    from core.context import RequestContext


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Tenant management cannot be switched off."""
    return PluginInfo(
        name="tenants",
        label="Tenants",
        description="Tenant tree, programmes, modules, people, onboarding, OneRoster, archives",
        version="0.1.0",
        toggleable=False,
    )


@hookimpl
def madrasa_tables() -> list[Any]:
    """Onboarding batches, invitations and the other tenant-management tables."""
    from tenants.tables import TENANTS_TABLES

    return list(TENANTS_TABLES)


@hookimpl
def madrasa_migrations() -> MigrationSet:
    """The tenants plugin's migrations (applied after core's)."""
    return MigrationSet(app="tenants", package="tenants.migrations")


@hookimpl
def madrasa_routes() -> list[Any]:
    """The tenant-management, onboarding, exchange and archive APIs."""
    from tenants.archive_api import ROUTES as ARCHIVE
    from tenants.controllers import ROUTES
    from tenants.exchange_api import ROUTES as EXCHANGE
    from tenants.module_school_pages import MODULE_ROUTES
    from tenants.onboarding_api import ROUTES as ONBOARDING
    from tenants.supervisor_pages import SUPERVISOR_ROUTES

    return [*ROUTES, *ONBOARDING, *EXCHANGE, *ARCHIVE, *SUPERVISOR_ROUTES, *MODULE_ROUTES]


@hookimpl
def madrasa_template_dirs() -> list[Path]:
    """The supervisors and modules pages."""
    return [Path(__file__).parent / "templates"]


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """A school's supervisors, for those who may grant the role; its modules, for those who switch them."""
    return [
        MenuItem(
            label="Supervisors",
            url="/school/supervisors",
            order=9,
            permission="people.manage",
            kinds=frozenset({"school"}),
        ),
        MenuItem(
            label="Modules",
            url="/school/modules",
            order=95,
            permission="modules.manage",
            kinds=frozenset({"school"}),
        ),
    ]


@hookimpl
def madrasa_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """``madrasa export-tenant`` and ``madrasa import-tenant``."""
    from tenants.archive_cli import register

    register(subparsers)
