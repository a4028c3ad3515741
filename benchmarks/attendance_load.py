"""Attendance load benchmark on PostgreSQL: register submissions for classes of 45, and the register page.

The script creates a throw-away database with an owner role and an application role
(``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``benchmarks/generate.py`` does), migrates it and fills it with
:func:`devtools.generator.generate` (one region, ``--schools`` schools of 500 pupils, app role, RLS on). Then,
as the owner:

* the benchmark runs "on" a fixed day (``--day``, a Monday of the first term of the reference year): the
  server is ``benchmarks/attendance_server.py``, ``madrasa serve`` with the school's clock pinned to that
  day, and the day is made a school day in the throw-away database should the calendar change (the year and
  terms stretched to cover it, a holiday on it removed), so the figures do not depend on the date it runs;
* the ``--sessions`` largest classes, topped up to 45 pupils with newcomers where the generator made them
  smaller, each get a lesson that day (20:00–21:00) taught by a distinct teacher of the class.

Every teacher gets an API token and a browser session from the application's own
``IdentityService`` (the same rows and signed tokens a login creates; argon2id logins would only load
the server with password hashing), each checked once over HTTP.

Loads, against the server (one uvicorn worker, pool 2–10; family notices are delivered by the in-process job
queue of the same process, so their cost is in the server's CPU figure):

* submissions: ``--clients`` asyncio + httpx clients, each taking a free teacher's register and sending
  ``PUT /t/<school>/api/v1/attendance/sessions/{slot}/{today}`` with two absent and one late pupil,
  the set changing every cycle (the first submission of a register creates it, later ones are audited
  corrections; notices go out once per pupil and day); submissions per second, latencies;
* the register page: ``GET /t/<school>/attendance/sessions/{slot}/{today}`` (session cookie) with
  ``wrk -t1 -c10 --latency`` rotating over the teachers (a generated Lua script).

Targets (two cores, load generator on the same machine): ≥ 200 submissions/s; the page ≥ 400 req/s with
p99 ≤ 50 ms at 10 clients. The load average and the CPU time per request of the server, of the
PostgreSQL backends and of the load generator are printed (other work on the machine skews every
figure). Everything is removed at the end, also on error or Ctrl-C.

    .venv/bin/python benchmarks/attendance_load.py [--schools 20] [--sessions 100] [--clients 10] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    app_settings,
    fresh_pg,
    identities,
    migrate_and_generate,
    open_sessions,
    server_env,
)
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg, drop_pg  # noqa: E402
from benchmarks.grades_load import Target, lua_script, run_wrk  # noqa: E402
from benchmarks.request_overhead import Server, _raise_interrupt, free_port  # noqa: E402

CLASS_SIZE = 45
TARGET_SUBMISSIONS = 200.0
TARGET_PAGE_RPS = 400.0
TARGET_PAGE_P99_MS = 50.0
POOL_MIN, POOL_MAX = 2, 10
#: The day the benchmark runs "on": a Monday of the first term of the reference school year.
DAY = date(2026, 11, 16)

CLASSES_SQL = """
WITH sizes AS (
  SELECT e.class_id, COUNT(*) AS pupils FROM enrolment e WHERE e.ends_on IS NULL GROUP BY e.class_id
), teachers AS (
  SELECT DISTINCT ON (ta.class_id) ta.class_id, ta.person_id, ta.subject_code
  FROM teaching_assignment ta ORDER BY ta.class_id, md5(ta.person_id::text || ta.subject_code)
)
SELECT c.id AS class_id, c.region_id, c.province_id, c.school_id, c.school_year_id, s.pupils, t.person_id,
       t.subject_code, tn.slug, p.email, p.full_name, p.full_name_ar, p.locale
