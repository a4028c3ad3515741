"""Attendance statistics, set-based: one SQL statement per request, whatever the number of pupils.

Expected time comes from the timetable and the enrolments: for each class, the lessons whose weekday falls
on a school day of the period (terms minus holidays, up to today) and whose validity covers it, counted for
every pupil enrolled in the class on that day (``starts_on`` … ``ends_on``, both included). Pupils enrolled
for the whole period are counted per class at once; the few who arrived or left during it are counted
day by day. Absent and late time comes from the mark rows (presence is not stored). The absence rate is
absent minutes / expected minutes; ``pupils`` counts the pupils enrolled on the period's last day.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from core.csv_cells import csv_cell
from core.db import Database

#: Grouping levels → (key column on the class, the name shown).
LEVELS = {
    "region": ("c.region_id", "tn.name_fr", "tn.name_ar"),
    "province": ("c.province_id", "tn.name_fr", "tn.name_ar"),
    "school": ("c.school_id", "tn.name_fr", "tn.name_ar"),
    "class": ("c.id", "c.name", "c.name"),
}


def _days_sql(db: Database, days: list[date]) -> tuple[str, list[Any]]:
    """A ``days(d, wd)`` relation of the school days, as the dialect likes it."""
    if not days:
        return "SELECT NULL AS d, NULL AS wd WHERE 1=0", []
    if db.dialect == "postgres":
        return (
            "SELECT x AS d, EXTRACT(ISODOW FROM x)::int AS wd FROM unnest({}::date[]) AS x",
            [days],
        )
    values = ", ".join("({}, {})" for _ in days)
    args: list[Any] = []
    for day in days:
        args += [day.isoformat(), day.isoweekday()]
    return f"SELECT column1 AS d, column2 AS wd FROM (VALUES {values})", args


def minutes_sql(db: Database, alias: str = "s") -> str:
    """Length of a timetable slot in minutes, in SQL."""
    if db.dialect == "postgres":
        return f"(EXTRACT(EPOCH FROM ({alias}.ends_at - {alias}.starts_at)) / 60)::int"
    start = f"strftime('%s', '2000-01-01 ' || {alias}.starts_at)"
    return f"((strftime('%s', '2000-01-01 ' || {alias}.ends_at) - {start}) / 60)"


def expected_sql(db: Database, classes: str) -> str:
    """CTEs ``class_day`` (lesson minutes per class and school day), ``enrol`` (enrolments overlapping the
    period, ``whole`` when they cover all of it) and ``expected`` (minutes per class: whole-period pupils ×
    the class's minutes, plus the days of the others). ``classes`` is a relation with an ``id`` column;
    the placeholders are the period's start and end, twice."""
    return (
        f"class_day AS (SELECT s.class_id, days.d, SUM({minutes_sql(db)}) AS minutes FROM timetable_slot s "
        f"JOIN {classes} cl ON cl.id = s.class_id JOIN days ON days.wd = s.weekday "
        "AND days.d >= s.valid_from AND days.d <= s.valid_to GROUP BY s.class_id, days.d), "
        "enrol AS (SELECT e.class_id, e.student_id, e.starts_on, e.ends_on, "
        "CASE WHEN e.starts_on <= {} AND (e.ends_on IS NULL OR e.ends_on >= {}) THEN 1 ELSE 0 END AS whole "
        f"FROM enrolment e JOIN {classes} cl ON cl.id = e.class_id "
        "WHERE e.starts_on <= {} AND (e.ends_on IS NULL OR e.ends_on >= {})), "
        "class_total AS (SELECT class_id, SUM(minutes) AS minutes FROM class_day GROUP BY class_id), "
        "expected AS (SELECT class_id, SUM(minutes) AS minutes FROM ("
        "SELECT en.class_id, ct.minutes * COUNT(*) AS minutes FROM enrol en "
        "JOIN class_total ct ON ct.class_id = en.class_id WHERE en.whole = 1 GROUP BY en.class_id, ct.minutes "
        "UNION ALL SELECT en.class_id, SUM(cd.minutes) AS minutes FROM enrol en JOIN class_day cd "
        "ON cd.class_id = en.class_id AND cd.d >= en.starts_on AND (en.ends_on IS NULL OR cd.d <= en.ends_on) "
        "WHERE en.whole = 0 GROUP BY en.class_id) parts GROUP BY class_id)"
    )


async def group_stats(
    db: Database,
    level: str,
    days: list[date],
    start: date,
    end: date,
    node_filter: tuple[str, list[Any]],
    scope_sql: tuple[str, list[Any]],
) -> list[dict[str, Any]]:
    """Per region, province, school or class: pupils, expected, absent (justified, unjustified) and late minutes.

    ``node_filter`` restricts the classes (``c.`` columns), ``scope_sql`` is the caller's tenant filter on ``c``.
    Expected minutes follow each pupil's enrolment dates (a pupil who changed class or school during the
    period counts in each for the days they were there).
    """
    key, name_fr, name_ar = LEVELS[level]
    days_sql, days_args = _days_sql(db, days)
    node_where, node_args = node_filter
    where, args = scope_sql
    tenant_join = "" if level == "class" else f"JOIN tenant tn ON tn.id = {key}"
    sql = (
        f"WITH days AS ({days_sql}), "
        "classes AS (SELECT c.id, c.name, c.region_id, c.province_id, c.school_id FROM school_class c "
        f"WHERE {node_where} AND {where}), "
        + expected_sql(db, "classes")
        + ", pupils AS (SELECT class_id, COUNT(*) AS n FROM enrol WHERE ends_on IS NULL OR ends_on >= {} "
        "GROUP BY class_id), "
        "marks AS (SELECT m.class_id, "
        "SUM(CASE WHEN m.kind = 'absent' THEN m.minutes ELSE 0 END) AS absent, "
        "SUM(CASE WHEN m.kind = 'absent' AND m.justified THEN m.minutes ELSE 0 END) AS justified, "
        "SUM(CASE WHEN m.kind = 'late' THEN m.minutes ELSE 0 END) AS late, "
        "SUM(CASE WHEN m.kind = 'late' THEN 1 ELSE 0 END) AS lates "
        "FROM attendance_mark m JOIN classes cl ON cl.id = m.class_id "
        "WHERE m.on_date >= {} AND m.on_date <= {} GROUP BY m.class_id) "
        f"SELECT {key} AS id, {name_fr} AS name_fr, {name_ar} AS name_ar, "
        "SUM(COALESCE(p.n, 0)) AS pupils, SUM(COALESCE(x.minutes, 0)) AS expected, "
        "SUM(COALESCE(k.absent, 0)) AS absent, SUM(COALESCE(k.justified, 0)) AS justified, "
        "SUM(COALESCE(k.late, 0)) AS late, SUM(COALESCE(k.lates, 0)) AS lates "
        f"FROM classes c {tenant_join} LEFT JOIN expected x ON x.class_id = c.id "
        "LEFT JOIN pupils p ON p.class_id = c.id LEFT JOIN marks k ON k.class_id = c.id "
        f"GROUP BY {key}, {name_fr}, {name_ar} ORDER BY {name_fr}, {key}"
    )
    rows = await db.fetch(sql, *days_args, *node_args, *args, start, end, end, start, end, start, end)
    return [finish(r) for r in rows]


def finish(row: dict[str, Any]) -> dict[str, Any]:
    """Hours and the absence rate from the minutes of a statistics row."""
    expected = int(row.get("expected") or 0)
    absent = int(row.get("absent") or 0)
    justified = int(row.get("justified") or 0)
    return {
        **{k: row[k] for k in row if k not in ("expected", "absent", "justified", "late")},
        "pupils": int(row.get("pupils") or 0),
        "expected_hours": round(expected / 60, 1),
        "absent_hours": round(absent / 60, 1),
        "justified_hours": round(justified / 60, 1),
        "unjustified_hours": round((absent - justified) / 60, 1),
        "late_minutes": int(row.get("late") or 0),
        "lates": int(row.get("lates") or 0),
        "absence_rate": round(absent / expected, 4) if expected else 0.0,
    }


async def pupil_stats(
    db: Database, days: list[date], start: date, end: date, class_id: int, student_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Per pupil enrolled in a class at some time of the period: expected time on the days they were in it,
    absent, justified and late time in its lessons."""
    days_sql, days_args = _days_sql(db, days)
    extra, extra_args = "", []
    if student_ids is not None:
        from core.db import in_list

        placeholders, extra_args = in_list(student_ids)
        extra = f" AND e.student_id IN {placeholders}"
    sql = (
        f"WITH days AS ({days_sql}), one AS (SELECT CAST({{}} AS INTEGER) AS id), "
        + expected_sql(db, "one")
        + ", per_pupil AS (SELECT en.student_id, SUM(cd.minutes) AS minutes FROM enrol en JOIN class_day cd "
        "ON cd.class_id = en.class_id AND cd.d >= en.starts_on AND (en.ends_on IS NULL OR cd.d <= en.ends_on) "
        "GROUP BY en.student_id), "
        "marks AS (SELECT m.student_id, "
        "SUM(CASE WHEN m.kind = 'absent' THEN m.minutes ELSE 0 END) AS absent, "
        "SUM(CASE WHEN m.kind = 'absent' AND m.justified THEN m.minutes ELSE 0 END) AS justified, "
        "SUM(CASE WHEN m.kind = 'late' THEN m.minutes ELSE 0 END) AS late, "
        "SUM(CASE WHEN m.kind = 'late' THEN 1 ELSE 0 END) AS lates "
        "FROM attendance_mark m WHERE m.class_id = {} AND m.on_date >= {} AND m.on_date <= {} GROUP BY m.student_id) "
        "SELECT st.id, st.national_code, st.first_name, st.last_name, st.first_name_ar, st.last_name_ar, "
        "COALESCE(x.minutes, 0) AS expected, COALESCE(k.absent, 0) AS absent, "
        "COALESCE(k.justified, 0) AS justified, COALESCE(k.late, 0) AS late, COALESCE(k.lates, 0) AS lates "
        "FROM (SELECT DISTINCT e.student_id FROM enrol e WHERE 1=1" + extra + ") p "
        "JOIN student st ON st.id = p.student_id LEFT JOIN per_pupil x ON x.student_id = p.student_id "
        "LEFT JOIN marks k ON k.student_id = p.student_id ORDER BY st.last_name, st.first_name, st.id"
    )
    rows = await db.fetch(sql, *days_args, class_id, start, end, end, start, class_id, start, end, *extra_args)
    out = []
    for r in rows:
        r = dict(r)
        r["pupils"] = 1
        out.append(finish(r))
    return out


CSV_COLUMNS = [
    "id",
    "name_fr",
    "pupils",
    "expected_hours",
    "absent_hours",
    "justified_hours",
    "unjustified_hours",
    "late_minutes",
    "absence_rate",
]


def to_csv(rows: list[dict[str, Any]], columns: list[str] = CSV_COLUMNS) -> str:
    """Statistics as CSV (UTF-8, comma separated, a header row); names that a spreadsheet would run as a
    formula are neutralised (:func:`csv_cell`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c, "")) for c in columns])
    return buffer.getvalue()
