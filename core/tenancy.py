"""The tenant tree as the request path sees it: lookups by id, slug and host, with a short cache.

Resolution rules: a portal request names its tenant by host name (a custom domain or
``<slug>.<base domain>``) or a ``/t/<slug>/`` path prefix; an API request by the ``/t/<slug>/``
prefix or its token. Headers other than ``Host`` never choose a tenant.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from core.cache import TTLCache
from core.db import Database
from core.invalidation import TENANTS, InvalidationBus
from core.sql import SQL, ident, join

KINDS = ("platform", "region", "province", "school")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
CACHE_SECONDS = 10.0


class TenantInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant node with what a request needs to know about it."""

    id: int
    kind: Literal["platform", "region", "province", "school"]
    parent_id: int | None
    #: Ids from the root down to this node, inclusive.
    path: tuple[int, ...]
    slug: str
    code: str | None
    name_ar: str
    name_fr: str
    name_en: str
    status: str
    default_locale: str
    display_name: str | None
    logo_key: str | None
    primary_color: str
    secondary_color: str

    def name(self, locale: str = "fr") -> str:
        """The node's name in a language, falling back to French."""
        return getattr(self, f"name_{locale}", "") or self.name_fr or self.name_en or self.slug

    def title(self, locale: str = "fr") -> str:
        """What the portal shows as the tenant's name."""
        return self.display_name or self.name(locale)

    def level_id(self, kind: str) -> int | None:
        """The id of this node's ancestor (or self) of a given kind."""
        index = KINDS.index(kind)
        return self.path[index] if len(self.path) > index else None

    @property
    def region_id(self) -> int | None:
        """Region of this node (``None`` for the platform)."""
        return self.level_id("region")

    @property
    def province_id(self) -> int | None:
        """Province of this node, if it sits at or below a province."""
        return self.level_id("province")

    @property
    def school_id(self) -> int | None:
        """The school itself, for a school node."""
        return self.level_id("school")

    def scope_columns(self) -> dict[str, int | None]:
        """Values for the ``region_id``/``province_id``/``school_id`` columns of rows it owns."""
        return {"region_id": self.region_id, "province_id": self.province_id, "school_id": self.school_id}

    def covers(self, other: TenantInfo) -> bool:
        """Whether ``other`` is this node or one of its descendants."""
        return self.id in other.path


def parse_path(path: str) -> tuple[int, ...]:
    """``"1/2/7/"`` → ``(1, 2, 7)``."""
    return tuple(int(p) for p in path.split("/") if p)


_NAMES = (
    "id",
    "kind",
    "parent_id",
    "path",
    "slug",
    "code",
    "name_ar",
    "name_fr",
    "name_en",
    "status",
    "default_locale",
    "display_name",
    "logo_key",
    "primary_color",
    "secondary_color",
)
#: ``SELECT … FROM tenant``: every column a :class:`TenantInfo` reads.
_SELECT = SQL("SELECT {} FROM tenant", join(", ", [ident(c) for c in _NAMES]))
#: The same columns of ``tenant t``, for joins.
_SELECT_T = SQL("SELECT {} FROM tenant t", join(", ", [ident("t", c) for c in _NAMES]))


def _row_to_info(row: dict[str, Any]) -> TenantInfo:
    data = dict(row)
    data["path"] = parse_path(data["path"])
    return msgspec.convert(data, TenantInfo)


class TenantDirectory:
    """Cached reads of the tenant tree; writers call :meth:`invalidate`."""

    def __init__(
        self, db: Database, base_domain: str, cache_seconds: float = CACHE_SECONDS, bus: InvalidationBus | None = None
    ) -> None:
        self.db = db
        self.base_domain = base_domain.lower().strip(".")
        self.bus = bus
        self._cache: TTLCache[Any, Any] = TTLCache(cache_seconds)
        if bus is not None:
            bus.subscribe(TENANTS, self.forget)

    def invalidate(self) -> None:
        """Forget cached nodes (after a change to the tree, a status, branding or domains), in every process."""
        if self.bus is None:
            self.forget()
        else:
            self.bus.publish(TENANTS)

    def forget(self, _key: object = None) -> None:
        """Forget cached nodes in this process."""
        self._cache.clear()

    async def by_id(self, tenant_id: int) -> TenantInfo | None:
        """A node by id."""

        async def load() -> TenantInfo | None:
            row = await self.db.fetchrow(SQL("{} WHERE id = {}", _SELECT, tenant_id))
            return _row_to_info(row) if row else None

        return await self._cache.get(("id", tenant_id), load)

    async def by_slug(self, slug: str) -> TenantInfo | None:
        """A node by slug (``None`` for a malformed or unknown slug)."""
        slug = slug.lower()
        if not SLUG_RE.match(slug):
            return None

        async def load() -> TenantInfo | None:
            row = await self.db.fetchrow(SQL("{} WHERE slug = {}", _SELECT, slug))
            return _row_to_info(row) if row else None

        return await self._cache.get(("slug", slug), load)

    async def by_host(self, host: str) -> TenantInfo | None:
        """The node a host name serves: ``<slug>.<base domain>`` or a registered custom domain."""
        host = host.split(":", 1)[0].lower().rstrip(".")
        if not host or host in {self.base_domain, "localhost", "127.0.0.1", "[::1]", "testserver"}:
            return None
        suffix = "." + self.base_domain
        if host.endswith(suffix):
            label = host[: -len(suffix)]
            return await self.by_slug(label) if "." not in label else None

        async def load() -> TenantInfo | None:
            row = await self.db.fetchrow(
                SQL("{} JOIN tenant_domain d ON d.tenant_id = t.id WHERE d.host = {}", _SELECT_T, host)
            )
            return _row_to_info(row) if row else None

        return await self._cache.get(("host", host), load)

    async def ancestors(self, tenant: TenantInfo) -> list[TenantInfo]:
        """The nodes above ``tenant``, root first."""
        out = []
        for node_id in tenant.path[:-1]:
            node = await self.by_id(node_id)
            if node is not None:
                out.append(node)
        return out

    async def effective_status(self, tenant: TenantInfo) -> str:
        """``suspended`` when the node or any ancestor is suspended, else ``active``."""

        async def load() -> str:
            if tenant.status != "active":
                return tenant.status
            for node in await self.ancestors(tenant):
                if node.status != "active":
                    return node.status
            return "active"

        return await self._cache.get(("status", tenant.id), load)

    async def programmes_of(self, school_id: int) -> tuple[int, ...]:
        """Programmes a school belongs to."""

        async def load() -> tuple[int, ...]:
            rows = await self.db.fetch(
                "SELECT programme_id FROM programme_school WHERE tenant_id = {} ORDER BY programme_id", school_id
            )
            return tuple(r["programme_id"] for r in rows)

        return await self._cache.get(("programmes", school_id), load)

    async def root(self) -> TenantInfo:
        """The platform node."""

        async def load() -> TenantInfo:
            row = await self.db.fetchrow(SQL("{} WHERE kind = 'platform'", _SELECT))
            if row is None:
                raise LookupError("the platform node is missing: run `madrasa migrate` and `madrasa init`")
            return _row_to_info(row)

        return await self._cache.get("root", load)
