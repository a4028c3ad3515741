"""Administration console: suspend and reactivate a school or a region, with a reason.

While a node (or one of its ancestors) is suspended its users see a clear page saying so;
nothing is deleted, and reactivating gives everything back.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from admin_ui.tree_pages import admin_page, form_of, text
from core.audit import read as read_audit
from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.tenancy import TenantInfo
from tenants import service

PERMISSION = "tenants.suspend"


async def _lifecycle_page(
    ctx: RequestContext,
    node: TenantInfo,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
    done: str | None = None,
) -> Template:
    svc = ctx.services
    scope = await service.console_scope(ctx, "audit.read")
    async with svc.db.scoped(scope, write=False):
        entries = [
            e
            for e in await read_audit(svc.db, scope, object_type="tenant", object_id=str(node.id), limit=100)
            if e.action == "tenant.status"
        ][:20]
    return await admin_page(
        ctx,
        "admin/lifecycle.html",
        status=status,
        node=node,
        effective_status=await svc.tenants.effective_status(node),
        suspended_above=[a for a in await svc.tenants.ancestors(node) if a.status != "active"],
        entries=entries,
        errors=errors or {},
        form=form or {},
        done=done,
    )


@get("/admin/tenants/{slug:str}/status", opt={"permission": PERMISSION}, include_in_schema=False)
async def lifecycle(ctx: Ctx, slug: FromPath[str], done: FromQuery[str | None] = None) -> Template:
    """The node's status, its history, and the suspend or reactivate form."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    return await _lifecycle_page(ctx, node, done=done)


@post("/admin/tenants/{slug:str}/status", opt={"permission": PERMISSION}, include_in_schema=False, status_code=303)
async def change_status(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Suspend or reactivate a school, province or region, with a reason (audited)."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    form = await form_of(request)
    status, reason = text(form, "status"), text(form, "reason")
    errors: dict[str, str] = {}
    if node.kind == "platform":
        errors["status"] = gettext_("The platform itself cannot be suspended.")
    elif status not in ("active", "suspended"):
        errors["status"] = gettext_("Choose to suspend or to reactivate.")
    if len(reason) < 3:
        errors["reason"] = gettext_("Give a reason (at least 3 characters): it goes into the history.")
    elif len(reason) > 2000:
        errors["reason"] = gettext_("At most 2000 characters.")
    if errors:
        return await _lifecycle_page(ctx, node, errors=errors, form=form, status=400)
    async with service.tenant_change(ctx, await service.console_scope(ctx, PERMISSION)):
        await service.set_status(ctx, node, status, reason)
    # Under the prefix of a tenant that is now suspended the console itself would answer 403.
    inside = ctx.tenant is not None and node.id in ctx.tenant.path
    target = f"/admin/tenants/{node.slug}/status?done={status}"
    return Redirect(target if inside else ctx.url(target), status_code=303)


ROUTES = [lifecycle, change_status]
