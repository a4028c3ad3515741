"""Family notices when the mail server is down and the SMS gateway fails: retried with a growing wait by the
periodic ``attendance.retry`` job, each guardian's e-mail and SMS sent exactly once when the service is back, and
given up after the last try with the reason shown to the school.

The mail server is a real aiosmtpd server of the test's own, stopped and started again; the SMS gateway is
:class:`tests.doubles.FlakyGateway` (it fails its first sends)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.app import build_plugin_host, build_services
from core.mail import SmtpMailer
from core.notifications.service import DELIVER_JOB
from core.plugin_api import Backend, PluginInfo, hookimpl
from core.schedule import Scheduler, period_job_id, periodic_jobs
from core.scope import Scope
from plugins.attendance.plugin import RETRY_EVERY_SECONDS, RETRY_JOB
from plugins.attendance.retries import FIRST_WAIT, MAX_ATTEMPTS, backoff
from tests import test_attendance as base
from tests.conftest import Inbox, free_port, make_settings
from tests.doubles import FlakyGateway
from tests.test_attendance import A, Setup, delivered, to

# The attendance tests' pinned school day and running job queue.
school_day = base.school_day


class SmtpSwitch:
    """A real SMTP server on a fixed local port that a test stops and starts again."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpSwitch]:
    """The test's own mail server, down at first."""
    switch = SmtpSwitch()
    try:
        yield switch
    finally:
        switch.stop()


@pytest.fixture
def outlets(world, smtp: SmtpSwitch) -> Iterator[None]:
    """The world's mail goes to :func:`smtp`'s server; its SMS to a gateway the test sets; both put back after."""
    previous = world.services.mailer, world.services.sms
    world.services.mailer = SmtpMailer("127.0.0.1", smtp.port, "no-reply@madrasa.test")
    try:
        yield
    finally:
        world.services.mailer, world.services.sms = previous


class Sweeps:
    """The periodic retry job, run as the scheduler runs it: one period after another (the world's clock is
    moved by the test)."""

    def __init__(self, world) -> None:
        self.world = world
        self.scheduler = Scheduler(world.services)
        # Periods of the test's own, far from any other test's (a period's job is recorded once).
        self.at = datetime.now(UTC) + timedelta(days=random.randrange(1, 10**5))

    async def run(self) -> dict[str, Any]:
        self.at += timedelta(seconds=RETRY_EVERY_SECONDS)
        queued = await self.scheduler.run_due(self.at)
        assert period_job_id(RETRY_JOB, RETRY_EVERY_SECONDS, self.at) in queued
        results = {}
        for job_id in queued:
            info = await self.world.services.jobs.wait(job_id, seconds=60)
            assert info.status == "done", info.error
            results[info.kind] = info.result
        self.results = results  # every periodic job's (the notification centre's sends the alerts)
        return results[RETRY_JOB]


async def rows(world, sql: str, *args: Any) -> list[dict[str, Any]]:
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        return await db.fetch(sql, *args)


def utc(value: Any) -> datetime | None:
    if value is None:
        return None
    assert isinstance(value, datetime), value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def notice(world, student_id: int) -> dict[str, Any]:
    [row] = await rows(
        world,
        "SELECT id, status, attempts, next_attempt_at, last_error, channels, sent_at FROM attendance_notice "
        "WHERE student_id = {}",
        student_id,
    )
    return row | {"next_attempt_at": utc(row["next_attempt_at"])}


async def deliveries(world, notice_id: int) -> dict[tuple[int, str], tuple[str, int]]:
    found = await rows(
        world,
        "SELECT person_id, channel, status, attempts FROM attendance_delivery WHERE notice_id = {}",
        notice_id,
    )
    return {(r["person_id"], r["channel"]): (r["status"], r["attempts"]) for r in found}


async def with_phones(world, s: Setup) -> dict[str, str]:
    phones = {}
    for guardian in s.guardians:
        phone = "+2126" + "".join(random.choice("0123456789") for _ in range(8))
        response = await world.api("PUT", "/api/v1/attendance/me/phone", as_=guardian, tenant=A, json={"phone": phone})
        assert response.status_code == 200, response.text
        phones[guardian] = phone
    return phones


def texts(gateway: FlakyGateway, phone: str) -> int:
    return sum(1 for m in gateway.sent if m.to == phone)


