"""Tenant archive API: download a region's or school's archive, export it as a job, import an archive.

* ``GET /api/v1/archives/{slug}``: the archive, built while the request waits (fine for a school);
* ``POST /api/v1/archives/{slug}/jobs``: the same as a background job with progress (a region);
  ``GET /api/v1/archive-jobs/{job_id}`` downloads it once the job is done. Archives made by jobs are
  kept under ``<data dir>/archives/`` (with SAQ workers on other machines, that folder must be shared);
* ``POST /api/v1/archives/import`` (multipart ``file``, ``?dry_run=true``): platform administrators
  only; the report lists every table as equal or different. Uploads are bounded by
  ``MADRASA_MAX_UPLOAD_BYTES``; larger archives go through ``madrasa import-tenant``.

Exports need ``tenants.manage`` (platform and region administrators) and a scope covering the node:
a region administrator exports their own region and its schools, never another region (403). Only a
platform administrator's archive carries the members' password hashes; a region administrator's
archive carries none (see :func:`tenants.archive.export_tenant`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import File

from core import audit
from core.context import Ctx, RequestContext
from core.errors import Conflict, DomainError, Forbidden, NotFound
from core.jobs import JobContext, get_job, queue_of, register_job
from core.scope import Scope
from core.tenancy import TenantInfo
from tenants import archive

EXPORT_JOB = "tenants.archive_export"
PERMISSION = "tenants.manage"
READ_CHUNK = 1 << 20
#: Archives made by export jobs are removed after this many seconds (at the next export job).
RETENTION_SECONDS = 7 * 24 * 3600


def _problem(exc: archive.ArchiveError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message, extra={"problems": exc.problems})


async def _node(ctx: RequestContext, slug: str) -> TenantInfo:
    """The node to export, inside the caller's scope (403 outside it, 404 if unknown)."""
    if len(slug) > 80:
        raise NotFound("No tenant {slug}.", slug=repr(slug[:80]))
    try:
        node = await archive.find_node(ctx.services, slug, ctx.scope)
    except archive.TenantNotFound as exc:
        raise NotFound(exc.message) from None
    except PermissionError as exc:
        raise Forbidden(str(exc)) from None
    if node.kind == "platform":
        raise DomainError("Export a region, a province or a school, not the whole platform.")
    return node


async def _log_export(ctx: RequestContext, node: TenantInfo, how: str) -> None:
    """Record who exported what, at platform level (so the node's own data stays as exported)."""
    db = ctx.services.db
    async with db.scoped(Scope.everything()):
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="archive.export",
            object_type="tenant",
            object_id=node.id,
            tenant=None,
            after={"slug": node.slug, "how": how},
        )


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _file(path: Path, slug: str, *, remove: bool) -> File:
    return File(
        path=path,
        filename=f"{slug}.zip",
        media_type="application/zip",
        background=BackgroundTask(os.unlink, path) if remove else None,
    )


