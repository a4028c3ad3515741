"""Soak run on PostgreSQL: a mixed load of families, teachers and directors for minutes, one line a minute.

The script creates a throw-away database with an owner role and an application role
(``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``benchmarks/generate.py`` does), migrates it and fills it:

* :func:`devtools.generator.generate` as the application role (RLS on): one region of ``--schools`` schools
  of 500 pupils, with their guardians and teachers;
* as the owner: the first term's marks, all published but one draft sheet for each of ``--teachers`` teachers
  (``grades_load.add_marks``); today's lessons of ``--registers`` classes on a fixed school day
  (``attendance_load.add_registers``, the server's clock pinned to that day); one director per school;
* an API token and a browser session for ``--families`` guardians (distinct children), the teachers and the
  directors, from the application's own ``IdentityService`` (no argon2id cost), each checked once over HTTP.

The server is ``benchmarks/attendance_server.py`` (``madrasa serve`` with the clock pinned, one uvicorn
worker, pool 2–10). ``--connections`` asyncio + httpx clients in this process (one process, so what it can
drive on the machine is what the run achieves) loop over actions picked by weight:

* families (60 %): one of a guardian's children list, a child's marks, timetable and absences, over the API
  (bearer token) or as portal pages (session cookie);
* teachers (30 %): saving a mark grid (``GET`` then ``PUT`` with ``If-Match``; on 409 the grid is read again
  and saved once more), the grid page, submitting a register (each register held by one client at a time),
  the register page;
* directors (10 %): the classes, attendance home and statistics, justifications to review, marks home and
  missing marks pages.

Every response is counted by route group and status; 5xx and transport errors are errors; a 409 on a grid
saved again after a re-read is counted apart (two teachers on one grid: expected behaviour); any other
4xx is reported as unexpected. Each minute one line: requests, req/s, p50/p99 latency, errors, 409s, other
4xx, the server's RSS (``VmRSS`` of the server process and its children), the database's connections
(``pg_stat_activity``) and the load average. The summary gives the totals by route group, the errors by
status (and the end of the server's output if there were any), the CPU time per request of the server, of
the database's backends and of the load generator (which shares the machine), and the memory verdict: RSS
at the end of the last minute ≤ 1.2 × RSS at the end of the second (PASS/FAIL; exit status 1 on FAIL; not
evaluated with ``--minutes 1``). The clients drop idle connections after 2 s, before uvicorn's keep-alive
timeout (5 s) would close them under their feet. The database, the roles, the server and the temporary
files are removed at the end, also on error or Ctrl-C.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--connections 50] [--schools 4] [--families 400]
        [--teachers 100] [--registers 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.attendance_load import DAY, Register, _body, add_registers  # noqa: E402
from benchmarks.common import (  # noqa: E402
    app_settings,
    fresh_pg,
    identities,
    migrate_and_generate,
    open_sessions,
    server_env,
    tear_down,
    tree_rss_mib,
)
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg  # noqa: E402
from benchmarks.grades_load import (  # noqa: E402
    CpuMeter,
    Guardian,
    Teacher,
    _changed,
    _pct,
    add_marks,
    check_all,
    loadavg,
    log,
    pick_guardians,
)
from benchmarks.request_overhead import Server, _raise_interrupt, free_port  # noqa: E402

POOL_MIN, POOL_MAX = 2, 10
#: RSS at the end of the last minute may be at most this many times the RSS at the end of the second.
FLAT_RATIO = 1.2
#: Who acts, by weight.
MIX = {"family": 60, "teacher": 30, "director": 10}
#: The grid saves of a re-read grid, counted apart from the first attempts.
GRID_RETRY = "teacher: grid PUT after re-read"


@dataclass
class Director:
    """A school's director (one created per school)."""

    person_id: int
    school_id: int
    slug: str
    token: str = ""
    cookie: str = ""


@dataclass
class Cast:
    """The people the load acts as."""

    guardians: list[Guardian]
    teachers: list[Teacher]
    registers: list[Register]
    directors: list[Director]
    facts: dict[str, Any]


