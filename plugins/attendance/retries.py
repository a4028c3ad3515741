"""Retrying family notices and alerts: each person's message on each channel is sent once; failures wait and
try again.

A delivery run (:func:`plugins.attendance.notify.deliver_notices`) tries every message of a notice that has not
gone out yet: the e-mail and the SMS to each guardian. Each (notice, guardian, channel) has an
``attendance_delivery`` row once tried: ``sent`` (never sent again: when the mail went out and the SMS failed, the
next run sends the SMS only), ``retrying`` (the next attempt waits :func:`backoff`, doubling from
:data:`FIRST_WAIT` up to :data:`LONGEST_WAIT`), ``failed`` after :data:`MAX_ATTEMPTS` tries, with the last error,
or ``dropped`` when the notice no longer has that message (the guardian unlinked, the phone number removed).

The notice sums its messages up: ``sent`` when all went out, ``retrying`` (with ``next_attempt_at``, ``attempts``
and ``last_error``) while one waits for another try, ``failed`` with the reason once one has run out of tries.
The periodic job ``attendance.retry`` (every minute, :mod:`core.schedule`) claims the notices whose next try is
due, so a mail server or SMS gateway that comes back is used without anyone asking. An alert's e-mails go through
the notification centre, which retries them by the same rule; :func:`undelivered_alerts` reads their state there
(``attendance_delivery`` rows keyed by ``alert_id`` are from before alerts moved there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.plugin_api import SQL, Database, in_, notification_deliveries, retry

#: The rule of every message the platform sends (``core.plugin_api.retry``): tries, first and longest wait.
MAX_ATTEMPTS = retry.MAX_ATTEMPTS
FIRST_WAIT = retry.FIRST_WAIT
LONGEST_WAIT = retry.LONGEST_WAIT
MAX_ERROR_CHARS = retry.MAX_ERROR_CHARS
backoff = retry.backoff
describe = retry.describe
after_try = retry.after_try


Key = tuple[int, str]  # (person id, channel)


@dataclass
class NoticeDeliveries:
    """What is known of one notice's messages: before the run (``known``) and what the run did (``tried``)."""

    known: dict[Key, dict[str, Any]] = field(default_factory=dict)
    tried: dict[Key, str | None] = field(default_factory=dict)  # None: sent; text: the error
    #: The messages the notice has now (its pupil's active guardians, their phone numbers).
    wanted: set[Key] = field(default_factory=set)

    def to_send(self, key: Key) -> bool:
        """Whether the message still has to go out (never tried, or waiting for another try); notes it as wanted."""
        self.wanted.add(key)
        row = self.known.get(key)
        return row is None or row["status"] == "retrying"

    def outcome(self, now: datetime) -> dict[Key, dict[str, Any]]:
        """The new state of each message the run tried, and ``dropped`` for a message waiting for another try that
        the notice no longer has (the guardian was unlinked, the phone number removed)."""
        states = {
            key: after_try(int((self.known.get(key) or {}).get("attempts") or 0), error, now)
            for key, error in self.tried.items()
        }
        for key, row in self.known.items():
            if row["status"] == "retrying" and key not in self.wanted:
                states[key] = {"status": "dropped", "attempts": row["attempts"], "next": None}
                states[key] |= {"error": row["last_error"], "sent_at": None}
        return states

    def summary(self, now: datetime) -> dict[str, Any]:
        """The notice's state: status, channels that delivered, attempts, next attempt and last error."""
        states = {
            key: {"status": r["status"], "attempts": r["attempts"], "next": r["next_attempt_at"]}
            | {"error": r["last_error"]}
            for key, r in self.known.items()
        }
        states.update(self.outcome(now))
        states = {key: state for key, state in states.items() if state["status"] != "dropped"}
        statuses = {s["status"] for s in states.values()}
        waiting = [s for s in states.values() if s["status"] == "retrying"]
        given_up = [s for s in states.values() if s["status"] == "failed"]
        channels = {"app"} | {key[1] for key, s in states.items() if s["status"] == "sent"}
        errors = [s["error"] for s in (*waiting, *given_up) if s["error"]]
        return {
            "status": "retrying" if waiting else "failed" if given_up else "sent",
            "channels": ",".join(sorted(channels)),
            "attempts": max((int(s["attempts"]) for s in states.values()), default=0),
            "next": min(s["next"] for s in waiting) if waiting else None,
            "error": "; ".join(dict.fromkeys(errors))[:MAX_ERROR_CHARS],
            "delivered": "sent" in statuses,
        }


