"""What a child's marks page adds once a term is closed: the results beside the class's, and the report cards.

* :func:`results_view` — per closed term, the pupil's general average, the class's average and the rank,
  and per subject the pupil's average beside the class's (:func:`plugins.grades.results_api.pupil_results`,
  the function the API's ``/api/v1/me/pupils/{id}/results`` calls);
* :func:`bulletins_view` — the report cards the caller may read, per term, in Arabic and French
  (:func:`plugins.grades.bulletins.service.readable_bulletins`, as the API's list);
* ``/grades/bulletins/{id}`` — a report card's PDF with the portal session, checked as the API's download
  (the pupil, a guardian, the school's staff; 404 for anyone else).
"""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.params import FromPath

from core.plugin_api import Ctx, NotFound, RequestContext, Row, Scope
from plugins.grades.bulletins.api import pdf_response
from plugins.grades.bulletins.service import bulletin_file, readable_bulletins
from plugins.grades.marks import fmt_average
from plugins.grades.portal_common import subject_name
from plugins.grades.results_api import pupil_results

#: Report-card languages in the order the page offers them, with their names (in their own language).
BULLETIN_LANGUAGES = (("ar", "العربية"), ("fr", "Français"))


async def results_view(ctx: RequestContext, scope: Scope, student_id: int) -> dict[int, Row]:
    """Closed terms' results by term number, formatted for the page (inside ``db.scoped(scope)``)."""
    try:
        data = await pupil_results(ctx, scope, student_id)
    except NotFound:
        return {}
    locale = ctx.locale
    out: dict[int, Row] = {}
    for term in data["terms"]:
        subjects = [
            Row(
                code=s["subject_code"],
                name=subject_name(s, locale),
                average=fmt_average(s["average"], locale),
                class_average=fmt_average(s["class_average"], locale),
            )
            for s in term["subjects"]
        ]
        out[int(term["term"])] = Row(
            average=fmt_average(term["average"], locale),
            class_average=fmt_average(term["class_average"], locale),
            rank=term["rank"],
            ranked=term["ranked"],
            subjects=subjects,
        )
    return out


async def bulletins_view(ctx: RequestContext, student_id: int) -> dict[int, list[Row]]:
    """The newest report card per term and language that the caller may read, by term number."""
    rows = await readable_bulletins(ctx, student_id=student_id)
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:  # newest first
        newest.setdefault((int(row["term_number"] or 0), row["locale"]), row)
    out: dict[int, list[Row]] = {}
    for number in sorted({n for n, _ in newest}, reverse=True):
        out[number] = [
            Row(id=row["id"], locale=code, language=name, url=ctx.url(f"/grades/bulletins/{row['id']}"))
            for code, name in BULLETIN_LANGUAGES
            if (row := newest.get((number, code))) is not None
        ]
    return out


@get("/grades/bulletins/{bulletin_id:int}", opt={"permission": "grades.view"}, include_in_schema=False)
async def bulletin_download(ctx: Ctx, bulletin_id: FromPath[int]) -> Any:
    """A report card's PDF with the portal session (the pupil, a guardian, the school's staff)."""
    filename, data = await bulletin_file(ctx, bulletin_id)
    return pdf_response(filename, data)


FAMILY_ROUTES: list[Any] = [bulletin_download]
