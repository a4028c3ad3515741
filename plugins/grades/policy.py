"""A region's grading rules (``grade_policy``), resolved in one place.

The rule: the region's own row, else the national row (``tenant_id IS NULL``), else the defaults
below, column by column. :func:`policy_value` is that rule in SQL for one column, over a
``grade_policy`` row joined as ``rp`` (the set-based close applies it per assessment);
:func:`resolve` reads it for one region with the same SQL, and :func:`cached` keeps the answer
a few seconds per process (pages ask on every request, as the core caches keep tenants).
"""

from __future__ import annotations

import msgspec

from core.plugin_api import SQL, Database, InvalidatedCache

#: Assessments (CC) a subject needs in a term, when no row says otherwise.
DEFAULT_REQUIRED_CC = 3
#: An unjustified absence counts 0 in a subject average; an excused one is left out.
DEFAULT_ABSENT = "zero"
DEFAULT_EXCUSED = "ignore"

#: Each column: the region's row (``rp``), else the national row, else the default.
_VALUES: dict[str, SQL] = {
    "required_cc": SQL("COALESCE(rp.required_cc, (SELECT required_cc FROM grade_policy WHERE tenant_id IS NULL), 3)"),
    "absent_counts_as": SQL(
        "COALESCE(rp.absent_counts_as, (SELECT absent_counts_as FROM grade_policy WHERE tenant_id IS NULL), 'zero')"
    ),
    "excused_counts_as": SQL(
        "COALESCE(rp.excused_counts_as, (SELECT excused_counts_as FROM grade_policy WHERE tenant_id IS NULL), 'ignore')"
    ),
}


class GradePolicy(msgspec.Struct, frozen=True):
    """The rules that apply in a region."""

    required_cc: int = DEFAULT_REQUIRED_CC
    absent_counts_as: str = DEFAULT_ABSENT
    excused_counts_as: str = DEFAULT_EXCUSED

    @property
    def absences(self) -> tuple[str, str]:
        """``(absent_counts_as, excused_counts_as)``, as :func:`plugins.grades.calc.subject_average` takes them."""
        return self.absent_counts_as, self.excused_counts_as


def policy_value(column: str) -> SQL:
    """One column of the policy in SQL, over ``LEFT JOIN grade_policy rp ON rp.tenant_id = <region>``."""
    return _VALUES[column]


def policy_join(region: SQL) -> SQL:
    """``LEFT JOIN grade_policy rp ON rp.tenant_id = <region>`` (the join :func:`policy_value` reads)."""
    return SQL("LEFT JOIN grade_policy rp ON rp.tenant_id = {}", region)


async def resolve(db: Database, region_id: int | None) -> GradePolicy:
    """The rules of a region (its own row, else the national one, else the defaults); one query."""
    row = await db.fetchrow(
        SQL(
            "SELECT {} AS required_cc, {} AS absent_counts_as, {} AS excused_counts_as FROM (SELECT 1 AS one) x {}",
            _VALUES["required_cc"],
            _VALUES["absent_counts_as"],
            _VALUES["excused_counts_as"],
            policy_join(SQL("{}", -1 if region_id is None else region_id)),
        )
    )
    if row is None:
        return GradePolicy()
    return GradePolicy(int(row["required_cc"]), str(row["absent_counts_as"]), str(row["excused_counts_as"]))


#: How long a process keeps a region's rules (:func:`cached`) when no change is published.
CACHE_SECONDS = 5.0
#: What a writer of ``grade_policy`` publishes (``ctx.services.invalidation.publish(POLICY_TOPIC)``).
POLICY_TOPIC = "grades.policy"
_cache: InvalidatedCache[tuple[int, int | None], GradePolicy] = InvalidatedCache(
    POLICY_TOPIC, CACHE_SECONDS, max_entries=10_000
)


async def cached(db: Database, region_id: int | None) -> GradePolicy:
    """:func:`resolve`, kept :data:`CACHE_SECONDS` per database and region."""
    return await _cache.get((id(db), region_id), lambda: resolve(db, region_id))
