"""A school's modules in the portal (``/school/modules``): what is on, what decided it, and the school's switch.

What ``PUT /api/v1/tenants/{school}/modules/{module}`` does, with the session: the same service
(:func:`tenants.service.set_node_module`, audited with the reason). Needs ``modules.manage`` (directors, and the
administrators above them when they work under the school's prefix) and acts only on the school of the URL.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.rendering import page
from core.school import service as school_service
from core.school.manage_pages import form_text, read_form
from tenants import service

SWITCHES = {"on": True, "off": False, "inherit": None}
#: Where a module's state comes from, as the page says it.
SOURCES = {
    "school": "Set for this school",
    "programme": "Set by the programme {name}",
    "province": "Inherited from the province",
    "region": "Inherited from the region",
    "platform": "Inherited from the platform",
    "default": "The module's default",
}
CHOOSE_MODULE = "Choose a module."
CHOOSE_STATE = "Choose on, off or inherit."
GIVE_REASON = "Give a reason (at least 3 characters): it goes into the history."
AT_MOST = "At most 2000 characters."
SWITCHED = "The module's switch was saved."
#: The page's own messages (every one is in the catalogues; tests check it).
PAGE_MESSAGES = [*SOURCES.values(), CHOOSE_MODULE, CHOOSE_STATE, GIVE_REASON, AT_MOST, SWITCHED]


async def _modules(ctx: RequestContext) -> list[dict[str, Any]]:
    school = school_service.require_school(ctx)
    svc = ctx.services
    programmes = await svc.tenants.programmes_of(school.id)
    out = []
    async with svc.db.scoped(ctx.scope, write=False):
        for name in svc.plugins.toggleable():
            info = svc.plugins.infos[name]
            state = await svc.modules.state(name, school.path, programmes)
            origin = None
            if state.source == "programme":
                origin = await svc.db.fetchrow(
                    "SELECT reason, updated_at FROM module_setting WHERE module = {} AND programme_id = {}",
                    name,
                    state.source_id,
                )
            elif state.source != "default":
                origin = await svc.db.fetchrow(
                    "SELECT reason, updated_at FROM module_setting WHERE module = {} AND tenant_id = {} "
                    "AND programme_id IS NULL",
                    name,
                    state.source_id,
                )
            programme = ""
            if state.source == "programme":
                row = await svc.db.fetchrow("SELECT name_ar, name_fr FROM programme WHERE id = {}", state.source_id)
                programme = ((row["name_ar"] if ctx.locale == "ar" else "") or row["name_fr"]) if row else ""
            out.append(
                {
                    "name": name,
                    "label": info.label,
                    "enabled": state.enabled,
                    "source": SOURCES[state.source],
                    "source_values": {"name": programme},
                    "own": state.source == "school",
                    "reason": origin["reason"] if origin else "",
                    "since": origin["updated_at"] if origin else None,
                }
            )
    return out


async def _page(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    values.setdefault("errors", {})
    values.setdefault("form", {})
    values.setdefault("notice", None)
    return page(ctx, "tenants/school_modules.html", status=status, modules=await _modules(ctx), **values)


@get("/school/modules", opt={"permission": "modules.manage"}, include_in_schema=False)
async def modules_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """The school's modules, each with its state, where it comes from, and the school's switch."""
    return await _page(ctx, notice=SWITCHED if done == "switched" else None)


@post("/school/modules", opt={"permission": "modules.manage"}, include_in_schema=False)
async def switch_module(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Switch one module on, off or back to inherit for this school, with a reason (audited)."""
    school = school_service.require_school(ctx)
    form = await read_form(request)
    module, state = form_text(form, "module", 64), form_text(form, "state", 16)
    reason = form_text(form, "reason", 4000)
    errors: dict[str, str] = {}
    if module not in ctx.services.plugins.toggleable():
        errors["module"] = CHOOSE_MODULE
    if state not in SWITCHES:
        errors["state"] = CHOOSE_STATE
    if len(reason) < 3:
        errors["reason"] = GIVE_REASON
    elif len(reason) > 2000:
        errors["reason"] = AT_MOST
    if errors:
        return await _page(ctx, 400, errors=errors, form={"module": module, "state": state, "reason": reason})
    async with ctx.services.db.scoped(ctx.scope):
        await service.set_node_module(ctx, school, module, SWITCHES[state], reason)
    return Redirect(ctx.url("/school/modules?done=switched"), status_code=303)


MODULE_ROUTES: list[Any] = [modules_page, switch_module]
