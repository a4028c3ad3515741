"""A pupil's page for the director, and the "new pupil" form (what ``/api/v1/school/students…`` offers).

* ``/school/pupils/new`` — register a pupil, enrolled at once when a class is chosen (all or nothing);
* ``/school/pupils/{id}`` — details, current class, guardians and pending invitations, with the forms
  that enrol the pupil in a class, transfer them to another school and link a guardian by e-mail.

The controllers call the service functions the API calls (:mod:`core.school.service`,
:func:`core.school.guardians.link`); every form error is shown beside its field, and nothing is
written when there is one.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from core.context import Ctx, RequestContext
from core.errors import Conflict, Invalid
from core.rendering import Row, page
from core.school import directory, guardians, service
from core.school.manage_pages import form_text, read_form
from core.school.pupil_rows import MESSAGES, SCHOOL_MESSAGES
from core.tenancy import TenantInfo

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
RELATIONS = ("mother", "father", "guardian")
LOCALES = ("ar", "fr", "en")
REQUIRED = MESSAGES["required"]
TOO_LONG = MESSAGES["too_long"]
CHOOSE_CLASS = "Choose a class of this school."
NO_SCHOOL = "No school has this code."
SAME_SCHOOL = "The pupil is already in that school."
#: What a redirect after a form says (``?done=…``).
NOTICES = {
    "created": "The pupil was registered.",
    "enrolled": "The pupil was put in the class.",
    "linked": "The guardian was linked to the pupil.",
    "invited": "An invitation was sent to this address: the guardian is linked when they accept it.",
}
PAGE_MESSAGES = [CHOOSE_CLASS, NO_SCHOOL, SAME_SCHOOL, *NOTICES.values(), "The pupil was transferred to {school}."]


def _text(form: Any, name: str, errors: dict[str, Any], limit: int, *, required: bool = False) -> str:
    """A text field; a missing required one or one over ``limit`` characters is noted in ``errors``."""
    value = form.get(name) if form else None
    value = value.strip() if isinstance(value, str) else ""
    if required and not value:
        errors[name] = (REQUIRED, {})
    elif len(value) > limit:
        errors[name] = (TOO_LONG, {"limit": limit})
    return value[:limit]


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 10 else None


async def _own_pupil(ctx: RequestContext, school: TenantInfo, student_id: int) -> dict[str, Any]:
    """The pupil if they belong to the school of the URL, else 404 (inside a scoped transaction)."""
    student = await service.get_student(ctx, student_id)
    if student["school_id"] != school.id:
        raise NotFoundException(f"No pupil {student_id} here.")
    return student


def _name(row: dict[str, Any], first: str, last: str) -> str:
    return f"{row.get(last) or ''} {row.get(first) or ''}".strip()


async def _pupil_page(
    ctx: RequestContext, school: TenantInfo, student_id: int, status: int = 200, **values: Any
) -> Any:
    db = ctx.services.db
    async with db.scoped(ctx.scope, write=False):
        student = await _own_pupil(ctx, school, student_id)
        record = await directory.pupil_record(ctx, student)
        classes = await service.list_classes(ctx, school)
    values.setdefault("errors", {})
    values.setdefault("values", {})
    values.setdefault("form", None)
    values.setdefault("notice", None)
    pupil = Row(
        student,
        name=_name(student, "first_name", "last_name"),
        name_ar=_name(student, "first_name_ar", "last_name_ar"),
    )
    invitations = [Row(i, expires_on=i["expires_at"].date()) for i in record["invitations"]]
    return page(
        ctx,
        "school/pupil.html",
        status=status,
        pupil=pupil,
        klass=record["class"],
        guardians=[Row(g) for g in record["guardians"]],
        invitations=invitations,
        classes=classes,
        relations=RELATIONS,
        **values,
    )


@get("/school/pupils/{student_id:int}", opt={"permission": "school.manage"}, include_in_schema=False)
async def pupil_page(ctx: Ctx, student_id: FromPath[int], done: FromQuery[str | None] = None) -> Any:
    """A pupil of the school: details, class, guardians, and the forms that change them."""
    school = service.require_school(ctx)
    return await _pupil_page(ctx, school, student_id, notice=NOTICES.get(done or ""))


@post("/school/pupils/{student_id:int}/enrol", opt={"permission": "school.manage"}, include_in_schema=False)
async def enrol_pupil(ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Put the pupil in a class of the school (``service.enrol``, as the API)."""
    school = service.require_school(ctx)
    form = await read_form(request)
    class_id = _int(form_text(form, "class_id", 12))
    async with ctx.services.db.scoped(ctx.scope, write=False):
        await _own_pupil(ctx, school, student_id)  # another school's pupil is a 404
    try:
        if class_id is None:
            raise Invalid("class_id", CHOOSE_CLASS)
        async with ctx.services.db.scoped(ctx.scope):
            student = await _own_pupil(ctx, school, student_id)
            await service.enrol(ctx, student, class_id)
    except (Invalid, NotFoundException):  # not a number, or not a class of this school
        return await _pupil_page(ctx, school, student_id, 400, form="enrol", errors={"class_id": (CHOOSE_CLASS, {})})
    return Redirect(ctx.url(f"/school/pupils/{student_id}?done=enrolled"), status_code=303)


