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
from core.context import Ctx
from core.db import scope_sql
from core.migrate import pending
from core.observability import metrics_payload
from core.permissions import AUTHENTICATED, PUBLIC
from core.sql import SQL
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
    """Multipart upload."""

    file: UploadFile
    category: str = "attachments"


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
    """Store a file for the tenant; the key is built by the server under the tenant's prefix."""
    svc = ctx.services
    tenant = ctx.require_tenant()
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
    async with svc.db.scoped(ctx.scope):
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
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="file.upload",
            object_type="file",
            object_id=row["id"],
            tenant=tenant,
            after={"key": key, "size": len(content)},
        )
        # Written last: if storage fails the row rolls back; an orphan object is harmless.
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


#: A stored file's metadata columns; the handler adds the id and the tenant filter.
FILE_INFO_SQL = SQL("SELECT id, key, tenant_id, filename, content_type, size, category, created_at FROM stored_file")


@get("/api/v1/files/{file_id:int}/info", opt={"permission": "files.read"}, tags=["files"])
async def file_info(ctx: Ctx, file_id: FromPath[int]) -> FileOut:
    """A stored file's metadata, if it belongs to a tenant the caller may read."""
    svc = ctx.services
    async with svc.db.scoped(ctx.scope, write=False):
        row = await svc.db.fetchrow("{} WHERE id = {} AND {}", FILE_INFO_SQL, file_id, scope_sql(ctx.scope))
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
    media_type="application/octet-stream",
)
async def download_file(ctx: Ctx, file_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[bytes]:
    """Download a file after checking it belongs to a tenant the caller may read."""
    svc = ctx.services
    async with svc.db.scoped(ctx.scope, write=False):
        row = await svc.db.fetchrow(
            "SELECT key, tenant_id, filename, content_type FROM stored_file WHERE id = {} AND {}",
            file_id,
            scope_sql(ctx.scope),
        )
    if row is None:
        raise NotFoundException("No such file.")
    data = await svc.storage.get(row["key"], tenant_id=row["tenant_id"])
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
