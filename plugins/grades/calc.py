"""The grade calculations as pure functions: subject and general averages, ranks, annual average, statistics.

These functions are the reference for the semester close (:mod:`plugins.grades.close`), which
computes the same figures set-based in SQL; a test checks that both agree on random data.

Conventions shared with the SQL:

* **Scores** are normalised to /20 (``score × 20 ÷ max_score``); an assessment whose
  ``max_score`` is not positive is left out.
* A **subject average** is the weighted mean of the normalised scores that count. A present
  mark without a score (not entered yet) does not count. An unjustified absence counts as 0 or
  is left out, and an excused absence is left out or counts as 0, as the region's
  :class:`~plugins.grades.tables.GradePolicy` says (the national row when the region has none).
  No counting mark, or a total weight of 0, gives ``None``.
* The **general average** is Σ(subject average × coefficient) ÷ Σ coefficients over the subjects
  that have an average; a subject of coefficient 0 adds nothing and does not divide.
* **Precision**: every computation keeps full (binary floating-point) precision; nothing is
  rounded along the way. Rounding to 2 decimals happens only for display
  (:func:`for_display`, half up). *Comparisons* — ties in a rank, the pass mark (≥ 10) and the
  bands of the distribution — are made on :func:`compare_key`, the value in millionths rounded
  to an integer (``round(value × 10⁶)``, half to even; SQL: ``ROUND(average * 1000000.0)``,
  the same IEEE operations), far below what is displayed, so that two averages that are
  mathematically equal but computed along different paths (floating-point noise of the order of
  10⁻¹⁵) are tied, and an average of exactly 10 is never read as 9.999…
* The database stores averages as ``NUMERIC(6, 3)`` (and shares as ``NUMERIC(5, 4)``): storage
  rounds, computation does not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, TypeVar

import msgspec

K = TypeVar("K", bound=Hashable)

AbsentPolicy = Literal["zero", "ignore"]
ExcusedPolicy = Literal["ignore", "zero"]

#: The scale every average is expressed on.
SCALE = 20.0
#: An average at or above this passes.
PASS_MARK = 10.0
#: Width of a band of the distribution; the last band, [18, 20], is closed.
BAND_WIDTH = 2.0
BANDS = 10
#: Decimals kept when averages are *compared* (ties, pass mark, bands); see the module docstring.
COMPARE_DECIMALS = 6
#: ``10 ** COMPARE_DECIMALS``: comparison keys are averages in millionths.
COMPARE_SCALE = 10**COMPARE_DECIMALS
#: Decimals shown to people.
DISPLAY_DECIMALS = 2


class MarkIn(msgspec.Struct, frozen=True, kw_only=True):
    """One mark as the calculation sees it: the score and its assessment's scale and weight."""

    score: float | None
    max_score: float = SCALE
    weight: float = 1.0
    status: Literal["present", "absent", "excused"] = "present"


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Statistics of a set of averages (``None`` averages are left out)."""

    count: int
    mean: float | None
    median: float | None
    minimum: float | None
    maximum: float | None
    #: Share (0…1) of averages ≥ 10/20; ``None`` when there is none.
    pass_share: float | None
    #: Counts per band [0,2), [2,4), … [16,18), [18,20].
    distribution: tuple[int, ...]


def compare_key(value: float) -> int:
    """The value used in comparisons: in millionths, rounded to an integer (half to even).

    ``value * 1e6`` is the same IEEE multiplication as the SQL's ``average * 1000000.0``, and
    Python's ``round`` and PostgreSQL's ``round(double precision)`` both round half to even, so
    both sides get the same key. (SQLite's ``ROUND`` rounds half away from zero: the keys can differ
    only when ``value * 1e6`` is exactly an odd multiple of ½, and then only for a tie at that
    very value.)
    """
    return round(float(value) * COMPARE_SCALE)


def for_display(value: float | None, places: int = DISPLAY_DECIMALS) -> Decimal | None:
    """An average rounded half up for display (``12.345`` → ``12.35``); ``None`` stays ``None``.

    The value is first taken in millionths (:func:`compare_key`), then rounded half up in
    decimal: ``12.345`` — or a computed ``12.344999999999999`` — shows as ``12.35``, whatever its
    binary value.
    """
    if value is None:
        return None
    exact = Decimal(compare_key(value)).scaleb(-COMPARE_DECIMALS)
    return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def normalised(score: float, max_score: float) -> float:
    """A score on the /20 scale."""
    return score * SCALE / max_score


def _check_policy(absent_counts_as: str, excused_counts_as: str) -> None:
    if absent_counts_as not in ("zero", "ignore"):
        raise ValueError(f"absent_counts_as must be 'zero' or 'ignore', not {absent_counts_as!r}")
    if excused_counts_as not in ("zero", "ignore"):
        raise ValueError(f"excused_counts_as must be 'zero' or 'ignore', not {excused_counts_as!r}")


def mark_value(mark: MarkIn, absent_counts_as: AbsentPolicy, excused_counts_as: ExcusedPolicy) -> float | None:
    """What a mark counts for on /20, or ``None`` when it is left out of the average."""
    if mark.max_score is None or mark.max_score <= 0:
        return None
    if mark.status == "absent":
        return 0.0 if absent_counts_as == "zero" else None
    if mark.status == "excused":
        return 0.0 if excused_counts_as == "zero" else None
    if mark.score is None:
        return None
    return normalised(float(mark.score), float(mark.max_score))


def subject_average(
    marks: Sequence[MarkIn],
    absent_counts_as: AbsentPolicy = "zero",
    excused_counts_as: ExcusedPolicy = "ignore",
) -> float | None:
    """Weighted mean on /20 of the marks that count; ``None`` when none counts (or their weights sum to 0).

    >>> subject_average([MarkIn(score=12), MarkIn(score=8, max_score=10, weight=2)])
    14.666666666666666
    """
    _check_policy(absent_counts_as, excused_counts_as)
    total = 0.0
    weights = 0.0
    for mark in marks:
        value = mark_value(mark, absent_counts_as, excused_counts_as)
        if value is None:
            continue
        weight = float(mark.weight)
        total += value * weight
        weights += weight
    if weights == 0:
        return None
    return total / weights


def general_average(subjects: Sequence[tuple[float | None, float]]) -> float | None:
    """Σ(average × coefficient) ÷ Σ coefficients over ``(average, coefficient)`` pairs with an average.

    A subject without an average is left out; a coefficient of 0 adds nothing and does not
    divide. ``None`` when the coefficients that remain sum to 0.
    """
    total = 0.0
    coefficients = 0.0
    for average, coefficient in subjects:
        if average is None:
            continue
        total += average * float(coefficient)
        coefficients += float(coefficient)
    if coefficients == 0:
        return None
    return total / coefficients


def rank_with_ties(values: Mapping[K, float | None]) -> dict[K, int | None]:
    """Competition ranking by descending value (1, 2, 2, 4); ``None`` values are not ranked.

    Ties are decided on :func:`compare_key`.
    """
    keyed = sorted(((compare_key(v), k) for k, v in values.items() if v is not None), key=lambda p: -p[0])
    ranks: dict[K, int | None] = dict.fromkeys(values)
    previous: float | None = None
    rank = 0
    for position, (key, item) in enumerate(keyed, start=1):
        if key != previous:
            rank = position
            previous = key
        ranks[item] = rank
    return ranks


def annual_average(term_averages: Sequence[float | None]) -> float | None:
    """Mean of the terms that have an average; ``None`` when none has."""
    present = [float(v) for v in term_averages if v is not None]
    if not present:
        return None
    return math.fsum(present) / len(present)


def band(value: float) -> int:
    """Index (0…9) of a value's band: [0,2) → 0, …, [16,18) → 8, [18,20] → 9 (compared on :func:`compare_key`)."""
    key = compare_key(value)
    return min(max(key // round(BAND_WIDTH * COMPARE_SCALE), 0), BANDS - 1)


def class_statistics(values: Iterable[float | None]) -> Stats:
    """Count, mean, median, minimum, maximum, share ≥ 10 and distribution of averages (``None`` left out)."""
    present = [float(v) for v in values if v is not None]
    distribution = [0] * BANDS
    for value in present:
        distribution[band(value)] += 1
    if not present:
        return Stats(
            count=0,
            mean=None,
            median=None,
            minimum=None,
            maximum=None,
            pass_share=None,
            distribution=tuple(distribution),
        )
    bar = round(PASS_MARK * COMPARE_SCALE)
    passed = sum(1 for v in present if compare_key(v) >= bar)
    return Stats(
        count=len(present),
        mean=math.fsum(present) / len(present),
        median=float(statistics.median(present)),
        minimum=min(present),
        maximum=max(present),
        pass_share=passed / len(present),
        distribution=tuple(distribution),
    )
