"""Attendance after review: the supervisor role, the module switched off in one of a family's schools, notices
built at delivery, at-risk hours per pupil, racing justifications, CSV cells, corrected marks and their
justification, who may justify, and the family home's count of absences to justify."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from core.i18n import gettext_
from plugins.attendance import service, stats
from tests import test_attendance as base
from tests.conftest import link_guardian
from tests.test_attendance import (
    A2,
    DAY,
    A,
    B,
    Setup,
    _absence,
    _calendar,
    _context,
    count,
    delivered,
    justify,
    to,
    write,
)

# The attendance tests' fixtures: the pinned school day (autouse) and the inbox that also takes SMS
# (on conftest's SMTP server).
school_day = base.school_day
inbox = base.inbox


def unique(prefix: str) -> str:
    return f"{prefix}{random.randrange(10**9)}@test.ma"


async def past_day(world, *, before: date, weeks: range = range(1, 12)) -> date:
    """The latest school day on the tests' weekday on or before ``before``."""
    cal = await _calendar(world)
    for k in weeks:
        day = DAY - timedelta(days=7 * k)
        if day <= before and service.school_days(cal, day, day):
            return day
    pytest.fail("no school day with this weekday in term time before the day: the test needs term time")


async def review(world, jid: int, decision: str, actor: str, tenant: str = A) -> Any:
    return await world.api(
        "POST",
        f"/api/v1/attendance/justifications/{jid}/review",
        as_=actor,
        tenant=tenant,
        json={"decision": decision, "note": "vu"},
    )


# -- 1. the supervisor ---------------------------------------------------------------------------


async def test_a_supervisor_reviews_justifications_but_takes_no_attendance(world):
    s = await Setup(world).build()
    supervisor = await world.add_person(unique("surveillant"), "supervisor", A)
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    jid = (await justify(world, s, [mark])).json()["id"]
    # Sees the school's pending justifications, on the API and on the home page, and accepts one.
    pending = await world.api("GET", "/api/v1/attendance/justifications/", as_=supervisor, tenant=A)
    assert pending.status_code == 200 and jid in [j["id"] for j in pending.json()]
    home = await world.api("GET", "/attendance/", as_=supervisor, tenant=A)
    assert home.status_code == 200 and 'id="review-title"' in home.text
    assert (await world.api("GET", "/attendance/review", as_=supervisor, tenant=A)).status_code == 200
    cards = await world.services.plugins.collect(
        "madrasa_dashboard_cards", frozenset(), ctx=await _context(world, supervisor, A)
    )
    assert "Justifications to review" in [getattr(c, "title", None) for c in cards]
    assert (await world.api("GET", "/api/v1/attendance/alerts", as_=supervisor, tenant=A)).status_code == 200
    response = await review(world, jid, "accepted", supervisor)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "accepted"
    assert await world.sql("SELECT justified FROM attendance_mark WHERE id = {}", mark) in (True, 1)
    assert await world.sql("SELECT reviewed_by FROM attendance_justification WHERE id = {}", jid) == await world.sql(
        "SELECT id FROM person WHERE email = {}", supervisor
    )
    # Takes no attendance, reads no statistics.
    response = await s.take([{"student_id": s.pupils[1], "status": "absent"}], actor=supervisor)
    assert response.status_code == 403
    assert await count(world, "SELECT COUNT(*) FROM attendance_mark WHERE student_id = {}", s.pupils[1]) == 0
    assert (await world.api("GET", "/api/v1/attendance/stats", as_=supervisor, tenant=A)).status_code == 403
    # Another school: nothing to see or decide, there or through this school's address.
    other = await Setup(world, B).build()
    assert (await other.take([{"student_id": other.pupils[0], "status": "absent"}])).status_code == 200
    other_mark = (
        await world.api(
            "GET", f"/api/v1/attendance/pupils/{other.pupils[0]}/absences", as_=other.guardians[0], tenant=B
        )
    ).json()["absences"][0]["id"]
    other_jid = (
        await world.api(
            "POST",
            f"/api/v1/attendance/pupils/{other.pupils[0]}/justifications",
            as_=other.guardians[0],
            tenant=B,
            data={"absences": str(other_mark), "reason": "illness"},
            files={"file": ("", b"", "application/octet-stream")},
        )
    ).json()["id"]
    assert (await world.api("GET", "/api/v1/attendance/justifications/", as_=supervisor, tenant=B)).status_code == 403
    assert (await review(world, other_jid, "accepted", supervisor, tenant=B)).status_code == 403
    assert (await review(world, other_jid, "accepted", supervisor, tenant=A)).status_code == 404
    listed = await world.api("GET", "/api/v1/attendance/justifications/", as_=supervisor, tenant=A)
    assert other_jid not in [j["id"] for j in listed.json()]
    assert await world.sql("SELECT state FROM attendance_justification WHERE id = {}", other_jid) == "pending"


