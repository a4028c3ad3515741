"""PostgreSQL going away under write load: a scratch cluster restarted and stopped while ten clients save
mark grids and attendance registers through a real HTTP server.

Every write answered 2xx is in the database afterwards (its audit entry, written in the same transaction,
carries the request id the client sent); every other answer is a 503 with ``Retry-After``, none hangs;
``/readyz`` answers 503 while the database is down and 200 after; the same process serves again without a
restart (the pool replaces the connections the server closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from core.clock import FixedClock
from core.faults import dependency_down
from core.jobs import JobQueueError
from core.middleware import SESSION_COOKIE
from core.scope import Scope
from core.storage import ObjectNotFound, StorageError, StorageUnavailable
from tests.conftest import PgServer, World, build_world, free_port, missing_service, run_sync
from tests.conftest import _create_pg as create_pg
from tests.test_attendance import DAY

pytestmark = pytest.mark.postgres_only

SCHOOL = "lycee-ibn-batouta"
TEACHER = f"teacher.{SCHOOL}@test.ma"
DIRECTOR = f"director.{SCHOOL}@test.ma"
CLIENT_TIMEOUT = 20.0  # seconds: a request that takes longer is a hang
GRADE_CLIENTS = ATTENDANCE_CLIENTS = 5
MAX_WRITES = 45  # per client: keeps each write's content unique (scores, minutes late)


# --------------------------------------------------------------------------- the scratch cluster


@dataclass
class Cluster:
    """A PostgreSQL cluster of its own, on a free port, that the test may stop and restart."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on the cluster as its owner; fails the test on error."""
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), *args]
        result = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, f"pg_ctl {' '.join(args)}: {result.stdout}{result.stderr}"


def _as_owner(command: list[str]) -> list[str]:
    """As the ``postgres`` OS user when running as root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """``initdb`` into a temporary folder, started with ``pg_ctl`` on a free port; stopped and removed after."""
    bindir = _bindir()
    if bindir is None or (os.geteuid() == 0 and not _has_user("postgres")):
        missing_service("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    root = Path(tempfile.mkdtemp(prefix="madrasa-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    found = Cluster(bindir, root, free_port())
    init = [str(bindir / "initdb"), "-D", str(found.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]
    subprocess.run(_as_owner(init), capture_output=True, check=True, timeout=120)
    settings = {
        "port": str(found.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{root}'",
        "fsync": "off",  # a shutdown, fast or not, still writes every committed transaction out
        "max_connections": "60",
    }
    with (found.data / "postgresql.conf").open("a") as conf:  # every start and restart uses them
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    try:
        found.pg_ctl("start", "-w")
        yield found
    finally:
        with contextlib.suppress(Exception):
            found.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
async def pg_world(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The seeded world migrated on the scratch cluster, with a bounded wait for connections."""
    suffix = secrets.token_hex(3)
    server = PgServer(
        f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres",
        f"faults_{suffix}",
        f"faults_owner_{suffix}",
        f"faults_app_{suffix}",
        secrets.token_hex(12),
        port=cluster.port,
    )
    run_sync(create_pg(server))
    world = await build_world(
        "postgres", tmp_path_factory.mktemp("faults-db"), server, db_pool_max=14, db_acquire_timeout=4.0
    )
    world.services.clock = FixedClock(DAY)  # a school day with lessons (see tests/test_attendance.py)
    try:
        yield world
    finally:
        await world.client.aclose()
        await world.services.db.stop()


