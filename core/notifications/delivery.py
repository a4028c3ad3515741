"""Delivering notifications: e-mail and SMS, once each, retried with backoff, within a rate limit.

The ``notifications.deliver`` job (:func:`deliver_job`) runs right after a batch commits (queued by
:func:`core.notifications.service.notify`, with the tenant's scope) and every minute on its own (a platform job:
:func:`core.schedule.every`). Each run expands the pending batches, then sends what is due:

* single messages: rows ``queued`` or ``retrying`` whose time has come, and rows left ``sending`` by a run that
  died (their lease, :data:`LEASE`, ran out). One ``UPDATE … RETURNING`` claims them, so two runs never send the
  same row, and the unique key (notification, channel) means there is only one row to send;
* digests: each person's ``digest`` rows whose time has come go out as one e-mail.

A message that falls in the recipient's quiet hours waits for their end; one over the rate limit
(:data:`RATE_LIMITS` messages per person, channel and hour, counted in ``notification_rate`` so that every process
shares it) waits for the next hour; neither counts as a try. A failed send is tried again after a growing wait
(:mod:`core.notifications.retry`) and given up as ``failed`` after the last try, with the reason kept.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.i18n import LOCALES, gettext_in
from core.mail import Mail, public_link
from core.notifications import prefs, retry
from core.notifications.service import expand
from core.sms import MAX_SMS_CHARS, Sms
from core.sql import SQL, in_

if TYPE_CHECKING:
    from core.jobs import JobContext
    from core.scope import Scope
    from core.services import Services

log = logging.getLogger("madrasa.notifications")

#: Messages per person, channel and hour; more wait for the next hour.
RATE_LIMITS = {"email": 30, "sms": 5}
#: A row claimed longer ago than this (its run died) is claimed again.
LEASE = timedelta(minutes=15)
#: Rows claimed per statement.
CLAIM = 500
#: Pending batches a sweep expands per run.
BATCHES = 200


async def deliver(services: Services, scope: Scope, batch_id: str | None = None) -> dict[str, int]:
    """One delivery run within ``scope``: expand the batch asked for (or the pending ones), then send what is
    due; returns counts."""
    from core.scope import Scope as _Scope

    db = services.db
    counts = {"notifications": 0, "sent": 0, "failed": 0, "deferred": 0, "digests": 0}
    async with db.scoped(scope, write=False):
        if batch_id is not None:
            pending = [batch_id]
        else:
            found = await db.fetch(
                SQL("SELECT id FROM notification_batch WHERE status = 'pending' ORDER BY created_at LIMIT {}", BATCHES)
            )
            pending = [r["id"] for r in found]
    for one in pending:
        async with db.scoped(scope):
            counts["notifications"] += await expand(services, one)
    while True:
        done = await _send_due(services, scope, counts)
        if done < CLAIM:
            break
    await _send_digests(services, scope, counts)
    if scope == _Scope.everything():
        async with db.transaction():
            await db.execute(
                "DELETE FROM notification_rate WHERE window_start < {}", services.clock.utcnow() - timedelta(days=1)
            )
    return counts


def window_of(now: datetime) -> datetime:
    """The rate-limit hour ``now`` falls in (UTC)."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def take_rate(services: Services, person_id: int, channel: str) -> bool:
    """Count one message to a person on a channel in the current hour; ``False`` when over the limit.

    Its own committed transaction, so that every process counts against the same row."""
    db = services.db
    window = window_of(services.clock.utcnow())
    async with db.transaction():
        sent = await db.fetchval(
            "INSERT INTO notification_rate (person_id, channel, window_start, sent) VALUES ({}, {}, {}, 1) "
            "ON CONFLICT (person_id, channel, window_start) DO UPDATE SET sent = notification_rate.sent + 1 "
            "RETURNING sent",
            person_id,
            channel,
            window,
        )
    return int(sent) <= RATE_LIMITS[channel]


def _lang(locale: str | None) -> str:
    return locale if locale in LOCALES else "fr"


