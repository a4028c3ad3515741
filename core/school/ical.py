"""Personal iCalendar feeds (RFC 5545) at a secret, rotatable URL.

``POST /api/v1/me/calendar-feed`` gives the caller a fresh secret feed URL (only its SHA-256 is
stored, so rotating makes the previous URL answer 404 at once). ``GET /calendar/<token>.ics``
serves, without a login, the person's week as recurring events: lessons they teach, their
duties, their own class's lessons (pupils) and their children's (guardians). Each weekly slot is
one ``VEVENT`` in ``Africa/Casablanca`` with a weekly ``RRULE`` up to the end of its validity and
an ``EXDATE`` for every occurrence falling in a national or regional holiday. UIDs and
``DTSTAMP`` derive from the data only, so two fetches of an unchanged timetable are identical.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from core import audit
from core.access import roles_at, scope_for
from core.context import Ctx
from core.db import Database
from core.identity import sha256
from core.mail import public_link
from core.permissions import PUBLIC
from core.school import reads, rules
from core.scope import Scope
from core.services import Services
from core.sql import in_

TZID = "Africa/Casablanca"
ZONE = ZoneInfo(TZID)
PRODID = "-//madrasa//timetable//FR"
MEDIA_TYPE = "text/calendar; charset=utf-8"
CACHE_CONTROL = "private, max-age=300"
FEED_PATH = "/calendar"
_TOKEN_MAX = 128
_CALNAME = {"ar": "جدول الحصص", "en": "Timetable", "fr": "Emploi du temps"}


class CalendarFeedOut(msgspec.Struct):
    """The caller's secret feed URL (shown once: only its hash is kept)."""

    url: str


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One weekly event of the feed, before it becomes a ``VEVENT``."""

    uid: str
    summary: str
    weekday: int
    starts_at: time
    ends_at: time
    valid_from: date
    valid_to: date
    holidays: tuple[tuple[date, date], ...]
    location: str | None = None
    description: str | None = None


# -- feed secrets -------------------------------------------------------------------------------


@post("/api/v1/me/calendar-feed", opt={"permission": "timetable.view"}, status_code=201, tags=["me"])
async def rotate_feed(ctx: Ctx, request: Request[Any, Any, Any]) -> CalendarFeedOut:
    """Create or rotate the caller's calendar feed URL; the previous URL stops working at once."""
    assert ctx.person_id is not None
    db = ctx.services.db
    token = secrets.token_urlsafe(32)
    async with db.scoped(ctx.scope):
        await db.execute(
            "INSERT INTO calendar_feed (person_id, token_hash, created_at, active) VALUES ({}, {}, {}, {}) "
            "ON CONFLICT (person_id) DO UPDATE SET token_hash = excluded.token_hash, "
            "created_at = excluded.created_at, active = excluded.active",
            ctx.person_id,
            sha256(token),
            datetime.now(UTC),
            True,
        )
        tenant = ctx.tenant
        if tenant is not None and ctx.scope.covers(tenant.path):
            # The fact of a rotation only: never the secret or its hash.
            await audit.record(
                db,
                actor_id=ctx.person_id,
                action="calendar_feed.rotate",
                object_type="person",
                object_id=ctx.person_id,
                tenant=tenant,
            )
    # Built from the configured public address, never from request headers (Host, X-Forwarded-*).
    return CalendarFeedOut(await public_link(ctx.services.settings, db, f"{FEED_PATH}/{token}.ics", ctx.tenant))


# -- the feed -----------------------------------------------------------------------------------


@get(f"{FEED_PATH}/{{token:str}}", opt={"permission": PUBLIC}, include_in_schema=False)
async def calendar_feed(ctx: Ctx, token: FromPath[str]) -> Response[bytes]:
    """A person's timetable as iCalendar; an unknown or rotated token answers 404."""
    secret = token.removesuffix(".ics")
    if not secret or len(secret) > _TOKEN_MAX:
        raise NotFoundException("No such calendar.")
    svc = ctx.services
    db = svc.db
    person = await db.fetchrow(
        "SELECT p.id, p.full_name, p.full_name_ar, p.locale, p.active, f.active AS feed_active "
        "FROM calendar_feed f JOIN person p ON p.id = f.person_id WHERE f.token_hash = {}",
        sha256(secret),
    )
    if person is None or not person["active"] or not person["feed_active"]:
        raise NotFoundException("No such calendar.")
    person_id = int(person["id"])
    grants = await svc.grants.grants(person_id)
    scope = scope_for(grants, svc.permissions.roles_for("timetable.view"), None)
    if not scope:
        raise NotFoundException("No such calendar.")
    locale = person["locale"] if person["locale"] in _CALNAME else "fr"
    async with db.scoped(scope, write=False):
        entries = await _entries(svc, scope, person_id, roles_at(grants, None), locale)
    name = (person["full_name_ar"] if locale == "ar" else "") or person["full_name"]
    body = build_calendar(entries, f"{_CALNAME[locale]} – {name}").to_ical()
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": CACHE_CONTROL})


