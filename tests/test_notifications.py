"""The notification centre: inbox and unread count, the recipient's language, preferences (quiet hours, digest,
mandatory kinds, SMS only where the school allows it), retries that send once, the rate limit, isolation between
people, and the portal pages.

Mail goes to a real SMTP server of the test's own (aiosmtpd), stopped and started again; SMS to
:class:`tests.doubles.FlakyGateway`. The world's clock is pinned (:class:`core.clock.FixedClock`) and moved by
the tests; a job queue of the test's own runs the delivery jobs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.clock import SCHOOL_TZ, FixedClock
from core.jobs import InProcessQueue
from core.mail import SmtpMailer
from core.notifications import delivery
from core.notifications.retry import FIRST_WAIT
from core.notifications.service import DELIVER_JOB, UnknownKind, notify
from core.scope import Scope
from tests.doubles import FlakyGateway
from tests.test_notice_retries import SmtpSwitch

HOME = "lycee-ibn-batouta"
KIND = "example.note"
#: A message with a catalogued translation and a value to fill in.
TEXT = "Your notifications of the day ({count})"
START = datetime(2026, 11, 16, 10, 0, tzinfo=SCHOOL_TZ)  # a Monday, 10:00 in Casablanca
_numbers = itertools.count(1)


@pytest.fixture
async def centre(world) -> AsyncIterator[Any]:
    """The world's clock pinned at :data:`START` and a running job queue; both put back afterwards."""
    services = world.services
    previous = services.clock, services.jobs
    queue = InProcessQueue(services, concurrency=2, recover=False)
    await queue.start()
    services.clock, services.jobs = FixedClock(START), queue
    world.notify_since = datetime.now(UTC)
    try:
        yield world
    finally:
        await queue.stop()
        services.clock, services.jobs = previous


@pytest.fixture
def smtp(world) -> Iterator[SmtpSwitch]:
    """The world's mail goes to a real SMTP server of the test's own (up); put back afterwards."""
    switch = SmtpSwitch()
    switch.start()
    previous = world.services.mailer, world.services.sms
    world.services.mailer = SmtpMailer("127.0.0.1", switch.port, "no-reply@madrasa.test")
    try:
        yield switch
    finally:
        switch.stop()
        world.services.mailer, world.services.sms = previous


async def person(world, role: str = "parent", locale: str = "fr", tenant: str = HOME) -> tuple[str, int]:
    """A new account with a role at the school and a language; ``(e-mail, person id)``."""
    email = f"notified{next(_numbers)}.{world.backend}@test.ma"
    await world.add_person(email, role, tenant)
    async with world.services.db.transaction():
        await world.services.db.execute("UPDATE person SET locale = {} WHERE email = {}", locale, email)
    return email, int(await world.sql("SELECT id FROM person WHERE email = {}", email))


async def send(world, people: list[int], count: Any = 3, **extra: Any) -> str | None:
    """Notify people at the school and wait for the delivery jobs."""
    tenant = await world.services.tenants.by_slug(HOME)
    batch = await notify(
        world.services,
        kind=KIND,
        recipients=people,
        tenant=tenant,
        text=TEXT,
        params={"count": count},
        link="/example/notes",
        **extra,
    )
    await settle(world)
    return batch


async def settle(world) -> None:
    """Wait for the delivery jobs queued since the test began."""
    db = world.services.db
    for _ in range(5):
        async with db.scoped(Scope.everything(), write=False):
            rows = await db.fetch(
                "SELECT id FROM job WHERE kind = {} AND created_at >= {} AND status IN ('queued', 'running')",
                DELIVER_JOB,
                world.notify_since,
            )
        if not rows:
            return
        for row in rows:
            await world.services.jobs.wait(row["id"], seconds=30)
        await asyncio.sleep(0)


async def sweep(world) -> dict[str, int]:
    """One periodic run (platform scope), as the scheduler makes every minute."""
    return await delivery.deliver(world.services, Scope.everything())


async def deliveries(world, person_id: int) -> list[dict[str, Any]]:
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        return await db.fetch(
            "SELECT channel, status, attempts, next_attempt_at, last_error FROM notification_delivery "
            "WHERE person_id = {} ORDER BY id",
            person_id,
        )


def mails_to(switch: SmtpSwitch, address: str) -> list[Any]:
    return [m for m in switch.inbox.messages if m["To"] == address]


