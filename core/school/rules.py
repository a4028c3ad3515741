"""Pure rules of the school structure: pupil codes, clashes, coefficients, dated occurrences."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, time, timedelta

import msgspec

PUPIL_CODE_RE = re.compile(r"^[A-Z][0-9]{9}$")
STAFF_NUMBER_RE = re.compile(r"^[0-9]{5,10}$")
WEEKDAYS_FR = ("", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def normalise_pupil_code(code: str) -> str:
    """The national pupil code (one letter and nine digits), upper-cased; ``ValueError`` if malformed."""
    value = code.strip().upper()
    if not PUPIL_CODE_RE.match(value):
        raise ValueError(f"{code!r} is not a pupil code (one letter followed by nine digits, e.g. J130012345)")
    return value


class Slot(msgspec.Struct, frozen=True, kw_only=True):
    """A weekly slot as the clash rules see it."""

    id: int | None = None
    weekday: int
    starts_at: time
    ends_at: time
    valid_from: date
    valid_to: date
    class_id: int
    teacher_id: int
    room_id: int | None = None


def check_slot(slot: Slot) -> None:
    """``ValueError`` for a slot that cannot exist (bad day, empty interval, inverted dates)."""
    if not 1 <= slot.weekday <= 7:
        raise ValueError("weekday must be 1 (Monday) to 7 (Sunday)")
    if slot.starts_at >= slot.ends_at:
        raise ValueError("a slot must end after it starts")
    if slot.valid_from > slot.valid_to:
        raise ValueError("valid_from must not be after valid_to")


def overlaps(a: Slot, b: Slot) -> bool:
    """Same weekday, overlapping times and overlapping validity (touching ends do not overlap)."""
    return (
        a.weekday == b.weekday
        and a.starts_at < b.ends_at
        and b.starts_at < a.ends_at
        and a.valid_from <= b.valid_to
        and b.valid_from <= a.valid_to
    )


def clashes(new: Slot, existing: Iterable[Slot]) -> list[tuple[str, Slot]]:
    """What ``new`` clashes with: ``("teacher" | "room" | "class", other slot)`` pairs."""
    out = []
    for other in existing:
        if (other.id is not None and other.id == new.id) or not overlaps(new, other):
            continue
        if other.teacher_id == new.teacher_id:
            out.append(("teacher", other))
        if new.room_id is not None and other.room_id == new.room_id:
            out.append(("room", other))
        if other.class_id == new.class_id:
            out.append(("class", other))
    return out


class CoefficientRow(msgspec.Struct, frozen=True):
    """A coefficient rule: national (``tenant_id`` None) or a region's or school's override."""

    tenant_id: int | None
    subject_code: str
    coefficient: float
    weekly_hours: float


def effective_coefficients(
    rows: Sequence[CoefficientRow], region_id: int | None, school_id: int | None
) -> dict[str, tuple[float, float]]:
    """Per subject, ``(coefficient, weekly hours)``: school override > region override > national."""
    rank: dict[int | None, int] = {None: 0}
    if region_id is not None:
        rank[region_id] = 1
    if school_id is not None:
        rank[school_id] = 2
    best: dict[str, tuple[int, CoefficientRow]] = {}
    for row in rows:
        if row.tenant_id not in rank:
            continue
        level = rank[row.tenant_id]
        if row.subject_code not in best or best[row.subject_code][0] < level:
            best[row.subject_code] = (level, row)
    return {code: (row.coefficient, row.weekly_hours) for code, (_, row) in sorted(best.items())}


def occurrences(
    weekday: int, valid_from: date, valid_to: date, start: date, end: date, holidays: Sequence[tuple[date, date]] = ()
) -> list[date]:
    """Dates in ``[start, end]`` on which a weekly slot takes place, skipping holidays."""
    first = max(start, valid_from)
    last = min(end, valid_to)
    if first > last:
        return []
    day = first + timedelta(days=(weekday - first.isoweekday()) % 7)
    out = []
    while day <= last:
        if not any(h_start <= day <= h_end for h_start, h_end in holidays):
            out.append(day)
        day += timedelta(days=7)
    return out
