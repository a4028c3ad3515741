"""Attendance statistics benchmark on PostgreSQL: a region of 100,000 pupils over a full semester.

The script creates a throw-away database with an owner role and an application role
(``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``benchmarks/generate.py`` does), migrates it and fills it:

* :func:`devtools.generator.generate` as the application role (RLS on): one region of ``--pupils`` pupils in
  schools of 500 (100,000 pupils = 200 schools), with conflict-free weekly timetables;
* set-based, as the owner: for every timetable slot and every school day of the first term (terms minus
  holidays) a taken register (``attendance_session``); one pupil in ``--moved`` (50) changes class in the
  middle of the term (enrolment closed the day before, a new one from that day), so the statistics must
  follow enrolment dates; for every pupil enrolled in the class on the register's day an
  absence with probability ``--absence`` (5 %) or a lateness with probability ``--late`` (1 %); a third of
  the absences justified. Presence is not stored, as in the application.

Then, as the application role with the region administrator's scope (RLS and the scope filter on), it
times :func:`plugins.attendance.stats.group_stats` for the whole semester at every level (region,
province, school, class), ``--rounds`` times each, and checks the region's totals against hand-written
SQL over the same rows. Target: the region level ≤ 30 s. The database and roles are dropped at the end,
also on error or Ctrl-C.

    .venv/bin/python benchmarks/attendance_stats.py [--pupils 100000] [--absence 0.05] [--rounds 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg, drop_pg  # noqa: E402

PUPILS_PER_SCHOOL = 500
TARGET_SECONDS = 30.0

SESSIONS_SQL = """
INSERT INTO attendance_session (region_id, province_id, school_id, slot_id, class_id, on_date, minutes, teacher_id,
    taken_by, taken_at, updated_at, version)
SELECT s.region_id, s.province_id, s.school_id, s.id, s.class_id, d.day,
       (EXTRACT(EPOCH FROM (s.ends_at - s.starts_at)) / 60)::int, s.teacher_id, s.teacher_id, now(), now(), 1
FROM timetable_slot s JOIN unnest($1::date[]) AS d(day) ON EXTRACT(ISODOW FROM d.day) = s.weekday
 AND d.day BETWEEN s.valid_from AND s.valid_to
"""

MARKS_SQL = """
INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, student_id, on_date, kind,
    minutes, justified)
SELECT q.region_id, q.province_id, q.school_id, q.id, q.class_id, q.student_id, q.on_date,
       CASE WHEN q.x < $1 THEN 'absent' ELSE 'late' END,
       CASE WHEN q.x < $1 THEN q.minutes ELSE 5 + (q.x * 1000)::int % 20 END,
       q.x < $1 / 3
FROM (
  -- random() in the select list of a subquery: drawn once per (register, pupil), never hoisted
  SELECT se.region_id, se.province_id, se.school_id, se.id, se.class_id, e.student_id, se.on_date, se.minutes,
         random() AS x
  FROM attendance_session se JOIN enrolment e ON e.class_id = se.class_id AND e.starts_on <= se.on_date
   AND (e.ends_on IS NULL OR e.ends_on >= se.on_date)
) q
WHERE q.x < $1 + $2
"""

CHECK_SQL = """
SELECT SUM(CASE WHEN kind = 'absent' THEN minutes ELSE 0 END) AS absent,
       SUM(CASE WHEN kind = 'absent' AND justified THEN minutes ELSE 0 END) AS justified,
       SUM(CASE WHEN kind = 'late' THEN minutes ELSE 0 END) AS late
FROM attendance_mark WHERE on_date BETWEEN $1 AND $2
"""

# Every lesson of the term has a register here, so the registers are the expected lessons: each counts for
# the pupils enrolled in its class on its day (ends_on is the last day in the class).
EXPECTED_SQL = """
SELECT SUM(se.minutes * (SELECT COUNT(*) FROM enrolment e WHERE e.class_id = se.class_id
                          AND e.starts_on <= se.on_date AND (e.ends_on IS NULL OR e.ends_on >= se.on_date)))
