"""Tenant-management API: the tree, statuses, module switches, programmes and people."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody

from core.context import Ctx
from core.sql import SQL
from core.tenancy import TenantInfo
from tenants import service
from tenants.memberships import remove_membership

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=80, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")]
Name = Annotated[str, msgspec.Meta(max_length=200)]
Reason = Annotated[str, msgspec.Meta(min_length=3, max_length=2000)]


class TenantOut(msgspec.Struct):
    """A tenant node."""

    id: int
    kind: str
    slug: str
    parent_id: int | None
    code: str | None
    name_ar: str
    name_fr: str
    name_en: str
    status: str
    default_locale: str

    @classmethod
    def of(cls, t: TenantInfo) -> TenantOut:
        """From a :class:`TenantInfo`."""
        return cls(
            t.id, t.kind, t.slug, t.parent_id, t.code, t.name_ar, t.name_fr, t.name_en, t.status, t.default_locale
        )


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new region, province or school under ``parent``."""

    parent: Slug
    kind: Literal["region", "province", "school"]
    slug: Slug
    name_fr: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name_ar: Name = ""
    name_en: Name = ""
    code: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    default_locale: Literal["ar", "fr", "en"] = "fr"


class StatusChange(msgspec.Struct, forbid_unknown_fields=True):
    """Suspend or reactivate."""

    status: Literal["active", "suspended"]
    reason: Reason


class ModuleChange(msgspec.Struct, forbid_unknown_fields=True):
    """Switch a module on/off; ``null`` removes this level's own setting (inherit again)."""

    enabled: bool | None
    reason: Reason


class ModuleStateOut(msgspec.Struct):
    """A module's effective state at a node and what decided it."""

    module: str
    enabled: bool
    source: str
    source_id: int | None


class ProgrammeCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new programme."""

    slug: Slug
    name_fr: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name_ar: Name = ""
    name_en: Name = ""


class ProgrammeOut(msgspec.Struct):
    """A programme and its schools."""

    id: int
    slug: str
    name_fr: str
    schools: list[str]


class SchoolRef(msgspec.Struct, forbid_unknown_fields=True):
    """A school by slug."""

    school: Slug


class SchoolRemoval(msgspec.Struct, forbid_unknown_fields=True):
    """A school leaving a programme, and why (kept in the programme's history)."""

    school: Slug
    reason: Reason


class PersonCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A person and a role at a node."""

    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    full_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    role: Literal["region_admin", "province_admin", "school_director", "supervisor", "teacher", "parent", "student"]
    tenant: Slug
    full_name_ar: Name = ""
    locale: Literal["ar", "fr", "en"] = "fr"
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


class RoleRemoval(msgspec.Struct, forbid_unknown_fields=True):
    """A role at a node taken away, and why (kept in the audit log)."""

    role: Literal["region_admin", "province_admin", "school_director", "supervisor", "teacher", "parent", "student"]
    tenant: Slug
    reason: Reason


class PersonOut(msgspec.Struct):
    """The created or existing identity."""

    id: int
    email: str


async def module_states(ctx: Ctx, slug: str) -> list[ModuleStateOut]:
    """Every toggleable module's effective state at a node the caller can see."""
    svc = ctx.services
    node = await service.visible_node(ctx, slug)
    programmes = await svc.tenants.programmes_of(node.id) if node.kind == "school" else ()
    out = []
    for name in svc.plugins.toggleable():
        state = await svc.modules.state(name, node.path, programmes)
        out.append(ModuleStateOut(name, state.enabled, state.source, state.source_id))
    return out


async def programme_out(ctx: Ctx, slug: str) -> ProgrammeOut:
    """A programme the caller manages, with its schools."""
    row = await service.programme_by_slug(ctx, slug)
    schools = await ctx.services.db.fetch(
        "SELECT t.slug FROM programme_school ps JOIN tenant t ON t.id = ps.tenant_id WHERE ps.programme_id = {} "
        "ORDER BY t.slug",
        row["id"],
    )
    return ProgrammeOut(row["id"], row["slug"], row["name_fr"], [s["slug"] for s in schools])


class TenantController(Controller):
    """``/api/v1/tenants``."""

    path = "/api/v1/tenants"
    tags = ["tenants"]

    @get("/", opt={"permission": "tenants.view"})
    async def list_nodes(
        self, ctx: Ctx, kind: FromQuery[Literal["region", "province", "school"] | None] = None
    ) -> list[TenantOut]:
        """Nodes inside the caller's scope (narrowed to the request's tenant), by path."""
        where = SQL("kind = {}", kind) if kind else SQL("1=1")
        rows = await ctx.services.db.fetch(SQL("SELECT id, path FROM tenant WHERE {} ORDER BY path", where))
        out = []
        for row in rows:
            path = tuple(int(p) for p in row["path"].split("/") if p)
            if ctx.scope.covers(path):
                node = await ctx.services.tenants.by_id(row["id"])
                if node is not None:
                    out.append(TenantOut.of(node))
        return out

    @get("/{slug:str}", opt={"permission": "tenants.view"})
    async def get_node(self, ctx: Ctx, slug: FromPath[str]) -> TenantOut:
        """One node inside the caller's scope."""
        return TenantOut.of(await service.visible_node(ctx, slug))

    @post("/", opt={"permission": "tenants.manage"}, status_code=201)
    async def create_node(self, ctx: Ctx, data: JSONBody[TenantCreate]) -> TenantOut:
        """Create a region (platform admins), a province or a school (region admins of its region).

        A slug or a school code already in use answers 409 naming it, also when two requests race.
        """
        async with service.tenant_change(ctx, ctx.scope):
            parent = await service.visible_node(ctx, data.parent)
            node = await service.create_node(
                ctx,
                parent,
                kind=data.kind,
                slug=data.slug,
                code=data.code,
                name_ar=data.name_ar,
                name_fr=data.name_fr,
                name_en=data.name_en,
                default_locale=data.default_locale,
            )
        return TenantOut.of(node)

    @post("/{slug:str}/status", opt={"permission": "tenants.suspend"}, status_code=200)
    async def change_status(self, ctx: Ctx, slug: FromPath[str], data: JSONBody[StatusChange]) -> TenantOut:
        """Suspend or reactivate a node; its portal shows a clear page while suspended."""
        async with service.tenant_change(ctx, ctx.scope):
            node = await service.visible_node(ctx, slug)
            updated = await service.set_status(ctx, node, data.status, data.reason)
        return TenantOut.of(updated)

    @get("/{slug:str}/modules", opt={"permission": "modules.view"})
    async def node_modules(self, ctx: Ctx, slug: FromPath[str]) -> list[ModuleStateOut]:
        """Effective state of every module at a node, with where it comes from."""
        return await module_states(ctx, slug)

    @put("/{slug:str}/modules/{module:str}", opt={"permission": "modules.manage"})
    async def set_module(
        self, ctx: Ctx, slug: FromPath[str], module: FromPath[str], data: JSONBody[ModuleChange]
    ) -> list[ModuleStateOut]:
        """Switch a module at a node (a school, province, region or the platform default)."""
        async with ctx.services.db.scoped(ctx.scope):
            node = await service.visible_node(ctx, slug)
            await service.set_node_module(ctx, node, module, data.enabled, data.reason)
        return await module_states(ctx, slug)


class ProgrammeController(Controller):
    """``/api/v1/programmes``."""

    path = "/api/v1/programmes"
    tags = ["programmes"]

    @post("/", opt={"permission": "programmes.manage"}, status_code=201)
    async def create(self, ctx: Ctx, data: JSONBody[ProgrammeCreate]) -> ProgrammeOut:
        """Create a programme (platform administrators)."""
        async with ctx.services.db.scoped(ctx.scope):
            pid = await service.create_programme(ctx, data.slug, data.name_ar, data.name_fr, data.name_en)
        return ProgrammeOut(pid, data.slug, data.name_fr, [])

    @get("/{slug:str}", opt={"permission": "modules.view"})
    async def detail(self, ctx: Ctx, slug: FromPath[str]) -> ProgrammeOut:
        """A programme the caller manages, with its schools."""
        return await programme_out(ctx, slug)

    @post("/{slug:str}/schools", opt={"permission": "programmes.manage"}, status_code=200)
    async def add_school(self, ctx: Ctx, slug: FromPath[str], data: JSONBody[SchoolRef]) -> ProgrammeOut:
        """Add a school (from any region) to a programme; a concurrent duplicate answers 409."""
        async with service.tenant_change(ctx, ctx.scope):
            programme = await service.programme_by_slug(ctx, slug)
            school = await service.visible_node(ctx, data.school)
            await service.add_programme_school(ctx, programme, school)
        return await programme_out(ctx, slug)

    @post("/{slug:str}/schools/remove", opt={"permission": "programmes.manage"}, status_code=200)
    async def remove_school(self, ctx: Ctx, slug: FromPath[str], data: JSONBody[SchoolRemoval]) -> ProgrammeOut:
        """Take a school out of a programme, with a reason (platform administrators; audited; 404 if not in it)."""
        async with service.tenant_change(ctx, ctx.scope):
            programme = await service.programme_by_slug(ctx, slug)
            node = await service.visible_node(ctx, data.school)
            await service.remove_programme_school(ctx, programme, node, data.reason)
        return await programme_out(ctx, slug)

    @put("/{slug:str}/modules/{module:str}", opt={"permission": "modules.manage"})
    async def set_module(
        self, ctx: Ctx, slug: FromPath[str], module: FromPath[str], data: JSONBody[ModuleChange]
    ) -> dict[str, object]:
        """Switch a module for every school of the programme (programme managers)."""
        async with ctx.services.db.scoped(ctx.scope):
            programme = await service.programme_by_slug(ctx, slug)
            await service.set_programme_module(ctx, programme, module, data.enabled, data.reason)
        return {"programme": slug, "module": module, "enabled": data.enabled}


class PeopleController(Controller):
    """``/api/v1/people``."""

    path = "/api/v1/people"
    tags = ["people"]

    @post("/", opt={"permission": "people.manage"}, status_code=201)
    async def create(self, ctx: Ctx, data: JSONBody[PersonCreate]) -> PersonOut:
        """Create (or find) an identity and grant it a role at a node inside the caller's scope."""
        async with service.tenant_change(ctx, ctx.scope):
            node = await service.visible_node(ctx, data.tenant)
            if data.role == "region_admin" and node.kind != "region":
                raise NotFoundException("region_admin is granted at a region.")
            person_id = await service.create_person(
                ctx,
                email=data.email,
                full_name=data.full_name,
                full_name_ar=data.full_name_ar,
                locale=data.locale,
                password=data.password,
            )
            await service.add_membership(ctx, person_id, data.role, node)
        return PersonOut(person_id, data.email.strip().lower())

    @post("/{person_id:int}/roles/remove", opt={"permission": "people.manage"}, status_code=204)
    async def remove_role(self, ctx: Ctx, person_id: FromPath[int], data: JSONBody[RoleRemoval]) -> None:
        """Take a role at a node inside the caller's scope away from a person (audited; 404 if not held there)."""
        async with service.tenant_change(ctx, ctx.scope):
            node = await service.visible_node(ctx, data.tenant)
            await remove_membership(ctx, person_id, data.role, node, data.reason)


ROUTES = [TenantController, ProgrammeController, PeopleController]