@get(
    "/api/v1/archives/{slug:str}",
    opt={"permission": PERMISSION, "bulk_export": "archive"},
    tags=["archives"],
    media_type="application/zip",
)
async def download_archive(ctx: Ctx, slug: FromPath[str]) -> File:
    """The archive of a region, province or school: tables as JSON lines, stored files and a manifest."""
    node = await _node(ctx, slug)
    fd, name = tempfile.mkstemp(prefix="madrasa-archive-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    try:
        await archive.export_tenant(ctx.services, node.slug, path, password_hashes=ctx.scope.platform)
    except archive.ArchiveError as exc:
        _remove(path)
        raise _problem(exc) from None
    except BaseException:
        _remove(path)
        raise
    await _log_export(ctx, node, "download")
    return _file(path, node.slug, remove=True)


class ExportJobOut(msgspec.Struct):
    """A started export."""

    job_id: str
    status_url: str
    download_url: str


def archives_dir(settings: Any) -> Path:
    """Where export jobs leave their archives."""
    return Path(settings.data_dir) / "archives"


def _prune(folder: Path) -> None:
    """Remove archives older than :data:`RETENTION_SECONDS`."""
    limit = time.time() - RETENTION_SECONDS
    for old in folder.glob("*.zip*"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < limit:
                old.unlink()


@post("/api/v1/archives/{slug:str}/jobs", opt={"permission": PERMISSION}, tags=["archives"], status_code=202)
async def start_export(ctx: Ctx, slug: FromPath[str]) -> ExportJobOut:
    """Export as a background job (progress at the status URL, the archive at the download URL once done)."""
    node = await _node(ctx, slug)
    job_id = await queue_of(ctx.services).enqueue(
        EXPORT_JOB,
        {"slug": node.slug, "password_hashes": ctx.scope.platform},
        scope_columns=node.scope_columns(),
        created_by=ctx.person_id,
    )
    await _log_export(ctx, node, f"job {job_id}")
    return ExportJobOut(
        job_id=job_id,
        status_url=f"/api/v1/jobs/{job_id}",
        download_url=f"/api/v1/archive-jobs/{job_id}",
    )


@register_job(EXPORT_JOB)
async def export_job(job: JobContext, *, slug: str, password_hashes: bool = False) -> dict[str, Any]:
    """The export job: writes ``<data dir>/archives/<job id>.zip`` and reports progress about once a second.

    ``password_hashes`` is set when a platform administrator started the export.
    """
    folder = archives_dir(job.services.settings)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(_prune, folder)
    target = folder / f"{job.id}.zip"
    part = folder / f"{job.id}.zip.part"
    last = 0.0

    async def progress(done: int, total: int, message: str) -> None:
        nonlocal last
        if time.monotonic() - last < 1.0 and done < total:
            return
        last = time.monotonic()
        # Outside the export's read transaction, so the progress is visible while it runs.
        await asyncio.create_task(job.progress(done, total, message), context=contextvars.Context())

    try:
        manifest = await archive.export_tenant(
            job.services, slug, part, progress=progress, password_hashes=password_hashes is True
        )
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return {
        "tenant": slug,
        "rows": sum(t.rows for t in manifest.tables),
        "files": len(manifest.files),
        "bytes": target.stat().st_size,
    }


@get(
    "/api/v1/archive-jobs/{job_id:str}",
    opt={"permission": PERMISSION, "bulk_export": "archive"},
    tags=["archives"],
    media_type="application/zip",
)
async def download_export(ctx: Ctx, job_id: FromPath[str]) -> File:
    """The archive an export job made, once it is done (409 before; 403 for a platform administrator's export)."""
    info = await get_job(ctx.services.db, ctx.scope, job_id) if len(job_id) <= 64 else None
    if info is None or info.kind != EXPORT_JOB:
        raise NotFound("No such export.")
    if info.params.get("password_hashes", True) and not ctx.scope.platform:
        # A platform administrator's archive (or one from before the flag existed) holds password hashes.
        raise Forbidden("This archive was made by a platform administrator and holds password hashes.")
    if info.status != "done":
        raise Conflict("The export is {status}; try again when it is done.", code="not_done", status=info.status)
    path = archives_dir(ctx.services.settings) / f"{info.id}.zip"
    if not path.is_file():
        raise HTTPException(status_code=410, detail="The archive of this export is no longer available.")
    return _file(path, str(info.params.get("slug", "archive")), remove=False)


class ImportForm(msgspec.Struct):
    """Multipart import."""

    file: UploadFile


@post("/api/v1/archives/import", opt={"permission": PERMISSION}, tags=["archives"], status_code=200)
async def import_archive(
    ctx: Ctx,
    data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    dry_run: FromQuery[bool] = False,
) -> archive.ImportReport:
    """Import an archive into this deployment (platform administrators): validate, write, compare."""
    if not ctx.scope.platform:
        raise Forbidden("Only platform administrators may import tenant archives.")
    fd, name = tempfile.mkstemp(prefix="madrasa-import-", suffix=".zip")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := await data.file.read(READ_CHUNK):
                handle.write(chunk)
        try:
            return await archive.import_archive(ctx.services, path, dry_run=dry_run, actor_id=ctx.person_id)
        except archive.ArchiveError as exc:
            raise _problem(exc) from None
    finally:
        _remove(path)


ROUTES: list[Any] = [download_archive, start_export, download_export, import_archive]