def utc(value: Any) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def test_inbox_in_each_recipients_language_with_unread_count(centre):
    world = centre
    french, french_id = await person(world, locale="fr")
    arabic, arabic_id = await person(world, locale="ar")
    await send(world, [french_id, arabic_id], count=4)
    fr = (await world.api("GET", "/api/v1/me/notifications", as_=french)).json()
    ar = (await world.api("GET", "/api/v1/me/notifications", as_=arabic)).json()
    assert [n["text"] for n in fr["items"]] == ["Vos notifications du jour (4)"]
    assert [n["text"] for n in ar["items"]] == ["إشعاراتك لهذا اليوم (4)"]
    assert fr["unread"] == 1 and fr["items"][0]["read"] is False and fr["items"][0]["link"] == "/example/notes"

    await send(world, [french_id], count=5)
    count = await world.api("GET", "/api/v1/me/notifications/unread-count", as_=french)
    assert count.status_code == 200 and count.json() == {"unread": 2}
    newest = (await world.api("GET", "/api/v1/me/notifications", as_=french)).json()["items"][0]
    marked = await world.api("POST", f"/api/v1/me/notifications/{newest['id']}/read", as_=french)
    assert marked.status_code == 200 and marked.json()["read"] is True
    assert (await world.api("GET", "/api/v1/me/notifications/unread-count", as_=french)).json() == {"unread": 1}
    unread = (await world.api("GET", "/api/v1/me/notifications", as_=french, params={"unread": "true"})).json()
    assert [n["text"] for n in unread["items"]] == ["Vos notifications du jour (4)"]
    everything = await world.api("POST", "/api/v1/me/notifications/read-all", as_=french)
    assert everything.json() == {"marked": 1, "unread": 0}
    # the other recipient's copy is untouched
    assert (await world.api("GET", "/api/v1/me/notifications/unread-count", as_=arabic)).json() == {"unread": 1}


async def test_a_value_given_per_language(centre):
    world = centre
    french, french_id = await person(world, locale="fr")
    arabic, arabic_id = await person(world, locale="ar")
    await send(world, [french_id, arabic_id], count={"fr": "trois", "ar": "ثلاثة"})
    fr = (await world.api("GET", "/api/v1/me/notifications", as_=french)).json()["items"]
    ar = (await world.api("GET", "/api/v1/me/notifications", as_=arabic)).json()["items"]
    assert [n["text"] for n in fr] == ["Vos notifications du jour (trois)"]
    assert [n["text"] for n in ar] == ["إشعاراتك لهذا اليوم (ثلاثة)"]


async def test_a_key_sends_once_and_an_unknown_kind_is_refused(centre):
    world = centre
    _, pid = await person(world)
    first = await send(world, [pid], key=f"test.once:{pid}")
    again = await send(world, [pid], key=f"test.once:{pid}")
    assert first == f"test.once:{pid}" and again is None
    assert await world.sql("SELECT COUNT(*) FROM notification WHERE person_id = {}", pid) == 1
    tenant = await world.services.tenants.by_slug(HOME)
    with pytest.raises(UnknownKind):
        await notify(world.services, kind="example.nothing", recipients=[pid], tenant=tenant, text=TEXT)


async def test_nobody_reads_or_marks_another_persons_notification(centre):
    world = centre
    owner, owner_id = await person(world)
    other, _ = await person(world)
    await send(world, [owner_id])
    [item] = (await world.api("GET", "/api/v1/me/notifications", as_=owner)).json()["items"]
    assert (await world.api("GET", "/api/v1/me/notifications", as_=other)).json()["items"] == []
    refused = await world.api("POST", f"/api/v1/me/notifications/{item['id']}/read", as_=other)
    assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
    page = await world.api("GET", f"/notifications/{item['id']}", as_=other, tenant=HOME)
    assert page.status_code == 404
    await world.api("POST", "/api/v1/me/notifications/read-all", as_=other)
    assert (await world.api("GET", "/api/v1/me/notifications/unread-count", as_=owner)).json() == {"unread": 1}


