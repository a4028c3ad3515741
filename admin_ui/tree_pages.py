"""Administration console: the role-aware home page and the tenant tree (regions → provinces → schools).

The console works with or without a ``/t/<slug>/`` prefix: what a page shows is the caller's whole
reach for the page's permission (a region administrator sees the region even under one of its
schools' prefixes), and a node outside that reach answers 403. Shared helpers of the console's
pages live here too.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.rendering import page
from core.tenancy import KINDS, SLUG_RE, TenantInfo
from tenants import branding, service
from tenants.service import ADMIN_ROLES, Conflict, Invalid

#: Marks routes that check who may see them themselves (programme pages check the programme's managers),
#: so they can also serve someone whose scope for the permission is empty: the manager of a programme
#: without schools yet.
SCOPE_OPTIONAL = "scope_optional"
#: Confirmation messages after a successful form (``?done=<code>``).
NOTICES = {
    "created": "The tenant was created.",
    "branding": "The branding was saved. The portal shows it now.",
    "logo": "The logo was saved.",
    "domain": "The domain was added.",
    "domain-removed": "The domain was removed.",
    "suspended": "The tenant is suspended. Its users now see the suspension page; nothing was deleted.",
    "active": "The tenant is active again.",
    "programme": "The programme was created.",
    "school": "The school was added to the programme.",
    "school-removed": "The school was taken out of the programme. The programme's switches no longer apply to it.",
    "manager": "The manager was assigned.",
    "module": "The module switch was saved.",
    "granted": "The role was granted.",
    "role-removed": "The role was taken away.",
}
KIND_LABELS = {"platform": "Platform", "region": "Region", "province": "Province", "school": "School"}
SOURCE_LABELS = {
    "default": "Module default",
    "platform": "Platform",
    "region": "Region",
    "province": "Province",
    "programme": "Programme",
    "school": "School override",
}


async def admin_roles(ctx: RequestContext) -> frozenset[str]:
    """The console roles the caller holds anywhere; 403 for someone who administers nothing."""
    if ctx.identity is None:
        raise PermissionDeniedException("Log in first.")
    grants = await ctx.services.grants.grants(ctx.identity.id)
    # A programme's manager keeps the role while the programme has no school yet.
    roles = frozenset(g.role for g in grants if g.role in ADMIN_ROLES and (g.paths or g.programme_id is not None)) | (
        frozenset({"platform_admin"}) if service.is_platform_admin(grants) else frozenset()
    )
    if not roles:
        raise PermissionDeniedException("The administration console is for platform, region and programme managers.")
    return roles


async def admin_page(ctx: RequestContext, template: str, status: int = 200, **context: Any) -> Template:
    """Render a console page with the caller's console roles (for the sub-navigation)."""
    roles = await admin_roles(ctx)
    return page(
        ctx,
        template,
        status=status,
        admin_roles=roles,
        is_platform="platform_admin" in roles,
        kind_labels=KIND_LABELS,
        source_labels=SOURCE_LABELS,
        notice=NOTICES.get(context.pop("done", None) or ""),
        **context,
    )


