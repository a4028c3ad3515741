"""Periodic jobs: a job kind that also runs on its own, every so many seconds.

A job function declared through ``madrasa_jobs`` (or registered by core) becomes periodic with
:func:`every`::

    @every(60)
    async def retry_notices(job: JobContext) -> dict[str, int]: ...

The :class:`Scheduler` runs in each process that runs jobs: the web process with the in-process
queue (started by the application's lifespan) and ``madrasa worker`` with SAQ. At the start of each
period it enqueues the job, without parameters, as a platform job (scope: everything; the function
narrows what it touches). The job's id is derived from its kind and the period (:func:`period_job_id`),
so several processes scheduling the same period record and run it once; a period whose enqueue failed
(the database or Redis away) is tried again at the next tick. A periodic run is an ordinary job row:
its status, result and error are read like any other's.

A job running every minute leaves 1,440 rows a day: the daily ``jobs.prune`` (itself periodic) deletes
the finished runs of periodic jobs (rows nobody queued) after :data:`KEEP_DONE_DAYS` days, and the failed
ones after :data:`KEEP_FAILED_DAYS` days, so an operator still finds last week's failures. Jobs that people
queued are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.jobs import JOBS, JobContext, JobFn, queue_of, register_job
from core.scope import Scope
from core.sql import in_

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger("madrasa.schedule")

#: Attribute :func:`every` sets on a job function: its period in seconds.
PERIOD_ATTR = "madrasa_every_seconds"
_NAMESPACE = uuid.UUID("5d1c6a8e-4b0f-4c55-9a37-6f3f1f0c2b61")
#: Days a periodic run that ended ``done`` is kept; a ``failed`` one is kept longer.
KEEP_DONE_DAYS = 2
KEEP_FAILED_DAYS = 30
PRUNE_JOB = "jobs.prune"


def every(seconds: int) -> Callable[[JobFn], JobFn]:
    """Mark a job function to run every ``seconds`` (at least 10) as well as when queued."""
    if int(seconds) < 10:
        raise ValueError("a periodic job runs at most every 10 seconds")

    def mark(fn: JobFn) -> JobFn:
        setattr(fn, PERIOD_ATTR, int(seconds))
        return fn

    return mark


def periodic_jobs(services: Services) -> dict[str, int]:
    """``{kind: seconds}`` of the periodic jobs: core's and the plugins' (``madrasa_jobs``)."""
    functions: dict[str, Any] = {**JOBS, **services.job_functions}
    return {kind: int(p) for kind, fn in sorted(functions.items()) if (p := getattr(fn, PERIOD_ATTR, None))}


def period_of(seconds: int, at: datetime) -> int:
    """The number of the period of ``seconds`` that ``at`` falls in (counted from the Unix epoch)."""
    return int(at.timestamp()) // seconds


def period_job_id(kind: str, seconds: int, at: datetime) -> str:
    """The id of the periodic job of ``kind`` for the period that ``at`` falls in (the same in every process)."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}@{seconds}:{period_of(seconds, at)}"))


class Scheduler:
    """Enqueues each periodic job once per period; :meth:`start` runs :meth:`run_due` every ``tick`` seconds."""

    def __init__(self, services: Services, *, tick: float = 5.0) -> None:
        self.services = services
        self.tick = tick
        self._done: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def run_due(self, at: datetime | None = None) -> list[str]:
        """Enqueue the periodic jobs whose period (at ``at``, now by default) this scheduler has not enqueued;
        returns their job ids (a job another process recorded for the period is not queued again)."""
        at = at or datetime.now(UTC)
        queued = []
        for kind, seconds in periodic_jobs(self.services).items():
            period = period_of(seconds, at)
            if self._done.get(kind) == period:
                continue
            try:
                job_id = await queue_of(self.services).enqueue(
                    kind, {}, scope_columns={}, created_by=None, job_id=period_job_id(kind, seconds, at)
                )
            except Exception:
                log.exception("periodic job not queued", extra={"kind": kind})
                continue
            self._done[kind] = period
            queued.append(job_id)
        return queued

    async def start(self) -> None:
        """Run in the background until :meth:`stop` (nothing to run: no task)."""
        if self._task is None and periodic_jobs(self.services):
            self._task = asyncio.create_task(self._loop(), name="madrasa-scheduler")

    async def stop(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except Exception:  # run_due logs per job; this is anything else
                log.exception("scheduler error")
            await asyncio.sleep(self.tick)


async def prune_runs(services: Services, at: datetime | None = None) -> dict[str, int]:
    """Delete the finished runs of periodic jobs (no ``created_by``) past their keeping time; returns counts."""
    at = at or datetime.now(UTC)
    kinds = list(periodic_jobs(services))
    counts = {"done": 0, "failed": 0}
    if not kinds:
        return counts
    db = services.db
    async with db.scoped(Scope.everything()):
        for status, days in (("done", KEEP_DONE_DAYS), ("failed", KEEP_FAILED_DAYS)):
            rows = await db.fetch(
                "DELETE FROM job WHERE status = {} AND created_by IS NULL AND finished_at < {} AND kind IN {} "
                "RETURNING id",
                status,
                at - timedelta(days=days),
                in_(kinds),
            )
            counts[status] = len(rows)
    return counts


@register_job(PRUNE_JOB)
@every(24 * 3600)
async def prune_job(job: JobContext) -> dict[str, int]:
    """The daily pruning of periodic runs, as a job."""
    return await prune_runs(job.services)
