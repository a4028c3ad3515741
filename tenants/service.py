"""Domain logic for the tenant tree, programmes, module switches and people.

Every function runs inside a transaction opened by its caller with the request's scope and
checks that the nodes it touches lie inside that scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException, PermissionDeniedException

from core import audit
from core.context import RequestContext
from core.db import UNIQUE_VIOLATIONS, scope_sql, unique_violation
from core.errors import Conflict, Invalid
from core.identity import check_password_strength, normalise_email
from core.permissions import ROLES
from core.scope import Scope
from core.sql import SQL, ident, in_, join
from core.tenancy import KINDS, SLUG_RE, TenantInfo, parse_path

#: What the database raises when a unique index refuses a row (PostgreSQL, SQLite).
_NODE_COLUMNS = join(", ", [ident(f) for f in TenantInfo.__struct_fields__])
#: Set while :func:`tenant_change` holds a transaction open: cache clearing waits for its end.
_deferred_invalidation: ContextVar[bool] = ContextVar("tenants_deferred_invalidation", default=False)


@asynccontextmanager
async def tenant_change(ctx: RequestContext, scope: Scope) -> AsyncIterator[None]:
    """A scoped write transaction for changes to the tree, statuses, branding, domains, programmes or roles.

    The tenant and grant caches are cleared once the transaction has ended (committed or rolled
    back), never inside it: a row read into the cache meanwhile could still roll back, and a
    concurrent request could cache the state from before the commit.
    """
    svc = ctx.services
    token = _deferred_invalidation.set(True)
    try:
        async with svc.db.scoped(scope):
            yield
    finally:
        _deferred_invalidation.reset(token)
        svc.tenants.invalidate()
        svc.grants.invalidate()


def _changed(ctx: RequestContext, person_id: int | None = None) -> None:
    """Cached tenants or grants are stale: cleared by :func:`tenant_change` at its end, at once without one."""
    if _deferred_invalidation.get():
        return
    ctx.services.tenants.invalidate()
    ctx.services.grants.invalidate(person_id)


async def _fresh_node(ctx: RequestContext, node_id: int) -> TenantInfo:
    """A node as the open transaction sees it, bypassing the cache (the transaction may still roll back)."""
    row = await ctx.services.db.fetchrow(SQL("SELECT {} FROM tenant WHERE id = {}", _NODE_COLUMNS, node_id))
    if row is None:
        raise NotFoundException(f"No tenant {node_id}.")
    return msgspec.convert({**row, "path": parse_path(row["path"])}, TenantInfo)


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
    code = (code or "").strip() or None
    if await svc.db.fetchval("SELECT id FROM tenant WHERE slug = {}", slug) is not None:
        raise Conflict(f"The slug {slug!r} is taken.", field="slug")
    try:
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
    except UNIQUE_VIOLATIONS as exc:
        # Someone created the same slug or school code meanwhile (the unique indexes decide).
        what = unique_violation(exc)
        if what is None:
            raise
        if "code" in what:
            raise Conflict(f"The school code {code!r} is taken.", field="code") from None
        raise Conflict(f"The slug {slug!r} is taken.", field="slug") from None
    assert row is not None
    path = "/".join(str(p) for p in (*parent.path, row["id"])) + "/"
    await svc.db.execute("UPDATE tenant SET path = {} WHERE id = {}", path, row["id"])
    _changed(ctx)
    node = await _fresh_node(ctx, row["id"])
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
    _changed(ctx)
    return await _fresh_node(ctx, node.id)


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
    # One entry per member school, so each region sees what a programme changed in its schools; one
    # platform-level entry for a programme without schools yet.
    rows = await svc.db.fetch("SELECT tenant_id FROM programme_school WHERE programme_id = {}", programme["id"])
    schools = [await svc.tenants.by_id(row["tenant_id"]) for row in rows] or [None]
    for school in schools:
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
        raise Conflict(f"The programme {slug!r} exists.", field="slug")
    try:
        row = await svc.db.fetchrow(
            "INSERT INTO programme (slug, name_ar, name_fr, name_en, created_at) "
            "VALUES ({}, {}, {}, {}, {}) RETURNING id",
            slug,
            name_ar,
            name_fr,
            name_en,
            datetime.now(UTC),
        )
    except UNIQUE_VIOLATIONS as exc:
        if unique_violation(exc) is None:
            raise
        raise Conflict(f"The programme {slug!r} exists.", field="slug") from None
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
        try:
            await svc.db.execute(
                "INSERT INTO programme_school (programme_id, tenant_id) VALUES ({}, {})", programme["id"], school.id
            )
        except UNIQUE_VIOLATIONS as exc:
            if unique_violation(exc) is None:
                raise
            raise Conflict(
                f"{school.slug} was added to the programme {programme['slug']} meanwhile.", field="school"
            ) from None
        await audit.record(
            svc.db,
            actor_id=ctx.person_id,
            action="programme.add_school",
            object_type="programme",
            object_id=programme["slug"],
            tenant=school,
            after={"school": school.slug},
        )
    _changed(ctx)


async def remove_programme_school(
    ctx: RequestContext, programme: dict[str, Any], school: TenantInfo, reason: str
) -> None:
    """Take a school out of a programme, with a reason (audited); the programme's switches stop applying there.

    404 when the school is not (or no longer) in the programme, so two concurrent removals audit once.
    """
    reason = reason.strip()
    if len(reason) < 3:
        raise Invalid("reason", "Give a reason (at least 3 characters): it goes into the history.")
    if len(reason) > 2000:
        raise Invalid("reason", "At most 2000 characters.")
    svc = ctx.services
    removed = await svc.db.fetchval(
        "DELETE FROM programme_school WHERE programme_id = {} AND tenant_id = {} RETURNING id",
        programme["id"],
        school.id,
    )
    if removed is None:
        raise NotFoundException(f"{school.slug} is not in the programme {programme['slug']}.")
    await audit.record(
        svc.db,
        actor_id=ctx.person_id,
        action="programme.remove_school",
        object_type="programme",
        object_id=programme["slug"],
        tenant=school,
        before={"school": school.slug},
        reason=reason,
    )
    _changed(ctx)


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
        await svc.identity.new_password_hash(password) if password else None,
        full_name,
        full_name_ar,
        locale,
        True,
        datetime.now(UTC),
    )
    assert row is not None
    return int(row["id"])


#: Roles ``POST /api/v1/people`` grants at a node (``platform_admin`` and ``programme_manager`` are granted otherwise).
PEOPLE_ROLES = ("region_admin", "province_admin", "school_director", "supervisor", "teacher", "parent", "student")
#: Roles that only make sense at a school: a supervisor watches one school's pupils.
SCHOOL_ONLY_ROLES = frozenset({"supervisor"})


async def add_membership(ctx: RequestContext, person_id: int, role: str, node: TenantInfo) -> None:
    """Grant a role at a node (idempotent); the caller may not grant above its own reach."""
    if role not in ROLES or role == "programme_manager":
        raise ClientException(f"role: not a node role: {role!r}", extra=[{"key": "role", "message": "unknown"}])
    if role == "platform_admin" and node.kind != "platform":
        raise ClientException("platform_admin is granted at the platform node only")
    if role in SCHOOL_ONLY_ROLES and node.kind != "school":
        raise Invalid("role", "{role} is granted at a school", role=role)
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
    _changed(ctx, person_id)


# -- console: reach, programmes, matrix, history (branding and domains: tenants.branding) --------

#: Roles that use the administration console.
ADMIN_ROLES = frozenset({"platform_admin", "region_admin", "province_admin", "programme_manager"})
#: Where a module's effective state comes from, in the order the console explains it.
SOURCES = ("default", "platform", "region", "province", "programme", "school")


def is_platform_admin(grants: Any) -> bool:
    """Whether one of the grants is the platform administrator's (held at the root)."""
    return any(g.role == "platform_admin" and any(len(p) == 1 for p in g.paths) for g in grants)