@post("/school/pupils/{student_id:int}/transfer", opt={"permission": "school.manage"}, include_in_schema=False)
async def transfer_pupil(ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Transfer the pupil to another school (``service.transfer_to``, as the API): their record follows."""
    school = service.require_school(ctx)
    form = await read_form(request)
    slug = form_text(form, "to_school", 80).lower()
    async with ctx.services.db.scoped(ctx.scope, write=False):
        await _own_pupil(ctx, school, student_id)
    error: str | None = None
    if not slug:
        error = REQUIRED
    else:
        try:
            destination = await service.transfer_to(ctx, student_id, slug)
        except service.NoSuchSchool:
            error = NO_SCHOOL
        except Invalid:
            error = SAME_SCHOOL
    if error is not None:
        return await _pupil_page(
            ctx, school, student_id, 400, form="transfer", errors={"to_school": (error, {})}, values={"to_school": slug}
        )
    title = destination.title(ctx.locale)
    return page(ctx, "school/transferred.html", school_title=title, pupil_id=student_id)


@post("/school/pupils/{student_id:int}/guardians", opt={"permission": "school.manage"}, include_in_schema=False)
async def link_guardian(ctx: Ctx, student_id: FromPath[int], request: Request[Any, Any, Any]) -> Any:
    """Link a guardian by e-mail (``guardians.link``, then the mail after the commit, as the API)."""
    school = service.require_school(ctx)
    form = await read_form(request)
    errors: dict[str, Any] = {}
    email = _text(form, "email", errors, 254, required=True)
    if "email" not in errors and not _EMAIL.match(email):
        errors["email"] = (MESSAGES["not_email"], {})
    full_name = _text(form, "full_name", errors, 100, required=True)
    full_name_ar = _text(form, "full_name_ar", errors, 100)
    relation = form_text(form, "relation", 10) or "guardian"
    if relation not in RELATIONS:
        errors["relation"] = (MESSAGES["relation"], {})
    locale = form_text(form, "locale", 2) or "ar"
    locale = locale if locale in LOCALES else "ar"
    values = {
        "email": email,
        "full_name": full_name,
        "full_name_ar": full_name_ar,
        "relation": relation,
        "locale": locale,
    }
    if errors:
        return await _pupil_page(ctx, school, student_id, 400, form="guardian", errors=errors, values=values)
    async with ctx.services.db.scoped(ctx.scope):
        student = await _own_pupil(ctx, school, student_id)
        result, pending = await guardians.link(
            ctx,
            student,
            email=email,
            full_name=full_name,
            full_name_ar=full_name_ar,
            relation=relation,
            locale=locale,
        )
    if pending is not None:
        await guardians.send(ctx.services, pending)
    return Redirect(ctx.url(f"/school/pupils/{student_id}?done={result.status}"), status_code=303)


# -- a new pupil -----------------------------------------------------------------------------------


async def _new_page(ctx: RequestContext, school: TenantInfo, status: int = 200, **values: Any) -> Any:
    async with ctx.services.db.scoped(ctx.scope, write=False):
        classes = await service.list_classes(ctx, school)
    values.setdefault("errors", {})
    values.setdefault("values", {})
    return page(ctx, "school/pupil_new.html", status=status, classes=classes, **values)


@get("/school/pupils/new", opt={"permission": "school.manage"}, include_in_schema=False)
async def new_pupil_form(ctx: Ctx) -> Any:
    """The form registering a pupil."""
    return await _new_page(ctx, service.require_school(ctx))


@post("/school/pupils/new", opt={"permission": "school.manage"}, include_in_schema=False)
async def new_pupil(ctx: Ctx, request: Request[Any, Any, Any]) -> Any:
    """Register a pupil (enrolled at once when a class is chosen): ``service.create_student`` and
    ``service.enrol`` in one transaction, as the API."""
    school = service.require_school(ctx)
    form = await read_form(request)
    errors: dict[str, Any] = {}
    code = _text(form, "national_code", errors, 12, required=True)
    first = _text(form, "first_name", errors, 100, required=True)
    last = _text(form, "last_name", errors, 100, required=True)
    first_ar = _text(form, "first_name_ar", errors, 100)
    last_ar = _text(form, "last_name_ar", errors, 100)
    born_text = form_text(form, "birth_date", 10)
    born: date | None = None
    if born_text:
        try:
            born = date.fromisoformat(born_text)
        except ValueError:
            errors["birth_date"] = (MESSAGES["date_format"], {})
    gender = form_text(form, "gender", 1).upper()
    if gender not in ("", "F", "M"):
        errors["gender"] = (MESSAGES["gender"], {})
    class_text = form_text(form, "class_id", 12)
    class_id = _int(class_text)
    if class_text and class_id is None:
        errors["class_id"] = (CHOOSE_CLASS, {})
    values = {
        "national_code": code,
        "first_name": first,
        "last_name": last,
        "first_name_ar": first_ar,
        "last_name_ar": last_ar,
        "birth_date": born_text,
        "gender": gender,
        "class_id": class_id,
    }
    if errors:
        return await _new_page(ctx, school, 400, errors=errors, values=values)
    try:
        async with ctx.services.db.scoped(ctx.scope):
            student_id = await service.create_student(
                ctx,
                school,
                national_code=code,
                first_name=first,
                last_name=last,
                first_name_ar=first_ar,
                last_name_ar=last_ar,
                birth_date=born,
                gender=gender,
            )
            if class_id is not None:
                try:
                    await service.enrol(ctx, await service.get_student(ctx, student_id), class_id)
                except NotFoundException:
                    raise Invalid("class_id", CHOOSE_CLASS) from None
    except Invalid as exc:
        field = "class_id" if exc.field == "class_id" else "national_code"
        message = CHOOSE_CLASS if field == "class_id" else MESSAGES["pupil_code"]
        return await _new_page(ctx, school, 400, errors={field: (message, {})}, values=values)
    except Conflict:
        errors = {"national_code": (SCHOOL_MESSAGES["code_taken"], {})}
        return await _new_page(ctx, school, 409, errors=errors, values=values)
    return Redirect(ctx.url(f"/school/pupils/{student_id}?done=created"), status_code=303)


PUPIL_ROUTES: list[Any] = [new_pupil_form, new_pupil, pupil_page, enrol_pupil, transfer_pupil, link_guardian]
