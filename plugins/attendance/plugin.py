"""The attendance module: absences, lateness, justifications, alerts."""

from __future__ import annotations

from typing import Any

from core.context import RequestContext
from core.hookspecs import hookimpl
from core.permissions import Permission
from core.plugin_kit import module_home
from core.plugins import MenuItem, PluginInfo


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Attendance: on by default."""
    return PluginInfo(
        name="attendance",
        label="Attendance",
        version="0.1.0",
        description="Absences and lateness per session, justifications, alerts and statistics",
    )


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """Who takes attendance, justifies and reviews."""
    return [
        Permission(
            "attendance.view",
            "See absences and statistics",
            frozenset(
                {
                    "teacher",
                    "school_director",
                    "parent",
                    "student",
                    "region_admin",
                    "province_admin",
                    "programme_manager",
                    "platform_admin",
                }
            ),
        ),
        Permission("attendance.take", "Mark pupils absent or late", frozenset({"teacher"})),
        Permission("attendance.justify", "Justify a child's absence", frozenset({"parent"})),
        Permission("attendance.review", "Accept or reject justifications", frozenset({"school_director"})),
    ]


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """Absences."""
    return [MenuItem(label="Attendance", url="/attendance/", icon="calendar-check", order=20)]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The module's landing page."""
    return [
        module_home(
            "attendance",
            "Attendance",
            "attendance.view",
            ["Taking attendance", "Justifications", "Alerts", "Statistics"],
        )
    ]
