"""Grades load benchmark on PostgreSQL: parents reading a child's marks (API and portal page), teachers' grids.

The script creates a throw-away database with an owner role and an application role
(``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``benchmarks/generate.py`` does), migrates it and fills it:

* :func:`devtools.generator.generate` as the application role (RLS on): one region of ``--pupils``
  pupils in schools of 500 (100,000 pupils = 200 schools by default), with their guardians
  (parent memberships) and teachers;
* set-based, as the owner, the marks of ``benchmarks/semester_close.py`` (10 sheets per class,
  3 assessments per sheet, one mark per pupil and assessment: 3,000,000 marks for 100,000
  pupils); then every sheet is published, except one sheet (left in ``draft``, so its teacher
  may save it) for each of the ``--teachers`` teachers picked for the grid runs.

Sessions: ``--sessions`` distinct guardians (each with a different child, whose marks are all
published, spread over the schools) and ``--teachers`` distinct teachers (one assessment each,
spread over the schools). Logging them all in through the real endpoints would cost one
argon2id verification each (RFC 9106 profile, ~0.3-0.7 s of CPU on this machine, on the server's
event loop), so only one guardian and one teacher log in through ``POST /api/v1/auth/token`` and
``POST /t/<school>/login`` (with a known password set on them); everybody else's API session and
browser session are created by the application's own ``IdentityService.issue_tokens`` and
``start_web_session`` (same rows, same signed tokens, same cookies). Every session is then checked
once over HTTP (200 on its own path) before the load.

Loads (``wrk -t1 --latency`` with a generated Lua script, written to the temporary folder,
rotating over the sessions, so each request uses the next session; a warm-up before each
measured run):

* parent, API: ``GET /t/<school>/api/v1/me/pupils/{id}/marks`` (bearer token), at each
  ``--connections`` level;
* parent, portal page: ``GET /t/<school>/grades/pupils/{id}`` (session cookie), at each level;
* baseline: a bare Litestar app (``--baseline-server``, one uvicorn worker, asyncpg pool of the
  same bounds, app role, RLS) running the very SQL of ``plugins.grades.service.published_marks``
  (captured from it, same parameters) inside a transaction that first runs the ``set_config``
  of ``core.db.Database.scoped`` with the guardian's scope; alternating with the API at the
  target level over ``--rounds`` rounds → ratio API / baseline;
* teacher, grid page: ``GET /t/<school>/grades/assessments/{id}`` (cookie) and, for comparison,
  the grid API ``GET /t/<school>/api/v1/grades/assessments/{id}/marks`` (bearer);
* teacher, saves: an asyncio + httpx client pool of as many clients as the target level doing
  GET-then-PUT (``If-Match``) cycles on the grid API over the teachers (each grid held by one
  client at a time), three marks changed per save; saves per second.

Targets (at 10 clients, two cores, load generator included): parent reads ≥ 340 req/s with
p99 ≤ 50 ms (API and page); API / baseline ≥ 0.5; grid page ≥ 400 req/s. The load average is
printed before the runs (other work on the machine skews every figure), and the CPU time per
request of the server process, of the database's PostgreSQL backends and of the load generator,
which depend less on it (with an estimate, labelled as such, of what CPU alone would allow on an
idle machine). wrk runs with ``--timeout 30s`` so slow answers stay in the latencies. The
database, the roles, the servers and the temporary files are removed at the end, also on error
or Ctrl-C. Exit status 0 unless something crashed.

Before the loads, an in-process probe (``--probe N``, 0 to skip) serves each page N times in
this process (the app over ASGI, sequential requests rotating over the sessions) and prints, per
page, the SQL round trips (statements sent by asyncpg, ``BEGIN``/``COMMIT`` included), the bytes,
the CPU time per request and the full garbage collections seen; ``--profile DIR`` adds pyinstrument
profiles of those requests. For work on the pages, ``--pages-only`` loads only the two portal
pages, and ``--compare-with DIR`` serves them also from another copy of the project (same
migrations) and alternates the loads between the two for ``--rounds`` rounds: an A/B in one run.

    .venv/bin/python benchmarks/grades_load.py [--pupils 100000] [--duration 10] [--connections 10,50]
        [--sessions 500] [--teachers 200] [--rounds 3] [--warmup 2] [--seed 1] [--probe 200] [--profile DIR]
        [--pages-only [--compare-with DIR]]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import app_settings, identities, open_sessions, server_env  # noqa: E402
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg, drop_pg  # noqa: E402
from benchmarks.request_overhead import (  # noqa: E402
    LoadResult,
    Server,
    _raise_interrupt,
    free_port,
    madrasa_command,
    parse_wrk,
)

PUPILS_PER_SCHOOL = 500
TARGET_CONNECTIONS = 10
TARGET_READ_RPS = 340.0
TARGET_READ_P99_MS = 50.0
TARGET_RATIO = 0.5
TARGET_GRID_RPS = 400.0
#: The app's default pool bounds (core/config.py); both servers get the same ones.
POOL_MIN, POOL_MAX = 2, 10
#: Known password of the two accounts that log in through the real endpoints.
PASSWORD = "Grades-load-2026!"
SET_SCOPE_SQL = "SELECT set_config('app.scope', $1, true), set_config('app.platform', $2, true)"
MARKS_CHANGED_PER_SAVE = 3


def log(message: str = "") -> None:
    print(message, flush=True)


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


# --------------------------------------------------------------------------- the baseline server


class _CaptureDb:
    """Stands in for ``core.db.Database`` to capture the SQL a service function would run."""

    def __init__(self) -> None:
        self.query: tuple[str, tuple[Any, ...]] | None = None

    async def fetch(self, sql: Any, *args: Any) -> list[dict[str, Any]]:
        self.query = (sql, args)
        return []


async def published_marks_sql(nodes: int) -> str:
    """The exact SQL of ``service.published_marks`` for one pupil and a scope of ``nodes`` nodes, as ``$n``.

    Parameters: ``$1`` the pupil, then the scope's sorted node ids three times (region, province,
    school columns), as :func:`core.db.scope_sql` orders them.
    """
    from core.scope import Scope
    from core.sql import as_sql
    from plugins.grades import service

    capture = _CaptureDb()
    fake_nodes = list(range(1_000_001, 1_000_001 + nodes))
    await service.published_marks(capture, Scope(frozenset(fake_nodes)), [7])  # type: ignore[arg-type]
    assert capture.query is not None
    sql, args = capture.query
    compiled, values = as_sql(sql, args).compile("postgres")
    if list(values) != [7, *fake_nodes, *fake_nodes, *fake_nodes]:
        raise RuntimeError(f"published_marks changed its parameters; update the baseline: {values!r}")
    return compiled


def marks_json(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows as ``FamilyGradesController.marks`` returns them."""
    return [
        {
            **dict(r),
            "score": None if r["score"] is None else float(r["score"]),
            "max_score": float(r["max_score"]),
            "weight": float(r["weight"]),
        }
        for r in rows
    ]


