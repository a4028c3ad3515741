"""The school calendar (terms, holidays) and subject coefficients, with region and school overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery, JSONBody

from core import audit
from core.context import Ctx, RequestContext
from core.errors import Invalid
from core.invalidation import CALENDAR
from core.school.rules import CoefficientRow, effective_coefficients
from core.school.service import current_year
from core.tenancy import TenantInfo


class TermOut(msgspec.Struct):
    """A term as it applies to the tenant."""

    number: int
    starts_on: date
    ends_on: date
    source: str


class HolidayOut(msgspec.Struct):
    """A holiday as it applies to the tenant."""

    name_fr: str
    name_ar: str
    starts_on: date
    ends_on: date
    source: str


class CalendarOut(msgspec.Struct):
    """The current year's calendar for the tenant."""

    year: str
    starts_on: date
    ends_on: date
    terms: list[TermOut]
    holidays: list[HolidayOut]


class TermsIn(msgspec.Struct, forbid_unknown_fields=True):
    """A region's own term dates (replacing the national ones there)."""

    terms: Annotated[list[tuple[date, date]], msgspec.Meta(min_length=1, max_length=4)]


class HolidayIn(msgspec.Struct, forbid_unknown_fields=True):
    """A region's holiday."""

    name_fr: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    starts_on: date
    ends_on: date
    name_ar: Annotated[str, msgspec.Meta(max_length=100)] = ""


class CoefficientIn(msgspec.Struct, forbid_unknown_fields=True):
    """Override a subject's coefficient at a level (and track) for the request's region or school."""

    level_code: Annotated[str, msgspec.Meta(max_length=8)]
    subject_code: Annotated[str, msgspec.Meta(max_length=16)]
    coefficient: Annotated[float, msgspec.Meta(ge=0, le=20)]
    weekly_hours: Annotated[float, msgspec.Meta(ge=0, le=40)]
    track_code: Annotated[str, msgspec.Meta(max_length=12)] | None = None


class CoefficientOut(msgspec.Struct):
    """A subject's effective coefficient and weekly hours."""

    subject_code: str
    coefficient: float
    weekly_hours: float


def _region_or_school(ctx: RequestContext, kinds: tuple[str, ...]) -> TenantInfo:
    tenant = ctx.require_tenant()
    if tenant.kind not in kinds:
        raise NotFoundException(f"This is set for a {' or a '.join(kinds)}: use /t/<slug>/….")
    return tenant


async def calendar_for(ctx: RequestContext, tenant: TenantInfo) -> CalendarOut:
    """Terms and holidays of the current year at a tenant: the region's own terms replace the national ones."""
    db = ctx.services.db
    year = await current_year(db)
    region = tenant.region_id
    terms = await db.fetch(
        "SELECT number, starts_on, ends_on, tenant_id FROM term WHERE school_year_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY number",
        year["id"],
        region or -1,
    )
    regional = [t for t in terms if t["tenant_id"] is not None]
    chosen = regional or [t for t in terms if t["tenant_id"] is None]
    holidays = await db.fetch(
        "SELECT name_fr, name_ar, starts_on, ends_on, tenant_id FROM holiday WHERE school_year_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY starts_on",
        year["id"],
        region or -1,
    )
    return CalendarOut(
        year["label"],
        year["starts_on"],
        year["ends_on"],
        [
            TermOut(t["number"], t["starts_on"], t["ends_on"], "region" if t["tenant_id"] else "national")
            for t in chosen
        ],
        [
            HolidayOut(
                h["name_fr"],
                h["name_ar"],
                h["starts_on"],
                h["ends_on"],
                "region" if h["tenant_id"] else "national",
            )
            for h in holidays
        ],
    )


async def coefficient_rows(ctx: RequestContext, level: str, track: str | None) -> list[CoefficientRow]:
    """Every rule for a level and track (national and overrides), for :func:`effective_coefficients`."""
    rows = await ctx.services.db.fetch(
        "SELECT tenant_id, subject_code, coefficient, weekly_hours FROM subject_coefficient WHERE level_code = {} "
        "AND COALESCE(track_code, '') = {}",
        level,
        track or "",
    )
    return [
        CoefficientRow(r["tenant_id"], r["subject_code"], float(r["coefficient"]), float(r["weekly_hours"]))
        for r in rows
    ]


