"""An example third-party plugin, using only ``core.plugin_api``.

It shows every part of the plugin surface: a table of its own with a frozen migration, routes
behind a permission, a page, a menu entry and a card, an event it emits and one it handles, a job,
an SMS backend, a hookspec of its own for other plugins, a command and demo data. The pages
``docs/plugin_api.md`` and ``docs/plugin_hooks.md`` quote it; a test checks the quotes.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
from pathlib import Path
from typing import Any

import msgspec
from litestar import get, post
from litestar.response import Template

from core.plugin_api import (
    SQL,
    SYSTEM_CLOCK,
    Backend,
    Ctx,
    DashboardCard,
    Database,
    Event,
    Invalid,
    JobContext,
    LessonLink,
    LessonOfWeek,
    MenuItem,
    MigrationSet,
    NotificationKind,
    Permission,
    PluginInfo,
    Scope,
    Sms,
    audit,
    csv_cell,
    hookimpl,
    page,
    queue_of,
    school,
)
from madrasa_example import hookspecs
from madrasa_example.tables import EXAMPLE_TABLES

log = logging.getLogger("madrasa_example")
HERE = Path(__file__).parent

#: Events received, for the tests to inspect.
RECEIVED: list[Event] = []


@hookimpl
def madrasa_plugin_info() -> PluginInfo:
    """The example module, on by default."""
    return PluginInfo(name="example", label="Example", version="0.2.0", description="Example third-party plugin")


@hookimpl
def madrasa_addhooks(pluginmanager: Any) -> None:
    """Declare ``madrasa_example_greetings`` for other plugins to implement."""
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def madrasa_permissions() -> list[Permission]:
    """Reading is for school staff; writing notes for directors."""
    return [
        Permission("example.view", "See the example", frozenset({"teacher", "school_director"})),
        Permission("example.write", "Write example notes", frozenset({"school_director"})),
    ]


@hookimpl
def madrasa_tables() -> list[Any]:
    """The plugin's own table."""
    return EXAMPLE_TABLES


@hookimpl
def madrasa_migrations() -> MigrationSet:
    """Migrations in ``madrasa_example/migrations``."""
    return MigrationSet(app="example", package="madrasa_example.migrations")


@get("/api/v1/example/hello", opt={"permission": "example.view"})
async def hello(ctx: Ctx) -> dict[str, Any]:
    """Say hello from the school, with greetings other plugins add through our own hook."""
    tenant = school.require_school(ctx)
    extra = await ctx.services.plugins.collect("madrasa_example_greetings", ctx.disabled_modules, school_id=tenant.id)
    return {"hello": tenant.slug, "greetings": extra}


class NoteIn(msgspec.Struct):
    """A note to leave."""

    body: str


@post("/api/v1/example/notes", opt={"permission": "example.write"}, status_code=201)
async def add_note(ctx: Ctx, data: NoteIn) -> dict[str, Any]:
    """Write a note (audited), then tell listeners after the commit."""
    tenant = school.require_school(ctx)
    body = data.body.strip()
    if not body:
        raise Invalid("body", "A note needs some text.")
    db = ctx.services.db
    async with db.scoped(ctx.scope):
        note_id = await db.fetchval(
            SQL(
                "INSERT INTO example_note (region_id, province_id, school_id, author_id, body, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}) RETURNING id",
                tenant.region_id,
                tenant.province_id,
                tenant.id,
                ctx.person_id,
                body,
                ctx.services.clock.utcnow(),
            )
        )
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="example.note_added",
            object_type="example_note",
            object_id=note_id,
            tenant=tenant,
            after={"body": body},
        )
    await ctx.services.emit([Event(name="example.note_added", tenant_id=tenant.id, actor_id=ctx.person_id)])
    return {"id": note_id}


async def school_notes(ctx: Ctx) -> list[dict[str, Any]]:
    """The school's notes, newest first."""
    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        return await db.fetch(
            "SELECT id, body, created_at FROM example_note WHERE school_id = {} ORDER BY id DESC", tenant.id
        )


@get("/example/notes", opt={"permission": "example.view"}, include_in_schema=False)
async def notes_page(ctx: Ctx) -> Template:
    """The notes as a portal page."""
    return page(ctx, "example/notes.html", notes=await school_notes(ctx))


@post("/api/v1/example/count", opt={"permission": "example.write"}, status_code=202)
async def start_count(ctx: Ctx) -> dict[str, str]:
    """Count the school's notes in a background job."""
    tenant = school.require_school(ctx)
    job_id = await queue_of(ctx.services).enqueue(
        "example.count_notes", {}, scope_columns=tenant.scope_columns(), created_by=ctx.person_id
    )
    return {"job": job_id}


