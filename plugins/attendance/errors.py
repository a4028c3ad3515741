"""Errors of the attendance module: a stable ``code`` for API clients and a translatable message for pages.

An :class:`AttendanceError` is a ``DomainError`` (from ``core.plugin_api``) that carries its message as a msgid
(English, with ``{name}`` fields) and the values to format into it. The API answers RFC 9457 problem details
with ``code`` (and ``errors`` per field, each with its own ``code``) and the English ``detail``; pages show
:meth:`AttendanceError.text`, the message in the reader's language through ``gettext_``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from core.plugin_api import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    TooLarge,
    UnsupportedMedia,
    gettext_,
    http_exception_handler,
    problem,
)

#: Every error of the module: its stable code → (HTTP status, msgid). Pages translate the msgid.
MESSAGES: dict[str, tuple[int, str]] = {
    "not_a_school": (404, "This works inside a school: use /t/<school>/…."),
    "not_a_region": (404, "Regional settings are set on the region: use /t/<region>/…."),
    "not_your_region": (403, "You do not administer this region."),
    "staff_only": (403, "Alerts are for the school's staff."),
    "no_lesson": (404, "No lesson {slot_id} in this school."),
    "no_class": (404, "No class {class_id} here."),
    "no_pupil": (404, "No such pupil."),
    "no_justification": (404, "No justification {justification_id} here."),
    "no_document": (404, "This justification has no document."),
    "document_missing": (404, "This justification's document is no longer stored; ask the family to send it again."),
    "not_your_lesson": (403, "This lesson is not in your timetable."),
    "teacher_same_day_only": (
        403,
        "Teachers take and correct attendance on the day of the lesson; later corrections go to the director.",
    ),
    "future_day": (400, "Attendance cannot be taken for a day to come."),
    "wrong_weekday": (400, "This lesson takes place on another day of the week than {date}."),
    "outside_timetable": (400, "This lesson is not in the timetable on {date}."),
    "not_a_school_day": (400, "{date} is not a school day (holiday or outside the terms)."),
    "invalid_entries": (400, "Some pupils of the register are not right."),
    "pupil_not_in_class": (400, "Pupil {student_id} is not in this class."),
    "pupil_twice": (400, "{name} ({student_id}) appears twice."),
    "minutes_out_of_range": (400, "{name} ({student_id}): minutes late must be between 1 and {length}."),
    "absent_with_minutes": (400, "{name} ({student_id}): an absent pupil has no minutes late."),
    "minutes_not_a_number": (400, "Give the minutes late as a whole number."),
    "unknown_status": (400, "Choose present, absent or late."),
    "reason_required": (400, "Recording or correcting a past day needs a reason."),
    "unknown_reason": (400, "Choose one of the reasons: {codes}."),
    "no_absence_chosen": (400, "Tick the absences to justify."),
    "bad_absence_ids": (400, "Give the ids of the absences, separated by commas."),
    "not_this_pupils_absence": (400, "Absence {mark_id} is not one of this pupil's."),
    "late_not_absence": (400, "{mark_id} is a late arrival, not an absence."),
    "already_justified": (409, "Absence {mark_id} already has a justification that is {state}."),
    "justified_meanwhile": (409, "One of these absences was justified at the same moment: reload the page."),
    "already_reviewed": (409, "This justification was already {state}."),
    "note_too_long": (400, "The note has at most 2000 characters."),
    "bad_decision": (400, "The decision is accepted or rejected."),
    "bad_state": (400, "The state is pending, accepted or rejected."),
    "period_reversed": (400, "The period starts after it ends."),
    "period_too_long": (400, "The period is at most 400 days long."),
    "bad_level": (400, "Choose one of the levels below this {kind}: {levels}."),
    "bad_phone": (400, "Give an international number such as +212612345678."),
    "duplicate_reason": (400, "Each reason code once."),
    "document_too_large": (413, "The document is too large (at most {mib} MB)."),
    "document_type": (415, "Send a PDF or a photo (JPEG, PNG or WebP)."),
}


class Problem:
    """One problem with a request: a code, a msgid and its values, and the field it concerns."""

    __slots__ = ("code", "field", "message", "values")

    def __init__(self, code: str, message: str, field: str | None = None, **values: Any) -> None:
        self.code, self.message, self.field, self.values = code, message, field, values

    def english(self) -> str:
        """The message with its values, untranslated (the API's ``detail``)."""
        return self.message.format(**self.values) if self.values else self.message

    def text(self) -> str:
        """The message in the current request's language."""
        return gettext_(self.message, **self.values)


class AttendanceError(DomainError):
    """An attendance rule refused the request (400 unless another status is given)."""

    status_code = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        problems: list[Problem] | None = None,
        **values: Any,
    ) -> None:
        self.problem = Problem(code, message, field, **values)
        self.problems = problems or []
        # DomainError.__init__ directly: a kind's own __init__ (Invalid's) must not reshape the error.
        DomainError.__init__(self, message, field=field, code=code, **values)
        if self.problems:
            self.detail = "; ".join(p.english() for p in self.problems)
        if status is not None:
            self.status_code = status

    def text(self) -> str:
        """The message (or the field problems) in the current request's language."""
        if self.problems:
            return "; ".join(dict.fromkeys(p.text() for p in self.problems))
        return self.problem.text()

    def body(self) -> dict[str, Any]:
        """The problem-details members beyond type, title, status and detail."""
        extra: dict[str, Any] = {"code": self.code}
        items = self.problems or ([self.problem] if self.problem.field else [])
        if items:
            extra["errors"] = [
                {"field": p.field or "body", "code": p.code, "message": p.english(), **_plain(p.values)} for p in items
            ]
        return extra


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k == "student_id"}