FROM school_class c JOIN sizes s ON s.class_id = c.id JOIN teachers t ON t.class_id = c.id
JOIN tenant tn ON tn.id = c.school_id JOIN person p ON p.id = t.person_id
ORDER BY s.pupils DESC, md5(c.id::text)
"""


TOP_UP_SQL = """
WITH new AS (
  INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, first_name_ar,
      last_name_ar, gender, created_at)
  SELECT c.region_id, c.province_id, c.school_id, $3 || lpad(g::text, 6, '0'), 'Nouveau', 'Eleve ' || g, '', '',
         'F', now()
  FROM school_class c, generate_series(1, $2) AS g WHERE c.id = $1
  RETURNING id, region_id, province_id, school_id
)
INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, starts_on, status)
SELECT n.region_id, n.province_id, n.school_id, n.id, c.id, c.school_year_id, y.starts_on, 'active'
FROM new n, school_class c JOIN school_year y ON y.id = c.school_year_id WHERE c.id = $1
"""


def log(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Register:
    """A teacher's lesson today: what the load uses."""

    slot_id: int
    class_id: int
    school_id: int
    slug: str
    person_id: int
    pupils: list[int]
    day: str
    token: str = ""
    cookie: str = ""

    @property
    def api_path(self) -> str:
        return f"/t/{self.slug}/api/v1/attendance/sessions/{self.slot_id}/{self.day}"

    @property
    def page_path(self) -> str:
        return f"/t/{self.slug}/attendance/sessions/{self.slot_id}/{self.day}"


async def add_registers(
    owner: asyncpg.Connection, today: date, count: int, class_size: int | None = CLASS_SIZE
) -> list[Register]:
    """Make ``today`` a school day and give ``count`` classes a lesson that day, each by a distinct teacher.

    The largest classes first; with ``class_size``, those smaller are topped up with newcomers to that size.
    ``owner``: the owner's connection with ``app.platform`` on.
    """
    # The benchmark's day is a school day here, whatever the reference calendar says.
    await owner.execute(
        "UPDATE school_year SET starts_on = LEAST(starts_on, $1), ends_on = GREATEST(ends_on, $1)", today
    )
    await owner.execute("UPDATE term SET starts_on = LEAST(starts_on, $1) WHERE number = 1", today)
    await owner.execute(
        "UPDATE term SET ends_on = GREATEST(ends_on, $1) WHERE number = (SELECT MAX(number) FROM term)", today
    )
    await owner.execute("DELETE FROM holiday WHERE starts_on <= $1 AND ends_on >= $1", today)
    rows = await owner.fetch(CLASSES_SQL)
    seen: set[int] = set()
    chosen = []
    for r in rows:
        if r["person_id"] in seen:
            continue
        seen.add(r["person_id"])
        chosen.append(r)
        if len(chosen) == count:
            break
    registers: list[Register] = []
    for number, r in enumerate(chosen):
        missing = (class_size or 0) - int(r["pupils"])
        if missing > 0:  # classes of 45: newcomers fill the smaller ones
            await owner.execute(TOP_UP_SQL, r["class_id"], missing, f"Y{number:03d}")
        slot = await owner.fetchval(
            "INSERT INTO timetable_slot (region_id, province_id, school_id, class_id, subject_code, "
            "teacher_id, room_id, weekday, starts_at, ends_at, valid_from, valid_to) "
            "SELECT $1, $2, $3, $4, $5, $6, NULL, $7, '20:00', '21:00', LEAST(starts_on, $8), "
            "GREATEST(ends_on, $8) FROM school_year WHERE id = $9 RETURNING id",
            r["region_id"],
            r["province_id"],
            r["school_id"],
            r["class_id"],
            r["subject_code"],
            r["person_id"],
            today.isoweekday(),
            today,
            r["school_year_id"],
        )
        pupils = [
            int(p["student_id"])
            for p in await owner.fetch(
                "SELECT student_id FROM enrolment WHERE class_id = $1 AND ends_on IS NULL ORDER BY student_id",
                r["class_id"],
            )
        ]
        registers.append(
            Register(slot, r["class_id"], r["school_id"], r["slug"], r["person_id"], pupils, today.isoformat())
        )
    return registers


