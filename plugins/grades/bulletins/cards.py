"""A family's report card, rendered on its first download and kept in storage for the next ones.

:func:`family_card` serves the report card of one pupil, closed term and language to the pupil or a
guardian (404 for anyone else, and before the term is closed for the pupil's school). Its storage key
holds the school's publication version (:func:`card_key`): the first download at a version renders
the card, stores it and records its ``grade_bulletin`` row (replacing the rows of earlier versions,
whose files are then deleted); later downloads read the stored file. A publication, a correction or
a re-computation bumps the version, so the next download renders a new card. The class job
(:mod:`plugins.grades.bulletins.jobs`) writes the same keys, so a card it made is served as is.

The ``ETag`` of a card is derived from its key: a browser that holds the card gets ``304`` after the
access check, without storage being read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Response

from core.plugin_api import PDF, NotFound, ObjectNotFound, RequestContext, Scope, StorageError, in_, scope_sql
from plugins.grades.api import _child
from plugins.grades.bulletins import fonts
from plugins.grades.bulletins.data import gather_bulletins
from plugins.grades.bulletins.model import LOCALES
from plugins.grades.bulletins.pdf import render_bulletin
from plugins.grades.publication import not_modified, school_version, tag, validator_headers

log = logging.getLogger("madrasa.grades.bulletins")


def card_key(school_id: int, version: int, student_id: int, filename: str) -> str:
    """``t/<school>/bulletins/v<version>/<pupil>/<file>``: a card's storage key at a publication version."""
    return f"t/{int(school_id)}/bulletins/v{int(version)}/{int(student_id)}/{filename}"


def card_filename(national_code: str, term_number: int, locale: str) -> str:
    """``S000000001-S1-ar.pdf`` (as :func:`plugins.grades.bulletins.jobs.bulletin_filename`)."""
    return f"{national_code}-S{term_number}-{locale}.pdf"


@dataclass
class Card:
    """Where a family's card is, whether it is stored already, and its ``ETag``."""

    student_id: int
    term_id: int
    locale: str
    school_id: int
    class_id: int
    version: int
    key: str
    etag: str
    stored: bool

    @property
    def filename(self) -> str:
        """The file name the download carries."""
        return self.key.rsplit("/", 1)[-1]


async def locate_card(ctx: RequestContext, scope: Scope, student_id: int, term_id: int, locale: str) -> Card:
    """The card of a pupil the caller may read (inside ``db.scoped(scope)``); 404 otherwise or before the close."""
    if locale not in LOCALES:
        raise NotFound("No such report card.")
    db = ctx.services.db
    await _child(ctx, scope, student_id)
    row = await db.fetchrow(
        "SELECT g.school_id, g.class_id, t.number, s.national_code FROM grade_general_result g "
        "JOIN grade_term_close k ON k.term_id = g.term_id AND k.school_id = g.school_id "
        "JOIN term t ON t.id = g.term_id JOIN student s ON s.id = g.student_id "
        "WHERE g.student_id = {} AND g.term_id = {} AND {}",
        student_id,
        term_id,
        scope_sql(scope, "g"),
    )
    if row is None:
        raise NotFound("No report card for this term yet.")
    version = await school_version(db, scope, row["school_id"])
    key = card_key(row["school_id"], version, student_id, card_filename(row["national_code"], row["number"], locale))
    stored = await db.fetchval(
        "SELECT b.id FROM grade_bulletin b WHERE b.student_id = {} AND b.term_id = {} AND b.locale = {} "
        "AND b.storage_key = {} AND {}",
        student_id,
        term_id,
        locale,
        key,
        scope_sql(scope, "b"),
    )
    return Card(
        student_id=student_id,
        term_id=term_id,
        locale=locale,
        school_id=int(row["school_id"]),
        class_id=int(row["class_id"]),
        version=version,
        key=key,
        etag=tag("card", key),
        stored=stored is not None,
    )


