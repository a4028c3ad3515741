"""The request pipeline: tenant prefix routing, then authentication, tenancy, module and permission checks.

``TenantPrefix`` wraps the whole ASGI app and turns ``/t/<slug>/rest`` into ``/rest`` with the
slug kept in the scope state, so every route exists both under a tenant prefix and on a
tenant host name. ``AccessMiddleware`` runs after routing (it needs the handler's ``opt``)
and builds the :class:`~core.context.RequestContext`:

1. tenant: the path prefix, else (portal pages) the host name, else (API) the token's tenant;
   unknown → 404, suspended → 403 with a clear page;
2. person: a bearer token on ``/api/``, the session cookie elsewhere (CSRF on unsafe methods);
3. module: a route of a module switched off for the tenant answers 404;
4. permission: every route declares ``opt["permission"]``; the person's grants give the scope;
5. reach: a write (POST/PUT/PATCH/DELETE) under a tenant needs a scope covering that tenant
   (:func:`check_reach`), so a school's member cannot write at its region's address;
6. bulk exports: a route with ``opt["bulk_export"]`` is limited per account and hour and audited
   (:func:`core.privacy.bulk.gate`);
7. read routing: a GET of a route with ``opt["replica"]`` reads from a read replica, and a write sends its
   author's next reads to the primary for a while (:func:`core.read_routing.run_routed`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from core.access import roles_at, scope_for
from core.context import RequestContext
from core.errors import Forbidden
from core.i18n import locale_var
from core.identity import AuthError, SessionInfo
from core.observability import tenant_var
from core.permissions import AUTHENTICATED, PUBLIC
from core.privacy.bulk import gate as bulk_export_gate
from core.read_routing import run_routed
from core.scope import Scope as DataScope
from core.services import Services
from core.tenancy import SLUG_RE, TenantInfo

log = logging.getLogger("madrasa.tenancy")
SESSION_COOKIE = "madrasa_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOCALE_COOKIE = "madrasa_lang"
LOCALES = ("ar", "fr", "en")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PREFIX_RE = re.compile(r"^/t/([^/]+)(/.*)?$")


class TenantSuspended(HTTPException):
    """The tenant (or an ancestor) is suspended."""

    status_code = 403


class TooManyRequests(HTTPException):
    """Login throttled."""

    status_code = 429


class TenantPrefix:
    """Pure ASGI: strip a ``/t/<slug>`` prefix before routing and remember the slug."""

    def __init__(self, app: ASGIApp, services: Services | None = None) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            match = _PREFIX_RE.match(scope["path"])
            if match:
                slug, rest = match.group(1), match.group(2) or "/"
                state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
                state["tenant_slug"] = slug
                state["tenant_prefix"] = f"/t/{slug}"
                state["prefix_tenant"] = await self._tenant(slug)
                # Rewritten in place so outer layers (metrics) see what routing matched.
                scope["path"] = rest
                scope["raw_path"] = rest.encode()
        await self.app(scope, receive, send)

    async def _tenant(self, slug: str) -> TenantInfo | None:
        """The tenant the prefix names, for error pages raised before routing (an unknown address under it):
        they keep its branding and language. Best effort: the database being unreachable leaves it unset, and the
        access middleware reports that properly on a routed request."""
        if self.services is None or not SLUG_RE.match(slug):
            return None
        try:
            return await self.services.tenants.by_slug(slug)
        except Exception:  # a page's decoration, never a reason to fail here
            log.debug("tenant %r not resolved for the error page", slug, exc_info=True)
            return None


def is_api(path: str) -> bool:
    """Whether a path belongs to the JSON API (bearer auth, problem-details errors)."""
    return path.startswith("/api/")


class AccessMiddleware(ASGIMiddleware):
    """Builds the request context and enforces tenancy, modules and permissions."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the request and store its context in ``scope["state"]["ctx"]``."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        services: Services = scope["litestar_app"].state.services  # type: ignore[typeddict-item]
        handler = scope["route_handler"]  # type: ignore[typeddict-item]
        if is_framework_options(handler):
            await next_app(scope, receive, send)  # Litestar's automatic OPTIONS answer: headers only
            return
        permission = handler.opt.get("permission")
        if permission is None or permission not in services.permissions:
            raise PermissionDeniedException(f"Route {scope['path']} declares no known permission.")
        state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
        api = is_api(scope["path"])
        ctx = RequestContext(services=services, permission=permission)
        ctx.request_id = state.get("request_id", "-")
        ctx.prefix = state.get("tenant_prefix", "")
        ctx.locale = _locale(request, ctx)  # the reader's choice, for an error raised before the person is known
        state["ctx"] = ctx

        # 1. tenant named by the path or the host
        slug = state.get("tenant_slug")
        if slug is not None:
            ctx.tenant = await services.tenants.by_slug(slug) if SLUG_RE.match(slug) else None
            if ctx.tenant is None:
                raise NotFoundException(f"No tenant {slug!r}.")
        elif not api:
            host = request.headers.get("host", "")
            ctx.tenant = await services.tenants.by_host(host)
            if ctx.tenant is None and host and _looks_like_tenant_host(host, services.tenants.base_domain):
                raise NotFoundException(f"No tenant serves {host.split(':')[0]!r}.")

        # 2. person
        session = await self._authenticate(request, services, api, permission)
        if session is not None:
            ctx.session = session
            ctx.identity = session.identity
            if ctx.tenant is None and api and session.tenant_id is not None:
                ctx.tenant = await services.tenants.by_id(session.tenant_id)
            if session.kind == "web" and scope["method"] not in SAFE_METHODS:
                await self._check_csrf(request, session)

        tenant = ctx.tenant
        if tenant is not None:
            state["tenant_slug"] = tenant.slug
            if await services.tenants.effective_status(tenant) != "active":
                raise TenantSuspended(f"{tenant.title()} is suspended. Its data is kept; contact your academy.")

        # 3. module switch (after "who are you?": an anonymous call learns nothing of modules, and a browser
        # calling the API with only its session cookie is told to use a token, not "not found")
        module = handler.opt.get("module")
        if module is not None and ctx.identity is None and permission != PUBLIC:
            raise NotAuthorizedException("Use an Authorization: Bearer token." if api else "Log in first.")
        if tenant is not None:
            ctx.disabled_modules = await services.disabled_for(tenant.path)
        if module is not None and (tenant is None or module in ctx.disabled_modules):
            raise NotFoundException("Not found.")

        # 4. permission and scope
        ctx.locale = _locale(request, ctx)
        if permission == PUBLIC:
            pass
        elif ctx.identity is None:
            raise NotAuthorizedException("Log in first.")
        elif permission != AUTHENTICATED:
            grants = await services.grants.grants(ctx.identity.id)
            ctx.scope = scope_for(grants, services.permissions.roles_for(permission), tenant)
            ctx.roles = roles_at(grants, tenant)
            # ``scope_optional`` pages (a programme manager's console before the programme has
            # schools) admit a holder of the permission's role even when the scope is empty.
            optional = handler.opt.get("scope_optional") and ctx.roles & services.permissions.roles_for(permission)
            if not ctx.scope and not optional:
                raise PermissionDeniedException("You have no access to this here.")
        elif ctx.identity is not None:
            grants = await services.grants.grants(ctx.identity.id)
            ctx.roles = roles_at(grants, tenant)
            ctx.scope = DataScope.nothing()

        # 5. reach: writes at the tenant itself, not only somewhere below it
        check_reach(scope["method"], ctx)
        tenant_token = tenant_var.set(tenant.slug if tenant else "-")
        locale_token = locale_var.set(ctx.locale)
        export = handler.opt.get("bulk_export")

        async def call(reply: Send) -> None:
            if export:
                await bulk_export_gate(ctx, export, scope, receive, reply, next_app)
            else:
                await next_app(scope, receive, reply)

        try:
            # 7. reads of a route marked ``replica`` may go to a read replica; a write starts read-your-writes
            await run_routed(services, handler.opt, scope, request.cookies, send, call)
        finally:
            tenant_var.reset(tenant_token)
            locale_var.reset(locale_token)

    async def _authenticate(
        self, request: Request[Any, Any, Any], services: Services, api: bool, permission: str
    ) -> SessionInfo | None:
        if api:
            header = request.headers.get("authorization", "")
            if not header:
                return None
            kind, _, token = header.partition(" ")
            if kind.lower() != "bearer" or not token:
                raise NotAuthorizedException("Use an Authorization: Bearer token.")
            try:
                return await services.identity.verify_access(token.strip())
            except AuthError as exc:
                raise NotAuthorizedException(str(exc)) from None
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        return await services.identity.web_session(cookie)

    async def _check_csrf(self, request: Request[Any, Any, Any], session: SessionInfo) -> None:
        sent = request.headers.get(CSRF_HEADER)
        if not sent and request.content_type[0] in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            sent = form.get(CSRF_FIELD)
        if not sent or not isinstance(sent, str) or sent != session.csrf_token:
            raise PermissionDeniedException("Missing or wrong CSRF token; reload the page and try again.")