FROM attendance_session se WHERE se.on_date BETWEEN $1 AND $2
"""

# Mid-term class changes: one pupil in $2 moves on $1 to another class of the same school.
MOVE_SQL = [
    """CREATE TEMP TABLE moved AS
SELECT e.id, e.student_id, e.school_year_id, e.region_id, e.province_id, e.school_id,
       (SELECT c2.id FROM school_class c2 WHERE c2.school_id = e.school_id AND c2.id <> e.class_id
         AND c2.school_year_id = e.school_year_id ORDER BY c2.id LIMIT 1) AS to_class
FROM enrolment e WHERE e.ends_on IS NULL AND e.student_id % $1 = 0""",
    "UPDATE enrolment e SET ends_on = $1::date - 1, status = 'moved' FROM moved m WHERE e.id = m.id",
    """INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, starts_on,
    status) SELECT region_id, province_id, school_id, student_id, to_class, school_year_id, $1, 'active'
FROM moved WHERE to_class IS NOT NULL""",
]

#: The day the benchmark runs "on" (a Monday of the first term of the reference school year).
DAY = date(2026, 11, 16)


def log(message: str = "") -> None:
    print(message, flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database`` (Linux ``/proc``)."""
    marker = f" {database} ".encode()
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker in Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" "):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