async def console_scope(ctx: RequestContext, permission: str) -> Any:
    """The caller's whole reach for a permission, whatever tenant prefix the page is under."""
    from core.access import scope_for

    assert ctx.identity is not None
    grants = await ctx.services.grants.grants(ctx.identity.id)
    return scope_for(grants, ctx.services.permissions.roles_for(permission), None)


async def node_in_reach(ctx: RequestContext, slug: str, permission: str) -> TenantInfo:
    """A node the caller may act on for ``permission``: 404 when unknown, 403 when outside their reach."""
    node = await ctx.services.tenants.by_slug(slug)
    if node is None:
        raise NotFoundException(f"No tenant {slug!r}.")
    scope = await console_scope(ctx, permission)
    if not scope.covers(node.path):
        raise PermissionDeniedException(f"{node.slug} is outside what you administer.")
    return node


async def children(ctx: RequestContext, node: TenantInfo) -> list[TenantInfo]:
    """The direct children of a node, by name."""
    rows = await ctx.services.db.fetch("SELECT id FROM tenant WHERE parent_id = {} ORDER BY name_fr, slug", node.id)
    out = []
    for row in rows:
        child = await ctx.services.tenants.by_id(row["id"])
        if child is not None:
            out.append(child)
    return out


async def top_nodes(ctx: RequestContext, permission: str = "tenants.view") -> list[TenantInfo]:
    """The highest nodes the caller administers (the regions for a platform administrator)."""
    scope = await console_scope(ctx, permission)
    svc = ctx.services
    if scope.platform:
        return await children(ctx, await svc.tenants.root())
    nodes = [n for n in [await svc.tenants.by_id(i) for i in sorted(scope.nodes)] if n is not None]
    ids = {n.id for n in nodes}
    # A node below another one of the list is reached through it.
    return sorted((n for n in nodes if not ids & set(n.path[:-1])), key=lambda n: (n.path, n.name_fr))


