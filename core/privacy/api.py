"""Routes of personal data: "my data" (API and portal) and a region's retention periods (API and portal).

* ``GET/POST /api/v1/me/data-export`` — what one may export (oneself, one's children in any region) and the
  exports made; start one (``{"student_id": …}`` for a child). ``GET /api/v1/me/data-export/{job}`` is its
  status, ``…/download`` the zip once done;
* ``GET/POST /my-data`` and ``GET /my-data/{job}/download`` — the same in the portal, with the session;
* ``GET/PUT /api/v1/privacy/retention`` and ``GET/POST /privacy/retention`` — a region's periods
  (region and platform administrators, at the region's or the platform's address).

Only the person who asked may follow or download an export; requests and downloads are audited.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Redirect, Response, Template

from core.context import Ctx, RequestContext
from core.db import Database
from core.errors import Conflict, DomainError, NotFound
from core.i18n import gettext_
from core.jobs import JobInfo, get_job, queue_of
from core.permissions import AUTHENTICATED
from core.privacy import export, retention
from core.rendering import page
from core.scope import Scope
from core.storage import ObjectNotFound

PERMISSION = "privacy.configure"


# --------------------------------------------------------------------------- my data


class ExportIn(msgspec.Struct):
    """Whose data: ``null`` for oneself, a pupil id for one of one's children."""

    student_id: int | None = None


class ExportOut(msgspec.Struct):
    """An export: its job and where to follow and fetch it."""

    job_id: str
    status: str
    student_id: int | None
    created_at: Any
    status_url: str
    download_url: str
    result: Any = None
    error: str | None = None


class Subject(msgspec.Struct):
    """Someone whose data the caller may export: themselves, or a child (with the child's school)."""

    student_id: int | None
    name: str
    school: str | None = None


class MyDataOut(msgspec.Struct):
    """What the caller may export and the exports they made."""

    subjects: list[Subject]
    exports: list[ExportOut]


def _out(info: JobInfo) -> ExportOut:
    return ExportOut(
        job_id=info.id,
        status=info.status,
        student_id=info.params.get("student_id"),
        created_at=info.created_at,
        status_url=f"/api/v1/me/data-export/{info.id}",
        download_url=f"/api/v1/me/data-export/{info.id}/download",
        result=info.result,
        error=info.error,
    )


async def subjects(ctx: RequestContext) -> list[Subject]:
    """The caller, then their children wherever they are (the child switcher's list, in every region)."""
    assert ctx.identity is not None
    db = ctx.services.db
    async with db.scoped(Scope.everything(), write=False):
        rows = await db.fetch(
            "SELECT DISTINCT s.id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, t.slug, t.name_fr, "
            "t.name_ar, t.name_en, t.display_name FROM guardianship g JOIN student s ON s.id = g.student_id "
            "JOIN tenant t ON t.id = s.school_id WHERE g.person_id = {} ORDER BY s.id",
            ctx.identity.id,
        )
    out = [Subject(student_id=None, name=ctx.identity.full_name or ctx.identity.email)]
    for r in rows:
        arabic = ctx.locale == "ar" and (r["first_name_ar"] or r["last_name_ar"])
        name = f"{r['first_name_ar']} {r['last_name_ar']}" if arabic else f"{r['first_name']} {r['last_name']}"
        school = r["display_name"] or r.get(f"name_{ctx.locale}") or r["name_fr"] or r["slug"]
        out.append(Subject(student_id=r["id"], name=name.strip(), school=school))
    return out


async def my_exports(db: Database, person_id: int) -> list[JobInfo]:
    """The caller's last exports, newest first."""
    async with db.scoped(Scope.everything(), write=False):
        rows = await db.fetch(
            "SELECT id FROM job WHERE kind = {} AND created_by = {} ORDER BY created_at DESC LIMIT 10",
            export.KIND,
            person_id,
        )
        found = [await get_job(db, Scope.everything(), r["id"]) for r in rows]
    return [info for info in found if info is not None]


async def start(ctx: RequestContext, student_id: int | None) -> JobInfo:
    """Queue an export for the caller or one of their children (an unfinished one for the same subject is reused)."""
    assert ctx.person_id is not None
    db = ctx.services.db
    await export.subject_for(db, ctx.person_id, student_id)  # 404 for a pupil who is not one's child
    for info in await my_exports(db, ctx.person_id):
        if not info.finished and info.params.get("student_id") == student_id:
            return info
    job_id = await queue_of(ctx.services).enqueue(
        export.KIND,
        {"requested_by": ctx.person_id, "student_id": student_id},
        scope_columns={},
        created_by=ctx.person_id,
    )
    info = await get_job(db, Scope.everything(), job_id)
    assert info is not None
    return info


