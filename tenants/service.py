"""Domain logic for the tenant tree, programmes, module switches and people.

Every function runs inside a transaction opened by its caller with the request's scope and
checks that the nodes it touches lie inside that scope.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException

from core import audit
from core.context import RequestContext
from core.identity import check_password_strength, normalise_email
from core.permissions import ROLES
from core.tenancy import KINDS, SLUG_RE, TenantInfo

HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Conflict(ClientException):
    """409: the object exists already or changed meanwhile."""

    status_code = 409


async def visible_node(ctx: RequestContext, slug: str) -> TenantInfo:
    """A node the caller's scope covers; 404 otherwise (another tenant's node is not revealed)."""
    node = await ctx.services.tenants.by_slug(slug)
    if node is None or not ctx.scope.covers(node.path):
        raise NotFoundException(f"No tenant {slug!r}.")
    return node


async def create_node(
    ctx: RequestContext,
    parent: TenantInfo,
    *,
    kind: str,
    slug: str,
    code: str | None,
    name_ar: str,
    name_fr: str,
    name_en: str,
    default_locale: str,
) -> TenantInfo:
    """Add a region under the platform, a province under a region, or a school under a province."""
    svc = ctx.services
    expected = KINDS[KINDS.index(parent.kind) + 1] if parent.kind != "school" else None
    if kind != expected:
        raise ClientException(
            f"A {parent.kind} can only contain {expected or 'nothing'}s, not a {kind}.",
            extra=[{"key": "kind", "message": f"expected {expected}"}],
        )
    if not SLUG_RE.match(slug):
        raise ClientException(
            "slug: lower-case letters, digits and dashes",
            extra=[{"key": "slug", "message": "lower-case letters, digits and dashes, 1–80 characters"}],
        )
    if await svc.db.fetchval("SELECT id FROM tenant WHERE slug = {}", slug) is not None:
        raise Conflict(f"The slug {slug!r} is taken.")
    row = await svc.db.fetchrow(
        "INSERT INTO tenant (kind, parent_id, path, slug, code, name_ar, name_fr, name_en, status, default_locale, "
        "primary_color, secondary_color, created_at) VALUES ({}, {}, '', {}, {}, {}, {}, {}, 'active', {}, "
        "{}, {}, {}) RETURNING id",
        kind,
        parent.id,
        slug,
        code,
        name_ar,
        name_fr,
        name_en,
        default_locale,
        parent.primary_color,
        parent.secondary_color,
        datetime.now(UTC),
    )
    assert row is not None
    path = "/".join(str(p) for p in (*parent.path, row["id"])) + "/"
    await svc.db.execute("UPDATE tenant SET path = {} WHERE id = {}", path, row["id"])
    svc.tenants.invalidate()
    node = await svc.tenants.by_id(row["id"])
    assert node is not None
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.create",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        after={"slug": slug, "kind": kind, "parent": parent.slug},
    )
    return node


async def set_status(ctx: RequestContext, node: TenantInfo, status: str, reason: str) -> TenantInfo:
    """Suspend or reactivate a node (nothing is deleted)."""
    if node.kind == "platform":
        raise PermissionDeniedException("The platform itself cannot be suspended.")
    if status not in ("active", "suspended"):
        raise ClientException(
            "status must be active or suspended", extra=[{"key": "status", "message": "active or suspended"}]
        )
    svc = ctx.services
    await svc.db.execute("UPDATE tenant SET status = {} WHERE id = {}", status, node.id)
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="tenant.status",
        object_type="tenant",
        object_id=node.id,
        tenant=node,
        before={"status": node.status},
        after={"status": status},
        reason=reason,
    )
    svc.tenants.invalidate()
    updated = await svc.tenants.by_id(node.id)
    assert updated is not None
    return updated


def check_module(ctx: RequestContext, module: str) -> None:
    """404 for an unknown module, 400 for one that cannot be switched."""
    info = ctx.services.plugins.infos.get(module)
    if info is None:
        raise NotFoundException(f"No module {module!r}.")
    if not info.toggleable:
        raise ClientException(f"The {module} module cannot be switched off.")


async def set_node_module(
    ctx: RequestContext, node: TenantInfo, module: str, enabled: bool | None, reason: str
) -> None:
    """Switch a module at a node (``None`` removes the node's own setting); audited."""
    check_module(ctx, module)
    svc = ctx.services
    before, after = await svc.modules.set(module, enabled, tenant_id=node.id, actor_id=ctx.person_id, reason=reason)
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="module.set",
        object_type="module",
        object_id=module,
        tenant=node,
        before={"enabled": before},
        after={"enabled": after},
        reason=reason,
    )