async def test_mail_down_and_sms_failing_then_back_each_message_goes_out_once(world, smtp, outlets):
    s = await Setup(world).build()
    phones = await with_phones(world, s)
    gateway = world.services.sms = FlakyGateway(failures=1)
    clock = world.services.clock
    sweeps = Sweeps(world)

    # Both children absent: the mail server is down, the gateway fails its first SMS.
    absent = [{"student_id": pupil, "status": "absent"} for pupil in s.pupils[:2]]
    assert (await s.take(absent)).status_code == 200
    assert set(await delivered(world)) == {"done"}
    first = [await notice(world, pupil) for pupil in s.pupils[:2]]
    for n in first:
        assert (n["status"], n["attempts"]) == ("retrying", 1)
        assert n["next_attempt_at"] == clock.utcnow() + FIRST_WAIT
        assert "ConnectionRefusedError" in n["last_error"]
    assert smtp.inbox.messages == [] and gateway.calls == 2 and len(gateway.sent) == 1
    [texted] = [g for g in s.guardians if texts(gateway, phones[g]) == 1]

    # Before the next try is due the sweep sends nothing.
    clock.set(clock.now() + timedelta(minutes=1))
    assert (await sweeps.run())["notices"] == 0
    assert gateway.calls == 2 and [(await notice(world, p))["attempts"] for p in s.pupils[:2]] == [1, 1]

    # Due, mail still down: the e-mails fail again and wait twice as long; the SMS that failed goes out, the one
    # that went out is not sent again.
    clock.set(clock.now() + timedelta(minutes=1))
    assert (await sweeps.run())["notices"] == 0
    for pupil in s.pupils[:2]:
        n = await notice(world, pupil)
        assert (n["status"], n["attempts"]) == ("retrying", 2)
        assert n["next_attempt_at"] == clock.utcnow() + 2 * FIRST_WAIT
    assert gateway.calls == 3 and {phone: texts(gateway, phone) for phone in phones.values()} == {
        phone: 1 for phone in phones.values()
    }
    assert smtp.inbox.messages == []

    # The mail server is back: the next sweep sends each guardian's e-mail, and only that.
    smtp.start()
    clock.set(clock.now() + 2 * FIRST_WAIT)
    assert (await sweeps.run())["notices"] == 2
    for pupil, guardian in zip(s.pupils[:2], s.guardians, strict=True):
        n = await notice(world, pupil)
        assert (n["status"], n["channels"], n["next_attempt_at"]) == ("sent", "app,email,sms", None)
        assert len(to(smtp.inbox, guardian)) == 1
        person = await world.sql("SELECT id FROM person WHERE email = {}", guardian)
        expected_sms_tries = 2 if guardian != texted else 1
        assert await deliveries(world, n["id"]) == {
            (person, "email"): ("sent", 3),
            (person, "sms"): ("sent", expected_sms_tries),
        }
    assert gateway.calls == 3 and len(gateway.sent) == 2

    # Later sweeps find nothing more to send to these families: nothing is doubled.
    clock.set(clock.now() + timedelta(hours=2))
    await sweeps.run()
    assert [len(to(smtp.inbox, g)) for g in s.guardians] == [1, 1] and gateway.calls == 3


async def test_an_sms_failing_n_times_is_retried_alone_and_sent_once(world, smtp, outlets):
    s = await Setup(world).build()
    phones = await with_phones(world, s)
    gateway = world.services.sms = FlakyGateway(failures=3)
    smtp.start()
    clock = world.services.clock
    sweeps = Sweeps(world)
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    await delivered(world)
    waits = []
    for _ in range(3):
        n = await notice(world, s.pupils[0])
        assert n["status"] == "retrying" and n["channels"] == "app,email"
        waits.append(n["next_attempt_at"] - clock.utcnow())
        clock.set(n["next_attempt_at"])
        await sweeps.run()
    assert waits == [backoff(1), backoff(2), backoff(3)] and waits == sorted(set(waits))
    n = await notice(world, s.pupils[0])
    assert (n["status"], n["channels"], n["attempts"]) == ("sent", "app,email,sms", 4)
    # One e-mail (the first run's, never sent again) and one SMS, after four tries of the gateway.
    guardian = s.guardians[0]
    assert len(to(smtp.inbox, guardian)) == 1
    assert texts(gateway, phones[guardian]) == 1 and gateway.calls == 4


async def test_a_message_the_notice_no_longer_has_is_dropped_not_retried(world, smtp, outlets):
    s = await Setup(world).build()
    phones = await with_phones(world, s)
    gateway = world.services.sms = FlakyGateway(failures=100)
    smtp.start()
    clock = world.services.clock
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    await delivered(world)
    n = await notice(world, s.pupils[0])
    assert (n["status"], n["channels"], gateway.calls) == ("retrying", "app,email", 1)
    # The guardian stops SMS notices before the next try: that SMS is dropped, the notice is sent (by e-mail).
    guardian = s.guardians[0]
    response = await world.api("PUT", "/api/v1/attendance/me/phone", as_=guardian, tenant=A, json={"phone": None})
    assert response.status_code == 200, response.text
    clock.set(n["next_attempt_at"])
    await Sweeps(world).run()
    n = await notice(world, s.pupils[0])
    assert (n["status"], n["channels"], n["next_attempt_at"]) == ("sent", "app,email", None)
    person = await world.sql("SELECT id FROM person WHERE email = {}", guardian)
    assert await deliveries(world, n["id"]) == {(person, "email"): ("sent", 1), (person, "sms"): ("dropped", 1)}
    assert gateway.calls == 1 and texts(gateway, phones[guardian]) == 0 and len(to(smtp.inbox, guardian)) == 1


