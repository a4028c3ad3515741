"""The grades module: continuous assessments, marks, averages, ranks, bulletins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.plugin_api import MenuItem, MigrationSet, Permission, PluginInfo, RequestContext, hookimpl
from plugins.grades.gradebook import madrasa_gradebook_read, madrasa_gradebook_write  # noqa: F401 (exchange hooks)

TEACHING = frozenset({"teacher", "school_director"})
FAMILY = frozenset({"parent", "student"})


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """Grades: on by default."""
    return PluginInfo(
        name="grades",
        label="Grades",
        version="0.1.0",
        description="Continuous assessments, mark entry, averages, ranks and bulletins",
    )


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """Who views, enters, validates and publishes marks."""
    return [
        Permission(
            "grades.view",
            "See marks, averages and bulletins",
            TEACHING | FAMILY | {"region_admin", "province_admin", "programme_manager", "platform_admin"},
        ),
        Permission(
            "grades.enter",
            "Schedule assessments, enter marks (teachers) and correct them (directors)",
            frozenset({"teacher", "school_director"}),
        ),
        Permission("grades.validate", "Validate, publish and correct marks", frozenset({"school_director"})),
    ]


@hookimpl
def madrasa_tables() -> list[Any]:
    """The grades tables."""
    from plugins.grades.tables import GRADES_TABLES

    return list(GRADES_TABLES)


@hookimpl
def madrasa_migrations() -> MigrationSet:
    """The grades migrations (applied after core's)."""
    return MigrationSet(app="grades", package="plugins.grades.migrations")


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """Marks for everyone in a school."""
    return [
        MenuItem(
            label="Grades",
            url="/grades/",
            icon="grade",
            order=10,
            permission="grades.view",
            kinds=frozenset({"school"}),
        )
    ]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The JSON API and the portal pages."""
    from plugins.grades.api import GRADES_ROUTES
    from plugins.grades.bulletins import BULLETIN_ROUTES
    from plugins.grades.portal import GRADES_PORTAL_ROUTES
    from plugins.grades.portal_results import RESULTS_PORTAL_ROUTES
    from plugins.grades.results_api import RESULTS_ROUTES
    from plugins.grades.spreadsheet import SPREADSHEET_ROUTES

    return [
        *BULLETIN_ROUTES,
        *GRADES_ROUTES,
        *RESULTS_ROUTES,
        *SPREADSHEET_ROUTES,
        *GRADES_PORTAL_ROUTES,
        *RESULTS_PORTAL_ROUTES,
    ]


@hookimpl
def madrasa_jobs() -> dict[str, Any]:
    """The bulletins' generation job (``grades.bulletins``)."""
    from plugins.grades.bulletins.jobs import jobs

    return jobs()


@hookimpl
def madrasa_personal_data(db: Any, subject: Any) -> Any:
    """A pupil's marks, averages, ranks and report cards."""
    from plugins.grades.privacy import personal_data

    return personal_data(db, subject)


@hookimpl
def madrasa_template_dirs() -> list[Path]:
    """The portal pages' templates (``grades/…``)."""
    return [Path(__file__).parent / "templates"]
