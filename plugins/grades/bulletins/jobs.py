"""The job ``grades.bulletins``: render a class's (or a school's) bulletins and store them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from core.plugin_api import PDF, Database, JobContext, Scope, StorageError, in_, scope_sql
from plugins.grades.bulletins import fonts
from plugins.grades.bulletins.cards import card_key
from plugins.grades.bulletins.data import gather_bulletins
from plugins.grades.bulletins.model import LOCALES, BulletinData, Locale
from plugins.grades.bulletins.pdf import render_pair
from plugins.grades.publication import school_version

log = logging.getLogger("madrasa.grades.bulletins")

BULLETIN_JOB = "grades.bulletins"


def bulletin_filename(data: BulletinData, locale: Locale) -> str:
    """``S000000001-S1-ar.pdf``."""
    return f"{data.national_code}-S{data.term_number}-{locale}.pdf"


async def _classes_with_results(db: Database, scope: Scope, school_id: int, term_id: int) -> list[int]:
    rows = await db.fetch(
        "SELECT g.class_id, count(*) AS pupils FROM grade_general_result g "
        "WHERE g.school_id = {} AND g.term_id = {} AND {} GROUP BY g.class_id ORDER BY g.class_id",
        school_id,
        term_id,
        scope_sql(scope, "g"),
    )
    return [int(r["class_id"]) for r in rows]


async def _count_pupils(db: Database, scope: Scope, school_id: int, term_id: int, class_ids: list[int]) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM grade_general_result g WHERE g.school_id = {} AND g.term_id = {} "
            "AND g.class_id IN {} AND {}",
            school_id,
            term_id,
            in_(class_ids),
            scope_sql(scope, "g"),
        )
        or 0
    )


def _keys(data: BulletinData, version: int, locales: Sequence[Locale]) -> dict[Locale, str]:
    """A pupil's card keys at a publication version (those :mod:`.cards` serves to families)."""
    return {
        locale: card_key(data.school_id, version, data.student_id, bulletin_filename(data, locale))
        for locale in locales
    }


async def _store(job: JobContext, data: BulletinData, pdfs: dict[Locale, bytes], version: int) -> int:
    """Store one pupil's files and replace their ``grade_bulletin`` rows; returns files written."""
    db, storage = job.db, job.services.storage
    keys = _keys(data, version, list(pdfs))
    # Objects first: a failure below leaves an orphan object, never a row without its file.
    for locale, pdf in pdfs.items():
        await storage.put(keys[locale], pdf, PDF, tenant_id=data.school_id)
    async with db.scoped(job.scope):
        old = await db.fetch(
            "SELECT id, storage_key FROM grade_bulletin WHERE term_id = {} AND student_id = {} "
            "AND school_id = {} AND locale IN {}",
            data.term_id,
            data.student_id,
            data.school_id,
            in_(pdfs),
        )
        if old:
            await db.execute("DELETE FROM grade_bulletin WHERE id IN {}", in_(r["id"] for r in old))
        now = datetime.now(UTC)
        for locale in pdfs:
            await db.execute(
                "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
                "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
                data.region_id,
                data.province_id,
                data.school_id,
                data.term_id,
                data.student_id,
                data.class_id,
                keys[locale],
                locale,
                now,
            )
    for row in old:  # the previous files, once nothing points at them (a key written again stays)
        if row["storage_key"] in keys.values():
            continue
        try:
            await storage.delete(row["storage_key"], tenant_id=data.school_id)
        except StorageError:
            log.warning("old bulletin not deleted", extra={"key": row["storage_key"]})
    return len(pdfs)


async def _recorded_keys(db: Database, scope: Scope, class_id: int, term_id: int) -> set[str]:
    """The storage keys of a class's recorded cards for a term."""
    rows = await db.fetch(
        "SELECT b.storage_key FROM grade_bulletin b WHERE b.class_id = {} AND b.term_id = {} AND {}",
        class_id,
        term_id,
        scope_sql(scope, "b"),
    )
    return {r["storage_key"] for r in rows}


async def _logo(job: JobContext, school_id: int) -> bytes | None:
    tenant = await job.services.tenants.by_id(school_id)
    if tenant is None or not tenant.logo_key:
        return None
    try:
        return await job.services.storage.get(tenant.logo_key, tenant_id=school_id)
    except StorageError:
        return None


async def bulletins_job(
    job: JobContext, *, school_id: int, term_id: int, class_id: int | None = None, locales: Sequence[str] = LOCALES
) -> dict[str, Any]:
    """Render and store the bulletins of a class (or every class of the school with results) that are missing.

    A pupil whose cards at the school's publication version are recorded already (the job ran, or the
    family downloaded them) is counted and left alone; ``files`` counts the files written.
    Progress counts pupils; each pupil's files and rows commit together. Rendering runs in a
    thread, overlapped with storing the previous pupil, so the event loop stays free.
    """
    chosen = tuple(loc for loc in LOCALES if loc in set(locales)) or LOCALES
    settings = job.services.settings
    fonts.FONTS.configure(settings.font_dir, settings.font_cache)
    db = job.db
    async with db.scoped(job.scope, write=False):
        class_ids = (
            [class_id] if class_id is not None else await _classes_with_results(db, job.scope, school_id, term_id)
        )
        total = await _count_pupils(db, job.scope, school_id, term_id, class_ids)
        version = await school_version(db, job.scope, school_id)
    await job.progress(0, total, "starting")
    logo = await _logo(job, school_id)
    issued = datetime.now(UTC).date()
    done = files = 0
    for cid in class_ids:
        async with db.scoped(job.scope, write=False):
            items = await gather_bulletins(db, job.scope, cid, term_id)
            recorded = await _recorded_keys(db, job.scope, cid, term_id)
        items = [
            msgspec.structs.replace(item, logo=logo, issued_on=issued) for item in items if item.school_id == school_id
        ]
        for data in [d for d in items if set(_keys(d, version, chosen).values()) <= recorded]:
            items.remove(data)
            done += 1
            await job.progress(done, total, f"{data.class_name}: {data.national_code}")
        pending: asyncio.Task[dict[Locale, bytes]] | None = None
        try:
            for index, data in enumerate(items):
                if pending is None:
                    pending = asyncio.create_task(asyncio.to_thread(render_pair, data, chosen))
                pdfs = await pending
                pending = (
                    asyncio.create_task(asyncio.to_thread(render_pair, items[index + 1], chosen))
                    if index + 1 < len(items)
                    else None
                )
                files += await _store(job, data, pdfs, version)
                done += 1
                await job.progress(done, total, f"{data.class_name}: {data.national_code}")
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
    return {"pupils": done, "files": files, "classes": len(class_ids), "locales": list(chosen)}


def jobs() -> dict[str, Any]:
    """The bulletins' jobs by name, for the plugin's ``madrasa_jobs`` hook."""
    return {BULLETIN_JOB: bulletins_job}
