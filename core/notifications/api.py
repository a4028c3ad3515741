"""The notification centre's JSON API (for the mobile apps).

* ``GET /api/v1/me/notifications`` (``?page=``, ``?unread=true``), ``GET …/unread-count``,
  ``POST …/{id}/read``, ``POST …/read-all`` — the caller's inbox;
* ``GET/PUT /api/v1/me/notifications/preferences`` — channels per kind, quiet hours, digest, SMS number;
* ``GET/PUT /api/v1/notifications/policy`` — the tenant's rules per kind (SMS allowed, mandatory);
* ``GET /api/v1/notifications/stats`` — delivery statistics of the tenant.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from core.context import Ctx, RequestContext
from core.i18n import gettext_
from core.notifications import inbox, prefs

READ = inbox.PERMISSION
CONFIGURE = "notifications.configure"
STATS = "notifications.stats"


class NotificationOut(msgspec.Struct):
    """One notification as its recipient reads it."""

    id: int
    kind: str
    label: str
    text: str
    link: str
    created_at: datetime
    read_at: datetime | None
    read: bool


class NotificationPage(msgspec.Struct):
    """A page of the caller's notifications, newest first, with the unread count."""

    items: list[NotificationOut]
    total: int
    unread: int
    page: int
    pages: int


class UnreadOut(msgspec.Struct):
    """The caller's unread notifications."""

    unread: int


class MarkedOut(msgspec.Struct):
    """How many notifications were marked read, and how many are left unread."""

    marked: int
    unread: int


class KindPreferenceOut(msgspec.Struct):
    """The caller's channels for one kind; ``mandatory``: its default channels cannot be switched off."""

    kind: str
    label: str
    email: bool
    sms: bool
    digest: bool
    mandatory: bool
    sms_eligible: bool


class PreferencesOut(msgspec.Struct):
    """The caller's preferences."""

    kinds: list[KindPreferenceOut]
    quiet_start: str | None
    quiet_end: str | None
    phone: str


class KindRuleOut(msgspec.Struct):
    """A kind's rule at the tenant and what the kind allows."""

    kind: str
    label: str
    sms_allowed: bool
    mandatory: bool
    sms_eligible: bool
    mandatory_allowed: bool


class PolicyOut(msgspec.Struct):
    """The tenant's rules per kind."""

    tenant: str
    kinds: list[KindRuleOut]


class KindStat(msgspec.Struct):
    """Notifications of a kind and how many were read."""

    kind: str
    label: str
    total: int
    read: int


class ChannelStat(msgspec.Struct):
    """Messages of a channel in a status."""

    channel: str
    status: str
    total: int


class StatsOut(msgspec.Struct):
    """Delivery statistics of the tenant."""

    kinds: list[KindStat]
    channels: list[ChannelStat]


def label_of(ctx: RequestContext, kind: str) -> str:
    """A kind's label in the request's language."""
    found = ctx.services.notification_kinds.get(kind)
    return gettext_(found.label) if found else kind


def notification_out(ctx: RequestContext, row: dict) -> NotificationOut:
    """A stored notification as the API shows it."""
    return NotificationOut(
        id=row["id"],
        kind=row["kind"],
        label=label_of(ctx, row["kind"]),
        text=row["text"],
        link=row["link"],
        created_at=row["created_at"],
        read_at=row["read_at"],
        read=row["read_at"] is not None,
    )


async def read_preferences(ctx: RequestContext) -> PreferencesOut:
    """The caller's preferences, with each kind's default where they chose nothing."""
    assert ctx.person_id is not None
    kinds = ctx.services.notification_kinds
    db = ctx.services.db
    async with db.transaction(write=False):
        mandatory = await prefs.mandatory_kinds(ctx, ctx.person_id)
        setting = (await prefs.settings_of(db, [ctx.person_id])).get(ctx.person_id) or {}
        chosen = {
            name: (await prefs.choices_of(db, [ctx.person_id], name)).get(ctx.person_id) for name in sorted(kinds)
        }
    out = []
    for name in sorted(kinds):
        kind = kinds[name]
        choice = chosen[name] or prefs.default_choice(kind)
        out.append(
            KindPreferenceOut(
                kind=name,
                label=gettext_(kind.label),
                email=choice.email,
                sms=choice.sms,
                digest=choice.digest,
                mandatory=name in mandatory,
                sms_eligible=kind.sms_eligible,
            )
        )
    return PreferencesOut(
        kinds=out,
        quiet_start=prefs.hhmm(setting.get("quiet_start")),
        quiet_end=prefs.hhmm(setting.get("quiet_end")),
        phone=setting.get("phone") or "",
    )