def build_baseline_app(dsn: str, pool_min: int, pool_max: int) -> Any:
    """A bare Litestar app: ``GET /marks/{student_id}?nodes=1,2`` runs the published-marks SQL through asyncpg.

    Same as madrasa: app role (RLS applies), pool bounds, a transaction that first runs the
    ``set_config`` of ``core.db.Database.scoped`` with the guardian's scope, then the very SELECT of
    ``service.published_marks`` (application-layer scope filter included), the same JSON. Left out
    on purpose (the overhead being measured): authentication (token, session), tenant resolution,
    module switch, permission and grants, the guardian's children check (``_child``), middleware,
    Piccolo, the DI ``ctx``. The scope's nodes come in the query string.
    """
    from litestar import Litestar, get

    state: dict[str, Any] = {"sql": {}}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            dsn, min_size=pool_min, max_size=pool_max, max_inactive_connection_lifetime=300
        )
        for n in range(1, 9):
            state["sql"][n] = await published_marks_sql(n)
        try:
            yield
        finally:
            await state["pool"].close()

    @get("/marks/{student_id:int}")
    async def marks(student_id: int, nodes: str) -> list[dict[str, Any]]:
        """The pupil's published marks within the scope (``nodes``: ``scope`` is a reserved name in Litestar)."""
        scope = sorted(int(n) for n in nodes.split(","))
        sql = state["sql"].get(len(scope)) or await published_marks_sql(len(scope))
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.execute(SET_SCOPE_SQL, ",".join(str(n) for n in scope), "")
            rows = await conn.fetch(sql, student_id, *scope, *scope, *scope)
        return marks_json(rows)

    return Litestar(route_handlers=[marks], lifespan=[lifespan], openapi_config=None, debug=False, logging_config=None)


def serve_baseline(port: int, dsn: str) -> int:
    """Serve the baseline exactly as ``core/cli.py:cmd_serve`` serves madrasa."""
    import uvicorn

    from core.config import load_settings
    from core.observability import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = build_baseline_app(dsn, settings.db_pool_min, settings.db_pool_max)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_config=None, proxy_headers=True)
    return 0


# --------------------------------------------------------------------------- wrk with a rotating Lua script

LUA_BODY = """
local reqs = {}
local i = 0
init = function(args)
  for k, item in ipairs(items) do
    reqs[k] = wrk.format("GET", item[1], item[2])
  end
  i = math.random(#reqs) - 1
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_script(requests: Sequence[tuple[str, dict[str, str]]]) -> str:
    """A wrk script cycling over ``(path, headers)``: every request the next one."""
    lines = ["local items = {"]
    for path, headers in requests:
        hs = ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in headers.items())
        lines.append(f"  {{{_lua(path)}, {{{hs}}}}},")
    lines.append("}")
    return "\n".join(lines) + LUA_BODY


@dataclass
class Target:
    """A load target: a server, its base URL and the requests to rotate over."""

    name: str
    server: Server
    base: str
    requests: list[tuple[str, dict[str, str]]]
    script: Path


_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to ``database`` (Linux ``/proc``)."""
    marker = f" {database} ".encode()
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker in Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" "):
                out[int(entry)] = _proc_cpu(entry)
        except (OSError, IndexError, ValueError):
            continue
    return out


@dataclass
class Cpu:
    """CPU time per request (µs) of the server process, of the database backends, of the load generator."""

    server_us: float | None = None
    pg_us: float | None = None
    client_us: float | None = None

    def estimate(self, cores: int) -> float | None:
        """Requests/s if CPU were the only limit on an otherwise idle machine (an estimate, not a measurement)."""
        if not self.server_us or self.pg_us is None or self.client_us is None:
            return None
        return min(1e6 / self.server_us, cores * 1e6 / (self.server_us + self.pg_us + self.client_us))


class CpuMeter:
    """Measures :class:`Cpu` around a run: the server, the database's backends, and the client."""

    def __init__(self, server: Server, database: str, client: str) -> None:
        self.server, self.database, self.client = server, database, client

    def _client(self) -> float:
        who = resource.RUSAGE_CHILDREN if self.client == "children" else resource.RUSAGE_SELF
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuMeter:
        self._server = self.server.cpu_seconds()
        self._pg = backend_cpu(self.database)
        self._cl = self._client()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server_after = self.server.cpu_seconds()
        pg_after = backend_cpu(self.database)
        self._pg_delta = sum(max(0.0, cpu - self._pg.get(pid, 0.0)) for pid, cpu in pg_after.items())
        self._cl_delta = self._client() - self._cl

    def per_request(self, requests: int) -> Cpu:
        if not requests:
            return Cpu()
        server = None
        if self._server is not None and self._server_after is not None:
            server = (self._server_after - self._server) / requests * 1e6
        return Cpu(server, self._pg_delta / requests * 1e6, self._cl_delta / requests * 1e6)


def run_wrk(target: Target, connections: int, duration: float, database: str) -> tuple[LoadResult, Cpu]:
    """One wrk run (with the rotating script) and the CPU time per request around it."""
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "30s",  # wrk's default (2 s) would drop the slowest answers from the latency figures
        "-s",
        str(target.script),
        target.base,
    ]
    with CpuMeter(target.server, database, "children") as meter:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60)
    result = parse_wrk(out.stdout)
    cpu = meter.per_request(result.requests)
    result.cpu_us = cpu.server_us
    if target.server.proc.poll() is not None:
        raise RuntimeError(f"{target.server.name} died under load:\n{target.server.tail()}")
    return result, cpu


# --------------------------------------------------------------------------- data and sessions


@dataclass
class Guardian:
    person_id: int
    student_id: int
    school_id: int
    slug: str
    email: str
    scope: list[int] = field(default_factory=list)
    token: str = ""
    cookie: str = ""
    real_login: bool = False

    @property
    def api_path(self) -> str:
        return f"/t/{self.slug}/api/v1/me/pupils/{self.student_id}/marks"

    @property
    def page_path(self) -> str:
        return f"/t/{self.slug}/grades/pupils/{self.student_id}"

    @property
    def baseline_path(self) -> str:
        return f"/marks/{self.student_id}?nodes={','.join(str(n) for n in self.scope)}"


@dataclass
class Teacher:
    person_id: int
    assessment_id: int
    sheet_id: int
    school_id: int
    slug: str
    email: str
    token: str = ""
    cookie: str = ""
    real_login: bool = False

    @property
    def api_path(self) -> str:
        return f"/t/{self.slug}/api/v1/grades/assessments/{self.assessment_id}/marks"

    @property
    def page_path(self) -> str:
        return f"/t/{self.slug}/grades/assessments/{self.assessment_id}"