async def card_bytes(ctx: RequestContext, scope: Scope, card: Card) -> bytes:
    """The card's PDF: the stored file, else rendered now, stored and recorded."""
    storage = ctx.services.storage
    if card.stored:
        try:
            return await storage.get(card.key, tenant_id=card.school_id)
        except ObjectNotFound:
            log.warning("stored report card missing; rendering it again", extra={"key": card.key})
    return await _render_and_store(ctx, scope, card)


async def _render_and_store(ctx: RequestContext, scope: Scope, card: Card) -> bytes:
    svc = ctx.services
    db = svc.db
    async with db.scoped(scope, write=False):
        items = await gather_bulletins(db, scope, card.class_id, card.term_id, student_id=card.student_id)
    if not items:
        raise NotFound("No report card for this term yet.")
    fonts.FONTS.configure(svc.settings.font_dir, svc.settings.font_cache)
    data = msgspec.structs.replace(items[0], logo=await _logo(ctx, card.school_id), issued_on=datetime.now(UTC).date())
    pdf = await asyncio.to_thread(render_bulletin, data, card.locale)  # type: ignore[arg-type]
    # The object first: a failure below leaves an orphan object, never a row without its file.
    await svc.storage.put(card.key, pdf, PDF, tenant_id=card.school_id)
    async with db.scoped(scope):
        if db.dialect == "postgres":  # two first downloads of one pupil's card record it once
            await db.execute("SELECT pg_advisory_xact_lock(hashtext('grades.card'), {})", card.student_id)
        rows = await db.fetch(
            "SELECT b.id, b.storage_key FROM grade_bulletin b WHERE b.student_id = {} AND b.term_id = {} "
            "AND b.locale = {} AND b.school_id = {} AND {}",
            card.student_id,
            card.term_id,
            card.locale,
            card.school_id,
            scope_sql(scope, "b"),
        )
        recorded = {r["storage_key"] for r in rows}
        stale = await school_version(db, scope, card.school_id) != card.version
        # Published again while this card was rendered: serve it this once and change no row (the next
        # download renders the new version's card).
        old = [] if stale else [r for r in rows if r["storage_key"] != card.key]
        if old:
            await db.execute("DELETE FROM grade_bulletin WHERE id IN {}", in_(r["id"] for r in old))
        if not stale and card.key not in recorded:
            await db.execute(
                "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
                "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
                data.region_id,
                data.province_id,
                card.school_id,
                card.term_id,
                card.student_id,
                card.class_id,
                card.key,
                card.locale,
                datetime.now(UTC),
            )
    if stale and card.key not in recorded:  # the object just written, which no row points at
        old = [{"storage_key": card.key}]
    for row in old:  # the earlier versions' files, once nothing points at them (or this stale one)
        try:
            await svc.storage.delete(row["storage_key"], tenant_id=card.school_id)
        except StorageError:
            log.warning("old report card not deleted", extra={"key": row["storage_key"]})
    return pdf


async def _logo(ctx: RequestContext, school_id: int) -> bytes | None:
    tenant = await ctx.services.tenants.by_id(school_id)
    if tenant is None or not tenant.logo_key:
        return None
    try:
        return await ctx.services.storage.get(tenant.logo_key, tenant_id=school_id)
    except StorageError:
        return None


async def card_response(
    ctx: RequestContext, headers: Any, student_id: int, term_id: int, locale: str
) -> Response[bytes]:
    """The API's and the portal's family download: 304 when the browser holds this card, else the PDF."""
    scope = await ctx.scope_everywhere("family.view")
    async with ctx.services.db.scoped(scope, write=False):
        card = await locate_card(ctx, scope, student_id, term_id, locale)
    if not_modified(headers, card.etag):
        return Response(b"", status_code=304, headers=validator_headers(card.etag))
    data = await card_bytes(ctx, scope, card)
    return Response(
        data,
        media_type=PDF,
        headers={
            **validator_headers(card.etag),
            "Content-Disposition": f'attachment; filename="{card.filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
