"""What modules exchange through hooks: plain msgspec structs both sides import without importing each other.

The gradebook (line items = assessments, results = marks) belongs to the grades plugin; another
package reads or writes it only through ``madrasa_gradebook_read`` and ``madrasa_gradebook_write``
(see ``docs/plugin_hooks.md``), which the grades plugin answers with its own services, so every
write bumps the assessment's version and is audited like a grid save.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

__all__ = [
    "Gradebook",
    "GradebookItem",
    "GradebookProblem",
    "GradebookResult",
    "GradebookWrite",
    "GradebookWritten",
    "LineItemIn",
    "ResultIn",
]


class GradebookItem(msgspec.Struct, frozen=True, kw_only=True):
    """A line item as read: one assessment of a class's subject in a term."""

    id: int
    school_id: int
    class_id: int
    subject_code: str
    term_id: int
    kind: str  # cc, exam or activity
    position: int
    title: str
    scheduled_on: date
    max_score: Decimal
    #: The state of the class × subject × term mark sheet: draft, submitted, validated or published.
    state: str = "draft"
    version: int = 0


class GradebookResult(msgspec.Struct, frozen=True, kw_only=True):
    """A result as read: one pupil's mark for a line item."""

    line_item_id: int
    student_id: int
    score: Decimal | None
    status: str  # present, absent or excused
    updated_at: datetime | None = None


class Gradebook(msgspec.Struct, frozen=True, kw_only=True):
    """Line items and results of some schools, within the caller's scope."""

    line_items: list[GradebookItem] = []
    results: list[GradebookResult] = []


class LineItemIn(msgspec.Struct, frozen=True, kw_only=True):
    """A line item to write, named by the caller's ``key`` (e.g. a OneRoster sourcedId).

    ``previous_id`` is the assessment the same key stood for before (matched only when it is still
    the class's assessment for that subject and term); otherwise an assessment of the sheet with the
    same title and date is matched, else one is created.
    """

    key: str
    class_id: int
    subject_code: str
    term_id: int
    kind: str
    title: str
    scheduled_on: date
    max_score: Decimal
    previous_id: int | None = None


class ResultIn(msgspec.Struct, frozen=True, kw_only=True):
    """A result to write: a pupil's mark for the line item of key ``line_item``."""

    key: str
    line_item: str
    student_id: int
    score: Decimal | None = None
    status: str = "present"


class GradebookWrite(msgspec.Struct, frozen=True, kw_only=True):
    """One school's line items and results to write (through the grades plugin's own services)."""

    school_id: int
    line_items: list[LineItemIn] = []
    results: list[ResultIn] = []
    #: Recorded in the audit log with each change (as a correction's reason is).
    reason: str = ""


class GradebookProblem(msgspec.Struct, frozen=True, kw_only=True):
    """Why a line item or a result was not written: ``kind`` is ``line_item`` or ``result``."""

    kind: str
    key: str
    field: str
    message: str
    #: The message's template and values, so a page can translate it.
    msgid: str = ""
    values: dict[str, str] = {}


class GradebookWritten(msgspec.Struct, kw_only=True):
    """What a write did: ids by key, counts (``created``/``updated``/``linked``) and refusals.

    With any problem the caller is expected to roll its transaction back.
    """

    line_items: dict[str, int] = {}
    results: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {}
    problems: list[GradebookProblem] = []