# -- 2. the module off in one of a family's schools -----------------------------------------------


async def test_a_family_sees_nothing_of_a_school_where_the_module_is_off(world):
    s = await Setup(world, A).build()
    t = await Setup(world, A2).build()
    parent = s.guardians[0]
    mine, theirs = s.pupils[0], t.pupils[0]
    await link_guardian(world, A2, theirs, parent, "P")  # outside A2's reach: an invitation the parent accepts
    assert (await s.take([{"student_id": mine, "status": "absent"}])).status_code == 200
    assert (await t.take([{"student_id": theirs, "status": "absent"}])).status_code == 200
    other_mark = await world.sql("SELECT id FROM attendance_mark WHERE student_id = {}", theirs)
    ctx = await _context(world, parent, A)
    host = world.services.plugins

    async def views() -> dict[str, Any]:
        notices = await world.api("GET", "/api/v1/attendance/notices", as_=parent, tenant=A)
        home = await world.api("GET", "/attendance/", as_=parent, tenant=A)
        overview = [
            x
            for x in await host.collect("madrasa_child_overview", frozenset(), ctx=ctx, child_id=theirs)
            if x["url"].startswith("/attendance/")
        ]
        return {
            "absences": (
                await world.api("GET", f"/api/v1/attendance/pupils/{theirs}/absences", as_=parent, tenant=A)
            ).status_code,
            "justifications": (
                await world.api("GET", f"/api/v1/attendance/pupils/{theirs}/justifications", as_=parent, tenant=A)
            ).status_code,
            "page": (await world.api("GET", f"/attendance/pupils/{theirs}", as_=parent, tenant=A)).status_code,
            "notice": theirs in {n["student_id"] for n in notices.json()},
            "home": f'data-student="{theirs}"' in home.text,
            "overview": bool(overview),
        }

    # Both schools on: the family sees both children from either school's address.
    assert await views() == {
        "absences": 200,
        "justifications": 200,
        "page": 200,
        "notice": True,
        "home": True,
        "overview": True,
    }
    admin = "admin@madrasa.demo"
    off = await world.api(
        "PUT",
        f"/api/v1/tenants/{A2}/modules/attendance",
        as_=admin,
        json={"enabled": False, "reason": "not in this school yet"},
    )
    assert off.status_code == 200, off.text
    try:
        assert await views() == {
            "absences": 404,
            "justifications": 404,
            "page": 404,
            "notice": False,
            "home": False,
            "overview": False,
        }
        # Justifying there is refused, from the API and the page, and nothing is written.
        response = await world.api(
            "POST",
            f"/api/v1/attendance/pupils/{theirs}/justifications",
            as_=parent,
            tenant=A,
            data={"absences": str(other_mark), "reason": "illness"},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert response.status_code == 404, response.text
        response = await world.api(
            "POST",
            f"/attendance/pupils/{theirs}/justify",
            as_=parent,
            tenant=A,
            data={"absence": str(other_mark), "reason": "illness"},
        )
        assert response.status_code == 404
        assert await count(world, "SELECT COUNT(*) FROM attendance_justification WHERE student_id = {}", theirs) == 0
        # The child in the school where the module is on is unaffected.
        response = await world.api("GET", f"/api/v1/attendance/pupils/{mine}/absences", as_=parent, tenant=A)
        assert response.status_code == 200 and len(response.json()["absences"]) == 1
        home = await world.api("GET", "/attendance/", as_=parent, tenant=A)
        assert f'data-student="{mine}"' in home.text
    finally:
        on = await world.api(
            "PUT", f"/api/v1/tenants/{A2}/modules/attendance", as_=admin, json={"enabled": None, "reason": "back on"}
        )
        assert on.status_code == 200


# -- 3. a day's notice says what the day holds when it goes out ------------------------------------


async def test_a_days_notice_is_built_when_it_is_delivered(world, inbox):
    s = await Setup(world).build()
    for guardian in s.guardians:
        await world.services.db.execute("UPDATE person SET locale = 'en' WHERE email = {}", guardian)
    first, second = s.pupils[0], s.pupils[1]
    await world.services.jobs.stop()
    # Before delivery: both absent in the first lesson, then the second one corrected to present; the first one
    # is also late in the second lesson.
    both = [{"student_id": first, "status": "absent"}, {"student_id": second, "status": "absent"}]
    assert (await s.take(both)).status_code == 200
    assert (await s.take(both[:1])).status_code == 200
    late = [{"student_id": first, "status": "late", "minutes": 10}]
    assert (await s.take(late, slot=s.slots[1])).status_code == 200
    await world.services.jobs.start()
    assert set(await delivered(world)) == {"done"}
    # One message, with every lesson of the day as it stood at delivery.
    [message] = to(inbox, s.guardians[0])
    body = message.get_content()
    assert "08:00–10:00 Mathematics: absent" in body and "10:00–11:00 Mathematics: late by 10 min" in body
    # Nothing left to say about the second pupil: no message, and the notice is void.
    assert to(inbox, s.guardians[1]) == []
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", second) == "void"
    notices = await world.api("GET", "/api/v1/attendance/notices", as_=s.guardians[1], tenant=A)
    assert [n for n in notices.json() if n["kind"] == "absence"] == []

    # After delivery, later that morning: the first pupil absent in the second lesson. No second message; the
    # in-app notice counts both absences and says it changed since the message.
    world.services.clock.set(datetime(2026, 11, 16, 10, 30, tzinfo=UTC))
    absent = [{"student_id": first, "status": "absent"}]
    assert (await s.take(absent, slot=s.slots[1])).status_code == 200
    await delivered(world)
    assert len(to(inbox, s.guardians[0])) == 1
    notices = await world.api("GET", "/api/v1/attendance/notices", as_=s.guardians[0], tenant=A)
    [notice] = [n for n in notices.json() if n["kind"] == "absence" and n["student_id"] == first]
    assert notice["absent"] == 2 and notice["late"] == 0 and notice["updated"] == 1
    home = await world.api("GET", "/attendance/", as_=s.guardians[0], tenant=A, params={"lang": "en"})
    assert "updated since the message" in home.text
    # The second pupil is marked absent in the second lesson: their void notice goes out now, once.
    both_second = [*absent, {"student_id": second, "status": "absent"}]
    assert (await s.take(both_second, slot=s.slots[1])).status_code == 200
    assert set(await delivered(world)) == {"done"}
    [message] = to(inbox, s.guardians[1])
    assert "10:00–11:00 Mathematics: absent" in message.get_content() and "08:00" not in message.get_content()
    assert await world.sql("SELECT status FROM attendance_notice WHERE student_id = {}", second) == "sent"
    assert len(to(inbox, s.guardians[0])) == 1


# -- 4. at risk: a pupil's hours add up across classes ----------------------------------------------


async def test_at_risk_adds_up_the_hours_of_a_pupil_who_changed_class(world):
    region = "region.rabat@madrasa.demo"
    response = await world.api(
        "PUT",
        "/api/v1/attendance/rules",
        as_=region,
        tenant="rabat-sale-kenitra",
        json={"unjustified_hours": 3, "window_days": 30},
    )
    assert response.status_code == 200, response.text
    s = await Setup(world, B).build()
    t = await Setup(world, B).build()
    moving = s.pupils[0]
    before = await past_day(world, before=DAY - timedelta(days=7), weeks=range(1, 4))
    # Two hours absent in the first class, a week or more ago.
    response = await s.take(
        [{"student_id": moving, "status": "absent"}], on=before, actor=s.director, reason="Registre papier"
    )
    assert response.status_code == 200, response.text
    # Moved to the other class yesterday; two more hours absent there today.
    response = await world.api(
        "POST", f"/api/v1/school/students/{moving}/enrolment", as_=s.director, tenant=B, json={"class_id": t.class_id}
    )
    assert response.status_code == 200, response.text
    await write(
        world,
        "UPDATE enrolment SET ends_on = {} WHERE student_id = {} AND class_id = {}",
        DAY - timedelta(days=2),
        moving,
        s.class_id,
    )
    await write(
        world,
        "UPDATE enrolment SET starts_on = {} WHERE student_id = {} AND class_id = {}",
        DAY - timedelta(days=1),
        moving,
        t.class_id,
    )
    assert (await t.take([{"student_id": moving, "status": "absent"}])).status_code == 200
    # One row for the pupil: four hours, in their current class.
    new_class = await world.sql("SELECT name FROM school_class WHERE id = {}", t.class_id)
    for actor, tenant in ((s.director, B), (region, "rabat-sale-kenitra")):
        response = await world.api("GET", "/api/v1/attendance/at-risk", as_=actor, tenant=tenant)
        assert response.status_code == 200, response.text
        rows = [p for p in response.json()["pupils"] if p["student_id"] == moving]
        assert len(rows) == 1, rows
        assert rows[0]["unjustified_hours"] == 4.0 and rows[0]["class_name"] == new_class
    page = await world.api("GET", "/attendance/stats", as_=s.director, tenant=B)
    assert page.status_code == 200 and page.text.count(new_class) >= 1
    # The alert is the pupil's, in their current class (its homeroom teacher hears of it).
    assert await world.sql("SELECT class_id FROM attendance_alert WHERE student_id = {}", moving) == t.class_id
    alerts = await world.api("GET", "/api/v1/attendance/alerts", as_=t.teacher, tenant=B)
    assert moving in {a["student_id"] for a in alerts.json()}


# -- 5. two justifications racing for the same absence ----------------------------------------------


async def test_two_justifications_of_the_same_absence_at_once_one_wins(world):
    s = await Setup(world).build()
    assert (await s.take([{"student_id": s.pupils[0], "status": "absent"}])).status_code == 200
    mark = await _absence(world, s, s.pupils[0])
    for _ in range(3):
        responses = await asyncio.gather(justify(world, s, [mark]), justify(world, s, [mark]))
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        [winner] = [r.json()["id"] for r in responses if r.status_code == 201]
        [loser] = [r for r in responses if r.status_code == 409]
        assert loser.json()["code"] in ("already_justified", "justified_meanwhile")
        pending = "SELECT COUNT(*) FROM attendance_justification WHERE student_id = {} AND state = 'pending'"
        assert await count(world, pending, s.pupils[0]) == 1
        assert await world.sql("SELECT justification_id FROM attendance_mark WHERE id = {}", mark) == winner
        # Rejected: the absence may be justified again (and raced again).
        assert (await review(world, winner, "rejected", s.director)).status_code == 200


# -- 6. CSV cells ----------------------------------------------------------------------------------


def test_csv_cells_never_start_a_formula():
    rows = [
        {"id": 1, "name_fr": '=HYPERLINK("http://x.test","clic")', "pupils": 3, "absence_rate": -0.5},
        {"id": 2, "name_fr": "+212 classe", "pupils": 0},
        {"id": 3, "name_fr": "-1+1", "pupils": 0},
        {"id": 4, "name_fr": "@SUM(A1)", "pupils": 0},
        {"id": 5, "name_fr": "\t=1", "pupils": 0},
        {"id": 6, "name_fr": "\r=1", "pupils": 0},
        {"id": 7, "name_fr": "2 BAC = SM", "pupils": 0},
    ]
    import csv
    import io

    parsed = list(csv.reader(io.StringIO(stats.to_csv(rows))))[1:]
    names = [row[1] for row in parsed]
    assert names == ["'" + r["name_fr"] for r in rows[:6]] + ["2 BAC = SM"]
    # Numbers are figures, not text: left as they are.
    assert parsed[0][2] == "3" and parsed[0][-1] == "-0.5"


async def test_the_statistics_export_neutralises_a_class_named_like_a_formula(world):
    s = await Setup(world).build()
    await write(world, "UPDATE school_class SET name = {} WHERE id = {}", "=1+1", s.class_id)
    response = await world.api(
        "GET", "/api/v1/attendance/stats.csv", as_=s.director, tenant=A, params={"level": "class"}
    )
    assert response.status_code == 200
    assert f"{s.class_id},'=1+1," in response.text and f"{s.class_id},=1+1," not in response.text


# -- 7. a corrected mark and its justification ----------------------------------------------------


async def test_a_corrected_mark_is_justified_exactly_when_it_is_an_absence_with_an_accepted_justification(world):
    s = await Setup(world).build()
    pupil = s.pupils[0]
    absent = [{"student_id": pupil, "status": "absent"}]
    late = [{"student_id": pupil, "status": "late", "minutes": 15}]

    async def justified() -> bool:
        return bool(await world.sql("SELECT justified FROM attendance_mark WHERE student_id = {}", pupil))

    assert (await s.take(absent)).status_code == 200
    mark = await _absence(world, s, pupil)
    jid = (await justify(world, s, [mark])).json()["id"]
    assert (await review(world, jid, "accepted", s.director)).status_code == 200
    assert await justified()
    # Corrected to late: a lateness is never justified by it.
    assert (await s.take(late)).status_code == 200
    assert not await justified()
    # Back to absent: covered again by the accepted justification.
    assert (await s.take(absent)).status_code == 200
    assert await justified()
    response = await world.api("GET", f"/api/v1/attendance/pupils/{pupil}/absences", as_=s.guardians[0], tenant=A)
    [row] = response.json()["absences"]
    assert row["justification"] == "accepted" and row["justified"] in (True, 1)
    stats_ = await world.api("GET", "/api/v1/attendance/stats", as_=s.director, tenant=A, params={"level": "class"})
    [group] = [g for g in stats_.json()["groups"] if g["id"] == s.class_id]
    assert group["absent_hours"] == 2.0 and group["unjustified_hours"] == 0.0

    # A justification accepted while its mark is a lateness justifies nothing until the mark is an absence again.
    other = s.pupils[1]
    assert (await s.take([*absent, {"student_id": other, "status": "absent"}], slot=s.slots[1])).status_code == 200
    mark2 = await world.sql(
        "SELECT m.id FROM attendance_mark m JOIN attendance_session se ON se.id = m.session_id "
        "WHERE m.student_id = {} AND se.slot_id = {}",
        other,
        s.slots[1],
    )
    jid2 = (await justify(world, s, [mark2], actor=s.guardians[1], pupil=other)).json()["id"]
    late_other = [*absent, {"student_id": other, "status": "late", "minutes": 5}]
    assert (await s.take(late_other, slot=s.slots[1])).status_code == 200
    assert (await review(world, jid2, "accepted", s.director)).status_code == 200
    assert await world.sql("SELECT justified FROM attendance_mark WHERE id = {}", mark2) in (False, 0)
    assert (await s.take([*absent, {"student_id": other, "status": "absent"}], slot=s.slots[1])).status_code == 200
    assert await world.sql("SELECT justified FROM attendance_mark WHERE id = {}", mark2) in (True, 1)


# -- 8. only a guardian justifies --------------------------------------------------------------------


async def test_a_pupil_who_is_also_a_parent_cannot_justify_their_own_absence(world):
    s = await Setup(world).build()
    pupil = s.pupils[2]
    email = unique("eleve.parent")
    await world.add_person(email, "student", A)
    await world.add_person(email, "parent", A)  # an adult pupil who is also a parent at the school
    person = await world.sql("SELECT id FROM person WHERE email = {}", email)
    await write(world, "UPDATE student SET person_id = {} WHERE id = {}", person, pupil)
    assert (await s.take([{"student_id": pupil, "status": "absent"}])).status_code == 200
    own = await world.api("GET", f"/api/v1/attendance/pupils/{pupil}/absences", as_=email, tenant=A)
    assert own.status_code == 200
    mark = own.json()["absences"][0]["id"]
    response = await justify(world, s, [mark], actor=email, pupil=pupil)
    assert response.status_code == 404, response.text
    response = await world.api(
        "POST", f"/attendance/pupils/{pupil}/justify", as_=email, tenant=A, data={"absence": str(mark), "reason": "x"}
    )
    assert response.status_code == 404
    assert await count(world, "SELECT COUNT(*) FROM attendance_justification WHERE student_id = {}", pupil) == 0
    # Their guardians still may (the guardianship decides, not the role).
    guardian = unique("tuteur")
    gid = await link_guardian(world, s.school, pupil, guardian, "T")
    await world.services.identity.set_password(gid, "a-good-password-1")
    world.passwords[guardian] = "a-good-password-1"
    assert (await justify(world, s, [mark], actor=guardian, pupil=pupil)).status_code == 201


# -- 9. the family home's "to justify" ---------------------------------------------------------------


async def test_the_family_home_counts_what_is_left_to_justify_in_the_30_days_shown(world):
    s = await Setup(world).build()
    pupil = s.pupils[0]
    absent = [{"student_id": pupil, "status": "absent"}]
    old = await past_day(world, before=DAY - timedelta(days=31))
    recent = await past_day(world, before=DAY - timedelta(days=7), weeks=range(1, 4))
    # Two absences long ago (outside the 30 days), one a week or more ago, two today.
    for slot in s.slots:
        assert (await s.take(absent, slot=slot, on=old, actor=s.director, reason="Papier")).status_code == 200
    assert (await s.take(absent, on=recent, actor=s.director, reason="Papier")).status_code == 200
    for slot in s.slots:
        assert (await s.take(absent, slot=slot)).status_code == 200
    today_marks = [
        await world.sql(
            "SELECT m.id FROM attendance_mark m JOIN attendance_session se ON se.id = m.session_id "
            "WHERE m.student_id = {} AND se.slot_id = {} AND m.on_date = {}",
            pupil,
            slot,
            DAY,
        )
        for slot in s.slots
    ]
    # Today's first one: justified and rejected (still to justify); the second: waiting for review.
    rejected = (await justify(world, s, [today_marks[0]])).json()["id"]
    assert (await review(world, rejected, "rejected", s.director)).status_code == 200
    assert (await justify(world, s, [today_marks[1]])).status_code == 201
    home = await world.api("GET", "/attendance/", as_=s.guardians[0], tenant=A, params={"lang": "en"})
    assert home.status_code == 200
    [item] = re.findall(rf'<li class="child" data-student="{pupil}">(.*?)</li>', home.text, re.S)
    assert "3 absences in 30 days" in item and "<strong>2 to justify</strong>" in item, item
    # The child page's section says the same.
    ctx = await _context(world, s.guardians[0], A)
    [section] = [
        x
        for x in await world.services.plugins.collect("madrasa_child_overview", frozenset(), ctx=ctx, child_id=pupil)
        if x["url"].startswith("/attendance/")
    ]
    expected = gettext_(
        "{absent} absences and {late} late arrivals in 30 days; {todo} to justify.", absent=3, late=0, todo=2
    )
    assert section["body"] == expected
