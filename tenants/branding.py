"""A tenant's face: branding (display name, colours checked for contrast, logo checked as an image)
and the custom domains its portal answers on.

Every function runs inside a transaction opened by its caller (``tenant_change``) with the request's
scope; changes are audited and clear the tenant cache after commit.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime

from litestar.exceptions import NotFoundException

from core import audit
from core.context import RequestContext
from core.db import UNIQUE_VIOLATIONS, unique_violation
from core.errors import Conflict, Invalid
from core.tenancy import TenantInfo
from tenants.service import _changed, _fresh_node

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: Background of the portal pages, against which text colours are also checked.
PAGE_BACKGROUND = "#f6f7f9"
MIN_CONTRAST = 4.5
LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_PIXELS = 2048
LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` colour."""
    channels = []
    for i in (1, 3, 5):
        c = int(colour[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def worst_contrast(colour: str) -> float:
    """The lower of a brand colour's two contrasts: white text on it, and it as text on the page background."""
    return min(contrast_ratio(colour, "#ffffff"), contrast_ratio(colour, PAGE_BACKGROUND))


def colour_error(colour: str) -> tuple[str, dict[str, str]] | None:
    """Why a brand colour cannot be used (message id and values), or ``None``. Pure function.

    Both colours carry white text (header, buttons, badges) and are used as text on the white
    cards and the page background, so each must reach 4.5:1 against white and the page.
    """
    if not HEX_COLOUR.match(colour):
        return "Enter a colour as #rrggbb.", {}
    worst = worst_contrast(colour)
    if worst < MIN_CONTRAST:
        return (
            "Text would be unreadable on this colour (contrast {ratio}:1; at least 4.5:1 is needed).",
            {"ratio": f"{worst:.2f}"},
        )
    return None


def normalise_host(raw: str) -> str:
    """A custom domain as stored (lower case, punycode, no trailing dot); :class:`Invalid` when it is not one."""
    host = raw.strip().lower().rstrip(".")
    if not host:
        raise Invalid("host", "Enter a host name such as ecole.example.ma.")
    if "://" in host or "/" in host or ":" in host or "@" in host or " " in host:
        raise Invalid("host", "Enter a host name only, without scheme, port or path (such as ecole.example.ma).")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Invalid("host", "This is not a valid host name.") from None
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels):
        raise Invalid("host", "This is not a valid host name.")
    if labels[-1].isdigit():
        raise Invalid("host", "An IP address cannot be a custom domain.")
    if labels[-1] == "localhost":
        raise Invalid("host", "This host name is reserved.")
    return host


async def domains_of(ctx: RequestContext, node: TenantInfo) -> list[str]:
    """Custom domains serving a node's portal."""
    rows = await ctx.services.db.fetch("SELECT host FROM tenant_domain WHERE tenant_id = {} ORDER BY host", node.id)
    return [r["host"] for r in rows]


async def add_domain(ctx: RequestContext, node: TenantInfo, raw: str) -> str:
    """Register a custom domain for a node; unique across the platform; audited."""
    host = normalise_host(raw)
    svc = ctx.services
    base = svc.tenants.base_domain
    if host == base or host.endswith("." + base):
        raise Invalid("host", "Addresses under the platform's own domain are given by the slug; choose another.")
    owner = await svc.db.fetchval("SELECT tenant_id FROM tenant_domain WHERE host = {}", host)
    if owner is not None:
        if owner == node.id:
            return host
        raise Invalid("host", "This host name already serves another portal.")
    try:
        await svc.db.execute("INSERT INTO tenant_domain (tenant_id, host) VALUES ({}, {})", node.id, host)
    except UNIQUE_VIOLATIONS as exc:
        if unique_violation(exc) is None:
            raise
        raise Conflict(f"The host name {host} was registered meanwhile.", field="host") from None
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.domain_add",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        after={"host": host},
    )
    _changed(ctx)
    return host


async def remove_domain(ctx: RequestContext, node: TenantInfo, host: str) -> None:
    """Stop serving a node's portal on a custom domain."""
    svc = ctx.services
    found = await svc.db.fetchval(
        "SELECT id FROM tenant_domain WHERE tenant_id = {} AND host = {}", node.id, host.strip().lower()
    )
    if found is None:
        raise NotFoundException(f"{node.slug} has no domain {host!r}.")
    await svc.db.execute("DELETE FROM tenant_domain WHERE id = {}", found)
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.domain_remove",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        before={"host": host},
    )
    _changed(ctx)


