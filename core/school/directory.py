"""A school's directory for its director: pupil search and the staff (who teaches what, where).

Pupil search is accent- and case-insensitive over the Latin and Arabic names and the Massar code.
:func:`search_key` is a pure normaliser applied to the query and to each pupil's names: Latin
accents and Arabic harakat, shadda, sukun, superscript alef and tatweel are dropped; alef forms
(أ إ آ ٱ) become ا, hamza on waw/ya (ؤ ئ) become و/ي, ta marbuta ة becomes ه, alif maqsura ى
and Persian ya ی become ي; then case-folded, punctuation turned to spaces and spaces collapsed.

The search reads the school's pupils (ids, names, codes: one scoped query, a few thousand rows at
most) and matches in Python: about 30 ms for a roll of 3,000 pupils on one core. An indexed search
key would need a stored, normalised column (a migration) kept up to date on every write of a name.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import time
from typing import Any

from core.context import RequestContext
from core.db import scope_sql
from core.tenancy import TenantInfo

_ARABIC_MAP = str.maketrans(
    {
        "\u0671": "\u0627",  # alef wasla → alef
        "\u0649": "\u064a",  # alif maqsura → ya
        "\u06cc": "\u064a",  # Persian ya → ya
        "\u0629": "\u0647",  # ta marbuta → ha
        "\u0640": "",  # tatweel
        "\u0621": "",  # a lone hamza
    }
)
_SPACES = re.compile(r"[\W_]+", re.UNICODE)
MAX_QUERY = 100


def search_key(text: str | None) -> str:
    """``text`` folded for matching: no accents or harakat, unified Arabic letter forms, case-folded."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)  # أ → ا + hamza above, é → e + acute, …
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = kept.translate(_ARABIC_MAP).casefold()
    return _SPACES.sub(" ", folded).strip()


def matches(query_key: str, haystack_key: str) -> bool:
    """Whether every word of the (folded) query occurs in the (folded) haystack."""
    words = query_key.split()
    return bool(words) and all(word in haystack_key for word in words)


async def search_pupils(ctx: RequestContext, school: TenantInfo, query: str) -> list[dict[str, Any]]:
    """Pupils of the school (any class, current enrolment shown) whose names or Massar code match ``query``.

    Runs inside the caller's scoped transaction; ordered by Latin name.
    """
    key = search_key(query[:MAX_QUERY])
    if not key:
        return []
    rows = await ctx.services.db.fetch(
        "SELECT s.id, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, "
        "c.id AS class_id, c.name AS class_name FROM student s "
        "LEFT JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
        "LEFT JOIN school_class c ON c.id = e.class_id "
        "WHERE s.school_id = {} AND {} ORDER BY s.last_name, s.first_name, s.id",
        school.id,
        scope_sql(ctx.scope, "s"),
    )
    found = []
    for row in rows:
        haystack = search_key(
            " ".join(
                str(row[k] or "") for k in ("national_code", "first_name", "last_name", "first_name_ar", "last_name_ar")
            )
        )
        if matches(key, haystack):
            found.append(row)
    return found


def _minutes(start: Any, end: Any) -> int:
    if isinstance(start, str):
        start, end = time.fromisoformat(start), time.fromisoformat(end)
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


async def staff(ctx: RequestContext, school: TenantInfo, year_id: int) -> list[dict[str, Any]]:
    """The school's teaching staff: each person's subjects and classes this year, rooms and weekly hours.

    A teacher with a membership here but no assignment is listed too (nothing taught yet).
    Runs inside the caller's scoped transaction; ordered by name.
    """
    db = ctx.services.db
    people = await db.fetch(
        "SELECT DISTINCT p.id, p.full_name, p.full_name_ar, p.email, st.staff_number FROM person p "
        "LEFT JOIN staff st ON st.person_id = p.id "
        "WHERE p.id IN (SELECT m.person_id FROM membership m WHERE m.tenant_id = {} AND m.role = 'teacher') "
        "OR p.id IN (SELECT ta.person_id FROM teaching_assignment ta WHERE ta.school_id = {} "
        "AND ta.school_year_id = {} AND {}) ORDER BY p.full_name, p.id",
        school.id,
        school.id,
        year_id,
        scope_sql(ctx.scope, "ta"),
    )
    teaching = await db.fetch(
        "SELECT ta.person_id, ta.subject_code, sub.name_fr AS subject_fr, sub.name_ar AS subject_ar, "
        "sub.name_en AS subject_en, c.id AS class_id, c.name AS class_name FROM teaching_assignment ta "
        "JOIN school_class c ON c.id = ta.class_id JOIN subject sub ON sub.code = ta.subject_code "
        "WHERE ta.school_id = {} AND ta.school_year_id = {} AND {} ORDER BY c.name, ta.subject_code",
        school.id,
        year_id,
        scope_sql(ctx.scope, "ta"),
    )
    slots = await db.fetch(
        "SELECT s.teacher_id, s.starts_at, s.ends_at, r.name AS room FROM timetable_slot s "
        "JOIN school_class c ON c.id = s.class_id LEFT JOIN room r ON r.id = s.room_id "
        "WHERE s.school_id = {} AND c.school_year_id = {} AND {}",
        school.id,
        year_id,
        scope_sql(ctx.scope, "s"),
    )
    out: dict[int, dict[str, Any]] = {
        p["id"]: {**p, "teaching": [], "rooms": set(), "minutes": 0, "lessons": 0} for p in people
    }
    for row in teaching:
        if row["person_id"] in out:
            out[row["person_id"]]["teaching"].append(row)
    for row in slots:
        entry = out.get(row["teacher_id"])
        if entry is None:
            continue
        entry["lessons"] += 1
        entry["minutes"] += _minutes(row["starts_at"], row["ends_at"])
        if row["room"]:
            entry["rooms"].add(row["room"])
    return [{**e, "rooms": sorted(e["rooms"])} for e in out.values()]


async def pupil_record(ctx: RequestContext, student: dict[str, Any]) -> dict[str, Any]:
    """A pupil's current class, guardians and pending guardian invitations (inside the caller's scope)."""
    db = ctx.services.db
    klass = await db.fetchrow(
        "SELECT c.id, c.name FROM enrolment e JOIN school_class c ON c.id = e.class_id "
        "WHERE e.student_id = {} AND e.ends_on IS NULL AND {}",
        student["id"],
        scope_sql(ctx.scope, "e"),
    )
    guardians = await db.fetch(
        "SELECT p.id, p.full_name, p.full_name_ar, p.email, g.relation FROM guardianship g "
        "JOIN person p ON p.id = g.person_id WHERE g.student_id = {} AND {} ORDER BY p.full_name, p.id",
        student["id"],
        scope_sql(ctx.scope, "g"),
    )
    invitations = await db.fetch(
        "SELECT i.id, i.email, i.full_name, i.relation, i.expires_at FROM guardian_invitation i "
        "WHERE i.student_id = {} AND i.used_at IS NULL AND {} ORDER BY i.created_at, i.id",
        student["id"],
        scope_sql(ctx.scope, "i"),
    )
    return {"class": klass, "guardians": guardians, "invitations": invitations}