async def list_programmes(ctx: RequestContext) -> list[dict[str, Any]]:
    """Programmes the caller manages (every programme for a platform administrator), with school counts."""
    svc = ctx.services
    assert ctx.identity is not None
    grants = await svc.grants.grants(ctx.identity.id)
    rows = await svc.db.fetch(
        "SELECT p.id, p.slug, p.name_ar, p.name_fr, p.name_en, "
        "(SELECT COUNT(*) FROM programme_school ps WHERE ps.programme_id = p.id) AS schools "
        "FROM programme p ORDER BY p.name_fr, p.slug"
    )
    if is_platform_admin(grants):
        return rows
    managed = {g.programme_id for g in grants if g.role == "programme_manager"}
    return [r for r in rows if r["id"] in managed]


async def programme_schools(ctx: RequestContext, programme: dict[str, Any]) -> list[TenantInfo]:
    """The schools of a programme, by region then name."""
    rows = await ctx.services.db.fetch(
        "SELECT tenant_id FROM programme_school WHERE programme_id = {}", programme["id"]
    )
    nodes = [await ctx.services.tenants.by_id(r["tenant_id"]) for r in rows]
    return sorted((n for n in nodes if n is not None), key=lambda n: (n.path[:-1], n.name_fr, n.slug))


async def programme_managers(ctx: RequestContext, programme: dict[str, Any]) -> list[dict[str, Any]]:
    """People who manage a programme."""
    return await ctx.services.db.fetch(
        "SELECT p.id, p.email, p.full_name, p.full_name_ar FROM membership m JOIN person p ON p.id = m.person_id "
        "WHERE m.programme_id = {} AND m.role = 'programme_manager' ORDER BY p.full_name, p.email",
        programme["id"],
    )


