"""Preferences and rules: a person's channels per kind, quiet hours and digest; a school's or region's policy.

A person chooses, per kind, e-mail and SMS (the in-app inbox is always on) and whether e-mails of that kind come
as one daily digest (at :data:`DIGEST_AT`, local time) instead of one by one; and, for every kind, quiet hours
during which no e-mail or SMS goes out (they wait until the quiet hours end) and the number SMS go to. Without a
choice, a kind's default channels apply.

A school, province, region or the platform sets per kind whether SMS may be used (it costs money; a kind must be
``sms_eligible``) and whether the kind is mandatory (a kind must be ``mandatory_allowed``): nobody may switch a
mandatory kind's default channels off (400 naming the kind), and delivery sends them whatever older preferences
say. The nearest node with a rule for the kind decides (school, then province, region, platform).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from core.errors import Invalid
from core.i18n import gettext_
from core.notifications.kinds import NotificationKind
from core.sql import SQL, in_

if TYPE_CHECKING:
    from core.context import RequestContext
    from core.db import Database
    from core.tenancy import TenantInfo

#: When the day's digest e-mail goes out (the schools' local time).
DIGEST_AT = time(18, 0)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    """A person's channels for one kind."""

    email: bool = False
    sms: bool = False
    digest: bool = False


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """A kind's policy where a notification is sent."""

    sms_allowed: bool = False
    mandatory: bool = False


def default_choice(kind: NotificationKind) -> Choice:
    """The channels of a kind for someone who has not chosen."""
    return Choice(email="email" in kind.channels, sms="sms" in kind.channels)


# --------------------------------------------------------------------------- time


def minutes_of(text: str, field: str) -> int:
    """``"21:30"`` as minutes after midnight; 400 naming the field otherwise."""
    match = _HHMM.match(text.strip())
    if not match:
        raise Invalid(field, "Enter a time as HH:MM.")
    return int(match.group(1)) * 60 + int(match.group(2))


def hhmm(minutes: int | None) -> str | None:
    """Minutes after midnight as ``"HH:MM"``."""
    return None if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


def quiet_until(now: datetime, start: int | None, end: int | None) -> datetime | None:
    """The end of the quiet hours ``now`` (local time) falls in, or ``None`` when it is not in them."""
    if start is None or end is None or start == end:
        return None
    minute = now.hour * 60 + now.minute
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    ends_today = day + timedelta(minutes=end)
    if start < end:
        return ends_today if start <= minute < end else None
    if minute >= start:
        return ends_today + timedelta(days=1)
    return ends_today if minute < end else None


def next_digest(now: datetime) -> datetime:
    """The next digest time after ``now`` (local time)."""
    today = now.replace(hour=DIGEST_AT.hour, minute=DIGEST_AT.minute, second=0, microsecond=0)
    return today if now < today else today + timedelta(days=1)


# --------------------------------------------------------------------------- reading


async def rules(db: Database, path: tuple[int, ...], kinds: dict[str, NotificationKind]) -> dict[str, Rule]:
    """The policy of every kind at a tenant node (``path``: root first): the nearest node's rule wins."""
    rows = await db.fetch(
        SQL(
            "SELECT tenant_id, kind, sms_allowed, mandatory FROM notification_policy WHERE tenant_id IN {}",
            in_(list(path)),
        )
    )
    depth = {node: i for i, node in enumerate(path)}
    found: dict[str, tuple[int, Rule]] = {}
    for r in rows:
        kind = kinds.get(r["kind"])
        if kind is None:
            continue
        d = depth[r["tenant_id"]]
        if r["kind"] not in found or found[r["kind"]][0] < d:
            rule = Rule(
                sms_allowed=bool(r["sms_allowed"]) and kind.sms_eligible,
                mandatory=bool(r["mandatory"]) and kind.mandatory_allowed,
            )
            found[r["kind"]] = (d, rule)
    return {name: found[name][1] if name in found else Rule() for name in kinds}


