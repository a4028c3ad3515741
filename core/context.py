"""The per-request context handed to handlers: who is calling, for which tenant, with what scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.di import NamedDependency

from core.identity import Identity, SessionInfo
from core.scope import Scope
from core.services import Services
from core.tenancy import TenantInfo


@dataclass
class RequestContext:
    """Built by :class:`core.middleware.AccessMiddleware` once the route is known."""

    services: Services
    permission: str
    identity: Identity | None = None
    session: SessionInfo | None = None
    tenant: TenantInfo | None = None
    #: The data a handler may touch for ``permission``; pass it to ``db.scoped``.
    scope: Scope = field(default_factory=Scope.nothing)
    #: Roles the person holds at (or above) the tenant.
    roles: frozenset[str] = frozenset()
    #: Modules switched off for the tenant (their routes 404 and their contributions vanish).
    disabled_modules: frozenset[str] = frozenset()
    locale: str = "fr"
    #: URL prefix of the tenant portal (``/t/<slug>`` or empty when the host names the tenant).
    prefix: str = ""
    request_id: str = "-"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def person_id(self) -> int | None:
        """Id of the logged-in person."""
        return self.identity.id if self.identity else None

    def require_tenant(self) -> TenantInfo:
        """The tenant, or a 404 when the request names none."""
        from litestar.exceptions import NotFoundException

        if self.tenant is None:
            raise NotFoundException("This address needs a tenant: use /t/<slug>/… or a tenant host name.")
        return self.tenant

    def url(self, path: str) -> str:
        """A portal URL for this tenant."""
        return f"{self.prefix}{path}"

    async def scope_for(self, permission: str) -> Scope:
        """The scope this person has for another permission at the same tenant."""
        from core.access import scope_for

        if self.identity is None:
            return Scope.nothing()
        grants = await self.services.grants.grants(self.identity.id)
        return scope_for(grants, self.services.permissions.roles_for(permission), self.tenant)

    async def scope_everywhere(self, permission: str) -> Scope:
        """The person's scope for a permission in every tenant they belong to, whatever tenant the address names.

        For what follows the person rather than the tenant: a guardian's children in two regions, a teacher's
        week across schools. Rows stay limited to where the person holds the permission's roles."""
        from core.access import scope_for

        if self.identity is None:
            return Scope.nothing()
        grants = await self.services.grants.grants(self.identity.id)
        return scope_for(grants, self.services.permissions.roles_for(permission), None)


#: Handler parameter type for the request context: ``async def handler(ctx: Ctx) -> …``.
Ctx = NamedDependency[RequestContext]
