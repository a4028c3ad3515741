"""The school's supervisors in the portal (``/school/supervisors``): who they are, and granting the role.

What ``POST /api/v1/people`` does with ``role=supervisor`` at a school, with a session: the same services
(:func:`tenants.service.create_person`, :func:`tenants.service.add_membership`) in the same transaction kind.
Needs ``people.manage`` (directors and the administrators above them) and reads only the school of the URL.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.rendering import page
from core.school import service as school_service
from core.school.manage_pages import form_text, read_form
from core.school.pupil_rows import MESSAGES
from core.scope import Scope
from tenants import service

SUPERVISOR_ADDED = "The supervisor was added."
#: The page's own messages (every one is in the catalogues; tests check it).
PAGE_MESSAGES = [SUPERVISOR_ADDED]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


async def _page(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    school = school_service.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        people = await db.fetch(
            "SELECT p.id, p.full_name, p.full_name_ar, p.email FROM membership m JOIN person p ON p.id = m.person_id "
            "WHERE m.tenant_id = {} AND m.role = 'supervisor' ORDER BY p.full_name, p.id",
            school.id,
        )
    values.setdefault("errors", {})
    values.setdefault("values", {"locale": "fr"})
    values.setdefault("notice", None)
    rows = [
        {**p, "name": (p["full_name_ar"] if ctx.locale == "ar" and p["full_name_ar"] else None) or p["full_name"]}
        for p in people
    ]
    return page(ctx, "tenants/supervisors.html", status=status, supervisors=rows, **values)


@get("/school/supervisors", opt={"permission": "people.manage"}, include_in_schema=False)
async def supervisors_page(ctx: Ctx, done: FromQuery[str | None] = None) -> Any:
    """The school's supervisors and the form granting the role."""
    return await _page(ctx, notice=SUPERVISOR_ADDED if done == "added" else None)


@post("/school/supervisors", opt={"permission": "people.manage"}, include_in_schema=False)
async def add_supervisor(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Grant the supervisor role at this school to a new or existing identity."""
    school = school_service.require_school(ctx)
    form = await read_form(request)
    values = {name: form_text(form, name, 254) for name in ("email", "full_name", "full_name_ar")}
    values["locale"] = form_text(form, "locale", 2) if form_text(form, "locale", 2) in ("ar", "fr", "en") else "fr"
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if not values["email"]:
        errors["email"] = (MESSAGES["required"], {})
    elif not _EMAIL.match(values["email"]):
        errors["email"] = (MESSAGES["not_email"], {})
    if not values["full_name"]:
        errors["full_name"] = (MESSAGES["required"], {})
    for name in ("full_name", "full_name_ar"):
        if len(values[name]) > 100:
            errors[name] = (MESSAGES["too_long"], {"limit": 100})
    if errors:
        return await _page(ctx, 400, errors=errors, values=values)
    scope: Scope = ctx.scope
    async with service.tenant_change(ctx, scope):
        person = await service.create_person(
            ctx,
            email=values["email"],
            full_name=values["full_name"],
            full_name_ar=values["full_name_ar"],
            locale=values["locale"],
            password=None,
        )
        await service.add_membership(ctx, person, "supervisor", school)
    return Redirect(ctx.url("/school/supervisors?done=added"), status_code=303)


SUPERVISOR_ROUTES: list[Any] = [supervisors_page, add_supervisor]
