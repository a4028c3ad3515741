"""The attendance module: absences, lateness, justifications, alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.plugin_api import (
    JobContext,
    LessonLink,
    LessonOfWeek,
    MenuItem,
    MigrationSet,
    NotificationKind,
    Permission,
    PluginInfo,
    RequestContext,
    every,
    hookimpl,
)

ADMINS = frozenset({"region_admin", "province_admin", "programme_manager", "platform_admin"})
#: The background job that delivers a register's family notices and alerts (``plugins.attendance.notify``).
DELIVERY_JOB = "attendance.deliver"
#: The periodic job that sends the notices whose next try is due (``plugins.attendance.retries``).
RETRY_JOB = "attendance.retry"
#: How often it runs, in seconds.
RETRY_EVERY_SECONDS = 60
#: The notification kind of an alert (sent through the notification centre).
ALERT_KIND = "attendance.alert"


async def _deliver(job: JobContext, **params: Any) -> Any:
    from plugins.attendance.notify import deliver_job

    return await deliver_job(job, **params)


@every(RETRY_EVERY_SECONDS)
async def _retry(job: JobContext) -> Any:
    from plugins.attendance.notify import retry_job

    return await retry_job(job)


@hookimpl
def madrasa_jobs() -> dict[str, Any]:
    """The notice-delivery job (queued after a register is taken) and the periodic retry of failed notices."""
    return {DELIVERY_JOB: _deliver, RETRY_JOB: _retry}


@hookimpl
def madrasa_notification_kinds() -> list[NotificationKind]:
    """An alert (a pupil's unjustified hours over the region's threshold): in the inbox and by e-mail, to the
    family, the homeroom teacher and the directors; a school or region may make it mandatory."""
    return [NotificationKind(name=ALERT_KIND, label="Attendance alerts", mandatory_allowed=True)]


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
    """Who takes attendance, justifies, reviews, configures and reads statistics."""
    return [
        Permission(
            "attendance.view",
            "See absences and statistics",
            frozenset({"teacher", "school_director", "supervisor", "parent", "student"}) | ADMINS,
        ),
        Permission(
            "attendance.take",
            "Mark pupils absent or late (teachers), correct later days (directors)",
            frozenset({"teacher", "school_director"}),
        ),
        Permission("attendance.justify", "Justify a child's absence", frozenset({"parent"})),
        Permission(
            "attendance.review",
            "Accept or reject justifications (the director or the supervisor)",
            frozenset({"school_director", "supervisor"}),
        ),
        Permission(
            "attendance.stats",
            "Attendance statistics, alerts and the at-risk list",
            frozenset({"school_director"}) | ADMINS,
        ),
        Permission(
            "attendance.configure",
            "Set a region's justification reasons and alert thresholds",
            frozenset({"region_admin", "platform_admin"}),
        ),
    ]


@hookimpl
def madrasa_tables() -> list[Any]:
    """The attendance tables."""
    from plugins.attendance.tables import ATTENDANCE_TABLES

    return list(ATTENDANCE_TABLES)


@hookimpl
def madrasa_migrations() -> MigrationSet:
    """The attendance migrations (applied after core's)."""
    return MigrationSet(app="attendance", package="plugins.attendance.migrations")


@hookimpl
def madrasa_menu_items(ctx: RequestContext) -> list[MenuItem]:
    """Absences."""
    return [
        MenuItem(label="Attendance", url="/attendance/", icon="calendar-check", order=20, permission="attendance.view")
    ]


@hookimpl
def madrasa_routes() -> list[Any]:
    """The JSON API and the portal pages."""
    from plugins.attendance.api import ATTENDANCE_API
    from plugins.attendance.notices_api import UndeliveredController
    from plugins.attendance.portal import ATTENDANCE_PORTAL
    from plugins.attendance.week import WEEK_ROUTES

    return [*ATTENDANCE_API, UndeliveredController, *ATTENDANCE_PORTAL, *WEEK_ROUTES]


@hookimpl
def madrasa_template_dirs() -> list[Path]:
    """The portal pages' templates (``attendance/…``)."""
    return [Path(__file__).parent / "templates"]


@hookimpl
def madrasa_dashboard_cards(ctx: RequestContext) -> Any:
    """Directors: the justifications waiting for review; region and province: the at-risk list."""
    from plugins.attendance.portal import dashboard_cards

    return dashboard_cards(ctx)


@hookimpl
def madrasa_child_overview(ctx: RequestContext, child_id: int) -> Any:
    """A guardian's child page: absences of the last 30 days and what is still to justify."""
    from plugins.attendance.portal import child_overview

    return child_overview(ctx, child_id)


@hookimpl
async def madrasa_lesson_links(ctx: RequestContext, lessons: list[LessonOfWeek]) -> list[LessonLink]:
    """The register of each of the teacher's own lessons of this week, up to today, in schools where attendance
    is on (the timetable leads to the register; a past day's opens read-only for the teacher)."""
    today = ctx.services.clock.today()
    links = []
    for lesson in lessons:
        if lesson.teacher_id != ctx.person_id or lesson.on_date > today:
            continue
        school = await ctx.services.tenants.by_id(lesson.school_id)
        if school is None or "attendance" in await ctx.services.disabled_for(school.path):
            continue
        url = f"/t/{lesson.school_slug}/attendance/sessions/{lesson.slot_id}/{lesson.on_date.isoformat()}"
        links.append(LessonLink(slot_id=lesson.slot_id, label="Register", url=url))
    return links


@hookimpl
def madrasa_exports(ctx: RequestContext) -> list[dict[str, str]]:
    """Attendance statistics as CSV for the tenant."""
    if ctx.tenant is None or not ctx.roles & ({"school_director"} | ADMINS):
        return []
    level = "class" if ctx.tenant.kind == "school" else "school"
    return [
        {
            "name": "attendance-stats",
            "label": "Attendance statistics (CSV)",
            "url": ctx.url(f"/api/v1/attendance/stats.csv?level={level}"),
        }
    ]


@hookimpl
def madrasa_demo_data(db: Any, tenants: dict[str, int]) -> Any:
    """A few absences in the demo teacher's lessons of the past days, so the pages show something."""
    from plugins.attendance.demo import load

    return load(db, tenants)


@hookimpl
def madrasa_personal_data(db: Any, subject: Any) -> Any:
    """A pupil's absences, justifications, notices and alerts; a person's number and submitted justifications."""
    from plugins.attendance.privacy import personal_data

    return personal_data(db, subject)


@hookimpl
def madrasa_retention_purge(db: Any, region_id: int, cutoffs: dict[str, Any]) -> Any:
    """The region's family notices past the ``notices`` period."""
    from plugins.attendance.privacy import retention_purge

    return retention_purge(db, region_id, cutoffs)


@hookimpl
def madrasa_static_dirs() -> list[tuple[str, Path]]:
    """The module's style sheet, served at ``/static/attendance/…``."""
    return [("attendance", Path(__file__).parent / "static")]
