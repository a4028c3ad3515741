"""The notification centre in the portal: the bell, the list, preferences, a tenant's rules and statistics.

* ``GET /notifications`` (``?page=``) — the list, unread ones marked, with "mark all as read";
* ``GET /notifications/bell`` — the bell's fragment (HTMX: loaded on every page, refreshed every 30 seconds and
  when the list changes);
* ``GET /notifications/{id}`` — open one: marks it read and follows its link;
* ``POST /notifications/read-all`` — mark all read (CSRF); an HTMX request gets the list back with an
  ``HX-Trigger: notifications-changed`` header so the bell refreshes;
* ``GET/POST /notifications/preferences`` — channels per kind, quiet hours, digest, SMS number;
* ``GET/POST /notifications/policy`` — the tenant's rules (directors, province and region administrators);
* ``GET /notifications/stats`` — delivery statistics.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template

from core.context import Ctx, RequestContext
from core.errors import DomainError
from core.i18n import gettext_
from core.notifications import api, inbox, prefs
from core.paging import paginate
from core.rendering import Row, page


class _Window:
    """One fetched page standing for the whole list, so :func:`core.paging.paginate` can draw the pager."""

    def __init__(self, items: list[Any], total: int, offset: int) -> None:
        self.items, self.total, self.offset = items, total, offset

    def __len__(self) -> int:
        return self.total

    def __getitem__(self, part: slice) -> list[Any]:
        return self.items


def _csrf(ctx: RequestContext) -> str:
    return ctx.session.csrf_token if ctx.session else ""


async def _list_page(ctx: RequestContext, number: int, status: int = 200) -> Template:
    found = await inbox.page_of(ctx, number)
    rows = [Row(_row(ctx, r)) for r in found["items"]]
    offset = (found["number"] - 1) * found["size"]
    pager = paginate(
        _Window(rows, found["total"], offset), found["number"], ctx.url("/notifications"), size=found["size"]
    )
    return page(
        ctx,
        "notifications/list.html",
        status=status,
        pager=pager,
        items=rows,
        unread=found["unread"],
        csrf_token=_csrf(ctx),
    )


def _row(ctx: RequestContext, r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "label": api.label_of(ctx, r["kind"]),
        "text": r["text"],
        "created_at": r["created_at"],
        "read": r["read_at"] is not None,
    }


@get("/notifications", opt={"permission": inbox.PERMISSION}, include_in_schema=False)
async def notifications_page(ctx: Ctx, number: Annotated[str | None, Parameter(query="page")] = None) -> Template:
    """The person's notifications, newest first, 20 a page."""
    return await _list_page(ctx, int(number) if number and number.isdigit() and len(number) < 7 else 1)


@get("/notifications/bell", opt={"permission": inbox.PERMISSION}, include_in_schema=False)
async def bell(ctx: Ctx) -> Template:
    """The bell's content: the unread count."""
    return page(ctx, "notifications/_bell.html", unread=await inbox.unread_count(ctx))


@get("/notifications/{notification_id:int}", opt={"permission": inbox.PERMISSION}, include_in_schema=False)
async def open_notification(ctx: Ctx, notification_id: FromPath[int]) -> Redirect:
    """Open one notification: it is marked read and its link followed (the list when it has none)."""
    row = await inbox.mark_read(ctx, notification_id)
    link = row["link"]
    if not (link.startswith("/") and not link.startswith("//")):
        return Redirect(ctx.url("/notifications"))
    if ctx.tenant is not None and row["tenant_id"] != ctx.tenant.id:  # another school's: at its own address
        tenant = await ctx.services.tenants.by_id(row["tenant_id"])
        if tenant is not None:
            return Redirect(f"/t/{tenant.slug}{link}")
    return Redirect(ctx.url(link))


