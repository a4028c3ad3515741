"""Administration console: the people holding a role at a node, and granting one (what ``POST /api/v1/people``
does, with the session).

* ``GET /admin/tenants/{slug}/people`` — who holds which role at the node (a region's administrators, a
  school's director, supervisors and teachers…), and the form;
* ``POST /admin/tenants/{slug}/people`` — an e-mail, a name and a role of the node's kind; the identity is
  found or created (one identity per person) and the role granted, in the API's transaction.

A role is granted only at a node the caller's ``people.manage`` scope covers, and only a role that fits the
node's kind (a region's administrator at a region, a supervisor at a school).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from admin_ui.tree_pages import admin_page, admin_roles, breadcrumbs, form_of, text
from core.context import Ctx, RequestContext
from core.i18n import LOCALES, gettext_
from core.school.pupil_rows import EMAIL_RE
from core.tenancy import TenantInfo
from tenants import service
from tenants.memberships import remove_membership

#: The roles the console grants at each kind of node.
ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    "region": ("region_admin",),
    "province": ("province_admin",),
    "school": ("school_director", "supervisor", "teacher"),
}
ROLE_LABELS = {
    "region_admin": "Region administrator",
    "province_admin": "Province administrator",
    "school_director": "School director",
    "supervisor": "Supervisor",
    "teacher": "Teacher",
}


async def _node(ctx: RequestContext, slug: str) -> tuple[TenantInfo, Any]:
    await admin_roles(ctx)
    scope = await service.console_scope(ctx, "people.manage")
    node = await ctx.services.tenants.by_slug(slug)
    if node is None or not scope.covers(node.path) or node.kind not in ROLES_BY_KIND:
        from litestar.exceptions import NotFoundException

        raise NotFoundException(f"No tenant {slug!r}.")
    return node, scope


async def _page(
    ctx: RequestContext,
    node: TenantInfo,
    scope: Any,
    *,
    form: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    done: str | None = None,
) -> Template:
    async with ctx.services.db.scoped(scope, write=False):
        members = await ctx.services.db.fetch(
            "SELECT p.id, p.full_name, p.full_name_ar, p.email, m.role FROM membership m "
            "JOIN person p ON p.id = m.person_id "
            "WHERE m.tenant_id = {} AND m.role <> 'parent' AND m.role <> 'student' ORDER BY m.role, p.full_name",
            node.id,
        )
    return await admin_page(
        ctx,
        "admin/people.html",
        status=status,
        node=node,
        crumbs=await breadcrumbs(ctx, node),
        members=members,
        roles=ROLES_BY_KIND[node.kind],
        role_labels=ROLE_LABELS,
        form=form,
        errors=errors,
        done=done,
    )


@get("/admin/tenants/{slug:str}/people", opt={"permission": "people.manage"}, include_in_schema=False)
async def people_page(ctx: Ctx, slug: FromPath[str], done: FromQuery[str | None] = None) -> Template:
    """Who holds a role at the node, and the form that grants one."""
    node, scope = await _node(ctx, slug)
    return await _page(ctx, node, scope, form={}, errors={}, done=done)


@post("/admin/tenants/{slug:str}/people", opt={"permission": "people.manage"}, include_in_schema=False)
async def grant_role(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Grant a role of the node's kind to an identity found or created by its e-mail."""
    node, scope = await _node(ctx, slug)
    form = await form_of(request)
    values = {k: text(form, k) for k in ("email", "full_name", "full_name_ar", "role", "locale")}
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(values["email"]) or len(values["email"]) > 254:
        errors["email"] = gettext_("Enter an e-mail address such as name@example.ma.")
    if not values["full_name"] or len(values["full_name"]) > 200:
        errors["full_name"] = gettext_("The name is required (at most 200 characters).")
    if len(values["full_name_ar"]) > 200:
        errors["full_name_ar"] = gettext_("At most 200 characters.")
    if values["role"] not in ROLES_BY_KIND[node.kind]:
        errors["role"] = gettext_("Choose one of the roles offered here.")
    locale = values["locale"] if values["locale"] in LOCALES else "fr"
    if errors:
        return await _page(ctx, node, scope, form=values, errors=errors, status=400)
    async with service.tenant_change(ctx, scope):
        person_id = await service.create_person(
            ctx,
            email=values["email"],
            full_name=values["full_name"],
            full_name_ar=values["full_name_ar"],
            locale=locale,
            password=None,
        )
        await service.add_membership(ctx, person_id, values["role"], node)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/people?done=granted"), status_code=303)


@post("/admin/tenants/{slug:str}/people/remove", opt={"permission": "people.manage"}, include_in_schema=False)
async def remove_role(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Take a role of the node's kind away from a person, with a reason (what the API's ``roles/remove`` does)."""
    node, scope = await _node(ctx, slug)
    form = await form_of(request)
    person, role, reason = (text(form, k) for k in ("person_id", "role", "reason"))
    error = ""
    if role not in ROLES_BY_KIND[node.kind] or not person.isdigit() or len(person) > 9:
        error = gettext_("Choose one of the roles offered here.")
    elif not 3 <= len(reason.strip()) <= 2000:
        error = gettext_("Give a reason (at least 3 characters): it goes into the history.")
    if error:
        return await _page(ctx, node, scope, form={}, errors={"remove": error}, status=400)
    async with service.tenant_change(ctx, scope):
        await remove_membership(ctx, int(person), role, node, reason)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/people?done=role-removed"), status_code=303)


ROUTES = [people_page, grant_role, remove_role]
