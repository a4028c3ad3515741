"""Background jobs: the in-process queue, the SAQ queue on Redis, progress and failures through the API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from core.access import Grant
from core.jobs import (
    JOBS,
    JobContext,
    SaqQueue,
    covers_row,
    get_job,
    grants_cover_node,
    own_node,
    register_job,
    scope_of,
)
from core.scope import Scope
from tests.conftest import World, missing_service
from tests.job_helpers import REDIS_URL, call, started_queue

SCHOOL = "lycee-ibn-batouta"
DIRECTOR = f"director.{SCHOOL}@test.ma"
OTHER_DIRECTOR = "director.lycee-moulay-youssef@test.ma"

#: Gates for the slow job, by a token the test passes in the job's params.
GATES: dict[str, asyncio.Event] = {}


@register_job("test.slow")
async def slow_job(job: JobContext, *, gate: str, steps: int) -> dict[str, Any]:
    """Reports one step, waits for the test to open the gate, then finishes the others."""
    async with job.db.scoped(job.scope):  # a unit of work: progress commits with it
        await job.progress(1, steps, "first step")
    await GATES[gate].wait()
    for done in range(2, steps + 1):
        await job.progress(done, steps, f"step {done}")
    return {"ok": True, "steps": steps, "scope": sorted(job.scope.nodes)}


@register_job("test.boom")
async def failing_job(job: JobContext, *, reason: str) -> None:
    """Fails after reporting some progress."""
    await job.progress(1, 4, "about to fail")
    raise ValueError(reason)


@register_job("test.sum")
async def sum_job(job: JobContext, *, numbers: list[int]) -> int:
    """Adds numbers, one progress step per number."""
    total = 0
    for i, n in enumerate(numbers, start=1):
        total += n
        await job.progress(i, len(numbers))
    return total


async def columns_of(world: World, school: str = SCHOOL) -> dict[str, int | None]:
    """The full scope columns of a school (region, province, school)."""
    tenant = await world.services.tenants.by_id(world.ids[school])
    assert tenant is not None
    return tenant.scope_columns()


async def person_id(world: World, email: str) -> int:
    """A person's id."""
    return int(await world.sql("SELECT id FROM person WHERE email = {}", email))


def test_registry_and_scope_rules() -> None:
    assert JOBS["test.slow"] is slow_job
    register_job("test.slow", slow_job)  # the same function again: harmless
    with pytest.raises(ValueError, match="already registered"):
        register_job("test.slow", sum_job)
    with pytest.raises(TypeError):
        register_job("test.sync", lambda job: None)  # type: ignore[arg-type,return-value]
    assert scope_of({"region_id": 2, "province_id": 3, "school_id": 7}) == Scope(frozenset({7}))
    assert scope_of({"region_id": 2, "province_id": None, "school_id": None}) == Scope(frozenset({2}))
    assert scope_of({}) == Scope.everything()
    assert covers_row(Scope(frozenset({3})), {"region_id": 2, "province_id": 3, "school_id": 7})
    assert not covers_row(Scope(frozenset({4})), {"region_id": 2, "province_id": 3, "school_id": 7})


async def test_in_process_queue_runs_a_job_with_visible_progress(world: World) -> None:
    queue = await started_queue(world)
    gate = uuid.uuid4().hex
    GATES[gate] = asyncio.Event()
    try:
        job_id = await queue.enqueue(
            "test.slow",
            {"gate": gate, "steps": 3},
            scope_columns=await columns_of(world),
            created_by=await person_id(world, DIRECTOR),
        )
        # Mid-run: the first step is committed while the job waits at the gate.
        for _ in range(200):
            response = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=DIRECTOR, tenant=SCHOOL)
            assert response.status_code == 200, response.text
            body = response.json()
            if body["done"] == 1:
                break
            await asyncio.sleep(0.02)
        assert body["status"] == "running"
        assert (body["done"], body["total"], body["percentage"]) == (1, 3, 33)
        assert body["message"] == "first step"
        assert body["result"] is None and body["finished_at"] is None

        # Another school's director does not see it; nor does the job exist under another tenant.
        other = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=OTHER_DIRECTOR, tenant="lycee-moulay-youssef")
        assert other.status_code == 404
        assert (await call(world, "GET", "/api/v1/jobs/nope", as_=DIRECTOR, tenant=SCHOOL)).status_code == 404

        GATES[gate].set()
        info = await queue.wait(job_id, seconds=30)
        assert info.status == "done", info.error
        response = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=DIRECTOR, tenant=SCHOOL)
        body = response.json()
        assert body["status"] == "done"
        assert (body["done"], body["total"], body["percentage"]) == (3, 3, 100)
        assert body["message"] == "step 3"
        assert body["result"] == {"ok": True, "steps": 3, "scope": [world.ids[SCHOOL]]}
        assert body["started_at"] and body["finished_at"]
    finally:
        GATES.pop(gate).set()
        await queue.stop()