async def test_after_the_last_try_the_notice_fails_with_the_reason_shown_to_the_school(world, smtp, outlets):
    s = await Setup(world).build()
    world.services.sms = FlakyGateway()
    clock = world.services.clock
    sweeps = Sweeps(world)
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    await delivered(world)
    waits = []
    for _ in range(MAX_ATTEMPTS - 1):
        n = await notice(world, s.pupils[0])
        assert n["status"] == "retrying"
        waits.append(n["next_attempt_at"] - clock.utcnow())
        clock.set(n["next_attempt_at"])
        await sweeps.run()
    assert waits == [backoff(k) for k in range(1, MAX_ATTEMPTS)] and waits == sorted(set(waits))
    n = await notice(world, s.pupils[0])
    assert (n["status"], n["attempts"], n["next_attempt_at"]) == ("failed", MAX_ATTEMPTS, None)
    assert n["last_error"].startswith("ConnectionRefusedError")
    # Given up: later sweeps (the mail server back or not) do not try again.
    smtp.start()
    clock.set(clock.now() + timedelta(hours=3))
    await sweeps.run()
    assert (await notice(world, s.pupils[0]))["attempts"] == MAX_ATTEMPTS and to(smtp.inbox, s.guardians[0]) == []

    # The school sees it, with the reason: in the API and on the director's attendance page.
    director = f"director.{A}@test.ma"
    response = await world.api("GET", "/api/v1/attendance/undelivered?status=failed", as_=director, tenant=A)
    assert response.status_code == 200, response.text
    [listed] = [r for r in response.json() if r["kind"] == "notice" and r["id"] == n["id"]]
    assert (listed["kind"], listed["status"], listed["attempts"]) == ("notice", "failed", MAX_ATTEMPTS)
    assert listed["reason"].startswith("ConnectionRefusedError") and listed["channels"] == ["app"]
    page = await world.api("GET", "/attendance/", as_=director, tenant=A)
    assert page.status_code == 200
    assert f'data-notice="{n["id"]}" data-status="failed"' in page.text and "ConnectionRefusedError" in page.text
    # The pupil's name leads to the school's page of the pupil, which the director may open (not the family's).
    link = f"/t/{A}/school/pupils/{listed['student_id']}"
    assert f'href="{link}"' in page.text
    assert (await world.api("GET", f"/school/pupils/{listed['student_id']}", as_=director, tenant=A)).status_code == 200
    # Another school's director does not see it; a guardian may not list the school's notices.
    other = await world.api(
        "GET", "/api/v1/attendance/undelivered", as_="director.lycee-moulay-youssef@test.ma", tenant=base.B
    )
    assert other.status_code == 200 and n["id"] not in {r["id"] for r in other.json()}
    denied = await world.api("GET", "/api/v1/attendance/undelivered", as_=s.guardians[0], tenant=A)
    assert denied.status_code == 403