def branding_version(node: TenantInfo) -> str:
    """A short fingerprint of a node's saved branding, so a form can tell it changed meanwhile. Pure function."""
    text = "|".join(
        (node.display_name or "", node.primary_color, node.secondary_color, node.default_locale, node.logo_key or "")
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def branding_errors(
    display_name: str, primary: str, secondary: str, locale: str
) -> dict[str, tuple[str, dict[str, str]]]:
    """Field → (message id, values) for a branding form (empty when it can be saved). Pure function."""
    errors: dict[str, tuple[str, dict[str, str]]] = {}
    if len(display_name) > 200:
        errors["display_name"] = ("At most 200 characters.", {})
    for field, colour in (("primary_color", primary), ("secondary_color", secondary)):
        problem = colour_error(colour)
        if problem:
            errors[field] = problem
    if locale not in ("ar", "fr", "en"):
        errors["default_locale"] = ("Choose Arabic, French or English.", {})
    return errors


async def set_branding(
    ctx: RequestContext, node: TenantInfo, *, display_name: str, primary: str, secondary: str, locale: str
) -> TenantInfo:
    """Save a node's name, colours and language; the portals show them at once. Audited."""
    primary, secondary = primary.strip().lower(), secondary.strip().lower()
    errors = branding_errors(display_name.strip(), primary, secondary, locale)
    if errors:
        field, (msgid, values) = next(iter(errors.items()))
        raise Invalid(field, msgid, **values)
    svc = ctx.services
    name = display_name.strip() or None
    await svc.db.execute(
        "UPDATE tenant SET display_name = {}, primary_color = {}, secondary_color = {}, default_locale = {} "
        "WHERE id = {}",
        name,
        primary,
        secondary,
        locale,
        node.id,
    )
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.branding",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        before={
            "display_name": node.display_name,
            "primary_color": node.primary_color,
            "secondary_color": node.secondary_color,
            "default_locale": node.default_locale,
        },
        after={"display_name": name, "primary_color": primary, "secondary_color": secondary, "default_locale": locale},
    )
    _changed(ctx)
    return await _fresh_node(ctx, node.id)


def check_logo(data: bytes, declared_type: str, filename: str) -> str:
    """The content type of an acceptable logo; :class:`Invalid` otherwise.

    Size at most 512 KiB; the bytes must decode as a PNG, JPEG, WebP or GIF image (checked
    with Pillow, whatever the name or declared type say) of at most 2048 × 2048 pixels. SVG is
    refused: it can carry scripts.
    """
    from PIL import Image, UnidentifiedImageError

    name = filename.lower()
    head = data[:512].lstrip().lower()
    if name.endswith((".svg", ".svgz")) or "svg" in declared_type.lower() or head.startswith((b"<svg", b"<?xml")):
        raise Invalid("logo", "SVG logos are refused (they can carry scripts): upload a PNG, JPEG or WebP image.")
    if not data:
        raise Invalid("logo", "Choose an image file.")
    if len(data) > LOGO_MAX_BYTES:
        raise Invalid("logo", "The logo is too large ({size} KiB; at most 512 KiB).", size=str(len(data) // 1024))
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            width, height = image.size
            if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
                raise Invalid("logo", "The logo is too large: at most 2048 × 2048 pixels.")
            image.verify()
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise Invalid("logo", "This file is not an image: upload a PNG, JPEG or WebP image.") from None
    if fmt not in LOGO_FORMATS:
        raise Invalid("logo", "Upload a PNG, JPEG or WebP image.")
    return LOGO_FORMATS[fmt]


async def set_logo(ctx: RequestContext, node: TenantInfo, data: bytes, declared_type: str, filename: str) -> TenantInfo:
    """Check and store a node's logo (replacing the previous one); audited."""
    from core.storage import build_key

    content_type = check_logo(data, declared_type, filename)
    svc = ctx.services
    key = build_key(node.id, "branding", "logo." + content_type.split("/")[1])
    await svc.storage.put(key, data, content_type, tenant_id=node.id)
    cols = node.scope_columns()
    await svc.db.execute(
        "INSERT INTO stored_file (key, tenant_id, region_id, province_id, school_id, category, filename, "
        "content_type, size, owner_id, created_at) VALUES ({}, {}, {}, {}, {}, 'branding', {}, {}, {}, {}, {})",
        key,
        node.id,
        cols["region_id"],
        cols["province_id"],
        cols["school_id"],
        filename[:200] or "logo",
        content_type,
        len(data),
        ctx.person_id,
        datetime.now(UTC),
    )
    await svc.db.execute("UPDATE tenant SET logo_key = {} WHERE id = {}", key, node.id)
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.logo",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        before={"logo_key": node.logo_key},
        after={"logo_key": key, "size": len(data), "content_type": content_type},
    )
    _changed(ctx)
    return await _fresh_node(ctx, node.id)