class CalendarController(Controller):
    """``/api/v1/calendar`` and ``/api/v1/coefficients``: national rules and their regional/school overrides."""

    path = "/api/v1"
    tags = ["calendar"]

    @get("/calendar", opt={"permission": "timetable.view", "replica": True})
    async def calendar(self, ctx: Ctx) -> CalendarOut:
        """The current year's terms and holidays where the request is."""
        return await calendar_for(ctx, ctx.require_tenant())

    @put("/calendar/terms", opt={"permission": "calendar.manage"})
    async def set_terms(self, ctx: Ctx, data: JSONBody[TermsIn]) -> CalendarOut:
        """A region sets its own term dates for the current year."""
        region = _region_or_school(ctx, ("region",))
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            year = await current_year(db)
            previous: date | None = None
            for number, (start, end) in enumerate(data.terms, start=1):
                if start > end or start < year["starts_on"] or end > year["ends_on"]:
                    raise Invalid("terms", f"term {number} must lie within {year['label']} and end after it starts")
                if previous and start <= previous:
                    raise Invalid("terms", f"term {number} must start after term {number - 1} ends")
                previous = end
            await db.execute("DELETE FROM term WHERE school_year_id = {} AND tenant_id = {}", year["id"], region.id)
            for number, (start, end) in enumerate(data.terms, start=1):
                await db.execute(
                    "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
                    "VALUES ({}, {}, {}, {}, {})",
                    year["id"],
                    region.id,
                    number,
                    start,
                    end,
                )
            await audit.record(
                db,
                actor_id=ctx.person_id,
                action="calendar.terms",
                object_type="calendar",
                object_id=year["label"],
                tenant=region,
                after={"terms": [[s.isoformat(), e.isoformat()] for s, e in data.terms]},
            )
            ctx.services.invalidation.publish(CALENDAR)
        return await calendar_for(ctx, region)

    @post("/calendar/holidays", opt={"permission": "calendar.manage"}, status_code=201)
    async def add_holiday(self, ctx: Ctx, data: JSONBody[HolidayIn]) -> CalendarOut:
        """A region adds a holiday of its own."""
        region = _region_or_school(ctx, ("region",))
        if data.starts_on > data.ends_on:
            raise Invalid("ends_on", "a holiday must end on or after its first day")
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            year = await current_year(db)
            await db.execute(
                "INSERT INTO holiday (school_year_id, tenant_id, name_fr, name_ar, starts_on, ends_on) "
                "VALUES ({}, {}, {}, {}, {}, {})",
                year["id"],
                region.id,
                data.name_fr,
                data.name_ar,
                data.starts_on,
                data.ends_on,
            )
            await audit.record(
                db,
                actor_id=ctx.person_id,
                action="calendar.holiday",
                object_type="calendar",
                object_id=year["label"],
                tenant=region,
                after={"holiday": data.name_fr},
            )
            ctx.services.invalidation.publish(CALENDAR)
        return await calendar_for(ctx, region)

    @get("/coefficients", opt={"permission": "timetable.view"})
    async def coefficients(
        self, ctx: Ctx, level: FromQuery[str], track: FromQuery[str | None] = None
    ) -> list[CoefficientOut]:
        """Effective coefficients and weekly hours at a level (and track) where the request is."""
        tenant = ctx.require_tenant()
        rows = await coefficient_rows(ctx, level, track)
        if not rows:
            raise NotFoundException(f"No subjects at level {level!r} track {track!r}.")
        effective = effective_coefficients(rows, tenant.region_id, tenant.school_id)
        return [CoefficientOut(code, c, h) for code, (c, h) in effective.items()]

    @put("/coefficients", opt={"permission": "coefficients.manage"})
    async def override(self, ctx: Ctx, data: JSONBody[CoefficientIn]) -> list[CoefficientOut]:
        """Override a coefficient for the request's region or school (the national row must exist)."""
        tenant = _region_or_school(ctx, ("region", "school"))
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            national = await db.fetchval(
                "SELECT id FROM subject_coefficient WHERE tenant_id IS NULL AND level_code = {} "
                "AND COALESCE(track_code, '') = {} AND subject_code = {}",
                data.level_code,
                data.track_code or "",
                data.subject_code,
            )
            if national is None:
                raise Invalid("subject_code", f"{data.subject_code} is not taught at {data.level_code}")
            await db.execute(
                "DELETE FROM subject_coefficient WHERE tenant_id = {} AND level_code = {} "
                "AND COALESCE(track_code, '') = {} AND subject_code = {}",
                tenant.id,
                data.level_code,
                data.track_code or "",
                data.subject_code,
            )
            await db.execute(
                "INSERT INTO subject_coefficient (tenant_id, level_code, track_code, subject_code, coefficient, "
                "weekly_hours) VALUES ({}, {}, {}, {}, {}, {})",
                tenant.id,
                data.level_code,
                data.track_code,
                data.subject_code,
                Decimal(str(data.coefficient)),
                Decimal(str(data.weekly_hours)),
            )
            await audit.record(
                db,
                actor_id=ctx.person_id,
                action="coefficient.override",
                object_type="coefficient",
                object_id=f"{data.level_code}/{data.track_code or '-'}/{data.subject_code}",
                tenant=tenant,
                after={"coefficient": data.coefficient, "hours": data.weekly_hours},
            )
        rows = await coefficient_rows(ctx, data.level_code, data.track_code)
        effective = effective_coefficients(rows, tenant.region_id, tenant.school_id)
        return [CoefficientOut(code, c, h) for code, (c, h) in effective.items()]


CALENDAR_ROUTES = [CalendarController]