class AttendanceNotFound(AttendanceError, NotFound):
    """404 (also a ``NotFound``)."""

    status_code = 404


class AttendanceForbidden(AttendanceError, Forbidden):
    """403 (also a ``Forbidden``)."""

    status_code = 403


class AttendanceConflict(AttendanceError, Conflict):
    """409 (also a ``Conflict``)."""

    status_code = 409


class AttendanceTooLarge(AttendanceError, TooLarge):
    """413 (also a ``TooLarge``)."""

    status_code = 413


class AttendanceUnsupportedMedia(AttendanceError, UnsupportedMedia):
    """415 (also an ``UnsupportedMedia``)."""

    status_code = 415


KINDS: dict[int, type[AttendanceError]] = {
    404: AttendanceNotFound,
    403: AttendanceForbidden,
    409: AttendanceConflict,
    413: AttendanceTooLarge,
    415: AttendanceUnsupportedMedia,
}


def error(code: str, field: str | None = None, **values: Any) -> AttendanceError:
    """The error registered as ``code`` (its status and message from :data:`MESSAGES`)."""
    status, message = MESSAGES[code]
    return KINDS.get(status, AttendanceError)(code, message, status=status, field=field, **values)


def problem_of(code: str, field: str | None = None, **values: Any) -> Problem:
    """One field problem registered as ``code`` (to gather several in one 400)."""
    return Problem(code, MESSAGES[code][1], field, **values)


def api_handler(request: Request[Any, Any, Any], exc: AttendanceError) -> Response[Any]:
    """Problem details with the error's ``code`` (API routes)."""
    instance = request.scope.get("state", {}).get("request_id")
    return problem(exc.status_code, exc.detail, extra=exc.body(), instance=instance)


def page_handler(request: Request[Any, Any, Any], exc: AttendanceError) -> Response[Any]:
    """An error page in the reader's language (portal routes); the API shape for non-HTML clients."""
    translated = HTTPException(detail=exc.text(), status_code=exc.status_code)
    return http_exception_handler(request, translated)


API_HANDLERS: dict[Any, Any] = {AttendanceError: api_handler}
PAGE_HANDLERS: dict[Any, Any] = {AttendanceError: page_handler}
