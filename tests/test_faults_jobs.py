"""Redis going away while jobs run (SAQ queue, a redis-server of the test's own that it kills and restarts).

Jobs are not lost: one running finishes (its outcome lives in the job table), the ones Redis forgot run once
Redis is back (the worker hands the table's queued jobs to Redis again). Enqueueing while Redis is down
answers 503, not 500, and leaves the job ``failed`` with its reason, which the portal's job page shows.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.jobs import JobContext, JobQueueError, SaqQueue, get_job, register_job
from core.scope import Scope
from tests.conftest import World, free_port, missing_service

SCHOOL = "lycee-ibn-batouta"
DIRECTOR = f"director.{SCHOOL}@test.ma"
QUEUE_DOWN = "The job queue is briefly unavailable; try again in a moment."
GATES: dict[str, asyncio.Event] = {}


@register_job("faults.gated")
async def gated_job(job: JobContext, *, gate: str) -> str:
    """Runs until the test opens its gate."""
    await job.progress(1, 2, "waiting at the gate")
    await GATES[gate].wait()
    return "through"


@register_job("faults.quick")
async def quick_job(job: JobContext, *, n: int) -> int:
    """Returns its number."""
    return n


class OwnRedis:
    """A redis-server on a free port, without persistence: killed, it comes back empty."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.process.poll() is None, "redis-server exited"
            subprocess.run(["sleep", "0.025"], check=True)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def _columns(world: World) -> dict[str, int | None]:
    tenant = await world.services.tenants.by_id(world.ids[SCHOOL])
    assert tenant is not None
    return tenant.scope_columns()


async def _until(world: World, job_id: str, status: str, seconds: float = 30.0) -> Any:
    async with asyncio.timeout(seconds):
        while True:
            info = await get_job(world.services.db, Scope.everything(), job_id)
            if info is not None and info.status == status:
                return info
            await asyncio.sleep(0.05)


async def test_jobs_are_not_lost_when_redis_goes_away(world: World, redis_server: OwnRedis) -> None:
    queue = SaqQueue(
        world.services,
        redis_url=redis_server.url,
        name=f"faults-{uuid.uuid4().hex}",
        concurrency=1,
        timeout=60,
        requeue_interval=0.3,
        dispatch_timeout=2.0,
    )
    await queue.start()
    worker = queue.worker(grace=1)
    running = asyncio.create_task(worker.start())
    gate = uuid.uuid4().hex
    GATES[gate] = asyncio.Event()
    columns = await _columns(world)
    director = int(await world.sql("SELECT id FROM person WHERE email = {}", DIRECTOR))
    previous_jobs = world.services.jobs
    try:
        first = await queue.enqueue("faults.gated", {"gate": gate}, scope_columns=columns, created_by=director)
        await _until(world, first, "running")
        # One worker slot, taken: these wait in Redis, and Redis is about to lose them.
        waiting = [
            await queue.enqueue("faults.quick", {"n": n}, scope_columns=columns, created_by=director) for n in range(3)
        ]
        redis_server.kill()

        # Enqueueing now is refused; the row says why and is not left queued.
        with pytest.raises(JobQueueError):
            await queue.enqueue("faults.quick", {"n": 99}, scope_columns=columns, created_by=director)
        async with world.services.db.scoped(Scope.everything(), write=False):
            rows = await world.services.db.fetch("SELECT id, status, error FROM job WHERE kind = 'faults.quick'")
        [refused] = [r for r in rows if r["id"] not in waiting]
        assert refused["status"] == "failed"
        assert refused["error"].startswith("queue unavailable: ")
        # Through the API: a 503 with Retry-After and a plain message, not a 500.
        world.services.jobs = queue
        response = await world.api(
            "POST",
            "/api/v1/grades/bulletins",
            as_=DIRECTOR,
            tenant=SCHOOL,
            json={"term_id": world.objects[SCHOOL]["term_id"], "class_id": world.objects[SCHOOL]["class_id"]},
        )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5" and response.json()["detail"] == QUEUE_DOWN
        assert await world.sql("SELECT COUNT(*) FROM job WHERE kind = 'grades.bulletins' AND status = 'queued'") == 0
        # The portal's job page says the job failed, and why.
        page = await world.api("GET", f"/jobs/{refused['id']}", as_=DIRECTOR, tenant=SCHOOL)
        assert page.status_code == 200, page.text
        assert "queue unavailable: " in page.text and 'role="alert"' in page.text

        # The running job finishes while Redis is down: its outcome is in the table.
        GATES[gate].set()
        assert (await _until(world, first, "done")).result == "through"
        for job_id in waiting:
            info = await get_job(world.services.db, Scope.everything(), job_id)
            assert info is not None and info.status == "queued"

        # Redis comes back empty; the worker hands it the queued jobs again and they run.
        redis_server.start()
        results = [(await _until(world, job_id, "done")).result for job_id in waiting]
        assert results == [0, 1, 2]
        page = await world.api("GET", f"/jobs/{waiting[0]}", as_=DIRECTOR, tenant=SCHOOL)
        assert page.status_code == 200 and 'role="alert"' not in page.text
    finally:
        world.services.jobs = previous_jobs
        GATES.pop(gate).set()
        await worker.stop()
        await asyncio.gather(running, return_exceptions=True)
        await queue.stop()