@pytest.fixture
async def http(pg_world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP server (uvicorn) serving the world's app on a free port, and a client with a timeout."""
    port = free_port()
    config = uvicorn.Config(pg_world.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=CLIENT_TIMEOUT)
    try:
        yield client
    finally:
        await client.aclose()
        server.should_exit = True
        await task


# --------------------------------------------------------------------------- the load


@dataclass
class Outcome:
    """What one client saw."""

    ok: list[str] = field(default_factory=list)  # request ids answered 2xx
    unavailable: int = 0
    unexpected: list[str] = field(default_factory=list)


def _check_unavailable(response: httpx.Response, outcome: Outcome, what: str) -> None:
    """A failure must be a 503 with Retry-After and a plain message; anything else is recorded as unexpected."""
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    if response.status_code == 503 and response.headers.get("retry-after") and "unavailable" in body.get("detail", ""):
        outcome.unavailable += 1
    else:
        outcome.unexpected.append(f"{what}: {response.status_code} {response.text[:300]}")


async def grade_client(
    http: httpx.AsyncClient, token: str, assessment_id: int, pupils: list[int], name: str, stop: asyncio.Event
) -> Outcome:
    """Read the grid, save it with If-Match; again with other scores until told to stop."""
    outcome = Outcome()
    url = f"/t/{SCHOOL}/api/v1/grades/assessments/{assessment_id}/marks"
    auth = {"authorization": f"Bearer {token}"}
    etag = None
    for n in range(1, MAX_WRITES + 1):
        if stop.is_set():
            break
        if etag is None:
            got = await http.get(url, headers=auth)
            if got.status_code != 200:
                _check_unavailable(got, outcome, "GET grid")
                await asyncio.sleep(0.1)
                continue
            etag = got.headers["etag"]
        request_id = f"fault-{name}-{n:03d}"
        marks = [{"student_id": pupil, "score": (n % 80) / 4} for pupil in pupils]
        put = await http.put(url, headers=auth | {"if-match": etag, "x-request-id": request_id}, json={"marks": marks})
        if 200 <= put.status_code < 300:
            outcome.ok.append(request_id)
            etag = put.headers["etag"]
        elif put.status_code == 409 and outcome.unavailable:
            etag = None  # a save answered 503 had committed after all: read the grid again
        else:
            _check_unavailable(put, outcome, "PUT grid")
            etag = None
        await asyncio.sleep(random.uniform(0.01, 0.05))
    return outcome


async def attendance_client(
    http: httpx.AsyncClient, token: str, slot_id: int, pupils: list[int], name: str, stop: asyncio.Event
) -> Outcome:
    """Correct today's register of a lesson, a pupil late by a different number of minutes each time."""
    outcome = Outcome()
    url = f"/t/{SCHOOL}/api/v1/attendance/sessions/{slot_id}/{DAY.isoformat()}"
    auth = {"authorization": f"Bearer {token}"}
    for n in range(1, MAX_WRITES + 1):
        if stop.is_set():
            break
        request_id = f"fault-{name}-{n:03d}"
        entries = [
            {"student_id": pupils[0], "status": "late", "minutes": n},
            {"student_id": pupils[1], "status": "absent"},
        ]
        put = await http.put(url, headers=auth | {"x-request-id": request_id}, json={"entries": entries})
        if 200 <= put.status_code < 300:
            outcome.ok.append(request_id)
        else:
            _check_unavailable(put, outcome, "PUT register")
        await asyncio.sleep(random.uniform(0.01, 0.05))
    return outcome


async def readyz_until(http: httpx.AsyncClient, status: int, seconds: float = 30.0) -> list[int]:
    """Poll ``/readyz`` until it answers ``status``; the statuses seen (the test fails if it never does)."""
    seen: list[int] = []
    async with asyncio.timeout(seconds):
        while True:
            response = await http.get("/readyz")
            seen.append(response.status_code)
            if response.status_code == status:
                return seen
            await asyncio.sleep(0.1)


async def seed(world: World) -> tuple[list[int], list[int], list[int]]:
    """A class of three pupils, five assessments and five lessons on DAY (each client writes its own)."""

    async def post(path: str, body: dict[str, Any], actor: str = DIRECTOR) -> int:
        response = await world.api("POST", path, as_=actor, tenant=SCHOOL, json=body)
        assert response.status_code in (200, 201), f"{path}: {response.text}"
        return int(response.json()["id"])

    teacher_id = world.objects[SCHOOL]["teacher_id"]
    class_id = await post(
        "/api/v1/school/classes",
        {
            "name": f"F-{secrets.token_hex(3)}",
            "level_code": "TC",
            "track_code": "TCS",
            "homeroom_teacher_id": teacher_id,
        },
    )
    pupils = []
    for first in ("Amal", "Badr", "Chaimae"):
        body = {"national_code": f"F{random.randrange(10**9):09d}", "first_name": first, "last_name": "Test"}
        pupils.append(await post("/api/v1/school/students", body | {"class_id": class_id}))
    async with world.services.db.scoped(Scope.everything()):  # enrolled since the start of the year, as of DAY
        await world.services.db.execute(
            "UPDATE enrolment SET starts_on = "
            "(SELECT starts_on FROM school_year WHERE id = enrolment.school_year_id) WHERE class_id = {}",
            class_id,
        )
    for subject in ("PC", "MATH"):
        await post(
            "/api/v1/school/assignments", {"teacher_id": teacher_id, "class_id": class_id, "subject_code": subject}
        )
    term_id = world.objects[SCHOOL]["term_id"]
    assessments = [
        await post(
            "/api/v1/grades/assessments",
            {
                "class_id": class_id,
                "subject_code": "PC",
                "term_id": term_id,
                "scheduled_on": "2026-10-12",
                "title": f"C{i}",
            },
            actor=TEACHER,
        )
        for i in range(GRADE_CLIENTS)
    ]
    slots = []
    for hour in range(12, 12 + ATTENDANCE_CLIENTS):
        body = {
            "class_id": class_id,
            "subject_code": "MATH",
            "teacher_id": teacher_id,
            "weekday": DAY.isoweekday(),
            "starts_at": f"{hour:02d}:00",
            "ends_at": f"{hour + 1:02d}:00",
        }
        slots.append(await post("/api/v1/school/timetable", body))
    return pupils, assessments, slots


# --------------------------------------------------------------------------- the test


async def test_writes_survive_a_restart_and_an_outage(pg_world: World, cluster: Cluster, http: httpx.AsyncClient):
    world = pg_world
    pupils, assessments, slots = await seed(world)
    token = await world.token(TEACHER)
    auth = {"authorization": f"Bearer {token}"}
    # Each register is taken once before the load, so every write of the load is an audited correction.
    for slot in slots:
        url = f"/t/{SCHOOL}/api/v1/attendance/sessions/{slot}/{DAY.isoformat()}"
        first = await http.put(url, headers=auth, json={"entries": []})
        assert first.status_code == 200, first.text
    for assessment_id in assessments:  # likewise the grids: a first save of a mark is not audited
        url = f"/t/{SCHOOL}/api/v1/grades/assessments/{assessment_id}/marks"
        etag = (await http.get(url, headers=auth)).headers["etag"]
        first = await http.put(
            url, headers=auth | {"if-match": etag}, json={"marks": [{"student_id": p, "score": 20} for p in pupils]}
        )
        assert first.status_code == 200, first.text
    assert (await http.get("/readyz")).status_code == 200

    stop = asyncio.Event()
    clients = [
        asyncio.create_task(grade_client(http, token, a, pupils, f"g{i}", stop)) for i, a in enumerate(assessments)
    ] + [asyncio.create_task(attendance_client(http, token, s, pupils, f"a{i}", stop)) for i, s in enumerate(slots)]
    assert len(clients) == 10
    await asyncio.sleep(0.8)
    # 1. A fast restart under load: the server ends every session; the pool must reconnect on its own.
    await asyncio.to_thread(cluster.pg_ctl, "restart", "-m", "fast", "-w")
    await asyncio.sleep(0.8)
    # 2. An outage: /readyz says so at once, writes are refused with 503, then the database comes back.
    await asyncio.to_thread(cluster.pg_ctl, "stop", "-m", "fast", "-w")
    down = await readyz_until(http, 503, seconds=CLIENT_TIMEOUT)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(cluster.pg_ctl, "start", "-w")
    up = await readyz_until(http, 200)
    await asyncio.sleep(1.0)
    stop.set()
    outcomes = await asyncio.gather(*clients)  # a request over CLIENT_TIMEOUT raised httpx.TimeoutException

    assert down[-1] == 503 and up[-1] == 200
    unexpected = [u for o in outcomes for u in o.unexpected]
    assert not unexpected, unexpected
    assert sum(o.unavailable for o in outcomes) > 0, "no write met the outage"
    acknowledged = [rid for o in outcomes for rid in o.ok]
    assert all(o.ok for o in outcomes), "a client never got a write through"
    async with world.services.db.scoped(Scope.everything(), write=False):
        rows = await world.services.db.fetch("SELECT request_id FROM audit_log WHERE request_id LIKE 'fault-%'")
    stored = {r["request_id"] for r in rows}
    lost = sorted(set(acknowledged) - stored)
    assert not lost, f"writes answered 2xx but not in the database: {lost}"
    # The last acknowledged grid of each client is what the database holds, unless a later save met the outage.
    for outcome, assessment_id in zip(outcomes, assessments, strict=False):
        last = int(outcome.ok[-1].rsplit("-", 1)[1])
        scores = {
            float(s)
            for s in await _column(world, "SELECT score FROM grade_mark WHERE assessment_id = {}", assessment_id)
        }
        assert len(scores) == 1, scores
        assert scores.pop() * 4 >= last % 80, "the database holds an older grid than the last one acknowledged"

    # The same process serves again without a restart: a fresh read and write go through.
    grid = await http.get(f"/t/{SCHOOL}/api/v1/grades/assessments/{assessments[0]}/marks", headers=auth)
    assert grid.status_code == 200, grid.text
    saved = await http.put(
        f"/t/{SCHOOL}/api/v1/grades/assessments/{assessments[0]}/marks",
        headers=auth | {"if-match": grid.headers["etag"]},
        json={"marks": [{"student_id": p, "score": 19.5} for p in pupils]},
    )
    assert saved.status_code == 200, saved.text


async def test_readyz_and_pages_answer_503_while_the_database_is_down(
    pg_world: World, cluster: Cluster, http: httpx.AsyncClient
):
    token = await pg_world.token(TEACHER)
    cookie, _ = await pg_world.web_session(TEACHER)
    assert (await http.get("/readyz")).status_code == 200
    await asyncio.to_thread(cluster.pg_ctl, "stop", "-m", "fast", "-w")
    try:
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
        api = await http.get(f"/t/{SCHOOL}/api/v1/school/classes", headers={"authorization": f"Bearer {token}"})
        assert api.status_code == 503, api.text
        assert api.headers["content-type"].startswith("application/problem+json")
        assert api.headers["retry-after"] == "5"
        assert api.json()["detail"] == "The service is briefly unavailable; try again in a moment."
        page = await http.get(f"/t/{SCHOOL}/", headers={"cookie": f"{SESSION_COOKIE}={cookie}", "accept": "text/html"})
        assert page.status_code == 503 and page.headers["retry-after"] == "5"
        assert "Le service est momentanément indisponible" in page.text
    finally:
        await asyncio.to_thread(cluster.pg_ctl, "start", "-w")
    await readyz_until(http, 200)
    again = await http.get(f"/t/{SCHOOL}/api/v1/school/classes", headers={"authorization": f"Bearer {token}"})
    assert again.status_code == 200, again.text


async def _column(world: World, query: str, *args: Any) -> list[Any]:
    async with world.services.db.scoped(Scope.everything(), write=False):
        return [next(iter(r.values())) for r in await world.services.db.fetch(query, *args)]


def test_which_errors_mean_a_dependency_is_down():
    def caused(outer: Exception, inner: Exception) -> Exception:
        try:
            try:
                raise inner
            except Exception as exc:
                raise outer from exc
        except Exception as chained:
            return chained

    assert dependency_down(ConnectionRefusedError(111, "Connect call failed")) == "database"
    assert dependency_down(TimeoutError()) == "database"  # a pool acquire that timed out
    assert dependency_down(asyncpg.CannotConnectNowError("the database system is starting up")) == "database"
    assert dependency_down(caused(RuntimeError("wrapped"), asyncpg.AdminShutdownError("terminating"))) == "database"
    assert dependency_down(StorageUnavailable("S3 request failed")) == "storage"
    assert dependency_down(JobQueueError("the job queue is unavailable")) == "queue"
    assert dependency_down(caused(StorageError("cannot write"), OSError(28, "No space left on device"))) == "storage"
    # Not outages: a bug, a missing file, a refused key, a constraint.
    assert dependency_down(ValueError("bug")) is None
    assert dependency_down(FileNotFoundError(2, "No such file")) is None
    assert dependency_down(ObjectNotFound("t/1/x")) is None
    assert dependency_down(asyncpg.UniqueViolationError("duplicate key")) is None