@post("/notifications/read-all", opt={"permission": inbox.PERMISSION}, include_in_schema=False, status_code=200)
async def read_all(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Mark every notification read; back to the list (HTMX: the list, and the bell told to refresh)."""
    await inbox.mark_all_read(ctx)
    if request.headers.get("hx-request"):
        response = await _list_page(ctx, 1)
        response.headers["HX-Trigger"] = "notifications-changed"
        return response
    return Redirect(ctx.url("/notifications"))


async def _preferences_page(
    ctx: RequestContext, status: int = 200, errors: dict[str, str] | None = None, saved: bool = False
) -> Template:
    found = await api.read_preferences(ctx)
    return page(
        ctx,
        "notifications/preferences.html",
        status=status,
        found=found,
        errors=errors or {},
        saved=saved,
        csrf_token=_csrf(ctx),
    )


@get("/notifications/preferences", opt={"permission": inbox.PERMISSION}, include_in_schema=False)
async def preferences_page(ctx: Ctx) -> Template:
    """How the person receives each kind of notification."""
    return await _preferences_page(ctx)


@post("/notifications/preferences", opt={"permission": inbox.PERMISSION}, include_in_schema=False, status_code=200)
async def preferences_save(ctx: Ctx, request: Request[Any, Any, Any]) -> Template:
    """Save the preferences form (a checkbox per kind and channel, quiet hours, SMS number)."""
    form = await request.form()
    kinds = {
        name: prefs.KindChoice(
            email=bool(form.get(f"{name}.email")),
            sms=bool(form.get(f"{name}.sms")),
            digest=bool(form.get(f"{name}.digest")),
        )
        for name in ctx.services.notification_kinds
    }
    data = prefs.PreferencesIn(
        kinds=kinds,
        quiet_start=str(form.get("quiet_start") or ""),
        quiet_end=str(form.get("quiet_end") or ""),
        phone=str(form.get("phone") or ""),
    )
    try:
        await prefs.save_preferences(ctx, data)
    except DomainError as exc:
        return await _preferences_page(
            ctx, status=exc.status_code, errors={exc.field or "form": gettext_(exc.msgid, **exc.values)}
        )
    return await _preferences_page(ctx, saved=True)


async def _policy_page(
    ctx: RequestContext, status: int = 200, errors: dict[str, str] | None = None, saved: bool = False
) -> Template:
    return page(
        ctx,
        "notifications/policy.html",
        status=status,
        found=await api.read_policy(ctx),
        errors=errors or {},
        saved=saved,
        csrf_token=_csrf(ctx),
    )


@get("/notifications/policy", opt={"permission": api.CONFIGURE}, include_in_schema=False)
async def policy_page(ctx: Ctx) -> Template:
    """The tenant's rules per kind: SMS allowed, mandatory."""
    return await _policy_page(ctx)


@post("/notifications/policy", opt={"permission": api.CONFIGURE}, include_in_schema=False, status_code=200)
async def policy_save(ctx: Ctx, request: Request[Any, Any, Any]) -> Template:
    """Save the rules form (audited)."""
    form = await request.form()
    data = {
        name: prefs.RuleIn(
            sms_allowed=bool(form.get(f"{name}.sms_allowed")), mandatory=bool(form.get(f"{name}.mandatory"))
        )
        for name in ctx.services.notification_kinds
    }
    try:
        await prefs.save_rules(ctx, ctx.require_tenant(), data)
    except DomainError as exc:
        return await _policy_page(
            ctx, status=exc.status_code, errors={exc.field or "form": gettext_(exc.msgid, **exc.values)}
        )
    return await _policy_page(ctx, saved=True)


@get("/notifications/stats", opt={"permission": api.STATS}, include_in_schema=False)
async def stats_page(ctx: Ctx) -> Template:
    """Delivery statistics of the tenant."""
    return page(ctx, "notifications/stats.html", stats=await api.read_stats(ctx))


PAGE_ROUTES = [
    notifications_page,
    bell,
    open_notification,
    read_all,
    preferences_page,
    preferences_save,
    policy_page,
    policy_save,
    stats_page,
]
