"""Read replicas against a real streaming replica (a scratch primary and its ``pg_basebackup -R`` standby).

Proofs: a read allowed on a replica runs in recovery (``pg_is_in_recovery()``) with the RLS scope set; with replay
paused, a family's page shows the replica's stale data while a staff page and the writer's own reads show the
primary's; a replica lagging beyond the threshold is skipped; a stopped replica costs no error and is used again
after the retry delay; every route marked ``replica`` answers 200 from the replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.app import build_plugin_host, build_services, create_app
from core.config import ConfigError, load_settings
from core.middleware import SESSION_COOKIE
from core.observability import REGISTRY
from core.read_routing import WROTE_COOKIE, run_routed, wrote_cookie, wrote_recently
from core.scope import Scope
from tests.conftest import PgServer, World, build_world, make_settings, missing_service, new_client
from tests.conftest import _create_pg as create_pg
from tests.doubles import OutboxMailer
from tests.replica_cluster import Cluster, ClusterUnavailable, streaming_pair

pytestmark = pytest.mark.postgres_only

SCHOOL = "lycee-ibn-batouta"
GUARDIAN = f"guardian.{SCHOOL}@test.ma"
DIRECTOR = f"director.{SCHOOL}@test.ma"
TEACHER = f"teacher.{SCHOOL}@test.ma"


# --------------------------------------------------------------------------- pure parts


def test_wrote_cookie_is_signed_dated_and_expires() -> None:
    secret = "s" * 48
    value = wrote_cookie(secret, 1_000.0)
    assert wrote_recently(value, secret, 5, 1_004.0)
    assert not wrote_recently(value, secret, 5, 1_005.5)  # the window is over
    assert not wrote_recently(value, "x" * 48, 5, 1_001.0)  # another deployment's key
    assert not wrote_recently("1000000.forged", secret, 5, 1_001.0)
    assert not wrote_recently(value, secret, 5, 990.0)  # dated well in the future
    assert not wrote_recently("garbage", secret, 5, 1_001.0)
    assert not wrote_recently(value, secret, 0, 1_000.5)  # read-your-writes switched off


def test_replica_settings_are_checked(tmp_path: Path) -> None:
    base = {"data_dir": tmp_path, "secret_key": "k" * 48}
    pg = {**base, "database_url": "postgresql://app@127.0.0.1/db"}
    with pytest.raises(ConfigError, match="MADRASA_REPLICA_URLS: expected postgresql"):
        load_settings({"MADRASA_REPLICA_URLS": "mysql://x/db"}, **pg)
    with pytest.raises(ConfigError, match="MADRASA_REPLICA_URLS: read replicas need"):
        load_settings({"MADRASA_REPLICA_URLS": "postgresql://app@r1/db"}, **base)
    with pytest.raises(ConfigError, match="MADRASA_REPLICA_MAX_LAG_SECONDS"):
        load_settings({"MADRASA_REPLICA_MAX_LAG_SECONDS": "0"}, **pg)
    with pytest.raises(ConfigError, match="MADRASA_REPLICA_RETRY_SECONDS"):
        load_settings({"MADRASA_REPLICA_RETRY_SECONDS": "0"}, **pg)
    settings = load_settings(
        {
            "MADRASA_REPLICA_URLS": "postgresql://app@r1/db, postgresql://app@r2/db",
            "MADRASA_REPLICA_MAX_LAG_SECONDS": "2.5",
        },
        **pg,
    )
    assert settings.replica_urls == ("postgresql://app@r1/db", "postgresql://app@r2/db")
    assert settings.replica_max_lag_seconds == 2.5


# --------------------------------------------------------------------------- the replicated deployment


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A scratch primary and its streaming replica for this module."""
    stack = contextlib.ExitStack()
    try:
        clusters = stack.enter_context(streaming_pair())
    except ClusterUnavailable as exc:
        missing_service(f"no streaming replica can be made here: {exc}")
    with stack:
        yield clusters