async def add_directors(owner: asyncpg.Connection) -> list[Director]:
    """A director (person and ``school_director`` membership, no password) for each school."""
    directors = []
    for school in await owner.fetch("SELECT id, slug FROM tenant WHERE kind = 'school' ORDER BY id"):
        person_id = await owner.fetchval(
            "INSERT INTO person (email, full_name, locale, active, created_at) "
            "VALUES ($1, $2, 'fr', true, now()) RETURNING id",
            f"director.{school['slug']}@soak.test",
            f"Directeur {school['slug']}",
        )
        await owner.execute(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ($1, 'school_director', $2, now())",
            person_id,
            school["id"],
        )
        directors.append(Director(person_id, school["id"], school["slug"]))
    return directors


async def build(pg: PgWorld, args: argparse.Namespace, settings_kw: dict[str, Any]) -> Cast:
    """Migrate, generate, add marks, today's lessons and directors, open everybody's sessions."""
    from core.app import build_services
    from core.config import load_settings

    services = build_services(load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=4))
    db = services.db
    await db.start()
    try:
        await migrate_and_generate(services, args.schools, args.seed)
        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            await owner.execute("SELECT set_config('app.platform', 'on', false)")
            log(f"marks, {args.registers} lessons on {args.day}, directors (owner, set-based) …")
            teachers = await add_marks(owner, args.teachers)
            guardians = await pick_guardians(owner, args.families, all_published=False)
            registers = await add_registers(owner, args.day, args.registers, class_size=None)
            directors = await add_directors(owner)
            await owner.execute("ANALYZE")
            facts = dict(
                await owner.fetchrow(
                    "SELECT (SELECT count(*) FROM student) AS pupils, (SELECT count(*) FROM grade_mark) AS marks, "
                    "(SELECT count(*) FROM school_class) AS classes, current_setting('server_version') AS version"
                )
            )
            groups: list[list[Any]] = [guardians, teachers, registers, directors]
            people = await identities(owner, {p.person_id for group in groups for p in group})
        finally:
            await owner.close()
        if not (guardians and teachers and registers and directors):
            raise RuntimeError(f"nothing to load: {[len(g) for g in groups]} guardians/teachers/registers/directors")
        log(f"sessions: {sum(len(g) for g in groups)} (API token + browser session each) …")
        for group in groups:
            await open_sessions(services, people, group, "soak")
    finally:
        await db.stop()
    return Cast(guardians, teachers, registers, directors, facts)


# --------------------------------------------------------------------------- the actions


