"""The calendar of marks: which terms apply to a school, their entry deadline, whether one is closed.

Read functions; each runs inside the caller's ``db.scoped(...)`` transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.plugin_api import Database, Invalid, NotFound, school


async def school_term(db: Database, school_region: int | None, term_id: int) -> dict[str, Any]:
    """A term that applies to the school (national, or its region's own); 400 otherwise."""
    row = await db.fetchrow(
        "SELECT id, number, starts_on, ends_on, tenant_id, school_year_id FROM term WHERE id = {}", term_id
    )
    if row is None or (row["tenant_id"] is not None and row["tenant_id"] != school_region):
        raise Invalid("term_id", f"term {term_id} does not apply to this school")
    if row["tenant_id"] is None and school_region is not None:
        own = await db.fetchval(
            "SELECT id FROM term WHERE school_year_id = {} AND tenant_id = {} LIMIT 1",
            row["school_year_id"],
            school_region,
        )
        if own is not None:
            raise Invalid("term_id", "this region uses its own terms; pick one of them")
    return row


async def school_terms(db: Database, region_id: int | None) -> list[dict[str, Any]]:
    """The terms of the current school year as they apply in a region (its own calendar, else national)."""
    year = await school.current_year(db)
    rows = await db.fetch(
        "SELECT id, number, starts_on, ends_on, tenant_id FROM term WHERE school_year_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {}) ORDER BY number",
        year["id"],
        region_id or -1,
    )
    own = [r for r in rows if r["tenant_id"] is not None]
    return own or rows


def pick_term(terms: list[dict[str, Any]], wanted: int | None, today: date) -> dict[str, Any]:
    """The term asked for (when it applies here), else the one containing today (the last begun, else the first)."""
    if not terms:
        raise NotFound("No term is configured for this school year.")
    chosen = next((t for t in terms if t["id"] == wanted), None) if wanted is not None else None
    if chosen is not None:
        return chosen
    current = next((t for t in terms if t["starts_on"] <= today <= t["ends_on"]), None)
    if current is not None:
        return current
    begun = [t for t in terms if t["starts_on"] <= today]
    return begun[-1] if begun else terms[0]


async def deadline(db: Database, region_id: int | None, term_id: int) -> date | None:
    """The entry deadline of a term in a region (the region's own, else the national one)."""
    rows = await db.fetch(
        "SELECT tenant_id, entry_deadline FROM grade_deadline WHERE term_id = {} "
        "AND (tenant_id IS NULL OR tenant_id = {})",
        term_id,
        region_id or -1,
    )
    chosen = next((r for r in rows if r["tenant_id"] is not None), None) or (rows[0] if rows else None)
    return None if chosen is None else chosen["entry_deadline"]


async def is_closed(db: Database, school_id: int, term_id: int) -> bool:
    """Whether the school's term is closed."""
    return (
        await db.fetchval("SELECT id FROM grade_term_close WHERE school_id = {} AND term_id = {}", school_id, term_id)
        is not None
    )


async def subject_row(db: Database, code: str) -> dict[str, Any]:
    """A subject's names (``subject_code``, ``subject_fr``, ``subject_ar``, ``subject_en``)."""
    row = await db.fetchrow(
        "SELECT code AS subject_code, name_fr AS subject_fr, name_ar AS subject_ar, name_en AS subject_en "
        "FROM subject WHERE code = {}",
        code,
    )
    return row or {"subject_code": code}
