"""Authentication API: tokens, refresh, logout, password reset, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import JSONBody

from core.context import Ctx
from core.identity import AuthError, check_password_strength, normalise_email
from core.mail import Mail, public_link
from core.middleware import TooManyRequests
from core.permissions import AUTHENTICATED, PUBLIC
from core.services import Services
from core.tenancy import TenantInfo

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Log in with e-mail and password; ``tenant`` (a slug) sets the token's default tenant.

    ``device`` is the known-device value an earlier login returned: failures of the account from other
    clients do not slow a known device (only its own do). ``remember`` ("remember this device") makes the
    refresh token family last ``MADRASA_REMEMBERED_SESSION_TTL`` (90 days by default) instead of
    ``MADRASA_REFRESH_TOKEN_TTL``; it is listed, and revocable, under ``/api/v1/me/sessions``.
    """

    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    tenant: str | None = None
    device: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    remember: bool = False


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Exchange a refresh token for new tokens."""

    refresh_token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


class TokenResponse(msgspec.Struct, omit_defaults=True):
    """Bearer tokens; a login also returns ``device``, to send back as the known-device value next time."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    device: str | None = None


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Ask for a password-reset e-mail."""

    email: Email


class ResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    """Set a new password with a one-time token."""

    token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class MembershipOut(msgspec.Struct):
    """A role held somewhere."""

    role: str
    tenant: str | None
    programme_id: int | None


class MeResponse(msgspec.Struct):
    """The logged-in person."""

    id: int
    email: str
    full_name: str
    full_name_ar: str
    locale: str
    tenant: str | None
    memberships: list[MembershipOut]


def client_ip(request: Request[Any, Any, Any]) -> str:
    """The client's address as the server saw it.

    ``madrasa serve`` believes ``X-Forwarded-For`` only from ``MADRASA_TRUSTED_PROXIES`` (none by default).
    """
    return request.client.host if request.client else "unknown"


RESET_SENT = "If the address has an account, a reset link has been sent."


async def request_password_reset(services: Services, email: str, ip: str, tenant: TenantInfo | None) -> None:
    """Mail a one-time reset link to an account, if there is one (the API and the portal's page).

    The link is built from the configured public URL or the tenant's registered host, never from the
    request's headers. Raises :class:`AuthError` (429) when the account or address is throttled.
    """
    email = normalise_email(email)
    await services.identity.check_throttle(email, ip)
    started = await services.identity.start_password_reset(email)
    if started is None:
        return
    _, token = started
    link = await public_link(services.settings, services.db, f"/password-reset/{token}", tenant)
    await services.mailer.send(
        Mail(
            to=email,
            subject="madrasa: reset your password",
            body=f"Open this link within an hour to choose a new password:\n{link}\n\n"
            f"Token: {token}\n\nIf you did not ask for it, ignore this message.",
            link=link,
        )
    )


def _auth_error(exc: AuthError) -> Exception:
    if exc.status == 429:
        return TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after or 60)})
    if exc.status == 400:
        return ValidationException(str(exc))
    return NotAuthorizedException(str(exc))


class AuthController(Controller):
    """``/api/v1/auth``."""

    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/token", opt={"permission": PUBLIC}, status_code=200)
    async def token(self, ctx: Ctx, data: JSONBody[TokenRequest], request: Request[Any, Any, Any]) -> TokenResponse:
        """Log in: returns a short-lived access token and a rotating refresh token."""
        svc = ctx.services
        try:
            identity = await svc.identity.authenticate(data.email, data.password, client_ip(request), data.device)
        except AuthError as exc:
            raise _auth_error(exc) from None
        tenant_id = None
        if data.tenant:
            tenant = await svc.tenants.by_slug(data.tenant)
            grants = await svc.grants.grants(identity.id)
            if tenant is None or not any(
                path[-1] in tenant.path or tenant.id in path for g in grants for path in g.paths
            ):
                raise NotAuthorizedException("You have no membership in that tenant.")
            tenant_id = tenant.id
        tokens = await svc.identity.issue_tokens(
            identity, tenant_id, request.headers.get("user-agent", ""), client_ip(request), remember=data.remember
        )
        return TokenResponse(**tokens, device=svc.identity.remember_device(identity.email, data.device))

    @post("/refresh", opt={"permission": PUBLIC}, status_code=200)
    async def refresh(self, ctx: Ctx, data: JSONBody[RefreshRequest]) -> TokenResponse:
        """Rotate the refresh token; a reused one revokes the session."""
        try:
            return TokenResponse(**await ctx.services.identity.refresh(data.refresh_token))
        except AuthError as exc:
            raise _auth_error(exc) from None

    @post("/logout", opt={"permission": AUTHENTICATED}, status_code=204)
    async def logout(self, ctx: Ctx) -> None:
        """Revoke the current session and its tokens."""
        assert ctx.session is not None
        await ctx.services.identity.revoke(ctx.session.session_id)

    @post("/password-reset", opt={"permission": PUBLIC}, status_code=202)
    async def password_reset(
        self, ctx: Ctx, data: JSONBody[ResetRequest], request: Request[Any, Any, Any]
    ) -> dict[str, str]:
        """E-mail a one-time reset link (the answer is the same whether or not the account exists)."""
        try:
            await request_password_reset(ctx.services, data.email, client_ip(request), ctx.tenant)
        except AuthError as exc:
            raise _auth_error(exc) from None
        return {"status": RESET_SENT}

    @post("/password-reset/confirm", opt={"permission": PUBLIC}, status_code=200)
    async def password_reset_confirm(self, ctx: Ctx, data: JSONBody[ResetConfirm]) -> dict[str, str]:
        """Set a new password with a reset token; every session of the account ends."""
        weak = check_password_strength(data.password)
        if weak:
            raise ValidationException(f"password {weak}", extra=[{"key": "password", "message": weak}])
        try:
            person_id = await ctx.services.identity.finish_password_reset(data.token, data.password)
        except AuthError as exc:
            raise _auth_error(exc) from None
        ctx.services.grants.invalidate(person_id)
        return {"status": "Password changed; log in again."}


@get("/api/v1/me", opt={"permission": AUTHENTICATED}, tags=["auth"])
async def me(ctx: Ctx) -> MeResponse:
    """The logged-in person, the token's tenant and every membership."""
    assert ctx.identity is not None
    svc = ctx.services
    rows = await svc.db.fetch(
        "SELECT m.role, t.slug, m.programme_id FROM membership m LEFT JOIN tenant t ON t.id = m.tenant_id "
        "WHERE m.person_id = {} ORDER BY m.id",
        ctx.identity.id,
    )
    ident = ctx.identity
    return MeResponse(
        ident.id,
        ident.email,
        ident.full_name,
        ident.full_name_ar,
        ident.locale,
        ctx.tenant.slug if ctx.tenant else None,
        [MembershipOut(r["role"], r["slug"], r["programme_id"]) for r in rows],
    )