def check_reach(method: str, ctx: RequestContext) -> None:
    """Refuse a write under a tenant that the caller's scope does not cover (403).

    The rule: an unsafe method (not GET/HEAD/OPTIONS), a tenant (prefix, host or token), and a
    route permission held through tenant roles (not ``public``, not ``authenticated``) need
    ``ctx.scope.covers(tenant.path)``. ``scope_for`` narrows a grant *below* the tenant to that
    grant's subtree, so without this a director of one school, calling at the region's address,
    would pass the permission check with their school's scope while the handler writes at the
    region (``ctx.tenant``). Public routes (login) and ``authenticated`` ones (logout) have no
    tenant scope and are not concerned; requests without a tenant neither.
    """
    tenant = ctx.tenant
    if method in SAFE_METHODS or tenant is None or ctx.permission in (PUBLIC, AUTHENTICATED):
        return
    if not ctx.scope.covers(tenant.path):
        raise Forbidden(
            "Your role does not cover {tenant} as a whole: make this change at the address of your own "
            "school or tenant.",
            code="tenant_not_covered",
            tenant=tenant.title(),
        )


def is_framework_options(handler: Any) -> bool:
    """Whether a handler is the ``OPTIONS`` responder Litestar adds to every path (it reads no data)."""
    fn = getattr(handler, "fn", None)
    return getattr(fn, "__module__", "").startswith("litestar.") and handler.http_methods == {"OPTIONS"}


def _looks_like_tenant_host(host: str, base_domain: str) -> bool:
    name = host.split(":", 1)[0].lower()
    return name.endswith("." + base_domain)


def _locale(request: Request[Any, Any, Any], ctx: RequestContext) -> str:
    chosen = request.query_params.get("lang") or request.cookies.get(LOCALE_COOKIE)
    if chosen in LOCALES:
        return chosen  # type: ignore[return-value]
    if ctx.identity is not None and ctx.identity.locale in LOCALES:
        return ctx.identity.locale
    if ctx.tenant is not None and ctx.tenant.default_locale in LOCALES:
        return ctx.tenant.default_locale
    return "fr"


def get_ctx(request: Request[Any, Any, Any]) -> RequestContext:
    """Dependency: the request's context."""
    return request.scope["state"]["ctx"]  # type: ignore[typeddict-item,no-any-return]
