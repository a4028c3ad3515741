"""Administration console: programmes — cohorts of schools from any region, their managers and modules.

* ``/admin/programmes/`` — the programmes the caller manages (all of them, and a creation form,
  for the platform administrator);
* ``/admin/programmes/{programme}`` — the schools × modules matrix: each school's effective state
  and the level it comes from (a school override shows as such), the programme's own switches
  (on, off or inherit, with a reason), its schools and managers;
* ``/admin/programmes/{programme}/history`` — who changed what for the programme, and why.

The platform administrator adds schools and managers, and takes schools out again with a reason.

A programme someone does not manage answers 404, like an unknown one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from admin_ui.tree_pages import SCOPE_OPTIONAL, admin_page, error_text, form_of, text
from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.tenancy import SLUG_RE
from tenants import service
from tenants.service import Conflict, Invalid

SWITCHES = ("on", "off", "inherit")


async def _programme_page(
    ctx: RequestContext,
    programme: dict[str, Any],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    done: str | None = None,
) -> Template:
    svc = ctx.services
    schools = await service.programme_schools(ctx, programme)
    modules = svc.plugins.toggleable()
    assert ctx.identity is not None
    grants = await svc.grants.grants(ctx.identity.id)
    return await admin_page(
        ctx,
        "admin/programme.html",
        status=status,
        programme=programme,
        pname=service.programme_name(programme, ctx.locale),
        schools=schools,
        matrix=await service.module_matrix(ctx, schools),
        modules=modules,
        module_labels={n: svc.plugins.infos[n].label for n in modules},
        settings=await service.programme_settings(ctx, programme),
        managers=await service.programme_managers(ctx, programme),
        can_edit_members=service.is_platform_admin(grants),
        programme_names={r["id"]: r for r in await svc.db.fetch("SELECT id, slug, name_fr, name_ar FROM programme")},
        errors=errors or {},
        form=form or {},
        done=done,
    )


@get("/admin/programmes/", opt={"permission": "modules.view", SCOPE_OPTIONAL: True}, include_in_schema=False)
async def programmes(ctx: Ctx) -> Template:
    """The programmes the caller manages."""
    return await admin_page(
        ctx, "admin/programme_list.html", programmes=await service.list_programmes(ctx), form={}, errors={}
    )


@post("/admin/programmes/", opt={"permission": "programmes.manage"}, include_in_schema=False, status_code=303)
async def create_programme(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Create a programme (platform administrator)."""
    form = await form_of(request)
    values = {k: text(form, k) for k in ("slug", "name_fr", "name_ar", "name_en")}
    values["slug"] = values["slug"].lower()
    errors: dict[str, str] = {}
    if not SLUG_RE.match(values["slug"]):
        errors["slug"] = gettext_("Lower-case letters, digits and dashes, up to 80 characters.")
    if not values["name_fr"]:
        errors["name_fr"] = gettext_("The French name is required.")
    for key in ("name_fr", "name_ar", "name_en"):
        if len(values[key]) > 200:
            errors[key] = gettext_("At most 200 characters.")
    if not errors:
        try:
            async with ctx.services.db.scoped(await service.console_scope(ctx, "programmes.manage")):
                await service.create_programme(
                    ctx, values["slug"], values["name_ar"], values["name_fr"], values["name_en"]
                )
            return Redirect(ctx.url(f"/admin/programmes/{values['slug']}?done=programme"), status_code=303)
        except Conflict:
            errors["slug"] = gettext_("This slug is taken; choose another.")
    return await admin_page(
        ctx,
        "admin/programme_list.html",
        status=400,
        programmes=await service.list_programmes(ctx),
        form=values,
        errors=errors,
    )


@get(
    "/admin/programmes/{programme:str}",
    opt={"permission": "modules.view", SCOPE_OPTIONAL: True},
    include_in_schema=False,
)
async def programme_page(ctx: Ctx, programme: FromPath[str], done: FromQuery[str | None] = None) -> Template:
    """The matrix of the programme's schools × modules, with the switches."""
    row = await service.programme_by_slug(ctx, programme)
    return await _programme_page(ctx, row, done=done)