async def count_notes(job: JobContext) -> dict[str, int]:
    """The ``example.count_notes`` job: count the notes of the job's school."""
    await job.progress(0, 1, "counting")
    async with job.db.scoped(job.scope, write=False):
        count = await job.db.fetchval(
            "SELECT COUNT(*) FROM example_note WHERE school_id = {}", job.scope_columns["school_id"]
        )
    return {"notes": int(count or 0)}


@hookimpl
def madrasa_jobs() -> dict[str, Any]:
    """Jobs run by name: queued with ``queue_of(services).enqueue("example.count_notes", …)``."""
    return {"example.count_notes": count_notes}


class OutboxSms:
    """An SMS backend that keeps messages in memory: ``MADRASA_SMS_BACKEND=example-outbox``."""

    def __init__(self) -> None:
        self.outbox: list[Sms] = []

    async def send(self, sms: Sms) -> None:
        """Keep the message."""
        self.outbox.append(sms)


@hookimpl
def madrasa_backends() -> list[Backend]:
    """An SMS gateway, chosen by name in the settings."""
    return [Backend(kind="sms", name="example-outbox", factory=lambda settings: OutboxSms())]


@hookimpl
def madrasa_notification_kinds() -> list[NotificationKind]:
    """One kind of notification: a note was added (in the inbox, by e-mail; SMS where the school allows it)."""
    return [
        NotificationKind(
            name="example.note",
            label="A note was added",
            channels=frozenset({"email"}),
            sms_eligible=True,
            mandatory_allowed=True,
        )
    ]


@hookimpl
def madrasa_routes() -> list[Any]:
    """API and portal routes."""
    return [hello, add_note, notes_page, start_count, notes_csv]


@hookimpl
def madrasa_template_dirs() -> list[Path]:
    """Templates under ``madrasa_example/templates/example/``."""
    return [HERE / "templates"]


@hookimpl
def madrasa_static_dirs() -> list[tuple[str, Path]]:
    """``/static/example/example.css``."""
    return [("example", HERE / "static")]


@hookimpl
async def madrasa_demo_data(db: Database, tenants: dict[str, int]) -> None:
    """One note in the demo's first lycée."""
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO example_note (region_id, province_id, school_id, author_id, body, created_at) "
            "VALUES ({}, {}, {}, 0, {}, {})",
            tenants["casablanca-settat"],
            tenants["casablanca-anfa"],
            tenants["lycee-ibn-batouta"],
            "Bienvenue dans l'exemple",
            SYSTEM_CLOCK.utcnow(),
        )


@hookimpl
def madrasa_exports(ctx: Ctx) -> list[dict[str, str]]:
    """The notes as CSV, for school staff."""
    if not ctx.roles & {"teacher", "school_director"}:
        return []
    return [{"name": "example.notes_csv", "label": "Notes (CSV)", "url": "/api/v1/example/notes.csv"}]


@get(
    "/api/v1/example/notes.csv",
    opt={"permission": "example.view", "bulk_export": "example.notes"},
    media_type="text/csv",
)
async def notes_csv(ctx: Ctx) -> str:
    """The school's notes as CSV (cells neutralised against formula injection)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "body"])
    writer.writerows([n["id"], csv_cell(n["body"])] for n in await school_notes(ctx))
    return out.getvalue()


@hookimpl
async def madrasa_child_overview(ctx: Ctx, child_id: int) -> list[dict[str, Any]]:
    """A section for a guardian's overview of a child: a link to the child's school notes."""
    return [{"title": "Example", "value": "", "url": "/example/notes"}]


@hookimpl
def madrasa_lesson_links(ctx: Ctx, lessons: list[LessonOfWeek]) -> list[LessonLink]:
    """A link to the school's notes on each of the teacher's own lessons."""
    return [
        LessonLink(slot_id=lesson.slot_id, label="Notes", url=f"/t/{lesson.school_slug}/example/notes")
        for lesson in lessons
        if lesson.teacher_id == ctx.person_id
    ]


@hookimpl
def madrasa_menu_items(ctx: Ctx) -> list[MenuItem]:
    """A menu entry for school staff."""
    return [MenuItem(label="Example", url="/example/notes", order=99, roles=frozenset({"teacher", "school_director"}))]


@hookimpl
async def madrasa_dashboard_cards(ctx: Ctx) -> list[DashboardCard]:
    """An awaitable contribution, to show the host awaits hook results."""
    return [DashboardCard(title="Example card", body=f"for {ctx.tenant.slug if ctx.tenant else '-'}")]


@hookimpl
def madrasa_handle_event(event: Event) -> None:
    """Record events."""
    RECEIVED.append(event)


@hookimpl
def madrasa_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """``madrasa example-hello``."""
    parser = subparsers.add_parser("example-hello", help="print a greeting")
    parser.set_defaults(func=lambda args: print("hello from the example plugin") or 0)