async def build(pg: PgWorld, args: argparse.Namespace, settings_kw: dict[str, Any]) -> tuple[list[Register], dict]:
    """Migrate, generate, make today a school day, add today's lessons, open the teachers' sessions."""
    from core.app import build_services
    from core.config import load_settings

    settings = load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=4)
    services = build_services(settings)
    db = services.db
    await db.start()
    today = args.day
    try:
        await migrate_and_generate(services, args.schools, args.seed)
        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            await owner.execute("SELECT set_config('app.platform', 'on', false)")
            registers = await add_registers(owner, today, args.sessions)
            await owner.execute("ANALYZE")
            people = await identities(owner, [r.person_id for r in registers])
        finally:
            await owner.close()
        await open_sessions(services, people, registers, "attendance_load")
    finally:
        await db.stop()
    sizes = [len(r.pupils) for r in registers]
    return registers, {"min": min(sizes), "max": max(sizes), "mean": sum(sizes) / len(sizes), "today": today}


def _body(reg: Register, cycle: int) -> dict[str, Any]:
    n = len(reg.pupils)
    a, b, c = (reg.pupils[(cycle * 3 + k) % n] for k in range(3))
    return {
        "entries": [
            {"student_id": a, "status": "absent"},
            {"student_id": b, "status": "absent"},
            {"student_id": c, "status": "late", "minutes": 5 + cycle % 20},
        ]
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pg_cpu(database: str) -> float:
    marker = f" {database} ".encode()
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" "):
                    total += _proc_cpu(int(entry))
            except OSError:
                continue
    return total


async def submissions(base: str, registers: list[Register], clients: int, duration: float) -> dict[str, Any]:
    """``clients`` clients sending registers for ``duration`` seconds, each register held by one client at a time."""
    import httpx

    free: asyncio.Queue[Register] = asyncio.Queue()
    for reg in registers:
        free.put_nowait(reg)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    cycles: Counter[int] = Counter()
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        deadline = loop.time() + duration

        async def worker() -> None:
            while loop.time() < deadline:
                reg = await free.get()
                try:
                    cycles[reg.slot_id] += 1
                    began = time.perf_counter()
                    response = await client.put(
                        reg.api_path,
                        headers={"Authorization": f"Bearer {reg.token}"},
                        json=_body(reg, cycles[reg.slot_id]),
                    )
                    latencies.append((time.perf_counter() - began) * 1000)
                    statuses[response.status_code] += 1
                finally:
                    free.put_nowait(reg)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - began
    ok = statuses.get(200, 0)
    return {
        "ok": ok,
        "seconds": seconds,
        "rate": ok / seconds,
        "statuses": dict(statuses),
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
    }


