"""What the grades pages share: labels, names in the page's language, who may open a sheet, form fields."""

from __future__ import annotations

from typing import Any

from litestar import Request

from core.plugin_api import Forbidden, RequestContext, Scope, gettext_, scope_for
from plugins.grades import service

STATE_LABELS = {"draft": "Draft", "submitted": "Submitted", "validated": "Validated", "published": "Published"}
KIND_LABELS = {"cc": "Continuous assessment", "exam": "Exam", "activity": "Activity"}
#: Workflow buttons: action → (label, confirmation shown after it).
ACTIONS = {
    "submit": ("Submit for validation", "The marks were submitted for validation."),
    "validate": ("Validate", "The marks were validated."),
    "publish": ("Publish", "The marks were published to pupils and parents."),
    "reopen": ("Reopen", "The marks were reopened for entry."),
}
#: Longer messages of the grid (catalogue message ids).
MESSAGES = {
    "stale": "Someone else saved these marks while you were typing. Nothing of yours was saved: "
    "here are the marks saved now. Check them, enter yours again and save.",
    "scheduled": "The assessment was scheduled.",
}


def person_name(row: dict[str, Any], locale: str) -> tuple[str, str | None]:
    """A pupil's name in the page's script when it exists, and the ``lang`` to mark it with."""
    if locale == "ar" and (row.get("first_name_ar") or row.get("last_name_ar")):
        return f"{row.get('last_name_ar') or ''} {row.get('first_name_ar') or ''}".strip(), None
    return f"{row['last_name']} {row['first_name']}".strip(), ("fr" if locale == "ar" else None)


def subject_name(row: dict[str, Any], locale: str, prefix: str = "subject_") -> str:
    """A subject's name in the page's language (French when missing)."""
    return row.get(f"{prefix}{locale}") or row.get(f"{prefix}fr") or row.get("subject_code") or ""


def assessment_label(row: dict[str, Any]) -> str:
    """An assessment's title, else its kind and number (``Continuous assessment 2``)."""
    if row.get("title"):
        return str(row["title"])
    return f"{gettext_(KIND_LABELS.get(row['kind'], row['kind']))} {row['position']}"


def safe_next(ctx: RequestContext, target: str | None, fallback: str) -> str:
    """``next`` when it leads to a grades page of this portal, else ``fallback``."""
    if target and target.startswith(ctx.url("/grades")) and "//" not in target and "\\" not in target:
        return target
    return ctx.url(fallback)


async def wide_scope(ctx: RequestContext, permission: str) -> Scope:
    """The person's scope for ``permission`` in every school (a family may span several)."""
    assert ctx.identity is not None
    grants = await ctx.services.grants.grants(ctx.identity.id)
    return scope_for(grants, ctx.services.permissions.roles_for(permission), None)


async def teaches_or_directs(ctx: RequestContext, teacher_id: int | None, class_id: int, subject_code: str) -> None:
    """403 unless the caller directs the school or teaches this subject to this class."""
    assert ctx.person_id is not None
    if service.is_director(ctx) or teacher_id == ctx.person_id:
        return
    if not await service.teaches(ctx.services.db, ctx.person_id, class_id, subject_code):
        raise Forbidden("You do not teach this subject in this class.")


async def read_form(request: Request[Any, Any, Any]) -> Any:
    """The posted form (empty when the body is not a form)."""
    content_type = request.content_type[0]
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    return await request.form()


def form_field(form: Any, name: str) -> str:
    value = form.get(name) if form else None
    return value if isinstance(value, str) else ""