async def add_programme_manager(ctx: RequestContext, programme: dict[str, Any], email: str, full_name: str) -> int:
    """Make a person (created without a password when new) a manager of the programme; idempotent."""
    email = normalise_email(email)
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email) or len(email) > 254:
        raise Invalid("email", "Enter an e-mail address such as name@example.ma.")
    svc = ctx.services
    existing = await svc.db.fetchval("SELECT id FROM person WHERE email = {}", email)
    if existing is None and not full_name.strip():
        raise Invalid("full_name", "This person is new: enter their full name.")
    if len(full_name) > 200:
        raise Invalid("full_name", "At most 200 characters.")
    person_id = await create_person(
        ctx, email=email, full_name=full_name.strip(), full_name_ar="", locale="fr", password=None
    )
    exists = await svc.db.fetchval(
        "SELECT id FROM membership WHERE person_id = {} AND role = 'programme_manager' AND programme_id = {}",
        person_id,
        programme["id"],
    )
    if exists is None:
        await svc.db.execute(
            "INSERT INTO membership (person_id, role, programme_id, created_at) "
            "VALUES ({}, 'programme_manager', {}, {})",
            person_id,
            programme["id"],
            datetime.now(UTC),
        )
        for school in await programme_schools(ctx, programme):
            await audit.record(
                svc.db,
                actor_id=ctx.person_id,
                action="programme.add_manager",
                object_type="programme",
                object_id=programme["slug"],
                tenant=school,
                after={"manager": email},
            )
    _changed(ctx, person_id)
    return person_id


async def programme_settings(ctx: RequestContext, programme: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The programme's own module settings: module → ``{enabled, reason, updated_at, updated_by}``."""
    rows = await ctx.services.db.fetch(
        "SELECT module, enabled, reason, updated_at, updated_by FROM module_setting WHERE programme_id = {}",
        programme["id"],
    )
    return {r["module"]: {**r, "enabled": bool(r["enabled"])} for r in rows}


async def node_settings(ctx: RequestContext, nodes: list[TenantInfo]) -> dict[tuple[int, str], dict[str, Any]]:
    """The nodes' own module settings: ``(node id, module)`` → ``{enabled, reason, updated_at}``."""
    if not nodes:
        return {}
    rows = await ctx.services.db.fetch(
        "SELECT tenant_id, module, enabled, reason, updated_at FROM module_setting WHERE tenant_id IN {}",
        in_([n.id for n in nodes]),
    )
    return {(r["tenant_id"], r["module"]): {**r, "enabled": bool(r["enabled"])} for r in rows}


async def module_matrix(ctx: RequestContext, schools: list[TenantInfo]) -> list[dict[str, Any]]:
    """Per school, every toggleable module's effective state and the level that decided it."""
    svc = ctx.services
    modules = svc.plugins.toggleable()
    out = []
    for school in schools:
        programmes = await svc.tenants.programmes_of(school.id) if school.kind == "school" else ()
        cells = []
        for module in modules:
            state = await svc.modules.state(module, school.path, programmes)
            cells.append({"module": module, "enabled": state.enabled, "source": state.source, "id": state.source_id})
        out.append({"school": school, "cells": cells})
    return out


async def programme_history(ctx: RequestContext, programme: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """What changed for a programme (module switches, schools, managers), newest first.

    A programme change is recorded once per member school (so each region sees it); the history
    shows it once.
    """
    svc = ctx.services
    scope = await console_scope(ctx, "audit.read")
    async with svc.db.scoped(scope, write=False):
        rows = await svc.db.fetch(
            SQL(
                "SELECT a.id, a.at, a.action, a.object_type, a.object_id, a.before, a.after, a.reason, a.request_id, "
                "p.full_name, p.email FROM audit_log a LEFT JOIN person p ON p.id = a.actor_id "
                "WHERE ((a.object_type = 'programme_module' AND a.object_id LIKE {}) "
                "OR (a.object_type = 'programme' AND a.object_id = {})) AND {} ORDER BY a.id DESC LIMIT {}",
                programme["slug"] + ":%",
                programme["slug"],
                scope_sql(scope, "a"),
                limit * 10,
            )
        )
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rows:
        before, after = (_decoded(r["before"]), _decoded(r["after"]))
        key = (r["request_id"] if r["request_id"] not in ("", "-") else str(r["at"]), r["action"], r["object_id"])
        if key in seen:
            continue
        seen.add(key)
        module = r["object_id"].split(":", 1)[1] if r["object_type"] == "programme_module" else None
        out.append({**r, "before": before, "after": after, "module": module})
        if len(out) >= limit:
            break
    return out


def programme_name(programme: dict[str, Any], locale: str) -> str:
    """A programme's name in a language, falling back to French."""
    return programme.get(f"name_{locale}") or programme["name_fr"] or programme["slug"]


def _decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
