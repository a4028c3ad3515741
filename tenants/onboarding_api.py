"""Onboarding API (``/t/<region>/api/v1/onboarding/…``): upload, preview, errors, commit, one school, invitations.

Uploads have their own size cap (``settings.onboarding_max_bytes``, ``MADRASA_ONBOARDING_MAX_BYTES``,
larger than the general one): a body declaring more is refused before it is read
(:func:`refuse_oversize`), and the file itself is measured again before it is read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Stream

from core.context import Ctx
from core.errors import NotFound, TooLarge
from core.permissions import PUBLIC
from tenants import onboarding
from tenants.onboarding import BatchOut, Report

PERMISSION = "tenants.manage"
#: Room for the multipart envelope around the file.
ENVELOPE_BYTES = 1024 * 1024
#: The upload routes lift the framework's general body cap: :func:`refuse_oversize` applies the
#: deployment's ``onboarding_max_bytes`` (known only once settings are loaded) instead.
BODY_LIMIT = None


async def refuse_oversize(request: Request[Any, Any, Any]) -> None:
    """Refuse an upload whose declared length exceeds ``settings.onboarding_max_bytes`` (before it is read)."""
    limit = request.app.state.services.settings.onboarding_max_bytes
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        raise HTTPException(status_code=411, detail="An upload must declare its length (Content-Length).")
    if int(declared) > limit + ENVELOPE_BYTES:
        raise TooLarge("The file is larger than {limit} MiB: split it.", limit=limit // 2**20)


Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Text200 = Annotated[str, msgspec.Meta(max_length=200)]


class UploadForm(msgspec.Struct):
    """Multipart: ``kind`` (schools, staff or students) and the CSV or XLSX ``file``."""

    file: UploadFile
    kind: str = ""


class CommitOut(msgspec.Struct):
    """A commit: the batch, and the job that writes it when the file is large."""

    batch: BatchOut
    job_id: str | None = None
    job_url: str | None = None


class SchoolIn(msgspec.Struct, forbid_unknown_fields=True):
    """One school: its code, names, cycle, province (code or slug) and address."""

    code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    name_ar: Text200
    name_fr: Text200
    cycle: Annotated[str, msgspec.Meta(max_length=40)]
    province: Slug
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""
    name_en: Text200 = ""
    slug: Annotated[str, msgspec.Meta(max_length=80)] = ""


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Invite a school's director."""

    school: Slug
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    full_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    full_name_ar: Text200 = ""
    locale: Literal["ar", "fr", "en"] = "fr"


class InvitationOut(msgspec.Struct):
    """The invited person."""

    person_id: int
    email: str
    school: str


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    """Use an invitation: the token from the link and a new password."""

    token: Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