async def programme_by_slug(ctx: RequestContext, slug: str) -> dict[str, Any]:
    """A programme the caller manages (platform admins manage all); 404 otherwise."""
    svc = ctx.services
    row = await svc.db.fetchrow("SELECT id, slug, name_ar, name_fr, name_en FROM programme WHERE slug = {}", slug)
    if row is None:
        raise NotFoundException(f"No programme {slug!r}.")
    assert ctx.identity is not None
    grants = await svc.grants.grants(ctx.identity.id)
    allowed = any(g.role == "platform_admin" and g.paths and len(g.paths[0]) == 1 for g in grants) or any(
        g.role == "programme_manager" and g.programme_id == row["id"] for g in grants
    )
    if not allowed:
        raise NotFoundException(f"No programme {slug!r}.")
    return row


async def set_programme_module(
    ctx: RequestContext, programme: dict[str, Any], module: str, enabled: bool | None, reason: str
) -> None:
    """Switch a module for every school of a programme; audited."""
    check_module(ctx, module)
    svc = ctx.services
    before, after = await svc.modules.set(
        module, enabled, programme_id=programme["id"], actor_id=ctx.person_id, reason=reason
    )
    # One entry per member school, so each region sees what a programme changed in its schools.
    schools = await svc.db.fetch("SELECT tenant_id FROM programme_school WHERE programme_id = {}", programme["id"])
    for row in schools:
        school = await svc.tenants.by_id(row["tenant_id"])
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="module.set",
            object_type="programme_module",
            object_id=f"{programme['slug']}:{module}",
            tenant=school,
            before={"enabled": before},
            after={"enabled": after},
            reason=reason,
        )


async def create_programme(ctx: RequestContext, slug: str, name_ar: str, name_fr: str, name_en: str) -> int:
    """A new, empty programme."""
    svc = ctx.services
    if not SLUG_RE.match(slug):
        raise ClientException(
            "slug: lower-case letters, digits and dashes",
            extra=[{"key": "slug", "message": "lower-case letters, digits and dashes"}],
        )
    if await svc.db.fetchval("SELECT id FROM programme WHERE slug = {}", slug) is not None:
        raise Conflict(f"The programme {slug!r} exists.")
    row = await svc.db.fetchrow(
        "INSERT INTO programme (slug, name_ar, name_fr, name_en, created_at) VALUES ({}, {}, {}, {}, {}) RETURNING id",
        slug,
        name_ar,
        name_fr,
        name_en,
        datetime.now(UTC),
    )
    assert row is not None
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="programme.create",
        object_type="programme",
        object_id=slug,
        tenant=None,
        after={"slug": slug},
    )
    return int(row["id"])


async def add_programme_school(ctx: RequestContext, programme: dict[str, Any], school: TenantInfo) -> None:
    """Put a school in a programme (idempotent)."""
    if school.kind != "school":
        raise ClientException(f"{school.slug} is a {school.kind}, not a school.")
    svc = ctx.services
    exists = await svc.db.fetchval(
        "SELECT id FROM programme_school WHERE programme_id = {} AND tenant_id = {}", programme["id"], school.id
    )
    if exists is None:
        await svc.db.execute(
            "INSERT INTO programme_school (programme_id, tenant_id) VALUES ({}, {})", programme["id"], school.id
        )
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="programme.add_school",
            object_type="programme",
            object_id=programme["slug"],
            tenant=school,
            after={"school": school.slug},
        )
    svc.tenants.invalidate()
    svc.grants.invalidate()


async def create_person(
    ctx: RequestContext, *, email: str, full_name: str, full_name_ar: str, locale: str, password: str | None
) -> int:
    """A new identity, or the existing one for that e-mail (one identity per person)."""
    svc = ctx.services
    email = normalise_email(email)
    existing = await svc.db.fetchval("SELECT id FROM person WHERE email = {}", email)
    if existing is not None:
        return int(existing)
    if password is not None and (weak := check_password_strength(password)):
        raise ClientException(f"password {weak}", extra=[{"key": "password", "message": weak}])
    row = await svc.db.fetchrow(
        "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
        "VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
        email,
        svc.identity.hash_password(password) if password else None,
        full_name,
        full_name_ar,
        locale,
        True,
        datetime.now(UTC),
    )
    assert row is not None
    return int(row["id"])


async def add_membership(ctx: RequestContext, person_id: int, role: str, node: TenantInfo) -> None:
    """Grant a role at a node (idempotent); the caller may not grant above its own reach."""
    if role not in ROLES or role == "programme_manager":
        raise ClientException(f"role: not a node role: {role!r}", extra=[{"key": "role", "message": "unknown"}])
    if role == "platform_admin" and node.kind != "platform":
        raise ClientException("platform_admin is granted at the platform node only")
    svc = ctx.services
    exists = await svc.db.fetchval(
        "SELECT id FROM membership WHERE person_id = {} AND role = {} AND tenant_id = {}", person_id, role, node.id
    )
    if exists is None:
        await svc.db.execute(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
            person_id,
            role,
            node.id,
            datetime.now(UTC),
        )
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="membership.add",
            object_type="person",
            object_id=person_id,
            tenant=node,
            after={"role": role},
        )
    svc.grants.invalidate(person_id)
