"""Semester close and results: averages with coefficients, ranks, class statistics, annual averages."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery

from core.plugin_api import Ctx, Forbidden, NotFound, RequestContext, school, scope_sql
from plugins.grades import publication, results_cache, service
from plugins.grades.api import _child, _family_scope
from plugins.grades.calc import annual_average
from plugins.grades.close import close_school_term, compute_results


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def _results(
    ctx: RequestContext, scope: Any, class_id: int, term_id: int, student_ids: list[int] | None = None
) -> dict[str, Any]:
    """A class's computed results for a term (all pupils, or some)."""
    db = ctx.services.db
    pupils = await db.fetch(
        "SELECT g.student_id, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, "
        "g.average, g.rank, g.ranked FROM grade_general_result g JOIN student s ON s.id = g.student_id "
        "WHERE g.class_id = {} AND g.term_id = {} AND {} ORDER BY g.rank, s.last_name",
        class_id,
        term_id,
        scope_sql(scope, "g"),
    )
    if student_ids is not None:
        pupils = [p for p in pupils if p["student_id"] in student_ids]
    subjects = await db.fetch(
        "SELECT r.student_id, r.subject_code, sub.name_fr, sub.name_ar, r.average, r.coefficient "
        "FROM grade_subject_result r JOIN subject sub ON sub.code = r.subject_code "
        "WHERE r.class_id = {} AND r.term_id = {} AND {} ORDER BY r.subject_code",
        class_id,
        term_id,
        scope_sql(scope, "r"),
    )
    stats = await db.fetch(
        "SELECT c.subject_code, c.count, c.mean, c.median, c.minimum, c.maximum, c.pass_share, c.distribution "
        "FROM grade_class_stats c WHERE c.class_id = {} AND c.term_id = {} AND {} ORDER BY c.subject_code",
        class_id,
        term_id,
        scope_sql(scope, "c"),
    )
    by_pupil: dict[int, list[dict[str, Any]]] = {}
    for row in subjects:
        by_pupil.setdefault(row["student_id"], []).append(
            {
                "subject_code": row["subject_code"],
                "subject_fr": row["name_fr"],
                "subject_ar": row["name_ar"],
                "average": _f(row["average"]),
                "coefficient": _f(row["coefficient"]),
            }
        )
    return {
        "class_id": class_id,
        "term_id": term_id,
        "pupils": [
            {
                "student_id": p["student_id"],
                "national_code": p["national_code"],
                "name": f"{p['last_name']} {p['first_name']}",
                "name_ar": f"{p['last_name_ar']} {p['first_name_ar']}",
                "average": _f(p["average"]),
                "rank": p["rank"],
                "ranked": p["ranked"],
                "subjects": by_pupil.get(p["student_id"], []),
            }
            for p in pupils
        ],
        "statistics": [
            {
                "subject_code": s["subject_code"] or None,
                "count": s["count"],
                "mean": _f(s["mean"]),
                "median": _f(s["median"]),
                "minimum": _f(s["minimum"]),
                "maximum": _f(s["maximum"]),
                "pass_share": None if s["pass_share"] is None else round(float(s["pass_share"]), 4),
                "distribution": s["distribution"] if isinstance(s["distribution"], list) else _json(s["distribution"]),
            }
            for s in stats
        ],
    }


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str | bytes) else value