async def test_email_retried_until_the_server_is_back_and_sent_once(centre, smtp):
    world = centre
    email, pid = await person(world)
    smtp.stop()
    await send(world, [pid])
    [row] = await deliveries(world, pid)
    assert (row["channel"], row["status"], row["attempts"]) == ("email", "retrying", 1)
    assert utc(row["next_attempt_at"]) == START.astimezone(UTC) + FIRST_WAIT
    assert "ConnectionRefusedError" in row["last_error"]
    # not due yet: nothing is tried
    await sweep(world)
    assert (await deliveries(world, pid))[0]["attempts"] == 1
    smtp.start()
    world.services.clock.set(START + FIRST_WAIT)
    counts = await sweep(world)
    assert counts["sent"] >= 1
    [row] = await deliveries(world, pid)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    await sweep(world)
    world.services.clock.set(START + timedelta(hours=3))
    await sweep(world)
    [mail] = mails_to(smtp, email)
    assert "Vos notifications du jour (3)" in mail.get_content() and "/example/notes" in mail.get_content()


async def test_sms_only_where_the_school_allows_it_and_retried_once(centre, smtp):
    world = centre
    email, pid = await person(world)
    gateway = FlakyGateway(failures=1)
    world.services.sms = gateway
    choice = {"kinds": {KIND: {"email": False, "sms": True}}, "phone": "+212612345678"}
    saved = await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json=choice)
    assert saved.status_code == 200, saved.text
    assert saved.json()["phone"] == "+212612345678"
    # a later change of the channels alone keeps the number
    again = await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json={"kinds": choice["kinds"]})
    assert again.json()["phone"] == "+212612345678"
    await send(world, [pid])
    assert await deliveries(world, pid) == []  # the school has not allowed SMS for the kind
    director = f"director.{HOME}@test.ma"
    refused = await world.api(
        "PUT", "/api/v1/notifications/policy", as_=email, tenant=HOME, json={KIND: {"sms_allowed": True}}
    )
    assert refused.status_code == 403
    allowed = await world.api(
        "PUT", "/api/v1/notifications/policy", as_=director, tenant=HOME, json={KIND: {"sms_allowed": True}}
    )
    assert allowed.status_code == 200, allowed.text
    try:
        await send(world, [pid])
        [row] = await deliveries(world, pid)
        assert (row["channel"], row["status"], row["attempts"]) == ("sms", "retrying", 1)
        world.services.clock.set(START + FIRST_WAIT)
        await sweep(world)
        await sweep(world)
        [row] = await deliveries(world, pid)
        assert (row["status"], row["attempts"]) == ("sent", 2)
        assert gateway.calls == 2 and [m.to for m in gateway.sent] == ["+212612345678"]
        assert gateway.sent[0].text.endswith("Vos notifications du jour (3)")
        assert mails_to(smtp, email) == []
    finally:
        await world.api(
            "PUT", "/api/v1/notifications/policy", as_=director, tenant=HOME, json={KIND: {"sms_allowed": False}}
        )


async def test_quiet_hours_hold_mail_until_they_end(centre, smtp):
    world = centre
    email, pid = await person(world)
    body = {"quiet_start": "21:00", "quiet_end": "07:00"}
    assert (await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json=body)).status_code == 200
    world.services.clock.set(START.replace(hour=22))
    await send(world, [pid])
    [row] = await deliveries(world, pid)
    assert row["status"] == "queued"
    assert utc(row["next_attempt_at"]) == (START + timedelta(days=1)).replace(hour=7).astimezone(UTC)
    await sweep(world)
    assert mails_to(smtp, email) == []
    world.services.clock.set((START + timedelta(days=1)).replace(hour=7, minute=1))
    await sweep(world)
    assert len(mails_to(smtp, email)) == 1
    assert (await deliveries(world, pid))[0]["status"] == "sent"


async def test_a_daily_digest_instead_of_single_mails(centre, smtp):
    world = centre
    email, pid = await person(world)
    body = {"kinds": {KIND: {"email": True, "digest": True}}}
    assert (await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json=body)).status_code == 200
    await send(world, [pid], count=1)
    await send(world, [pid], count=2)
    await sweep(world)
    assert mails_to(smtp, email) == []
    assert [r["status"] for r in await deliveries(world, pid)] == ["digest", "digest"]
    world.services.clock.set(START.replace(hour=18, minute=1))
    await sweep(world)
    await sweep(world)
    [mail] = mails_to(smtp, email)
    assert mail["Subject"] == "Vos notifications du jour (2)"
    assert (
        "Vos notifications du jour (1)" in mail.get_content() and "Vos notifications du jour (2)" in mail.get_content()
    )
    assert [r["status"] for r in await deliveries(world, pid)] == ["sent", "sent"]