async def test_failing_job_ends_failed_with_its_error(world: World) -> None:
    queue = await started_queue(world)
    try:
        job_id = await queue.enqueue(
            "test.boom",
            {"reason": "the printer is on fire"},
            scope_columns=await columns_of(world),
            created_by=await person_id(world, DIRECTOR),
        )
        info = await queue.wait(job_id, seconds=30)
    finally:
        await queue.stop()
    assert info.status == "failed"
    assert info.error == "ValueError: the printer is on fire"
    assert (info.done, info.total) == (1, 4)
    response = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=DIRECTOR, tenant=SCHOOL)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed" and "the printer is on fire" in body["error"]
    assert body["percentage"] == 25


async def test_unknown_kind_and_enqueue_inside_a_transaction_are_refused(world: World) -> None:
    queue = await started_queue(world)
    try:
        with pytest.raises(LookupError):
            await queue.enqueue("test.nope", {}, scope_columns=await columns_of(world), created_by=None)
        columns = await columns_of(world)
        async with world.services.db.scoped(scope_of(columns)):
            with pytest.raises(RuntimeError, match="outside a transaction"):
                await queue.enqueue("test.sum", {"numbers": [1]}, scope_columns=columns, created_by=None)
    finally:
        await queue.stop()


async def test_family_sees_only_their_own_jobs(world: World) -> None:
    """A parent with access to the school sees a job they started, not the director's."""
    guardian = f"guardian.{SCHOOL}@test.ma"
    queue = await started_queue(world)
    try:
        columns = await columns_of(world)
        theirs = await queue.enqueue(
            "test.sum", {"numbers": [1, 2]}, scope_columns=columns, created_by=await person_id(world, guardian)
        )
        directors = await queue.enqueue(
            "test.sum", {"numbers": [3]}, scope_columns=columns, created_by=await person_id(world, DIRECTOR)
        )
        assert (await queue.wait(theirs)).result == 3
        await queue.wait(directors)
    finally:
        await queue.stop()
    assert (await call(world, "GET", f"/api/v1/jobs/{theirs}", as_=guardian, tenant=SCHOOL)).status_code == 200
    assert (await call(world, "GET", f"/api/v1/jobs/{directors}", as_=guardian, tenant=SCHOOL)).status_code == 404
    assert (await call(world, "GET", f"/api/v1/jobs/{theirs}", as_=DIRECTOR, tenant=SCHOOL)).status_code == 200


@pytest.mark.postgres_only
async def test_job_rows_are_protected_by_row_level_security(world: World) -> None:
    queue = await started_queue(world)
    try:
        job_id = await queue.enqueue(
            "test.sum", {"numbers": [5]}, scope_columns=await columns_of(world), created_by=None
        )
        await queue.wait(job_id)
    finally:
        await queue.stop()
    db = world.services.db
    other = Scope(frozenset({world.ids["lycee-moulay-youssef"]}))
    async with db.scoped(other, write=False):  # RLS alone, without the SQL filter
        assert await db.fetchval("SELECT count(*) FROM job WHERE id = {}", job_id) == 0
    async with db.scoped(Scope(frozenset({world.ids[SCHOOL]})), write=False):
        assert await db.fetchval("SELECT count(*) FROM job WHERE id = {}", job_id) == 1
    assert await get_job(db, other, job_id) is None


async def _redis_or_skip() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await asyncio.wait_for(client.ping(), 3)
    except Exception as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()


async def test_saq_queue_runs_the_same_job_to_done(world: World) -> None:
    await _redis_or_skip()
    name = f"madrasa-test-{uuid.uuid4().hex}"
    queue = SaqQueue(world.services, redis_url=REDIS_URL, name=name, concurrency=2, timeout=60)
    await queue.start()
    worker = queue.worker()
    task = asyncio.create_task(worker.start())
    gate = uuid.uuid4().hex
    GATES[gate] = asyncio.Event()
    try:
        job_id = await queue.enqueue(
            "test.slow",
            {"gate": gate, "steps": 4},
            scope_columns=await columns_of(world),
            created_by=await person_id(world, DIRECTOR),
        )
        for _ in range(300):
            info = await get_job(world.services.db, Scope.everything(), job_id)
            assert info is not None
            if info.done == 1:
                break
            await asyncio.sleep(0.02)
        assert (info.status, info.done, info.total) == ("running", 1, 4)
        GATES[gate].set()
        info = await queue.wait(job_id, seconds=30)
        assert info.status == "done", info.error
        assert info.result == {"ok": True, "steps": 4, "scope": [world.ids[SCHOOL]]}
        response = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=DIRECTOR, tenant=SCHOOL)
        assert response.json()["percentage"] == 100

        failing = await queue.enqueue(
            "test.boom", {"reason": "no paper"}, scope_columns=await columns_of(world), created_by=None
        )
        info = await queue.wait(failing, seconds=30)
        assert (info.status, info.error) == ("failed", "ValueError: no paper")
    finally:
        GATES.pop(gate).set()
        await worker.stop()
        await asyncio.gather(task, return_exceptions=True)
        keys = [k async for k in queue.queue.redis.scan_iter(match=f"saq:*{name}*")]
        if keys:
            await queue.queue.redis.delete(*keys)
        await queue.stop()