class ResultsController(Controller):
    """``/api/v1/grades``: closing a term and reading results."""

    path = "/api/v1/grades"
    tags = ["grades"]

    @post("/terms/{term_id:int}/close", opt={"permission": "grades.validate"}, status_code=200)
    async def close(self, ctx: Ctx, term_id: FromPath[int]) -> dict[str, Any]:
        """Close the school's term: compute averages, ranks and statistics, and lock the marks."""
        stats = await close_school_term(ctx, term_id)
        return {
            "term_id": term_id,
            "pupils": stats.general_results,
            "ranked": stats.ranked,
            "subject_results": stats.subject_results,
            "seconds": round(stats.seconds, 3),
        }

    @post("/terms/{term_id:int}/preview", opt={"permission": "grades.validate"}, status_code=200)
    async def preview(self, ctx: Ctx, term_id: FromPath[int]) -> dict[str, Any]:
        """Compute the results now without locking anything (a closed term keeps its results)."""
        tenant = school.require_school(ctx)
        db = ctx.services.db
        async with db.scoped(ctx.scope):
            await service.school_term(db, tenant.region_id, term_id)
            if await service.is_closed(db, tenant.id, term_id):
                raise service.Closed("The term is closed; its results are final.")
            stats = await compute_results(db, school_ids=[tenant.id], term_id=term_id)
        return {"term_id": term_id, "pupils": stats.general_results, "seconds": round(stats.seconds, 3)}

    @get("/classes/{class_id:int}/results", opt={"permission": "grades.view", "replica": True})
    async def class_results(self, ctx: Ctx, class_id: FromPath[int], term_id: FromQuery[int]) -> dict[str, Any]:
        """A class's averages, ranks and statistics (its teachers and the school's management)."""
        async with ctx.services.db.scoped(ctx.scope, write=False):
            await school.get_class(ctx, class_id)
            if not service.is_director(ctx):
                assert ctx.person_id is not None
                mine = await school.teacher_classes(ctx.services.db, ctx.scope, ctx.person_id)
                if not any(c["id"] == class_id for c in mine):
                    raise Forbidden("You do not teach this class.")
            return await _results(ctx, ctx.scope, class_id, term_id)


async def pupil_results(ctx: RequestContext, scope: Any, student_id: int) -> dict[str, Any]:
    """A pupil's results per closed term, with the class averages and the rank (as the bulletin shows them).

    Inside ``db.scoped(scope)``; 404 for someone not the caller's child (or themselves) and before any close.
    """
    db = ctx.services.db
    await _child(ctx, scope, student_id)
    terms = await db.fetch(
        "SELECT g.term_id, g.class_id, t.number FROM grade_general_result g JOIN term t ON t.id = g.term_id "
        "JOIN grade_term_close k ON k.term_id = g.term_id AND k.school_id = g.school_id "
        "WHERE g.student_id = {} AND {} ORDER BY t.number",
        student_id,
        scope_sql(scope, "g"),
    )
    if not terms:
        raise NotFound("No closed term yet.")
    out = []
    for term in terms:
        data = await _results(ctx, scope, term["class_id"], term["term_id"], [student_id])
        pupil = data["pupils"][0] if data["pupils"] else None
        means = {s["subject_code"]: s["mean"] for s in data["statistics"]}
        out.append(
            {
                "term_id": term["term_id"],
                "term": term["number"],
                "class_id": term["class_id"],
                "average": pupil and pupil["average"],
                "class_average": means.get(None),
                "rank": pupil and pupil["rank"],
                "ranked": pupil and pupil["ranked"],
                "subjects": [
                    {**subject, "class_average": means.get(subject["subject_code"])}
                    for subject in (pupil["subjects"] if pupil else [])
                ],
            }
        )
    annual = annual_average([t["average"] for t in out])
    return {"student_id": student_id, "terms": out, "annual_average": _f(annual)}


class FamilyResultsController(Controller):
    """``/api/v1/me/pupils/{id}/results``: a pupil's averages and rank, once the term is closed."""

    path = "/api/v1/me"
    tags = ["grades"]

    @get(
        "/pupils/{student_id:int}/results",
        opt={"permission": "family.view", "replica": True},
        media_type="application/json",
        responses={
            200: ResponseSpec(
                dict[str, Any], description="The closed terms' averages and ranks, and the annual average."
            ),
            304: ResponseSpec(None, description="Not modified: the ETag sent in If-None-Match is current."),
        },
    )
    async def results(self, ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Response[bytes]:
        """Per closed term: subject averages with coefficients and class averages, general average and the
        class's, rank; and the annual average. ``ETag`` of the publication (304 when held)."""
        scope = await _family_scope(ctx)
        db = ctx.services.db
        async with db.scoped(scope, write=False):
            await _child(ctx, scope, student_id)
            versions = await publication.pupil_versions(db, scope, student_id)
            etag = publication.tag("results", student_id, ctx.person_id, publication.version_token(versions))
            if publication.not_modified(request.headers, etag):
                return results_cache.not_modified_response(etag)
            body = await results_cache.payload(
                ctx, "results", student_id, versions, lambda: pupil_results(ctx, scope, student_id)
            )
        return results_cache.json_response(body, etag)


RESULTS_ROUTES = [ResultsController, FamilyResultsController]
