"""Onboarding pages (``/t/<region>/admin/onboarding/…``): upload, preview, commit with progress, invitations.

The pages call the same service as the API (:mod:`tenants.onboarding`); forms carry the session's
CSRF token; a failed form re-renders with its errors next to the fields (status 400/413/422).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.errors import Invalid, NotFound
from core.i18n import gettext_
from core.paging import paginate
from core.permissions import PUBLIC
from core.rendering import page
from tenants import onboarding
from tenants import service as tenant_service
from tenants.onboarding_api import BODY_LIMIT, errors_response, refuse_oversize
from tenants.onboarding_rows import translated

PERMISSION = "tenants.manage"
KIND_LABELS = {"schools": "Schools", "staff": "Staff", "students": "Pupils and guardians"}
CYCLES = (("primaire", "Primary school"), ("college", "Middle school"), ("lycee", "High school"))
#: Messages of the pages' own forms (message ids; the templates and handlers translate them).
NODE_MESSAGES = {
    "slug_taken": "This identifier is already taken: {value}",
    "code_taken": "This code is already taken: {value}",
    "slug": "Identifier: lower-case letters, digits and dashes, 1–80 characters.",
    "name_fr": "The name in French is required.",
    "other": "The node could not be created: check the fields.",
}
PASSWORDS_DIFFER = "The two passwords differ."
WEAK_PASSWORD = "Choose a stronger password: at least 10 characters, mixing letters with digits or symbols."
INVALID_LINK = "This invitation link is invalid, expired or already used."


def _batch_page(
    ctx: RequestContext, batch: onboarding.BatchOut, status: int = 200, problem: str = "", number: Any = None
) -> Any:
    errors = paginate(batch.report.errors, number, ctx.url(f"/admin/onboarding/batches/{batch.id}"))
    return page(
        ctx,
        "admin/onboarding_batch.html",
        status=status,
        batch=batch,
        errors=errors,
        kinds=KIND_LABELS,
        problem=problem,
        error_text=translated,
        listed=onboarding.MAX_LISTED_ERRORS,
    )


def _node_error(exc: HTTPException, values: dict[str, str]) -> str:
    """The translated reason a region or province could not be created."""
    field = getattr(exc, "field", None) or next(
        (e.get("key") for e in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(e, dict)), None
    )
    if exc.status_code == 409 and field in ("slug", "code"):
        return gettext_(NODE_MESSAGES[f"{field}_taken"], value=values[field])
    if field in ("slug", "name_fr"):
        return gettext_(NODE_MESSAGES[field])
    return gettext_(NODE_MESSAGES["other"])


def _text(form: Any, name: str, limit: int = 300) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _regions(ctx: RequestContext) -> list[Any]:
    rows = await ctx.services.db.fetch("SELECT id FROM tenant WHERE kind = 'region' ORDER BY name_fr")
    out = []
    for r in rows:
        node = await ctx.services.tenants.by_id(r["id"])
        if node is not None and ctx.scope.covers(node.path):
            out.append(node)
    return out


async def _index(ctx: RequestContext, status: int = 200, **values: Any) -> Any:
    tenant = ctx.tenant
    if tenant is None or tenant.kind != "region":
        return page(
            ctx,
            "admin/onboarding_regions.html",
            status=status,
            regions=await _regions(ctx),
            platform=ctx.scope.platform,
            **values,
        )
    actor = onboarding.actor_of(ctx)
    provinces = [
        r
        for r in await ctx.services.db.fetch(
            "SELECT id, slug, code, name_fr, name_ar, name_en FROM tenant WHERE kind = 'province' AND parent_id = {} "
            "ORDER BY name_fr",
            tenant.id,
        )
    ]
    schools = await ctx.services.db.fetch(
        "SELECT slug, code, name_fr, name_ar, name_en FROM tenant WHERE kind = 'school' AND path LIKE {} "
        "ORDER BY name_fr",
        "/".join(str(p) for p in tenant.path) + "/%",
    )
    return page(
        ctx,
        "admin/onboarding.html",
        status=status,
        region=tenant,
        batches=await onboarding.list_batches(actor, 20),
        provinces=provinces,
        schools=schools,
        kinds=KIND_LABELS,
        cycles=CYCLES,
        max_bytes=ctx.services.settings.onboarding_max_bytes,
        **values,
    )


@get("/admin/onboarding/", opt={"permission": PERMISSION}, include_in_schema=False, name="onboarding-home")
async def onboarding_home(ctx: Ctx) -> Any:
    """The region's onboarding: upload a file, add one school, invite a director, recent batches."""
    return await _index(ctx)


