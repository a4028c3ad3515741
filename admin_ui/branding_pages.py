"""Administration console: a tenant's branding — display name, logo, colours, language, custom domains.

* ``/admin/tenants/{slug}/branding`` — the form, with a live preview of the portal header
  (``…/branding/preview``, an HTMX partial rendered from the proposed values before saving);
* ``…/logo`` — upload a logo (at most 512 KiB; the bytes must decode as a PNG, JPEG, WebP or
  GIF image; SVG is refused);
* ``…/domains`` and ``…/domains/remove`` — custom host names serving the portal.

Colours whose white text (or whose use as text on the page) would fall under a 4.5:1 contrast
ratio are refused. Saving clears the tenant cache, so the portals use the new branding at once.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from admin_ui.tree_pages import admin_page, error_text, form_of, text
from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.tenancy import TenantInfo
from tenants import branding as tenant_branding
from tenants import service
from tenants.service import Conflict, Invalid

PERMISSION = "tenants.manage"


def _values(node: TenantInfo) -> dict[str, str]:
    return {
        "display_name": node.display_name or "",
        "primary_color": node.primary_color,
        "secondary_color": node.secondary_color,
        "default_locale": node.default_locale,
    }


def _proposed(form: dict[str, Any]) -> dict[str, str]:
    return {
        "display_name": text(form, "display_name"),
        "primary_color": text(form, "primary_color").lower(),
        "secondary_color": text(form, "secondary_color").lower(),
        "default_locale": text(form, "default_locale"),
    }


def _errors(values: dict[str, str]) -> dict[str, str]:
    found = tenant_branding.branding_errors(
        values["display_name"], values["primary_color"], values["secondary_color"], values["default_locale"]
    )
    return {field: gettext_(msgid, **values_) for field, (msgid, values_) in found.items()}


def _preview(node: TenantInfo, values: dict[str, str], errors: dict[str, str], locale: str) -> dict[str, Any]:
    """What the header preview shows: the proposed values where valid, the saved ones otherwise."""
    return {
        "name": values["display_name"] or node.name(locale),
        "primary": node.primary_color if "primary_color" in errors else values["primary_color"],
        "secondary": node.secondary_color if "secondary_color" in errors else values["secondary_color"],
        "ratios": {
            key: f"{tenant_branding.worst_contrast(values[key]):.2f}"  # the figure an error would quote
            for key in ("primary_color", "secondary_color")
            if key not in errors or tenant_branding.HEX_COLOUR.match(values[key])
        },
    }


async def _branding_page(
    ctx: RequestContext,
    node: TenantInfo,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    done: str | None = None,
    host: str = "",
) -> Template:
    values = values or _values(node)
    errors = errors or {}
    return await admin_page(
        ctx,
        "admin/branding.html",
        status=status,
        node=node,
        values=values,
        errors=errors,
        preview=_preview(node, values, errors, ctx.locale),
        domains=await tenant_branding.domains_of(ctx, node),
        host=host,
        base_domain=ctx.services.tenants.base_domain,
        version=tenant_branding.branding_version(node),
        done=done,
    )


@get("/admin/tenants/{slug:str}/branding", opt={"permission": PERMISSION}, include_in_schema=False)
async def branding(ctx: Ctx, slug: FromPath[str], done: FromQuery[str | None] = None) -> Template:
    """The branding form of a node the caller administers."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    return await _branding_page(ctx, node, done=done)


@post(
    "/admin/tenants/{slug:str}/branding/preview",
    opt={"permission": PERMISSION},
    include_in_schema=False,
    status_code=200,
)
async def preview(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Template:
    """The portal header with the proposed values (an HTMX partial; nothing is saved)."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    values = _proposed(await form_of(request))
    errors = _errors(values)
    return Template(
        template_name="admin/branding_preview.html",
        context={
            "ctx": ctx,
            "tenant": ctx.tenant,
            "locale": ctx.locale,
            "node": node,
            "preview": _preview(node, values, errors, ctx.locale),
            "errors": errors,
        },
        media_type=MediaType.HTML,
    )


@post("/admin/tenants/{slug:str}/branding", opt={"permission": PERMISSION}, include_in_schema=False, status_code=303)
async def save_branding(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Save the name, colours and language; refused (nothing saved) when a colour is unreadable."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    form = await form_of(request)
    values = _proposed(form)
    if text(form, "version") != tenant_branding.branding_version(node):
        # Someone saved meanwhile: show what is saved now and let the person decide again.
        message = gettext_("Someone else changed the branding meanwhile. Nothing was saved: here is the current one.")
        return await _branding_page(ctx, node, errors={"version": message}, status=409)
    errors = _errors(values)
    if errors:
        return await _branding_page(ctx, node, values=values, errors=errors, status=400)
    async with service.tenant_change(ctx, await service.console_scope(ctx, PERMISSION)):
        await tenant_branding.set_branding(
            ctx,
            node,
            display_name=values["display_name"],
            primary=values["primary_color"],
            secondary=values["secondary_color"],
            locale=values["default_locale"],
        )
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/branding?done=branding"), status_code=303)


@post("/admin/tenants/{slug:str}/logo", opt={"permission": PERMISSION}, include_in_schema=False, status_code=303)
async def upload_logo(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Store a new logo after checking its size and that it really is a raster image."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    form = await form_of(request)
    upload = form.get("logo")
    if not isinstance(upload, UploadFile):
        return await _branding_page(ctx, node, errors={"logo": gettext_("Choose an image file.")}, status=400)
    data = await upload.read(tenant_branding.LOGO_MAX_BYTES + 1)
    try:
        async with service.tenant_change(ctx, await service.console_scope(ctx, PERMISSION)):
            await tenant_branding.set_logo(ctx, node, data, upload.content_type or "", upload.filename or "")
    except Invalid as exc:
        return await _branding_page(ctx, node, errors={"logo": error_text(exc)}, status=400)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/branding?done=logo"), status_code=303)


@post("/admin/tenants/{slug:str}/domains", opt={"permission": PERMISSION}, include_in_schema=False, status_code=303)
async def add_domain(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Serve the portal on a custom host name (validated, unique on the platform)."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    raw = text(await form_of(request), "host")
    try:
        async with service.tenant_change(ctx, await service.console_scope(ctx, PERMISSION)):
            await tenant_branding.add_domain(ctx, node, raw)
    except Invalid as exc:
        return await _branding_page(ctx, node, errors={"host": error_text(exc)}, status=400, host=raw)
    except Conflict:
        # Registered by someone else at the same moment (the unique index decided).
        message = gettext_("This host name already serves another portal.")
        return await _branding_page(ctx, node, errors={"host": message}, status=409, host=raw)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/branding?done=domain"), status_code=303)


@post(
    "/admin/tenants/{slug:str}/domains/remove",
    opt={"permission": PERMISSION},
    include_in_schema=False,
    status_code=303,
)
async def remove_domain(ctx: Ctx, slug: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Stop serving the portal on a custom host name."""
    node = await service.node_in_reach(ctx, slug, PERMISSION)
    host = text(await form_of(request), "host")
    async with service.tenant_change(ctx, await service.console_scope(ctx, PERMISSION)):
        await tenant_branding.remove_domain(ctx, node, host)
    return Redirect(ctx.url(f"/admin/tenants/{node.slug}/branding?done=domain-removed"), status_code=303)


ROUTES = [branding, preview, save_branding, upload_logo, add_domain, remove_domain]