async def known_deliveries(db: Database, notice_ids: list[int]) -> dict[int, NoticeDeliveries]:
    """The recorded messages of the claimed notices (inside the claiming transaction)."""
    found: dict[int, NoticeDeliveries] = {n: NoticeDeliveries() for n in notice_ids}
    for row in await db.fetch(
        SQL(
            "SELECT notice_id, person_id, channel, status, attempts, next_attempt_at, last_error "
            "FROM attendance_delivery WHERE notice_id IN {}",
            in_(notice_ids),
        )
    ):
        found[row["notice_id"]].known[(row["person_id"], row["channel"])] = row
    return found


async def record(db: Database, notice: dict[str, Any], deliveries: NoticeDeliveries, now: datetime) -> None:
    """Store what the run did with one notice's messages (inside the recording transaction)."""
    for (person_id, channel), state in deliveries.outcome(now).items():
        values = (state["status"], state["attempts"], state["next"], state["error"], state["sent_at"])
        if (person_id, channel) in deliveries.known:
            await db.execute(
                "UPDATE attendance_delivery SET status = {}, attempts = {}, next_attempt_at = {}, last_error = {}, "
                "sent_at = {} WHERE notice_id = {} AND person_id = {} AND channel = {}",
                *values,
                notice["id"],
                person_id,
                channel,
            )
        else:
            await db.execute(
                "INSERT INTO attendance_delivery (region_id, province_id, school_id, notice_id, person_id, channel, "
                "status, attempts, next_attempt_at, last_error, sent_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, "
                "{}, {})",
                notice["region_id"],
                notice["province_id"],
                notice["school_id"],
                notice["id"],
                person_id,
                channel,
                *values,
            )


#: The states of a notice whose messages have not all gone out.
UNDELIVERED = ("retrying", "failed")
#: The key an alert is sent with through the notification centre (``attendance.alert:<id>``).
ALERT_KEY = "attendance.alert:"
NAMES = ("first_name", "last_name", "first_name_ar", "last_name_ar")


async def undelivered(
    db: Database, where: SQL, statuses: tuple[str, ...] = UNDELIVERED, limit: int = 100
) -> list[dict[str, Any]]:
    """The notices in ``where`` (a scope filter on alias ``n``) still retrying or failed, newest day first, with
    their pupil, tries, next try and last error (inside an open transaction)."""
    return await db.fetch(
        SQL(
            "SELECT n.id, n.student_id, n.on_date, n.status, n.attempts, n.next_attempt_at, n.last_error, n.channels, "
            "n.school_id, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar FROM attendance_notice n "
            "JOIN student st ON st.id = n.student_id WHERE n.status IN {} AND {} "
            "ORDER BY n.on_date DESC, n.id DESC LIMIT {}",
            in_(statuses),
            where,
            limit,
        )
    )


async def undelivered_alerts(db: Database, where: SQL, statuses: tuple[str, ...] = UNDELIVERED) -> list[dict[str, Any]]:
    """The alerts in ``where`` (a scope filter on alias ``d``, the alert) with an e-mail the notification centre
    is still retrying or gave up, newest first: the alert's pupil, ``retrying`` while one of its e-mails waits
    (else ``failed``), the most tries, the next try and the errors (inside an open transaction)."""
    rows = await db.fetch(
        SQL(
            "SELECT d.id, d.student_id, d.created_at, d.school_id, st.first_name, st.last_name, st.first_name_ar, "
            "st.last_name_ar FROM attendance_alert d JOIN student st ON st.id = d.student_id WHERE {} "
            "ORDER BY d.created_at DESC, d.id DESC LIMIT 500",
            where,
        )
    )
    sent = await notification_deliveries(db, [f"{ALERT_KEY}{r['id']}" for r in rows])
    out = []
    for alert in rows:
        group = [d for d in sent[f"{ALERT_KEY}{alert['id']}"] if d["status"] in UNDELIVERED]
        if not group:
            continue
        waiting = [d for d in group if d["status"] == "retrying"]
        status = "retrying" if waiting else "failed"
        if status not in statuses:
            continue
        out.append(
            {name: alert[name] for name in ("id", "student_id", "school_id", *NAMES)}
            | {
                "on_date": alert["created_at"],
                "status": status,
                "attempts": max(int(d["attempts"]) for d in group),
                "next_attempt_at": min((d["next_attempt_at"] for d in waiting), default=None),
                "last_error": "; ".join(dict.fromkeys(d["last_error"] for d in group if d["last_error"]))[
                    :MAX_ERROR_CHARS
                ],
            }
        )
    return out