async def test_mandatory_kind_cannot_be_silenced(centre):
    world = centre
    email, _ = await person(world)
    director = f"director.{HOME}@test.ma"
    made = await world.api(
        "PUT", "/api/v1/notifications/policy", as_=director, tenant=HOME, json={KIND: {"mandatory": True}}
    )
    assert made.status_code == 200, made.text
    assert next(k for k in made.json()["kinds"] if k["kind"] == KIND)["mandatory"] is True
    try:
        silenced = await world.api(
            "PUT", "/api/v1/me/notifications/preferences", as_=email, json={"kinds": {KIND: {"email": False}}}
        )
        assert silenced.status_code == 400
        problem = silenced.json()
        assert problem["errors"] == [
            {
                "field": f"kinds.{KIND}",
                "message": f"Notifications “A note was added” ({KIND}) are mandatory here: "
                "they cannot be switched off.",
            }
        ]
        shown = (await world.api("GET", "/api/v1/me/notifications/preferences", as_=email)).json()
        assert next(k for k in shown["kinds"] if k["kind"] == KIND) | {"label": ""} == {
            "kind": KIND,
            "label": "",
            "email": True,
            "sms": False,
            "digest": False,
            "mandatory": True,
            "sms_eligible": True,
        }
        # the portal form says the same, beside the kind
        page = await world.api("POST", "/notifications/preferences", as_=email, tenant=HOME, data={})
        assert page.status_code == 400 and "obligatoires ici" in page.text
    finally:
        await world.api(
            "PUT", "/api/v1/notifications/policy", as_=director, tenant=HOME, json={KIND: {"mandatory": False}}
        )


async def test_bad_preferences_and_rules_are_refused(centre):
    world = centre
    email, _ = await person(world)
    for body, field in [
        ({"kinds": {"example.nothing": {"email": True}}}, "kinds.example.nothing"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "quiet_start"),
        ({"quiet_start": "21:00"}, "quiet_end"),
        ({"phone": "0612"}, "phone"),
    ]:
        response = await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json=body)
        assert response.status_code == 400, body
        assert [e["field"] for e in response.json()["errors"]] == [field]
    director = f"director.{HOME}@test.ma"
    response = await world.api(
        "PUT", "/api/v1/notifications/policy", as_=director, tenant=HOME, json={"example.nothing": {"mandatory": True}}
    )
    assert response.status_code == 400 and "example.nothing" in response.json()["detail"]


async def test_rate_limit_per_recipient_and_channel(centre, smtp, monkeypatch):
    world = centre
    monkeypatch.setitem(delivery.RATE_LIMITS, "email", 2)
    email, pid = await person(world)
    for count in (1, 2, 3):
        await send(world, [pid], count=count)
    assert len(mails_to(smtp, email)) == 2
    rows = await deliveries(world, pid)
    assert [r["status"] for r in rows] == ["sent", "sent", "queued"]
    assert rows[2]["attempts"] == 0 and rows[2]["last_error"] == "rate limit"
    assert utc(rows[2]["next_attempt_at"]) == START.astimezone(UTC).replace(minute=0) + timedelta(hours=1)
    # the counter is in the database: another process's run sees the same limit
    assert await delivery.take_rate(world.services, pid, "email") is False
    world.services.clock.set(START + timedelta(hours=1))
    await sweep(world)
    assert len(mails_to(smtp, email)) == 3


async def test_portal_bell_list_and_pages(centre):
    world = centre
    email, pid = await person(world)
    await send(world, [pid], count=7)
    home = await world.api("GET", "/", as_=email, tenant=HOME)
    assert home.status_code == 200 and 'id="bell"' in home.text and "/notifications/bell" in home.text
    assert f'href="/t/{HOME}/notifications"' in home.text  # the menu entry
    bell = await world.api("GET", "/notifications/bell", as_=email, tenant=HOME)
    assert bell.status_code == 200 and 'data-count="1"' in bell.text
    listing = await world.api("GET", "/notifications", as_=email, tenant=HOME)
    assert (
        listing.status_code == 200
        and "Vos notifications du jour (7)" in listing.text
        and 'class="unread"' in listing.text
    )
    [item] = (await world.api("GET", "/api/v1/me/notifications", as_=email)).json()["items"]
    opened = await world.api("GET", f"/notifications/{item['id']}", as_=email, tenant=HOME)
    assert opened.status_code in (302, 303) and opened.headers["location"] == f"/t/{HOME}/example/notes"
    assert 'data-count="0"' in (await world.api("GET", "/notifications/bell", as_=email, tenant=HOME)).text
    await send(world, [pid], count=8)
    marked = await world.api(
        "POST", "/notifications/read-all", as_=email, tenant=HOME, headers={"hx-request": "true"}, data={}
    )
    assert marked.status_code == 200 and marked.headers["hx-trigger"] == "notifications-changed"
    assert 'class="unread"' not in marked.text
    assert (await world.api("GET", "/notifications/preferences", as_=email, tenant=HOME)).status_code == 200
    director = f"director.{HOME}@test.ma"
    assert (await world.api("GET", "/notifications/policy", as_=director, tenant=HOME)).status_code == 200
    assert (await world.api("GET", "/notifications/policy", as_=email, tenant=HOME)).status_code == 403
    stats = await world.api("GET", "/api/v1/notifications/stats", as_=director, tenant=HOME)
    assert stats.status_code == 200
    kind = next(k for k in stats.json()["kinds"] if k["kind"] == KIND)
    assert kind["total"] >= 2 and kind["read"] >= 2
    assert (await world.api("GET", "/notifications/stats", as_=director, tenant=HOME)).status_code == 200


