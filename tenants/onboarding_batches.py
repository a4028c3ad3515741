"""Onboarding batches: a file uploaded, validated, stored, then committed — all or nothing.

:func:`upload` reads the file as a stream, validates it, stores it (in parts, so no more than one
part is ever in memory) and records an ``onboarding_batch`` with its report (nothing else is
written; a large file is validated by a background job with progress, :func:`run_validation`);
every error is kept in a stored error file (:func:`errors_csv`), the first 500 in the report.
:func:`start_commit` claims a batch that validated (or one whose committing worker died) and
:func:`run_commit` validates it again and, when every row is still valid, writes it in one scoped
transaction (inline for small files, as a background job with progress for large ones).
Re-running a file creates nothing new: rows already present and identical are counted as
``unchanged``; rows that contradict what exists are errors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from typing import IO, Any

import msgspec

from core import audit
from core.csv_cells import csv_cell
from core.db import scope_sql
from core.errors import Conflict, Invalid, NotFound, TooLarge
from core.i18n import locale_var
from core.identity import Identity
from core.jobs import JobContext, register_job
from core.school import guardians
from core.school.pupil_rows import FILE
from core.sql import SQL
from core.storage import build_key
from tenants.onboarding_context import (
    INLINE_ROWS,
    INLINE_XLSX_BYTES,
    JOB_KIND,
    STALE_CLAIM,
    VALIDATE_JOB_KIND,
    Actor,
    BatchOut,
    Progress,
    Report,
    now,
)
from tenants.onboarding_files import count_lines
from tenants.onboarding_invitations import invite_directors
from tenants.onboarding_pupils import students
from tenants.onboarding_rows import KINDS, CellError, problem, translated
from tenants.onboarding_schools import schools
from tenants.onboarding_staff import staff

#: Named as before the split, so that operators' log filters keep working.
logger = logging.getLogger("tenants.onboarding")
#: Files are stored in parts of this size, so no more than one part is ever held in memory.
PART_BYTES = 8 * 1024 * 1024

RUNNERS = {"schools": schools, "students": students, "staff": staff}
BATCH_COLUMNS = SQL(
    "id, kind, filename, file_key, file_bytes, file_format, sha256, status, rows, error_count, errors_key, "
    "errors_bytes, report, job_id, created_by, created_at, claimed_at, committed_at, region_id"
)


def batch_out(row: dict[str, Any]) -> BatchOut:
    """The API view of a batch row."""
    report = row["report"]
    if isinstance(report, str | bytes):
        report = msgspec.json.decode(report, type=Report)
    else:
        report = msgspec.convert(report, Report)
    return BatchOut(
        id=row["id"],
        kind=row["kind"],
        filename=row["filename"],
        file_format=row["file_format"],
        status=row["status"],
        rows=int(row["rows"] or 0),
        error_count=int(row["error_count"] or 0),
        job_id=row["job_id"],
        created_at=row["created_at"],
        committed_at=row["committed_at"],
        report=report,
    )


async def validate_stream(
    actor: Actor,
    kind: str,
    stream: IO[bytes],
    *,
    write: bool,
    progress: Progress | None = None,
    errors_sink: IO[bytes] | None = None,
) -> Report:
    """Validate (and with ``write``, commit) a file inside the caller's scoped transaction.

    With ``errors_sink``, every error (not only the listed ones) is written there, one JSON object a line.
    """
    return await RUNNERS[kind](actor, stream, write=write, progress=progress, sink=errors_sink)


# -- files in storage ----------------------------------------------------------------------------


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


async def _store(actor: Actor, name: str, stream: IO[bytes]) -> tuple[str, int]:
    """Store a file in parts of :data:`PART_BYTES` (never more than one part in memory); its key and size."""
    storage, tenant = actor.services.storage, actor.region.id
    key = build_key(tenant, "onboarding", name)
    stream.seek(0)
    size, part = 0, 0
    while chunk := stream.read(PART_BYTES):
        await storage.put(f"{key}.{part:05d}", chunk, "application/octet-stream", tenant_id=tenant)
        size += len(chunk)
        part += 1
    stream.seek(0)
    return key, size


async def _load(actor: Actor, key: str, size: int, into: IO[bytes]) -> None:
    """Copy a stored file, part by part, into a local file (left at its start)."""
    storage, tenant = actor.services.storage, actor.region.id
    for part in range(-(-size // PART_BYTES)):
        into.write(await storage.get(f"{key}.{part:05d}", tenant_id=tenant))
    into.seek(0)


def _digest(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


async def upload(actor: Actor, kind: str, filename: str, file: bytes | IO[bytes]) -> BatchOut:
    """Validate a file, store it and record the batch with its report; nothing else is written.

    ``file`` is read as a stream (a spooled upload stays on disk); every error goes to a stored
    error file that :func:`errors_csv` serves.
    """
    if kind not in KINDS:
        raise Invalid("kind", "must be one of {kinds}", kinds=", ".join(KINDS))
    stream: IO[bytes] = io.BytesIO(file) if isinstance(file, bytes) else file
    size = _size(stream)
    limit = actor.max_bytes
    if size > limit:
        raise TooLarge("The file is larger than {limit} MiB: split it.", limit=limit // 2**20)
    db = actor.db
    fmt = "xlsx" if stream.read(4) == b"PK\x03\x04" else "csv"
    stream.seek(0)
    sha = _digest(stream)
    batch_id = str(uuid.uuid4())
    large = size > INLINE_XLSX_BYTES if fmt == "xlsx" else count_lines(stream) > INLINE_ROWS
    if large and actor.services.jobs is not None:
        return await _queue_validation(actor, batch_id, kind, filename, fmt, sha, stream)
    with tempfile.TemporaryFile() as sink:
        async with db.scoped(actor.scope):
            report = await validate_stream(actor, kind, stream, write=False, errors_sink=sink)
        key, stored = await _store(actor, f"file.{fmt}", stream) if report.ok else ("", 0)
        errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink) if report.error_count else ("", 0)
    status = "ready" if report.ok else "invalid"
    async with db.scoped(actor.scope):
        await db.execute(
            "INSERT INTO onboarding_batch (id, kind, filename, file_key, file_bytes, file_format, sha256, status, "
            "rows, error_count, errors_key, errors_bytes, report, job_id, created_by, created_at, region_id) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, {}, {}, {})",
            batch_id,
            kind,
            (filename or "file")[:200],
            key,
            stored,
            fmt,
            sha,
            status,
            report.rows,
            report.error_count,
            errors_key,
            errors_bytes,
            msgspec.json.encode(report).decode(),
            actor.person_id,
            now(),
            actor.region.id,
        )
        row = await _batch_row(actor, batch_id)
    return batch_out(row)


async def _queue_validation(
    actor: Actor, batch_id: str, kind: str, filename: str, fmt: str, sha: str, stream: IO[bytes]
) -> BatchOut:
    """Store a large file and record its batch as ``validating``; a job previews it with progress."""
    db = actor.db
    key, stored = await _store(actor, f"file.{fmt}", stream)
    pending = Report(ok=False, kind=kind)
    async with db.scoped(actor.scope):
        await db.execute(
            "INSERT INTO onboarding_batch (id, kind, filename, file_key, file_bytes, file_format, sha256, status, "
            "rows, error_count, errors_key, errors_bytes, report, job_id, created_by, created_at, claimed_at, "
            "region_id) VALUES ({}, {}, {}, {}, {}, {}, {}, 'validating', 0, 0, '', 0, {}, NULL, {}, {}, {}, {})",
            batch_id,
            kind,
            (filename or "file")[:200],
            key,
            stored,
            fmt,
            sha,
            msgspec.json.encode(pending).decode(),
            actor.person_id,
            now(),
            now(),
            actor.region.id,
        )
    return await _queue_batch_job(
        actor, VALIDATE_JOB_KIND, batch_id, SQL("DELETE FROM onboarding_batch WHERE id = {}", batch_id)
    )


async def run_validation(actor: Actor, batch_id: str, progress: Progress | None = None) -> Report:
    """Preview a stored file (a ``validating`` batch): validate it, keep every error, record the report."""
    db = actor.db
    async with db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    if row["status"] != "validating":
        return batch_out(row).report
    errors_key, errors_bytes = "", 0
    try:
        with tempfile.TemporaryFile() as local, tempfile.TemporaryFile() as sink:
            await _load(actor, row["file_key"], int(row["file_bytes"] or 0), local)
            async with db.scoped(actor.scope):
                report = await validate_stream(
                    actor, row["kind"], local, write=False, progress=progress, errors_sink=sink
                )
            if report.error_count:
                errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink)
    except Exception:
        logger.exception("onboarding preview of batch %s failed", batch_id)
        report = Report(ok=False, kind=row["kind"], error_count=1, errors=[problem(0, FILE, "", "preview_failed")])
    async with db.scoped(actor.scope):
        await db.execute(
            "UPDATE onboarding_batch SET status = {}, rows = {}, report = {}, error_count = {}, errors_key = {}, "
            "errors_bytes = {} WHERE id = {} AND status = 'validating'",
            "ready" if report.ok else "invalid",
            report.rows,
            msgspec.json.encode(report).decode(),
            report.error_count,
            errors_key,
            errors_bytes,
            batch_id,
        )
    return report


async def _batch_row(actor: Actor, batch_id: str) -> dict[str, Any]:
    row = await actor.db.fetchrow(
        SQL(
            "SELECT {} FROM onboarding_batch WHERE id = {} AND region_id = {} AND {}",
            BATCH_COLUMNS,
            batch_id,
            actor.region.id,
            scope_sql(actor.scope),
        )
    )
    if row is None:
        raise NotFound("No such onboarding batch.")
    return row


async def get_batch(actor: Actor, batch_id: str) -> BatchOut:
    """A batch of the actor's region, or 404."""
    if len(batch_id) > 64:
        raise NotFound("No such onboarding batch.")
    async with actor.db.scoped(actor.scope, write=False):
        return batch_out(await _batch_row(actor, batch_id))