async def test_an_alert_mailed_while_the_mail_server_is_down_reaches_each_recipient_once(world, smtp, outlets):
    world.services.sms = FlakyGateway()
    region = "region.rabat@madrasa.demo"
    response = await world.api(
        "PUT", "/api/v1/attendance/rules", as_=region, tenant="rabat-sale-kenitra", json={"unjustified_hours": 3}
    )
    assert response.status_code == 200, response.text
    s = await Setup(world, base.B).build()
    clock = world.services.clock
    sweeps = Sweeps(world)
    # Three hours absent today: the threshold is crossed and the alert is mailed, the mail server being down.
    for slot in s.slots:
        assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}], slot=slot)).status_code == 200
    await delivered(world)
    [alert] = await rows(world, "SELECT id FROM attendance_alert WHERE student_id = {}", s.pupils[0])
    # The alert goes through the notification centre: one inbox entry and one e-mail per recipient.
    key = f"attendance.alert:{alert['id']}"
    tries = await rows(
        world,
        "SELECT d.person_id, d.status, d.attempts, d.next_attempt_at FROM notification_delivery d "
        "JOIN notification n ON n.id = d.notification_id WHERE n.batch_id = {} AND d.channel = 'email'",
        key,
    )
    people = await rows(
        world, "SELECT p.email FROM person p JOIN notification n ON n.person_id = p.id WHERE n.batch_id = {}", key
    )
    recipients = {r["email"] for r in people}
    assert {s.guardians[0], s.teacher, f"director.{base.B}@test.ma"} <= recipients
    assert len(tries) == len(recipients)
    assert {(r["status"], r["attempts"]) for r in tries} == {("retrying", 1)}
    assert {utc(r["next_attempt_at"]) for r in tries} == {clock.utcnow() + FIRST_WAIT}

    # The school sees the alert waiting for another try.
    director = f"director.{base.B}@test.ma"
    response = await world.api("GET", "/api/v1/attendance/undelivered", as_=director, tenant=base.B)
    [listed] = [r for r in response.json() if r["kind"] == "alert" and r["id"] == alert["id"]]
    assert listed["status"] == "retrying" and listed["attempts"] == 1 and "ConnectionRefusedError" in listed["reason"]

    # The server is back: the next sweep mails each recipient once; later sweeps send nothing again.
    smtp.start()
    clock.set(clock.now() + FIRST_WAIT)
    await sweeps.run()
    assert sweeps.results[DELIVER_JOB]["sent"] >= len(recipients)
    clock.set(clock.now() + timedelta(hours=1))
    await sweeps.run()
    # One alert each; the guardian also has the day's notice (retried alike), nobody has anything twice.
    for address in recipients:
        assert len(to(smtp.inbox, address)) == (2 if address == s.guardians[0] else 1), address
    states = await rows(
        world,
        "SELECT d.status FROM notification_delivery d JOIN notification n ON n.id = d.notification_id "
        "WHERE n.batch_id = {}",
        key,
    )
    assert {r["status"] for r in states} == {"sent"}
    response = await world.api("GET", "/api/v1/attendance/undelivered", as_=director, tenant=base.B)
    assert alert["id"] not in {r["id"] for r in response.json() if r["kind"] == "alert"}


async def test_a_periodic_job_is_queued_once_per_period_whatever_the_number_of_schedulers(world):
    assert periodic_jobs(world.services)[RETRY_JOB] == RETRY_EVERY_SECONDS
    at = datetime.now(UTC) + timedelta(days=random.randrange(10**5, 2 * 10**5))
    one, two = Scheduler(world.services), Scheduler(world.services)
    first = await one.run_due(at)
    assert await two.run_due(at + timedelta(seconds=1)) == first  # another process, the same period: same job
    assert await one.run_due(at) == []  # this scheduler has done the period
    job_id = period_job_id(RETRY_JOB, RETRY_EVERY_SECONDS, at)
    assert job_id in first
    assert await world.sql("SELECT COUNT(*) FROM job WHERE id = {}", job_id) == 1
    assert (await world.services.jobs.wait(job_id, seconds=60)).status == "done"
    later = await two.run_due(at + timedelta(seconds=RETRY_EVERY_SECONDS))
    assert later and job_id not in later
    for other in later:
        await world.services.jobs.wait(other, seconds=60)


async def test_a_started_scheduler_queues_the_retry_job_by_itself(world):
    """Nobody calls anything: the scheduler's own loop records and runs the period's retry job."""
    since = datetime.now(UTC)
    scheduler = Scheduler(world.services, tick=0.05)
    await scheduler.start()
    try:
        queued: list[dict[str, Any]] = []
        for _ in range(600):  # the loop's first tick comes at once; wait for it (30 s at most)
            queued = await rows(world, "SELECT id FROM job WHERE kind = {} AND created_at >= {}", RETRY_JOB, since)
            if queued:
                break
            await asyncio.sleep(0.05)
        assert queued, "the scheduler queued no retry job"
        for row in queued:
            assert (await world.services.jobs.wait(row["id"], seconds=60)).status == "done"
    finally:
        await scheduler.stop()
    assert scheduler._task is None


class FlakySmsPlugin:
    """A test plugin offering the failing gateway as the SMS backend ``flaky``."""

    @hookimpl
    def madrasa_plugin_info(self) -> PluginInfo:
        return PluginInfo(name="flaky_sms", label="Flaky SMS", toggleable=False)

    @hookimpl
    def madrasa_backends(self) -> list[Backend]:
        return [Backend(kind="sms", name="flaky", factory=lambda settings: FlakyGateway(failures=2))]


def test_the_failing_gateway_plugs_in_as_an_sms_backend(tmp_path):
    settings = make_settings("sqlite", tmp_path, None, sms_backend="flaky")
    services = build_services(settings, plugins=build_plugin_host(settings, [FlakySmsPlugin()]))
    assert isinstance(services.sms, FlakyGateway) and services.sms.failures == 2
