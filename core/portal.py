"""The branded portal shell: landing, login, password reset, logout, language, home with plugin menus, manifest."""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.enums import RequestEncodingType
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from core.access import roles_at
from core.api.auth import RESET_SENT, client_ip, request_password_reset
from core.context import Ctx
from core.i18n import LOCALES, gettext_, text_direction
from core.identity import DEVICE_COOKIE, DEVICE_TTL, THROTTLED_WAIT, AuthError, check_password_strength
from core.middleware import LOCALE_COOKIE, SESSION_COOKIE
from core.permissions import AUTHENTICATED, PUBLIC
from core.plugins import DashboardCard, MenuItem
from core.rendering import page
from core.school.portal import home_sections
from core.storage import StorageError, sniff_content_type

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
#: madrasa's own icon (the manifest's, and the tab's where the tenant has no logo).
DEFAULT_ICON = Path(__file__).parent / "static" / "icon.svg"
#: A tenant prefix at the start of a portal path (the part `/t/<slug>`).
TENANT_PREFIX = re.compile(r"^/t/[^/]+")
STAFF_VIEWERS = frozenset({"school_director", "region_admin", "province_admin", "programme_manager", "platform_admin"})
SCHOOL_MANAGERS = frozenset({"school_director", "region_admin", "province_admin", "platform_admin"})
#: Menu entries of the school structure (core), next to those the plugins contribute.
CORE_MENU = [
    MenuItem(label="My timetable", url="/timetable", order=5, roles=frozenset({"teacher", "student"})),
    MenuItem(label="My children", url="/children", order=6, roles=frozenset({"parent"})),
    MenuItem(
        label="Class timetables", url="/timetable/classes", order=7, roles=STAFF_VIEWERS, kinds=frozenset({"school"})
    ),
    MenuItem(
        label="My classes",
        url="/classes",
        order=8,
        roles=frozenset({"teacher", "school_director"}),
        kinds=frozenset({"school"}),
    ),
    MenuItem(label="Pupils", url="/school/pupils", order=8, roles=SCHOOL_MANAGERS, kinds=frozenset({"school"})),
    MenuItem(label="Staff", url="/school/staff", order=9, roles=SCHOOL_MANAGERS, kinds=frozenset({"school"})),
    MenuItem(label="Classes", url="/school/classes", order=9, permission="school.manage", kinds=frozenset({"school"})),
    MenuItem(
        label="Retention of personal data",
        url="/privacy/retention",
        order=98,
        permission="privacy.configure",
        kinds=frozenset({"platform", "region"}),
    ),
    MenuItem(label="Notifications", url="/notifications", order=96, permission="notifications.read"),
    MenuItem(
        label="Notification rules",
        url="/notifications/policy",
        order=97,
        permission="notifications.configure",
        kinds=frozenset({"platform", "region", "province", "school"}),
    ),
    MenuItem(label="Notification statistics", url="/notifications/stats", order=97, permission="notifications.stats"),
    MenuItem(label="My data", url="/my-data", order=99),  # the account area: every role
    MenuItem(label="My devices", url="/my-devices", order=99),
]


def shown(ctx: Ctx, item: MenuItem) -> bool:
    """Whether a menu entry is for this person here: their roles, the page's permission, the tenant's kind."""
    if item.roles is not None and not item.roles & ctx.roles:
        return False
    if item.permission is not None and not ctx.services.permissions.roles_for(item.permission) & ctx.roles:
        return False
    if ctx.tenant is None:
        return item.kinds is not None and "landing" in item.kinds
    return item.kinds is None or ctx.tenant.kind in item.kinds


def _safe_next(ctx: Ctx, target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return ctx.url("/")


class LoginForm(msgspec.Struct):
    """The login form."""

    email: str = ""
    password: str = ""
    next: str = ""
    csrf_token: str = ""
    #: The "remember this device" box (``on`` when ticked): a long-lived session, revocable on /my-devices.
    remember: str = ""


#: The CSRF token of the forms shown before any session (login, password reset): a random value in this
#: cookie and in the form, compared on POST, so another site cannot post them in a visitor's name. A
#: logged-in visitor's forms carry the session's token instead, which the access middleware checks.
LOGIN_CSRF_COOKIE = "madrasa_login_csrf"


def _form_page(
    ctx: Any, request: Request[Any, Any, Any], template_name: str, *, status: int = 200, **values: Any
) -> Template:
    """A public form page with its CSRF token (the session's, else the browser's or a new one, set in the cookie)."""
    if ctx.session is not None:
        return page(ctx, template_name, status=status, csrf_token=ctx.session.csrf_token, **values)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if len(token) < 32:
        token = secrets.token_urlsafe(32)
    template = page(ctx, template_name, status=status, csrf_token=token, **values)
    template.cookies.append(
        Cookie(
            key=LOGIN_CSRF_COOKIE,
            value=token,
            httponly=True,
            samesite="lax",
            secure=not ctx.services.settings.debug,
            max_age=3600,
            path="/",
        )
    )
    return template


def _form_token_ok(ctx: Any, request: Request[Any, Any, Any], sent: str) -> bool:
    """Whether a public form came with its CSRF token (a session's was already checked by the middleware)."""
    if ctx.session is not None:
        return True
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), sent.encode())