@post(
    "/api/v1/onboarding/batches",
    opt={"permission": PERMISSION},
    tags=["onboarding"],
    status_code=201,
    request_max_body_size=BODY_LIMIT,
    before_request=refuse_oversize,
    responses={
        202: ResponseSpec(BatchOut, description="A large file: a job checks it; follow the batch or its job."),
        422: ResponseSpec(BatchOut, description="The file has errors (all counted); nothing was written."),
    },
)
async def upload_batch(
    ctx: Ctx, data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> Response[BatchOut]:
    """Upload a schools, staff or pupils file (CSV UTF-8 or XLSX) and get its validation report.

    Nothing but the batch is written; ``POST …/batches/{id}/commit`` writes a batch that validated.
    Schools: ``code, name_ar, name_fr, cycle, province, address`` (``name_en``, ``slug`` optional).
    Staff: ``school, email, full_name, role`` (``full_name_ar, staff_number, locale``).
    Pupils: ``school, national_code, last_name, first_name`` (``last_name_ar, first_name_ar, birth_date,
    gender, class, guardian1_email, guardian1_name, guardian1_name_ar, guardian1_relation``, and guardian2_…).
    A large file (more than 2,000 rows, or an XLSX file over 256 KiB) is checked by a background job:
    202 with the batch ``validating`` and its ``job_id`` (``GET /api/v1/jobs/{job_id}`` shows progress).
    Every error carries a stable ``code``; the first 500 are listed, and ``GET …/batches/{id}/errors.csv``
    gives them all.
    """
    actor = onboarding.actor_of(ctx)
    try:
        if data.kind not in onboarding.KINDS:
            raise onboarding.Invalid("kind", "must be one of {kinds}", kinds=", ".join(onboarding.KINDS))
        batch = await onboarding.upload(actor, data.kind, data.file.filename or "file", data.file.file)
    finally:
        await data.file.close()
    status = {"ready": 201, "validating": 202}.get(batch.status, 422)
    return Response(batch, status_code=status)


@get("/api/v1/onboarding/batches", opt={"permission": PERMISSION}, tags=["onboarding"])
async def list_batches(ctx: Ctx) -> list[BatchOut]:
    """The region's latest onboarding batches."""
    return await onboarding.list_batches(onboarding.actor_of(ctx))


@get("/api/v1/onboarding/batches/{batch_id:str}", opt={"permission": PERMISSION}, tags=["onboarding"])
async def get_batch(ctx: Ctx, batch_id: FromPath[str]) -> BatchOut:
    """A batch with its report (and, once committed, what was written)."""
    return await onboarding.get_batch(onboarding.actor_of(ctx), batch_id)


@get(
    "/api/v1/onboarding/batches/{batch_id:str}/errors.csv",
    opt={"permission": PERMISSION, "bulk_export": "onboarding.errors"},
    tags=["onboarding"],
    media_type="text/csv; charset=utf-8",
)
async def batch_errors(ctx: Ctx, batch_id: FromPath[str]) -> Stream:
    """Every error of a batch as CSV (``row, column, value, code, message``), not only the 500 listed."""
    chunks = await onboarding.errors_csv(onboarding.actor_of(ctx), batch_id, ctx.locale)
    return errors_response(chunks, batch_id)


def errors_response(chunks: Any, batch_id: str) -> Stream:
    """A streamed CSV download of a batch's errors."""
    name = f"onboarding-errors-{batch_id[:8]}.csv"
    return Stream(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


@post(
    "/api/v1/onboarding/batches/{batch_id:str}/commit",
    opt={"permission": PERMISSION},
    tags=["onboarding"],
    status_code=200,
    responses={202: ResponseSpec(CommitOut, description="A large file: a job writes it; follow job_url.")},
)
async def commit_batch(ctx: Ctx, batch_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[CommitOut]:
    """Write a batch that validated, all or nothing (validated again first); 422 if it no longer validates."""
    actor = onboarding.actor_of(ctx)
    if len(batch_id) > 64:
        raise NotFound("No such onboarding batch.")
    batch, queued = await onboarding.start_commit(actor, batch_id)
    if queued:
        url = ctx.url(f"/api/v1/jobs/{batch.job_id}")
        return Response(CommitOut(batch, batch.job_id, url), status_code=202)
    return Response(CommitOut(batch), status_code=200 if batch.status == "committed" else 422)


@post(
    "/api/v1/onboarding/schools",
    opt={"permission": PERMISSION},
    tags=["onboarding"],
    status_code=201,
    responses={422: ResponseSpec(Report, description="The school is invalid (every error listed); nothing written.")},
)
async def add_school(ctx: Ctx, data: JSONBody[SchoolIn]) -> Response[Report]:
    """Onboard one school into a province of the region (the same checks as a file)."""
    actor = onboarding.actor_of(ctx)
    try:
        report = await onboarding.add_school(actor, msgspec.structs.asdict(data))
    except onboarding.RolledBack as exc:
        return Response(exc.report, status_code=422)
    return Response(report, status_code=201 if report.created.get("schools") else 200)


@post("/api/v1/onboarding/invitations", opt={"permission": PERMISSION}, tags=["onboarding"], status_code=201)
async def invite_director(ctx: Ctx, data: JSONBody[InvitationIn], request: Request[Any, Any, Any]) -> InvitationOut:
    """Make someone director of a school of the region and e-mail them a one-time link (valid 7 days)."""
    actor = onboarding.actor_of(ctx)
    school = await ctx.services.tenants.by_slug(data.school)
    if school is None or not ctx.scope.covers(school.path):
        raise NotFound("No school {school} in this region.", school=repr(data.school))
    person_id = await onboarding.invite(
        actor,
        school,
        email=data.email,
        full_name=data.full_name,
        full_name_ar=data.full_name_ar,
        locale=data.locale,
    )
    return InvitationOut(person_id, data.email.strip().lower(), school.slug)


@post("/api/v1/onboarding/invitations/accept", opt={"permission": PUBLIC}, tags=["onboarding"], status_code=200)
async def accept_invitation(ctx: Ctx, data: JSONBody[AcceptIn]) -> dict[str, str]:
    """Set one's password with an invitation link's token (once, before it expires)."""
    await onboarding.accept_invitation(ctx.services, data.token, data.password)
    return {"status": "Password set; you can log in."}


ROUTES: list[Any] = [
    upload_batch,
    list_batches,
    get_batch,
    batch_errors,
    commit_batch,
    add_school,
    invite_director,
    accept_invitation,
]