async def _entries(svc: Services, scope: Scope, person_id: int, roles: frozenset[str], locale: str) -> list[_Entry]:
    """Everything the person's feed shows, read inside their scope."""
    db = svc.db
    holidays = _Holidays(svc)
    out: list[_Entry] = []
    for row in await reads.teacher_slots(db, scope, person_id):
        out.append(await _lesson(row, f"slot-{row['id']}-{person_id}@madrasa", locale, holidays))
    for row in await reads.duties(db, scope, person_id):
        out.append(
            _Entry(
                uid=f"duty-{row['id']}-{person_id}@madrasa",
                summary=row["label"],
                weekday=row["weekday"],
                starts_at=row["starts_at"],
                ends_at=row["ends_at"],
                valid_from=row["valid_from"],
                valid_to=row["valid_to"],
                holidays=await holidays.for_duty(row),
            )
        )
    if "student" in roles:
        me = await reads.own_student(db, scope, person_id)
        if me and me["class_id"]:
            for row in await reads.class_slots(db, scope, me["class_id"]):
                out.append(await _lesson(row, f"slot-{row['id']}-{person_id}@madrasa", locale, holidays))
    if "parent" in roles:
        for child in await reads.children(db, scope, person_id):
            if not child["class_id"]:
                continue
            first = (child["first_name_ar"] if locale == "ar" else "") or child["first_name"]
            for row in await reads.class_slots(db, scope, child["class_id"]):
                uid = f"slot-{row['id']}-{child['id']}-{person_id}@madrasa"
                out.append(await _lesson(row, uid, locale, holidays, prefix=f"{first} — "))
    unique: dict[str, _Entry] = {}
    for entry in out:
        unique.setdefault(entry.uid, entry)
    return list(unique.values())


