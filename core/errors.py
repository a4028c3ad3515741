"""The one hierarchy of domain errors; :mod:`core.problems` turns each into problem details.

Services raise these; controllers let them through. Each carries an HTTP status, the untranslated
message (``msgid``) and its values so that pages can show it in the reader's language, and where
relevant the form ``field`` it is about and a machine-readable ``code``::

    raise Invalid("due_on", "The date {day} is outside the term.", day=day)
    raise Conflict("The sheet changed meanwhile.", code="stale")
"""

from __future__ import annotations

from typing import Any, Literal

from litestar.exceptions import HTTPException

__all__ = [
    "Conflict",
    "DomainError",
    "Forbidden",
    "Invalid",
    "Locked",
    "NotFound",
    "PreconditionRequired",
    "TooLarge",
    "Unavailable",
    "UnsupportedMedia",
]


class DomainError(HTTPException):
    """A refusal with a status, a message that can be translated, and optionally a field and a code."""

    status_code = 400

    def __init__(self, msgid: str, *, field: str | None = None, code: str | None = None, **values: Any) -> None:
        message = msgid.format(**values) if values else msgid
        self.msgid = msgid
        self.values = values
        self.params = {k: str(v) for k, v in values.items()}
        self.field = field
        self.code = code
        extra: dict[str, Any] | list[dict[str, str]] | None = None
        if code or field:
            extra = {k: v for k, v in (("code", code), ("field", field)) if v}
        super().__init__(message, extra=extra)


class Invalid(DomainError):
    """400 naming the field that is wrong, so a page can show the message beside it."""

    status_code = 400

    def __init__(self, field: str, msgid: str, *, code: str | None = None, **values: Any) -> None:
        super().__init__(msgid, field=field, code=code, **values)
        message = self.detail
        self.extra = [{"key": field, "message": message}]


class Forbidden(DomainError):
    """403: the caller may not do this here."""

    status_code = 403


class NotFound(DomainError):
    """404: nothing of that kind within the caller's reach."""

    status_code = 404


class Conflict(DomainError):
    """409: a duplicate, a clash, or a state that does not allow this."""

    status_code = 409


class TooLarge(DomainError):
    """413: an upload or a file over its limit."""

    status_code = 413


class UnsupportedMedia(DomainError):
    """415: a file of a type not accepted here."""

    status_code = 415


class Locked(DomainError):
    """423: past a deadline or closed."""

    status_code = 423


class PreconditionRequired(DomainError):
    """428: an ``If-Match`` is needed."""

    status_code = 428


class Unavailable(Exception):
    """A dependency that cannot be reached just now; :mod:`core.problems` answers 503 with ``Retry-After``.

    Not a :class:`DomainError`: its text is for the log (it may name hosts); the reader gets a plain
    message chosen by ``dependency`` (:data:`core.faults.MESSAGES`).
    """

    dependency: Literal["database", "storage", "queue"] = "database"
