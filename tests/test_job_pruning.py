"""The daily ``jobs.prune``: finished runs of periodic jobs go after their keeping time; jobs people queued,
other kinds and recent runs stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from core.jobs import get_job, run_job
from core.schedule import KEEP_DONE_DAYS, KEEP_FAILED_DAYS, PRUNE_JOB, periodic_jobs, prune_runs
from core.scope import Scope


async def add_job(world, kind: str, status: str, finished_days_ago: float, created_by: int | None = None) -> str:
    job_id = str(uuid.uuid4())
    finished = datetime.now(UTC) - timedelta(days=finished_days_ago)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO job (id, kind, params, status, done, total, message, created_by, created_at, started_at, "
            "finished_at) VALUES ({}, {}, {}, {}, 0, 0, '', {}, {}, {}, {})",
            job_id,
            kind,
            "{}",
            status,
            created_by,
            finished,
            finished,
            finished,
        )
    return job_id


async def test_old_periodic_runs_are_pruned_and_everything_else_kept(world):
    assert periodic_jobs(world.services)[PRUNE_JOB] == 24 * 3600
    periodic = next(kind for kind in periodic_jobs(world.services) if kind != PRUNE_JOB)
    someone = await world.sql("SELECT MIN(id) FROM person")
    gone = [
        await add_job(world, periodic, "done", KEEP_DONE_DAYS + 1),
        await add_job(world, periodic, "failed", KEEP_FAILED_DAYS + 1),
    ]
    kept = [
        await add_job(world, periodic, "done", KEEP_DONE_DAYS - 1),  # recent
        await add_job(world, periodic, "failed", KEEP_DONE_DAYS + 1),  # a failure is kept longer
        await add_job(world, periodic, "done", KEEP_FAILED_DAYS + 1, created_by=someone),  # someone queued it
        await add_job(world, "privacy.export", "done", KEEP_FAILED_DAYS + 1),  # not a periodic kind
        await add_job(world, periodic, "running", KEEP_FAILED_DAYS + 1),  # not finished
    ]
    counts = await prune_runs(world.services)
    assert counts["done"] >= 1 and counts["failed"] >= 1
    still = "SELECT COUNT(*) FROM job WHERE id = {}"
    assert [await world.sql(still, job_id) for job_id in gone] == [0, 0]
    assert [await world.sql(still, job_id) for job_id in kept] == [1] * len(kept)
    # A second run finds nothing more of these.
    await prune_runs(world.services)
    assert [await world.sql(still, job_id) for job_id in kept] == [1] * len(kept)


async def test_the_prune_runs_as_a_queued_job(world):
    periodic = next(kind for kind in periodic_jobs(world.services) if kind != PRUNE_JOB)
    old = await add_job(world, periodic, "done", KEEP_DONE_DAYS + 3)
    job_id = await world.services.jobs.enqueue(PRUNE_JOB, {}, scope_columns={}, created_by=None)
    assert await run_job(world.services, job_id) == "done"  # what either queue does with it
    info = await get_job(world.services.db, Scope.everything(), job_id)
    assert info is not None and info.result["done"] >= 1
    assert await world.sql("SELECT COUNT(*) FROM job WHERE id = {}", old) == 0
