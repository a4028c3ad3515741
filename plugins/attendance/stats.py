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

from core.plugin_api import SQL, Database, csv_cell, ident, in_, join

#: Grouping levels → (key column on the class, the name shown in French and in Arabic).
LEVELS: dict[str, tuple[SQL, SQL, SQL]] = {
    "region": (ident("c", "region_id"), ident("tn", "name_fr"), ident("tn", "name_ar")),
    "province": (ident("c", "province_id"), ident("tn", "name_fr"), ident("tn", "name_ar")),
    "school": (ident("c", "school_id"), ident("tn", "name_fr"), ident("tn", "name_ar")),
    "class": (ident("c", "id"), ident("c", "name"), ident("c", "name")),
}


def _days_sql(db: Database, days: list[date]) -> SQL:
    """A ``days(d, wd)`` relation of the school days, as the dialect likes it (typed even when empty, so
    PostgreSQL compares ``wd`` with the integer weekday of a slot)."""
    if db.dialect == "postgres":
        return SQL("SELECT x AS d, EXTRACT(ISODOW FROM x)::int AS wd FROM unnest({}::date[]) AS x", days)
    if not days:
        return SQL("SELECT NULL AS d, NULL AS wd WHERE 1=0")
    values = join(", ", [SQL("({}, {})", day.isoformat(), day.isoweekday()) for day in days])
    return SQL("SELECT column1 AS d, column2 AS wd FROM (VALUES {})", values)


def minutes_sql(db: Database, alias: str = "s") -> SQL:
    """Length of a timetable slot in minutes, in SQL."""
    starts, ends = ident(alias, "starts_at"), ident(alias, "ends_at")
    if db.dialect == "postgres":
        return SQL("(EXTRACT(EPOCH FROM ({} - {})) / 60)::int", ends, starts)
    return SQL("((strftime('%s', '2000-01-01 ' || {}) - strftime('%s', '2000-01-01 ' || {})) / 60)", ends, starts)


def expected_sql(db: Database, classes: str, start: date, end: date) -> SQL:
    """CTEs ``class_day`` (lesson minutes per class and school day), ``enrol`` (enrolments overlapping the
    period ``start`` … ``end``, ``whole`` when they cover all of it) and ``expected`` (minutes per class:
    whole-period pupils × the class's minutes, plus the days of the others). ``classes`` names a relation
    with an ``id`` column."""
    relation = ident(classes)
    return SQL(
        "class_day AS (SELECT s.class_id, days.d, SUM({}) AS minutes FROM timetable_slot s "
        "JOIN {} cl ON cl.id = s.class_id JOIN days ON days.wd = s.weekday "
        "AND days.d >= s.valid_from AND days.d <= s.valid_to GROUP BY s.class_id, days.d), "
        "enrol AS (SELECT e.class_id, e.student_id, e.starts_on, e.ends_on, "
        "CASE WHEN e.starts_on <= {} AND (e.ends_on IS NULL OR e.ends_on >= {}) THEN 1 ELSE 0 END AS whole "
        "FROM enrolment e JOIN {} cl ON cl.id = e.class_id "
        "WHERE e.starts_on <= {} AND (e.ends_on IS NULL OR e.ends_on >= {})), "
        "class_total AS (SELECT class_id, SUM(minutes) AS minutes FROM class_day GROUP BY class_id), "
        "expected AS (SELECT class_id, SUM(minutes) AS minutes FROM ("
        "SELECT en.class_id, ct.minutes * COUNT(*) AS minutes FROM enrol en "
        "JOIN class_total ct ON ct.class_id = en.class_id WHERE en.whole = 1 GROUP BY en.class_id, ct.minutes "
        "UNION ALL SELECT en.class_id, SUM(cd.minutes) AS minutes FROM enrol en JOIN class_day cd "
        "ON cd.class_id = en.class_id AND cd.d >= en.starts_on AND (en.ends_on IS NULL OR cd.d <= en.ends_on) "
        "WHERE en.whole = 0 GROUP BY en.class_id) parts GROUP BY class_id)",
        minutes_sql(db),
        relation,
        start,
        end,
        relation,
        end,
        start,
    )


