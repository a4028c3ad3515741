"""Sending a notification: :func:`notify` (the facade plugins call) and the expansion of a batch into the inbox.

``notify`` records a *batch* (kind, recipients, message id and values, link) for a tenant. Called inside the
caller's transaction, the batch commits or rolls back with the change that caused it, and the periodic
``notifications.deliver`` job expands it (within a minute); called outside any transaction (after commit, as
``services.emit`` runs), it commits the batch and queues the job at once. Either way the batch is durable before
anything is sent, so a queue that is down loses nothing: the periodic run picks it up.

:func:`expand` turns a pending batch into one ``notification`` row per recipient, with the text rendered in the
recipient's language (``person.locale``), and the e-mail and SMS deliveries their preferences, quiet hours and
the tenant's policy ask for (:mod:`core.notifications.prefs`); all in one transaction that also marks the batch
done, so a batch is expanded once (and the unique key ``(batch_id, person_id)`` guards it again).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC
from typing import TYPE_CHECKING, Any

import msgspec

from core.i18n import LOCALES, gettext_in
from core.notifications import prefs
from core.sql import SQL, in_

if TYPE_CHECKING:
    from core.db import Database
    from core.notifications.kinds import NotificationKind
    from core.services import Services
    from core.tenancy import TenantInfo

log = logging.getLogger("madrasa.notifications")

DELIVER_JOB = "notifications.deliver"
#: Recipients expanded per statement (well under the 32,767 bind parameters of asyncpg).
CHUNK = 2000


class UnknownKind(ValueError):
    """``notify`` was asked for a kind no plugin declares."""


async def notify(
    services: Services,
    *,
    kind: str,
    recipients: list[int],
    tenant: TenantInfo,
    text: str,
    params: dict[str, Any] | None = None,
    link: str = "",
    key: str | None = None,
) -> str | None:
    """Send a notification of ``kind`` to people (person ids), about ``tenant``; returns the batch id.

    ``text`` is a message id translated for each recipient into their language, with ``params`` filled in (plain
    values, or ``{"fr": …, "ar": …, "en": …}`` for a value that differs by language, such as a pupil's name; French
    stands in for a language missing); ``link`` is a portal path (``/attendance/…``) the notification opens.
    ``key`` makes the call idempotent: a second batch with the same key is ignored (``None`` is returned).
    Inside a transaction the batch commits with it and goes out with the next periodic run; outside one it goes
    out at once.
    """
    if kind not in services.notification_kinds:
        raise UnknownKind(f"no plugin declares the notification kind {kind!r}")
    if tenant.region_id is None:
        raise ValueError("a notification belongs to a region, province or school, not to the platform")
    people = sorted({int(p) for p in recipients})
    if not people:
        return None
    batch_id = key or str(uuid.uuid4())
    if len(batch_id) > 80:
        raise ValueError("a notification key is at most 80 characters")
    columns = tenant.scope_columns()
    db = services.db
    inside = db.in_transaction()
    row = [
        batch_id,
        columns["region_id"],
        columns["province_id"],
        columns["school_id"],
        tenant.id,
        kind,
        msgspec.json.encode(people).decode(),
        text,
        msgspec.json.encode(params or {}).decode(),
        link,
        services.clock.utcnow(),
    ]
    insert = SQL(
        "INSERT INTO notification_batch (id, region_id, province_id, school_id, tenant_id, kind, recipients, msgid, "
        "params, link, status, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 'pending', {}) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        *row,
    )
    if inside:
        added = await db.fetch(insert)
        return batch_id if added else None
    from core.jobs import JobQueueError, queue_of
    from core.scope import Scope

    async with db.scoped(Scope(nodes=frozenset({tenant.id}))):
        added = await db.fetch(insert)
    if not added:
        return None
    try:
        await queue_of(services).enqueue(DELIVER_JOB, {"batch_id": batch_id}, scope_columns=columns, created_by=None)
    except JobQueueError:  # the batch is stored: the periodic run sends it
        log.warning("notification queued for the periodic run", extra={"batch": batch_id})
    return batch_id


def render(kind: NotificationKind, msgid: str, params: dict[str, Any]) -> dict[str, str]:
    """The text of a notification in every language (a value given per language takes that language's)."""
    out = {}
    for locale in LOCALES:
        values = {k: v.get(locale, v.get("fr", "")) if isinstance(v, dict) else v for k, v in params.items()}
        try:
            out[locale] = gettext_in(locale, msgid, **values)
        except (KeyError, IndexError, ValueError):
            log.warning("notification text does not fit its values", extra={"kind": kind.name, "msgid": msgid})
            out[locale] = gettext_in(locale, msgid)
    return out


async def expand(services: Services, batch_id: str) -> int:
    """Expand one pending batch (inside the caller's scoped transaction); returns the notifications created.

    Nothing happens when the batch is no longer pending (another run took it)."""
    db = services.db
    batch = await db.fetchrow(
        "UPDATE notification_batch SET status = 'done', done_at = {} WHERE id = {} AND status = 'pending' "
        "RETURNING id, region_id, province_id, school_id, tenant_id, kind, recipients, msgid, params, link",
        services.clock.utcnow(),
        batch_id,
    )
    if batch is None:
        return 0
    kind = services.notification_kinds.get(batch["kind"])
    if kind is None:  # the plugin that declared it is gone: nothing to render it with
        log.warning("notification of an unknown kind dropped", extra={"batch": batch_id, "kind": batch["kind"]})
        return 0
    tenant = await services.tenants.by_id(batch["tenant_id"])
    if tenant is None:
        return 0
    people: list[int] = msgspec.json.decode(batch["recipients"])
    texts = render(kind, batch["msgid"], msgspec.json.decode(batch["params"]))
    rule = (await prefs.rules(db, tenant.path, {kind.name: kind}))[kind.name]
    created = 0
    for start in range(0, len(people), CHUNK):
        chunk = people[start : start + CHUNK]
        rows = await db.fetch(
            SQL(
                "INSERT INTO notification (region_id, province_id, school_id, tenant_id, batch_id, person_id, kind, "
                "text, link, created_at) SELECT {}, {}, {}, {}, {}, p.id, {}, CASE p.locale WHEN 'ar' THEN {} "
                "WHEN 'en' THEN {} ELSE {} END, {}, {} FROM person p WHERE p.id IN {} AND p.active "
                "ON CONFLICT (batch_id, person_id) DO NOTHING RETURNING id, person_id",
                batch["region_id"],
                batch["province_id"],
                batch["school_id"],
                batch["tenant_id"],
                batch["id"],
                kind.name,
                texts["ar"],
                texts["en"],
                texts["fr"],
                batch["link"],
                services.clock.utcnow(),
                in_(chunk),
            )
        )
        created += len(rows)
        await _plan_deliveries(services, db, batch, kind, rule, rows)
    return created


async def _plan_deliveries(
    services: Services,
    db: Database,
    batch: dict[str, Any],
    kind: NotificationKind,
    rule: prefs.Rule,
    notifications: list[dict[str, Any]],
) -> None:
    """The e-mail and SMS rows of new notifications, as each recipient's preferences and the rule ask."""
    if not notifications:
        return
    ids = [n["person_id"] for n in notifications]
    chosen = await prefs.choices_of(db, ids, kind.name)
    settings = await prefs.settings_of(db, ids)
    emails = {r["id"]: r["email"] for r in await db.fetch(SQL("SELECT id, email FROM person WHERE id IN {}", in_(ids)))}
    local = services.clock.now()
    utcnow = services.clock.utcnow()
    default = prefs.default_choice(kind)
    rows = []
    for n in notifications:
        pid = n["person_id"]
        choice = chosen.get(pid, default)
        setting = settings.get(pid) or {}
        wants = {"email": choice.email, "sms": choice.sms}
        if rule.mandatory:
            wants = {c: wants[c] or c in kind.channels for c in wants}
        if not emails.get(pid):
            wants["email"] = False
        if not (rule.sms_allowed and kind.sms_eligible and setting.get("phone")):
            wants["sms"] = False
        quiet = prefs.quiet_until(local, setting.get("quiet_start"), setting.get("quiet_end"))
        for channel in ("email", "sms"):
            if not wants[channel]:
                continue
            status, at = "queued", quiet or local
            if channel == "email" and choice.digest:
                status, at = "digest", prefs.next_digest(local)
                if later := prefs.quiet_until(at, setting.get("quiet_start"), setting.get("quiet_end")):
                    at = later
            rows.append(
                (
                    batch["region_id"],
                    batch["province_id"],
                    batch["school_id"],
                    n["id"],
                    pid,
                    channel,
                    status,
                    at.astimezone(UTC),
                    utcnow,
                )
            )
    if rows:
        await db.executemany(
            "INSERT INTO notification_delivery (region_id, province_id, school_id, notification_id, person_id, "
            "channel, status, attempts, next_attempt_at, last_error, created_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, 0, {}, '', {}) ON CONFLICT (notification_id, channel) DO NOTHING",
            rows,
        )