async def list_batches(actor: Actor, limit: int = 50) -> list[BatchOut]:
    """The region's latest batches."""
    async with actor.db.scoped(actor.scope, write=False):
        rows = await actor.db.fetch(
            SQL(
                "SELECT {} FROM onboarding_batch WHERE region_id = {} AND {} ORDER BY created_at DESC LIMIT {}",
                BATCH_COLUMNS,
                actor.region.id,
                scope_sql(actor.scope),
                int(limit),
            )
        )
    return [batch_out(r) for r in rows]


ERRORS_CSV_HEADER = ("row", "column", "value", "code", "message")


async def errors_csv(actor: Actor, batch_id: str, locale: str) -> AsyncIterator[bytes]:
    """Every error of a batch as CSV (UTF-8 with BOM), messages in ``locale``; read part by part."""
    if len(batch_id) > 64:
        raise NotFound("No such onboarding batch.")
    async with actor.db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    listed = batch_out(row).report.errors
    key, size = row["errors_key"] or "", int(row["errors_bytes"] or 0)
    storage, tenant = actor.services.storage, actor.region.id
    decode = msgspec.json.Decoder(CellError).decode

    def lines(errors: list[CellError]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for e in errors:
            writer.writerow([e.row, e.column, csv_cell(e.value), e.code, csv_cell(translated(e))])
        return buffer.getvalue().encode()

    async def chunks() -> AsyncIterator[bytes]:
        locale_var.set(locale)
        buffer = io.StringIO()
        csv.writer(buffer).writerow(ERRORS_CSV_HEADER)
        yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
        if not key:
            yield lines(listed)
            return
        rest = b""
        for part in range(-(-size // PART_BYTES)):
            data = rest + await storage.get(f"{key}.{part:05d}", tenant_id=tenant)
            complete, _, rest = data.rpartition(b"\n")
            if complete:
                yield lines([decode(line) for line in complete.split(b"\n") if line])
        if rest.strip():
            yield lines([decode(rest)])

    return chunks()


async def _queue_batch_job(actor: Actor, kind: str, batch_id: str, undo: SQL) -> BatchOut:
    """Queue a batch's job and record its id; if the queue refuses, ``undo`` runs and the error goes on."""
    db = actor.services.db
    try:
        job_id = await actor.services.jobs.enqueue(
            kind, {"batch_id": batch_id}, scope_columns={"region_id": actor.region.id}, created_by=actor.person_id
        )
    except Exception:
        async with db.scoped(actor.scope):
            await db.execute(undo)
        raise
    async with db.scoped(actor.scope):
        await db.execute("UPDATE onboarding_batch SET job_id = {} WHERE id = {}", job_id, batch_id)
        return batch_out(await _batch_row(actor, batch_id))


async def start_commit(actor: Actor, batch_id: str) -> tuple[BatchOut, bool]:
    """Commit a ready batch: inline when small (returns ``(batch, False)``), else as a job (``True``).

    A batch left ``committing`` for longer than :data:`STALE_CLAIM` (its worker died) may be claimed again.
    """
    db = actor.db
    at = now()
    async with db.scoped(actor.scope):
        row = await _batch_row(actor, batch_id)
        claimed_at = row["claimed_at"]
        stale = row["status"] == "committing" and claimed_at is not None and claimed_at < at - STALE_CLAIM
        if row["status"] == "committing" and not stale:
            raise Conflict("This batch is being committed by someone else.", code="being_committed")
        if row["status"] != "ready" and not stale:
            raise Conflict(
                "This batch is {status}: only a batch that validated can be committed.",
                code="not_ready",
                status=row["status"],
            )
        if stale:
            claimed = await db.fetchrow(
                "UPDATE onboarding_batch SET claimed_at = {}, job_id = NULL WHERE id = {} AND status = 'committing' "
                "AND claimed_at = {} RETURNING id",
                at,
                batch_id,
                row["claimed_at"],
            )
        else:
            claimed = await db.fetchrow(
                "UPDATE onboarding_batch SET status = 'committing', claimed_at = {} WHERE id = {} AND status = 'ready' "
                "RETURNING id",
                at,
                batch_id,
            )
        if claimed is None:
            raise Conflict("This batch is being committed by someone else.", code="being_committed")
    if int(row["rows"] or 0) > INLINE_ROWS and actor.services.jobs is not None:
        undo = SQL("UPDATE onboarding_batch SET status = 'ready' WHERE id = {}", batch_id)
        return await _queue_batch_job(actor, JOB_KIND, batch_id, undo), True
    await run_commit(actor, batch_id)
    return await get_batch(actor, batch_id), False


async def run_commit(actor: Actor, batch_id: str, progress: Progress | None = None) -> Report:
    """Validate the stored file again and write it in one transaction; record the outcome on the batch.

    The file is read back part by part into a local temporary file and validated as a stream.
    """
    db = actor.db
    async with db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    report: Report
    errors_key, errors_bytes = "", 0
    try:
        with tempfile.TemporaryFile() as local, tempfile.TemporaryFile() as sink:
            await _load(actor, row["file_key"], int(row["file_bytes"] or 0), local)
            try:
                async with db.scoped(actor.scope):
                    report = await validate_stream(
                        actor, row["kind"], local, write=True, progress=progress, errors_sink=sink
                    )
                    if not report.ok:
                        raise RolledBack(report)
                    await audit.record(
                        db,
                        actor_id=actor.person_id,
                        action="onboarding.commit",
                        object_type="onboarding_batch",
                        object_id=batch_id,
                        tenant=actor.region,
                        after={"kind": row["kind"], "created": report.created, "unchanged": report.unchanged},
                    )
            except RolledBack as exc:
                report = exc.report
                errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink)
    except Exception:
        logger.exception("onboarding commit of batch %s failed", batch_id)
        report = Report(
            ok=False,
            kind=row["kind"],
            rows=int(row["rows"] or 0),
            error_count=1,
            errors=[problem(0, FILE, "", "commit_failed")],
        )
    async with db.scoped(actor.scope):
        await db.execute(
            "UPDATE onboarding_batch SET status = {}, report = {}, error_count = {}, errors_key = {}, "
            "errors_bytes = {}, committed_at = {} WHERE id = {}",
            "committed" if report.ok else "invalid",
            msgspec.json.encode(report).decode(),
            report.error_count,
            errors_key,
            errors_bytes,
            now() if report.ok else None,
            batch_id,
        )
    if report.ok and actor.new_directors:
        await invite_directors(actor, actor.new_directors)
    if report.ok:
        for pending in actor.guardian_invitations:
            await guardians.send(actor.services, pending)
    return report


class RolledBack(Exception):
    """A validation that found errors inside a write transaction: roll it back, keep the report."""

    def __init__(self, report: Report) -> None:
        super().__init__("rolled back")
        self.report = report


async def _job_actor(job: JobContext) -> Actor:
    """The actor a job runs as: its creator, in its region."""
    region_id = job.scope_columns.get("region_id")
    region = await job.services.tenants.by_id(int(region_id or 0))
    if region is None:
        raise LookupError("the batch's region no longer exists")
    identity = None
    if job.created_by is not None:
        person = await job.db.fetchrow(
            "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE id = {}", job.created_by
        )
        if person is not None:
            identity = Identity(
                person["id"], person["email"], person["full_name"], person["full_name_ar"], person["locale"]
            )
    return Actor(job.services, job.scope, identity, region)


@register_job(JOB_KIND)
async def commit_job(job: JobContext, *, batch_id: str, **_former: Any) -> dict[str, Any]:
    """The background commit of a large batch (progress in the job table).

    Jobs queued by an earlier version also carry ``base_url``, ignored: mailed links come from settings.
    """
    actor = await _job_actor(job)

    async def progress(done: int, total: int, message: str) -> None:
        await _progress_outside(job, done, total, message)

    report = await run_commit(actor, batch_id, progress=progress)
    return {"ok": report.ok, "created": report.created, "unchanged": report.unchanged, "errors": report.error_count}


@register_job(VALIDATE_JOB_KIND)
async def validate_job(job: JobContext, *, batch_id: str) -> dict[str, Any]:
    """The background preview of a large file (progress in the job table)."""
    actor = await _job_actor(job)

    async def progress(done: int, total: int, message: str) -> None:
        await _progress_outside(job, done, total, message)

    report = await run_validation(actor, batch_id, progress=progress)
    return {"ok": report.ok, "rows": report.rows, "errors": report.error_count}


async def _progress_outside(job: JobContext, done: int, total: int, message: str) -> None:
    """Progress written on its own connection, so it shows while the commit's transaction is open."""
    db = job.db
    if db.dialect != "postgres":
        return  # SQLite allows one writer: the commit's transaction; progress is recorded when it ends
    pool = db.engine.pool  # type: ignore[attr-defined]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.scope', $1, true)", ",".join(str(n) for n in job.scope.nodes))
        await conn.execute(
            "UPDATE job SET done = $1, total = $2, message = $3 WHERE id = $4", done, max(total, done), message, job.id
        )


# -- one school ---------------------------------------------------------------------------------


async def add_school(actor: Actor, fields: dict[str, str]) -> Report:
    """Onboard one school (the same checks as a file of one row); written at once when valid."""
    header = list(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerow([fields[h] for h in header])
    data = buffer.getvalue().encode()
    async with actor.db.scoped(actor.scope):
        report = await schools(actor, io.BytesIO(data), write=True, progress=None)
        if not report.ok:
            raise RolledBack(report)
    return report
