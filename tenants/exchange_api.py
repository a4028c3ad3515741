"""OneRoster 1.2 CSV exchange API: export a tenant's rosters as a zip, import a zip (with a dry run)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body

from core.context import Ctx
from tenants.oneroster import service
from tenants.oneroster.importer import ImportReport


class ImportForm(msgspec.Struct):
    """Multipart upload: the bundle (``file``) and ``dry_run`` (``true`` checks and reports without writing)."""

    file: UploadFile
    dry_run: str = "false"


@get(
    "/api/v1/oneroster/export",
    opt={"permission": "school.manage", "bulk_export": "oneroster", "replica": True},
    tags=["oneroster"],
    responses={200: ResponseSpec(None, description="A OneRoster 1.2 CSV bundle (zip)", media_type="application/zip")},
)
async def export_oneroster(ctx: Ctx) -> Response[bytes]:
    """The rosters of this tenant (region, province or school) that you may see, as a OneRoster 1.2 CSV zip."""
    name, data = await service.export_zip(ctx)
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
    )


@post(
    "/api/v1/oneroster/import",
    opt={"permission": "school.manage"},
    tags=["oneroster"],
    status_code=201,
    responses={
        200: ResponseSpec(ImportReport, description="Dry run: the bundle would import; nothing was written."),
        409: ResponseSpec(ImportReport, description="Another import wrote the same rows meanwhile; nothing written."),
        422: ResponseSpec(ImportReport, description="Problems (all listed by file, row and column); nothing written."),
    },
)
async def import_oneroster(
    ctx: Ctx, data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> Response[ImportReport]:
    """Import a OneRoster 1.2 CSV bundle (1.1 read leniently) at this tenant: all of it in one transaction, or nothing.

    Bulk files only. Orgs map onto the tenant tree, academicSessions onto school years and terms,
    courses onto subjects per level, classes onto classes, users and roles onto persons, pupils,
    guardians and memberships, enrollments onto enrolments and teaching assignments, demographics
    onto pupils' birth dates and sex; lineItems and results onto assessments and marks where the
    grades module is on. Importing the same bundle again changes nothing new (sourcedIds are remembered).
    """
    dry_run = service.parse_flag(data.dry_run)
    content = await data.file.read()
    report = await service.import_zip(ctx, content, dry_run=dry_run)
    status = 409 if report.conflict else 422 if not report.ok else 200 if dry_run else 201
    return Response(report, status_code=status)


ROUTES: list[Any] = [export_oneroster, import_oneroster]
