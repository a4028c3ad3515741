"""Administration console: switching a module for one school (or the node itself) from its tenant page.

``POST /admin/tenants/{slug}/modules`` — the form beside the node's matrix: which school of the
matrix, which module, on / off / inherit, and a reason (required; it goes into the history). It
calls the same service as ``PUT /api/v1/tenants/{slug}/modules/{module}``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect

from admin_ui.tree_pages import admin_roles, form_of, node_page_for, text
from core.context import Ctx
from core.i18n import gettext_
from tenants import service

SWITCHES = {"on": True, "off": False, "inherit": None}


@post("/admin/tenants/{slug:str}/modules", opt={"permission": "modules.manage"}, include_in_schema=False)
async def switch_node_module(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Switch a module on, off or back to inherit for a school of this node's matrix, with a reason."""
    await admin_roles(ctx)  # the console's users only (a director switches nothing here)
    node = await service.node_in_reach(ctx, slug, "tenants.view")
    form = await form_of(request)
    target_slug, module, switch, reason = (text(form, k) for k in ("target", "module", "state", "reason"))
    rows = await service.children(ctx, node) if node.kind == "province" else []
    targets = {n.slug: n for n in [node, *rows]}
    errors: dict[str, str] = {}
    target = targets.get(target_slug)
    if target is None:
        errors["target"] = gettext_("Choose a school.")
    if module not in ctx.services.plugins.toggleable():
        errors["module"] = gettext_("Choose a module.")
    if switch not in SWITCHES:
        errors["state"] = gettext_("Choose on, off or inherit.")
    if len(reason) < 3:
        errors["reason"] = gettext_("Give a reason (at least 3 characters): it goes into the history.")
    elif len(reason) > 2000:
        errors["reason"] = gettext_("At most 2000 characters.")
    scope = await service.console_scope(ctx, "modules.manage")
    if target is not None and not scope.covers(target.path):
        raise PermissionDeniedException(f"{target.slug} is outside what you administer.")
    if errors:
        return await node_page_for(ctx, node, form={**form, "switch_open": "1"}, errors=errors, status=400)
    assert target is not None
    async with ctx.services.db.scoped(scope):
        await service.set_node_module(ctx, target, module, SWITCHES[switch], reason)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}?done=module"), status_code=303)


ROUTES = [switch_node_module]
