"""The OneRoster exchange as the API and the admin pages use it: checks on the upload, then import or export."""

from __future__ import annotations

from datetime import date

from core.api.platform import PayloadTooLarge
from core.context import RequestContext
from core.errors import Invalid, NotFound
from core.tenancy import TenantInfo
from tenants.oneroster.bundle import read_bundle
from tenants.oneroster.exporter import export_bundle
from tenants.oneroster.importer import ImportReport, build_report, import_bundle

ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream", "multipart/x-zip", "")


def exchange_tenant(ctx: RequestContext) -> TenantInfo:
    """The tenant the exchange works on: the request's (a region, province, school, or the platform)."""
    tenant = ctx.require_tenant()
    if not ctx.scope.covers(tenant.path) and not ctx.scope.platform:
        raise NotFound("This works at a tenant you manage: use /t/<region or school>/….")
    return tenant


def check_upload(ctx: RequestContext, data: bytes) -> None:
    """413 for a file over the upload limit (before anything is unpacked).

    Still ``core.api.platform.PayloadTooLarge``: the admin page catches that class to show its form again.
    """
    limit = ctx.services.settings.max_upload_bytes
    if len(data) > limit:
        raise PayloadTooLarge(f"The bundle is {len(data)} bytes; at most {limit} bytes are accepted.")


async def import_zip(ctx: RequestContext, data: bytes, *, dry_run: bool) -> ImportReport:
    """Read and check the bundle; when every file is sound, import it at the request's tenant (or roll back)."""
    tenant = exchange_tenant(ctx)
    check_upload(ctx, data)
    bundle, issues = read_bundle(data)
    if bundle is None:
        version = "1.1" if any("1.1" in i.message and i.file == "manifest.csv" for i in issues) else ""
        return build_report(issues, version, tenant, dry_run)
    return await import_bundle(ctx, tenant, bundle, issues, dry_run=dry_run)


async def export_zip(ctx: RequestContext) -> tuple[str, bytes]:
    """``(file name, zip bytes)`` of the request tenant's rosters."""
    tenant = exchange_tenant(ctx)
    data = await export_bundle(ctx, tenant)
    return f"oneroster-{tenant.slug}-{date.today().isoformat()}.zip", data


def parse_flag(value: str) -> bool:
    """A form checkbox or ``true``/``false`` field."""
    folded = value.strip().lower()
    if folded in ("true", "1", "yes", "on"):
        return True
    if folded in ("false", "0", "no", "off", ""):
        return False
    raise Invalid("dry_run", "dry_run: must be true or false")
