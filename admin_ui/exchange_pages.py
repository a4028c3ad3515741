"""OneRoster pages (``/t/<tenant>/admin/oneroster/…``): download the tenant's bundle, upload one, read the report.

The pages call the same service as the API (:mod:`tenants.oneroster.service`); the upload form carries
the session's CSRF token; a form problem re-renders the page with the error next to the field.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException

from core.api.platform import PayloadTooLarge
from core.context import Ctx, RequestContext
from core.rendering import page
from tenants.oneroster import service

PERMISSION = "school.manage"
#: What the report's counts are about, as the page names them.
COUNT_LABELS = {
    "orgs": "Regions, provinces and schools",
    "schoolYears": "School years",
    "terms": "Terms",
    "subjects": "Subjects",
    "classes": "Classes",
    "pupils": "Pupils",
    "people": "People",
    "memberships": "Roles",
    "guardianships": "Guardian links",
    "enrolments": "Enrolments",
    "homeroomTeachers": "Homeroom teachers",
    "assignments": "Teaching assignments",
    "demographics": "Birth dates and sex",
    "lineItems": "Assessments",
    "results": "Marks",
}


def _index(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    tenant = service.exchange_tenant(ctx)
    values = {"errors": {}, "dry_run": True, "limit": None, **values}
    return page(ctx, "admin/oneroster.html", status=status, node=tenant, **values)


@get("/admin/oneroster/", opt={"permission": PERMISSION}, include_in_schema=False)
async def oneroster_page(ctx: Ctx) -> Any:
    """Download this tenant's rosters, or upload a bundle to check or import (outside a tenant: choose one)."""
    if ctx.tenant is None:
        nodes = [await ctx.services.tenants.by_id(i) for i in sorted(ctx.scope.nodes)]
        if ctx.scope.platform:
            nodes.insert(0, await ctx.services.tenants.by_slug("platform"))
        return page(ctx, "admin/oneroster_nodes.html", nodes=[n for n in nodes if n is not None])
    return _index(ctx)


@get("/admin/oneroster/export", opt={"permission": PERMISSION, "bulk_export": "oneroster"}, include_in_schema=False)
async def oneroster_download(ctx: Ctx) -> Response[bytes]:
    """The OneRoster 1.2 CSV bundle of this tenant (what the caller may see)."""
    name, data = await service.export_zip(ctx)
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


@post("/admin/oneroster/import", opt={"permission": PERMISSION}, include_in_schema=False, status_code=200)
async def oneroster_upload(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Check (``dry_run`` ticked) or import a bundle, then show the report."""
    form = await request.form()
    upload = form.get("file")
    dry_run = isinstance(form.get("dry_run"), str) and form.get("dry_run") not in ("", "false")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _index(ctx, status=400, errors={"file": "Choose a OneRoster bundle (.zip)."}, dry_run=dry_run)
    content = await upload.read()
    try:
        report = await service.import_zip(ctx, content, dry_run=dry_run)
    except PayloadTooLarge:
        return _index(
            ctx,
            status=413,
            errors={"file": "The file is too large."},
            limit=ctx.services.settings.max_upload_bytes,
            dry_run=dry_run,
        )
    except ClientException as exc:
        return _index(ctx, status=400, errors={"file": exc.detail}, dry_run=dry_run)
    return page(
        ctx,
        "admin/oneroster_report.html",
        status=200 if report.ok else 409 if report.conflict else 422,
        node=service.exchange_tenant(ctx),
        report=report,
        filename=upload.filename[:200],
        labels=COUNT_LABELS,
    )


ROUTES: list[Any] = [oneroster_page, oneroster_download, oneroster_upload]