async def settings_of(db: Database, person_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Phone and quiet hours of some people (those with none are left out)."""
    rows = await db.fetch(
        SQL(
            "SELECT person_id, phone, quiet_start, quiet_end FROM notification_setting WHERE person_id IN {}",
            in_(person_ids),
        )
    )
    return {r["person_id"]: r for r in rows}


async def choices_of(db: Database, person_ids: list[int], kind: str) -> dict[int, Choice]:
    """The choices some people made for one kind (those who made none are left out)."""
    rows = await db.fetch(
        SQL(
            "SELECT person_id, email, sms, digest FROM notification_preference WHERE kind = {} AND person_id IN {}",
            kind,
            in_(person_ids),
        )
    )
    return {r["person_id"]: Choice(email=bool(r["email"]), sms=bool(r["sms"]), digest=bool(r["digest"])) for r in rows}


async def mandatory_kinds(ctx: RequestContext, person_id: int) -> set[str]:
    """The kinds mandatory at one of the person's tenants (where their notifications come from)."""
    services = ctx.services
    db = services.db
    nodes = [
        r["tenant_id"]
        for r in await db.fetch("SELECT DISTINCT tenant_id FROM membership WHERE person_id = {}", person_id)
    ]
    found: set[str] = set()
    for node in nodes:
        tenant = await services.tenants.by_id(node)
        if tenant is None:
            continue
        found |= {
            k for k, rule in (await rules(db, tenant.path, services.notification_kinds)).items() if rule.mandatory
        }
    return found


# --------------------------------------------------------------------------- writing


class KindChoice(msgspec.Struct, kw_only=True):
    """A choice for one kind, as sent by the API and the page."""

    email: bool = False
    sms: bool = False
    digest: bool = False


class PreferencesIn(msgspec.Struct, kw_only=True):
    """What a person changes: choices per kind (the kinds named; the others stay), quiet hours (``"HH:MM"``, both
    or neither; ``""`` for both: none) and the SMS number (``""``: none). A field left out keeps its value."""

    kinds: dict[str, KindChoice] = {}
    quiet_start: str | None = None
    quiet_end: str | None = None
    phone: str | None = None


async def save_preferences(ctx: RequestContext, data: PreferencesIn) -> None:
    """Check and store a person's preferences (inside no transaction; opens its own).

    An unknown kind, a malformed time or number, or a mandatory kind whose default channel is switched off: 400
    naming the kind or the field, and nothing is stored."""
    assert ctx.person_id is not None
    services = ctx.services
    kinds = services.notification_kinds
    for name in data.kinds:
        if name not in kinds:
            raise Invalid(f"kinds.{name}", "Unknown notification kind {kind}.", code="unknown_kind", kind=name)
    current = (await settings_of(services.db, [ctx.person_id])).get(ctx.person_id) or {}
    start, end = current.get("quiet_start"), current.get("quiet_end")
    if data.quiet_start is not None or data.quiet_end is not None:
        given = ((data.quiet_start or "").strip(), (data.quiet_end or "").strip())
        if bool(given[0]) != bool(given[1]):
            raise Invalid("quiet_end", "Give both the start and the end of the quiet hours, or neither.")
        start = minutes_of(given[0], "quiet_start") if given[0] else None
        end = minutes_of(given[1], "quiet_end") if given[1] else None
    phone = current.get("phone") or ""
    if data.phone is not None:
        phone = data.phone.replace(" ", "")
        if phone and not _PHONE.match(phone):
            raise Invalid("phone", "Enter the phone number in international form, for example +212612345678.")
    db = services.db
    async with db.transaction():
        mandatory = await mandatory_kinds(ctx, ctx.person_id)
        for name, choice in sorted(data.kinds.items()):
            kind = kinds[name]
            silenced = ("email" in kind.channels and not choice.email) or ("sms" in kind.channels and not choice.sms)
            if name in mandatory and silenced:
                raise Invalid(
                    f"kinds.{name}",
                    "Notifications “{label}” ({kind}) are mandatory here: they cannot be switched off.",
                    code="mandatory_kind",
                    label=gettext_(kind.label),
                    kind=name,
                )
        now = services.clock.utcnow()
        for name, choice in sorted(data.kinds.items()):
            await db.execute(
                "INSERT INTO notification_preference (person_id, kind, email, sms, digest, updated_at) "
                "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (person_id, kind) DO UPDATE SET email = excluded.email, "
                "sms = excluded.sms, digest = excluded.digest, updated_at = excluded.updated_at",
                ctx.person_id,
                name,
                choice.email,
                choice.sms,
                choice.digest,
                now,
            )
        await db.execute(
            "INSERT INTO notification_setting (person_id, phone, quiet_start, quiet_end, updated_at) "
            "VALUES ({}, {}, {}, {}, {}) ON CONFLICT (person_id) DO UPDATE SET phone = excluded.phone, "
            "quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, updated_at = excluded.updated_at",
            ctx.person_id,
            phone,
            start,
            end,
            now,
        )


class RuleIn(msgspec.Struct, kw_only=True):
    """A kind's rule, as sent by the API and the page."""

    sms_allowed: bool = False
    mandatory: bool = False


async def save_rules(ctx: RequestContext, tenant: TenantInfo, data: dict[str, RuleIn]) -> None:
    """Store the tenant's rules per kind, audited; 400 naming a kind that is unknown, cannot use SMS or cannot be
    made mandatory."""
    services = ctx.services
    kinds = services.notification_kinds
    for name, rule in data.items():
        kind = kinds.get(name)
        if kind is None:
            raise Invalid(f"kinds.{name}", "Unknown notification kind {kind}.", code="unknown_kind", kind=name)
        if rule.sms_allowed and not kind.sms_eligible:
            raise Invalid(f"kinds.{name}", "Notifications of the kind {kind} cannot be sent by SMS.", kind=name)
        if rule.mandatory and not kind.mandatory_allowed:
            raise Invalid(f"kinds.{name}", "Notifications of the kind {kind} cannot be made mandatory.", kind=name)
    from core import audit

    db = services.db
    now = services.clock.utcnow()
    async with db.scoped(ctx.scope):
        before = await rules(db, (tenant.id,), {n: kinds[n] for n in data})
        for name, rule in sorted(data.items()):
            await db.execute(
                "INSERT INTO notification_policy (tenant_id, kind, sms_allowed, mandatory, updated_by, updated_at) "
                "VALUES ({}, {}, {}, {}, {}, {}) ON CONFLICT (tenant_id, kind) DO UPDATE SET "
                "sms_allowed = excluded.sms_allowed, mandatory = excluded.mandatory, updated_by = excluded.updated_by, "
                "updated_at = excluded.updated_at",
                tenant.id,
                name,
                rule.sms_allowed,
                rule.mandatory,
                ctx.person_id,
                now,
            )
        await audit.record(
            db,
            actor_id=ctx.person_id,
            action="notifications.policy",
            object_type="tenant",
            object_id=tenant.id,
            tenant=tenant,
            before={k: msgspec.structs.asdict(v) for k, v in before.items()},
            after={k: msgspec.structs.asdict(v) for k, v in data.items()},
        )
