"""What the attendance modules share: who directs and reviews, rule windows, pupils' names, cache lifetime."""

from __future__ import annotations

from datetime import date, time
from typing import Any

from core.plugin_api import RequestContext

DIRECTORS = frozenset({"school_director", "platform_admin"})
#: Who accepts or rejects justifications: the director, the supervisor (surveillant général).
REVIEWERS = frozenset({"school_director", "supervisor", "platform_admin"})
JUSTIFICATION_STATES = ("pending", "accepted", "rejected")
EPOCH = date(2000, 1, 1)
#: Calendars and rules are reference data read on every register: kept per process for a minute.
CACHE_SECONDS = 60.0


def slot_minutes(starts_at: time, ends_at: time) -> int:
    """Length of a lesson in minutes."""
    return (ends_at.hour * 60 + ends_at.minute) - (starts_at.hour * 60 + starts_at.minute)


def window_number(day: date, window_days: int) -> int:
    """Which rule window a day falls in (alerts fire at most once per window)."""
    return (day - EPOCH).days // max(1, window_days)


def is_director(ctx: RequestContext) -> bool:
    """Whether the caller acts as the school's director."""
    return bool(ctx.roles & DIRECTORS)


def name_of(row: dict[str, Any], locale: str) -> str:
    """A pupil's name in the reader's script when it exists."""
    if locale == "ar" and (row.get("first_name_ar") or row.get("last_name_ar")):
        return f"{row.get('last_name_ar') or ''} {row.get('first_name_ar') or ''}".strip()
    return f"{row.get('last_name') or ''} {row.get('first_name') or ''}".strip()


def person_name(row: dict[str, Any], locale: str) -> tuple[str, str | None]:
    """A pupil's name for a page in ``locale``, and the ``lang`` to mark it with (Latin names on an Arabic page)."""
    name = name_of(row, locale)
    arabic = locale == "ar" and bool(row.get("first_name_ar") or row.get("last_name_ar"))
    return name, ("fr" if locale == "ar" and not arabic else None)