async def _lesson(row: dict[str, Any], uid: str, locale: str, holidays: _Holidays, prefix: str = "") -> _Entry:
    subject = (row["subject_ar"] if locale == "ar" else "") or row["subject_fr"]
    return _Entry(
        uid=uid,
        summary=f"{prefix}{subject} · {row['class_name']}",
        weekday=row["weekday"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        holidays=await holidays.for_lesson(row),
        location=row["room_name"],
        description=row["teacher_name"],
    )


class _Holidays:
    """Holiday periods per (school year, school): national ones and the school's region's own."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._years: dict[int, int | None] = {}
        self._periods: dict[tuple[tuple[int, ...], int | None], tuple[tuple[date, date], ...]] = {}

    async def for_lesson(self, row: dict[str, Any]) -> tuple[tuple[date, date], ...]:
        """Holidays of the lesson's class's school year."""
        class_id = int(row["class_id"])
        if class_id not in self._years:
            self._years[class_id] = await self.svc.db.fetchval(
                "SELECT school_year_id FROM school_class WHERE id = {}", class_id
            )
        year = self._years[class_id]
        years = (year,) if year is not None else await self._overlapping(row)
        return await self._load(years, row["school_id"])

    async def for_duty(self, row: dict[str, Any]) -> tuple[tuple[date, date], ...]:
        """Holidays of the school years the duty's validity overlaps."""
        return await self._load(await self._overlapping(row), row["school_id"])

    async def _overlapping(self, row: dict[str, Any]) -> tuple[int, ...]:
        rows = await self.svc.db.fetch(
            "SELECT id FROM school_year WHERE starts_on <= {} AND ends_on >= {} ORDER BY id",
            row["valid_to"],
            row["valid_from"],
        )
        return tuple(int(r["id"]) for r in rows)

    async def _load(self, years: tuple[int, ...], school_id: int) -> tuple[tuple[date, date], ...]:
        school = await self.svc.tenants.by_id(school_id)
        region = school.region_id if school else None
        key = (years, region)
        if key not in self._periods:
            self._periods[key] = await holiday_periods(self.svc.db, years, region)
        return self._periods[key]


async def holiday_periods(db: Database, years: tuple[int, ...], region_id: int | None) -> tuple[tuple[date, date], ...]:
    """``(first, last)`` days of the national holidays of some school years, and the region's own."""
    if not years:
        return ()
    rows = await db.fetch(
        "SELECT starts_on, ends_on FROM holiday WHERE school_year_id IN {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY starts_on, ends_on, id",
        in_(years),
        region_id if region_id is not None else -1,
    )
    return tuple((r["starts_on"], r["ends_on"]) for r in rows)


# -- iCalendar ----------------------------------------------------------------------------------


def build_calendar(entries: list[_Entry], name: str) -> Calendar:
    """The ``VCALENDAR`` for some weekly entries (a pure function of its arguments)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", TZID)
    events = [event for entry in entries if (event := _event(entry)) is not None]
    if entries:
        first = min(e.valid_from for e in entries).year
        last = max(e.valid_to for e in entries).year + 1
    else:
        first = date.today().year
        last = first + 1
    cal.add_component(vtimezone(first, last))
    for event in events:
        cal.add_component(event)
    return cal


def _event(entry: _Entry) -> Event | None:
    every = rules.occurrences(entry.weekday, entry.valid_from, entry.valid_to, entry.valid_from, entry.valid_to)
    if not every:
        return None
    held = set(
        rules.occurrences(
            entry.weekday, entry.valid_from, entry.valid_to, entry.valid_from, entry.valid_to, entry.holidays
        )
    )
    if not held:
        return None
    event = Event()
    event.add("uid", entry.uid)
    event.add("dtstamp", datetime.combine(entry.valid_from, time(), UTC))
    event.add("dtstart", datetime.combine(every[0], entry.starts_at, ZONE))
    event.add("dtend", datetime.combine(every[0], entry.ends_at, ZONE))
    until = datetime.combine(entry.valid_to, time(23, 59, 59), ZONE).astimezone(UTC)
    event.add("rrule", {"freq": "weekly", "until": until})
    skipped = [datetime.combine(day, entry.starts_at, ZONE) for day in every if day not in held]
    if skipped:
        event.add("exdate", skipped)
    event.add("summary", entry.summary)
    if entry.location:
        event.add("location", entry.location)
    if entry.description:
        event.add("description", entry.description)
    return event


@lru_cache(maxsize=16)
def vtimezone(first_year: int, last_year: int) -> Timezone:
    """A ``VTIMEZONE`` for Africa/Casablanca from 1 January ``first_year`` to 1 January ``last_year``.

    Built from the zone's actual UTC-offset changes, found day by day: Morocco leaves UTC+1 for
    Ramadan, periods of about a month that a coarser search (such as ``Timezone.from_tzid`` in
    icalendar 7.0, which steps 64 days at first) can jump over, dropping e.g. 2027's transitions.
    """
    start = datetime(first_year, 1, 1, tzinfo=ZONE).astimezone(UTC)
    end = datetime(last_year, 1, 1, tzinfo=ZONE).astimezone(UTC)
    at = start.astimezone(ZONE)
    # (offset from, offset to, name, standard?) -> local starts (in the offset in force before)
    kinds: dict[tuple[timedelta, timedelta, str, bool], list[datetime]] = defaultdict(list)
    offset = at.utcoffset()
    assert offset is not None
    kinds[(offset, offset, at.tzname() or TZID, at.dst() == timedelta())].append(at.replace(tzinfo=None))
    day = start
    while day < end:
        following = day + timedelta(days=1)
        if following.astimezone(ZONE).utcoffset() != offset:
            low, high = 0, 24 * 60  # minutes after ``day``: offset unchanged at low, changed at high
            while high - low > 1:
                middle = (low + high) // 2
                if (day + timedelta(minutes=middle)).astimezone(ZONE).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            moment = day + timedelta(minutes=high)
            local = moment.astimezone(ZONE)
            new = local.utcoffset()
            assert new is not None
            kinds[(offset, new, local.tzname() or TZID, local.dst() == timedelta())].append(
                (moment + offset).replace(tzinfo=None)
            )
            offset = new
        day = following
    tz = Timezone()
    tz.add("tzid", TZID)
    for (offset_from, offset_to, tzname, standard), starts in kinds.items():
        part = TimezoneStandard() if standard else TimezoneDaylight()
        part.add("dtstart", starts[0])
        if starts[1:]:
            part.add("rdate", starts[1:])
        part.add("tzname", tzname)
        part.add("tzoffsetfrom", offset_from)
        part.add("tzoffsetto", offset_to)
        tz.add_component(part)
    return tz


ICAL_ROUTES: list[Any] = [rotate_feed, calendar_feed]