def benchmark(args: argparse.Namespace) -> int:
    """Set up, verify, load, report, tear down."""
    import httpx

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    pg = fresh_pg(args.admin_url, "attload")
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-attload-"))
    server: Server | None = None
    try:
        log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        asyncio.run(create_pg(pg))
        settings_kw = app_settings(pg, tmp / "data")
        registers, facts = asyncio.run(build(pg, args, settings_kw))
        log(
            f"{len(registers)} registers on {facts['today']}, class sizes {facts['min']}–{facts['max']} "
            f"(mean {facts['mean']:.1f}), one teacher each"
        )
        env = server_env(settings_kw, POOL_MIN, POOL_MAX)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            "madrasa serve (clock pinned)",
            [
                sys.executable,
                str(ROOT / "benchmarks" / "attendance_server.py"),
                "--day",
                args.day.isoformat(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            {**env, "MADRASA_PORT": str(port)},
            tmp / "madrasa.log",
        )
        server.wait_ok(f"{base}/readyz")

        log("verifying: every register page answers 200 for its teacher; a submission answers 200 …")
        with httpx.Client(base_url=base, timeout=30) as client:
            for reg in registers:
                page = client.get(reg.page_path, headers={"Cookie": f"madrasa_session={reg.cookie}"})
                if page.status_code != 200 or f"name=m{reg.pupils[0]} " not in page.text:
                    raise RuntimeError(f"register page {reg.page_path}: {page.status_code} {page.text[:300]}")
            first = client.put(
                registers[0].api_path,
                headers={"Authorization": f"Bearer {registers[0].token}"},
                json=_body(registers[0], 0),
            )
            if first.status_code != 200 or first.json()["absent"] != 2:
                raise RuntimeError(f"submission: {first.status_code} {first.text[:300]}")
            page_bytes = len(page.content)

        log(f"submissions: {args.clients} clients for {args.duration:.0f} s (warm-up {args.warmup:.0f} s) …")
        asyncio.run(submissions(base, registers, args.clients, args.warmup))
        server_before, pg_before = server.cpu_seconds() or 0.0, _pg_cpu(pg.database)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client_before = usage.ru_utime + usage.ru_stime
        sub = asyncio.run(submissions(base, registers, args.clients, args.duration))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        done = max(1, sub["ok"])
        sub_cpu = (
            ((server.cpu_seconds() or 0.0) - server_before) / done * 1e6,
            (_pg_cpu(pg.database) - pg_before) / done * 1e6,
            (usage.ru_utime + usage.ru_stime - client_before) / done * 1e6,
        )

        script = tmp / "pages.lua"
        script.write_text(lua_script([(r.page_path, {"Cookie": f"madrasa_session={r.cookie}"}) for r in registers]))
        target = Target("register page", server, base, [], script)
        log(f"register page: wrk -c{args.connections} for {args.duration:.0f} s (warm-up {args.warmup:.0f} s) …")
        run_wrk(target, args.connections, args.warmup, pg.database)
        page, page_cpu = run_wrk(target, args.connections, args.duration, pg.database)

        log("")
        log(
            f"register submissions (classes of {facts['min']}–{facts['max']}, 2 absent + 1 late each, "
            f"{args.clients} clients): {sub['rate']:.1f} /s, p50 {sub['p50']:.1f} ms, p99 {sub['p99']:.1f} ms, "
            f"statuses {sub['statuses']}"
        )
        log(
            f"  CPU µs per submission: server {sub_cpu[0]:.0f}, PostgreSQL {sub_cpu[1]:.0f}, "
            f"load generator (httpx, this process) {sub_cpu[2]:.0f}"
        )
        ok_sub = sub["rate"] >= TARGET_SUBMISSIONS and set(sub["statuses"]) == {200}
        log(f"  target ≥ {TARGET_SUBMISSIONS:.0f}/s: {'met' if ok_sub else 'NOT met'}")
        lat = f"p50 {page.p50_ms:.2f} ms, p99 {page.p99_ms:.2f} ms" if page.p99_ms is not None else ""
        log(
            f"register page ({page_bytes:,} bytes, {args.connections} clients over {len(registers)} sessions): "
            f"{page.rps:.1f} req/s, {lat} ({page.requests} requests, {page.bad_responses} non-2xx)"
        )
        if page_cpu.server_us is not None:
            log(
                f"  CPU µs per page: server {page_cpu.server_us:.0f}, PostgreSQL {page_cpu.pg_us or 0:.0f}, "
                f"wrk {page_cpu.client_us or 0:.0f}"
            )
        ok_page = page.rps >= TARGET_PAGE_RPS and (page.p99_ms or 1e9) <= TARGET_PAGE_P99_MS and not page.bad_responses
        log(
            f"  target ≥ {TARGET_PAGE_RPS:.0f} req/s and p99 ≤ {TARGET_PAGE_P99_MS:.0f} ms: "
            f"{'met' if ok_page else 'NOT met'}"
        )
        log(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        return 0
    finally:
        if server is not None:
            server.stop()
        asyncio.run(drop_pg(pg))
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day", type=date.fromisoformat, default=DAY, help="the day the registers are taken")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