async def own_export(ctx: RequestContext, job_id: str) -> JobInfo:
    """One of the caller's exports (404 for anyone else's)."""
    info = await get_job(ctx.services.db, Scope.everything(), job_id) if len(job_id) <= 64 else None
    if info is None or info.kind != export.KIND or info.created_by != ctx.person_id:
        raise NotFound("No such export.")
    return info


async def archive(ctx: RequestContext, job_id: str) -> Response[bytes]:
    """The zip of a finished export, audited (409 before it is done, 410 once removed)."""
    info = await own_export(ctx, job_id)
    if info.status != "done":
        raise Conflict("The export is {status}; try again when it is done.", code="not_done", status=info.status)
    platform = (await ctx.services.tenants.root()).id
    try:
        data = await ctx.services.storage.get(export.archive_key(platform, info.id), tenant_id=platform)
    except ObjectNotFound:
        raise HTTPException(
            status_code=410, detail=gettext_("This archive is no longer available; ask for a new one.")
        ) from None
    assert ctx.person_id is not None
    subject = export.DataSubject(person_id=ctx.person_id, student_ids=())
    if info.params.get("student_id") is not None:
        subject = export.DataSubject(person_id=None, student_ids=(int(info.params["student_id"]),))
    await export.record(ctx.services, ctx.person_id, subject, "privacy.export_download", info.id)
    name = "my-data" if info.params.get("student_id") is None else f"pupil-{info.params['student_id']}-data"
    return Response(
        content=data,
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="{name}-{info.id[:8]}.zip"',
            "cache-control": "no-store",
        },
    )


@get("/api/v1/me/data-export", opt={"permission": AUTHENTICATED}, tags=["me"])
async def api_my_data(ctx: Ctx) -> MyDataOut:
    """Whose data the caller may export (themselves, their children in any region) and their exports."""
    assert ctx.person_id is not None
    return MyDataOut(
        subjects=await subjects(ctx), exports=[_out(i) for i in await my_exports(ctx.services.db, ctx.person_id)]
    )


@post("/api/v1/me/data-export", opt={"permission": AUTHENTICATED}, tags=["me"], status_code=202)
async def api_start_export(ctx: Ctx, data: JSONBody[ExportIn]) -> ExportOut:
    """Export everything held about the caller, or one of their children, as a zip (a background job)."""
    return _out(await start(ctx, data.student_id))


@get("/api/v1/me/data-export/{job_id:str}", opt={"permission": AUTHENTICATED}, tags=["me"])
async def api_export_status(ctx: Ctx, job_id: FromPath[str]) -> ExportOut:
    """An export's status (the caller's own only)."""
    return _out(await own_export(ctx, job_id))


@get(
    "/api/v1/me/data-export/{job_id:str}/download",
    opt={"permission": AUTHENTICATED},
    tags=["me"],
    media_type="application/zip",
)
async def api_download(ctx: Ctx, job_id: FromPath[str]) -> Response[bytes]:
    """The zip of a finished export."""
    return await archive(ctx, job_id)


class ExportForm(msgspec.Struct):
    """The portal's form: whose data (empty: oneself)."""

    csrf_token: str = ""
    student_id: str = ""


async def _my_data_page(ctx: RequestContext, status: int = 200, error: str | None = None) -> Template:
    assert ctx.person_id is not None
    people = await subjects(ctx)
    names = {s.student_id: s.name for s in people}
    exports = [
        {"info": info, "name": names.get(info.params.get("student_id"), "—")}
        for info in await my_exports(ctx.services.db, ctx.person_id)
    ]
    csrf = ctx.session.csrf_token if ctx.session else ""
    return page(
        ctx, "privacy/my_data.html", status=status, subjects=people, exports=exports, csrf_token=csrf, error=error
    )