def bearer(who: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


def cookie(who: Any) -> dict[str, str]:
    return {"Cookie": f"madrasa_session={who.cookie}"}


def family_requests(g: Guardian) -> list[tuple[str, str, dict[str, str]]]:
    """A guardian's reads: ``(route group, path, headers)``."""
    t, pupil = f"/t/{g.slug}", g.student_id
    return [
        ("family API: children", f"{t}/api/v1/me/children", bearer(g)),
        ("family API: marks", g.api_path, bearer(g)),
        ("family API: timetable", f"{t}/api/v1/me/children/{pupil}/timetable", bearer(g)),
        ("family API: absences", f"{t}/api/v1/attendance/pupils/{pupil}/absences", bearer(g)),
        ("family page: children", f"{t}/children", cookie(g)),
        ("family page: marks", g.page_path, cookie(g)),
        ("family page: timetable", f"{t}/children/{pupil}", cookie(g)),
        ("family page: absences", f"{t}/attendance/pupils/{pupil}", cookie(g)),
    ]


def director_requests(d: Director) -> list[tuple[str, str, dict[str, str]]]:
    """A director's pages: ``(route group, path, headers)``."""
    t = f"/t/{d.slug}"
    return [
        ("director: classes", f"{t}/timetable/classes", cookie(d)),
        ("director: attendance home", f"{t}/attendance/", cookie(d)),
        ("director: attendance stats", f"{t}/attendance/stats", cookie(d)),
        ("director: justifications", f"{t}/attendance/review", cookie(d)),
        ("director: marks home", f"{t}/grades/", cookie(d)),
        ("director: missing marks", f"{t}/grades/missing", cookie(d)),
    ]


def every_get(cast: Cast) -> list[tuple[str, str, dict[str, str]]]:
    """Every GET the load makes, once per session: ``(path, label, headers)`` for ``check_all``."""
    out = [(path, group, h) for g in cast.guardians for group, path, h in family_requests(g)]
    out += [(path, group, h) for d in cast.directors for group, path, h in director_requests(d)]
    out += [(t.api_path, "teacher: grid GET", bearer(t)) for t in cast.teachers]
    out += [(t.page_path, "teacher: grid page", cookie(t)) for t in cast.teachers]
    out += [(r.page_path, "teacher: register page", cookie(r)) for r in cast.registers]
    return out


# --------------------------------------------------------------------------- measuring


@dataclass
class Tally:
    """Latencies (ms) and statuses of some requests."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, ms: float, status: str) -> None:
        self.latencies.append(ms)
        self.statuses[status] += 1

    def errors(self) -> int:
        """5xx answers and transport errors."""
        return sum(n for s, n in self.statuses.items() if not s.isdigit() or s.startswith("5"))


def is_conflict(group: str, status: str) -> bool:
    return status == "409" and group.startswith("teacher: grid PUT")


@dataclass
class Minute:
    """One minute's figures."""

    number: int
    requests: int
    seconds: float
    p50: float | None
    p99: float | None
    errors: int
    conflicts: int
    other_4xx: int
    rss_mib: float
    db_connections: int
    load: tuple[float, float, float]


class Recorder:
    """Sends requests and counts them: by minute, by route group."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.groups: dict[str, Tally] = {}
        self.bucket = Tally()
        self.bucket_conflicts = 0
        self.bucket_4xx = 0
        self.bucket_started = time.perf_counter()

    async def send(self, group: str, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        """One request; its response, or ``None`` on a transport error."""
        import httpx

        began = time.perf_counter()
        response = None
        try:
            response = await self.client.request(method, path, headers=headers, json=body)
            status = str(response.status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        ms = (time.perf_counter() - began) * 1000
        self.bucket.add(ms, status)
        self.groups.setdefault(group, Tally()).add(ms, status)
        if is_conflict(group, status):
            self.bucket_conflicts += 1
        elif status.startswith("4"):
            self.bucket_4xx += 1
        return response

    def close_minute(self) -> tuple[Tally, float, int, int]:
        """The figures since the last call, and a fresh start."""
        now = time.perf_counter()
        out = (self.bucket, now - self.bucket_started, self.bucket_conflicts, self.bucket_4xx)
        self.bucket, self.bucket_started, self.bucket_conflicts, self.bucket_4xx = Tally(), now, 0, 0
        return out


# --------------------------------------------------------------------------- the load


class Soak:
    """The clients, their actions and the minute lines."""

    def __init__(self, cast: Cast, recorder: Recorder, seed: int) -> None:
        self.cast, self.rec, self.seed = cast, recorder, seed
        self.free_registers: asyncio.Queue[Register] = asyncio.Queue()
        for r in cast.registers:
            self.free_registers.put_nowait(r)
        self.cycles: Counter[int] = Counter()
        self.actions: dict[str, Callable[[random.Random], Awaitable[None]]] = {
            "family": self.family,
            "teacher": self.teacher,
            "director": self.director,
        }

    async def family(self, rng: random.Random) -> None:
        group, path, headers = rng.choice(family_requests(rng.choice(self.cast.guardians)))
        await self.rec.send(group, "GET", path, headers)

    async def director(self, rng: random.Random) -> None:
        group, path, headers = rng.choice(director_requests(rng.choice(self.cast.directors)))
        await self.rec.send(group, "GET", path, headers)

    async def teacher(self, rng: random.Random) -> None:
        roll = rng.random()
        if roll < 0.45:
            await self.save_grid(rng.choice(self.cast.teachers))
        elif roll < 0.6:
            t = rng.choice(self.cast.teachers)
            await self.rec.send("teacher: grid page", "GET", t.page_path, cookie(t))
        elif roll < 0.9 and not self.free_registers.empty():
            register = self.free_registers.get_nowait()
            try:
                self.cycles[register.slot_id] += 1
                body = _body(register, self.cycles[register.slot_id])
                await self.rec.send("teacher: register PUT", "PUT", register.api_path, bearer(register), body)
            finally:
                self.free_registers.put_nowait(register)
        else:
            r = rng.choice(self.cast.registers)
            await self.rec.send("teacher: register page", "GET", r.page_path, cookie(r))

    async def save_grid(self, t: Teacher) -> None:
        """Read the grid, save it with ``If-Match``; on 409 read it again and save once more."""
        put_group = "teacher: grid PUT"
        for _attempt in range(2):
            got = await self.rec.send("teacher: grid GET", "GET", t.api_path, bearer(t))
            if got is None or got.status_code != 200:
                return
            grid = got.json()
            self.cycles[-t.assessment_id] += 1
            body = {"marks": _changed(grid["marks"], float(grid["max_score"]), self.cycles[-t.assessment_id])}
            headers = {**bearer(t), "If-Match": got.headers["etag"]}
            put = await self.rec.send(put_group, "PUT", t.api_path, headers, body)
            if put is None or put.status_code != 409:
                return
            put_group = GRID_RETRY

    async def run(self, minutes: int, connections: int, on_minute: Callable[[int], Awaitable[None]]) -> None:
        """``connections`` clients for ``minutes`` minutes; ``on_minute(n)`` at the end of each minute."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + 60 * minutes
        kinds, weights = list(MIX), list(MIX.values())

        async def client(number: int) -> None:
            rng = random.Random(self.seed * 100_003 + number)
            while loop.time() < deadline:
                await self.actions[rng.choices(kinds, weights)[0]](rng)

        async def clock() -> None:
            for n in range(1, minutes):
                await asyncio.sleep(max(0.0, started + 60 * n - loop.time()))
                await on_minute(n)

        # A failure anywhere (the server gone, say) cancels every client at once.
        async with asyncio.TaskGroup() as group:
            group.create_task(clock())
            for n in range(connections):
                group.create_task(client(n))
        await on_minute(minutes)


async def soak(
    args: argparse.Namespace, cast: Cast, base: str, server: Server, pg: PgWorld
) -> tuple[list[Minute], dict[str, Tally]]:
    """The load, one line a minute; returns the minutes and the figures by route group."""
    import httpx

    admin = await asyncpg.connect(pg.admin_url, timeout=5)
    minutes: list[Minute] = []
    jar = CookieJar(DefaultCookiePolicy(allowed_domains=[]))  # each request carries its own session
    # Idle connections are dropped before uvicorn's keep-alive timeout (5 s) closes them: reusing one the server
    # is closing at that very moment would show as a transport error that is nobody's fault.
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections, keepalive_expiry=2.0
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, cookies=jar) as client:
            recorder = Recorder(client)

            async def on_minute(n: int) -> None:
                tally, seconds, conflicts, other_4xx = recorder.close_minute()
                if server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} died under load:\n{server.tail()}")
                connections = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", pg.database
                )
                row = Minute(
                    n,
                    len(tally.latencies),
                    seconds,
                    _pct(tally.latencies, 0.5),
                    _pct(tally.latencies, 0.99),
                    tally.errors(),
                    conflicts,
                    other_4xx,
                    tree_rss_mib(server.proc.pid),
                    int(connections),
                    os.getloadavg(),
                )
                minutes.append(row)
                log(minute_line(row))

            log(MINUTE_HEADER)
            log("-" * len(MINUTE_HEADER))
            await Soak(cast, recorder, args.seed).run(args.minutes, args.connections, on_minute)
    finally:
        await admin.close()
    return minutes, recorder.groups


