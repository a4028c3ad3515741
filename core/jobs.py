"""Background jobs: a ``job`` table for status and progress, and queues that run job functions.

A job function is registered by name (:func:`register_job`, stored in :data:`JOBS`) and
called as ``await fn(job, **params)`` with a :class:`JobContext`. It opens its own
transactions with ``job.db.scoped(job.scope)``, commits per unit of work, and reports
``await job.progress(done, total, message)``. Progress, status, result and error always live in
the ``job`` table, so the API reads them the same way whichever queue ran the job.

Two queues share :func:`run_job`:

- :class:`InProcessQueue` (the embedded default): asyncio tasks in the web process with a
  small, bounded concurrency, started and stopped with the application's lifespan;
- :class:`SaqQueue` (production, ``MADRASA_JOB_BACKEND=saq``): the web process only enqueues into
  Redis with `saq`; ``madrasa worker`` (:func:`run_worker`) runs the same functions.

The ``job`` table carries the scope columns of the tenant that asked for the job and has
row-level security like every tenant table; a job runs with the scope of the most specific node
among its scope columns (the school, else the province, else the region, else the platform).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from piccolo.columns import JSONB, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table

from core.access import Grant, scope_for
from core.context import Ctx, RequestContext
from core.db import Database, scope_sql
from core.errors import Unavailable
from core.permissions import STAFF_ROLES
from core.scope import Scope
from core.sql import SQL

if TYPE_CHECKING:
    from saq import Worker

    from core.services import Services

log = logging.getLogger("madrasa.jobs")

JobStatus = Literal["queued", "running", "done", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "failed"})
#: Roles that see every job of the tenants in their scope; other roles see the jobs they started.
JOB_ADMIN_ROLES = STAFF_ROLES
#: Name under which the SAQ worker knows the one function that runs any madrasa job.
SAQ_FUNCTION = "madrasa.run_job"
MAX_ERROR_CHARS = 2000
#: Seconds past the job timeout after which a ``running`` job of the SAQ queue is taken for interrupted.
OVERDUE_MARGIN = 120

# --------------------------------------------------------------------------- table


class Job(Table, tablename="job"):
    """A background job: what to run, for whom, and how far it got."""

    id = Varchar(length=36, primary_key=True)
    kind = Varchar(length=64)
    params = JSONB(default="{}")
    status = Varchar(length=8, default="queued", index=True)
    done = Integer(default=0)
    total = Integer(default=0)
    message = Text(default="")
    result = JSONB(null=True, default=None)
    error = Text(null=True, default=None)
    created_by = Integer(null=True, default=None, index=True)
    created_at = Timestamptz()
    started_at = Timestamptz(null=True, default=None)
    finished_at = Timestamptz(null=True, default=None)
    region_id = Integer(null=True, default=None, index=True)
    province_id = Integer(null=True, default=None)
    school_id = Integer(null=True, default=None, index=True)


JOB_TABLES: list[type[Table]] = [Job]

# --------------------------------------------------------------------------- registry

JobFn = Callable[..., Awaitable[Any]]
#: Job functions by name (``"grades.bulletins"`` → ``async def fn(job, **params)``).
JOBS: dict[str, JobFn] = {}


def register_job(name: str, fn: JobFn | None = None, *, replace: bool = False) -> Any:
    """Register a job function under ``name``; also usable as ``@register_job("name")``.

    Registering another function under a taken name is an error unless ``replace`` is true
    (registering the same function again is harmless, so a plugin may do it at import or from
    a hook).
    """

    def add(function: JobFn) -> JobFn:
        if not asyncio.iscoroutinefunction(function):
            raise TypeError(f"job {name!r} must be an async function")
        existing = JOBS.get(name)
        if existing is not None and existing is not function and not replace:
            raise ValueError(f"a job named {name!r} is already registered")
        JOBS[name] = function
        return function

    return add(fn) if fn is not None else add


def job_function(services: Services, kind: str) -> JobFn | None:
    """The function of a job kind: declared by a plugin (``madrasa_jobs``) or registered by core."""
    return services.job_functions.get(kind) or JOBS.get(kind)


# --------------------------------------------------------------------------- helpers


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _unjson(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return msgspec.json.decode(value)
    return value


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def scope_of(columns: Mapping[str, int | None]) -> Scope:
    """The scope a job runs with: its most specific tenant node, or the platform without one."""
    for column in ("school_id", "province_id", "region_id"):
        value = columns.get(column)
        if value:
            return Scope(frozenset({int(value)}))
    return Scope.everything()


def _columns(columns: Mapping[str, int | None]) -> dict[str, int | None]:
    unknown = set(columns) - {"region_id", "province_id", "school_id"}
    if unknown:
        raise ValueError(f"unknown scope columns {sorted(unknown)}")
    return {c: columns.get(c) for c in ("region_id", "province_id", "school_id")}


def covers_row(scope: Scope, row: Mapping[str, Any]) -> bool:
    """Whether a row with scope columns lies inside ``scope`` (the rule the RLS policies apply)."""
    if scope.platform:
        return True
    return any(row.get(c) in scope.nodes for c in ("region_id", "province_id", "school_id") if row.get(c))


def own_node(row: Mapping[str, Any]) -> int | None:
    """A job's own tenant node: its most specific scope column (``None`` for a platform job)."""
    for column in ("school_id", "province_id", "region_id"):
        if row.get(column):
            return int(row[column])
    return None