@pytest.fixture(scope="module")
async def rworld(pair: tuple[Cluster, Cluster], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The seeded test world on the scratch primary, its reads allowed on the replica (lag bound 1 hour, a failed
    replica retried after 1 s)."""
    primary, replica = pair
    suffix = secrets.token_hex(3)
    pg = PgServer(
        primary.admin_url,
        f"madrasa_rep_{suffix}",
        f"madrasa_rep_owner_{suffix}",
        f"madrasa_rep_app_{suffix}",
        secrets.token_hex(12),
        port=primary.port,
    )
    await create_pg(pg)
    world = await build_world(
        "postgres",
        tmp_path_factory.mktemp("replicated"),
        pg,
        replica_urls=(replica_url(pg, replica),),
        replica_max_lag_seconds=3600,
        replica_read_your_writes_seconds=60,
        replica_retry_seconds=1,
    )
    try:
        yield world
    finally:
        await world.client.aclose()
        await world.services.db.stop()


@pytest.fixture(scope="module")
async def strict(rworld: World, pair: tuple[Cluster, Cluster], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A second process's services and app on the same databases: lag bound 0.5 s, a failed replica retried after
    1 s."""
    assert rworld.pg is not None
    settings = make_settings(
        "postgres",
        tmp_path_factory.mktemp("strict"),
        rworld.pg,
        replica_urls=(replica_url(rworld.pg, pair[1]),),
        replica_max_lag_seconds=0.5,
        replica_retry_seconds=1,
    )
    services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
    await services.db.start()
    app = create_app(settings, services=services)
    try:
        yield services, app
    finally:
        await services.db.stop()


def replica_url(pg: PgServer, replica: Cluster) -> str:
    """The app role's URL on the replica."""
    return f"postgresql://{pg.app_role}:{pg.password}@127.0.0.1:{replica.port}/{pg.database}"


async def superuser(cluster: Cluster, database: str, query: str, *args: Any) -> Any:
    """One value from a superuser connection to a scratch server."""
    conn = await asyncpg.connect(cluster.admin_url.rsplit("/", 1)[0] + f"/{database}", timeout=10)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def caught_up(world: World, pair: tuple[Cluster, Cluster]) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    primary, replica = pair
    assert world.pg is not None
    target = await superuser(primary, "postgres", "SELECT pg_current_wal_flush_lsn()")
    for _ in range(600):
        if await superuser(replica, "postgres", "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica did not catch up in 30 s")


@contextlib.asynccontextmanager
async def paused_with_rename(world: World, pair: tuple[Cluster, Cluster], name: str) -> AsyncIterator[None]:
    """Replay paused on the replica, then the school's pupil renamed on the primary: the replica lags behind."""
    primary, replica = pair
    assert world.pg is not None
    await caught_up(world, pair)
    await superuser(replica, "postgres", "SELECT pg_wal_replay_pause()")
    student = world.objects[SCHOOL]["student_id"]
    old = await superuser(primary, world.pg.database, "SELECT first_name FROM student WHERE id = $1", student)
    try:
        await superuser(primary, world.pg.database, "UPDATE student SET first_name = $1 WHERE id = $2", name, student)
        yield
    finally:
        await superuser(primary, world.pg.database, "UPDATE student SET first_name = $1 WHERE id = $2", old, student)
        await superuser(replica, "postgres", "SELECT pg_wal_replay_resume()")
        await caught_up(world, pair)


async def child_name(app: Any, token: str, cookies: dict[str, str] | None = None) -> str:
    """The first name of the guardian's child, as ``GET /api/v1/me/children`` answers it (a fresh client)."""
    async with new_client(app) as client:
        for key, value in (cookies or {}).items():
            client.cookies.set(key, value)
        response = await client.get("/api/v1/me/children", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return str(response.json()[0]["first_name"])


def replica_reads(served_by: str) -> float:
    return REGISTRY.get_sample_value("madrasa_replica_reads_total", {"served_by": served_by}) or 0.0


# --------------------------------------------------------------------------- the tests


async def test_a_replica_read_runs_on_the_standby_with_the_scope_set(rworld: World) -> None:
    db = rworld.services.db
    school = Scope(nodes=frozenset({rworld.ids[SCHOOL]}))
    async with db.scoped(Scope.everything(), write=False, replica=True):
        assert await db.fetchval("SELECT pg_is_in_recovery()") is True
        assert await db.fetchval("SELECT current_user") == rworld.pg.app_role  # type: ignore[union-attr]
        assert await db.fetchval("SELECT current_setting('app.platform', true)") == "on"
        everyone = await db.fetchval("SELECT count(*) FROM student")
    for write, replica in ((False, None), (True, True), (False, False)):  # outside requests: only when asked
        async with db.scoped(Scope.everything(), write=write, replica=replica):
            assert await db.fetchval("SELECT pg_is_in_recovery()") is False
    async with db.scoped(school, write=False, replica=True):
        assert await db.fetchval("SELECT pg_is_in_recovery()") is True
        assert 0 < await db.fetchval("SELECT count(*) FROM student") < everyone  # RLS on the replica


async def test_family_reads_come_from_the_replica_staff_pages_from_the_primary(
    rworld: World, pair: tuple[Cluster, Cluster]
) -> None:
    token = await rworld.token(GUARDIAN)
    student, class_id = rworld.objects[SCHOOL]["student_id"], rworld.objects[SCHOOL]["class_id"]
    before = replica_reads("replica")
    async with paused_with_rename(rworld, pair, "Renamed"):
        assert await child_name(rworld.app, token) != "Renamed"  # the replica has not replayed the change
        assert replica_reads("replica") > before
        staff = await rworld.api("GET", f"/api/v1/me/classes/{class_id}/students", as_=TEACHER, tenant=SCHOOL)
        assert staff.status_code == 200, staff.text
        names = {s["id"]: s["first_name"] for s in staff.json()}
        assert names[student] == "Renamed"  # a route not marked for replicas reads the primary
    assert await child_name(rworld.app, token) != "Renamed"  # renamed back, replayed


async def test_the_writer_reads_from_the_primary_after_a_write(rworld: World, pair: tuple[Cluster, Cluster]) -> None:
    token = await rworld.token(GUARDIAN)
    async with paused_with_rename(rworld, pair, "AfterWrite"), new_client(rworld.app) as writer:
        wrote = await writer.post("/api/v1/me/calendar-feed", headers={"authorization": f"Bearer {token}"})
        assert wrote.status_code == 201, wrote.text
        assert WROTE_COOKIE in wrote.cookies
        read = await writer.get("/api/v1/me/children", headers={"authorization": f"Bearer {token}"})
        assert read.status_code == 200
        assert read.json()[0]["first_name"] == "AfterWrite"  # its own reads: the primary
        assert WROTE_COOKIE not in read.cookies  # a GET starts no window
        assert await child_name(rworld.app, token) != "AfterWrite"  # anyone else: still the replica
        forged = {WROTE_COOKIE: f"{int(time.time() * 1000)}.{'0' * 32}"}
        assert await child_name(rworld.app, token, forged) != "AfterWrite"  # a forged cookie moves nothing
        refused = await writer.post(
            "/api/v1/me/calendar-feed", headers={"authorization": "Bearer wrong"}
        )  # an answer of 400 or more starts no window
        assert refused.status_code == 401
        assert WROTE_COOKIE not in refused.cookies


async def test_a_lagging_replica_is_skipped(rworld: World, pair: tuple[Cluster, Cluster], strict: Any) -> None:
    services, app = strict
    token = await rworld.token(GUARDIAN)
    replica = services.db.replicas.replicas[0]
    async with paused_with_rename(rworld, pair, "Lagging"):
        await asyncio.sleep(1.1)  # the last replayed change is now more than 0.5 s old (and the lag check stale)
        assert await services.db.replicas.lag(replica) > 0.5
        fallback = replica_reads("primary")
        assert await child_name(app, token) == "Lagging"  # skipped: the primary answers
        assert replica_reads("primary") > fallback
        assert await child_name(rworld.app, token) != "Lagging"  # within the other process's bound of an hour
    await asyncio.sleep(1.1)  # caught up again; the next check measures anew
    assert await services.db.replicas.lag(replica) <= 0.5
    async with services.db.scoped(Scope.everything(), write=False, replica=True):
        assert await services.db.fetchval("SELECT pg_is_in_recovery()") is True


#: Routes that answer 404 in the seeded world (no term closed yet), from the replica all the same.
NOT_YET = {"/api/v1/me/pupils/{student_id:int}/results": 404}


def replica_routes(world: World) -> list[tuple[str, str]]:
    """``(path template, permission)`` of every GET route marked ``replica``."""
    out = []
    for route in world.litestar.routes:
        for handler in getattr(route, "route_handlers", []):
            if "GET" in handler.http_methods and handler.opt.get("replica"):
                out.append((route.path, handler.opt["permission"]))
    return sorted(set(out))


async def test_every_route_marked_for_replicas_answers_from_the_replica(rworld: World) -> None:
    routes = replica_routes(rworld)
    assert len(routes) >= 20
    objects = rworld.objects[SCHOOL]
    term = objects["term_id"]
    family = {"family.view", "timetable.view", "attendance.view", "grades.view"}
    guardian = await rworld.token(GUARDIAN)
    director = await rworld.token(DIRECTOR, SCHOOL)
    guardian_cookie, _ = await rworld.web_session(GUARDIAN)
    director_cookie, _ = await rworld.web_session(DIRECTOR)
    before = replica_reads("replica"), replica_reads("primary")
    failures = []
    for template, permission in routes:
        staff = permission not in family or template.startswith("/api/v1/grades/classes")
        path = template.replace("{student_id:int}", str(objects["student_id"]))
        path = path.replace("{class_id:int}", str(objects["class_id"]))
        headers = {}
        if path.startswith("/api/"):
            headers["authorization"] = f"Bearer {director if staff else guardian}"
        else:
            headers["cookie"] = f"{SESSION_COOKIE}={director_cookie if staff else guardian_cookie}"
            headers["accept"] = "text/html"
        path = f"/t/{SCHOOL}{path}"  # the school's modules answer at its address
        async with new_client(rworld.app) as client:
            response = await client.get(path, headers=headers, params={"term_id": term})
        expected = NOT_YET.get(template, 200)
        if response.status_code != expected:
            failures.append(f"{path}: {response.status_code} {response.text[:300]}")
    assert not failures, failures
    assert replica_reads("replica") - before[0] >= len(routes)
    assert replica_reads("primary") == before[1]  # none fell back


async def test_a_replica_lost_mid_request_is_answered_again_from_the_primary(rworld: World) -> None:
    """The request pipeline's part, with a real connection killed under a read: the 500 it caused is held back
    and the request runs again, on the primary."""
    db = rworld.services.db
    ran_in_recovery: list[bool] = []
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def handler(reply: Any) -> None:  # what a route and Litestar's exception handler do
        status = 200
        try:
            async with db.scoped(Scope.everything(), write=False):
                ran_in_recovery.append(await db.fetchval("SELECT pg_is_in_recovery()"))
                if ran_in_recovery[-1]:
                    await db.fetchval("SELECT pg_terminate_backend(pg_backend_pid())")  # the connection is lost
        except Exception:
            status = 500
        await reply({"type": "http.response.start", "status": status, "headers": []})
        await reply({"type": "http.response.body", "body": b"done"})

    scope: Any = {"type": "http", "method": "GET", "path": "/children"}
    await run_routed(rworld.services, {"replica": True}, scope, {}, send, handler)
    assert ran_in_recovery == [True, False]  # the replica, then the primary
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]
    assert db.replicas.replicas[0].down_until > time.monotonic()
    await asyncio.sleep(1.1)  # the retry delay: the replica serves the next tests again


async def test_a_stopped_replica_falls_back_to_the_primary(
    rworld: World, pair: tuple[Cluster, Cluster], strict: Any
) -> None:
    services, app = strict
    _, standby = pair
    await caught_up(rworld, pair)
    token = await rworld.token(GUARDIAN)
    cookie, _ = await rworld.web_session(GUARDIAN)
    student = rworld.objects[SCHOOL]["student_id"]
    standby.stop("fast")
    try:
        for target in (rworld.app, app):
            assert await child_name(target, token)
            async with new_client(target) as client:
                page = await client.get(
                    f"/t/{SCHOOL}/grades/pupils/{student}",
                    headers={"cookie": f"{SESSION_COOKIE}={cookie}", "accept": "text/html"},
                )
            assert page.status_code == 200, page.text
        replica = services.db.replicas.replicas[0]
        assert replica.down_until > time.monotonic()  # marked down: reads go straight to the primary meanwhile
    finally:
        standby.start()
    await caught_up(rworld, pair)
    await asyncio.sleep(1.1)  # the retry delay of the strict process
    async with services.db.scoped(Scope.everything(), write=False, replica=True):
        assert await services.db.fetchval("SELECT pg_is_in_recovery()") is True  # tried again, and used
