"""Operational and platform API: health, readiness, metrics, plugins, permissions, audit, files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import Body, FromPath, FromQuery, Parameter

from core import audit
from core.context import Ctx, RequestContext
from core.db import scope_sql
from core.errors import Invalid
from core.migrate import pending
from core.observability import metrics_payload
from core.permissions import AUTHENTICATED, PUBLIC
from core.sql import SQL, in_
from core.storage import ContentPolicy, ObjectTooLarge, StorageError, UnsupportedType, build_key


class PluginOut(msgspec.Struct):
    """A plugin and its effective state for the caller's tenant."""

    name: str
    label: str
    version: str
    builtin: bool
    toggleable: bool
    enabled: bool
    source: str


class PermissionOut(msgspec.Struct):
    """A registered permission."""

    name: str
    description: str
    roles: list[str]


class FileOut(msgspec.Struct):
    """A stored file's metadata."""

    id: int
    filename: str
    content_type: str
    size: int
    category: str
    created_at: datetime
    url: str


class UploadForm(msgspec.Struct):
    """Multipart upload; ``readers`` lists the ids of the people the file is addressed to (``"12,40"``)."""

    file: UploadFile
    category: str = "attachments"
    readers: str = ""


#: Staff holding this permission where a file lies may read it without being its uploader or an addressee:
#: the people who manage the school's pupils and staff (directors and the administrators above them).
FILE_MANAGERS_PERMISSION = "school.manage"
MAX_READERS = 50


