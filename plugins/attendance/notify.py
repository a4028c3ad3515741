"""Delivering family notices (in-app: the rows themselves; e-mail and SMS) and alerts (through the notification
centre), in each reader's language.

Delivery is a background job (``attendance.deliver``, :mod:`core.jobs`), enqueued after the transaction that
created the rows committed: the teacher's request never waits for a mail server. The job claims notices
with one ``UPDATE … SET status = 'sending'`` before anything is sent, so two runs racing for the same notice
send it once (the unique key pupil × day already made sure there is only one). A run also claims the
school's notices of the day that were left behind: still ``pending`` (the queue was down) or stuck in
``sending`` (a run crashed mid-send) for more than :data:`STALE_MINUTES`.

What a notice says is read when it is delivered, not when it was created: the pupil's marks of the day at that
moment (every lesson missed or late so far, corrections included). A notice whose pupil has no mark left that
day (the register was corrected before delivery) sends nothing and becomes ``void``; it is made ``pending``
again if the pupil is marked absent or late later that day. Marks recorded after the message went out send no
second e-mail or SMS (one message per child and day): the in-app notice always shows the day's marks as they
are, and says that it changed since the message (``updated``).

A mail server or SMS gateway that fails does not lose a message: each e-mail and SMS of a notice is recorded per
person and channel, sent once, and tried again with a growing wait by the periodic ``attendance.retry`` job until
it goes out or runs out of tries (:mod:`plugins.attendance.retries`).

Alerts go through the notification centre (``core.plugin_api.notify``, kind ``attendance.alert``): each recipient
finds it in their inbox and, as their preferences say, by e-mail; the centre retries, and the school reads what
became of them through ``notification_deliveries``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from core.plugin_api import (
    LOCALES,
    MAX_SMS_CHARS,
    SQL,
    JobContext,
    JobQueueError,
    Mail,
    Scope,
    Services,
    Sms,
    gettext_,
    in_,
    locale_var,
    notify,
    queue_of,
    scope_sql,
)
from plugins.attendance import retries
from plugins.attendance.common import name_of
from plugins.attendance.plugin import ALERT_KIND, DELIVERY_JOB

log = logging.getLogger("madrasa.attendance")

#: A notice ``sending`` (or ``pending``) for longer than this is claimed again by the next delivery run.
STALE_MINUTES = 15


def translated(locale: str, message: str, **values: Any) -> str:
    """``message`` in a given language (outside a request's language)."""
    token = locale_var.set(locale if locale in LOCALES else "fr")
    try:
        return gettext_(message, **values)
    finally:
        locale_var.reset(token)


def absence_text(locale: str, pupil: str, day: str, school: str, lines: list[str]) -> tuple[str, str, str]:
    """Subject, e-mail body and SMS text of a day's notice."""
    subject = translated(locale, "Attendance: {name} on {date}", name=pupil, date=day)
    body = "\n".join(
        [
            translated(
                locale,
                "Today, {date}, {name} was not present in every lesson at {school}:",
                date=day,
                name=pupil,
                school=school,
            ),
            "",
            *lines,
            "",
            translated(locale, "You can justify an absence online, in the Attendance pages of the portal."),
        ]
    )
    sms = translated(
        locale,
        "{school}: {name} was absent or late on {date}. Details and justification in the portal.",
        school=school,
        name=pupil,
        date=day,
    )
    return subject, body, sms[:MAX_SMS_CHARS]


async def deliver_notices(
    services: Services, notice_ids: list[int], scope: Scope, school_id: int | None, *, sweep: bool = False
) -> int:
    """Send the family notices (one per pupil and day) by e-mail and SMS; returns how many are now fully sent.

    Set-based: one transaction claims the notices asked for (still ``pending``), the school's notices of the day
    left ``pending`` or ``sending`` for more than :data:`STALE_MINUTES` and its notices whose next try is due
    (``sweep``: those of every school in ``scope``), and reads the pupils, their day's marks, their guardians and
    the messages already sent; the messages not sent yet go out; a second transaction records the outcome
    (:mod:`plugins.attendance.retries`).
    """
    db = services.db
    now = services.clock.utcnow()
    stale = SQL(
        "on_date = {} AND status IN ('pending', 'sending') AND COALESCE(claimed_at, created_at) < {}",
        services.clock.today(),
        now - timedelta(minutes=STALE_MINUTES),
    )
    due = SQL("status = 'retrying' AND next_attempt_at <= {}", now)
    if not sweep:
        school = SQL("school_id = {}", school_id if school_id is not None else -1)
        stale, due = school & stale, school & due
    async with db.scoped(scope):
        claimed = await db.fetch(
            SQL(
                "UPDATE attendance_notice SET status = 'sending', claimed_at = {} "
                "WHERE ((id IN {} AND status = 'pending') OR ({}) OR ({})) AND {} "
                "RETURNING id, student_id, on_date, region_id, province_id, school_id",
                now,
                in_(notice_ids),
                stale,
                due,
                scope_sql(scope),
            )
        )
        if not claimed:
            return 0
        pupil_ids = in_(sorted({c["student_id"] for c in claimed}))
        pupils = {
            r["id"]: r
            for r in await db.fetch(
                SQL(
                    "SELECT id, first_name, last_name, first_name_ar, last_name_ar FROM student WHERE id IN {}",
                    pupil_ids,
                )
            )
        }
        days = sorted({c["on_date"] for c in claimed})
        marks: dict[tuple[int, Any], list[dict[str, Any]]] = {}
        for m in await db.fetch(
            SQL(
                "SELECT m.student_id, m.on_date, m.kind, m.minutes, s.starts_at, s.ends_at, sb.name_fr, sb.name_ar, "
                "sb.name_en FROM attendance_mark m JOIN attendance_session se ON se.id = m.session_id "
                "JOIN timetable_slot s ON s.id = se.slot_id LEFT JOIN subject sb ON sb.code = s.subject_code "
                "WHERE m.student_id IN {} AND m.on_date IN {} ORDER BY s.starts_at",
                pupil_ids,
                in_(days),
            )
        ):
            marks.setdefault((m["student_id"], m["on_date"]), []).append(m)
        guardians: dict[int, list[dict[str, Any]]] = {}
        for g in await db.fetch(
            SQL(
                "SELECT g.student_id, p.id, p.email, p.locale, ac.phone FROM guardianship g JOIN person p "
                "ON p.id = g.person_id LEFT JOIN attendance_contact ac ON ac.person_id = p.id "
                "WHERE g.student_id IN {} AND p.active ORDER BY p.id",
                pupil_ids,
            )
        ):
            guardians.setdefault(g["student_id"], []).append(g)
        deliveries = await retries.known_deliveries(db, [c["id"] for c in claimed])
    void: list[int] = []
    for notice in claimed:
        day_marks = marks.get((notice["student_id"], notice["on_date"]), [])
        if not day_marks:
            void.append(notice["id"])
            continue
        await _send(services, notice, day_marks, pupils, guardians, deliveries[notice["id"]])
    now = services.clock.utcnow()
    sent = 0
    async with db.scoped(scope):
        # Only the run's own claim is recorded: a void notice marked again meanwhile stays pending.
        await db.execute(
            SQL(
                "UPDATE attendance_notice SET status = 'void', sent_at = NULL, channels = '' "
                "WHERE id IN {} AND status = 'sending'",
                in_(void),
            )
        )
        for notice in claimed:
            if notice["id"] in void:
                continue
            state = deliveries[notice["id"]]
            await retries.record(db, notice, state, now)
            summary = state.summary(now)
            sent += summary["status"] == "sent"
            await db.execute(
                "UPDATE attendance_notice SET status = {}, channels = {}, attempts = {}, next_attempt_at = {}, "
                "last_error = {}, sent_at = COALESCE(sent_at, {}) WHERE id = {} AND status = 'sending'",
                summary["status"],
                summary["channels"],
                summary["attempts"],
                summary["next"],
                summary["error"],
                now if summary["delivered"] or summary["status"] == "sent" else None,
                notice["id"],
            )
    return sent


async def _send(
    services: Services,
    notice: dict[str, Any],
    day_marks: list[dict[str, Any]],
    pupils: dict[int, dict[str, Any]],
    guardians: dict[int, list[dict[str, Any]]],
    state: retries.NoticeDeliveries,
) -> None:
    """Send one notice's messages that have not gone out yet; each outcome goes into ``state.tried``."""
    school = await services.tenants.by_id(notice["school_id"])
    for guardian in guardians.get(notice["student_id"], []):
        locale = guardian["locale"] if guardian["locale"] in LOCALES else "fr"
        subject, body, sms = absence_text(
            locale,
            name_of(pupils.get(notice["student_id"]) or {}, locale),
            notice["on_date"].strftime("%d/%m/%Y"),
            school.title(locale) if school else "",
            [mark_line(locale, m) for m in day_marks],
        )
        messages: list[tuple[str, Mail | Sms]] = [("email", Mail(to=guardian["email"], subject=subject, body=body))]
        if guardian["phone"] and services.sms is not None:
            messages.append(("sms", Sms(to=guardian["phone"], text=sms)))
        for channel, message in messages:
            key = (guardian["id"], channel)
            if not state.to_send(key):
                continue
            try:
                if isinstance(message, Mail):
                    await services.mailer.send(message)
                else:
                    await services.sms.send(message)
                state.tried[key] = None
            except Exception as exc:
                state.tried[key] = retries.describe(exc)
                log.warning(
                    "attendance notice not delivered",
                    extra={"notice": notice["id"], "channel": channel, "error": state.tried[key]},
                )


def mark_line(locale: str, mark: dict[str, Any]) -> str:
    """One line of a notice: the lesson's time and subject, absent or late by so many minutes."""
    subject = mark.get(f"name_{locale}") or mark.get("name_fr") or ""
    when = f"{mark['starts_at'].strftime('%H:%M')}–{mark['ends_at'].strftime('%H:%M')}"
    if mark["kind"] == "absent":
        return "- " + translated(locale, "{time} {subject}: absent", time=when, subject=subject)
    return "- " + translated(
        locale, "{time} {subject}: late by {minutes} min", time=when, subject=subject, minutes=mark["minutes"]
    )


async def deliver_alerts(services: Services, alert_ids: list[int], scope: Scope) -> int:
    """Hand new alerts to the notification centre; returns how many were handed over.

    Each alert goes to the pupil's guardians, homeroom teacher and the school's directors, in their language, in
    the inbox and by e-mail (kind ``attendance.alert``); the centre sends, retries and counts. The key
    ``attendance.alert:<id>`` makes a second run for the same alert send nothing.
    """
    if not alert_ids:
        return 0
    db = services.db
    async with db.scoped(scope, write=False):
        found = await db.fetch(
            SQL(
                "SELECT a.id, a.student_id, a.school_id, a.minutes, c.homeroom_teacher_id, st.first_name, "
                "st.last_name, st.first_name_ar, st.last_name_ar FROM attendance_alert a "
                "JOIN school_class c ON c.id = a.class_id JOIN student st ON st.id = a.student_id "
                "WHERE a.id IN {} AND {}",
                in_(alert_ids),
                scope_sql(scope, "a"),
            )
        )
        recipients = {
            a["id"]: [
                p["id"]
                for p in await db.fetch(
                    "SELECT DISTINCT p.id FROM person p WHERE p.active AND (p.id IN "
                    "(SELECT person_id FROM guardianship WHERE student_id = {}) OR p.id = {} OR p.id IN "
                    "(SELECT person_id FROM membership WHERE role = 'school_director' AND tenant_id = {})) "
                    "ORDER BY p.id",
                    a["student_id"],
                    a["homeroom_teacher_id"] or -1,
                    a["school_id"],
                )
            ]
            for a in found
        }
    handed = 0
    for alert in found:
        school = await services.tenants.by_id(alert["school_id"])
        if school is None:
            continue
        await notify(
            services,
            kind=ALERT_KIND,
            recipients=recipients[alert["id"]],
            tenant=school,
            text="{name} ({school}) has {hours} hours of unjustified absence in the last days. "
            "Please get in touch with the school.",
            params={
                "name": {locale: name_of(alert, locale) for locale in LOCALES},
                "school": {locale: school.title(locale) for locale in LOCALES},
                "hours": round(alert["minutes"] / 60, 1),
            },
            link=f"/attendance/pupils/{alert['student_id']}",
            key=f"{retries.ALERT_KEY}{alert['id']}",
        )
        handed += 1
    return handed


async def retry_job(job: JobContext) -> dict[str, int]:
    """The periodic ``attendance.retry`` job: claim and send every notice whose next try is due (and the day's
    notices a lost queue left ``pending``), in every school of the job's scope. Alerts are the notification
    centre's to retry."""
    return {"notices": await deliver_notices(job.services, [], job.scope, None, sweep=True)}


async def deliver_job(job: JobContext, notices: list[int], alerts: list[int]) -> dict[str, int]:
    """The ``attendance.deliver`` job: send a register's notices and alerts (and the school's stale notices)."""
    school_id = job.scope_columns.get("school_id")
    sent = await deliver_notices(job.services, [int(n) for n in notices], job.scope, school_id)
    alerted = await deliver_alerts(job.services, [int(a) for a in alerts], job.scope)
    return {"notices": sent, "alerts": alerted}


async def enqueue_delivery(
    services: Services, school: dict[str, Any], notices: list[int], alerts: list[int], created_by: int | None
) -> str | None:
    """After commit: queue the delivery of what a register created (nothing to send: no job).

    A queue that refuses the job is logged; the notices stay ``pending`` and the school's next delivery run
    of the day claims them.
    """
    if not notices and not alerts:
        return None
    try:
        return await queue_of(services).enqueue(
            DELIVERY_JOB,
            {"notices": notices, "alerts": alerts},
            scope_columns={c: school[c] for c in ("region_id", "province_id", "school_id")},
            created_by=created_by,
        )
    except JobQueueError:
        log.exception("attendance delivery not queued", extra={"notices": len(notices), "alerts": len(alerts)})
        return None
