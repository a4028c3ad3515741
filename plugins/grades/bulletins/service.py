"""What the bulletins API and the portal pages share: asking for bulletins, reading and zipping them.

Both call these functions, so who may ask, who may read and what is audited is decided once.
Staff of the school, the pupil and the pupil's guardians may read a bulletin; 404 for anyone else.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from core.plugin_api import (
    SQL,
    Invalid,
    NotFound,
    ObjectNotFound,
    RequestContext,
    Scope,
    TenantInfo,
    audit,
    covers_row,
    ident,
    queue_of,
    scope_for,
    scope_sql,
)
from plugins.grades.bulletins.jobs import BULLETIN_JOB

FAMILY_ROLES = frozenset({"parent", "student"})
BULLETIN_COLUMNS = SQL(
    "b.id, b.student_id, b.class_id, b.term_id, b.locale, b.storage_key, b.created_at, b.region_id, "
    "b.province_id, b.school_id"
)


async def request_bulletins(ctx: RequestContext, tenant: TenantInfo, term_id: int, class_id: int | None) -> str:
    """Queue the bulletins of a class (or of the whole school when ``class_id`` is None); the job's id.

    The term must be the school's (its region's or national); a class must be of this school (404).
    """
    svc = ctx.services
    db = svc.db
    async with db.scoped(ctx.scope, write=False):
        term = await db.fetchval(
            "SELECT id FROM term WHERE id = {} AND (tenant_id IS NULL OR tenant_id = {})", term_id, tenant.region_id
        )
        if term is None:
            raise Invalid("term_id", f"no term {term_id} for this school")
        if class_id is not None:
            found = await db.fetchval(
                "SELECT id FROM school_class WHERE id = {} AND school_id = {} AND {}",
                class_id,
                tenant.id,
                scope_sql(ctx.scope),
            )
            if found is None:
                raise NotFound(f"No class {class_id} here.")
    params = {"school_id": tenant.id, "term_id": term_id, "class_id": class_id}
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
    return str(job_id)


async def access(ctx: RequestContext) -> tuple[Scope, set[int]]:
    """The scope where the caller sees every bulletin (staff), and the pupils they see as family."""
    svc = ctx.services
    assert ctx.person_id is not None
    grants = await svc.grants.grants(ctx.person_id)
    staff = scope_for(grants, svc.permissions.roles_for("grades.view") - FAMILY_ROLES, ctx.tenant)
    # Two index lookups (the pupil's own account, the guardianships of the caller): an OR of both made PostgreSQL
    # scan every pupil of the scope (about 0.3 s of CPU per report card in a region of 1.2 million pupils).
    rows = await svc.db.fetch(
        "SELECT s.id FROM student s WHERE s.person_id = {} AND {} "
        "UNION SELECT s.id FROM guardianship g JOIN student s ON s.id = g.student_id WHERE g.person_id = {} AND {}",
        ctx.person_id,
        scope_sql(ctx.scope, "s"),
        ctx.person_id,
        scope_sql(ctx.scope, "s"),
    )
    return staff, {int(r["id"]) for r in rows}


def may_read(staff: Scope, family: set[int], row: dict[str, Any]) -> bool:
    """Whether a bulletin row is the caller's to read (staff of its school, or its pupil's family)."""
    return covers_row(staff, row) or row["student_id"] in family


async def readable_bulletins(
    ctx: RequestContext, *, student_id: int | None = None, term_id: int | None = None, class_id: int | None = None
) -> list[dict[str, Any]]:
    """Bulletin rows the caller may read, newest first (at most 2000), filtered as asked."""
    if ctx.person_id is None:
        return []
    db = ctx.services.db
    where = scope_sql(ctx.scope, "b")
    for column, value in (("student_id", student_id), ("term_id", term_id), ("class_id", class_id)):
        if value is not None:
            where = where & SQL("{} = {}", ident("b", column), value)
    async with db.scoped(ctx.scope, write=False):
        staff, family = await access(ctx)
        rows = await db.fetch(
            "SELECT {}, t.number AS term_number FROM grade_bulletin b LEFT JOIN term t ON t.id = b.term_id "
            "WHERE {} ORDER BY b.id DESC LIMIT 2000",
            BULLETIN_COLUMNS,
            where,
        )
    return [row for row in rows if may_read(staff, family, row)]


async def bulletin_file(ctx: RequestContext, bulletin_id: int) -> tuple[str, bytes]:
    """A bulletin's file name and PDF bytes, for whoever may read it; 404 for anyone else."""
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
        allowed = row is not None and may_read(*(await access(ctx)), row)
    if row is None or not allowed:
        raise NotFound("No such bulletin.")
    try:
        data = await svc.storage.get(row["storage_key"], tenant_id=row["school_id"])
    except ObjectNotFound:
        raise NotFound("This bulletin's file is missing; generate it again.") from None
    return row["storage_key"].rsplit("/", 1)[-1], data


async def class_bulletins(ctx: RequestContext, class_id: int, term_id: int) -> list[dict[str, Any]]:
    """A class's bulletins for a term with their pupils' names and Massar codes (staff of the school)."""
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        staff, _ = await access(ctx)
        rows = await db.fetch(
            "SELECT {}, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar "
            "FROM grade_bulletin b JOIN student s ON s.id = b.student_id "
            "WHERE b.class_id = {} AND b.term_id = {} AND {} ORDER BY s.last_name, s.first_name, b.locale",
            BULLETIN_COLUMNS,
            class_id,
            term_id,
            scope_sql(ctx.scope, "b"),
        )
    return [row for row in rows if covers_row(staff, row)]


async def class_zip(ctx: RequestContext, class_id: int, term_id: int) -> bytes:
    """Every bulletin of a class for a term in one zip (files missing from storage are left out)."""
    rows = await class_bulletins(ctx, class_id, term_id)
    if not rows:
        raise NotFound("No bulletins for this class and term yet.")
    storage = ctx.services.storage
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for row in rows:
            try:
                data = await storage.get(row["storage_key"], tenant_id=row["school_id"])
            except ObjectNotFound:
                continue
            archive.writestr(row["storage_key"].rsplit("/", 1)[-1], data)
    return buffer.getvalue()


async def term_overview(ctx: RequestContext, tenant: TenantInfo, term_id: int, year_id: int) -> list[dict[str, Any]]:
    """The school's classes of the year with, for the term, pupils with results and pupils with bulletins."""
    db = ctx.services.db
    return await db.fetch(
        "SELECT c.id, c.name, "
        "(SELECT COUNT(*) FROM grade_general_result g WHERE g.class_id = c.id AND g.term_id = {}) AS results, "
        "(SELECT COUNT(DISTINCT b.student_id) FROM grade_bulletin b WHERE b.class_id = c.id AND b.term_id = {}) "
        "AS bulletins FROM school_class c WHERE c.school_id = {} AND c.school_year_id = {} AND {} ORDER BY c.name",
        term_id,
        term_id,
        tenant.id,
        year_id,
        scope_sql(ctx.scope, "c"),
    )