@post("/admin/programmes/{programme:str}/modules", opt={"permission": "modules.manage"}, include_in_schema=False)
async def switch_module(ctx: Ctx, programme: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Switch a module on, off or back to inherit for every school of the programme, with a reason."""
    row = await service.programme_by_slug(ctx, programme)
    form = await form_of(request)
    module, switch, reason = text(form, "module"), text(form, "state"), text(form, "reason")
    errors: dict[str, str] = {}
    if module not in ctx.services.plugins.toggleable():
        errors["module"] = gettext_("Choose a module.")
    if switch not in SWITCHES:
        errors["state"] = gettext_("Choose on, off or inherit.")
    if len(reason) < 3:
        errors["reason"] = gettext_("Give a reason (at least 3 characters): it goes into the history.")
    elif len(reason) > 2000:
        errors["reason"] = gettext_("At most 2000 characters.")
    if errors:
        return await _programme_page(ctx, row, status=400, errors=errors, form={**form, "open": module})
    enabled = {"on": True, "off": False, "inherit": None}[switch]
    async with ctx.services.db.scoped(await service.console_scope(ctx, "modules.manage")):
        await service.set_programme_module(ctx, row, module, enabled, reason)
    return Redirect(ctx.url(f"/admin/programmes/{row['slug']}?done=module"), status_code=303)


@post(
    "/admin/programmes/{programme:str}/schools",
    opt={"permission": "programmes.manage"},
    include_in_schema=False,
    status_code=303,
)
async def add_school(ctx: Ctx, programme: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Add a school from any region (platform administrator)."""
    row = await service.programme_by_slug(ctx, programme)
    form = await form_of(request)
    slug = text(form, "school").lower()
    node = await ctx.services.tenants.by_slug(slug) if slug else None
    if node is None or node.kind != "school":
        message = gettext_("No school has this slug.")
        return await _programme_page(ctx, row, status=400, errors={"school": message}, form=form)
    scope = await service.console_scope(ctx, "programmes.manage")
    if not scope.covers(node.path):
        return await _programme_page(
            ctx, row, status=403, errors={"school": gettext_("This school is outside what you administer.")}, form=form
        )
    try:
        async with service.tenant_change(ctx, scope):
            await service.add_programme_school(ctx, row, node)
    except Conflict:
        # Added by someone else at the same moment: show the programme as it is now.
        message = gettext_("This school was added to the programme meanwhile.")
        return await _programme_page(ctx, row, status=409, errors={"school": message}, form=form)
    return Redirect(ctx.url(f"/admin/programmes/{row['slug']}?done=school"), status_code=303)


@post(
    "/admin/programmes/{programme:str}/schools/remove",
    opt={"permission": "programmes.manage"},
    include_in_schema=False,
    status_code=303,
)
async def remove_school(ctx: Ctx, programme: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Take a school out of the programme, with a reason (platform administrator; audited)."""
    row = await service.programme_by_slug(ctx, programme)
    form = await form_of(request)
    slug = text(form, "school").lower()
    form = {"remove": slug, "remove_reason": text(form, "reason")}
    node = await ctx.services.tenants.by_slug(slug) if slug else None
    members = {s.id for s in await service.programme_schools(ctx, row)}
    if node is None or node.id not in members:
        message = gettext_("This school is not in the programme.")
        return await _programme_page(ctx, row, status=404, errors={"remove": message}, form=form)
    scope = await service.console_scope(ctx, "programmes.manage")
    if not scope.covers(node.path):
        message = gettext_("This school is outside what you administer.")
        return await _programme_page(ctx, row, status=403, errors={"remove": message}, form=form)
    try:
        async with service.tenant_change(ctx, scope):
            await service.remove_programme_school(ctx, row, node, form["remove_reason"])
    except Invalid as exc:
        errors = {"remove_" + exc.field: error_text(exc)}
        return await _programme_page(ctx, row, status=400, errors=errors, form=form)
    except NotFoundException:
        message = gettext_("This school is not in the programme.")
        return await _programme_page(ctx, row, status=404, errors={"remove": message}, form=form)
    return Redirect(ctx.url(f"/admin/programmes/{row['slug']}?done=school-removed"), status_code=303)


@post(
    "/admin/programmes/{programme:str}/managers",
    opt={"permission": "programmes.manage"},
    include_in_schema=False,
    status_code=303,
)
async def add_manager(ctx: Ctx, programme: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Make a person a manager of the programme (platform administrator)."""
    row = await service.programme_by_slug(ctx, programme)
    form = await form_of(request)
    try:
        async with service.tenant_change(ctx, await service.console_scope(ctx, "programmes.manage")):
            await service.add_programme_manager(ctx, row, text(form, "email"), text(form, "full_name"))
    except Invalid as exc:
        return await _programme_page(ctx, row, status=400, errors={exc.field: error_text(exc)}, form=form)
    return Redirect(ctx.url(f"/admin/programmes/{row['slug']}?done=manager"), status_code=303)


@get(
    "/admin/programmes/{programme:str}/history",
    opt={"permission": "audit.read", SCOPE_OPTIONAL: True},
    include_in_schema=False,
)
async def history(ctx: Ctx, programme: FromPath[str]) -> Template:
    """Who switched which module for the programme, when and why; schools and managers added."""
    row = await service.programme_by_slug(ctx, programme)
    svc = ctx.services
    return await admin_page(
        ctx,
        "admin/programme_history.html",
        programme=row,
        pname=service.programme_name(row, ctx.locale),
        entries=await service.programme_history(ctx, row),
        module_labels={n: i.label for n, i in svc.plugins.infos.items()},
    )


ROUTES = [programmes, create_programme, programme_page, switch_module, add_school, remove_school, add_manager, history]
