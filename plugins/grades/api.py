"""Grades API: assessments, the mark grid with ETag/If-Match, the workflow, and family reads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody

from core.plugin_api import SQL, Ctx, NotFound, RequestContext, school, scope_sql
from plugins.grades import publication, results_cache, service


class AssessmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """Schedule an assessment."""

    class_id: int
    subject_code: Annotated[str, msgspec.Meta(max_length=16)]
    term_id: int
    scheduled_on: date
    kind: Literal["cc", "exam", "activity"] = "cc"
    title: Annotated[str, msgspec.Meta(max_length=100)] = ""
    max_score: Annotated[float, msgspec.Meta(gt=0, le=100)] = 20.0
    weight: Annotated[float, msgspec.Meta(gt=0, le=10)] = 1.0


class GridIn(msgspec.Struct, forbid_unknown_fields=True):
    """A whole grid: every mark sent is saved, atomically."""

    marks: Annotated[list[service.MarkEntry], msgspec.Meta(max_length=200)]
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class AssessmentOut(msgspec.Struct):
    """An assessment."""

    id: int
    sheet_id: int
    class_id: int
    subject_code: str
    term_id: int
    kind: str
    position: int
    title: str
    scheduled_on: date
    max_score: float
    weight: float
    state: str


class Created(msgspec.Struct):
    """What was created."""

    id: int


def _assessment_out(r: dict[str, Any]) -> AssessmentOut:
    return AssessmentOut(
        r["id"],
        r["sheet_id"],
        r["class_id"],
        r["subject_code"],
        r["term_id"],
        r["kind"],
        r["position"],
        r["title"],
        r["scheduled_on"],
        float(r["max_score"]),
        float(r["weight"]),
        r["state"],
    )


def _grid_response(payload: dict[str, Any], status: int = 200) -> Response[dict[str, Any]]:
    return Response(
        payload,
        status_code=status,
        headers={"ETag": service.etag(payload["assessment_id"], payload["version"]), "Cache-Control": "no-store"},
    )


class GradesController(Controller):
    """``/api/v1/grades``: teachers and directors."""

    path = "/api/v1/grades"
    tags = ["grades"]

    @post("/assessments", opt={"permission": "grades.enter"}, status_code=201)
    async def schedule(self, ctx: Ctx, data: JSONBody[AssessmentIn]) -> Created:
        """Schedule a continuous assessment or an exam for a class and subject."""
        school.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope):
            return Created(
                await service.create_assessment(
                    ctx,
                    class_id=data.class_id,
                    subject_code=data.subject_code,
                    term_id=data.term_id,
                    kind=data.kind,
                    title=data.title,
                    scheduled_on=data.scheduled_on,
                    max_score=Decimal(str(data.max_score)),
                    weight=Decimal(str(data.weight)),
                )
            )

    @get("/assessments", opt={"permission": "grades.view"})
    async def assessments(
        self,
        ctx: Ctx,
        class_id: FromQuery[int],
        subject_code: FromQuery[str | None] = None,
        term_id: FromQuery[int | None] = None,
    ) -> list[AssessmentOut]:
        """A class's assessments (optionally one subject or term)."""
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            await school.get_class(ctx, class_id)
            where = SQL("a.class_id = {}", class_id) & scope_sql(ctx.scope, "a")
            if subject_code:
                where = where & SQL("a.subject_code = {}", subject_code)
            if term_id:
                where = where & SQL("a.term_id = {}", term_id)
            rows = await db.fetch(
                "SELECT {} FROM grade_assessment a JOIN grade_sheet s ON s.id = a.sheet_id "
                "WHERE {} ORDER BY a.scheduled_on, a.id",
                service.ASSESSMENT_COLUMNS,
                where,
            )
        return [_assessment_out(r) for r in rows]

    @get("/assessments/{assessment_id:int}/marks", opt={"permission": "grades.enter"})
    async def get_grid(self, ctx: Ctx, assessment_id: FromPath[int]) -> Response[dict[str, Any]]:
        """The class's grid for an assessment, with its ``ETag``."""
        async with ctx.services.db.scoped(ctx.scope, write=False):
            assessment = await service.get_assessment(ctx, assessment_id)
            return _grid_response(await service.grid_payload(ctx, assessment))

    @put("/assessments/{assessment_id:int}/marks", opt={"permission": "grades.enter"})
    async def save_grid(
        self, ctx: Ctx, assessment_id: FromPath[int], data: JSONBody[GridIn], request: Request[Any, Any, Any]
    ) -> Response[dict[str, Any]]:
        """Save the grid atomically; ``If-Match`` must carry the ETag read (409 with the current marks if stale)."""
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            assessment = await service.get_assessment(ctx, assessment_id)
            version = service.parse_etag(request.headers.get("if-match"), assessment_id)
            await service.save_grid(ctx, assessment, version, data.marks, data.reason)
            fresh = await service.get_assessment(ctx, assessment_id)
            payload = await service.grid_payload(ctx, fresh)
        return _grid_response(payload)

    @get("/sheets", opt={"permission": "grades.view"})
    async def sheets(
        self, ctx: Ctx, class_id: FromQuery[int], term_id: FromQuery[int | None] = None
    ) -> list[dict[str, Any]]:
        """The subjects' sheets of a class and their workflow state."""
        db = ctx.services.db
        async with db.scoped(ctx.scope, write=False):
            await school.get_class(ctx, class_id)
            where = SQL("class_id = {}", class_id) & scope_sql(ctx.scope)
            if term_id:
                where = where & SQL("term_id = {}", term_id)
            return await db.fetch(
                "SELECT id, class_id, subject_code, term_id, teacher_id, state FROM grade_sheet "
                "WHERE {} ORDER BY subject_code",
                where,
            )

    @post("/sheets/{sheet_id:int}/{action:str}", opt={"permission": "grades.enter"}, status_code=200)
    async def move(self, ctx: Ctx, sheet_id: FromPath[int], action: FromPath[str]) -> dict[str, Any]:
        """Workflow: ``submit`` (teacher), ``validate``, ``publish`` and ``reopen`` (director)."""
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            sheet = await service.get_sheet(ctx, sheet_id)
            state, events = await service.transition(ctx, sheet, action)
        await ctx.services.emit(events)
        return {"id": sheet_id, "state": state}

    @get("/missing", opt={"permission": "grades.validate"})
    async def missing(self, ctx: Ctx, term_id: FromQuery[int]) -> list[dict[str, Any]]:
        """Director's dashboard: per class and subject, assessments held and marks still missing."""
        tenant = school.require_school(ctx)
        async with ctx.services.db.scoped(ctx.scope, write=False):
            rows = await service.missing_marks(ctx, tenant.id, term_id)
            limit = await service.deadline(ctx.services.db, tenant.region_id, term_id)
        return [{**r, "deadline": limit.isoformat() if limit else None} for r in rows]