async def run(pg: PgWorld, args: argparse.Namespace, data_dir: Path) -> int:
    from core.app import build_services
    from core.config import load_settings
    from core.migrate import migrate
    from core.scope import Scope
    from core.sql import SQL
    from devtools.generator import generate
    from plugins.attendance import service, stats

    settings = load_settings(
        {},
        data_dir=str(data_dir),
        database_url=pg.url(pg.app_role),
        migration_database_url=pg.url(pg.owner),
        secret_key=secrets.token_urlsafe(48),
        log_level="WARNING",
        db_pool_min=1,
        db_pool_max=4,
    )
    services = build_services(settings)
    db = services.db
    await db.start()
    try:
        await migrate(db, services.migration_sets)
        schools = max(1, args.pupils // PUPILS_PER_SCHOOL)
        per_school = min(PUPILS_PER_SCHOOL, args.pupils)
        log(f"generating 1 region × {schools} schools × {per_school} pupils (devtools.generator, app role) …")
        generated = await generate(
            db, regions=1, schools_per_region=schools, students_per_school=per_school, seed=args.seed
        )
        log(f"  {generated.rows:,} rows in {generated.seconds:.1f} s")

        region = await db.fetchrow("SELECT id, slug FROM tenant WHERE kind = 'region' ORDER BY id LIMIT 1")
        assert region is not None
        async with db.scoped(Scope.everything(), write=False):
            cal = await service.calendar(db, region["id"], DAY)
        _, start, end = cal["terms"][0]
        days = service.school_days(cal, start, end)
        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            await owner.execute("SELECT set_config('app.platform', 'on', false)")
            log(
                f"registers for every lesson of the first term ({len(days)} days less holidays, {start} – {end}) and "
                f"{args.absence:.0%} absences, {args.late:.0%} lateness (set-based, owner) …"
            )
            began = time.perf_counter()
            await owner.execute("SELECT setseed($1)", (args.seed % 1000) / 1000)
            middle = start + timedelta(days=(end - start).days // 2)
            await owner.execute(MOVE_SQL[0], args.moved)
            await owner.execute(MOVE_SQL[1], middle)
            await owner.execute(MOVE_SQL[2], middle)
            moved = await owner.fetchval("SELECT count(*) FROM moved")
            log(f"  {moved:,} pupils changed class on {middle}")
            await owner.execute(SESSIONS_SQL, days)
            await owner.execute(MARKS_SQL, args.absence, args.late)
            await owner.execute("ANALYZE")
            facts = dict(
                await owner.fetchrow(
                    "SELECT (SELECT count(*) FROM tenant WHERE kind = 'school') AS schools, "
                    "(SELECT count(*) FROM school_class) AS classes, (SELECT count(*) FROM student) AS pupils, "
                    "(SELECT count(*) FROM timetable_slot) AS slots, "
                    "(SELECT count(*) FROM attendance_session) AS sessions, "
                    "(SELECT count(*) FROM attendance_mark) AS marks"
                )
            )
            log(
                f"  {facts['sessions']:,} registers, {facts['marks']:,} absence/lateness rows in "
                f"{time.perf_counter() - began:.1f} s"
            )
            check = dict(await owner.fetchrow(CHECK_SQL, start, end))
            expected_total = int(await owner.fetchval(EXPECTED_SQL, start, end) or 0)
        finally:
            await owner.close()
        log(
            f"data: {facts['schools']} schools, {facts['classes']:,} classes, {facts['pupils']:,} pupils, "
            f"{facts['slots']:,} weekly lessons"
        )

        scope = Scope(nodes=frozenset({region["id"]}))
        tenant = await services.tenants.by_id(region["id"])
        assert tenant is not None
        results: dict[str, list[tuple[float, float, float]]] = {}
        totals: dict[str, Any] = {}
        for level in ("region", "province", "school", "class"):
            for _ in range(args.rounds):
                pg_before, cpu_before = backend_cpu(pg.database), cpu_seconds()
                began = time.perf_counter()
                async with db.scoped(scope, write=False):
                    rows = await stats.group_stats(
                        db,
                        level,
                        days,
                        start,
                        end,
                        SQL("c.region_id = {}", tenant.id),
                        SQL("c.region_id = {}", tenant.id),
                    )
                seconds = time.perf_counter() - began
                results.setdefault(level, []).append(
                    (seconds, cpu_seconds() - cpu_before, backend_cpu(pg.database) - pg_before)
                )
            totals[level] = {
                "groups": len(rows),
                "absent": sum(r["absent_hours"] for r in rows),
                "expected": sum(r["expected_hours"] for r in rows),
            }
        region_row = rows = None
        async with db.scoped(scope, write=False):
            rows = await stats.group_stats(
                db, "region", days, start, end, SQL("c.region_id = {}", tenant.id), SQL("c.region_id = {}", tenant.id)
            )
        region_row = rows[0]
    finally:
        await db.stop()

    log("")
    log(
        f"attendance statistics over a term ({len(days)} days less holidays) for {facts['pupils']:,} pupils "
        f"({facts['marks']:,} absence/lateness rows, no row per presence), app role with RLS, region scope:"
    )
    for level, runs in results.items():
        best = min(runs, key=lambda r: r[0])
        log(
            f"  {level:8s} {totals[level]['groups']:6d} groups  best {best[0]:6.2f} s  "
            f"(all: {', '.join(f'{r[0]:.2f}' for r in runs)})  CPU: app {best[1]:.2f} s, PostgreSQL {best[2]:.2f} s"
        )
    ok_values = (
        abs(region_row["absent_hours"] - round(int(check["absent"] or 0) / 60, 1)) < 0.05
        and abs(region_row["justified_hours"] - round(int(check["justified"] or 0) / 60, 1)) < 0.05
        and region_row["late_minutes"] == int(check["late"] or 0)
        and abs(region_row["expected_hours"] - round(expected_total / 60, 1)) < 0.05
    )
    log(
        f"  check against hand-written SQL (absent, justified, late, expected from the registers): "
        f"{'same' if ok_values else 'DIFFERENT'}; region absence rate {region_row['absence_rate']:.2%}"
    )
    seconds = min(r[0] for r in results["region"])
    verdict = "met" if seconds <= TARGET_SECONDS else "NOT met"
    log(f"region statistics: {seconds:.2f} s (target ≤ {TARGET_SECONDS:.0f} s): {verdict}")
    log(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return 0 if ok_values else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--absence", type=float, default=0.05)
    parser.add_argument("--late", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--moved", type=int, default=50, help="one pupil in this many changes class mid-term")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    pg = PgWorld(
        args.admin_url,
        f"madrasa_attstats_{suffix}",
        f"madrasa_asown_{suffix}",
        f"madrasa_asapp_{suffix}",
        secrets.token_hex(12),
    )
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-attstats-"))
    try:
        asyncio.run(create_pg(pg))
        return asyncio.run(run(pg, args, tmp))
    finally:
        asyncio.run(drop_pg(pg))
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
