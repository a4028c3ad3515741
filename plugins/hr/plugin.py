"""The HR module — not written yet: today it is only a landing page that says so.

Staff records, the administrative situation, payslips, transfers and the duty roster are planned. Until they
exist the module is off by default, so no school is offered a feature that is not there.
"""

from __future__ import annotations

from typing import Any

from core.plugin_api import MenuItem, Permission, PluginInfo, RequestContext, hookimpl, module_home

STAFF = frozenset({"teacher", "school_director"})


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """HR: off by default while it is only a landing page."""
    return PluginInfo(
        name="hr",
        label="Staff",
        version="0.1.0",
        default_enabled=False,
        description="Not available yet: only a landing page listing the planned features (staff records, "
        "administrative situation, payslips, transfers, duty roster)",
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