async def group_stats(
    db: Database,
    level: str,
    days: list[date],
    start: date,
    end: date,
    node_filter: SQL,
    where: SQL,
) -> list[dict[str, Any]]:
    """Per region, province, school or class: pupils, expected, absent (justified, unjustified) and late minutes.

    ``node_filter`` restricts the classes (``c.`` columns), ``where`` is the caller's tenant filter on ``c``
    (``scope_sql(scope, "c")``). Expected minutes follow each pupil's enrolment dates (a pupil who changed
    class or school during the period counts in each for the days they were there).
    """
    key, name_fr, name_ar = LEVELS[level]
    tenant_join = SQL() if level == "class" else SQL("JOIN tenant tn ON tn.id = {}", key)
    sql = SQL(
        "WITH days AS ({}), "
        "classes AS (SELECT c.id, c.name, c.region_id, c.province_id, c.school_id FROM school_class c "
        "WHERE {} AND {}), {}, "
        "pupils AS (SELECT class_id, COUNT(*) AS n FROM enrol WHERE ends_on IS NULL OR ends_on >= {} "
        "GROUP BY class_id), "
        "marks AS (SELECT m.class_id, "
        "SUM(CASE WHEN m.kind = 'absent' THEN m.minutes ELSE 0 END) AS absent, "
        "SUM(CASE WHEN m.kind = 'absent' AND m.justified THEN m.minutes ELSE 0 END) AS justified, "
        "SUM(CASE WHEN m.kind = 'late' THEN m.minutes ELSE 0 END) AS late, "
        "SUM(CASE WHEN m.kind = 'late' THEN 1 ELSE 0 END) AS lates "
        "FROM attendance_mark m JOIN classes cl ON cl.id = m.class_id "
        "WHERE m.on_date >= {} AND m.on_date <= {} GROUP BY m.class_id) "
        "SELECT {} AS id, {} AS name_fr, {} AS name_ar, "
        "SUM(COALESCE(p.n, 0)) AS pupils, SUM(COALESCE(x.minutes, 0)) AS expected, "
        "SUM(COALESCE(k.absent, 0)) AS absent, SUM(COALESCE(k.justified, 0)) AS justified, "
        "SUM(COALESCE(k.late, 0)) AS late, SUM(COALESCE(k.lates, 0)) AS lates "
        "FROM classes c {} LEFT JOIN expected x ON x.class_id = c.id "
        "LEFT JOIN pupils p ON p.class_id = c.id LEFT JOIN marks k ON k.class_id = c.id "
        "GROUP BY {}, {}, {} ORDER BY {}, {}",
        _days_sql(db, days),
        node_filter,
        where,
        expected_sql(db, "classes", start, end),
        end,
        start,
        end,
        key,
        name_fr,
        name_ar,
        tenant_join,
        key,
        name_fr,
        name_ar,
        name_fr,
        key,
    )
    rows = await db.fetch(sql)
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
    only = SQL(" AND e.student_id IN {}", in_(student_ids)) if student_ids is not None else SQL()
    sql = SQL(
        "WITH days AS ({}), one AS (SELECT CAST({} AS INTEGER) AS id), {}, "
        "per_pupil AS (SELECT en.student_id, SUM(cd.minutes) AS minutes FROM enrol en JOIN class_day cd "
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
        "FROM (SELECT DISTINCT e.student_id FROM enrol e WHERE 1=1{}) p "
        "JOIN student st ON st.id = p.student_id LEFT JOIN per_pupil x ON x.student_id = p.student_id "
        "LEFT JOIN marks k ON k.student_id = p.student_id ORDER BY st.last_name, st.first_name, st.id",
        _days_sql(db, days),
        class_id,
        expected_sql(db, "one", start, end),
        class_id,
        start,
        end,
        only,
    )
    rows = await db.fetch(sql)
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