async def form_of(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The posted form as a plain dict (last value wins; files kept as :class:`UploadFile`)."""
    form = await request.form()
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        out[key] = value if isinstance(value, UploadFile) else str(value)
    return out


def text(form: dict[str, Any], name: str) -> str:
    """A text field of a form ("" when missing or a file)."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def error_text(exc: Invalid) -> str:
    """A field error in the reader's language."""
    return gettext_(exc.msgid, **{k: str(v) for k, v in exc.values.items()})


def name_of(node: TenantInfo, locale: str) -> str:
    """A node's name in the page's language."""
    return node.name(locale)


async def breadcrumbs(ctx: RequestContext, node: TenantInfo) -> list[TenantInfo]:
    """The node's ancestors the caller administers (for the breadcrumb), root excluded."""
    scope = await service.console_scope(ctx, "tenants.view")
    return [a for a in await ctx.services.tenants.ancestors(node) if a.kind != "platform" and scope.covers(a.path)]


@get("/admin/", opt={"permission": "tenants.view", SCOPE_OPTIONAL: True}, include_in_schema=False, name="admin-home")
async def admin_home(ctx: Ctx) -> Template:
    """The console's home: each role's sections (tree, programmes, onboarding)."""
    roles = await admin_roles(ctx)
    nodes = await service.top_nodes(ctx) if roles - {"programme_manager"} else []
    programmes = await service.list_programmes(ctx)
    return await admin_page(ctx, "admin/home.html", nodes=nodes, programmes=programmes)


@get("/admin/tenants/", opt={"permission": "tenants.view"}, include_in_schema=False)
async def tree(ctx: Ctx, done: FromQuery[str | None] = None) -> Template:
    """The highest nodes the caller administers; the platform administrator creates regions here."""
    roles = await admin_roles(ctx)
    nodes = await service.top_nodes(ctx)
    root = await ctx.services.tenants.root()
    return await admin_page(
        ctx,
        "admin/tree.html",
        nodes=nodes,
        parent=root if "platform_admin" in roles else None,
        child_kind="region",
        form={},
        errors={},
        done=done,
    )


@get("/admin/tenants/{slug:str}", opt={"permission": "tenants.view"}, include_in_schema=False)
async def node_page(ctx: Ctx, slug: FromPath[str], done: FromQuery[str | None] = None) -> Template:
    """One node: its details, children, module states with their source, and its actions."""
    node = await service.node_in_reach(ctx, slug, "tenants.view")
    return await node_page_for(ctx, node, form={}, errors={}, done=done)


async def node_page_for(
    ctx: RequestContext, node: TenantInfo, *, form: dict[str, Any], errors: dict[str, str], status: int = 200, **kw: Any
) -> Template:
    """A node's page (also re-rendered with a form's errors by the console's other pages)."""
    svc = ctx.services
    kids = await service.children(ctx, node)
    rows = [node] + (kids if node.kind == "province" else [])
    matrix = await service.module_matrix(ctx, rows)
    switch = await service.console_scope(ctx, "modules.manage")
    manage = await service.console_scope(ctx, "tenants.manage")
    suspend = await service.console_scope(ctx, "tenants.suspend")
    people = await service.console_scope(ctx, "people.manage")
    child_kind = {"platform": "region", "region": "province"}.get(node.kind)
    return await admin_page(
        ctx,
        "admin/tree_node.html",
        status=status,
        node=node,
        crumbs=await breadcrumbs(ctx, node),
        children=kids,
        effective_status=await svc.tenants.effective_status(node),
        domains=await branding.domains_of(ctx, node),
        modules=svc.plugins.toggleable(),
        module_labels={n: svc.plugins.infos[n].label for n in svc.plugins.toggleable()},
        matrix=matrix,
        reasons=await service.node_settings(ctx, rows),
        switch_targets=[n for n in rows if switch.covers(n.path)],
        can_manage=manage.covers(node.path),
        can_suspend=suspend.covers(node.path),
        can_people=people.covers(node.path),
        parent=node if child_kind and manage.covers(node.path) else None,
        child_kind=child_kind,
        form=form,
        errors=errors,
        **kw,
    )


@post("/admin/tenants/", opt={"permission": "tenants.manage"}, include_in_schema=False, status_code=303)
async def create_node(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Create a region (platform administrator) or a province (its region's administrator)."""
    form = await form_of(request)
    parent = await service.node_in_reach(ctx, text(form, "parent") or "-", "tenants.manage")
    if parent.kind not in ("platform", "region"):
        raise ClientException("Create regions under the platform and provinces under a region.")
    kind = KINDS[KINDS.index(parent.kind) + 1]
    values = {k: text(form, k) for k in ("slug", "name_fr", "name_ar", "name_en", "code", "default_locale")}
    values["slug"] = values["slug"].lower()
    errors: dict[str, str] = {}
    if not SLUG_RE.match(values["slug"]):
        errors["slug"] = gettext_("Lower-case letters, digits and dashes, up to 80 characters.")
    if not values["name_fr"]:
        errors["name_fr"] = gettext_("The French name is required.")
    for key in ("name_fr", "name_ar", "name_en"):
        if len(values[key]) > 200:
            errors[key] = gettext_("At most 200 characters.")
    if len(values["code"]) > 40:
        errors["code"] = gettext_("At most 40 characters.")
    if values["default_locale"] not in ("ar", "fr", "en"):
        errors["default_locale"] = gettext_("Choose Arabic, French or English.")
    node: TenantInfo | None = None
    if not errors:
        try:
            async with service.tenant_change(ctx, await service.console_scope(ctx, "tenants.manage")):
                node = await service.create_node(
                    ctx,
                    parent,
                    kind=kind,
                    slug=values["slug"],
                    code=values["code"] or None,
                    name_ar=values["name_ar"],
                    name_fr=values["name_fr"],
                    name_en=values["name_en"],
                    default_locale=values["default_locale"],
                )
        except Conflict as exc:
            if exc.field == "code":
                errors["code"] = gettext_("This school code is taken; choose another.")
            else:
                errors["slug"] = gettext_("This slug is taken; choose another.")
    if node is None:
        if parent.kind == "platform":
            return await admin_page(
                ctx,
                "admin/tree.html",
                status=400,
                nodes=await service.top_nodes(ctx),
                parent=parent,
                child_kind=kind,
                form=values,
                errors=errors,
            )
        return await node_page_for(ctx, parent, form=values, errors=errors, status=400)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}?done=created"), status_code=303)


ROUTES = [admin_home, tree, node_page, create_node]