async def _context(services: Services, rows: list[dict[str, Any]]) -> tuple[dict[int, Any], dict[int, Any], dict]:
    """The notifications, recipients and their settings of claimed rows (inside an open transaction)."""
    db = services.db
    notes = {
        r["id"]: r
        for r in await db.fetch(
            SQL(
                "SELECT id, tenant_id, kind, text, link FROM notification WHERE id IN {}",
                in_(sorted({r["notification_id"] for r in rows})),
            )
        )
    }
    people_ids = sorted({r["person_id"] for r in rows})
    people = {
        r["id"]: r
        for r in await db.fetch(SQL("SELECT id, email, locale, active FROM person WHERE id IN {}", in_(people_ids)))
    }
    return notes, people, await prefs.settings_of(db, people_ids)


async def _mail(services: Services, note: dict[str, Any], locale: str) -> tuple[str, str, str]:
    """Subject, body and SMS text of one notification in a language."""
    tenant = await services.tenants.by_id(note["tenant_id"])
    kind = services.notification_kinds.get(note["kind"])
    school = tenant.title(locale) if tenant else ""
    label = gettext_in(locale, kind.label) if kind else note["kind"]
    lines = [note["text"], ""]
    if note["link"]:
        lines += [await public_link(services.settings, services.db, note["link"], tenant), ""]
    lines.append(
        gettext_in(
            locale,
            "You can choose how you receive notifications: {url}",
            url=await public_link(services.settings, services.db, "/notifications/preferences", tenant),
        )
    )
    return f"{school}: {label}", "\n".join(lines), f"{school}: {note['text']}"[:MAX_SMS_CHARS]


async def _send_due(services: Services, scope: Scope, counts: dict[str, int]) -> int:
    """Claim and send up to :data:`CLAIM` single messages that are due; returns how many were claimed."""
    from core.db import scope_sql

    db = services.db
    now = services.clock.utcnow()
    due = SQL("status IN ('queued', 'retrying', 'sending') AND next_attempt_at <= {}", now)
    async with db.scoped(scope):
        claimed = await db.fetch(
            SQL(
                "UPDATE notification_delivery SET status = 'sending', next_attempt_at = {} WHERE id IN "
                "(SELECT id FROM notification_delivery WHERE {} AND {} ORDER BY next_attempt_at, id LIMIT {}) AND {} "
                "RETURNING id, notification_id, person_id, channel, attempts",
                now + LEASE,
                due,
                scope_sql(scope),
                CLAIM,
                due,
            )
        )
        if not claimed:
            return 0
        notes, people, settings = await _context(services, claimed)
    outcomes: dict[int, dict[str, Any]] = {}
    local = services.clock.now()
    for row in claimed:
        note, person = notes.get(row["notification_id"]), people.get(row["person_id"])
        setting = settings.get(row["person_id"]) or {}
        if note is None or person is None or not person["active"]:
            outcomes[row["id"]] = retry.after_try(retry.MAX_ATTEMPTS, "the notification or its recipient is gone", now)
            continue
        quiet = prefs.quiet_until(local, setting.get("quiet_start"), setting.get("quiet_end"))
        if quiet is not None:
            outcomes[row["id"]] = _wait(row, quiet.astimezone(UTC), "")
            continue
        if not await take_rate(services, row["person_id"], row["channel"]):
            outcomes[row["id"]] = _wait(row, window_of(now) + timedelta(hours=1), "rate limit")
            continue
        subject, body, sms = await _mail(services, note, _lang(person["locale"]))
        try:
            if row["channel"] == "email":
                await services.mailer.send(Mail(to=person["email"], subject=subject, body=body))
            else:
                if services.sms is None or not setting.get("phone"):
                    raise RuntimeError("no SMS gateway or no phone number")
                await services.sms.send(Sms(to=setting["phone"], text=sms))
            outcomes[row["id"]] = retry.after_try(row["attempts"], None, now)
        except Exception as exc:
            outcomes[row["id"]] = retry.after_try(row["attempts"], retry.describe(exc), now)
            log.warning(
                "notification not delivered",
                extra={"delivery": row["id"], "channel": row["channel"], "error": outcomes[row["id"]]["error"]},
            )
    await _record(services, scope, outcomes, counts)
    return len(claimed)


