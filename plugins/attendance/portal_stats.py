"""The attendance statistics pages: per class (a school) or per school (a province, a region), with an SVG chart,
the at-risk list (paged) and the CSV download with the portal session."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Response, get
from litestar.params import FromQuery, Parameter, QueryParameter

from core.plugin_api import Ctx, Row, gettext_, page, paginate, scope_sql
from plugins.attendance import alerts, api, stats
from plugins.attendance.chart import absence_chart
from plugins.attendance.common import person_name
from plugins.attendance.errors import PAGE_HANDLERS


@get(
    "/attendance/stats",
    opt={"permission": "attendance.stats", "replica": True},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def stats_page(ctx: Ctx, number: Annotated[str | None, Parameter(query="page")] = None) -> Any:
    """Statistics below the tenant (classes of a school, schools of a province or region) and the at-risk list."""
    tenant = ctx.require_tenant()
    level = "class" if tenant.kind == "school" else "school"
    result = await api.tenant_stats(ctx, level, None, None)
    async with ctx.services.db.scoped(ctx.scope, write=False):
        today = ctx.services.clock.today()
        risk = await alerts.at_risk(ctx.services.db, tenant, today, scope_sql(ctx.scope, "m"))
    total = stats.finish(
        {
            "expected": sum(g["expected_hours"] * 60 for g in result["groups"]),
            "absent": sum(g["absent_hours"] * 60 for g in result["groups"]),
            "justified": sum(g["justified_hours"] * 60 for g in result["groups"]),
            "late": sum(g["late_minutes"] for g in result["groups"]),
            "pupils": sum(g["pupils"] for g in result["groups"]),
        }
    )
    at_risk = []
    for r in risk["pupils"]:
        name, lang = person_name(r, ctx.locale)
        at_risk.append(
            Row(
                name=name,
                lang=lang,
                code=r["national_code"],
                class_name=r["class_name"],
                school=r.get(f"school_name_{ctx.locale}") or r["school_name_fr"],
                hours=round(r["minutes"] / 60, 1),
                days=r["days"],
            )
        )
    groups = [
        Row(g, name=(g.get(f"name_{ctx.locale}") or g["name_fr"]) if level != "class" else g["name_fr"])
        for g in result["groups"]
    ]
    chart = absence_chart(
        groups,
        title=gettext_("Absence rate by class") if level == "class" else gettext_("Absence rate by school"),
        description=gettext_(
            "Justified and unjustified absences as a share of the expected hours; the table below gives the figures."
        ),
        rtl=ctx.locale == "ar",
    )
    return page(
        ctx,
        "attendance/stats.html",
        level=level,
        result=result,
        groups=groups,
        chart=chart,
        total=total,
        at_risk=paginate(at_risk, number, ctx.url("/attendance/stats")),
        rule=risk["rule"],
        csv_url=ctx.url(f"/attendance/stats.csv?level={level}"),
    )


@get(
    "/attendance/stats.csv",
    opt={"permission": "attendance.stats", "bulk_export": "attendance.stats", "replica": True},
    include_in_schema=False,
    exception_handlers=PAGE_HANDLERS,
)
async def stats_csv(
    ctx: Ctx,
    level: FromQuery[str] = "school",
    from_: Annotated[date | None, QueryParameter(name="from")] = None,
    to: FromQuery[date | None] = None,
) -> Response[str]:
    """The statistics page's CSV download, with the portal session."""
    return await api.stats_csv(ctx, level, from_, to)


STATS_PAGES: list[Any] = [stats_page, stats_csv]
