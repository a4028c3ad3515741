"""One's own sessions ("my devices"): list the live ones and log any of them out, in the API and the portal.

* ``GET /api/v1/me/sessions`` — the caller's live sessions (browsers and apps), the current one marked;
* ``DELETE /api/v1/me/sessions/{id}`` — end one of them now (404 for anyone else's, or one already ended);
* ``GET /my-devices`` and ``POST /my-devices`` (``session_id``, or ``all_others``) — the same in the portal.

A session opened with "remember this device" lives ``MADRASA_REMEMBERED_SESSION_TTL`` (90 days by default);
this page is where a family ends one left on a lost phone or a shared computer. Revocation goes through
:meth:`core.identity.IdentityService.revoke`, so the session's caches are dropped as on logout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from core.context import Ctx, RequestContext
from core.errors import NotFound
from core.i18n import gettext_
from core.middleware import SESSION_COOKIE
from core.permissions import AUTHENTICATED
from core.rendering import page

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_APP = re.compile(r"^([A-Za-z][\w.-]{0,40})/[\w.]+")
NO_SUCH_SESSION = "No such session, or it has already ended."


class SessionOut(msgspec.Struct):
    """A live session of the caller: a browser (``web``) or an app's token family (``api``)."""

    id: str
    kind: str
    device: str
    ip: str
    created_at: datetime
    expires_at: datetime
    #: Opened with "remember this device" (a long-lived session).
    remembered: bool
    #: The session making this request.
    current: bool
    #: The portal it was opened at (a tenant's slug), or ``None`` for the platform's address.
    portal: str | None


def describe_agent(user_agent: str) -> str:
    """A short name for a ``User-Agent``: "Firefox, Android", an app's product name, or "" when unknown."""
    browser = next((name for key, name in _BROWSERS if key in user_agent), "")
    system = next((name for key, name in _SYSTEMS if key in user_agent), "")
    if browser or system:
        return ", ".join(part for part in (browser, system) if part)
    app = _APP.match(user_agent)
    return app.group(1) if app else ""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def live_sessions(ctx: RequestContext) -> list[SessionOut]:
    """The caller's unrevoked, unexpired sessions, newest first."""
    assert ctx.person_id is not None
    settings = ctx.services.settings
    rows = await ctx.services.db.fetch(
        "SELECT s.id, s.kind, s.user_agent, s.ip, s.created_at, s.expires_at, t.slug FROM auth_session s "
        "LEFT JOIN tenant t ON t.id = s.tenant_id WHERE s.person_id = {} AND s.revoked_at IS NULL "
        "AND s.expires_at > {} ORDER BY s.created_at DESC, s.id",
        ctx.person_id,
        datetime.now(UTC),
    )
    current = ctx.session.session_id if ctx.session else None
    out = []
    for r in rows:
        created, expires = _aware(r["created_at"]), _aware(r["expires_at"])
        usual = settings.session_ttl if r["kind"] == "web" else settings.refresh_token_ttl
        out.append(
            SessionOut(
                id=r["id"],
                kind=r["kind"],
                device=describe_agent(r["user_agent"] or ""),
                ip=r["ip"] or "",
                created_at=created,
                expires_at=expires,
                remembered=(expires - created).total_seconds() > usual,
                current=r["id"] == current,
                portal=r["slug"],
            )
        )
    return out


async def revoke_own(ctx: RequestContext, session_id: str) -> None:
    """End one of the caller's live sessions; :class:`NotFound` for any other id."""
    assert ctx.person_id is not None
    found = await ctx.services.db.fetchval(
        "SELECT id FROM auth_session WHERE id = {} AND person_id = {} AND revoked_at IS NULL",
        session_id[:64],
        ctx.person_id,
    )
    if found is None:
        raise NotFound(NO_SUCH_SESSION)
    await ctx.services.identity.revoke(str(found))


@get("/api/v1/me/sessions", opt={"permission": AUTHENTICATED}, tags=["me"])
async def api_sessions(ctx: Ctx) -> list[SessionOut]:
    """The caller's live sessions (browsers and apps), newest first; ``current`` marks this one."""
    return await live_sessions(ctx)


@delete("/api/v1/me/sessions/{session_id:str}", opt={"permission": AUTHENTICATED}, tags=["me"], status_code=204)
async def api_revoke_session(ctx: Ctx, session_id: FromPath[str]) -> None:
    """Log one of the caller's sessions out now (its tokens stop working)."""
    await revoke_own(ctx, session_id)


class RevokeForm(msgspec.Struct):
    """The devices page's form: one session to end, or ``all_others``."""

    csrf_token: str = ""
    session_id: str = ""
    all_others: str = ""


async def _devices_page(ctx: RequestContext, status: int = 200, error: str | None = None) -> Template:
    sessions = await live_sessions(ctx)
    csrf = ctx.session.csrf_token if ctx.session else ""
    return page(ctx, "devices.html", status=status, sessions=sessions, csrf_token=csrf, error=error)


@get("/my-devices", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def my_devices(ctx: Ctx) -> Template:
    """The devices and browsers where one is logged in, each with a button to log it out."""
    return await _devices_page(ctx)


@post("/my-devices", opt={"permission": AUTHENTICATED}, include_in_schema=False)
async def my_devices_revoke(
    ctx: Ctx, data: Annotated[RevokeForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
) -> Any:
    """Log a session out (this one too: then back to the login page), or every other one."""
    current = ctx.session.session_id if ctx.session else None
    if data.all_others:
        for session in await live_sessions(ctx):
            if not session.current:
                await ctx.services.identity.revoke(session.id)
        return Redirect(ctx.url("/my-devices"))
    try:
        await revoke_own(ctx, data.session_id)
    except NotFound as exc:
        return await _devices_page(ctx, status=404, error=gettext_(exc.msgid, **exc.values))
    if data.session_id == current:
        response: Response[Any] = Redirect(ctx.url("/login"))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    return Redirect(ctx.url("/my-devices"))


DEVICE_ROUTES = [api_sessions, api_revoke_session, my_devices, my_devices_revoke]
