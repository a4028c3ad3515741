"""The homework module: homework, submissions, completion, programme progress."""

from __future__ import annotations

from typing import Any

from core.context import RequestContext
from core.hookspecs import hookimpl
from core.permissions import Permission
from core.plugin_kit import module_home
from core.plugins import MenuItem, PluginInfo


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Homework: off by default, switched on by programmes and schools."""
    return PluginInfo(
        name="homework",
        label="Homework",
        version="0.1.0",
        default_enabled=False,
        description="Homework, submissions, completion and the lesson log",
    )


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """Who sets and follows homework."""
    return [
        Permission(
            "homework.view",
            "See homework and completion",
            frozenset({"teacher", "school_director", "parent", "student", "programme_manager"}),
        ),
        Permission("homework.set", "Set homework and log lessons", frozenset({"teacher"})),
    ]


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """Homework."""
    return [MenuItem(label="Homework", url="/homework/", icon="book", order=30)]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The module's landing page."""
    return [
        module_home("homework", "Homework", "homework.view", ["Homework", "Submissions", "Completion", "Lesson log"])
    ]