@get("/my-data", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def my_data(ctx: Ctx) -> Template:
    """The "My data" page: ask for an archive of one's data (or a child's) and download it."""
    return await _my_data_page(ctx)


@post("/my-data", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def my_data_start(ctx: Ctx, data: Annotated[ExportForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Any:
    """Start an export from the portal, then back to the page (which shows its progress)."""
    student_id = int(data.student_id) if data.student_id.strip().isdigit() else None
    try:
        await start(ctx, student_id)
    except DomainError as exc:
        return await _my_data_page(ctx, status=exc.status_code, error=gettext_(exc.msgid, **exc.values))
    return Redirect(ctx.url("/my-data"))


@get("/my-data/{job_id:str}/download", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def my_data_download(ctx: Ctx, job_id: FromPath[str]) -> Response[bytes]:
    """The zip of a finished export, with the portal session."""
    return await archive(ctx, job_id)


# --------------------------------------------------------------------------- retention


class PeriodOut(msgspec.Struct):
    """One kind's period in force, where it comes from (region, platform, default) and its bounds."""

    days: int
    source: str
    default: int
    minimum: int
    maximum: int


class RetentionOut(msgspec.Struct):
    """A region's (or the platform's) retention periods."""

    tenant: str
    periods: dict[str, PeriodOut]


async def _read(ctx: RequestContext) -> RetentionOut:
    tenant = retention.settings_node(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        found = await retention.periods(db, None if tenant.kind == "platform" else tenant.id)
    return _retention_out(tenant.slug, found)


def _retention_out(slug: str, found: dict[str, dict[str, Any]]) -> RetentionOut:
    return RetentionOut(
        tenant=slug,
        periods={
            kind: PeriodOut(
                days=value["days"],
                source=value["source"],
                default=retention.KINDS[kind].default,
                minimum=retention.KINDS[kind].minimum,
                maximum=retention.KINDS[kind].maximum,
            )
            for kind, value in found.items()
        },
    )


async def _write(ctx: RequestContext, values: dict[str, int]) -> RetentionOut:
    tenant = retention.settings_node(ctx)
    async with ctx.services.db.scoped(ctx.scope):
        found = await retention.set_periods(ctx, tenant, values)
    return _retention_out(tenant.slug, found)


@get("/api/v1/privacy/retention", opt={"permission": PERMISSION}, tags=["privacy"])
async def api_retention(ctx: Ctx) -> RetentionOut:
    """The retention periods in force for the region (or the platform's defaults) of the address."""
    return await _read(ctx)


@put("/api/v1/privacy/retention", opt={"permission": PERMISSION}, tags=["privacy"])
async def api_set_retention(ctx: Ctx, data: JSONBody[dict[str, int]]) -> RetentionOut:
    """Set some periods in days (``{"audit": 1095, "logins": 180, "notices": 365, "messages": 365}``), audited."""
    return await _write(ctx, data)


def _retention_page(ctx: RequestContext, found: RetentionOut, *, status: int = 200, **values: Any) -> Template:
    csrf = ctx.session.csrf_token if ctx.session else ""
    values.setdefault("errors", {})
    values.setdefault("saved", False)
    return page(
        ctx, "privacy/retention.html", status=status, found=found, kinds=retention.KINDS, csrf_token=csrf, **values
    )


async def _region_address(ctx: RequestContext) -> Redirect | None:
    """From a school or province portal, the same page at the region's address."""
    tenant = ctx.require_tenant()
    if tenant.kind in ("region", "platform") or tenant.region_id is None:
        return None
    region = await ctx.services.tenants.by_id(tenant.region_id)
    return Redirect(f"/t/{region.slug}/privacy/retention") if region else None


@get("/privacy/retention", opt={"permission": PERMISSION}, include_in_schema=False)
async def retention_page(ctx: Ctx) -> Any:
    """The region's retention periods, with a form to change them."""
    return await _region_address(ctx) or _retention_page(ctx, await _read(ctx))


@post("/privacy/retention", opt={"permission": PERMISSION}, include_in_schema=False, status_code=200)
async def retention_save(ctx: Ctx, request: Request[Any, Any, Any]) -> Template:
    """Save the form: each kind's days, checked against its bounds."""
    form = await request.form()
    values: dict[str, int] = {}
    errors: dict[str, str] = {}
    for kind in retention.KINDS:
        raw = str(form.get(kind, "")).strip()
        if raw:
            if raw.isdigit() and len(raw) < 6:
                values[kind] = int(raw)
            else:
                errors[kind] = gettext_("Enter a number of days.")
    if not errors:
        try:
            return _retention_page(ctx, await _write(ctx, values), saved=True)
        except DomainError as exc:
            errors[exc.field or "form"] = gettext_(exc.msgid, **exc.values)
    return _retention_page(ctx, await _read(ctx), status=400, errors=errors)


PRIVACY_ROUTES = [
    api_my_data,
    api_start_export,
    api_export_status,
    api_download,
    my_data,
    my_data_start,
    my_data_download,
    api_retention,
    api_set_retention,
    retention_page,
    retention_save,
]
