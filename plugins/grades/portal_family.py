"""What a child's marks page adds once a term is closed: the results beside the class's, and the report cards.

* :func:`results_view` — per closed term, the pupil's general average, the class's average and the rank,
  and per subject the pupil's average beside the class's (:func:`plugins.grades.results_api.pupil_results`,
  the function the API's ``/api/v1/me/pupils/{id}/results`` calls);
* :func:`bulletins_view` — per closed term, links to the report card in Arabic and French;
* ``/grades/pupils/{id}/bulletins/{term}/{locale}`` — that card with the portal session, rendered on its first
  download and kept in storage (:mod:`plugins.grades.bulletins.cards`, as the API's family download);
* ``/grades/bulletins/{id}`` — a recorded report card's PDF with the portal session, checked as the API's
  download (the pupil, a guardian, the school's staff; 404 for anyone else).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import msgspec
from litestar import Request, get
from litestar.params import FromPath

from core.plugin_api import Ctx, NotFound, RequestContext, Row, Scope
from plugins.grades.bulletins.api import pdf_response
from plugins.grades.bulletins.cards import card_response
from plugins.grades.bulletins.service import bulletin_file
from plugins.grades.marks import fmt_average
from plugins.grades.portal_common import subject_name
from plugins.grades.publication import pupil_versions, tag, version_token
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
            term_id=term["term_id"],
            average=fmt_average(term["average"], locale),
            class_average=fmt_average(term["class_average"], locale),
            rank=term["rank"],
            ranked=term["ranked"],
            subjects=subjects,
        )
    return out


async def page_tag(
    ctx: RequestContext, scope: Scope, student_id: int, people: list[dict[str, Any]], rule: Any, today: date
) -> str:
    """The ``ETag`` of a child's marks page (inside ``db.scoped(scope)``): the publication versions of the
    child's schools, and everything else the page shows — the reader and their session's form token, the
    children they may switch between, the language, the school's branding, the region's rule for absences,
    the day (what is "coming")."""
    versions = await pupil_versions(ctx.services.db, scope, student_id)
    session = ctx.session.csrf_token if ctx.session is not None else ""
    return tag(
        "page",
        student_id,
        ctx.person_id,
        version_token(versions),
        ctx.locale,
        ctx.prefix,
        hashlib.sha256(session.encode()).hexdigest(),
        msgspec.json.encode(people).decode(),
        msgspec.json.encode(ctx.tenant).decode(),
        repr(rule),
        today.isoformat(),
    )


def bulletins_view(ctx: RequestContext, student_id: int, results: dict[int, Row]) -> dict[int, list[Row]]:
    """The report cards of each closed term, in Arabic and French, by term number: links to
    ``/grades/pupils/{id}/bulletins/{term}/{locale}``, which renders a card on its first download."""
    return {
        number: [
            Row(
                locale=code,
                language=name,
                url=ctx.url(f"/grades/pupils/{student_id}/bulletins/{term['term_id']}/{code}"),
            )
            for code, name in BULLETIN_LANGUAGES
        ]
        for number, term in results.items()
    }


@get("/grades/bulletins/{bulletin_id:int}", opt={"permission": "grades.view"}, include_in_schema=False)
async def bulletin_download(ctx: Ctx, bulletin_id: FromPath[int]) -> Any:
    """A report card's PDF with the portal session (the pupil, a guardian, the school's staff)."""
    filename, data = await bulletin_file(ctx, bulletin_id)
    return pdf_response(filename, data)


@get(
    "/grades/pupils/{student_id:int}/bulletins/{term_id:int}/{locale:str}",
    opt={"permission": "family.view"},
    include_in_schema=False,
)
async def family_bulletin_download(
    ctx: Ctx, student_id: FromPath[int], term_id: FromPath[int], locale: FromPath[str], request: Request[Any, Any, Any]
) -> Any:
    """One's child's report card for a closed term with the portal session (as the API's family download)."""
    return await card_response(ctx, request.headers, student_id, term_id, locale)


FAMILY_ROUTES: list[Any] = [bulletin_download, family_bulletin_download]
