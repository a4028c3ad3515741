"""The portal's page of a background job: where it stands and, when it failed, why."""

from __future__ import annotations

from litestar import get
from litestar.params import FromPath
from litestar.response import Template

from core.context import Ctx
from core.jobs import visible_job
from core.rendering import page


@get("/jobs/{job_id:str}", opt={"permission": "jobs.view"}, include_in_schema=False)
async def job_page(ctx: Ctx, job_id: FromPath[str]) -> Template:
    """A job's status, progress and message; the reason when it failed (the same access as the API)."""
    return page(ctx, "job.html", job=await visible_job(ctx, job_id))


JOB_PAGES = [job_page]