@dataclass
class World:
    facts: dict[str, Any]
    guardians: list[Guardian]
    teachers: list[Teacher]
    generate_seconds: float
    marks_seconds: float
    sessions_seconds: float
    version: str


TEACHERS_SQL = """
WITH candidate AS (
  SELECT DISTINCT ON (s.teacher_id) s.teacher_id, s.id AS sheet_id, s.school_id, a.id AS assessment_id
  FROM grade_sheet s
  JOIN grade_assessment a ON a.sheet_id = s.id AND a.position = 1
  JOIN teaching_assignment ta ON ta.person_id = s.teacher_id AND ta.class_id = s.class_id
       AND ta.subject_code = s.subject_code
  WHERE s.term_id = $1
  ORDER BY s.teacher_id, md5(s.id::text)
), spread AS (
  SELECT c.*, row_number() OVER (PARTITION BY c.school_id ORDER BY md5(c.teacher_id::text)) AS k FROM candidate c
)
SELECT c.teacher_id, c.sheet_id, c.school_id, c.assessment_id, t.slug, p.email
FROM spread c JOIN tenant t ON t.id = c.school_id JOIN person p ON p.id = c.teacher_id
ORDER BY c.k, md5(c.teacher_id::text)
LIMIT $2
"""

GUARDIANS_SQL = """
SELECT g.person_id, g.student_id, s.school_id, t.slug, p.email
FROM guardianship g
JOIN student s ON s.id = g.student_id
JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL
JOIN tenant t ON t.id = s.school_id
JOIN person p ON p.id = g.person_id
WHERE p.active
  AND ($2 OR NOT EXISTS (SELECT 1 FROM grade_sheet h WHERE h.class_id = e.class_id AND h.state <> 'published'))
ORDER BY md5(g.person_id::text || ':' || g.student_id::text)
LIMIT $1
"""


async def add_marks(owner: asyncpg.Connection, teachers: int, statements: Sequence[str] = ()) -> list[Teacher]:
    """First-term sheets, assessments and marks (``statements``, by default ``semester_close.DATA_SQL``), all
    published but one draft each.

    ``teachers`` distinct teachers (spread over the schools) keep one sheet in draft, so they may save its grids;
    the entry deadline is moved ahead whatever the day; then ``ANALYZE``. ``owner``: the owner's connection with
    ``app.platform`` on.
    """
    from benchmarks.semester_close import DATA_SQL

    term_id = int(await owner.fetchval("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1"))
    for statement in statements or DATA_SQL:
        if "$1" in statement:
            await owner.execute(statement, term_id)
        else:
            await owner.execute(statement)
    teacher_rows = await owner.fetch(TEACHERS_SQL, term_id, teachers)
    draft = [int(r["sheet_id"]) for r in teacher_rows]
    # Everything published (families see it), but the picked teachers' sheets: draft, so they may save.
    await owner.execute(
        "UPDATE grade_sheet SET state = CASE WHEN id = ANY($1::int[]) THEN 'draft' ELSE 'published' END, "
        "published_at = CASE WHEN id = ANY($1::int[]) THEN NULL ELSE now() END",
        draft,
    )
    # Saves are refused after the entry deadline: keep it ahead whatever the day the benchmark runs.
    await owner.execute(
        "UPDATE grade_deadline SET entry_deadline = GREATEST(entry_deadline, current_date + 30) WHERE term_id = $1",
        term_id,
    )
    await owner.execute("VACUUM ANALYZE grade_sheet")
    await owner.execute("ANALYZE")
    return [
        Teacher(r["teacher_id"], r["assessment_id"], r["sheet_id"], r["school_id"], r["slug"], r["email"])
        for r in teacher_rows
    ]


async def pick_guardians(owner: asyncpg.Connection, count: int, all_published: bool = True) -> list[Guardian]:
    """Up to ``count`` distinct guardians, each with a distinct child (whose marks are all published, by default)."""
    guardians: list[Guardian] = []
    seen_people: set[int] = set()
    seen_pupils: set[int] = set()
    for r in await owner.fetch(GUARDIANS_SQL, count * 4, not all_published):
        if r["person_id"] in seen_people or r["student_id"] in seen_pupils:
            continue
        seen_people.add(r["person_id"])
        seen_pupils.add(r["student_id"])
        guardians.append(Guardian(r["person_id"], r["student_id"], r["school_id"], r["slug"], r["email"]))
        if len(guardians) == count:
            break
    return guardians