async def test_a_region_job_is_seen_only_by_callers_covering_the_region(world: World) -> None:
    """A region's job (its own node is the region) is not shown to a school's director or the programme manager."""
    region = await world.services.tenants.by_slug("casablanca-settat")
    assert region is not None
    queue = await started_queue(world)
    try:
        job_id = await queue.enqueue(
            "test.sum", {"numbers": [4]}, scope_columns=region.scope_columns(), created_by=None
        )
        await queue.wait(job_id)
    finally:
        await queue.stop()
    seen = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_="region.casa@madrasa.demo", tenant=region.slug)
    assert seen.status_code == 200, seen.text
    for who, tenant in (
        (DIRECTOR, SCHOOL),
        (DIRECTOR, region.slug),
        (DIRECTOR, None),
        ("programme@madrasa.demo", SCHOOL),
        ("programme@madrasa.demo", region.slug),
        ("programme@madrasa.demo", None),
        ("province.anfa@madrasa.demo", "casablanca-anfa"),
        ("province.anfa@madrasa.demo", region.slug),
    ):
        response = await call(world, "GET", f"/api/v1/jobs/{job_id}", as_=who, tenant=tenant)
        assert response.status_code == 404, (who, tenant, response.status_code)


def test_only_grants_at_or_above_a_jobs_own_node_reach_it() -> None:
    """A grant below the job's node (a school's director, a programme's schools) does not reach a region's job."""
    region_job, school_job = (0, 1), (0, 1, 2, 3)  # paths are root-first: platform 0, region 1, province 2
    director = [Grant("school_director", ((0, 1, 2, 3),), 3)]
    manager = [Grant("programme_manager", ((0, 1, 2, 3), (0, 5, 6, 7)), None, 9)]
    region_admin = [Grant("region_admin", ((0, 1),), 1)]
    platform = [Grant("platform_admin", ((0,),), 0)]
    roles = frozenset({"school_director", "programme_manager", "region_admin", "platform_admin"})
    assert own_node({"region_id": 1, "province_id": None, "school_id": None}) == 1
    assert own_node({"region_id": 1, "province_id": 2, "school_id": 3}) == 3
    assert own_node({"region_id": None, "province_id": None, "school_id": None}) is None
    assert not grants_cover_node(director, roles, region_job) and grants_cover_node(director, roles, school_job)
    assert not grants_cover_node(manager, roles, region_job) and grants_cover_node(manager, roles, school_job)
    assert grants_cover_node(region_admin, roles, region_job) and grants_cover_node(region_admin, roles, school_job)
    assert not grants_cover_node(region_admin, roles, None) and grants_cover_node(platform, roles, None)
    assert not grants_cover_node(director, frozenset({"teacher"}), school_job)


def test_covers_row_needs_the_rows_own_node() -> None:
    """The rule: the scope must cover the job's most specific node, not merely a node below it."""
    region_job = {"region_id": 1, "province_id": None, "school_id": None}
    school_job = {"region_id": 1, "province_id": 2, "school_id": 3}
    assert covers_row(Scope(frozenset({1})), region_job)
    assert not covers_row(Scope(frozenset({3})), region_job)
    assert not covers_row(Scope(frozenset({2})), region_job)
    assert covers_row(Scope(frozenset({1})), school_job)
    assert covers_row(Scope(frozenset({2})), school_job)
    assert covers_row(Scope(frozenset({3})), school_job)
    assert not covers_row(Scope(frozenset({4})), school_job)
    assert covers_row(Scope.everything(), region_job)


async def test_the_saq_worker_fails_the_jobs_of_a_worker_that_died(world: World) -> None:
    """A row left ``running`` past the timeout (its worker died) is marked failed; a younger one is not."""
    from datetime import UTC, datetime, timedelta

    from core.jobs import OVERDUE_MARGIN

    await _redis_or_skip()
    queue = SaqQueue(world.services, redis_url=REDIS_URL, name=f"madrasa-test-{uuid.uuid4().hex}", timeout=60)
    db = world.services.db
    at = datetime.now(UTC)
    ids = {"dead": str(uuid.uuid4()), "alive": str(uuid.uuid4())}
    started = {"dead": at - timedelta(seconds=60 + OVERDUE_MARGIN + 5), "alive": at - timedelta(seconds=30)}
    async with db.scoped(Scope.everything()):
        for name, job_id in ids.items():
            await db.execute(
                "INSERT INTO job (id, kind, params, status, done, total, message, created_at, started_at) "
                "VALUES ({}, 'test.slow', {}, 'running', 0, 0, '', {}, {})",
                job_id,
                "{}",
                started[name],
                started[name],
            )
    try:
        assert await queue.fail_overdue(at) >= 1
        dead = await get_job(db, Scope.everything(), ids["dead"])
        alive = await get_job(db, Scope.everything(), ids["alive"])
        assert dead is not None and (dead.status, dead.error) == (
            "failed",
            "interrupted: the worker running it stopped",
        )
        assert alive is not None and alive.status == "running"
    finally:
        async with db.scoped(Scope.everything()):
            await db.execute("DELETE FROM job WHERE id IN ({}, {})", ids["dead"], ids["alive"])
        await queue.stop()
