"""The bulletins API: ask for a class's or school's bulletins (202 with the job), list and download them.

Staff of the school, the pupil and the pupil's guardians may read a bulletin; 404 for anyone else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.plugin_api import (
    PDF,
    SQL,
    Ctx,
    Invalid,
    NotFound,
    ObjectNotFound,
    Scope,
    audit,
    covers_row,
    ident,
    queue_of,
    school,
    scope_for,
    scope_sql,
)
from plugins.grades.bulletins.jobs import BULLETIN_JOB

FAMILY_ROLES = frozenset({"parent", "student"})

# =========================================================================== API


class BulletinRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which bulletins to generate: a class, or the whole school when ``class_id`` is null."""

    term_id: int
    class_id: int | None = None


class JobAccepted(msgspec.Struct):
    """A background job was queued; follow it at ``url``."""

    job_id: str
    url: str


class BulletinOut(msgspec.Struct):
    """A generated bulletin."""

    id: int
    student_id: int
    class_id: int
    term_id: int
    locale: str
    created_at: datetime | None
    url: str


@post("/api/v1/grades/bulletins", opt={"permission": "grades.validate"}, status_code=202, tags=["grades"])
async def generate_bulletins(ctx: Ctx, data: JSONBody[BulletinRequest]) -> JobAccepted:
    """Generate the bulletins of a class (or of the whole school) in the background."""
    tenant = school.require_school(ctx)
    svc = ctx.services
    db = svc.db
    async with db.scoped(ctx.scope, write=False):
        term = await db.fetchval(
            "SELECT id FROM term WHERE id = {} AND (tenant_id IS NULL OR tenant_id = {})",
            data.term_id,
            tenant.region_id,
        )
        if term is None:
            raise Invalid("term_id", f"no term {data.term_id} for this school")
        if data.class_id is not None:
            found = await db.fetchval(
                "SELECT id FROM school_class WHERE id = {} AND school_id = {} AND {}",
                data.class_id,
                tenant.id,
                scope_sql(ctx.scope),
            )
            if found is None:
                raise NotFound(f"No class {data.class_id} here.")
    params = {"school_id": tenant.id, "term_id": data.term_id, "class_id": data.class_id}
    # A queue that refuses the job raises JobQueueError: a 503 with Retry-After (core.problems).
    job_id = await queue_of(svc).enqueue(
        BULLETIN_JOB, params, scope_columns=tenant.scope_columns(), created_by=ctx.person_id
    )
    async with db.scoped(ctx.scope):
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="grades.bulletins.generate",
            object_type="job",
            object_id=job_id,
            tenant=tenant,
            after=params,
        )
    return JobAccepted(job_id, ctx.url(f"/api/v1/jobs/{job_id}"))


async def _access(ctx: Any) -> tuple[Scope, set[int]]:
    """The scope where the caller sees every bulletin (staff), and the pupils they see as family."""
    svc = ctx.services
    assert ctx.person_id is not None
    grants = await svc.grants.grants(ctx.person_id)
    staff = scope_for(grants, svc.permissions.roles_for(ctx.permission) - FAMILY_ROLES, ctx.tenant)
    rows = await svc.db.fetch(
        "SELECT s.id FROM student s WHERE (s.person_id = {} OR EXISTS (SELECT 1 FROM guardianship g "
        "WHERE g.student_id = s.id AND g.person_id = {})) AND {}",
        ctx.person_id,
        ctx.person_id,
        scope_sql(ctx.scope, "s"),
    )
    return staff, {int(r["id"]) for r in rows}


def _may_read(staff: Scope, family: set[int], row: dict[str, Any]) -> bool:
    return covers_row(staff, row) or row["student_id"] in family


BULLETIN_COLUMNS = SQL(
    "b.id, b.student_id, b.class_id, b.term_id, b.locale, b.storage_key, b.created_at, b.region_id, "
    "b.province_id, b.school_id"
)


def _out(ctx: Any, row: dict[str, Any]) -> BulletinOut:
    return BulletinOut(
        row["id"],
        row["student_id"],
        row["class_id"],
        row["term_id"],
        row["locale"],
        row["created_at"],
        ctx.url(f"/api/v1/grades/bulletins/{row['id']}"),
    )


@get("/api/v1/grades/bulletins", opt={"permission": "grades.view"}, tags=["grades"])
async def list_bulletins(
    ctx: Ctx,
    student_id: FromQuery[int | None] = None,
    term_id: FromQuery[int | None] = None,
    class_id: FromQuery[int | None] = None,
) -> list[BulletinOut]:
    """Bulletins the caller may read: a school's for its staff, their own or their children's for families."""
    if ctx.person_id is None:
        return []
    db = ctx.services.db
    where = scope_sql(ctx.scope, "b")
    for column, value in (("student_id", student_id), ("term_id", term_id), ("class_id", class_id)):
        if value is not None:
            where = where & SQL("{} = {}", ident("b", column), value)
    async with db.scoped(ctx.scope, write=False):
        staff, family = await _access(ctx)
        rows = await db.fetch(
            "SELECT {} FROM grade_bulletin b WHERE {} ORDER BY b.id DESC LIMIT 2000", BULLETIN_COLUMNS, where
        )
    return [_out(ctx, row) for row in rows if _may_read(staff, family, row)]


@get("/api/v1/grades/bulletins/{bulletin_id:int}", opt={"permission": "grades.view"}, tags=["grades"], media_type=PDF)
async def download_bulletin(ctx: Ctx, bulletin_id: FromPath[int]) -> Response[bytes]:
    """The bulletin PDF: for the school's staff, the pupil and the pupil's guardians; 404 for anyone else."""
    if ctx.person_id is None:
        raise NotFound("No such bulletin.")
    svc = ctx.services
    async with svc.db.scoped(ctx.scope, write=False):
        row = await svc.db.fetchrow(
            "SELECT {} FROM grade_bulletin b WHERE b.id = {} AND {}",
            BULLETIN_COLUMNS,
            bulletin_id,
            scope_sql(ctx.scope, "b"),
        )
        allowed = row is not None and _may_read(*(await _access(ctx)), row)
    if row is None or not allowed:
        raise NotFound("No such bulletin.")
    try:
        data = await svc.storage.get(row["storage_key"], tenant_id=row["school_id"])
    except ObjectNotFound:
        raise NotFound("This bulletin's file is missing; generate it again.") from None
    filename = row["storage_key"].rsplit("/", 1)[-1]
    return Response(
        data,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


BULLETIN_ROUTES = [generate_bulletins, list_bulletins, download_bulletin]