def _wait(row: dict[str, Any], until: datetime, reason: str) -> dict[str, Any]:
    """A message put back to wait (quiet hours, rate limit): not a try."""
    status = "retrying" if row["attempts"] else "queued"
    return {"status": status, "attempts": row["attempts"], "next": until, "error": reason, "sent_at": None}


async def _record(services: Services, scope: Scope, outcomes: dict[int, dict[str, Any]], counts: dict) -> None:
    db = services.db
    async with db.scoped(scope):
        for delivery_id, state in outcomes.items():
            await db.execute(
                "UPDATE notification_delivery SET status = {}, attempts = {}, next_attempt_at = {}, last_error = {}, "
                "sent_at = {} WHERE id = {}",
                state["status"],
                state["attempts"],
                state["next"],
                state["error"],
                state["sent_at"],
                delivery_id,
            )
            key = {"sent": "sent", "failed": "failed"}.get(state["status"], "deferred")
            counts[key] += 1


async def _send_digests(services: Services, scope: Scope, counts: dict[str, int]) -> None:
    """Each person's due ``digest`` e-mails as one message; claimed by moving their time past the lease."""
    from core.db import scope_sql

    db = services.db
    now = services.clock.utcnow()
    due = SQL("status = 'digest' AND next_attempt_at <= {}", now)
    async with db.scoped(scope):
        claimed = await db.fetch(
            SQL(
                "UPDATE notification_delivery SET next_attempt_at = {} WHERE {} AND {} "
                "RETURNING id, notification_id, person_id, channel, attempts",
                now + LEASE,
                due,
                scope_sql(scope),
            )
        )
        if not claimed:
            return
        notes, people, _ = await _context(services, claimed)
    by_person: dict[int, list[dict[str, Any]]] = {}
    for row in claimed:
        by_person.setdefault(row["person_id"], []).append(row)
    outcomes: dict[int, dict[str, Any]] = {}
    for person_id, rows in sorted(by_person.items()):
        person = people.get(person_id)
        found = [notes[r["notification_id"]] for r in rows if r["notification_id"] in notes]
        if person is None or not person["active"] or not found:
            for r in rows:
                outcomes[r["id"]] = retry.after_try(
                    retry.MAX_ATTEMPTS, "the notification or its recipient is gone", now
                )
            continue
        locale = _lang(person["locale"])
        error: str | None = None
        if not await take_rate(services, person_id, "email"):
            for r in rows:
                outcomes[r["id"]] = _wait(r, window_of(now) + timedelta(hours=1), "rate limit") | {"status": "digest"}
            continue
        lines = [gettext_in(locale, "Your notifications of the day:"), ""]
        for note in found:
            lines.append(f"- {note['text']}")
            if note["link"]:
                tenant = await services.tenants.by_id(note["tenant_id"])
                lines.append(f"  {await public_link(services.settings, db, note['link'], tenant)}")
        subject = gettext_in(locale, "Your notifications of the day ({count})", count=len(found))
        try:
            await services.mailer.send(Mail(to=person["email"], subject=subject, body="\n".join(lines)))
        except Exception as exc:
            error = retry.describe(exc)
        for r in rows:
            state = retry.after_try(r["attempts"], error, now)
            if state["status"] == "retrying":
                state["status"] = "digest"
            outcomes[r["id"]] = state
        counts["digests"] += error is None
    await _record(services, scope, outcomes, counts)


async def deliver_job(job: JobContext, batch_id: str | None = None) -> dict[str, int]:
    """The ``notifications.deliver`` job: a batch just committed, or (periodic, no batch) everything due."""
    return await deliver(job.services, job.scope, batch_id)


def register() -> None:
    """Register the delivery job with core's jobs, periodic every minute (idempotent)."""
    from core.jobs import register_job
    from core.notifications.service import DELIVER_JOB
    from core.schedule import every

    register_job(DELIVER_JOB, every(60)(deliver_job))