async def test_in_my_data_and_purged_with_the_regions_notices(centre):
    world = centre
    from core.privacy.export import person_sections
    from core.privacy.retention import purge_notifications

    email, pid = await person(world)
    body = {"kinds": {KIND: {"email": True, "digest": True}}, "quiet_start": "22:00", "quiet_end": "06:30"}
    assert (await world.api("PUT", "/api/v1/me/notifications/preferences", as_=email, json=body)).status_code == 200
    await send(world, [pid], count=9)
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        sections = {s.name: s.rows for s in await person_sections(db, pid)}
    assert [r["text"] for r in sections["notifications"]] == ["Vos notifications du jour (9)"]
    assert [(r["channel"], r["status"]) for r in sections["notification_messages"]] == [("email", "digest")]
    assert sections["notification_preferences"][1]["quiet_start"] == 22 * 60
    # The region's purge of notices (what purge_node runs with the region's period) removes them once old.
    region = await world.services.tenants.by_slug("casablanca-settat")
    async with db.scoped(Scope.everything()):
        assert await purge_notifications(db, region.id, START.astimezone(UTC)) == 0  # not older than that
        removed = await purge_notifications(db, region.id, START.astimezone(UTC) + timedelta(days=1))
    assert removed >= 1
    assert await world.sql("SELECT COUNT(*) FROM notification WHERE person_id = {}", pid) == 0
    assert await world.sql("SELECT COUNT(*) FROM notification_delivery WHERE person_id = {}", pid) == 0


async def test_runs_at_the_same_time_expand_and_send_once(centre, smtp):
    world = centre
    email, pid = await person(world)
    tenant = await world.services.tenants.by_slug(HOME)
    db = world.services.db
    # Inside the transaction of a change: the batch commits with it; the periodic runs send it.
    async with db.scoped(Scope(nodes=frozenset({tenant.id}))):
        await notify(world.services, kind=KIND, recipients=[pid], tenant=tenant, text=TEXT, params={"count": 6})
    assert await world.sql("SELECT COUNT(*) FROM notification WHERE person_id = {}", pid) == 0
    await asyncio.gather(sweep(world), sweep(world), sweep(world))
    assert await world.sql("SELECT COUNT(*) FROM notification WHERE person_id = {}", pid) == 1
    assert len(mails_to(smtp, email)) == 1
    # A retry due, claimed by several runs at once: one e-mail.
    smtp.stop()
    await send(world, [pid], count=7)
    smtp.start()
    world.services.clock.set(START + FIRST_WAIT)
    await asyncio.gather(sweep(world), sweep(world), sweep(world))
    assert len(mails_to(smtp, email)) == 2
    assert [r["status"] for r in await deliveries(world, pid)] == ["sent", "sent"]


async def test_a_notification_rolled_back_with_its_change_is_never_sent(centre, smtp):
    world = centre
    email, pid = await person(world)
    tenant = await world.services.tenants.by_slug(HOME)
    db = world.services.db
    with pytest.raises(RuntimeError):
        async with db.scoped(Scope(nodes=frozenset({tenant.id}))):
            await notify(world.services, kind=KIND, recipients=[pid], tenant=tenant, text=TEXT, params={"count": 1})
            raise RuntimeError("the change failed")
    await sweep(world)
    assert await world.sql("SELECT COUNT(*) FROM notification WHERE person_id = {}", pid) == 0
    assert mails_to(smtp, email) == []