async def read_policy(ctx: RequestContext) -> PolicyOut:
    """The rules in force at the request's tenant (the nearest node's)."""
    tenant = ctx.require_tenant()
    kinds = ctx.services.notification_kinds
    db = ctx.services.db
    async with db.transaction(write=False):
        found = await prefs.rules(db, tenant.path, kinds)
    return PolicyOut(
        tenant=tenant.slug,
        kinds=[
            KindRuleOut(
                kind=name,
                label=gettext_(kinds[name].label),
                sms_allowed=found[name].sms_allowed,
                mandatory=found[name].mandatory,
                sms_eligible=kinds[name].sms_eligible,
                mandatory_allowed=kinds[name].mandatory_allowed,
            )
            for name in sorted(kinds)
        ],
    )


async def read_stats(ctx: RequestContext) -> StatsOut:
    """The statistics of the request's scope."""
    found = await inbox.statistics(ctx)
    return StatsOut(
        kinds=[
            KindStat(kind=r["kind"], label=label_of(ctx, r["kind"]), total=int(r["total"]), read=int(r["read"]))
            for r in found["kinds"]
        ],
        channels=[
            ChannelStat(channel=r["channel"], status=r["status"], total=int(r["total"])) for r in found["channels"]
        ],
    )


@get("/api/v1/me/notifications", opt={"permission": READ}, tags=["me"])
async def api_list(ctx: Ctx, page: FromQuery[int] = 1, unread: FromQuery[bool] = False) -> NotificationPage:
    """The caller's notifications, newest first, 20 a page (``unread=true``: the unread ones only)."""
    found = await inbox.page_of(ctx, page, unread_only=unread)
    return NotificationPage(
        items=[notification_out(ctx, r) for r in found["items"]],
        total=found["total"],
        unread=found["unread"],
        page=found["number"],
        pages=found["pages"],
    )


@get("/api/v1/me/notifications/unread-count", opt={"permission": READ}, tags=["me"])
async def api_unread(ctx: Ctx) -> UnreadOut:
    """How many of the caller's notifications are unread (the bell's number)."""
    return UnreadOut(unread=await inbox.unread_count(ctx))


@post("/api/v1/me/notifications/{notification_id:int}/read", opt={"permission": READ}, tags=["me"], status_code=200)
async def api_mark_read(ctx: Ctx, notification_id: FromPath[int]) -> NotificationOut:
    """Mark one of the caller's notifications read (404 for anyone else's)."""
    return notification_out(ctx, await inbox.mark_read(ctx, notification_id))


@post("/api/v1/me/notifications/read-all", opt={"permission": READ}, tags=["me"], status_code=200)
async def api_mark_all(ctx: Ctx) -> MarkedOut:
    """Mark all the caller's notifications read."""
    marked = await inbox.mark_all_read(ctx)
    return MarkedOut(marked=marked, unread=await inbox.unread_count(ctx))


@get("/api/v1/me/notifications/preferences", opt={"permission": READ}, tags=["me"])
async def api_preferences(ctx: Ctx) -> PreferencesOut:
    """The caller's channels per kind, quiet hours and SMS number."""
    return await read_preferences(ctx)


@put("/api/v1/me/notifications/preferences", opt={"permission": READ}, tags=["me"])
async def api_set_preferences(ctx: Ctx, data: JSONBody[prefs.PreferencesIn]) -> PreferencesOut:
    """Change the caller's preferences: ``{"kinds": {"attendance.absence": {"email": true, "sms": false,
    "digest": true}}, "quiet_start": "21:00", "quiet_end": "07:00", "phone": "+212612345678"}``. Switching off a
    kind that is mandatory at one of the caller's schools: 400 naming the kind."""
    await prefs.save_preferences(ctx, data)
    return await read_preferences(ctx)


@get("/api/v1/notifications/policy", opt={"permission": CONFIGURE}, tags=["notifications"])
async def api_policy(ctx: Ctx) -> PolicyOut:
    """The tenant's rules per kind: whether SMS may be used, whether the kind is mandatory."""
    return await read_policy(ctx)


@put("/api/v1/notifications/policy", opt={"permission": CONFIGURE}, tags=["notifications"])
async def api_set_policy(ctx: Ctx, data: JSONBody[dict[str, prefs.RuleIn]]) -> PolicyOut:
    """Set the tenant's rules: ``{"attendance.absence": {"sms_allowed": true, "mandatory": true}}`` (audited)."""
    await prefs.save_rules(ctx, ctx.require_tenant(), data)
    return await read_policy(ctx)


@get("/api/v1/notifications/stats", opt={"permission": STATS}, tags=["notifications"])
async def api_stats(ctx: Ctx) -> StatsOut:
    """Notifications per kind (and read), messages per channel and status, in the tenant."""
    return await read_stats(ctx)


API_ROUTES = [
    api_list,
    api_unread,
    api_mark_read,
    api_mark_all,
    api_preferences,
    api_set_preferences,
    api_policy,
    api_set_policy,
    api_stats,
]
