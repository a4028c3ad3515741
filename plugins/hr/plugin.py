"""The HR module: staff records, situations, payslips, transfers, duty roster."""

from __future__ import annotations

from typing import Any

from core.context import RequestContext
from core.hookspecs import hookimpl
from core.permissions import Permission
from core.plugin_kit import module_home
from core.plugins import MenuItem, PluginInfo

STAFF = frozenset({"teacher", "school_director"})


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """HR: on by default."""
    return PluginInfo(
        name="hr",
        label="Staff",
        version="0.1.0",
        description="Staff records, administrative situation, payslips, transfers, duty roster",
    )


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """Staff see their own records; administrators manage them."""
    return [
        Permission("hr.self", "See one's own situation and payslips", STAFF),
        Permission(
            "hr.manage",
            "Manage staff records and transfers",
            frozenset({"region_admin", "province_admin", "platform_admin"}),
        ),
    ]


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """My situation, for staff only."""
    return [MenuItem(label="My situation", url="/hr/", icon="id-card", order=40, roles=STAFF)]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The module's landing page."""
    return [
        module_home(
            "hr", "Staff", "hr.self", ["Administrative situation", "Payslips", "Transfer requests", "Duty roster"]
        )
    ]