# --------------------------------------------------------------------------- the report

MINUTE_HEADER = (
    f"{'minute':>6} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'409':>5} "
    f"{'4xx':>5} {'RSS MiB':>8} {'db conns':>8}  load average"
)


def _ms(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else f"{'-':>8}"


def minute_line(m: Minute) -> str:
    rate = m.requests / m.seconds if m.seconds else 0.0
    return (
        f"{m.number:>6} {m.requests:>9,} {rate:>7.1f} {_ms(m.p50)} {_ms(m.p99)} {m.errors:>6} {m.conflicts:>5} "
        f"{m.other_4xx:>5} {m.rss_mib:>8.1f} {m.db_connections:>8}  {' '.join(f'{x:.2f}' for x in m.load)}"
    )


def flatness(minutes: list[Minute]) -> tuple[bool | None, str]:
    """The memory verdict: ``(None, why)`` when there is no second minute to compare with."""
    if len(minutes) < 2:
        return None, "not evaluated: it compares the last minute with the second (run --minutes 2 or more)"
    second, last = minutes[1].rss_mib, minutes[-1].rss_mib
    ratio = last / second
    ok = ratio <= FLAT_RATIO
    return ok, (
        f"last minute / second minute = {last:.1f} / {second:.1f} MiB = {ratio:.2f} (flat: ≤ {FLAT_RATIO}) → "
        f"{'PASS' if ok else 'FAIL'}"
    )


def report(
    args: argparse.Namespace, minutes: list[Minute], groups: dict[str, Tally], after: Counter[int], meter: CpuMeter
) -> bool | None:
    """The summary; returns the memory verdict."""
    everything = Tally()
    for tally in groups.values():
        everything.latencies += tally.latencies
        everything.statuses.update(tally.statuses)
    total = len(everything.latencies)
    seconds = sum(m.seconds for m in minutes)
    log()
    log(
        f"soak: {len(minutes)} min, {args.connections} connections (asyncio + httpx, one process), mix "
        + ", ".join(f"{k} {v} %" for k, v in MIX.items())
    )
    log(
        f"  {total:,} requests in {seconds:.0f} s = {total / seconds if seconds else 0:.1f} req/s; "
        f"p50 {_ms(_pct(everything.latencies, 0.5)).strip()} ms, p99 {_ms(_pct(everything.latencies, 0.99)).strip()} ms"
    )
    header = f"{'route group':<34} {'requests':>9} {'share':>6} {'p50 ms':>8} {'p99 ms':>8}  statuses"
    log()
    log(header)
    log("-" * len(header))
    for name in sorted(groups):
        tally = groups[name]
        n = len(tally.latencies)
        statuses = ", ".join(f"{s}: {c:,}" for s, c in sorted(tally.statuses.items()))
        log(
            f"{name:<34} {n:>9,} {100 * n / total if total else 0:>5.1f}% {_ms(_pct(tally.latencies, 0.5))} "
            f"{_ms(_pct(tally.latencies, 0.99))}  {statuses}"
        )
    log()
    errors = {s: n for s, n in everything.statuses.items() if not s.isdigit() or s.startswith("5")}
    log(f"errors (5xx, transport): {sum(errors.values()):,}" + (f" by status {errors}" if errors else ""))
    retry = groups.get(GRID_RETRY, Tally()).statuses
    first = groups.get("teacher: grid PUT", Tally()).statuses
    log(
        f"grid conflicts: {first.get('409', 0):,} saves answered 409 and were read again; "
        f"{retry.get('409', 0):,} of those answered 409 again (counted apart, expected)"
    )
    unexpected = {
        f"{name} {s}": n
        for name, tally in groups.items()
        for s, n in tally.statuses.items()
        if s.startswith("4") and not is_conflict(name, s)
    }
    log(f"unexpected 4xx: {sum(unexpected.values()):,}" + (f" {unexpected}" if unexpected else ""))
    log(f"after the load, every GET of a sample of sessions: {dict(after)}")
    cpu = meter.per_request(total)
    if cpu.server_us is not None and cpu.pg_us is not None and cpu.client_us is not None:
        log(
            f"CPU µs per request: server {cpu.server_us:.0f}, PostgreSQL backends {cpu.pg_us:.0f}, "
            f"load generator (this process) {cpu.client_us:.0f}"
        )
    peak = max(m.db_connections for m in minutes)
    log(f"database connections: at most {peak} at the minute marks (server pool {POOL_MIN}–{POOL_MAX})")
    ok, verdict = flatness(minutes)
    log(f"server RSS: {verdict}")
    return ok


# --------------------------------------------------------------------------- the benchmark


def benchmark(args: argparse.Namespace) -> int:
    """Set up, check, soak, report, tear down."""
    import httpx

    pg = fresh_pg(args.admin_url, "soak")
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-soak-"))
    server: Server | None = None
    pg_touched = False
    started = time.perf_counter()
    try:
        log(f"load average at start: {loadavg()}")
        pg_touched = True
        asyncio.run(create_pg(pg))
        settings_kw = app_settings(pg, tmp / "data")
        cast = asyncio.run(build(pg, args, settings_kw))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [sys.executable, str(ROOT / "benchmarks" / "attendance_server.py"), "--day", args.day.isoformat()]
        server = Server(
            "madrasa serve (clock pinned)",
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            {**server_env(settings_kw, POOL_MIN, POOL_MAX), "MADRASA_PORT": str(port)},
            tmp / "madrasa.log",
        )
        server.wait_ok(f"{base}/readyz")
        gets = [(base + path, label, headers) for path, label, headers in every_get(cast)]
        log(f"checking every session once over HTTP ({len(gets):,} GETs, 200 each) …")
        checked = asyncio.run(check_all(gets))
        with httpx.Client(base_url=base, timeout=30) as client:
            reg = cast.registers[0]
            first = client.put(reg.api_path, headers=bearer(reg), json=_body(reg, 0))
            if first.status_code != 200:
                raise RuntimeError(f"register {reg.api_path}: {first.status_code} {first.text[:300]}")
        f = cast.facts
        log(
            f"PostgreSQL {f['version']}; {args.schools} schools, {f['classes']:,} classes, {f['pupils']:,} pupils, "
            f"{f['marks']:,} marks; sessions: {len(cast.guardians)} guardians, {len(cast.teachers)} teachers with a "
            f"draft grid, {len(cast.registers)} registers on {args.day}, {len(cast.directors)} directors; "
            f"checked {dict(checked)}; set-up {time.perf_counter() - started:.0f} s"
        )
        log(
            f"server: uvicorn, 1 worker, pool {POOL_MIN}–{POOL_MAX}, clock pinned to {args.day}; "
            f"{args.minutes} min at {args.connections} connections; load average now {loadavg()}"
        )
        with CpuMeter(server, pg.database, "self") as meter:
            minutes, groups = asyncio.run(soak(args, cast, base, server, pg))
        after = asyncio.run(check_all(gets[:: max(1, len(gets) // 100)]))
        ok = report(args, minutes, groups, after, meter)
        if any(tally.errors() for tally in groups.values()):
            log(f"server output (last lines):\n{server.tail(20) or '(none)'}")
        log(f"total time {time.perf_counter() - started:.0f} s; load average now {loadavg()}")
        return 1 if ok is False else 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        tear_down([server] if server is not None else [], pg if pg_touched else None, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=int, default=10, help="minutes of load (default 10)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--schools", type=int, default=4, help="schools of 500 pupils (default 4)")
    parser.add_argument("--families", type=int, default=400, help="guardians with a session (default 400)")
    parser.add_argument("--teachers", type=int, default=100, help="teachers with a draft grid (default 100)")
    parser.add_argument("--registers", type=int, default=40, help="lessons on the day, one teacher each (default 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day", type=date.fromisoformat, default=DAY, help="the school day the server lives in")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL superuser URL")
    args = parser.parse_args(argv)
    if min(args.minutes, args.connections, args.schools, args.families, args.teachers, args.registers) < 1:
        parser.error("--minutes, --connections, --schools, --families, --teachers and --registers ≥ 1 please")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