def _login_page(
    ctx: Any, request: Request[Any, Any, Any], *, status: int = 200, error: str | None = None, **values: Any
) -> Template:
    """The login form with its CSRF token."""
    values.setdefault("notice", None)
    values.setdefault("remember", False)
    values["remember_days"] = ctx.services.settings.remembered_session_ttl // 86400
    return _form_page(ctx, request, "login.html", status=status, error=error, **values)


@get("/", opt={"permission": PUBLIC}, include_in_schema=False)
async def home(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """The tenant's home page for the logged-in person, or the platform landing page."""
    svc = ctx.services
    if ctx.tenant is None:
        portals = []
        if ctx.identity is not None:
            portals = await svc.db.fetch(
                "SELECT DISTINCT t.slug, t.name_fr, t.name_ar, t.name_en, t.display_name FROM membership m "
                "JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {} ORDER BY t.slug",
                ctx.identity.id,
            )
        menu: list[MenuItem] = []
        if ctx.identity is not None:
            ctx.roles = roles_at(await svc.grants.grants(ctx.identity.id), None)
            found = await svc.plugins.collect("madrasa_menu_items", frozenset(), ctx=ctx)
            menu = sorted((m for m in found if shown(ctx, m)), key=lambda m: (m.order, m.label))
        return page(ctx, "landing.html", portals=portals, menu=menu)
    if ctx.identity is None:
        return Redirect(ctx.url("/login"))
    scope = await ctx.scope_for("portal.view")
    if not scope:
        return page(ctx, "home.html", status=403, menu=[], cards=[], no_role=True)
    # The home page is public (it redirects to the login), so the middleware set no roles: set them here.
    ctx.roles = roles_at(await svc.grants.grants(ctx.identity.id), ctx.tenant)
    menu: list[MenuItem] = [*CORE_MENU, *await svc.plugins.collect("madrasa_menu_items", ctx.disabled_modules, ctx=ctx)]
    menu = sorted((m for m in menu if shown(ctx, m)), key=lambda m: (m.order, m.label))
    cards: list[DashboardCard] = await svc.plugins.collect("madrasa_dashboard_cards", ctx.disabled_modules, ctx=ctx)
    cards += [DashboardCard(**section) for section in await home_sections(ctx)]
    return page(ctx, "home.html", menu=menu, cards=sorted(cards, key=lambda c: c.order), no_role=False)


@get("/login", opt={"permission": PUBLIC}, include_in_schema=False)
async def login_form(
    ctx: Ctx, request: Request[Any, Any, Any], next: FromQuery[str | None] = None, reset: FromQuery[str | None] = None
) -> Template:
    """The login page, branded for the tenant (with a notice after a password reset)."""
    notice = gettext_(PASSWORD_CHANGED) if reset == "done" else None
    return _login_page(ctx, request, next=_safe_next(ctx, next), email="", notice=notice)


@post("/login", opt={"permission": PUBLIC}, include_in_schema=False)
async def login(
    ctx: Ctx,
    request: Request[Any, Any, Any],
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Any:
    """Check the password, open a browser session and go to the portal."""
    svc = ctx.services
    if not _form_token_ok(ctx, request, data.csrf_token):
        return _login_page(
            ctx,
            request,
            status=403,
            error=gettext_("The login form had expired. Please try again."),
            next=_safe_next(ctx, data.next),
            email=data.email,
        )
    device = request.cookies.get(DEVICE_COOKIE)
    try:
        identity = await svc.identity.authenticate(data.email, data.password, client_ip(request), device)
    except AuthError as exc:
        values = {"next": _safe_next(ctx, data.next), "email": data.email, "remember": bool(data.remember)}
        if exc.status != 429:
            return _login_page(ctx, request, status=401, error=gettext_(str(exc)), **values)
        wait = str(exc.retry_after or 60)
        throttled = _login_page(ctx, request, status=429, error=gettext_(THROTTLED_WAIT, seconds=wait), **values)
        throttled.headers["retry-after"] = wait
        return throttled
    remember = bool(data.remember)
    cookie = await svc.identity.start_web_session(
        identity,
        ctx.tenant.id if ctx.tenant else None,
        request.headers.get("user-agent", ""),
        client_ip(request),
        remember=remember,
    )
    response: Response[Any] = Redirect(_safe_next(ctx, data.next))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=not svc.settings.debug,
        max_age=svc.identity.session_ttl("web", remember),
        path="/",
    )
    response.set_cookie(  # this browser is now a known device of the account (core/identity.py)
        DEVICE_COOKIE,
        svc.identity.remember_device(identity.email, device),
        httponly=True,
        samesite="lax",
        secure=not svc.settings.debug,
        max_age=DEVICE_TTL,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


PASSWORD_CHANGED = "Your password has been changed. Log in with the new one."
FORM_EXPIRED = "The form had expired. Please try again."
ENTER_EMAIL = "Enter an e-mail address."
PASSWORDS_DIFFER = "The two passwords differ."
WEAK_PASSWORD = "Choose a stronger password: at least 10 characters, mixing letters with digits or symbols."


class ForgotForm(msgspec.Struct):
    """The form asking for a reset link."""

    email: str = ""
    csrf_token: str = ""


class ResetForm(msgspec.Struct):
    """The form choosing a new password with a reset link."""

    password: str = ""
    confirm: str = ""
    csrf_token: str = ""


@get("/password-reset", opt={"permission": PUBLIC}, include_in_schema=False)
async def forgot_form(ctx: Ctx, request: Request[Any, Any, Any]) -> Template:
    """Ask for a password-reset link by e-mail."""
    return _form_page(ctx, request, "password_forgot.html", email="", errors={}, sent=False)


@post("/password-reset", opt={"permission": PUBLIC}, include_in_schema=False, status_code=200)
async def forgot(
    ctx: Ctx,
    request: Request[Any, Any, Any],
    data: Annotated[ForgotForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    email = data.email.strip()[:254]
    values: dict[str, Any] = {"email": email, "errors": {}, "sent": False}
    if not _form_token_ok(ctx, request, data.csrf_token):
        return _form_page(ctx, request, "password_forgot.html", status=403, error=gettext_(FORM_EXPIRED), **values)
    if not _EMAIL_RE.match(email):
        values["errors"] = {"email": gettext_(ENTER_EMAIL)}
        return _form_page(ctx, request, "password_forgot.html", status=400, **values)
    try:
        await request_password_reset(ctx.services, email, client_ip(request), ctx.tenant)
    except AuthError as exc:
        page = _form_page(ctx, request, "password_forgot.html", status=exc.status, error=gettext_(str(exc)), **values)
        if exc.status == 429:
            page.headers["retry-after"] = str(exc.retry_after or 60)
        return page
    return _form_page(ctx, request, "password_forgot.html", **{**values, "sent": True, "notice": gettext_(RESET_SENT)})


def _reset_page(ctx: Any, request: Request[Any, Any, Any], token: str, *, status: int = 200, **values: Any) -> Template:
    values.setdefault("errors", {})
    template = _form_page(ctx, request, "password_reset.html", status=status, token=token, **values)
    template.headers["referrer-policy"] = "no-referrer"  # the token is in the address
    template.headers["cache-control"] = "no-store"
    return template


@get("/password-reset/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False)
async def reset_form(ctx: Ctx, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
    """The mailed link: choose a new password (or learn that the link no longer works)."""
    live = await ctx.services.identity.reset_token_is_live(token)
    return _reset_page(ctx, request, token, status=200 if live else 404, live=live)


@post("/password-reset/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False, status_code=200)
async def reset(
    ctx: Ctx,
    request: Request[Any, Any, Any],
    token: FromPath[str],
    data: Annotated[ResetForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Any:
    """Set the new password through the API's service, then go to the login page with a notice."""
    svc = ctx.services
    if not _form_token_ok(ctx, request, data.csrf_token):
        return _reset_page(ctx, request, token, status=403, live=True, error=gettext_(FORM_EXPIRED))
    if not await svc.identity.reset_token_is_live(token):
        return _reset_page(ctx, request, token, status=400, live=False)
    if data.password != data.confirm:
        return _reset_page(ctx, request, token, status=400, live=True, errors={"confirm": gettext_(PASSWORDS_DIFFER)})
    if check_password_strength(data.password):
        return _reset_page(ctx, request, token, status=400, live=True, errors={"password": gettext_(WEAK_PASSWORD)})
    try:
        person_id = await svc.identity.finish_password_reset(token, data.password)
    except AuthError:
        return _reset_page(ctx, request, token, status=400, live=False)
    svc.grants.invalidate(person_id)
    response: Response[Any] = Redirect(ctx.url("/login") + "?reset=done")
    if ctx.session is not None:  # every session of the account ended; this browser's cookie goes too
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@post("/logout", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def logout(ctx: Ctx) -> Response[Any]:
    """End the browser session."""
    if ctx.session is not None:
        await ctx.services.identity.revoke(ctx.session.session_id)
    response: Response[Any] = Redirect(ctx.url("/login"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/lang/{code:str}", opt={"permission": PUBLIC}, include_in_schema=False)
async def switch_language(
    ctx: Ctx, request: Request[Any, Any, Any], code: FromPath[str], next: FromQuery[str | None] = None
) -> Response[Any]:
    """Remember the chosen language in a cookie and go back."""
    if code not in LOCALES:
        raise NotFoundException(f"Unknown language {code!r}; use one of {', '.join(LOCALES)}.")
    response: Response[Any] = Redirect(_page_to_return_to(ctx, request, _safe_next(ctx, next)))
    response.set_cookie(LOCALE_COOKIE, code, samesite="lax", max_age=365 * 24 * 3600, path="/")
    return response


def _page_to_return_to(ctx: Ctx, request: Request[Any, Any, Any], target: str) -> str:
    """``target`` if a page answers GET there, else its nearest parent that does (after a form was posted, the
    address shown is the form's action, which has no page), else the tenant's home."""
    path, sep, query = target.partition("?")
    prefix = TENANT_PREFIX.match(path)
    head, bare = (prefix.group(0), path[prefix.end() :] or "/") if prefix else ("", path)
    router = request.app.asgi_router
    first = True
    while bare:
        try:
            router.handle_routing(bare.rstrip("/") or "/", "GET")
            return head + bare + (sep + query if first else "")
        except (NotFoundException, MethodNotAllowedException):
            bare = bare.rstrip("/").rpartition("/")[0]
            first = False
    return ctx.url("/")


@get("/manifest.webmanifest", opt={"permission": PUBLIC}, include_in_schema=False)
async def manifest(ctx: Ctx) -> Response[dict[str, Any]]:
    """The PWA manifest, named and coloured for the tenant."""
    name = ctx.tenant.title(ctx.locale) if ctx.tenant else "madrasa"
    return Response(
        {
            "name": name,
            "short_name": name[:12],
            "start_url": ctx.url("/"),
            "scope": ctx.url("/"),
            "display": "standalone",
            "dir": text_direction(ctx.locale),
            "lang": ctx.locale,
            "theme_color": ctx.tenant.primary_color if ctx.tenant else "#0b5d3b",
            "background_color": "#ffffff",
            "icons": [{"src": "/static/core/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
        },
        media_type="application/manifest+json",
    )


LOGO_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


@get("/logo", opt={"permission": PUBLIC}, include_in_schema=False)
async def logo(ctx: Ctx) -> Response[bytes]:
    """The tenant's logo (public: the login page shows it); 404 when it has none."""
    tenant = ctx.require_tenant()
    if not tenant.logo_key:
        raise NotFoundException("This portal has no logo.")
    try:
        data = await ctx.services.storage.get(tenant.logo_key, tenant_id=tenant.id)
    except StorageError:
        raise NotFoundException("This portal has no logo.") from None
    content_type = sniff_content_type(data)
    if content_type not in LOGO_TYPES:
        raise NotFoundException("This portal has no logo.")
    return Response(
        data,
        media_type=content_type,
        headers={
            "cache-control": "public, max-age=300",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'",
        },
    )


@get("/favicon.ico", opt={"permission": PUBLIC}, include_in_schema=False)
async def favicon(ctx: Ctx) -> Response[Any]:
    """The tab's icon: the tenant's logo when it has one, else madrasa's."""
    if ctx.tenant is not None and ctx.tenant.logo_key:
        return Redirect(ctx.url("/logo"), status_code=302)
    return Response(
        DEFAULT_ICON.read_bytes(), media_type="image/svg+xml", headers={"cache-control": "public, max-age=86400"}
    )


PORTAL_ROUTES = [
    favicon,
    home,
    login_form,
    login,
    forgot_form,
    forgot,
    reset_form,
    reset,
    logout,
    switch_language,
    manifest,
    logo,
]
