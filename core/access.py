"""Who may do what where: a person's grants and the tenant scope they yield for a permission."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from core.cache import TTLCache
from core.db import Database
from core.invalidation import GRANTS, InvalidationBus
from core.scope import Scope
from core.tenancy import TenantInfo, parse_path

GRANTS_CACHE_SECONDS = 30.0


class Grant(msgspec.Struct, frozen=True):
    """A membership as access control sees it: a role over one or more tenant paths."""

    role: str
    #: Paths (root first) of the nodes the role covers: one node, or a programme's schools.
    paths: tuple[tuple[int, ...], ...]
    tenant_id: int | None = None
    programme_id: int | None = None


def scope_for(grants: Iterable[Grant], roles: frozenset[str], tenant: TenantInfo | None) -> Scope:
    """The scope a set of grants gives for roles holding a permission, narrowed to ``tenant``.

    A grant at node G and a requested tenant T: if G is T or above it, the scope is T's subtree;
    if G lies below T, it is G's subtree; otherwise nothing. Without a tenant the scope is the
    union of the grants' subtrees. The platform node maps to the platform scope. Pure function.
    """
    nodes: set[int] = set()
    for grant in grants:
        if grant.role not in roles:
            continue
        for path in grant.paths:
            if tenant is None:
                if len(path) == 1:
                    return Scope.everything()
                nodes.add(path[-1])
            elif path[-1] in tenant.path:
                if len(tenant.path) == 1:
                    return Scope.everything()
                nodes.add(tenant.id)
            elif tenant.id in path:
                nodes.add(path[-1])
    return Scope(frozenset(nodes))


def roles_at(grants: Iterable[Grant], tenant: TenantInfo | None) -> frozenset[str]:
    """Roles whose grants cover ``tenant`` (all roles held anywhere when ``tenant`` is ``None``)."""
    out = set()
    for grant in grants:
        if tenant is None or any(path[-1] in tenant.path for path in grant.paths):
            out.add(grant.role)
    return frozenset(out)


class GrantStore:
    """Loads a person's grants, cached briefly; membership writers call :meth:`invalidate`."""

    def __init__(
        self, db: Database, cache_seconds: float = GRANTS_CACHE_SECONDS, bus: InvalidationBus | None = None
    ) -> None:
        self.db = db
        self.bus = bus
        self._cache: TTLCache[int, tuple[Grant, ...]] = TTLCache(cache_seconds)
        if bus is not None:
            bus.subscribe(GRANTS, self.forget)

    def invalidate(self, person_id: int | None = None) -> None:
        """Forget one person's grants, or everyone's, in every process (once the open transaction commits)."""
        if self.bus is None:
            self.forget(person_id)
        else:
            self.bus.publish(GRANTS, person_id)

    def forget(self, person_id: object = None) -> None:
        """Forget one person's grants, or everyone's, in this process."""
        if person_id is None:
            self._cache.clear()
        elif isinstance(person_id, int):
            self._cache.pop(person_id)

    async def grants(self, person_id: int) -> tuple[Grant, ...]:
        """Every grant of a person."""
        return await self._cache.get(person_id, lambda: self._load(person_id))

    async def _load(self, person_id: int) -> tuple[Grant, ...]:
        rows = await self.db.fetch(
            "SELECT m.role, m.tenant_id, m.programme_id, t.path FROM membership m "
            "LEFT JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {} ORDER BY m.id",
            person_id,
        )
        grants: list[Grant] = []
        for r in rows:
            if r["programme_id"] is not None:
                schools = await self.db.fetch(
                    "SELECT t.path FROM programme_school ps JOIN tenant t ON t.id = ps.tenant_id "
                    "WHERE ps.programme_id = {}",
                    r["programme_id"],
                )
                paths = tuple(parse_path(s["path"]) for s in schools)
                grants.append(Grant(r["role"], paths, None, r["programme_id"]))
            elif r["path"] is not None:
                grants.append(Grant(r["role"], (parse_path(r["path"]),), r["tenant_id"], None))
        return tuple(grants)
