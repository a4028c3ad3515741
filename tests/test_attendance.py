"""Attendance: default presence, one-request registers, idempotence, corrections, notices over real SMTP,
justifications with documents, thresholds and the at-risk list, statistics, access across tenants and roles."""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from core.clock import FixedClock
from core.jobs import JOBS, InProcessQueue
from core.mail import SmtpMailer
from core.notifications.service import DELIVER_JOB as NOTIFICATIONS_JOB
from core.school.rules import occurrences
from core.scope import Scope
from plugins.attendance import common, service, stats
from plugins.attendance.notify import DELIVERY_JOB
from tests.conftest import Inbox, link_guardian
from tests.doubles import EventRecorder, RecordingGateway, plugged

A, A2, B = "lycee-ibn-batouta", "college-al-khawarizmi", "lycee-moulay-youssef"
PDF = b"%PDF-1.4\n% justification\n"


def code() -> str:
    return "N" + "".join(random.choice("0123456789") for _ in range(9))


#: The day the tests run "on": a Monday of the first term of the reference year (core/school/reference.py),
#: not a holiday, with school days on the same weekday in the weeks before it.
DAY = date(2026, 11, 16)


def today() -> date:
    return DAY


@pytest.fixture(autouse=True)
async def school_day(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """For tests on the shared world: the clock pinned to :data:`DAY` and a running job queue (deliveries),
    both put back afterwards."""
    if "world" not in request.fixturenames:
        yield
        return
    world = request.getfixturevalue("world")
    services = world.services
    previous_clock, previous_jobs = services.clock, services.jobs
    queue = InProcessQueue(services, concurrency=2, recover=False)
    await queue.start()
    services.clock, services.jobs = FixedClock(DAY), queue
    world.delivery_since = datetime.now(UTC)
    try:
        yield
    finally:
        await queue.stop()
        services.clock, services.jobs = previous_clock, previous_jobs


async def delivered(world) -> list[str]:
    """Wait for the delivery jobs queued since the test began (attendance's, and the notification centre's that
    send the alerts); their final states."""
    db = world.services.db
    states = []
    for _ in range(3):  # a delivery may be queued while the previous ones finish
        async with db.scoped(Scope.everything(), write=False):
            rows = await db.fetch(
                "SELECT id FROM job WHERE kind IN ({}, {}) AND created_at >= {} AND status IN ('queued', 'running')",
                DELIVERY_JOB,
                NOTIFICATIONS_JOB,
                world.delivery_since,
            )
        if not rows:
            break
        for row in rows:
            states.append((await world.services.jobs.wait(row["id"], seconds=30)).status)
        await asyncio.sleep(0)
    return states


class Setup:
    """A fresh class of three pupils (two with a guardian), its own teacher and two lessons today."""

    def __init__(self, world, school: str = A) -> None:
        self.world, self.school = world, school
        self.director = f"director.{school}@test.ma"

    async def post(self, path: str, body: dict[str, Any], actor: str | None = None) -> Any:
        return await self.world.api("POST", path, as_=actor or self.director, tenant=self.school, json=body)

    async def build(self, weekday: int | None = None) -> Setup:
        w = self.world
        self.teacher = await w.add_person(f"t{random.randrange(10**9)}@test.ma", "teacher", self.school)
        self.teacher_id = await w.services.db.fetchval("SELECT id FROM person WHERE email = {}", self.teacher)
        response = await self.post(
            "/api/v1/school/classes",
            {
                "name": f"ATT-{random.randrange(10**6)}",
                "level_code": "TC",
                "track_code": "TCS",
                "homeroom_teacher_id": self.teacher_id,
            },
        )
        assert response.status_code == 201, response.text
        self.class_id = response.json()["id"]
        self.pupils: list[int] = []
        for first in ("Amal", "Badr", "Chaimae"):
            response = await self.post(
                "/api/v1/school/students",
                {"national_code": code(), "first_name": first, "last_name": "Test", "class_id": self.class_id},
            )
            assert response.status_code == 201, response.text
            self.pupils.append(response.json()["id"])
        self.guardians = []
        for pupil in self.pupils[:2]:
            guardian = f"g{random.randrange(10**9)}@test.ma"
            pid = await link_guardian(w, self.school, pupil, guardian, "P")
            await w.services.identity.set_password(pid, "a-good-password-1")
            w.passwords[guardian] = "a-good-password-1"
            self.guardians.append(guardian)
        assert (
            await self.post(
                "/api/v1/school/assignments",
                {"teacher_id": self.teacher_id, "class_id": self.class_id, "subject_code": "MATH"},
            )
        ).status_code == 201
        # Enrolled since the start of the year, so earlier days of the year have them on the register.
        db = w.services.db
        async with db.scoped(Scope.everything()):
            await db.execute(
                "UPDATE enrolment SET starts_on = "
                "(SELECT starts_on FROM school_year WHERE id = enrolment.school_year_id) WHERE class_id = {}",
                self.class_id,
            )
        self.weekday = weekday or today().isoweekday()
        self.slots = []
        for starts, ends in (("08:00", "10:00"), ("10:00", "11:00")):
            response = await self.post(
                "/api/v1/school/timetable",
                {
                    "class_id": self.class_id,
                    "subject_code": "MATH",
                    "teacher_id": self.teacher_id,
                    "weekday": self.weekday,
                    "starts_at": starts,
                    "ends_at": ends,
                },
            )
            assert response.status_code == 201, response.text
            self.slots.append(response.json()["id"])
        return self

    async def take(
        self,
        entries: list[dict[str, Any]],
        *,
        slot: int | None = None,
        on: date | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {"entries": entries}
        if reason is not None:
            body["reason"] = reason
        return await self.world.api(
            "PUT",
            f"/api/v1/attendance/sessions/{slot or self.slots[0]}/{(on or today()).isoformat()}",
            as_=actor or self.teacher,
            tenant=self.school,
            json=body,
        )


async def write(world, sql: str, *args: Any) -> None:
    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(sql, *args)


async def count(world, sql: str, *args: Any) -> int:
    return int(await world.sql(sql, *args) or 0)


# -- taking attendance -------------------------------------------------------------------------


async def test_everyone_is_present_until_marked(world):
    s = await Setup(world).build()
    response = await world.api(
        "GET", f"/api/v1/attendance/sessions/{s.slots[0]}/{today().isoformat()}", as_=s.teacher, tenant=A
    )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["taken"] is False and view["present"] == 3
    assert {p["status"] for p in view["pupils"]} == {"present"}

    response = await s.take(
        [{"student_id": s.pupils[0], "status": "absent"}, {"student_id": s.pupils[1], "status": "late", "minutes": 12}]
    )
    assert response.status_code == 200, response.text
    view = response.json()
    statuses = {p["student_id"]: (p["status"], p["minutes"]) for p in view["pupils"]}
    assert statuses == {s.pupils[0]: ("absent", None), s.pupils[1]: ("late", 12), s.pupils[2]: ("present", None)}
    assert view["taken"] is True and (view["present"], view["absent"], view["late"]) == (1, 1, 1)
    # Only the two pupils who were not present have a row; the register itself is one row.
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE class_id = {}", s.class_id) == 2
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE class_id = {}", s.class_id) == 1
    minutes = await world.sql(
        "SELECT minutes FROM attendance_mark WHERE student_id = {} AND class_id = {}", s.pupils[0], s.class_id
    )
    assert minutes == 120  # the lesson's length

    # An empty register: everyone present, the register is taken.
    response = await s.take([], slot=s.slots[1])
    assert response.status_code == 200 and response.json()["present"] == 3 and response.json()["taken"] is True


async def test_a_correction_to_everyone_present_removes_every_mark(world):
    s = await Setup(world).build()
    marked = [
        {"student_id": s.pupils[0], "status": "absent"},
        {"student_id": s.pupils[1], "status": "late", "minutes": 5},
    ]
    assert (await s.take(marked)).status_code == 200
    response = await s.take([])
    assert response.status_code == 200, response.text
    assert response.json()["present"] == 3 and response.json()["version"] == 2
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE class_id = {}", s.class_id) == 0


@pytest.fixture
def events(world) -> Iterator[EventRecorder]:
    """The domain events delivered during the test, heard by a plugin registered for its duration."""
    with plugged(world.services.plugins, EventRecorder()) as recorder:
        yield recorder


async def test_the_same_submission_twice_gives_the_same_result(world, events):
    s = await Setup(world).build()
    entries = [{"student_id": s.pupils[0], "status": "absent"}]
    first = await s.take(entries)
    second = await s.take(entries)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.json()["version"] == 1
    # One event: the second submission changed nothing.
    assert len(events.where(slot_id=s.slots[0])) == 1
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE class_id = {}", s.class_id) == 1
    assert await count(world, "SELECT COUNT(*) FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == 1
    # Nothing to audit: nothing changed.
    session_id = await world.sql("SELECT id FROM attendance_session WHERE slot_id = {}", s.slots[0])
    assert (
        await count(
            world,
            "SELECT COUNT(*) FROM audit_log WHERE object_type = 'attendance_session' AND object_id = {}",
            str(session_id),
        )
        == 0
    )


async def test_same_day_correction_by_the_teacher_is_audited(world, events):
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    recorded = events.named("attendance.recorded")
    assert recorded[-1].data["absent"] == [s.pupils[0]] and recorded[-1].data["correction"] is False
    response = await s.take([{"student_id": s.pupils[1], "status": "late", "minutes": 5}])
    assert response.status_code == 200, response.text
    recorded = events.named("attendance.recorded")
    assert recorded[-1].data["late"] == [s.pupils[1]] and recorded[-1].data["correction"] is True
    view = response.json()
    assert view["version"] == 2
    assert {p["student_id"]: p["status"] for p in view["pupils"]}[s.pupils[0]] == "present"
    session_id = await world.sql("SELECT id FROM attendance_session WHERE slot_id = {}", s.slots[0])
    audit = await world.api(
        "GET",
        "/api/v1/audit",
        as_=s.director,
        tenant=A,
        params={"object_type": "attendance_session", "object_id": str(session_id)},
    )
    assert audit.status_code == 200
    entries = audit.json()
    assert len(entries) == 1 and entries[0]["action"] == "attendance.correct"
    assert entries[0]["before"] == {str(s.pupils[0]): {"status": "absent", "minutes": 120}}


async def test_bad_registers_are_refused_and_write_nothing(world):
    s = await Setup(world).build()
    other = await Setup(world).build()
    # Not in the teacher's timetable: another teacher's lesson in the same school.
    response = await s.take([], slot=other.slots[0])
    assert response.status_code == 403, response.text
    # A pupil of another class: 400 naming the pupil.
    response = await s.take(
        [{"student_id": s.pupils[0], "status": "absent"}, {"student_id": other.pupils[0], "status": "absent"}]
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert f"Pupil {other.pupils[0]} is not in this class" in problem["detail"]
    assert problem["code"] == "invalid_entries"
    [item] = problem["errors"]
    assert (item["field"], item["code"]) == (f"entries[{other.pupils[0]}]", "pupil_not_in_class")
    # Late without minutes, minutes beyond the lesson, a pupil twice.
    for entries in (
        [{"student_id": s.pupils[0], "status": "late"}],
        [{"student_id": s.pupils[0], "status": "late", "minutes": 500}],
        [{"student_id": s.pupils[0], "status": "absent"}, {"student_id": s.pupils[0], "status": "absent"}],
    ):
        response = await s.take(entries)
        assert response.status_code == 400, response.text
        assert "Chaimae" in response.json()["detail"] or "Amal" in response.json()["detail"]
    # Wrong shapes.
    for entries in ([{"student_id": s.pupils[0], "status": "sick"}], [{"student_id": "x", "status": "absent"}]):
        assert (await s.take(entries)).status_code == 400
    # A day without the lesson, a day to come.
    assert (await s.take([], on=today() + timedelta(days=1))).status_code == 400
    assert (await s.take([], on=today() + timedelta(days=7))).status_code == 400
    # Nothing was written by any of them.
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE class_id = {}", s.class_id) == 0
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE class_id = {}", other.class_id) == 0
    assert await count(world, "SELECT COUNT(*) FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == 0


async def test_later_days_are_corrected_by_the_director_with_a_reason(world):
    s = await Setup(world).build()
    cal = await _calendar(world)
    # The latest earlier day of the lesson's weekday that is a school day (a holiday a week ago is skipped).
    earlier = [today() - timedelta(days=7 * k) for k in range(1, 11)]
    past = next((day for day in earlier if service.school_days(cal, day, day)), None)
    if past is None:
        pytest.fail("no school day with this weekday in the last ten weeks: the test needs term time")
    # The teacher may not take or correct another day.
    response = await s.take([{"student_id": s.pupils[0], "status": "absent"}], on=past)
    assert response.status_code == 403, response.text
    # The director records it, then corrects it: both need a reason, and both are audited.
    response = await s.take([{"student_id": s.pupils[0], "status": "absent"}], on=past, actor=s.director)
    assert response.status_code == 400 and "reason" in response.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_session WHERE slot_id = {}", s.slots[0]) == 0
    response = await s.take(
        [{"student_id": s.pupils[0], "status": "absent"}], on=past, actor=s.director, reason="Register on paper"
    )
    assert response.status_code == 200, response.text
    # The same register again: nothing changes, so no reason is needed.
    again = await s.take([{"student_id": s.pupils[0], "status": "absent"}], on=past, actor=s.director)
    assert again.status_code == 200 and again.json() == response.json()
    response = await s.take([], on=past, actor=s.director)
    assert response.status_code == 400 and "reason" in response.text
    response = await s.take([], on=past, actor=s.director, reason="Certificate of presence from the nurse")
    assert response.status_code == 200, response.text
    assert response.json()["absent"] == 0
    session_id = await world.sql(
        "SELECT id FROM attendance_session WHERE slot_id = {} AND on_date = {}", s.slots[0], past
    )
    audit = await world.api(
        "GET",
        "/api/v1/audit",
        as_=s.director,
        tenant=A,
        params={"object_type": "attendance_session", "object_id": str(session_id)},
    )
    assert [(e["action"], e["reason"]) for e in audit.json()] == [
        ("attendance.correct", "Certificate of presence from the nurse"),
        ("attendance.record_late", "Register on paper"),
    ]
    # No notice for a past day: families are told on the day.
    assert await count(world, "SELECT COUNT(*) FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == 0


async def _calendar(world) -> dict[str, Any]:
    db = world.services.db
    async with db.scoped(Scope.everything(), write=False):
        return await service.calendar(db, world.ids["casablanca-settat"], today())


# -- notices -----------------------------------------------------------------------------------


@pytest.fixture
def inbox(world, smtp_server):
    box, port = smtp_server
    previous, previous_sms = world.services.mailer, world.services.sms
    world.services.mailer = SmtpMailer("127.0.0.1", port, "no-reply@madrasa.test")
    world.services.sms = RecordingGateway()
    box.messages.clear()
    yield box
    world.services.mailer, world.services.sms = previous, previous_sms


def test_the_delivery_job_is_declared_through_the_hook(world):
    """The job comes from ``madrasa_jobs`` into ``services.job_functions``, not from an import side effect."""
    assert DELIVERY_JOB in world.services.job_functions
    assert DELIVERY_JOB not in JOBS


def to(box: Inbox, address: str) -> list[email.message.Message]:
    return [m for m in box.messages if m["To"] == address]


async def test_one_message_per_child_per_day_over_smtp_and_sms(world, inbox):
    s = await Setup(world).build()
    guardian = s.guardians[0]
    await world.services.db.execute("UPDATE person SET locale = 'en' WHERE email = {}", guardian)
    response = await world.api(
        "PUT", "/api/v1/attendance/me/phone", as_=guardian, tenant=A, json={"phone": "+212612345678"}
    )
    assert response.status_code == 200, response.text
    assert (
        await world.api("PUT", "/api/v1/attendance/me/phone", as_=guardian, tenant=A, json={"phone": "0612"})
    ).status_code == 400
    # Absent in the first lesson, the same register sent again, absent in the second lesson too.
    absent = [{"student_id": s.pupils[0], "status": "absent"}]
    assert (await s.take(absent)).status_code == 200
    assert (await s.take(absent)).status_code == 200
    assert (await s.take(absent, slot=s.slots[1])).status_code == 200
    # The second guardian's child is late in the second lesson only.
    late = [*absent, {"student_id": s.pupils[1], "status": "late", "minutes": 10}]
    assert (await s.take(late, slot=s.slots[1])).status_code == 200
    assert set(await delivered(world)) == {"done"}

    first = to(inbox, guardian)
    assert len(first) == 1, [m["Subject"] for m in first]
    body = first[0].get_content()
    # Sent when the first absence of the day was recorded; later ones that day send nothing more.
    assert "Amal" in first[0]["Subject"] and "08:00–10:00 Mathematics: absent" in body
    second = to(inbox, s.guardians[1])
    assert len(second) == 1
    texts = [m for m in world.services.sms.sent if m.to == "+212612345678"]
    assert len(texts) == 1 and "Amal" in texts[0].text
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == "sent"

    # In-app: the family's list shows one notice for the day, with both absences counted.
    response = await world.api("GET", "/api/v1/attendance/notices", as_=guardian, tenant=A)
    assert response.status_code == 200
    mine = [n for n in response.json() if n["student_id"] == s.pupils[0] and n["kind"] == "absence"]
    assert len(mine) == 1 and mine[0]["absent"] == 2
    # The other family does not see it.
    response = await world.api("GET", "/api/v1/attendance/notices", as_=s.guardians[1], tenant=A)
    assert {n["student_id"] for n in response.json()} == {s.pupils[1]}


async def test_notice_is_in_the_guardians_language(world, inbox):
    s = await Setup(world).build()
    pid = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", s.guardians[0])
    await world.services.db.execute("UPDATE person SET locale = 'ar' WHERE id = {}", pid)
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    await delivered(world)
    [message] = to(inbox, s.guardians[0])
    assert message["Subject"].startswith("الحضور") and "غائب" in message.get_content()


async def test_notices_are_sent_by_a_job_after_the_request(world, inbox):
    """The register's request only queues the delivery: with the queue stopped, nothing is sent yet."""
    s = await Setup(world).build()
    await world.services.jobs.stop()
    response = await s.take([{"student_id": s.pupils[0], "status": "absent"}])
    assert response.status_code == 200, response.text
    assert to(inbox, s.guardians[0]) == []
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == "pending"
    job = await world.sql(
        "SELECT id FROM job WHERE kind = {} AND status = 'queued' AND created_at >= {}",
        DELIVERY_JOB,
        world.delivery_since,
    )
    assert job is not None
    # The queue runs it in the background (here: once started again); the message goes out once.
    await world.services.jobs.start()
    assert (await world.services.jobs.wait(job, seconds=30)).status == "done"
    assert len(to(inbox, s.guardians[0])) == 1
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == "sent"


async def test_a_notice_stuck_in_sending_is_claimed_again_by_the_next_run(world, inbox):
    s = await Setup(world).build()
    # A run claimed two notices and crashed before sending: one 20 minutes ago, one 5 minutes ago.
    now = world.services.clock.utcnow()
    for pupil, minutes in ((s.pupils[0], 20), (s.pupils[1], 5)):
        await write(
            world,
            "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, created_at, kind, "
            "status, channels, claimed_at) SELECT region_id, province_id, school_id, id, {}, {}, 'absence', "
            "'sending', '', {} FROM student WHERE id = {}",
            DAY,
            now - timedelta(minutes=minutes),
            now - timedelta(minutes=minutes),
            pupil,
        )
    # The next delivery run of the school (the three pupils absent: the two claimed notices are not created again,
    # the third pupil's is new) claims the stale one and sends it once.
    response = await s.take([{"student_id": pupil, "status": "absent"} for pupil in s.pupils])
    assert response.status_code == 200, response.text
    assert set(await delivered(world)) == {"done"}
    assert len(to(inbox, s.guardians[0])) == 1
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", s.pupils[0]) == "sent"
    # The recent claim may still be sending in another worker: left alone.
    assert to(inbox, s.guardians[1]) == []
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", s.pupils[1]) == "sending"
    # A later run, once that one is stale too, sends it; nothing is sent twice.
    await write(
        world,
        "UPDATE attendance_notice SET claimed_at = {} WHERE student_id = {}",
        now - timedelta(minutes=30),
        s.pupils[1],
    )
    other = await Setup(world).build()
    assert (await other.take([{"student_id": other.pupils[0], "status": "absent"}])).status_code == 200
    await delivered(world)
    assert len(to(inbox, s.guardians[1])) == 1 and len(to(inbox, s.guardians[0])) == 1


async def test_a_saq_worker_delivers_the_notices(world, inbox):
    """With the production queue (SAQ on Redis), the request enqueues and a worker sends the message."""
    from redis.asyncio import Redis

    from core.jobs import SaqQueue
    from tests.job_helpers import REDIS_URL

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await asyncio.wait_for(client.ping(), 3)
    finally:
        await client.aclose()
    s = await Setup(world).build()
    name = f"madrasa-attendance-{random.randrange(10**9)}"
    queue = SaqQueue(world.services, redis_url=REDIS_URL, name=name, concurrency=1, timeout=60)
    await queue.start()
    in_process, world.services.jobs = world.services.jobs, queue
    worker = queue.worker()
    task = asyncio.create_task(worker.start())
    try:
        assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
        job = await world.sql(
            "SELECT id FROM job WHERE kind = {} AND created_at >= {} ORDER BY created_at DESC",
            DELIVERY_JOB,
            world.delivery_since,
        )
        info = await queue.wait(job, seconds=30)
        assert info.status == "done", info.error
        assert info.result == {"notices": 1, "alerts": 0}
        assert len(to(inbox, s.guardians[0])) == 1
    finally:
        world.services.jobs = in_process
        await worker.stop()
        await asyncio.gather(task, return_exceptions=True)
        keys = [k async for k in queue.queue.redis.scan_iter(match=f"saq:*{name}*")]
        if keys:
            await queue.queue.redis.delete(*keys)
        await queue.stop()


async def test_a_submission_costs_the_same_statements_whatever_the_number_of_pupils(world, monkeypatch):
    """Set-based writes: correcting one pupil or every pupil of the register runs the same statements."""
    s = await Setup(world).build()
    db = world.services.db
    statements: list[str] = []
    fetch, execute = db.fetch, db.execute

    def text(sql: Any) -> str:
        return sql if isinstance(sql, str) else sql.compile(db.dialect)[0]

    async def counted_fetch(sql: Any, *args: Any) -> Any:
        statements.append(text(sql))
        return await fetch(sql, *args)

    async def counted_execute(sql: Any, *args: Any) -> Any:
        statements.append(text(sql))
        return await execute(sql, *args)

    a, b, c = s.pupils
    assert (await s.take([{"student_id": p, "status": "absent"} for p in (a, b, c)])).status_code == 200
    await delivered(world)
    monkeypatch.setattr(db, "fetch", counted_fetch)
    monkeypatch.setattr(db, "execute", counted_execute)
    counts = []
    for entries in (
        [{"student_id": a, "status": "late", "minutes": 5}, {"student_id": b, "status": "absent"}],
        [{"student_id": a, "status": "absent"}, {"student_id": c, "status": "late", "minutes": 6}],
    ):
        statements.clear()
        response = await s.take(entries)
        assert response.status_code == 200, response.text
        counts.append(len([q for q in statements if "FROM job" not in q]))
    monkeypatch.undo()
    assert counts[0] == counts[1], statements
    if world.backend == "postgres":
        # The lesson, the register row (created or locked), its pupils with their marks, one write of the
        # marks, version and notices, the alert check, the audit entry of the correction.
        assert counts[1] <= 6, statements


# -- justifications ----------------------------------------------------------------------------


async def _absence(world, s: Setup, pupil: int) -> int:
    response = await world.api("GET", f"/api/v1/attendance/pupils/{pupil}/absences", as_=s.guardians[0], tenant=A)
    assert response.status_code == 200, response.text
    return response.json()["absences"][0]["id"]


async def justify(
    world,
    s: Setup,
    ids: list[int],
    *,
    files: dict[str, Any] | None = None,
    reason: str = "illness",
    actor: str | None = None,
    pupil: int | None = None,
) -> Any:
    return await world.api(
        "POST",
        f"/api/v1/attendance/pupils/{pupil or s.pupils[0]}/justifications",
        as_=actor or s.guardians[0],
        tenant=A,
        data={"absences": ",".join(map(str, ids)), "reason": reason, "note": "Fièvre"},
        # Without a document, the part is empty, as a browser sends an empty file field.
        files=files or {"file": ("", b"", "application/octet-stream")},
    )


async def test_a_photo_document_is_served_as_the_document_declares(world):
    """A justification's photo comes back as ``image/png``, a type the OpenAPI document allows (it said PDF only)."""
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    photo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    response = await justify(world, s, [mark], files={"file": ("certificat.png", photo, "image/png")})
    assert response.status_code == 201, response.text
    path = f"/api/v1/attendance/justifications/{response.json()['id']}/document"
    document = await world.api("GET", path, as_=s.director, tenant=A)
    assert document.status_code == 200 and document.content == photo
    assert document.headers["content-type"].startswith("image/png")
    schema = (await world.client.get("/schema/openapi.json")).json()
    content = schema["paths"]["/api/v1/attendance/justifications/{justification_id}/document"]["get"]["responses"]
    declared = set(content["200"]["content"])
    assert declared & {"*/*", "image/*", "image/png"}, declared


async def test_justification_workflow(world):
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    response = await justify(world, s, [mark], files={"file": ("certificat.pdf", PDF, "application/pdf")})
    assert response.status_code == 201, response.text
    jid = response.json()["id"]
    # The family sees it pending; a second justification of the same absence is refused.
    response = await world.api(
        "GET", f"/api/v1/attendance/pupils/{s.pupils[0]}/justifications", as_=s.guardians[0], tenant=A
    )
    assert [j["state"] for j in response.json()] == ["pending"]
    assert response.json()[0]["document"] == {"content_type": "application/pdf", "size": len(PDF)}
    assert (await justify(world, s, [mark])).status_code == 409
    # The director sees it, reads the document, accepts it.
    pending = await world.api("GET", "/api/v1/attendance/justifications/", as_=s.director, tenant=A)
    assert jid in [j["id"] for j in pending.json()]
    document = await world.api("GET", f"/api/v1/attendance/justifications/{jid}/document", as_=s.director, tenant=A)
    assert document.status_code == 200 and document.content == PDF
    response = await world.api(
        "POST",
        f"/api/v1/attendance/justifications/{jid}/review",
        as_=s.director,
        tenant=A,
        json={"decision": "accepted", "note": "OK"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "accepted"
    assert await world.sql("SELECT justified FROM attendance_mark WHERE id = {}", mark) in (True, 1)
    # Decided once: a second decision is refused.
    again = await world.api(
        "POST",
        f"/api/v1/attendance/justifications/{jid}/review",
        as_=s.director,
        tenant=A,
        json={"decision": "rejected"},
    )
    assert again.status_code == 409
    response = await world.api("GET", f"/api/v1/attendance/pupils/{s.pupils[0]}/absences", as_=s.guardians[0], tenant=A)
    assert response.json()["absences"][0]["justification"] == "accepted"
    assert response.json()["absences"][0]["justified"] in (True, 1)


async def test_rejected_justification_leaves_the_absence_unjustified(world):
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    jid = (await justify(world, s, [mark], reason="family")).json()["id"]
    response = await world.api(
        "POST",
        f"/api/v1/attendance/justifications/{jid}/review",
        as_=s.director,
        tenant=A,
        json={"decision": "rejected", "note": "Pas de pièce"},
    )
    assert response.status_code == 200 and response.json()["state"] == "rejected"
    assert await world.sql("SELECT justified FROM attendance_mark WHERE id = {}", mark) in (False, 0)
    # A new justification may follow a rejected one.
    assert (await justify(world, s, [mark])).status_code == 201


async def test_bad_justifications_are_refused_and_store_nothing(world):
    s = await Setup(world).build()
    assert (
        await s.take(
            [
                {"student_id": s.pupils[0], "status": "absent"},
                {"student_id": s.pupils[1], "status": "late", "minutes": 3},
            ]
        )
    ).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    before = await count(world, "SELECT COUNT(*) FROM attendance_justification")
    files_dir = world.settings.storage_path / "t" / str(world.ids[A]) / "justifications"
    stored = len(list(files_dir.glob("*"))) if files_dir.exists() else 0
    big = PDF + b"0" * (5 * 1024 * 1024)
    assert (await justify(world, s, [mark], files={"file": ("big.pdf", big, "application/pdf")})).status_code == 413
    response = await justify(world, s, [mark], files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")})
    assert response.status_code == 415
    # Declared a PDF, but it is not one.
    response = await justify(world, s, [mark], files={"file": ("x.pdf", b"<html></html>", "application/pdf")})
    assert response.status_code == 415
    assert (await justify(world, s, [mark], reason="holidays")).status_code == 400  # not in the list
    assert (await justify(world, s, [999999999])).status_code == 400  # not this pupil's
    late = await world.sql("SELECT id FROM attendance_mark WHERE student_id = {}", s.pupils[1])
    assert (await justify(world, s, [late], actor=s.guardians[1], pupil=s.pupils[1])).status_code == 400
    # Another family's child: not found.
    assert (await justify(world, s, [mark], actor=s.guardians[1])).status_code == 404
    assert await count(world, "SELECT COUNT(*) FROM attendance_justification") == before
    assert (len(list(files_dir.glob("*"))) if files_dir.exists() else 0) == stored


async def test_region_sets_its_reasons(world):
    region = "region.rabat@madrasa.demo"
    body = {
        "reasons": [
            {"code": "medical", "label_fr": "Médical", "label_ar": "طبي"},
            {"code": "weather", "label_fr": "Intempéries"},
        ]
    }
    original = await world.api("GET", "/api/v1/attendance/reasons", as_=region, tenant="rabat-sale-kenitra")
    keep = ("code", "label_fr", "label_ar", "label_en")
    restore = {"reasons": [{k: r[k] or "" for k in keep} for r in original.json()]}
    try:
        response = await world.api(
            "PUT", "/api/v1/attendance/reasons", as_=region, tenant="rabat-sale-kenitra", json=body
        )
        assert response.status_code == 200, response.text
        assert [r["code"] for r in response.json()] == ["medical", "weather"]
        at_school = await world.api("GET", "/api/v1/attendance/reasons", as_=f"director.{B}@test.ma", tenant=B)
        assert [r["code"] for r in at_school.json()] == ["medical", "weather"]
    finally:
        # The world is shared by the suite: give the region its list back.
        back = await world.api(
            "PUT", "/api/v1/attendance/reasons", as_=region, tenant="rabat-sale-kenitra", json=restore
        )
        assert back.status_code == 200, back.text
    # The other region keeps the national list; a region admin cannot set another region's.
    home = await world.api("GET", "/api/v1/attendance/reasons", as_=f"director.{A}@test.ma", tenant=A)
    assert "illness" in [r["code"] for r in home.json()]
    refused = await world.api(
        "PUT", "/api/v1/attendance/reasons", as_="region.casa@madrasa.demo", tenant="rabat-sale-kenitra", json=body
    )
    assert refused.status_code in (403, 404)
    assert (
        await world.api("PUT", "/api/v1/attendance/reasons", as_=f"director.{A}@test.ma", tenant=A, json=body)
    ).status_code == 403


# -- rules, alerts, at-risk --------------------------------------------------------------------


async def test_threshold_alerts_and_the_at_risk_list(world, inbox):
    region = "region.rabat@madrasa.demo"
    response = await world.api(
        "PUT",
        "/api/v1/attendance/rules",
        as_=region,
        tenant="rabat-sale-kenitra",
        json={"unjustified_hours": 3, "window_days": 30},
    )
    assert response.status_code == 200, response.text
    assert (
        await world.api(
            "PUT", "/api/v1/attendance/rules", as_=region, tenant="rabat-sale-kenitra", json={"unjustified_hours": 0}
        )
    ).status_code == 400
    s = await Setup(world, B).build()
    s.guardians  # noqa: B018
    # Two hours absent: below the threshold.
    absent = [{"student_id": s.pupils[0], "status": "absent"}]
    response = await world.api(
        "PUT",
        f"/api/v1/attendance/sessions/{s.slots[0]}/{today().isoformat()}",
        as_=s.teacher,
        tenant=B,
        json={"entries": absent},
    )
    assert response.status_code == 200, response.text
    assert await count(world, "SELECT COUNT(*) FROM attendance_alert WHERE student_id = {}", s.pupils[0]) == 0
    # Three hours: the alert is raised once, and mailed to the family, the homeroom teacher and the director.
    inbox.messages.clear()
    for _ in range(2):
        response = await world.api(
            "PUT",
            f"/api/v1/attendance/sessions/{s.slots[1]}/{today().isoformat()}",
            as_=s.teacher,
            tenant=B,
            json={"entries": absent},
        )
        assert response.status_code == 200
    await delivered(world)
    assert await count(world, "SELECT COUNT(*) FROM attendance_alert WHERE student_id = {}", s.pupils[0]) == 1
    alerted = {m["To"] for m in inbox.messages}  # the day's notice went out with the first register
    assert {s.guardians[0], s.teacher, f"director.{B}@test.ma"} <= alerted

    # At risk in the school, the province and the region; never in the other region's list.
    for actor, tenant in ((f"director.{B}@test.ma", B), (region, "rabat-sale-kenitra")):
        response = await world.api("GET", "/api/v1/attendance/at-risk", as_=actor, tenant=tenant)
        assert response.status_code == 200, response.text
        pupils = {p["student_id"]: p for p in response.json()["pupils"]}
        assert s.pupils[0] in pupils and pupils[s.pupils[0]]["unjustified_hours"] == 3.0
        assert s.pupils[1] not in pupils
    response = await world.api(
        "GET", "/api/v1/attendance/at-risk", as_="region.casa@madrasa.demo", tenant="casablanca-settat"
    )
    assert s.pupils[0] not in {p["student_id"] for p in response.json()["pupils"]}
    # The homeroom teacher sees the alert; a parent may not read the school's list.
    response = await world.api("GET", "/api/v1/attendance/alerts", as_=s.teacher, tenant=B)
    assert s.pupils[0] in {a["student_id"] for a in response.json()}
    assert (await world.api("GET", "/api/v1/attendance/at-risk", as_=s.guardians[0], tenant=B)).status_code == 403


# -- statistics --------------------------------------------------------------------------------


async def test_statistics_match_the_timetable_and_the_marks(world):
    s = await Setup(world).build()
    assert (
        await s.take(
            [
                {"student_id": s.pupils[0], "status": "absent"},
                {"student_id": s.pupils[1], "status": "late", "minutes": 7},
            ]
        )
    ).status_code == 200
    start = today() - timedelta(days=20)
    response = await world.api(
        "GET",
        "/api/v1/attendance/stats",
        as_=s.director,
        tenant=A,
        params={"level": "class", "from": start.isoformat(), "to": today().isoformat()},
    )
    assert response.status_code == 200, response.text
    row = next(g for g in response.json()["groups"] if g["id"] == s.class_id)
    # Expected: the two weekly lessons (3 h) on each school day of the period with that weekday, × 3 pupils.
    cal = await _calendar(world)
    lessons = occurrences(s.weekday, date(2000, 1, 1), date(2100, 1, 1), start, today(), cal["holidays"])
    lessons = [day for day in lessons if service.school_days(cal, day, day)]
    assert row["pupils"] == 3
    assert row["expected_hours"] == round(len(lessons) * 3 * 3, 1)
    assert row["absent_hours"] == 2.0 and row["unjustified_hours"] == 2.0 and row["justified_hours"] == 0
    assert row["late_minutes"] == 7
    assert row["absence_rate"] == round(120 / (len(lessons) * 180 * 3), 4)
    # Per pupil.
    response = await world.api(
        "GET",
        f"/api/v1/attendance/classes/{s.class_id}/stats",
        as_=s.director,
        tenant=A,
        params={"from": start.isoformat()},
    )
    pupils = {p["id"]: p for p in response.json()["pupils"]}
    assert pupils[s.pupils[0]]["absent_hours"] == 2.0 and pupils[s.pupils[2]]["absent_hours"] == 0
    assert pupils[s.pupils[0]]["expected_hours"] == len(lessons) * 3
    # CSV.
    response = await world.api(
        "GET",
        "/api/v1/attendance/stats.csv",
        as_=s.director,
        tenant=A,
        params={"level": "class", "from": start.isoformat()},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].startswith("id,name_fr,pupils") and any(line.startswith(f"{s.class_id},") for line in lines)
    # Region dashboard: one row per school of the region, none of the other region.
    response = await world.api(
        "GET",
        "/api/v1/attendance/stats",
        as_="region.casa@madrasa.demo",
        tenant="casablanca-settat",
        params={"level": "school"},
    )
    assert response.status_code == 200, response.text
    ids = {g["id"] for g in response.json()["groups"]}
    assert world.ids[A] in ids and world.ids[B] not in ids
    # Bad levels and periods.
    for params in ({"level": "nation"}, {"level": "region"}, {"from": "2026-12-01", "to": "2026-11-01"}):
        bad = await world.api("GET", "/api/v1/attendance/stats", as_=s.director, tenant=A, params=params)
        assert bad.status_code == 400, params


async def test_statistics_follow_enrolment_dates_when_a_pupil_changes_class(world):
    s = await Setup(world).build()
    t = await Setup(world).build()  # another class of the school, its lessons on the same weekday
    moving = s.pupils[2]
    response = await world.api(
        "POST", f"/api/v1/school/students/{moving}/enrolment", as_=s.director, tenant=A, json={"class_id": t.class_id}
    )
    assert response.status_code == 200, response.text
    # The move took effect a week before the day: in the first class until the day before, then in the second.
    switch = DAY - timedelta(days=7)
    await write(
        world,
        "UPDATE enrolment SET ends_on = {} WHERE student_id = {} AND class_id = {}",
        switch - timedelta(days=1),
        moving,
        s.class_id,
    )
    await write(
        world, "UPDATE enrolment SET starts_on = {} WHERE student_id = {} AND class_id = {}", switch, moving, t.class_id
    )
    start = DAY - timedelta(days=20)
    cal = await _calendar(world)
    lessons = occurrences(s.weekday, date(2000, 1, 1), date(2100, 1, 1), start, DAY, cal["holidays"])
    lessons = [day for day in lessons if service.school_days(cal, day, day)]
    before, after = len([d for d in lessons if d < switch]), len([d for d in lessons if d >= switch])
    assert before and after
    params = {"level": "class", "from": start.isoformat(), "to": DAY.isoformat()}
    response = await world.api("GET", "/api/v1/attendance/stats", as_=s.director, tenant=A, params=params)
    assert response.status_code == 200, response.text
    rows = {g["id"]: g for g in response.json()["groups"]}
    # Two lessons a week (3 h): two pupils all along plus the one who left; three pupils plus the newcomer.
    assert rows[s.class_id]["expected_hours"] == (2 * len(lessons) + before) * 3
    assert rows[t.class_id]["expected_hours"] == (3 * len(lessons) + after) * 3
    assert (rows[s.class_id]["pupils"], rows[t.class_id]["pupils"]) == (2, 4)
    # The school's row adds up its classes, each counted for the days of its pupils.
    school = await world.api(
        "GET", "/api/v1/attendance/stats", as_=s.director, tenant=A, params={**params, "level": "school"}
    )
    assert school.status_code == 200
    [row] = school.json()["groups"]
    assert row["expected_hours"] == round(sum(g["expected_hours"] for g in rows.values()), 1)
    # Per pupil: the pupil who moved counts in each class for the days spent there.
    for klass, days in ((s.class_id, before), (t.class_id, after)):
        response = await world.api(
            "GET", f"/api/v1/attendance/classes/{klass}/stats", as_=s.director, tenant=A, params=params
        )
        pupils = {p["id"]: p for p in response.json()["pupils"]}
        assert pupils[moving]["expected_hours"] == days * 3


def test_the_clock_reads_morocco_and_can_be_pinned():
    from datetime import time

    from core.clock import SCHOOL_TZ, Clock

    clock = FixedClock(DAY)
    assert clock.today() == DAY and clock.now().time() == time(10, 0) and clock.now().tzinfo == SCHOOL_TZ
    # 23:30 UTC on 31 December is already 1 January in Casablanca (UTC+1).
    clock.set(datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    assert clock.today() == date(2027, 1, 1) and clock.utcnow() == datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert abs((Clock().utcnow() - datetime.now(UTC)).total_seconds()) < 5


def test_csv_rows_are_quoted():
    text = stats.to_csv([{"id": 1, "name_fr": 'Lycée "A", Casa', "pupils": 3}])
    assert text.splitlines()[1] == '1,"Lycée ""A"", Casa",3,,,,,,'


def test_school_days_skip_holidays_and_days_outside_terms():
    cal = {"terms": [(1, date(2026, 9, 7), date(2026, 9, 20))], "holidays": [(date(2026, 9, 10), date(2026, 9, 11))]}
    days = service.school_days(cal, date(2026, 9, 1), date(2026, 9, 30))
    assert days[0] == date(2026, 9, 7) and days[-1] == date(2026, 9, 20)
    assert date(2026, 9, 10) not in days and date(2026, 9, 11) not in days and len(days) == 12
    assert common.window_number(date(2000, 1, 31), 30) == 1 and common.window_number(date(2000, 1, 30), 30) == 0


# -- access ------------------------------------------------------------------------------------


async def test_cross_tenant_and_cross_role_access(world):
    s = await Setup(world).build()
    foreign = world.objects[B]
    # A foreign lesson named from home: not found; under the foreign prefix: refused.
    response = await world.api(
        "PUT",
        f"/api/v1/attendance/sessions/{foreign['slot_id']}/{today().isoformat()}",
        as_=s.teacher,
        tenant=A,
        json={"entries": []},
    )
    assert response.status_code == 404
    response = await world.api(
        "PUT",
        f"/api/v1/attendance/sessions/{foreign['slot_id']}/{today().isoformat()}",
        as_=s.teacher,
        tenant=B,
        json={"entries": []},
    )
    assert response.status_code in (403, 404)
    # A foreign pupil's absences, another family's child.
    assert (
        await world.api(
            "GET", f"/api/v1/attendance/pupils/{foreign['student_id']}/absences", as_=s.guardians[0], tenant=A
        )
    ).status_code == 404
    assert (
        await world.api("GET", f"/api/v1/attendance/pupils/{s.pupils[1]}/absences", as_=s.guardians[0], tenant=A)
    ).status_code == 404
    # Roles: a parent or a pupil does not take attendance; a teacher does not review.
    for actor in (s.guardians[0], "student@madrasa.demo"):
        assert (await s.take([], actor=actor)).status_code == 403
    assert (await world.api("GET", "/api/v1/attendance/justifications/", as_=s.teacher, tenant=A)).status_code == 403
    # The foreign director cannot review a home justification.
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    jid = (await justify(world, s, [mark])).json()["id"]
    for tenant in (A, B):
        response = await world.api(
            "POST",
            f"/api/v1/attendance/justifications/{jid}/review",
            as_=f"director.{B}@test.ma",
            tenant=tenant,
            json={"decision": "accepted"},
        )
        assert response.status_code in (403, 404)
    assert await world.sql("SELECT state FROM attendance_justification WHERE id = {}", jid) == "pending"
    # The document: its family and the home director only.
    assert (
        await world.api("GET", f"/api/v1/attendance/justifications/{jid}/document", as_=s.guardians[1], tenant=A)
    ).status_code == 404
    assert (
        await world.api(
            "GET", f"/api/v1/attendance/justifications/{jid}/document", as_=f"director.{B}@test.ma", tenant=B
        )
    ).status_code == 404


async def test_module_off_for_one_school_stays_on_next_door(world):
    admin = "admin@madrasa.demo"
    off = await world.api(
        "PUT",
        f"/api/v1/tenants/{A2}/modules/attendance",
        as_=admin,
        json={"enabled": False, "reason": "not in this school yet"},
    )
    assert off.status_code == 200, off.text
    try:
        director = f"director.{A2}@test.ma"
        assert (await world.api("GET", "/attendance/", as_=director, tenant=A2)).status_code == 404
        assert (await world.api("GET", "/api/v1/attendance/rules", as_=director, tenant=A2)).status_code == 404
        assert (await world.api("GET", "/attendance/", as_=f"director.{A}@test.ma", tenant=A)).status_code == 200
        assert (
            await world.api("GET", "/api/v1/attendance/rules", as_=f"director.{A}@test.ma", tenant=A)
        ).status_code == 200
    finally:
        on = await world.api(
            "PUT", f"/api/v1/tenants/{A2}/modules/attendance", as_=admin, json={"enabled": None, "reason": "back on"}
        )
        assert on.status_code == 200


async def _context(world, email: str, school: str) -> Any:
    from core.access import roles_at
    from core.context import RequestContext

    services = world.services
    person = await services.db.fetchrow(
        "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE email = {}", email
    )
    from core.identity import Identity

    identity = Identity(person["id"], person["email"], person["full_name"], person["full_name_ar"], person["locale"])
    tenant = await services.tenants.by_slug(school)
    roles = roles_at(await services.grants.grants(person["id"]), tenant)
    return RequestContext(
        services=services,
        permission="attendance.view",
        identity=identity,
        tenant=tenant,
        roles=roles,
        prefix=f"/t/{school}",
    )


async def test_contributions_to_the_child_page_and_exports_vanish_with_the_module(world):
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    host = world.services.plugins
    ctx = await _context(world, s.guardians[0], A)
    [section] = [
        x
        for x in await host.collect("madrasa_child_overview", frozenset(), ctx=ctx, child_id=s.pupils[0])
        if x["url"].startswith("/attendance/")
    ]
    assert section["url"] == f"/attendance/pupils/{s.pupils[0]}" and "1" in section["body"]
    # Another family's child: nothing.
    other = [
        x
        for x in await host.collect("madrasa_child_overview", frozenset(), ctx=ctx, child_id=s.pupils[1])
        if x["url"].startswith("/attendance/")
    ]
    assert other == []
    director = await _context(world, s.director, A)
    exports = await host.collect("madrasa_exports", frozenset(), ctx=director)
    assert any(e["name"] == "attendance-stats" and "stats.csv?level=class" in e["url"] for e in exports)
    assert not [
        e
        for e in await host.collect("madrasa_exports", frozenset({"attendance"}), ctx=director)
        if e["name"] == "attendance-stats"
    ]
    assert [
        e for e in await host.collect("madrasa_exports", frozenset(), ctx=ctx) if e["name"] == "attendance-stats"
    ] == []  # a parent exports nothing


async def test_a_pupil_sees_their_own_absences_and_cannot_justify(world):
    # The demo loads a few registers of the demo teacher's lessons, with an absence of the demo pupil.
    pupil = await world.sql(
        "SELECT s.id FROM student s JOIN person p ON p.id = s.person_id WHERE p.email = 'student@madrasa.demo'"
    )
    response = await world.api(
        "GET", f"/api/v1/attendance/pupils/{pupil}/absences", as_="student@madrasa.demo", tenant=A
    )
    assert response.status_code == 200, response.text
    absences = response.json()["absences"]
    assert absences and {a["kind"] for a in absences} <= {"absent", "late"}
    page = await world.api("GET", f"/attendance/pupils/{pupil}", as_="student@madrasa.demo", tenant=A)
    assert page.status_code == 200 and 'id="justify-form"' in page.text and "send-justification" not in page.text
    response = await world.api(
        "POST",
        f"/api/v1/attendance/pupils/{pupil}/justifications",
        as_="student@madrasa.demo",
        tenant=A,
        data={"absences": str(absences[0]["id"]), "reason": "illness"},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert response.status_code == 403
    # Their guardian (the demo parent) sees the same absences.
    response = await world.api(
        "GET", f"/api/v1/attendance/pupils/{pupil}/absences", as_="parent@madrasa.demo", tenant=A
    )
    assert response.status_code == 200 and [a["id"] for a in response.json()["absences"]] == [a["id"] for a in absences]