def grants_cover_node(grants: Iterable[Grant], roles: frozenset[str], path: tuple[int, ...] | None) -> bool:
    """Whether a grant of one of ``roles`` lies at the node of ``path`` or above it; ``None`` (a platform job)
    needs a platform grant. A grant below the node (a school's director, a programme's schools) does not count."""
    for grant in grants:
        if grant.role in roles:
            for granted in grant.paths:
                if len(granted) == 1 or (path is not None and granted[-1] in path):
                    return True
    return False


async def _write(db: Database, scope: Scope, sql: str, *args: Any) -> None:
    """Run a statement in the open transaction, or in a scoped one of its own."""
    if db.in_transaction():
        await db.execute(sql, *args)
        return
    async with db.scoped(scope):
        await db.execute(sql, *args)


class JobInfo(msgspec.Struct, kw_only=True):
    """A job row as code sees it."""

    id: str
    kind: str
    status: str
    done: int
    total: int
    message: str
    params: dict[str, Any]
    result: Any
    error: str | None
    created_by: int | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    region_id: int | None
    province_id: int | None
    school_id: int | None

    @property
    def percentage(self) -> int:
        """0–100: ``done / total``, 100 once done."""
        if self.status == "done":
            return 100
        if self.total <= 0:
            return 0
        return max(0, min(100, (self.done * 100) // self.total))

    @property
    def finished(self) -> bool:
        """Whether the job has ended (done or failed)."""
        return self.status in FINISHED


JOB_SELECT = (
    "SELECT id, kind, status, done, total, message, params, result, error, created_by, created_at, started_at, "
    "finished_at, region_id, province_id, school_id FROM job"
)


def _info(row: Mapping[str, Any]) -> JobInfo:
    return JobInfo(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        done=int(row["done"] or 0),
        total=int(row["total"] or 0),
        message=row["message"] or "",
        params=_unjson(row["params"]) or {},
        result=_unjson(row["result"]),
        error=row["error"],
        created_by=row["created_by"],
        created_at=_when(row["created_at"]),
        started_at=_when(row["started_at"]),
        finished_at=_when(row["finished_at"]),
        region_id=row["region_id"],
        province_id=row["province_id"],
        school_id=row["school_id"],
    )


async def get_job(db: Database, scope: Scope, job_id: str) -> JobInfo | None:
    """A job inside ``scope`` (opens a read transaction unless one is open), or ``None``."""
    query = SQL("{} WHERE id = {} AND {}", SQL(JOB_SELECT), job_id, scope_sql(scope))
    if db.in_transaction():
        row = await db.fetchrow(query)
    else:
        async with db.scoped(scope, write=False):
            row = await db.fetchrow(query)
    return _info(row) if row else None


# --------------------------------------------------------------------------- running a job


@dataclass
class JobContext:
    """What a job function receives: the services, its scope, and a progress reporter."""

    id: str
    kind: str
    services: Services
    scope: Scope
    scope_columns: dict[str, int | None]
    created_by: int | None

    @property
    def db(self) -> Database:
        """The application database (open transactions with ``db.scoped(job.scope)``)."""
        return self.services.db

    async def progress(self, done: int, total: int, message: str = "") -> None:
        """Record how far the job got; inside an open transaction it commits with that unit of work."""
        await _write(
            self.db,
            self.scope,
            "UPDATE job SET done = {}, total = {}, message = {} WHERE id = {}",
            int(done),
            int(total),
            str(message)[:1000],
            self.id,
        )


async def run_job(services: Services, job_id: str) -> str:
    """Claim a queued job, run its function and record the outcome; returns the final status.

    Both queues call this. A job that is not ``queued`` any more (claimed by another runner,
    finished) is left alone. Errors end the job ``failed`` with the error text; they are not
    raised to the queue.
    """
    db = services.db
    async with db.scoped(Scope.everything()):
        row = await db.fetchrow(
            "UPDATE job SET status = 'running', started_at = {} WHERE id = {} AND status = 'queued' "
            "RETURNING kind, params, created_by, region_id, province_id, school_id",
            now(),
            job_id,
        )
    if row is None:
        log.warning("job not found or not queued", extra={"job_id": job_id})
        return "missing"
    columns = {c: row[c] for c in ("region_id", "province_id", "school_id")}
    ctx = JobContext(
        id=job_id,
        kind=row["kind"],
        services=services,
        scope=scope_of(columns),
        scope_columns=columns,
        created_by=row["created_by"],
    )
    started = time.perf_counter()
    try:
        fn = job_function(services, row["kind"])
        if fn is None:
            raise LookupError(f"no job function registered as {row['kind']!r}")
        params = _unjson(row["params"]) or {}
        result = await fn(ctx, **params)
        try:
            encoded = _json(result)
        except (TypeError, msgspec.EncodeError):
            encoded = _json(repr(result))
        await _finish(db, ctx, "done", result=encoded)
        log.info(
            "job done",
            extra={"job_id": job_id, "kind": ctx.kind, "seconds": round(time.perf_counter() - started, 3)},
        )
        return "done"
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.shield(_finish(db, ctx, "failed", error="CancelledError: the job was interrupted"))
        raise
    except Exception as exc:
        log.exception("job failed", extra={"job_id": job_id, "kind": ctx.kind})
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        await _finish(db, ctx, "failed", error=error)
        return "failed"


async def _finish(
    db: Database, ctx: JobContext, status: str, *, result: str | None = None, error: str | None = None
) -> None:
    async with db.scoped(ctx.scope):
        await db.execute(
            "UPDATE job SET status = {}, result = {}, error = {}, finished_at = {} WHERE id = {}",
            status,
            result,
            error,
            now(),
            ctx.id,
        )


# --------------------------------------------------------------------------- queues


class JobQueueError(Unavailable):
    """The queue could not accept a job (the job row is marked failed); a 503 for the client unless caught."""

    dependency = "queue"


class JobQueue(ABC):
    """Accepts jobs; subclasses decide where they run."""

    services: Services

    async def enqueue(
        self,
        kind: str,
        params: Mapping[str, Any] | None = None,
        *,
        scope_columns: Mapping[str, int | None],
        created_by: int | None,
        job_id: str | None = None,
    ) -> str:
        """Record a queued job and hand it to the runner; returns its id.

        Call it outside any transaction: the row commits before a worker can look for it.
        ``params`` must be JSON-serialisable keyword arguments of the job function. A given ``job_id`` that is
        already recorded queues nothing (how :mod:`core.schedule` runs a periodic job once per period).
        """
        if job_function(self.services, kind) is None:
            raise LookupError(f"no job function registered as {kind!r}")
        db = self.services.db
        if db.in_transaction():
            raise RuntimeError("enqueue() must be called outside a transaction (the job row commits first)")
        columns = _columns(scope_columns)
        job_id = job_id or str(uuid.uuid4())
        async with db.scoped(scope_of(columns)):
            inserted = await db.fetch(
                "INSERT INTO job (id, kind, params, status, done, total, message, created_by, created_at, "
                "region_id, province_id, school_id) VALUES ({}, {}, {}, 'queued', 0, 0, '', {}, {}, {}, {}, {}) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                job_id,
                kind,
                _json(dict(params or {})),
                created_by,
                now(),
                columns["region_id"],
                columns["province_id"],
                columns["school_id"],
            )
        if not inserted:
            return job_id
        try:
            await self._dispatch(job_id)
        except Exception as exc:
            log.exception("could not dispatch job", extra={"job_id": job_id, "kind": kind})
            async with db.scoped(scope_of(columns)):
                await db.execute(
                    "UPDATE job SET status = 'failed', error = {}, finished_at = {} "
                    "WHERE id = {} AND status = 'queued'",
                    f"queue unavailable: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS],
                    now(),
                    job_id,
                )
            raise JobQueueError(f"the job queue is unavailable: {exc}") from exc
        return job_id

    @abstractmethod
    async def _dispatch(self, job_id: str) -> None:
        """Hand a recorded job to the runner."""

    @abstractmethod
    async def start(self) -> None:
        """Start (lifespan start-up)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop (lifespan shutdown)."""

    async def wait(self, job_id: str, *, seconds: float = 60.0, interval: float = 0.05) -> JobInfo:
        """Poll the ``job`` table until the job ends; :class:`TimeoutError` after ``seconds``."""
        async with asyncio.timeout(seconds):
            while True:
                info = await get_job(self.services.db, Scope.everything(), job_id)
                if info is None:
                    raise LookupError(f"no job {job_id}")
                if info.finished:
                    return info
                await asyncio.sleep(interval)


class InProcessQueue(JobQueue):
    """Jobs as asyncio tasks in this process, ``concurrency`` at a time (the embedded default).

    With ``recover`` (the default), :meth:`start` puts jobs left ``queued`` by a previous run back
    in line and marks those left ``running`` as failed: the process that ran them is gone.
    """

    def __init__(self, services: Services, *, concurrency: int = 2, recover: bool = True) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.services = services
        self.concurrency = concurrency
        self.recover = recover
        self._pending: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._running: set[str] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def _dispatch(self, job_id: str) -> None:
        self._pending.put_nowait(job_id)

    async def start(self) -> None:
        if self._workers:
            return
        if self.recover:
            await self._recover()
        self._workers = [
            asyncio.create_task(self._work(), name=f"madrasa-job-runner-{i}") for i in range(self.concurrency)
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Let running jobs finish for up to ``grace`` seconds, then cancel them (they end ``failed``)."""
        if not self._workers:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    async def _work(self) -> None:
        while True:
            job_id = await self._pending.get()
            self._running.add(job_id)
            self._idle.clear()
            try:
                await run_job(self.services, job_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # run_job records failures itself; this is the database being gone
                log.exception("job runner error", extra={"job_id": job_id})
            finally:
                self._running.discard(job_id)
                if not self._running:
                    self._idle.set()
                self._pending.task_done()

    async def _recover(self) -> None:
        db = self.services.db
        async with db.scoped(Scope.everything()):
            await db.execute(
                "UPDATE job SET status = 'failed', error = {}, finished_at = {} WHERE status = 'running'",
                "interrupted: the process running it stopped",
                now(),
            )
            rows = await db.fetch("SELECT id FROM job WHERE status = 'queued' ORDER BY created_at")
        for row in rows:
            self._pending.put_nowait(row["id"])


class SaqQueue(JobQueue):
    """Jobs in Redis through `saq`; a separate ``madrasa worker`` process runs them."""

    def __init__(
        self,
        services: Services,
        *,
        redis_url: str,
        name: str = "madrasa",
        concurrency: int = 2,
        timeout: int = 3600,
        requeue_interval: float = 60.0,
        dispatch_timeout: float = 5.0,
    ) -> None:
        from saq import Queue

        self.services = services
        self.redis_url = redis_url
        self.name = name
        self.concurrency = concurrency
        self.timeout = timeout
        self.requeue_interval = requeue_interval
        self.dispatch_timeout = dispatch_timeout
        self.queue = Queue.from_url(redis_url, name=name)
        self._connected = False

    async def start(self) -> None:
        if not self._connected:
            await self.queue.connect()
            self._connected = True

    async def stop(self) -> None:
        if self._connected:
            await self.queue.disconnect()
            self._connected = False

    async def _dispatch(self, job_id: str) -> None:
        # Bounded: a Redis that is gone must not hold the request (redis-py retries a lost connection).
        async with asyncio.timeout(self.dispatch_timeout):
            await self.start()
            await self.queue.enqueue(SAQ_FUNCTION, job_id=job_id, key=job_id, timeout=self.timeout, retries=1)

    async def requeue_lost(self) -> int:
        """Hand every job still ``queued`` in the table to Redis again; returns how many were handed.

        Redis keeps the queue, the table keeps the truth: a Redis that restarted empty (or lost its data)
        forgot jobs the table still calls queued. SAQ ignores a job whose key it still holds, and
        :func:`run_job` claims a job once, so handing one twice runs it once. Stops at the first refusal
        (Redis still down) and tries again at the next round.
        """
        async with self.services.db.scoped(Scope.everything(), write=False):
            rows = await self.services.db.fetch("SELECT id FROM job WHERE status = 'queued' ORDER BY created_at")
        handed = 0
        for row in rows:
            try:
                await self._dispatch(row["id"])
            except Exception as exc:
                log.warning("queued jobs not handed to Redis yet: %s: %s", type(exc).__name__, exc)
                break
            handed += 1
        return handed

    async def fail_overdue(self, at: datetime | None = None) -> int:
        """Mark failed the jobs ``running`` for longer than the queue's timeout plus :data:`OVERDUE_MARGIN`
        seconds; returns how many. SAQ cancels a job at its timeout (and :func:`run_job` then records it
        failed), so a row still running after that belongs to a worker that died: several workers share the
        queue, and none can tell whether another is alive, but the clock can."""
        at = at or now()
        async with self.services.db.scoped(Scope.everything()):
            rows = await self.services.db.fetch(
                "UPDATE job SET status = 'failed', error = {}, finished_at = {} "
                "WHERE status = 'running' AND started_at < {} RETURNING id",
                "interrupted: the worker running it stopped",
                at,
                at - timedelta(seconds=self.timeout + OVERDUE_MARGIN),
            )
        if rows:
            log.warning("jobs of a stopped worker marked failed", extra={"count": len(rows)})
        return len(rows)

    async def _requeue_forever(self) -> None:
        while True:
            await asyncio.sleep(self.requeue_interval)
            try:
                await self.requeue_lost()
                await self.fail_overdue()
            except Exception:  # the database is down too: next round
                log.exception("requeueing queued jobs failed")

    def worker(self, *, concurrency: int | None = None, grace: int = 30) -> Worker:
        """A SAQ worker running madrasa jobs with this queue's services (start it with ``await w.start()``);
        ``grace``: seconds a stopping worker waits for its tasks before cancelling them."""
        from saq import Worker

        services = self.services

        async def startup(ctx: dict[str, Any]) -> None:
            ctx["services"] = services
            with contextlib.suppress(Exception):  # logged inside; the loop tries again
                await self.requeue_lost()
                await self.fail_overdue()
            ctx["requeue"] = asyncio.create_task(self._requeue_forever(), name="madrasa-job-requeue")

        async def shutdown(ctx: dict[str, Any]) -> None:
            task = ctx.pop("requeue", None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        return Worker(
            self.queue,
            functions=[(SAQ_FUNCTION, _saq_run)],
            concurrency=concurrency or self.concurrency,
            startup=startup,
            shutdown=shutdown,
            shutdown_grace_period_s=grace,
        )


async def _saq_run(ctx: dict[str, Any], *, job_id: str) -> str:
    """The SAQ function: run one madrasa job by id."""
    return await run_job(ctx["services"], job_id)


def make_queue(services: Services) -> JobQueue:
    """The queue named by the settings (``job_backend``: ``inprocess`` or ``saq``)."""
    settings = services.settings
    backend = getattr(settings, "job_backend", "inprocess")
    concurrency = int(getattr(settings, "job_concurrency", 2))
    if backend == "saq":
        return SaqQueue(
            services,
            redis_url=getattr(settings, "redis_url", "redis://127.0.0.1:6379/0"),
            name=getattr(settings, "job_queue_name", "madrasa"),
            concurrency=concurrency,
            timeout=int(getattr(settings, "job_timeout", 3600)),
            requeue_interval=float(getattr(settings, "job_requeue_seconds", 60)),
        )
    if backend == "inprocess":
        return InProcessQueue(services, concurrency=min(max(concurrency, 1), 2))
    raise ValueError(f"unknown job backend {backend!r}")


def queue_of(services: Services) -> JobQueue:
    """The process's job queue (``services.jobs``)."""
    queue = getattr(services, "jobs", None)
    if queue is None:
        raise RuntimeError("no job queue: set services.jobs (core.jobs.make_queue) and start it in the lifespan")
    return queue


async def run_worker(services: Services) -> None:
    """``madrasa worker``: run SAQ jobs, and enqueue the periodic ones (:mod:`core.schedule`), until SIGINT/SIGTERM."""
    queue = make_queue(services)
    if not isinstance(queue, SaqQueue):
        raise RuntimeError("madrasa worker needs MADRASA_JOB_BACKEND=saq")
    from core.schedule import Scheduler

    services.jobs = queue
    scheduler = Scheduler(services)
    await services.db.start()
    await services.invalidation.start()
    await services.storage.ensure_ready()
    await queue.start()
    await scheduler.start()
    try:
        await queue.worker().start()
    finally:
        await scheduler.stop()
        await queue.stop()
        await services.invalidation.stop()
        await services.db.stop()


# --------------------------------------------------------------------------- API


class JobOut(msgspec.Struct):
    """A job's state for the API."""

    id: str
    kind: str
    status: str
    done: int
    total: int
    percentage: int
    message: str
    result: Any
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


def job_out(info: JobInfo) -> JobOut:
    """The API view of a job."""
    return JobOut(
        id=info.id,
        kind=info.kind,
        status=info.status,
        done=info.done,
        total=info.total,
        percentage=info.percentage,
        message=info.message,
        result=info.result,
        error=info.error,
        created_at=info.created_at,
        started_at=info.started_at,
        finished_at=info.finished_at,
    )


async def visible_job(ctx: RequestContext, job_id: str) -> JobInfo:
    """A job the caller may follow (404 otherwise): every job in scope for managers, one's own for others.

    The API's job status and the portal's progress bars read jobs through this one check.
    """
    if len(job_id) > 64:
        raise NotFoundException("No such job.")
    info = await get_job(ctx.services.db, ctx.scope, job_id)
    if info is None or ctx.person_id is None:
        raise NotFoundException("No such job.")
    if info.created_by != ctx.person_id:
        # Someone else's job: the caller's grants must reach the job's own node (its most specific scope column),
        # not merely a node below it: a region's job is not a school director's or a programme manager's.
        grants = await ctx.services.grants.grants(ctx.person_id)
        roles = ctx.services.permissions.roles_for(ctx.permission) & JOB_ADMIN_ROLES
        row = msgspec.structs.asdict(info)
        node = own_node(row)
        tenant = await ctx.services.tenants.by_id(node) if node is not None else None
        if node is not None and tenant is None:
            raise NotFoundException("No such job.")
        if not covers_row(scope_for(grants, roles, ctx.tenant), row) or not grants_cover_node(
            grants, roles, tenant.path if tenant is not None else None
        ):
            raise NotFoundException("No such job.")
    return info


@get("/api/v1/jobs/{job_id:str}", opt={"permission": "jobs.view"}, tags=["jobs"])
async def job_status(ctx: Ctx, job_id: FromPath[str]) -> JobOut:
    """A background job's status and progress: every job in scope for managers, one's own for others."""
    return job_out(await visible_job(ctx, job_id))


JOB_ROUTES = [job_status]
