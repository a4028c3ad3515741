"""The bulletins API: ask for a class's or school's bulletins (202 with the job), list and download them.

Staff of the school, the pupil and the pupil's guardians may read a bulletin; 404 for anyone else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from core.plugin_api import PDF, Ctx, school
from plugins.grades.bulletins import cards, service

# =========================================================================== API


class BulletinRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which bulletins to generate: a class, or the whole school when ``class_id`` is null."""

    term_id: int
    class_id: int | None = None


class JobAccepted(msgspec.Struct):
    """A background job was queued; follow it at ``url``."""

    job_id: str
    url: str


class BulletinOut(msgspec.Struct):
    """A generated bulletin."""

    id: int
    student_id: int
    class_id: int
    term_id: int
    locale: str
    created_at: datetime | None
    url: str


@post("/api/v1/grades/bulletins", opt={"permission": "grades.validate"}, status_code=202, tags=["grades"])
async def generate_bulletins(ctx: Ctx, data: JSONBody[BulletinRequest]) -> JobAccepted:
    """Generate the bulletins of a class (or of the whole school) in the background."""
    tenant = school.require_school(ctx)
    job_id = await service.request_bulletins(ctx, tenant, data.term_id, data.class_id)
    return JobAccepted(job_id, ctx.url(f"/api/v1/jobs/{job_id}"))


def _out(ctx: Any, row: dict[str, Any]) -> BulletinOut:
    return BulletinOut(
        row["id"],
        row["student_id"],
        row["class_id"],
        row["term_id"],
        row["locale"],
        row["created_at"],
        ctx.url(f"/api/v1/grades/bulletins/{row['id']}"),
    )


@get("/api/v1/grades/bulletins", opt={"permission": "grades.view", "replica": True}, tags=["grades"])
async def list_bulletins(
    ctx: Ctx,
    student_id: FromQuery[int | None] = None,
    term_id: FromQuery[int | None] = None,
    class_id: FromQuery[int | None] = None,
) -> list[BulletinOut]:
    """Bulletins the caller may read: a school's for its staff, their own or their children's for families."""
    rows = await service.readable_bulletins(ctx, student_id=student_id, term_id=term_id, class_id=class_id)
    return [_out(ctx, row) for row in rows]


@get("/api/v1/grades/bulletins/{bulletin_id:int}", opt={"permission": "grades.view"}, tags=["grades"], media_type=PDF)
async def download_bulletin(ctx: Ctx, bulletin_id: FromPath[int]) -> Response[bytes]:
    """The bulletin PDF: for the school's staff, the pupil and the pupil's guardians; 404 for anyone else."""
    filename, data = await service.bulletin_file(ctx, bulletin_id)
    return pdf_response(filename, data)


@get(
    "/api/v1/me/pupils/{student_id:int}/bulletins/{term_id:int}/{locale:str}",
    opt={"permission": "family.view"},
    tags=["grades"],
    media_type=PDF,
)
async def family_bulletin(
    ctx: Ctx, student_id: FromPath[int], term_id: FromPath[int], locale: FromPath[str], request: Request[Any, Any, Any]
) -> Response[bytes]:
    """One's child's (or one's own) report card for a closed term, in ``ar`` or ``fr``: rendered on the first
    download at the school's publication version, then served from storage; ``ETag`` (304 when held)."""
    return await cards.card_response(ctx, request.headers, student_id, term_id, locale)


def pdf_response(filename: str, data: bytes) -> Response[bytes]:
    """A bulletin as an attachment, never cached (the API's and the portal's downloads)."""
    return Response(
        data,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


BULLETIN_ROUTES = [generate_bulletins, list_bulletins, download_bulletin, family_bulletin]
