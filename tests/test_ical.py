"""The personal iCalendar feed: parses back, stable, local times in Africa/Casablanca, rotatable secret URL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from core.identity import sha256
from core.scope import Scope

HOME = "lycee-ibn-batouta"
HOME_REGION = "casablanca-settat"
FOREIGN_REGION = "rabat-sale-kenitra"
TEACHER = f"teacher.{HOME}@test.ma"
GUARDIAN = f"guardian.{HOME}@test.ma"
CASA = ZoneInfo("Africa/Casablanca")
FEED = "/api/v1/me/calendar-feed"


async def rows(world: Any, query: str, *args: Any) -> list[dict[str, Any]]:
    """Rows read with the platform scope."""
    async with world.services.db.scoped(Scope.everything(), write=False):
        return await world.services.db.fetch(query, *args)


async def new_feed(world: Any, email: str) -> str:
    """Create (or rotate) an account's feed; returns the URL's path."""
    response = await world.api("POST", FEED, as_=email, tenant=HOME)
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    public = (world.settings.public_url or f"http://127.0.0.1:{world.settings.port}").rstrip("/")
    assert url.startswith(f"{public}/t/") and url.endswith(".ics"), url
    return urlsplit(url).path


async def test_the_feed_address_ignores_request_headers(world: Any) -> None:
    """The secret URL comes from the configured public address, not from Host or X-Forwarded-* headers."""
    hostile = {"host": "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "http"}
    response = await world.api("POST", FEED, as_=TEACHER, tenant=HOME, headers=hostile)
    assert response.status_code == 201, response.text
    assert "evil.example" not in response.json()["url"]


async def fetch(world: Any, path: str) -> tuple[bytes, Calendar]:
    """Fetch a feed without any credentials and parse it."""
    response = await world.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    assert "charset=utf-8" in response.headers["content-type"]
    assert response.headers["cache-control"] == "private, max-age=300"
    return response.content, Calendar.from_ical(response.content)


def events(cal: Calendar) -> dict[str, Any]:
    """VEVENTs by UID."""
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def exdates(event: Any) -> list[datetime]:
    """Every EXDATE of an event, as datetimes."""
    value = event.get("exdate")
    if value is None:
        return []
    lists = value if isinstance(value, list) else [value]
    return [d.dt for lst in lists for d in lst.dts]


def local(value: datetime) -> datetime:
    """Check a parsed date-time is aware and in Africa/Casablanca."""
    assert isinstance(value, datetime) and value.tzinfo is not None
    assert getattr(value.tzinfo, "key", None) == "Africa/Casablanca"
    return value


@pytest.fixture
async def holidays(world: Any) -> AsyncIterator[list[int]]:
    """Holiday rows a test inserts (platform table, no RLS), removed afterwards."""
    created: list[int] = []
    yield created
    if created:
        db = world.services.db
        async with db.transaction():
            for holiday_id in created:
                await db.execute("DELETE FROM holiday WHERE id = {}", holiday_id)


async def add_holiday(world: Any, created: list[int], year_id: int, tenant_id: int | None, day: date) -> None:
    """A one-day holiday."""
    db = world.services.db
    async with db.transaction():
        row = await db.fetchrow(
            "INSERT INTO holiday (school_year_id, tenant_id, name_fr, name_ar, starts_on, ends_on) "
            "VALUES ({}, {}, {}, {}, {}, {}) RETURNING id",
            year_id,
            tenant_id,
            "Test feed holiday",
            "",
            day,
            day,
        )
    assert row is not None
    created.append(int(row["id"]))


async def test_teacher_feed_matches_the_timetable(world):
    path = await new_feed(world, TEACHER)
    body, cal = await fetch(world, path)
    assert str(cal["prodid"]) == "-//madrasa//timetable//FR"
    assert str(cal["version"]) == "2.0"
    assert str(cal["x-wr-calname"])
    zones = cal.walk("VTIMEZONE")
    assert [str(z["tzid"]) for z in zones] == ["Africa/Casablanca"]

    teacher = world.objects[HOME]["teacher_id"]
    slots = await rows(
        world,
        "SELECT s.id, s.weekday, s.starts_at, s.ends_at, s.valid_to, c.name AS class_name, r.name AS room, "
        "sub.name_fr AS subject FROM timetable_slot s JOIN school_class c ON c.id = s.class_id "
        "LEFT JOIN room r ON r.id = s.room_id JOIN subject sub ON sub.code = s.subject_code "
        "WHERE s.teacher_id = {}",
        teacher,
    )
    assert slots
    found = events(cal)
    # Lessons only: other modules sharing the world may have given the teacher a duty.
    assert {uid for uid in found if uid.startswith("slot-")} == {f"slot-{s['id']}-{teacher}@madrasa" for s in slots}

    seeded = found[f"slot-{world.objects[HOME]['slot_id']}-{teacher}@madrasa"]
    start, end = local(seeded.decoded("dtstart")), local(seeded.decoded("dtend"))
    assert seeded["dtstart"].params["TZID"] == "Africa/Casablanca"
    assert start.isoweekday() == 1 and (start.hour, start.minute) == (8, 0)
    assert (end.hour, end.minute) == (10, 0) and end.date() == start.date()
    assert start.utcoffset() == timedelta(hours=1)  # September: UTC+1
    assert str(seeded["location"]) == "Salle 1"
    for slot in slots:
        event = found[f"slot-{slot['id']}-{teacher}@madrasa"]
        dtstart = local(event.decoded("dtstart"))
        assert dtstart.isoweekday() == slot["weekday"]
        assert dtstart.time() == time.fromisoformat(str(slot["starts_at"]))
        assert local(event.decoded("dtend")).time() == time.fromisoformat(str(slot["ends_at"]))
        assert str(event["summary"]) == f"{slot['subject']} · {slot['class_name']}"
        rule = event["rrule"]
        assert rule["FREQ"] == ["WEEKLY"]
        (until,) = rule["UNTIL"]
        assert until.utcoffset() == timedelta(0)
        valid_to = date.fromisoformat(str(slot["valid_to"])[:10])
        assert until.date() == valid_to  # the last day is included
    # National holidays of the seeded year that fall on a Monday are excluded.
    assert {d.date() for d in exdates(seeded)} >= {date(2027, 1, 25), date(2027, 3, 22)}

    # Byte-stable: same body, same UIDs, on the next fetch and without the tenant prefix.
    again, cal_again = await fetch(world, path)
    assert again == body
    assert set(events(cal_again)) == set(found)
    bare, _ = await fetch(world, path.removeprefix(f"/t/{HOME}"))
    assert bare == body


async def test_rotation_kills_the_old_url(world):
    first = await new_feed(world, TEACHER)
    assert (await world.client.get(first)).status_code == 200
    second = await new_feed(world, TEACHER)
    assert second != first
    assert (await world.client.get(first)).status_code == 404
    body, cal = await fetch(world, second)
    assert events(cal)
    teacher = world.objects[HOME]["teacher_id"]
    stored = await rows(world, "SELECT token_hash FROM calendar_feed WHERE person_id = {}", teacher)
    token = second.rsplit("/", 1)[1].removesuffix(".ics")
    assert [r["token_hash"] for r in stored] == [sha256(token)]  # one row, the hash only
    assert token.encode() not in body


async def test_unknown_token_and_anonymous_rotation_are_refused(world):
    for path in (f"/calendar/{secrets.token_urlsafe(32)}.ics", "/calendar/nope", "/calendar/.ics"):
        assert (await world.client.get(path)).status_code == 404, path
    response = await world.client.post(f"/t/{HOME}{FEED}")
    assert response.status_code == 401


async def test_guardian_feed_has_the_childs_lessons(world):
    path = await new_feed(world, GUARDIAN)
    _, cal = await fetch(world, path)
    objects = world.objects[HOME]
    guardian, child = objects["guardian_id"], objects["student_id"]
    uid = f"slot-{objects['slot_id']}-{child}-{guardian}@madrasa"
    found = events(cal)
    assert uid in found
    assert all(key.endswith(f"-{child}-{guardian}@madrasa") for key in found)  # nothing else, no other child
    event = found[uid]
    start = local(event.decoded("dtstart"))
    assert start.isoweekday() == 1 and (start.hour, local(event.decoded("dtend")).hour) == (8, 10)
    (pupil,) = await rows(world, "SELECT first_name, first_name_ar FROM student WHERE id = {}", child)
    (person,) = await rows(world, "SELECT locale FROM person WHERE id = {}", guardian)
    (math,) = await rows(world, "SELECT name_fr, name_ar FROM subject WHERE code = 'MATH'")
    if person["locale"] == "ar":
        first, subject = pupil["first_name_ar"] or pupil["first_name"], math["name_ar"] or math["name_fr"]
    else:
        first, subject = pupil["first_name"], math["name_fr"]
    summary = str(event["summary"])
    assert summary.startswith(first) and f"{subject} · TEST-1" in summary
    assert [str(z["tzid"]) for z in cal.walk("VTIMEZONE")] == ["Africa/Casablanca"]


async def test_holidays_become_exdates(world, holidays):
    objects = world.objects[HOME]
    teacher, slot = objects["teacher_id"], objects["slot_id"]
    (klass,) = await rows(world, "SELECT school_year_id FROM school_class WHERE id = {}", objects["class_id"])
    year = klass["school_year_id"]
    path = await new_feed(world, TEACHER)
    before, _ = await fetch(world, path)

    national, regional, foreign = date(2026, 10, 12), date(2026, 10, 26), date(2026, 10, 19)  # Mondays
    await add_holiday(world, holidays, year, None, national)
    await add_holiday(world, holidays, year, world.ids[HOME_REGION], regional)
    await add_holiday(world, holidays, year, world.ids[FOREIGN_REGION], foreign)

    after, cal = await fetch(world, path)
    assert after != before
    event = events(cal)[f"slot-{slot}-{teacher}@madrasa"]
    excluded = [local(d) for d in exdates(event)]
    assert all((d.hour, d.minute) == (8, 0) for d in excluded)
    days = {d.date() for d in excluded}
    assert national in days and regional in days
    assert foreign not in days  # another region's holiday
    assert date(2026, 9, 7) not in days
    assert local(event.decoded("dtstart")).date() == date(2026, 9, 7)


def test_vtimezone_covers_ramadan_transitions():
    """Africa/Casablanca's month-long UTC+0 periods are all present (2027 included)."""
    from core.school.ical import vtimezone

    text = vtimezone(2026, 2028).to_ical().decode()
    for onset in ("20260215T030000", "20270207T030000", "20270314T020000"):
        assert onset in text, onset
    tz = Calendar.from_ical(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + vtimezone(2026, 2028).to_ical() + b"END:VCALENDAR\r\n"
    ).walk("VTIMEZONE")[0]
    custom = tz.to_tz(lookup_tzid=False)
    for day, hours in ((date(2027, 1, 20), 1), (date(2027, 2, 15), 0), (date(2027, 3, 15), 1)):
        moment = datetime.combine(day, time(8), custom)
        assert moment.utcoffset() == timedelta(hours=hours), day
        assert datetime.combine(day, time(8), CASA).utcoffset() == timedelta(hours=hours)