@post(
    "/admin/onboarding/upload",
    opt={"permission": PERMISSION},
    include_in_schema=False,
    status_code=303,
    request_max_body_size=BODY_LIMIT,
)
async def upload_file(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Upload a file (read as a stream from the spooled upload) and go to its preview."""
    actor = onboarding.actor_of(ctx)
    try:
        await refuse_oversize(request)  # before the body is read
    except onboarding.TooLarge:
        return await _index(ctx, status=413, upload_errors={"file": "The file is too large: split it."})
    form = await request.form()
    kind = _text(form, "kind", 20)
    upload = form.get("file")
    field_errors: dict[str, str] = {}
    if kind not in onboarding.KINDS:
        field_errors["kind"] = "Choose what the file contains."
    if not isinstance(upload, UploadFile) or not upload.filename:
        field_errors["file"] = "Choose a CSV or XLSX file."
    if field_errors:
        return await _index(ctx, status=400, upload_errors=field_errors, chosen_kind=kind)
    assert isinstance(upload, UploadFile)
    try:
        batch = await onboarding.upload(actor, kind, upload.filename, upload.file)
    except onboarding.TooLarge:
        return await _index(
            ctx, status=413, upload_errors={"file": "The file is too large: split it."}, chosen_kind=kind
        )
    finally:
        await upload.close()
    return Redirect(ctx.url(f"/admin/onboarding/batches/{batch.id}"), status_code=303)


@get("/admin/onboarding/batches/{batch_id:str}", opt={"permission": PERMISSION}, include_in_schema=False)
async def batch_page(
    ctx: Ctx, batch_id: FromPath[str], number: Annotated[str | None, Parameter(query="page")] = None
) -> Any:
    """The preview: counts, every error by row and column (paged), the first rows and what will happen to them."""
    batch = await onboarding.get_batch(onboarding.actor_of(ctx), batch_id)
    return _batch_page(ctx, batch, number=number)


@get(
    "/admin/onboarding/batches/{batch_id:str}/errors.csv",
    opt={"permission": PERMISSION, "bulk_export": "onboarding.errors"},
    include_in_schema=False,
    media_type="text/csv; charset=utf-8",
)
async def batch_errors(ctx: Ctx, batch_id: FromPath[str]) -> Any:
    """Every error of the batch as a CSV file, messages in the page's language."""
    chunks = await onboarding.errors_csv(onboarding.actor_of(ctx), batch_id, ctx.locale)
    return errors_response(chunks, batch_id)


@get("/admin/onboarding/batches/{batch_id:str}/progress", opt={"permission": PERMISSION}, include_in_schema=False)
async def batch_progress(ctx: Ctx, batch_id: FromPath[str]) -> Any:
    """The progress fragment HTMX polls while a large file is written."""
    actor = onboarding.actor_of(ctx)
    batch = await onboarding.get_batch(actor, batch_id)
    job = None
    if batch.job_id:
        from core.jobs import get_job

        job = await get_job(ctx.services.db, ctx.scope, batch.job_id)
    return page(ctx, "admin/onboarding_progress.html", batch=batch, job=job)


@post(
    "/admin/onboarding/batches/{batch_id:str}/commit",
    opt={"permission": PERMISSION},
    include_in_schema=False,
    status_code=303,
)
async def batch_commit(ctx: Ctx, batch_id: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Write the batch (or start the job that writes it), then show it."""
    actor = onboarding.actor_of(ctx)
    try:
        await onboarding.start_commit(actor, batch_id)
    except onboarding.Conflict as exc:
        batch = await onboarding.get_batch(actor, batch_id)
        return _batch_page(ctx, batch, 409, gettext_(exc.msgid, **exc.params))
    return Redirect(ctx.url(f"/admin/onboarding/batches/{batch_id}"), status_code=303)


@post("/admin/onboarding/schools", opt={"permission": PERMISSION}, include_in_schema=False, status_code=200)
async def add_school(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Add one school to a province of the region."""
    actor = onboarding.actor_of(ctx)
    form = await request.form()
    fields = {
        name: _text(form, name)
        for name in ("code", "name_ar", "name_fr", "name_en", "cycle", "province", "address", "slug")
    }
    try:
        report = await onboarding.add_school(actor, fields)
    except onboarding.RolledBack as exc:
        school_errors = {e.column: translated(e) for e in exc.report.errors}
        return await _index(ctx, status=422, school_errors=school_errors, school_form=fields)
    done = "created" if report.created.get("schools") else "unchanged"
    return await _index(ctx, school_notice=done, school_form={})


@post("/admin/onboarding/invitations", opt={"permission": PERMISSION}, include_in_schema=False, status_code=200)
async def invite(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Invite a director by e-mail."""
    actor = onboarding.actor_of(ctx)
    form = await request.form()
    values = {n: _text(form, n, 254) for n in ("school", "email", "full_name", "full_name_ar", "locale")}
    errors: dict[str, str] = {}
    school = await ctx.services.tenants.by_slug(values["school"]) if values["school"] else None
    if school is None or school.kind != "school" or not ctx.scope.covers(school.path):
        errors["school"] = "Choose a school of this region."
    if not onboarding.EMAIL_RE.match(values["email"]):
        errors["email"] = "Enter an e-mail address."
    if not values["full_name"]:
        errors["full_name"] = "Required."
    if values["locale"] not in ("ar", "fr", "en"):
        values["locale"] = "fr"
    if errors:
        return await _index(ctx, status=400, invite_errors=errors, invite_form=values)
    assert school is not None
    await onboarding.invite(
        actor,
        school,
        email=values["email"],
        full_name=values["full_name"],
        full_name_ar=values["full_name_ar"],
        locale=values["locale"],
    )
    return await _index(ctx, invite_notice=values["email"])


@post("/admin/onboarding/nodes", opt={"permission": PERMISSION}, include_in_schema=False, status_code=200)
async def add_node(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Create a region (platform administrators, outside any region) or a province (inside a region)."""
    form = await request.form()
    parent = ctx.tenant if ctx.tenant is not None and ctx.tenant.kind == "region" else None
    if parent is None:
        if not ctx.scope.platform:
            raise NotFound("Regions are created by the platform administrators.")
        parent = await ctx.services.tenants.root()
    kind = "province" if parent.kind == "region" else "region"
    values = {n: _text(form, n, 200) for n in ("slug", "code", "name_fr", "name_ar", "name_en")}
    try:
        if not values["name_fr"]:
            raise Invalid("name_fr", "required")
        async with ctx.services.db.scoped(ctx.scope):
            await tenant_service.create_node(
                ctx,
                parent,
                kind=kind,
                slug=values["slug"].lower(),
                code=values["code"] or None,
                name_ar=values["name_ar"],
                name_fr=values["name_fr"],
                name_en=values["name_en"],
                default_locale=parent.default_locale,
            )
    except HTTPException as exc:
        return await _index(ctx, status=exc.status_code, node_error=_node_error(exc, values), node_form=values)
    return await _index(ctx, node_notice=values["slug"])


@get("/onboarding/invitations/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False)
async def invitation_page(ctx: Ctx, token: FromPath[str]) -> Any:
    """The invited person chooses a password (the link works once, for 7 days)."""
    row = await onboarding.invitation_for(ctx.services, token)
    return page(
        ctx, "admin/onboarding_invitation.html", status=200 if row else 404, invitation=row, token=token, done=False
    )


@post("/onboarding/invitations/{token:str}", opt={"permission": PUBLIC}, include_in_schema=False, status_code=200)
async def invitation_accept(ctx: Ctx, token: FromPath[str], request: Request[Any, Any, Any]) -> Any:
    """Set the password; afterwards the link no longer works."""
    form = await request.form()
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    confirm = form.get("confirm") if isinstance(form.get("confirm"), str) else ""
    row = await onboarding.invitation_for(ctx.services, token)
    if row is None:
        return page(ctx, "admin/onboarding_invitation.html", status=404, invitation=None, token=token, done=False)
    if password != confirm:
        error = gettext_(PASSWORDS_DIFFER)
    else:
        try:
            await onboarding.accept_invitation(ctx.services, token, str(password))
        except onboarding.Invalid as exc:
            error = gettext_(WEAK_PASSWORD if exc.field == "password" else INVALID_LINK)
        else:
            return page(ctx, "admin/onboarding_invitation.html", invitation=row, token=token, done=True)
    return page(
        ctx, "admin/onboarding_invitation.html", status=400, invitation=row, token=token, done=False, error=error
    )


ROUTES: list[Any] = [
    onboarding_home,
    upload_file,
    batch_page,
    batch_errors,
    batch_progress,
    batch_commit,
    add_school,
    invite,
    add_node,
    invitation_page,
    invitation_accept,
]