async def _family_scope(ctx: RequestContext) -> Any:
    return await ctx.scope_everywhere("family.view")


async def _child(ctx: RequestContext, scope: Any, student_id: int) -> dict[str, Any]:
    """The pupil if the caller is the pupil or one of their guardians (one query); 404 otherwise."""
    assert ctx.person_id is not None
    row = await ctx.services.db.fetchrow(
        "SELECT s.id, s.school_id, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, e.class_id "
        "FROM student s LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "WHERE s.id = {} AND (s.person_id = {} OR EXISTS (SELECT 1 FROM guardianship g "
        "WHERE g.student_id = s.id AND g.person_id = {})) AND {}",
        student_id,
        ctx.person_id,
        ctx.person_id,
        scope_sql(scope, "s"),
    )
    if row is None:
        raise NotFound("No such pupil.")
    return row


async def family_marks(db: Any, scope: Any, student_id: int) -> list[dict[str, Any]]:
    """A pupil's published marks as the API gives them (numbers as floats)."""
    rows = await service.published_marks(db, scope, [student_id])
    return [
        {
            **r,
            "score": None if r["score"] is None else float(r["score"]),
            "max_score": float(r["max_score"]),
            "weight": float(r["weight"]),
        }
        for r in rows
    ]


class FamilyGradesController(Controller):
    """``/api/v1/me/…/marks``: published marks and upcoming assessments for pupils and their guardians."""

    path = "/api/v1/me"
    tags = ["grades"]

    @get(
        "/pupils/{student_id:int}/marks",
        opt={"permission": "family.view", "replica": True},
        media_type="application/json",
        responses={
            200: ResponseSpec(
                list[dict[str, Any]], generate_examples=False, description="The published marks by subject."
            ),
            304: ResponseSpec(None, description="Not modified: the ETag sent in If-None-Match is current."),
        },
    )
    async def marks(self, ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[bytes]:
        """Published marks of one's child (or oneself), by subject; ``ETag`` of the publication (304 when held)."""
        scope = await _family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            await _child(ctx, scope, student_id)
            versions = await publication.pupil_versions(db, scope, student_id)
            etag = publication.tag("marks", student_id, ctx.person_id, publication.version_token(versions))
            if publication.not_modified(request.headers, etag):
                return results_cache.not_modified_response(etag)
            body = await results_cache.payload(
                ctx, "marks", student_id, versions, lambda: family_marks(db, scope, student_id)
            )
        return results_cache.json_response(body, etag)

    @get("/pupils/{student_id:int}/assessments", opt={"permission": "family.view", "replica": True})
    async def coming(self, ctx: Ctx, student_id: FromPath[int]) -> list[dict[str, Any]]:
        """Assessments coming for one's child (or oneself)."""
        scope = await _family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            child = await _child(ctx, scope, student_id)
            if not child.get("class_id"):
                return []
            return await service.upcoming(db, scope, [child["class_id"]], date.today())


GRADES_ROUTES: list[Any] = [GradesController, FamilyGradesController]