async def build_world(pg: PgWorld, args: argparse.Namespace, settings_kw: dict[str, Any]) -> World:
    """Migrate, generate, add marks, publish, pick the people and open their sessions."""
    from core.access import scope_for
    from core.app import build_services
    from core.config import load_settings
    from core.migrate import migrate
    from devtools.generator import generate

    settings = load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=4)
    services = build_services(settings)
    db = services.db
    await db.start()
    try:
        await migrate(db, services.migration_sets)
        schools = max(1, args.pupils // PUPILS_PER_SCHOOL)
        per_school = PUPILS_PER_SCHOOL if args.pupils >= PUPILS_PER_SCHOOL else args.pupils
        log(f"generating 1 region × {schools} schools × {per_school} pupils (devtools.generator, app role) …")
        began = time.perf_counter()
        stats = await generate(
            db, regions=1, schools_per_region=schools, students_per_school=per_school, seed=args.seed
        )
        generate_seconds = time.perf_counter() - began
        log(f"  {stats.rows:,} rows in {stats.seconds:.1f} s")

        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            await owner.execute("SELECT set_config('app.platform', 'on', false)")
            log("sheets, assessments and marks (semester_close.DATA_SQL, set-based, owner) …")
            began = time.perf_counter()
            teachers = await add_marks(owner, args.teachers)
            marks_seconds = time.perf_counter() - began
            facts = dict(
                await owner.fetchrow(
                    "SELECT (SELECT count(*) FROM tenant WHERE kind = 'school') AS schools, "
                    "(SELECT count(*) FROM school_class) AS classes, (SELECT count(*) FROM student) AS pupils, "
                    "(SELECT count(DISTINCT person_id) FROM guardianship) AS guardians, "
                    "(SELECT count(*) FROM membership WHERE role = 'teacher') AS teachers, "
                    "(SELECT count(*) FROM grade_sheet) AS sheets, "
                    "(SELECT count(*) FROM grade_sheet WHERE state = 'published') AS published, "
                    "(SELECT count(*) FROM grade_assessment) AS assessments, (SELECT count(*) FROM grade_mark) AS marks"
                )
            )
            log(f"  {facts['marks']:,} marks in {marks_seconds:.1f} s")
            guardians = await pick_guardians(owner, args.sessions)
            if not guardians or not teachers:
                raise RuntimeError(f"nothing to load: {len(guardians)} guardians, {len(teachers)} teachers")

            log(
                f"sessions: {len(guardians)} guardians (API token + browser session each), "
                f"{len(teachers)} teachers (the same) …"
            )
            began = time.perf_counter()
            # One guardian and one teacher log in through the real endpoints later: give them a known password.
            known = services.identity.hash_password(PASSWORD)
            await owner.execute(
                "UPDATE person SET password_hash = $1 WHERE id = ANY($2::int[])",
                known,
                [guardians[0].person_id, teachers[0].person_id],
            )
            guardians[0].real_login = teachers[0].real_login = True
            people = await identities(owner, [g.person_id for g in guardians] + [t.person_id for t in teachers])
        finally:
            await owner.close()

        await open_sessions(services, people, [*guardians[1:], *teachers[1:]], "grades_load")
        family_roles = services.permissions.roles_for("family.view")
        for g in guardians:
            scope = scope_for(await services.grants.grants(g.person_id), family_roles, None)
            if scope.platform or not scope.nodes:
                raise RuntimeError(f"guardian {g.person_id}: unexpected family scope {scope!r}")
            g.scope = sorted(scope.nodes)
        sessions_seconds = time.perf_counter() - began
        version = str(await db.fetchval("SHOW server_version"))
    finally:
        await db.stop()
    return World(facts, guardians, teachers, generate_seconds, marks_seconds, sessions_seconds, version)


def real_logins(base: str, world: World) -> None:
    """Log the first guardian and the first teacher in through ``/api/v1/auth/token`` and ``/login``."""
    import httpx

    with httpx.Client(base_url=base, timeout=60) as client:
        for person in (world.guardians[0], world.teachers[0]):
            response = client.post(
                f"/t/{person.slug}/api/v1/auth/token",
                json={"email": person.email, "password": PASSWORD, "tenant": person.slug},
            )
            if response.status_code != 200:
                raise RuntimeError(f"token login of {person.email}: {response.status_code} {response.text[:300]}")
            person.token = response.json()["access_token"]
            form = client.get(f"/t/{person.slug}/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            if form.status_code != 200 or csrf is None:
                raise RuntimeError(f"login form for {person.email}: {form.status_code} {form.text[:300]}")
            # The form's cookie is Secure (not sent back over plain HTTP by a cookie jar): send it by hand.
            response = client.post(
                f"/t/{person.slug}/login",
                data={"email": person.email, "password": PASSWORD, "next": "", "csrf_token": csrf.group(1)},
                headers={"cookie": f"madrasa_login_csrf={csrf.group(1)}"},
                follow_redirects=False,
            )
            match = re.search(r"madrasa_session=([^;]+)", response.headers.get("set-cookie", ""))
            if response.status_code not in (302, 303) or match is None:
                raise RuntimeError(f"portal login of {person.email}: {response.status_code} {response.text[:300]}")
            person.cookie = match.group(1)


# --------------------------------------------------------------------------- checks over HTTP


async def check_all(requests: Sequence[tuple[str, str, dict[str, str]]], concurrency: int = 10) -> Counter[int]:
    """GET every ``(url, label, headers)`` once; returns the statuses (also warms the caches)."""
    import httpx

    statuses: Counter[int] = Counter()
    failures: list[str] = []
    queue: asyncio.Queue[tuple[str, str, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client:

        async def worker() -> None:
            while not queue.empty():
                url, label, headers = queue.get_nowait()
                response = await client.get(url, headers=headers)
                statuses[response.status_code] += 1
                if response.status_code != 200 and len(failures) < 5:
                    failures.append(f"{label} {url}: {response.status_code} {response.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failures:
        raise RuntimeError("requests that must answer 200 did not:\n  " + "\n  ".join(failures))
    return statuses


def verify(app_base: str, base_base: str, world: World) -> dict[str, Any]:
    """API = baseline on a sample; pages render; grids answer with an ETag."""
    import httpx

    facts: dict[str, Any] = {}
    with httpx.Client(timeout=30, follow_redirects=False) as client:
        counts = []
        for g in world.guardians[:5]:
            api = client.get(app_base + g.api_path, headers={"Authorization": f"Bearer {g.token}"})
            base = client.get(base_base + g.baseline_path)
            if api.status_code != 200 or base.status_code != 200:
                raise RuntimeError(f"pupil {g.student_id}: API {api.status_code}, baseline {base.status_code}")
            if api.json() != base.json():
                raise RuntimeError(f"pupil {g.student_id}: the API and the baseline return different marks")
            if not api.json():
                raise RuntimeError(f"pupil {g.student_id}: no published marks")
            counts.append(len(api.json()))
            page = client.get(app_base + g.page_path, headers={"Cookie": f"madrasa_session={g.cookie}"})
            if page.status_code != 200 or "text/html" not in page.headers.get("content-type", ""):
                raise RuntimeError(f"page of pupil {g.student_id}: {page.status_code} {page.text[:300]}")
            facts.setdefault("page_bytes", []).append(len(page.content))
            facts.setdefault("api_bytes", []).append(len(api.content))
        facts["marks_per_pupil"] = counts
        for t in world.teachers[:3]:
            grid = client.get(app_base + t.api_path, headers={"Authorization": f"Bearer {t.token}"})
            if grid.status_code != 200 or not grid.headers.get("etag"):
                raise RuntimeError(f"grid {t.assessment_id}: {grid.status_code} {grid.text[:300]}")
            if grid.json()["state"] != "draft":
                raise RuntimeError(f"grid {t.assessment_id} is {grid.json()['state']}, expected draft")
            facts.setdefault("grid_pupils", []).append(len(grid.json()["marks"]))
            page = client.get(app_base + t.page_path, headers={"Cookie": f"madrasa_session={t.cookie}"})
            if page.status_code != 200:
                raise RuntimeError(f"grid page {t.assessment_id}: {page.status_code} {page.text[:300]}")
            facts.setdefault("grid_page_bytes", []).append(len(page.content))
    return facts


# --------------------------------------------------------------------------- in-process probe of the pages


class _RoundTrips:
    """Counts the statements sent to PostgreSQL by every asyncpg connection of this process."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> _RoundTrips:
        from asyncpg.connection import Connection

        self._saved = {"execute": Connection.execute, "_execute": Connection._execute}
        counter = self
        plain_execute, inner_execute = self._saved["execute"], self._saved["_execute"]

        async def execute(conn: Any, query: str, *args: Any, **kw: Any) -> Any:
            if not args:  # the simple-query protocol (BEGIN, COMMIT, …); with arguments it goes through _execute
                counter.count += 1
            return await plain_execute(conn, query, *args, **kw)

        async def _execute(conn: Any, *args: Any, **kw: Any) -> Any:
            counter.count += 1
            return await inner_execute(conn, *args, **kw)

        Connection.execute = execute  # type: ignore[method-assign]
        Connection._execute = _execute  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from asyncpg.connection import Connection

        Connection.execute = self._saved["execute"]  # type: ignore[method-assign]
        Connection._execute = self._saved["_execute"]  # type: ignore[method-assign]


async def probe_pages(
    settings_kw: dict[str, Any], world: World, requests: int, profile_dir: Path | None, freeze_app: bool = False
) -> list[str]:
    """The pages served in this process (the app over ASGI, no network): SQL round trips, bytes, CPU per request.

    Sequential requests rotating over the sessions after a warm-up: the CPU time per request of the
    process (``time.process_time``) hardly depends on the machine's other work, unlike req/s.
    With ``profile_dir``, a pyinstrument profile of each page is written there. With ``freeze_app``,
    the app's objects are moved out of the collector's reach after the warm-up (``gc.freeze()``), as
    a server could do once started: the full collections then show what that would save.
    """
    import httpx

    from core.app import build_services, create_app
    from core.config import load_settings

    # This process's own objects (the world, the sessions) are left out of the collector's work, so
    # that a full collection here costs what it would cost in a server holding the app alone.
    gc.collect()
    gc.freeze()
    settings = load_settings({}, **settings_kw, db_pool_min=POOL_MIN, db_pool_max=POOL_MAX)
    services = build_services(settings)
    await services.db.start()
    lines = []
    try:
        app = create_app(settings, services=services)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            pages = [
                ("parent marks page", [(g.page_path, g.cookie) for g in world.guardians]),
                ("teacher grid page", [(t.page_path, t.cookie) for t in world.teachers]),
            ]
            for label, paths in pages:

                async def one(i: int, paths: list[tuple[str, str]] = paths) -> httpx.Response:
                    path, cookie = paths[i % len(paths)]
                    response = await client.get(path, headers={"Cookie": f"madrasa_session={cookie}"})
                    if response.status_code != 200:
                        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                    return response

                # warm-up: templates, prepared statements, and every session once (sessions are cached a few
                # seconds, so that the round trips counted next are the page's own)
                for i in range(max(len(paths), min(requests, 2 * len(paths)))):
                    await one(i)
                if freeze_app:
                    gc.collect()
                    gc.freeze()
                with _RoundTrips() as trips:
                    sizes = [len((await one(i)).content) for i in range(len(paths))]
                per_page = trips.count / len(paths)
                pauses: list[float] = []
                started: list[float] = []

                def on_gc(
                    phase: str, info: dict[str, int], pauses: list[float] = pauses, started: list[float] = started
                ) -> None:
                    if info.get("generation") != 2:
                        return
                    if phase == "start":
                        started.append(time.perf_counter())
                    elif started:
                        pauses.append((time.perf_counter() - started.pop()) * 1000)

                gc.callbacks.append(on_gc)
                began = time.process_time()
                try:
                    for i in range(requests):
                        await one(i)
                finally:
                    gc.callbacks.remove(on_gc)
                cpu_us = (time.process_time() - began) * 1e6 / requests
                full = f"{len(pauses)} full GC, longest {max(pauses):.1f} ms" if pauses else "no full GC"
                lines.append(
                    f"  {label:<20} {per_page:5.1f} SQL round trips/page  {statistics.mean(sizes):8,.0f} B/page "
                    f"(min {min(sizes):,}, max {max(sizes):,})  {cpu_us:6.0f} CPU µs/request in-process "
                    f"({requests} sequential requests over {len(paths)} sessions; {full})"
                )
                if profile_dir is not None:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.0002, async_mode="enabled")
                    profiler.start()
                    for i in range(requests):
                        await one(i)
                    profiler.stop()
                    name = label.replace(" ", "_")
                    (profile_dir / f"{name}.txt").write_text(profiler.output_text(unicode=True, show_all=False))
                    (profile_dir / f"{name}.html").write_text(profiler.output_html())
    finally:
        await services.db.stop()
        gc.unfreeze()
    return lines


# --------------------------------------------------------------------------- grid saves


@dataclass
class SaveResult:
    saves: int
    cycles: int
    seconds: float
    statuses: Counter[int]
    put_ms: list[float]
    get_ms: list[float]
    cycle_ms: list[float]
    cpu: Cpu = field(default_factory=Cpu)

    @property
    def rate(self) -> float:
        return self.saves / self.seconds if self.seconds else 0.0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _changed(marks: list[dict[str, Any]], max_score: float, cycle: int) -> list[dict[str, Any]]:
    """The whole grid as the client sends it back, with a few marks changed."""
    entries = [{"student_id": m["student_id"], "score": m["score"], "status": m["status"]} for m in marks]
    present = [e for e in entries if e["status"] == "present"]
    for k in range(min(MARKS_CHANGED_PER_SAVE, len(present))):
        entry = present[(cycle * MARKS_CHANGED_PER_SAVE + k) % len(present)]
        score = entry["score"]
        entry["score"] = score + 0.5 if score is not None and score + 0.5 <= max_score else 0.0
    return entries


async def grid_saves(base: str, teachers: list[Teacher], clients: int, duration: float) -> SaveResult:
    """``clients`` clients doing GET-then-PUT cycles on the teachers' grids for ``duration`` seconds."""
    import httpx

    free: asyncio.Queue[Teacher] = asyncio.Queue()
    for t in teachers:
        free.put_nowait(t)
    statuses: Counter[int] = Counter()
    put_ms: list[float] = []
    get_ms: list[float] = []
    cycle_ms: list[float] = []
    saves = 0
    cycles = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal saves, cycles
            while loop.time() < deadline:
                teacher = await free.get()
                try:
                    auth = {"Authorization": f"Bearer {teacher.token}"}
                    start = time.perf_counter()
                    got = await client.get(teacher.api_path, headers=auth)
                    mid = time.perf_counter()
                    if got.status_code != 200:
                        statuses[got.status_code] += 1
                        continue
                    grid = got.json()
                    body = {"marks": _changed(grid["marks"], float(grid["max_score"]), cycles)}
                    put = await client.put(
                        teacher.api_path, headers={**auth, "If-Match": got.headers["etag"]}, json=body
                    )
                    end = time.perf_counter()
                    statuses[put.status_code] += 1
                    cycles += 1
                    if put.status_code == 200:
                        saves += 1
                    get_ms.append((mid - start) * 1000)
                    put_ms.append((end - mid) * 1000)
                    cycle_ms.append((end - start) * 1000)
                finally:
                    free.put_nowait(teacher)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - began
    return SaveResult(saves, cycles, seconds, statuses, put_ms, get_ms, cycle_ms)


# --------------------------------------------------------------------------- the benchmark


@dataclass
class Run:
    label: str
    path: str
    connections: int
    result: LoadResult
    cpu: Cpu
    round_no: int = 1


def _fmt(r: LoadResult, c: Cpu) -> str:
    lat = ""
    if r.p50_ms is not None and r.p99_ms is not None:
        lat = f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
    cpu = ""
    if c.server_us is not None and c.pg_us is not None and c.client_us is not None:
        cpu = f"  CPU µs/req server {c.server_us:5.0f} pg {c.pg_us:5.0f} wrk {c.client_us:4.0f}"
    bad = f"  [{r.bad_responses} non-2xx/3xx, {r.errors} socket errors]" if r.bad_responses or r.errors else ""
    return f"{r.rps:8.1f} req/s{lat}{cpu}  ({r.requests} requests){bad}"


def benchmark(args: argparse.Namespace) -> int:
    """Set up, verify, load, report, tear down."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    pg = PgWorld(
        args.admin_url,
        f"madrasa_gradesload_{suffix}",
        f"madrasa_glown_{suffix}",
        f"madrasa_glapp_{suffix}",
        secrets.token_hex(12),
    )
    servers: list[Server] = []
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-gradesload-"))
    pg_touched = False
    started = time.perf_counter()
    try:
        log(f"load average at start: {loadavg()}")
        pg_touched = True
        asyncio.run(create_pg(pg))
        settings_kw = app_settings(pg, tmp / "data")
        world = asyncio.run(build_world(pg, args, settings_kw))
        env = server_env(settings_kw, POOL_MIN, POOL_MAX)
        app_port = free_port()
        app_base = f"http://127.0.0.1:{app_port}"
        app = Server(
            "madrasa serve",
            [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(app_port)],
            {**env, "MADRASA_PORT": str(app_port)},
            tmp / "madrasa.log",
        )
        servers.append(app)
        app.wait_ok(f"{app_base}/readyz")
        other: Server | None = None
        other_base = ""
        if args.compare_with:
            # The same server from another copy of the code (its folder first on the import path).
            other_port = free_port()
            other_base = f"http://127.0.0.1:{other_port}"
            other = Server(
                "madrasa serve (compared)",
                [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(other_port)],
                {**env, "MADRASA_PORT": str(other_port), "PYTHONPATH": str(Path(args.compare_with).resolve())},
                tmp / "compared.log",
            )
            servers.append(other)
            other.wait_ok(f"{other_base}/readyz")
        base_port = free_port()
        base_base = f"http://127.0.0.1:{base_port}"
        baseline = Server(
            "baseline",
            [sys.executable, str(Path(__file__).resolve()), "--baseline-server", str(base_port), pg.url(pg.app_role)],
            env,
            tmp / "baseline.log",
        )
        servers.append(baseline)
        baseline.wait_ok(base_base + world.guardians[0].baseline_path)

        log("real logins (argon2id) of one guardian and one teacher: API token and portal form …")
        began = time.perf_counter()
        real_logins(app_base, world)
        login_seconds = time.perf_counter() - began

        log("verifying: API = baseline on a sample, pages render, grids are drafts with an ETag …")
        facts = verify(app_base, base_base, world)
        g_api = [(g.api_path, {"Authorization": f"Bearer {g.token}"}) for g in world.guardians]
        g_page = [(g.page_path, {"Cookie": f"madrasa_session={g.cookie}"}) for g in world.guardians]
        g_base = [(g.baseline_path, {}) for g in world.guardians]
        t_page = [(t.page_path, {"Cookie": f"madrasa_session={t.cookie}"}) for t in world.teachers]
        t_api = [(t.api_path, {"Authorization": f"Bearer {t.token}"}) for t in world.teachers]
        log("checking every session once over HTTP (200 on its own path) …")
        every = [
            *((app_base + p, "parent API", h) for p, h in g_api),
            *((app_base + p, "parent page", h) for p, h in g_page),
            *((base_base + p, "baseline", h) for p, h in g_base),
            *((app_base + p, "grid page", h) for p, h in t_page),
            *((app_base + p, "grid API", h) for p, h in t_api),
        ]
        checked = asyncio.run(check_all(every))
        if args.probe:
            log(f"in-process probe of the pages ({args.probe} requests each) …")
            profile_dir = Path(args.profile).resolve() if args.profile else None
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
            for line in asyncio.run(probe_pages(settings_kw, world, args.probe, profile_dir, args.probe_gc_freeze)):
                log(line)

        def target(name: str, server: Server, base: str, requests: list[tuple[str, dict[str, str]]]) -> Target:
            script = tmp / f"{name}.lua"
            script.write_text(lua_script(requests))
            return Target(name, server, base, requests, script)

        t_parent_api = target("parent_api", app, app_base, g_api)
        t_parent_page = target("parent_page", app, app_base, g_page)
        t_baseline = target("baseline", baseline, base_base, g_base)
        t_grid_page = target("grid_page", app, app_base, t_page)
        t_grid_api = target("grid_api", app, app_base, t_api)

        levels = args.levels
        main_level = TARGET_CONNECTIONS if TARGET_CONNECTIONS in levels else levels[0]
        runs: list[Run] = []

        def measure(t: Target, label: str, path: str, connections: int, round_no: int = 1) -> Run:
            if args.warmup > 0:
                run_wrk(t, connections, args.warmup, pg.database)
            result, cpu = run_wrk(t, connections, args.duration, pg.database)
            run = Run(label, path, connections, result, cpu, round_no)
            runs.append(run)
            log(f"  {label:<26} c={connections:<3} {_fmt(result, cpu)}")
            return run

        busy_before = loadavg()
        log(f"load average before the runs: {busy_before}")
        log(
            f"runs: wrk -t1 --latency, rotating over the sessions; {args.warmup:g} s warm-up + {args.duration:g} s each"
        )
        api_path = "/t/<school>/api/v1/me/pupils/{id}/marks"
        page_path = "/t/<school>/grades/pupils/{id}"
        if args.pages_only:
            grid_path = "/t/<school>/grades/assessments/{id}"
            if other is None:
                measure(t_parent_page, "parent marks page", page_path, main_level)
                measure(t_grid_page, "teacher grid page", grid_path, main_level)
            else:
                o_parent = target("parent_page_compared", other, other_base, g_page)
                o_grid = target("grid_page_compared", other, other_base, t_page)
                log(f"A/B, alternating: this code, then the code of {args.compare_with} (compared)")
                for round_no in range(1, args.rounds + 1):
                    measure(t_parent_page, "parent marks page", page_path, main_level, round_no)
                    measure(o_parent, "parent page (compared)", page_path, main_level, round_no)
                    measure(t_grid_page, "teacher grid page", grid_path, main_level, round_no)
                    measure(o_grid, "grid page (compared)", grid_path, main_level, round_no)
            log(f"pages only; page sizes {facts.get('page_bytes')} / grids {facts.get('grid_page_bytes')}")
            log(f"total time {time.perf_counter() - started:.0f} s; load average now {loadavg()}")
            return 0
        for round_no in range(1, args.rounds + 1):
            measure(t_parent_api, "parent marks API", api_path, main_level, round_no)
            measure(t_baseline, "baseline (asyncpg)", "/marks/{id}?nodes=<scope>", main_level, round_no)
        for level in levels:
            if level != main_level:
                measure(t_parent_api, "parent marks API", api_path, level)
        for level in levels:
            measure(t_parent_page, "parent marks page", page_path, level)
        measure(t_grid_page, "teacher grid page", "/t/<school>/grades/assessments/{id}", main_level)
        measure(t_grid_api, "teacher grid API GET", "/t/<school>/api/v1/grades/assessments/{id}/marks", main_level)

        log(f"  {'teacher grid saves':<26} c={main_level:<3} (GET + PUT If-Match cycles, httpx) …")
        with CpuMeter(app, pg.database, "self") as meter:
            saves = asyncio.run(grid_saves(app_base, world.teachers, main_level, args.duration))
        saves.cpu = meter.per_request(saves.cycles)
        if app.proc.poll() is not None:
            raise RuntimeError(f"madrasa died under load:\n{app.tail()}")
        log(f"    {saves.rate:.1f} saves/s, statuses {dict(saves.statuses)}")

        # A broken request path must not pass for a fast one: the sessions still answer 200 after the load.
        after = asyncio.run(
            check_all(
                [
                    *((app_base + p, "parent API", h) for p, h in g_api[:50]),
                    *((app_base + p, "parent page", h) for p, h in g_page[:50]),
                    *((app_base + p, "grid page", h) for p, h in t_page[:50]),
                ]
            )
        )
        report(
            args,
            world,
            runs,
            saves,
            facts,
            checked,
            after,
            main_level,
            busy_before,
            login_seconds,
            time.perf_counter() - started,
        )
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for server in reversed(servers):
            server.stop()
        if pg_touched:
            try:
                asyncio.run(drop_pg(pg))
            except (OSError, asyncpg.PostgresError) as exc:
                print(f"warning: could not drop {pg.database} / roles: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(
    args: argparse.Namespace,
    world: World,
    runs: list[Run],
    saves: SaveResult,
    facts: dict[str, Any],
    checked: Counter[int],
    after: Counter[int],
    main_level: int,
    busy_before: str,
    login_seconds: float,
    total_seconds: float,
) -> None:
    f = world.facts

    def best(label: str, connections: int) -> Run | None:
        found = [r for r in runs if r.label == label and r.connections == connections]
        return max(found, key=lambda r: r.result.rps) if found else None

    def median_rps(label: str, connections: int) -> float | None:
        found = [r.result.rps for r in runs if r.label == label and r.connections == connections]
        return statistics.median(found) if found else None

    log()
    log(f"grades load on PostgreSQL {world.version}, {os.cpu_count()} cores, load generator on the same machine")
    log(
        f"data: {f['schools']} schools, {f['classes']:,} classes, {f['pupils']:,} pupils, "
        f"{f['guardians']:,} guardians, {f['teachers']:,} teachers; "
        f"{f['sheets']:,} sheets ({f['published']:,} published), {f['assessments']:,} assessments, {f['marks']:,} marks"
    )
    log(
        f"set-up: generator {world.generate_seconds:.1f} s, marks + publish + ANALYZE {world.marks_seconds:.1f} s, "
        f"sessions {world.sessions_seconds:.1f} s, 4 real logins (argon2id) {login_seconds:.1f} s"
    )
    log(
        f"sessions: {len(world.guardians)} guardians (distinct children, {len({g.school_id for g in world.guardians})} "
        f"schools) × (bearer token, cookie); {len(world.teachers)} teachers "
        f"({len({t.school_id for t in world.teachers})} schools) × (bearer token, cookie); "
        f"1 guardian + 1 teacher via the real login endpoints, the rest via IdentityService"
    )
    log(
        f"responses: {facts['marks_per_pupil'][0]}–{max(facts['marks_per_pupil'])} marks per pupil "
        f"(API {min(facts['api_bytes']):,}–{max(facts['api_bytes']):,} B, page "
        f"{min(facts['page_bytes']):,}–{max(facts['page_bytes']):,} B); grids of "
        f"{min(facts['grid_pupils'])}–{max(facts['grid_pupils'])} pupils (page "
        f"{min(facts['grid_page_bytes']):,}–{max(facts['grid_page_bytes']):,} B); API = baseline on the sample"
    )
    log(f"checks: every session once before the load {dict(checked)}; a sample after it {dict(after)}")
    log(
        f"servers: uvicorn, 1 worker each, asyncpg pool {POOL_MIN}..{POOL_MAX}, log level WARNING; "
        f"load: wrk -t1 --latency --timeout 30s, Lua script rotating over the sessions, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s per run"
    )
    log(f"load average before the runs: {busy_before}")
    log()
    cores = os.cpu_count() or 1

    def cells(cpu: Cpu) -> str:
        def one(v: float | None, w: int) -> str:
            return f"{v:{w}.0f}" if v is not None else f"{'-':>{w}}"

        return f"{one(cpu.server_us, 7)} {one(cpu.pg_us, 6)} {one(cpu.client_us, 6)} {one(cpu.estimate(cores), 8)}"

    header = (
        f"{'run':<30} {'path':<50} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  "
        f"{'server':>7} {'pg':>6} {'client':>6} {'est. r/s':>8}"
    )
    log(f"{'':<113}  {'CPU µs per request':^22}  {'idle box':>8}")
    log(header)
    log("-" * len(header))
    for r in runs:
        res = r.result
        label = r.label + (
            f" (round {r.round_no})"
            if args.rounds > 1 and r.connections == main_level and r.label in ("parent marks API", "baseline (asyncpg)")
            else ""
        )
        p50 = f"{res.p50_ms:8.2f}" if res.p50_ms is not None else f"{'-':>8}"
        p99 = f"{res.p99_ms:8.2f}" if res.p99_ms is not None else f"{'-':>8}"
        bad = (
            f"  !! {res.bad_responses} non-2xx/3xx, {res.errors} socket errors"
            if res.bad_responses or res.errors
            else ""
        )
        log(f"{label:<30} {r.path:<50} {r.connections:>5} {res.rps:8.1f} {p50} {p99}  {cells(r.cpu)}{bad}")
    put50, put99 = _pct(saves.put_ms, 0.5), _pct(saves.put_ms, 0.99)
    cyc50, cyc99 = _pct(saves.cycle_ms, 0.5), _pct(saves.cycle_ms, 0.99)
    get50, get99 = _pct(saves.get_ms, 0.5), _pct(saves.get_ms, 0.99)
    log(
        f"{'teacher grid saves (cycles)':<30} {'GET + PUT …/assessments/{id}/marks, If-Match':<50} {main_level:>5} "
        f"{saves.cycles / saves.seconds if saves.seconds else 0:8.1f} {cyc50 or 0:8.2f} {cyc99 or 0:8.2f}  "
        f"{cells(saves.cpu)}"
    )
    log(
        f"  saves: {saves.saves} saved in {saves.seconds:.1f} s = {saves.rate:.1f} saves/s "
        f"({2 * saves.cycles / saves.seconds:.1f} req/s GET+PUT), {MARKS_CHANGED_PER_SAVE} marks changed per save; "
        f"PUT p50/p99 {put50 or 0:.2f}/{put99 or 0:.2f} ms, GET p50/p99 {get50 or 0:.2f}/{get99 or 0:.2f} ms; "
        f"statuses {dict(saves.statuses)}; the row above: per GET+PUT cycle, client = httpx in the driver process"
    )
    log(
        "  CPU: server = the uvicorn process, pg = the PostgreSQL backends of this database, client = wrk (or the "
        f"httpx pool); est. r/s = min(1e6 / server, {cores} cores × 1e6 / (server + pg + client)): what CPU alone "
        "would allow on an otherwise idle machine — an estimate, not a measurement"
    )
    bad_runs = [r for r in runs if r.result.bad_responses or r.result.errors]
    if bad_runs or any(s != 200 for s in saves.statuses):
        log(
            "  WARNING: bad answers under load (figures unreliable): "
            + "; ".join(
                f"{r.label} c={r.connections}: {r.result.bad_responses} non-2xx/3xx, {r.result.errors} socket errors"
                for r in bad_runs
            )
            + (f"; saves {dict(saves.statuses)}" if any(s != 200 for s in saves.statuses) else "")
        )

    log()
    log(f"targets (at {TARGET_CONNECTIONS} clients):")
    if main_level != TARGET_CONNECTIONS:
        log(f"  no run at {TARGET_CONNECTIONS} connections (--connections): targets not evaluated")
        return
    api, page = best("parent marks API", main_level), best("parent marks page", main_level)
    base, grid = best("baseline (asyncpg)", main_level), best("teacher grid page", main_level)
    for name, run in (("parent marks API ", api), ("parent marks page", page)):
        if run is None:
            log(f"  {name}: not run")
            continue
        res = run.result
        ok_rps = res.rps >= TARGET_READ_RPS
        ok_p99 = res.p99_ms is not None and res.p99_ms <= TARGET_READ_P99_MS
        log(
            f"  {name}: {res.rps:.1f} req/s ≥ {TARGET_READ_RPS:.0f} → {_verdict(ok_rps)}; "
            f"p99 {res.p99_ms:.2f} ms ≤ {TARGET_READ_P99_MS:.0f} ms → {_verdict(ok_p99)}"
        )
    if api is not None and base is not None and base.result.rps:
        ratio = api.result.rps / base.result.rps
        med_api, med_base = median_rps("parent marks API", main_level), median_rps("baseline (asyncpg)", main_level)
        med = med_api / med_base if med_api and med_base else float("nan")
        pairs = {
            r.round_no: r.result.rps for r in runs if r.label == "parent marks API" and r.connections == main_level
        }
        bases = {
            r.round_no: r.result.rps for r in runs if r.label == "baseline (asyncpg)" and r.connections == main_level
        }
        per_round = ", ".join(f"{pairs[n] / bases[n]:.2f}" for n in sorted(pairs) if bases.get(n))
        cpu_note = ""
        if api.cpu.server_us and base.cpu.server_us:
            cpu_note = (
                f"; server CPU per request: API {api.cpu.server_us:.0f} µs, baseline {base.cpu.server_us:.0f} µs "
                f"(baseline / API = {base.cpu.server_us / api.cpu.server_us:.2f})"
            )
        log(
            f"  API / baseline:    {api.result.rps:.1f} / {base.result.rps:.1f} = {ratio:.2f} (best runs; median of "
            f"rounds {med:.2f}; round by round {per_round}) ≥ {TARGET_RATIO} → {_verdict(ratio >= TARGET_RATIO)}"
            f"{cpu_note}"
        )
    if grid is not None:
        log(
            f"  teacher grid page: {grid.result.rps:.1f} req/s ≥ {TARGET_GRID_RPS:.0f} → "
            f"{_verdict(grid.result.rps >= TARGET_GRID_RPS)} (p50 {grid.result.p50_ms:.2f} ms, "
            f"p99 {grid.result.p99_ms:.2f} ms)"
        )
    log(f"  teacher grid saves: {saves.rate:.1f} saves/s (no target)")
    log(f"total time {total_seconds:.0f} s; load average now {loadavg()}")


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(n < 1 for n in levels):
        raise argparse.ArgumentTypeError("connections: a comma-separated list of positive numbers, e.g. 10,50")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=100_000, help="pupils in the region (default 100000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument(
        "--connections",
        type=_levels,
        default=[10, 50],
        dest="levels",
        help="concurrent clients of the parent runs, comma-separated (default 10,50); the baseline, the grid "
        "runs and the targets use 10 (or the first level)",
    )
    parser.add_argument("--sessions", type=int, default=500, help="distinct guardians (default 500)")
    parser.add_argument("--teachers", type=int, default=200, help="distinct teachers (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating API / baseline rounds (default 3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each run (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL superuser URL")
    parser.add_argument(
        "--probe",
        type=int,
        default=200,
        metavar="N",
        help="before the loads, N sequential requests per page in-process: SQL round trips, bytes and CPU per page "
        "(default 200; 0 skips it)",
    )
    parser.add_argument(
        "--probe-gc-freeze",
        action="store_true",
        help="in the probe, gc.freeze() the app after the warm-up (what freezing a started server would save)",
    )
    parser.add_argument("--profile", metavar="DIR", help="with --probe: pyinstrument profiles of the pages, into DIR")
    parser.add_argument(
        "--pages-only", action="store_true", help="load only the two portal pages (no API, baseline or saves runs)"
    )
    parser.add_argument(
        "--compare-with",
        metavar="DIR",
        help="with --pages-only: also serve the code of another copy of the project (DIR, same migrations) and "
        "alternate the page loads between the two, --rounds times",
    )
    parser.add_argument("--baseline-server", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        port, dsn = args.baseline_server
        return serve_baseline(int(port), dsn)
    if args.pupils < 1 or args.duration <= 0 or args.sessions < 1 or args.teachers < 1 or args.rounds < 1:
        parser.error("--pupils, --sessions, --teachers, --rounds ≥ 1 and --duration > 0 please")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
