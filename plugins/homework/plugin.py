"""The homework module — not written yet: today it is only a landing page that says so.

Homework, submissions, completion and the lesson log are planned. Until they exist the module is off by
default and is not to be switched on in the demo, so no school is offered a feature that is not there.
"""

from __future__ import annotations

from typing import Any

from core.plugin_api import MenuItem, Permission, PluginInfo, RequestContext, hookimpl, module_home


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Homework: off by default while it is only a landing page."""
    return PluginInfo(
        name="homework",
        label="Homework",
        version="0.1.0",
        default_enabled=False,
        description="Not available yet: only a landing page listing the planned features (homework, submissions, "
        "completion, lesson log)",
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