@get("/healthz", opt={"permission": PUBLIC}, include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@get("/readyz", opt={"permission": PUBLIC}, include_in_schema=False)
async def readyz(ctx: Ctx) -> Response[dict[str, Any]]:
    """Readiness: the database answers and every migration is applied; storage answers."""
    svc = ctx.services
    checks: dict[str, str] = {}
    try:
        await svc.db.fetchval("SELECT 1")
        missing = await pending(svc.db, svc.migration_sets)
        checks["database"] = "ok" if not missing else f"{len(missing)} migrations pending"
    except Exception as exc:  # any failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await svc.storage.ping()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return Response({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)


@get("/metrics", opt={"permission": PUBLIC}, include_in_schema=False)
async def metrics() -> Response[bytes]:
    """Prometheus metrics."""
    payload, content_type = metrics_payload()
    return Response(payload, media_type=content_type)


@get("/api/v1/plugins", opt={"permission": "modules.view"}, tags=["platform"])
async def list_plugins(ctx: Ctx) -> list[PluginOut]:
    """Installed plugins and their effective state for the caller's tenant."""
    svc = ctx.services
    tenant = ctx.require_tenant()
    programmes = await svc.tenants.programmes_of(tenant.id) if tenant.kind == "school" else ()
    out = []
    for name in svc.plugins.names:
        info = svc.plugins.infos[name]
        if info.toggleable:
            state = await svc.modules.state(name, tenant.path, programmes)
            enabled, source = state.enabled, state.source
        else:
            enabled, source = True, "always"
        out.append(PluginOut(name, info.label, info.version, info.builtin, info.toggleable, enabled, source))
    return out


@get("/api/v1/permissions", opt={"permission": AUTHENTICATED}, tags=["platform"])
async def list_permissions(ctx: Ctx) -> list[PermissionOut]:
    """Every permission registered by core and plugins, with the roles that hold it."""
    return [PermissionOut(p.name, p.description, sorted(p.roles)) for p in ctx.services.permissions.all()]


@get("/api/v1/audit", opt={"permission": "audit.read"}, tags=["platform"])
async def read_audit(
    ctx: Ctx,
    object_type: FromQuery[str | None] = None,
    object_id: FromQuery[str | None] = None,
    before_id: Annotated[int | None, Parameter(ge=1)] = None,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
) -> list[audit.AuditEntry]:
    """Audit entries of the caller's tenants, newest first (page with ``before_id``)."""
    async with ctx.services.db.scoped(ctx.scope, write=False):
        return await audit.read(
            ctx.services.db,
            ctx.scope,
            object_type=object_type,
            object_id=object_id,
            before_id=before_id,
            limit=limit,
        )


class PayloadTooLarge(HTTPException):
    """413."""

    status_code = 413


class UnsupportedMediaType(HTTPException):
    """415."""

    status_code = 415


@post("/api/v1/files", opt={"permission": "files.upload"}, tags=["files"], status_code=201)
async def upload_file(
    ctx: Ctx,
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> FileOut:
    """Store a file for the tenant (key built by the server), readable by its uploader, addressees and managers."""
    svc = ctx.services
    tenant = ctx.require_tenant()
    readers = await _addressees(ctx, data.readers)
    content = await data.file.read()
    policy = ContentPolicy.from_settings(svc.settings)
    try:
        content_type = policy.check(len(content), data.file.content_type or "", content)
        key = build_key(tenant.id, data.category, data.file.filename or "file")
    except ObjectTooLarge as exc:
        raise PayloadTooLarge(f"The file is larger than {exc.limit} bytes.") from None
    except UnsupportedType as exc:
        raise UnsupportedMediaType(f"Files of type {exc.content_type!r} are not accepted here.") from None
    except StorageError as exc:
        raise ClientException(str(exc)) from None
    cols = tenant.scope_columns()
    # The object is written last inside the transaction: a failed write rolls the rows back; a failed commit
    # (or a write whose answer was lost) removes the object again. Storage or database down: 503.
    async with svc.storage.removed_on_error(key, tenant_id=tenant.id), svc.db.scoped(ctx.scope):
        row = await svc.db.fetchrow(
            "INSERT INTO stored_file (key, tenant_id, region_id, province_id, school_id, category, filename, "
            "content_type, size, owner_id, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, "
            "CURRENT_TIMESTAMP) RETURNING id, created_at",
            key,
            tenant.id,
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            data.category,
            key.rsplit("/", 1)[-1],
            content_type,
            len(content),
            ctx.person_id,
        )
        assert row is not None
        for person_id in readers:
            await svc.db.execute(
                "INSERT INTO stored_file_reader (file_id, person_id, region_id, province_id, school_id) "
                "VALUES ({}, {}, {}, {}, {})",
                row["id"],
                person_id,
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
            )
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="file.upload",
            object_type="file",
            object_id=row["id"],
            tenant=tenant,
            after={"key": key, "size": len(content), "readers": readers},
        )
        await svc.storage.put(key, content, content_type, tenant_id=tenant.id)
    return FileOut(
        row["id"],
        key.rsplit("/", 1)[-1],
        content_type,
        len(content),
        data.category,
        row["created_at"],
        ctx.url(f"/api/v1/files/{row['id']}"),
    )


async def _addressees(ctx: RequestContext, text: str) -> list[int]:
    """The person ids a file is addressed to (``"12, 40"``); 400 on a malformed list or an unknown person."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > MAX_READERS or not all(p.isdigit() and len(p) < 10 for p in parts):
        raise Invalid("readers", "List at most {limit} person ids separated by commas.", limit=MAX_READERS)
    ids = sorted({int(p) for p in parts} - {ctx.person_id})
    if ids:
        found = await ctx.services.db.fetch(SQL("SELECT id FROM person WHERE id IN {}", in_(ids)))
        missing = sorted(set(ids) - {r["id"] for r in found})
        if missing:
            raise Invalid("readers", "No person with id {ids}.", ids=", ".join(map(str, missing)))
    return ids


#: A stored file's metadata columns (alias ``f``); :func:`_readable` adds the id and who may read it.
FILE_INFO_SQL = SQL(
    "SELECT f.id, f.key, f.tenant_id, f.filename, f.content_type, f.size, f.category, f.created_at FROM stored_file f"
)


async def _readable(ctx: RequestContext, file_id: int) -> dict[str, Any] | None:
    """A file's row if the caller may read it, else ``None`` (a 404 either way: ids say nothing).

    Readable: in the caller's ``files.read`` scope, and the caller uploaded it, is one of its
    addressees, or holds :data:`FILE_MANAGERS_PERMISSION` where it lies.
    """
    svc = ctx.services
    managers = await ctx.scope_for(FILE_MANAGERS_PERMISSION)
    async with svc.db.scoped(ctx.scope, write=False):
        return await svc.db.fetchrow(
            "{} WHERE f.id = {} AND {} AND (f.owner_id = {} OR {} OR EXISTS (SELECT 1 FROM stored_file_reader r "
            "WHERE r.file_id = f.id AND r.person_id = {}))",
            FILE_INFO_SQL,
            file_id,
            scope_sql(ctx.scope, "f"),
            ctx.person_id,
            scope_sql(managers, "f"),
            ctx.person_id,
        )


@get("/api/v1/files/{file_id:int}/info", opt={"permission": "files.read"}, tags=["files"])
async def file_info(ctx: Ctx, file_id: FromPath[int]) -> FileOut:
    """A stored file's metadata, for its uploader, its addressees and the managers of its tenant."""
    row = await _readable(ctx, file_id)
    if row is None:
        raise NotFoundException("No such file.")
    return FileOut(
        row["id"],
        row["filename"],
        row["content_type"],
        row["size"],
        row["category"],
        row["created_at"],
        ctx.url(f"/api/v1/files/{row['id']}"),
    )


@get(
    "/api/v1/files/{file_id:int}",
    opt={"permission": "files.read"},
    tags=["files"],
    media_type="*/*",  # the file's own type, as accepted on upload (core.storage.ContentPolicy)
)
async def download_file(ctx: Ctx, file_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[bytes]:
    """Download a file, for its uploader, its addressees and the managers of its tenant."""
    row = await _readable(ctx, file_id)
    if row is None:
        raise NotFoundException("No such file.")
    data = await ctx.services.storage.get(row["key"], tenant_id=row["tenant_id"])
    return Response(
        data,
        media_type=row["content_type"],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(row['filename'])}",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


CORE_API = [
    healthz,
    readyz,
    metrics,
    list_plugins,
    list_permissions,
    read_audit,
    upload_file,
    file_info,
    download_file,
]
