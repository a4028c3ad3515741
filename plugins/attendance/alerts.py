"""Attendance rules and alerts: a region's threshold of unjustified hours, alerts raised, at-risk lists.

Functions run inside a transaction the caller opened with ``db.scoped(scope)``; the lists and
counts are single set-based statements.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from core.plugin_api import (
    SQL,
    Database,
    InvalidatedCache,
    RequestContext,
    TenantInfo,
    audit,
    ident,
    in_,
)
from plugins.attendance.common import CACHE_SECONDS, window_number

#: The topic :func:`set_rule` publishes: every process drops its cached thresholds.
RULES_TOPIC = "attendance.rules"
_rules: InvalidatedCache[tuple[int, int | None], dict[str, int]] = InvalidatedCache(
    RULES_TOPIC, CACHE_SECONDS, max_entries=1000
)


async def rule_for(db: Database, region_id: int | None) -> dict[str, int]:
    """The alert threshold of a region (its own, else the national one); cached 60 s."""
    return await _rules.get((id(db), region_id), lambda: _rule_for(db, region_id))


async def _rule_for(db: Database, region_id: int | None) -> dict[str, int]:
    rows = await db.fetch(
        "SELECT tenant_id, unjustified_hours, window_days FROM attendance_rule "
        "WHERE tenant_id IS NULL OR tenant_id = {}",
        region_id or -1,
    )
    chosen = next((r for r in rows if r["tenant_id"] is not None), None) or next(
        (r for r in rows if r["tenant_id"] is None), None
    )
    if chosen is None:
        return {"unjustified_hours": 10, "window_days": 30}
    return {"unjustified_hours": int(chosen["unjustified_hours"]), "window_days": int(chosen["window_days"])}


async def set_rule(ctx: RequestContext, region: TenantInfo, hours: int, window_days: int) -> None:
    """Set a region's threshold (audited)."""
    db = ctx.services.db
    before = await _rule_for(db, region.id)
    ctx.services.invalidation.publish(RULES_TOPIC)  # here now, everywhere once the transaction commits
    existing = await db.fetchval("SELECT id FROM attendance_rule WHERE tenant_id = {}", region.id)
    if existing is None:
        await db.execute(
            "INSERT INTO attendance_rule (tenant_id, unjustified_hours, window_days) VALUES ({}, {}, {})",
            region.id,
            hours,
            window_days,
        )
    else:
        await db.execute(
            "UPDATE attendance_rule SET unjustified_hours = {}, window_days = {} WHERE id = {}",
            hours,
            window_days,
            existing,
        )
    await audit.record(
        db,
        actor_id=ctx.person_id,
        action="attendance.rule",
        object_type="attendance_rule",
        object_id=region.id,
        tenant=region,
        before=before,
        after={"unjustified_hours": hours, "window_days": window_days},
    )


def current_class(column: str, day: date) -> SQL:
    """The current class of the pupil of mark ``m`` on ``day`` (``column``: a column of ``school_class``)."""
    return SQL(
        "SELECT {} FROM enrolment ce JOIN school_class cc ON cc.id = ce.class_id "
        "WHERE ce.student_id = m.student_id AND ce.starts_on <= {} AND (ce.ends_on IS NULL OR ce.ends_on >= {}) "
        "ORDER BY ce.starts_on DESC, ce.id DESC LIMIT 1",
        ident("cc", column),
        day,
        day,
    )


async def raise_alerts(
    db: Database, region_id: int | None, student_ids: list[int], today: date, now: datetime
) -> list[int]:
    """Alerts for those pupils whose unjustified absences in the rule's window reach the threshold (set-based).

    The hours add up per pupil, whatever class or school they were in; the alert belongs to the pupil's school
    and current class (the class of their latest mark when they have no enrolment today)."""
    rule = await rule_for(db, region_id)
    start = today - timedelta(days=rule["window_days"] - 1)
    rows = await db.fetch(
        SQL(
            "INSERT INTO attendance_alert (region_id, province_id, school_id, student_id, class_id, window_no, "
            "minutes, created_at) SELECT st.region_id, st.province_id, st.school_id, m.student_id, "
            "COALESCE(({}), MAX(m.class_id)), {}, SUM(m.minutes), {} "
            "FROM attendance_mark m JOIN student st ON st.id = m.student_id "
            "WHERE m.student_id IN {} AND m.kind = 'absent' AND m.justified = {} "
            "AND m.on_date >= {} AND m.on_date <= {} "
            "GROUP BY m.student_id, st.region_id, st.province_id, st.school_id "
            "HAVING SUM(m.minutes) >= {} ON CONFLICT (student_id, window_no) DO NOTHING RETURNING id",
            current_class("id", today),
            window_number(today, rule["window_days"]),
            now,
            in_(student_ids),
            False,
            start,
            today,
            rule["unjustified_hours"] * 60,
        )
    )
    return [int(r["id"]) for r in rows]


async def at_risk(db: Database, node: TenantInfo, today: date, where: SQL) -> dict[str, Any]:
    """Pupils of a school, province or region whose unjustified hours in the rule's window reach the threshold.

    One row per pupil: their hours add up across the classes they were in during the window; ``class_name`` is
    their current class (the class of their latest mark when they have no enrolment today). ``where`` is the
    caller's tenant filter on the marks (``scope_sql(scope, "m")``)."""
    rule = await rule_for(db, node.region_id)
    start = today - timedelta(days=rule["window_days"] - 1)
    column = {"school": "school_id", "province": "province_id", "region": "region_id"}.get(node.kind)
    node_filter = SQL("{} = {}", ident("m", column), node.id) if column else SQL("1=1")
    rows = await db.fetch(
        SQL(
            "SELECT m.student_id, SUM(m.minutes) AS minutes, COUNT(DISTINCT m.on_date) AS days, "
            "MAX(m.on_date) AS last_day, "
            "st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar, st.school_id, "
            "COALESCE(({}), "
            "(SELECT lc.name FROM attendance_mark lm JOIN school_class lc ON lc.id = lm.class_id "
            "WHERE lm.student_id = m.student_id ORDER BY lm.on_date DESC, lm.id DESC LIMIT 1)) AS class_name, "
            "te.name_fr AS school_name_fr, te.name_ar AS school_name_ar "
            "FROM attendance_mark m JOIN student st ON st.id = m.student_id JOIN tenant te ON te.id = st.school_id "
            "WHERE m.kind = 'absent' AND m.justified = {} AND m.on_date >= {} AND m.on_date <= {} AND {} "
            "AND {} GROUP BY m.student_id, st.national_code, st.first_name, st.last_name, st.first_name_ar, "
            "st.last_name_ar, st.school_id, te.name_fr, te.name_ar HAVING SUM(m.minutes) >= {} "
            "ORDER BY SUM(m.minutes) DESC, m.student_id",
            current_class("name", today),
            False,
            start,
            today,
            node_filter,
            where,
            rule["unjustified_hours"] * 60,
        )
    )
    return {"rule": rule, "from": start, "to": today, "pupils": rows}
