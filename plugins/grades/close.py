"""The semester close: subject averages, general averages with ranks, and class statistics, set-based.

:func:`close_term` locks a term for a set of schools (one ``grade_term_close`` row per school;
closing again is a :class:`TermAlreadyClosed`, a 409) and computes the results;
:func:`compute_results` computes them without the lock (the benchmark and a preview use it).
Both run inside the caller's transaction (``db.scoped(...)``) and replace the previous results
of those schools and that term.

What is computed (the rules and the precision are those of :mod:`plugins.grades.calc`, which
a test checks against this module on random data):

* ``grade_subject_result``: one row per pupil × subject with at least one mark in an assessment
  of the term in those schools: the weighted mean on /20 of the marks that count under the
  policy of the assessment's region (national row as fallback), ``NULL`` when none counts, and
  the subject's effective coefficient for the pupil's class (school override > region override >
  national rule, matched on the class's level and track; 0 when the subject has no rule there).
* ``grade_general_result``: one row per such pupil: Σ(average × coefficient) ÷ Σ coefficients
  over the subjects with an average, the rank in the class — ``RANK()`` by descending average,
  ties on :func:`~plugins.grades.calc.compare_key` — and ``ranked``, how many pupils of the class
  were ranked. Only pupils with an open enrolment in the class (in the term's school year) and
  an average are ranked.
* ``grade_class_stats``: per class × subject, and per class for the general average
  (``subject_code = ''``), over the averages of the pupils with an open enrolment in the class:
  count, mean, median, minimum, maximum, share ≥ 10 and the distribution in ten bands of
  width 2 (the last one, [18, 20], closed) as a JSON array of counts.

A pupil's results belong to one class: the class of their open enrolment in one of the schools
(for the term's school year), else the highest class id among their marks (a pupil who left).
Marks of every sheet state count: the close is what freezes them.

Statements (set-based throughout, no per-pupil work in Python): on PostgreSQL, a transaction-level
advisory lock per school (concurrent computations for a school take turns); the single pass over
the marks into a temporary table of per-pupil subject averages at full precision (a statement of
its own so that it may use parallel workers), ``ANALYZE``d; then, for a first close, one statement
that writes the three result tables from it (writable CTEs, one ``INSERT … SELECT`` each;
``RANK()`` for ranks, ``percentile_cont(0.5)`` for medians); for a re-close (results of those
schools and term exist), the three results into temporary tables, one statement deleting the
stored rows that are gone or differ and one inserting the missing ones, so that unchanged rows
are not rewritten; all under the planner settings of :data:`PG_SETTINGS`. SQLite
has neither writable CTEs nor ``percentile_cont``: the same SQL runs through three temporary
tables and three ``INSERT … SELECT``, the median with a window-function trick (the middle row,
or the mean of the two middle rows, by ``ROW_NUMBER``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from core.db import Database, current_scope
from core.school.service import Conflict
from core.tenancy import parse_path
from plugins.grades.calc import BAND_WIDTH, BANDS, COMPARE_SCALE, PASS_MARK, SCALE

#: Planner settings for the close on PostgreSQL, set with ``set_config(…, true)`` and restored
#: afterwards. ``work_mem``: the per-pupil aggregation (a million groups) and the sorts stay in
#: memory. ``enable_nestloop``: the row-level-security predicates make the planner expect about
#: 0.5 % of every scoped table's rows, so it would join marks to assessments (and everything
#: after) with nested loops over index scans; hash joins are right at this size. ``jit``: with
#: the inflated costs JIT compilation kicks in and costs seconds for nothing.
PG_SETTINGS = {"work_mem": "256MB", "enable_nestloop": "off", "jit": "off"}


class CloseStats(msgspec.Struct, kw_only=True):
    """What a computation wrote, and how long it took."""

    term_id: int
    schools: int
    subject_results: int
    general_results: int
    ranked: int
    class_stats: int
    seconds: float


class TermAlreadyClosed(Conflict):
    """409: the term is already closed for (some of) these schools."""

    def __init__(self, term_id: int, school_ids: Sequence[int]) -> None:
        self.term_id = term_id
        self.school_ids = sorted(school_ids)
        names = ", ".join(str(s) for s in self.school_ids)
        super().__init__(f"term {term_id} is already closed for school(s) {names}")


# --------------------------------------------------------------------------- SQL fragments


def _ids(values: Sequence[int]) -> str:
    """An ``IN`` list of integers, inlined (they are validated ``int``s; the planner sees constants)."""
    items = sorted({int(v) for v in values})
    return "(" + ", ".join(str(v) for v in items) + ")" if items else "(NULL)"


def _key(column: str) -> str:
    """The comparison key of :func:`plugins.grades.calc.compare_key` in SQL."""
    return f"ROUND({column} * {float(COMPARE_SCALE)!r})"


def _millionths(value: float) -> int:
    """A threshold on the comparison key's scale."""
    return round(value * COMPARE_SCALE)


def mark_average_select(schools: str, term_id: int) -> str:
    """Per pupil × subject, from the marks: the weighted mean on /20 and the pupil's highest class among them.

    Each mark counts ``score × 20 ÷ max_score`` with its assessment's weight; an absence counts 0
    or nothing, an excused absence nothing or 0, by the policy of the assessment's region (the
    national row when the region has none); a present mark without a score counts nothing.
    """
    national = "(SELECT {col} FROM grade_policy WHERE tenant_id IS NULL)"
    absent = f"COALESCE(rp.absent_counts_as, {national.format(col='absent_counts_as')}, 'zero')"
    excused = f"COALESCE(rp.excused_counts_as, {national.format(col='excused_counts_as')}, 'ignore')"
    return f"""
  SELECT student_id, subject_code, MAX(class_id) AS mark_class,
         SUM(v * w) / NULLIF(SUM(CASE WHEN v IS NOT NULL THEN w END), 0) AS average
  FROM (
    SELECT m.student_id, a.subject_code, a.class_id, CAST(a.weight AS DOUBLE PRECISION) AS w,
           CASE WHEN m.status = 'absent' THEN (CASE WHEN {absent} = 'zero' THEN 0.0 END)
                WHEN m.status = 'excused' THEN (CASE WHEN {excused} = 'zero' THEN 0.0 END)
                ELSE CAST(m.score AS DOUBLE PRECISION) * {SCALE} / CAST(a.max_score AS DOUBLE PRECISION) END AS v
    FROM grade_mark m
    JOIN grade_assessment a ON a.id = m.assessment_id
    LEFT JOIN grade_policy rp ON rp.tenant_id = a.region_id
    WHERE a.term_id = {term_id} AND a.school_id IN {schools} AND a.max_score > 0
  ) marks
  GROUP BY student_id, subject_code"""


def subject_row_ctes(agg: str, schools: str, term_id: int, materialized: str = "") -> str:
    """CTEs ending in ``sr``: per pupil × subject of ``agg``, the pupil's class, enrolment flag, scope, coefficient."""
    return f"""
placed AS (
  SELECT p.student_id, COALESCE(e.class_id, p.mark_class) AS class_id,
         CASE WHEN e.class_id IS NULL THEN 0 ELSE 1 END AS enrolled
  FROM (SELECT student_id, MAX(mark_class) AS mark_class FROM {agg} GROUP BY student_id) p
  LEFT JOIN enrolment e ON e.student_id = p.student_id AND e.ends_on IS NULL AND e.school_id IN {schools}
       AND e.school_year_id = (SELECT school_year_id FROM term WHERE id = {term_id})
),
coef AS (
  SELECT class_id, subject_code, coefficient FROM (
    SELECT c.id AS class_id, k.subject_code, CAST(k.coefficient AS DOUBLE PRECISION) AS coefficient,
           ROW_NUMBER() OVER (
             PARTITION BY c.id, k.subject_code
             ORDER BY CASE WHEN k.tenant_id = c.school_id THEN 2 WHEN k.tenant_id = c.region_id THEN 1 ELSE 0 END DESC
           ) AS rn
    FROM school_class c
    JOIN subject_coefficient k ON k.level_code = c.level_code
         AND COALESCE(k.track_code, '') = COALESCE(c.track_code, '')
         AND (k.tenant_id IS NULL OR k.tenant_id = c.region_id OR k.tenant_id = c.school_id)
    WHERE c.school_id IN {schools}
  ) r WHERE rn = 1
),
sr AS {materialized} (
  SELECT g.student_id, g.subject_code, p.class_id, p.enrolled, c.region_id, c.province_id, c.school_id,
         g.average, COALESCE(k.coefficient, 0.0) AS coefficient
  FROM {agg} g
  JOIN placed p ON p.student_id = g.student_id
  JOIN school_class c ON c.id = p.class_id
  LEFT JOIN coef k ON k.class_id = p.class_id AND k.subject_code = g.subject_code
)"""


def general_average_select(sa: str) -> str:
    """Per pupil from the subject averages in ``sa``: class, enrolment flag, scope, general average."""
    return f"""
  SELECT student_id, class_id, enrolled, region_id, province_id, school_id,
         SUM(CASE WHEN average IS NOT NULL THEN average * coefficient END)
           / NULLIF(SUM(CASE WHEN average IS NOT NULL THEN coefficient END), 0) AS average
  FROM {sa} GROUP BY student_id, class_id, enrolled, region_id, province_id, school_id"""


def subject_insert(sa: str, term_id: int) -> str:
    """``INSERT`` of ``grade_subject_result`` from ``sa``, in the order of its unique index.

    Sorted rows reach the indexes on (term, pupil, subject), pupil and class in ascending order;
    on a term without results yet, PostgreSQL then appends to the rightmost leaf without
    descending the tree, which makes the insert about 40 % faster.
    """
    return f"""
  INSERT INTO grade_subject_result
    (region_id, province_id, school_id, term_id, class_id, student_id, subject_code, average, coefficient)
  SELECT region_id, province_id, school_id, {term_id}, class_id, student_id, subject_code, average, coefficient
  FROM {sa}
  ORDER BY student_id, subject_code"""


def general_ranked_select(gen: str, term_id: int, extra: str = "") -> str:
    """The rows of ``grade_general_result`` from ``gen`` with ``RANK()`` per class, by pupil (and ``extra``)."""
    return f"""
  SELECT region_id, province_id, school_id, {term_id} AS term_id, class_id, student_id, average,
         CASE WHEN flag = 1 THEN RANK() OVER (PARTITION BY class_id, flag ORDER BY k DESC) END AS rank,
         SUM(flag) OVER (PARTITION BY class_id) AS ranked{extra}
  FROM (
    SELECT g.*, {_key("average")} AS k,
           CASE WHEN enrolled = 1 AND average IS NOT NULL THEN 1 ELSE 0 END AS flag
    FROM {gen} g
  ) t
  ORDER BY student_id"""


def general_insert(gen: str, term_id: int) -> str:
    """``INSERT`` of ``grade_general_result`` from ``gen``, with ``RANK()`` per class."""
    return f"""
  INSERT INTO grade_general_result
    (region_id, province_id, school_id, term_id, class_id, student_id, average, rank, ranked)
  {general_ranked_select(gen, term_id)}"""


def population_cte(sa: str, gen: str) -> str:
    """``pop``: the averages the statistics describe (pupils with an open enrolment in the class)."""
    return f"""
pop AS (
  SELECT region_id, province_id, school_id, class_id, subject_code, average, {_key("average")} AS k
  FROM {sa} WHERE enrolled = 1
  UNION ALL
  SELECT region_id, province_id, school_id, class_id, '' AS subject_code, average, {_key("average")} AS k
  FROM {gen} WHERE enrolled = 1
)"""


def _bands(json_array: str) -> str:
    parts = []
    for i in range(BANDS):
        low, high = _millionths(i * BAND_WIDTH), _millionths((i + 1) * BAND_WIDTH)
        if i == 0:
            test = f"k < {high}"
        elif i == BANDS - 1:
            test = f"k >= {low}"
        else:
            test = f"k >= {low} AND k < {high}"
        parts.append(f"SUM(CASE WHEN {test} THEN 1 ELSE 0 END)")
    return f"{json_array}({', '.join(parts)})"


STATS_COLUMNS = (
    'region_id, province_id, school_id, term_id, class_id, subject_code, "count", mean, median, minimum, maximum, '
    "pass_share, distribution"
)


def stats_select(term_id: int, dialect: str) -> str:
    """The rows of ``grade_class_stats`` from ``pop`` (and ``med`` on SQLite), in :data:`STATS_COLUMNS` order.

    Grouped on the class and subject only: a class's region, province and school are the same on
    all its rows (a shorter sort key than the five columns).
    """
    if dialect == "postgres":
        median, json_array, join = "percentile_cont(0.5) WITHIN GROUP (ORDER BY p.average)", "jsonb_build_array", ""
    else:
        median, json_array = "MAX(med.median)", "json_array"
        join = "LEFT JOIN med ON med.class_id = p.class_id AND med.subject_code = p.subject_code"
    return f"""
  SELECT MIN(p.region_id) AS region_id, MIN(p.province_id) AS province_id, MIN(p.school_id) AS school_id,
         {term_id} AS term_id, p.class_id, p.subject_code, COUNT(p.average) AS "count",
         AVG(p.average) AS mean, {median} AS median, MIN(p.average) AS minimum, MAX(p.average) AS maximum,
         CAST(SUM(CASE WHEN k >= {_millionths(PASS_MARK)} THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / NULLIF(COUNT(p.average), 0) AS pass_share,
         {_bands(json_array)} AS distribution
  FROM pop p {join}
  GROUP BY p.class_id, p.subject_code"""


def stats_insert(term_id: int, dialect: str) -> str:
    """``INSERT`` of ``grade_class_stats`` from ``pop`` (and ``med`` on SQLite)."""
    return f"""
  INSERT INTO grade_class_stats ({STATS_COLUMNS}){stats_select(term_id, dialect)}"""


#: SQLite's median: the middle value, or the mean of the two middle values, per class × subject.
SQLITE_MEDIAN_CTE = """
med AS (
  SELECT class_id, subject_code, AVG(average) AS median FROM (
    SELECT class_id, subject_code, average,
           ROW_NUMBER() OVER (PARTITION BY class_id, subject_code ORDER BY average) AS rn,
           COUNT(*) OVER (PARTITION BY class_id, subject_code) AS n
    FROM pop WHERE average IS NOT NULL
  ) o
  WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
  GROUP BY class_id, subject_code
)"""


def postgres_statement(agg: str, schools: str, term_id: int) -> str:
    """From the per-pupil subject averages in ``agg``, the three result tables in one PostgreSQL statement.

    Writable CTEs: the subject rows and the general averages are materialised once and feed the
    three ``INSERT … SELECT``; the statement returns the counts.
    """
    return f"""
WITH {subject_row_ctes(agg, schools, term_id, "MATERIALIZED")},
gen AS MATERIALIZED ({general_average_select("sr")}
),
ins_subject AS ({subject_insert("sr", term_id)}
),
ins_general AS ({general_insert("gen", term_id)}
),
{population_cte("sr", "gen")},
ins_stats AS ({stats_insert(term_id, "postgres")}
  RETURNING 1
)
SELECT (SELECT COUNT(*) FROM sr) AS subject_results,
       (SELECT COUNT(*) FROM gen) AS general_results,
       (SELECT COUNT(*) FROM gen WHERE enrolled = 1 AND average IS NOT NULL) AS ranked,
       (SELECT COUNT(*) FROM ins_stats) AS class_stats"""


#: A re-close's temporary tables (PostgreSQL): subject rows, general averages with ranks, class statistics.
SR_TABLE, GEN_TABLE, STATS_TABLE = "pg_temp.grades_close_sr", "pg_temp.grades_close_gen", "pg_temp.grades_close_stats"


def reclose_tables(agg: str, schools: str, term_id: int) -> list[str]:
    """A re-close on PostgreSQL: the three kinds of results of ``agg`` into temporary tables (to compare)."""
    return [
        f"CREATE TEMP TABLE grades_close_sr ON COMMIT DROP AS WITH {subject_row_ctes(agg, schools, term_id)} "
        "SELECT * FROM sr",
        "CREATE TEMP TABLE grades_close_gen ON COMMIT DROP AS "
        + general_ranked_select(f"({general_average_select(SR_TABLE)})", term_id, ", enrolled"),
        f"CREATE TEMP TABLE grades_close_stats ON COMMIT DROP AS WITH {population_cte(SR_TABLE, GEN_TABLE)} "
        + stats_select(term_id, "postgres"),
    ]


def _as_stored(column: str, digits: tuple[int, int] | None = None) -> str:
    """``n.column`` and ``t.column`` are equal as stored (a computed value rounded to the column's scale)."""
    new = f"CAST(n.{column} AS NUMERIC({digits[0]}, {digits[1]}))" if digits else f"n.{column}"
    return f"{new} IS NOT DISTINCT FROM t.{column}"


def reclose_statements(schools: str, term_id: int) -> list[str]:
    """A re-close on PostgreSQL, from :func:`reclose_tables`: only what changed is written.

    First one statement deleting the stored rows of these schools and term that are gone or differ
    in any column (as stored: numerics at their scale), then one inserting the computed rows whose
    key (pupil × subject, pupil, class × subject) is no longer stored. Rows that did not change keep
    their place, their index entries and their id; the result is the same as deleting everything
    and inserting it again.
    """
    where = f"t.term_id = {term_id} AND t.school_id IN {schools}"
    scope = " AND ".join(_as_stored(c) for c in ("region_id", "province_id", "school_id", "class_id"))
    average = _as_stored("average", (6, 3))
    stats_values = " AND ".join(
        [
            _as_stored('"count"'),
            *(_as_stored(c, (6, 3)) for c in ("mean", "median", "minimum", "maximum")),
            _as_stored("pass_share", (5, 4)),
            _as_stored("distribution"),
        ]
    )
    delete = f"""
WITH d_subject AS (
  DELETE FROM grade_subject_result t WHERE {where} AND NOT EXISTS (
    SELECT 1 FROM {SR_TABLE} n WHERE n.student_id = t.student_id AND n.subject_code = t.subject_code AND {scope}
      AND {average} AND {_as_stored("coefficient", (5, 2))})
),
d_general AS (
  DELETE FROM grade_general_result t WHERE {where} AND NOT EXISTS (
    SELECT 1 FROM {GEN_TABLE} n WHERE n.student_id = t.student_id AND {scope}
      AND {average} AND {_as_stored("rank")} AND {_as_stored("ranked")})
)
DELETE FROM grade_class_stats t WHERE {where} AND NOT EXISTS (
  SELECT 1 FROM {STATS_TABLE} n WHERE n.class_id = t.class_id AND n.subject_code = t.subject_code AND {scope}
    AND {stats_values})"""
    insert = f"""
WITH i_subject AS (
  INSERT INTO grade_subject_result
    (region_id, province_id, school_id, term_id, class_id, student_id, subject_code, average, coefficient)
  SELECT region_id, province_id, school_id, {term_id}, class_id, student_id, subject_code, average, coefficient
  FROM {SR_TABLE} n WHERE NOT EXISTS (
    SELECT 1 FROM grade_subject_result t
    WHERE t.term_id = {term_id} AND t.student_id = n.student_id AND t.subject_code = n.subject_code)
  ORDER BY student_id, subject_code
),
i_general AS (
  INSERT INTO grade_general_result
    (region_id, province_id, school_id, term_id, class_id, student_id, average, rank, ranked)
  SELECT region_id, province_id, school_id, {term_id}, class_id, student_id, average, rank, ranked
  FROM {GEN_TABLE} n WHERE NOT EXISTS (
    SELECT 1 FROM grade_general_result t WHERE t.term_id = {term_id} AND t.student_id = n.student_id)
  ORDER BY student_id
)
INSERT INTO grade_class_stats ({STATS_COLUMNS})
SELECT {STATS_COLUMNS} FROM {STATS_TABLE} n WHERE NOT EXISTS (
  SELECT 1 FROM grade_class_stats t
  WHERE t.term_id = {term_id} AND t.class_id = n.class_id AND t.subject_code = n.subject_code)"""
    return [delete, insert]


RECLOSE_COUNTS = f"""
SELECT (SELECT COUNT(*) FROM {SR_TABLE}) AS subject_results, (SELECT COUNT(*) FROM {GEN_TABLE}) AS general_results,
       (SELECT COUNT(*) FROM {GEN_TABLE} WHERE rank IS NOT NULL) AS ranked,
       (SELECT COUNT(*) FROM {STATS_TABLE}) AS class_stats"""


def existing_results(schools: str, term_id: int) -> str:
    """A row when these schools already have results for the term (then the computation is a re-close)."""
    where = f"term_id = {term_id} AND school_id IN {schools}"
    return (
        f"SELECT 1 FROM grade_subject_result WHERE {where} UNION ALL SELECT 1 FROM grade_general_result WHERE {where} "
        f"UNION ALL SELECT 1 FROM grade_class_stats WHERE {where} LIMIT 1"
    )


def delete_statements(schools: str, term_id: int, dialect: str) -> list[str]:
    """Remove the previous results of these schools and term (one statement on PostgreSQL)."""
    where = f"term_id = {term_id} AND school_id IN {schools}"
    tables = ("grade_subject_result", "grade_general_result", "grade_class_stats")
    if dialect == "postgres":
        return [
            f"WITH d1 AS (DELETE FROM {tables[0]} WHERE {where}), d2 AS (DELETE FROM {tables[1]} WHERE {where}) "
            f"DELETE FROM {tables[2]} WHERE {where}"
        ]
    return [f"DELETE FROM {table} WHERE {where}" for table in tables]


# --------------------------------------------------------------------------- running it


async def _check_schools(db: Database, school_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The school rows (``id``, ``path``); ``ValueError`` for a non-school, ``PermissionError`` outside the scope."""
    ids = sorted({int(s) for s in school_ids})
    if not ids:
        raise ValueError("no school to close")
    rows = await db.fetch(f"SELECT id, kind, path FROM tenant WHERE id IN {_ids(ids)}")
    found = {r["id"]: r for r in rows}
    missing = [s for s in ids if s not in found or found[s]["kind"] != "school"]
    if missing:
        raise ValueError(f"not schools: {', '.join(map(str, missing))}")
    scope = current_scope.get()
    if scope is None:
        raise RuntimeError("the close runs inside db.scoped(...)")
    outside = [s for s in ids if not scope.covers(parse_path(found[s]["path"]))]
    if outside:
        raise PermissionError(f"schools outside the scope: {', '.join(map(str, outside))}")
    return [found[s] for s in ids]


async def compute_results(db: Database, *, school_ids: Sequence[int], term_id: int) -> CloseStats:
    """Replace the term's results of these schools, without closing the term; inside ``db.scoped(...)``.

    ``ValueError`` for an id that is not a school, ``PermissionError`` for a school outside the
    transaction's scope, ``RuntimeError`` outside a scoped transaction.
    """
    if not db.in_transaction():
        raise RuntimeError("compute_results runs inside the caller's transaction (db.scoped(...))")
    began = time.perf_counter()
    term_id = int(term_id)
    schools_rows = await _check_schools(db, school_ids)
    schools = _ids([r["id"] for r in schools_rows])
    if db.dialect == "postgres":
        # Two computations for the same school (two previews, a preview and a close) take turns:
        # the second one's DELETE then sees the first one's rows. (SQLite serialises writers.)
        await db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('grades.close'), s) "
            f"FROM unnest(ARRAY[{schools[1:-1]}]::integer[]) AS s ORDER BY s"
        )
    if db.dialect == "postgres":
        row = await _postgres_compute(db, schools, term_id)
    else:
        for statement in delete_statements(schools, term_id, db.dialect):
            await db.execute(statement)
        row = await _sqlite_compute(db, schools, term_id)
    assert row is not None
    return CloseStats(
        term_id=term_id,
        schools=len(schools_rows),
        subject_results=int(row["subject_results"]),
        general_results=int(row["general_results"]),
        ranked=int(row["ranked"]),
        class_stats=int(row["class_stats"]),
        seconds=time.perf_counter() - began,
    )


async def _postgres_compute(db: Database, schools: str, term_id: int) -> dict[str, Any]:
    """PostgreSQL: the planner settings, the pass over the marks, the statement writing the results."""
    names = list(PG_SETTINGS)
    previous = await db.fetchrow("SELECT " + ", ".join(f"current_setting('{name}') AS {name}" for name in names))
    assert previous is not None
    await db.execute(
        "SELECT " + ", ".join(f"set_config('{name}', {{}}, true)" for name in names), *PG_SETTINGS.values()
    )
    # On failure the transaction (or the caller's savepoint) rolls back, and the settings with it.
    temporary = ("pg_temp.grades_close_agg", SR_TABLE, GEN_TABLE, STATS_TABLE)
    await db.execute(f"DROP TABLE IF EXISTS {', '.join(temporary)}")
    reclose = await db.fetchval(existing_results(schools, term_id)) is not None
    # The one pass over the marks, in a statement of its own: PostgreSQL plans parallel workers for
    # CREATE TABLE … AS but not for INSERT or writable CTEs. Analysed, so that the next statement
    # is planned on real sizes.
    await db.execute(f"CREATE TEMP TABLE grades_close_agg ON COMMIT DROP AS {mark_average_select(schools, term_id)}")
    await db.execute("ANALYZE pg_temp.grades_close_agg")
    if reclose:
        # Results exist: compute into temporary tables and write only the rows that changed (deleting
        # and inserting a million unchanged rows costs more than computing them).
        for statement in [
            *reclose_tables("pg_temp.grades_close_agg", schools, term_id),
            *reclose_statements(schools, term_id),
        ]:
            await db.execute(statement)
        row = await db.fetchrow(RECLOSE_COUNTS)
    else:
        # A first close: one statement writes the three tables.
        row = await db.fetchrow(postgres_statement("pg_temp.grades_close_agg", schools, term_id))
    await db.execute(f"DROP TABLE IF EXISTS {', '.join(temporary)}")
    await db.execute(
        "SELECT " + ", ".join(f"set_config('{name}', {{}}, true)" for name in names),
        *(str(previous[name]) for name in names),
    )
    assert row is not None
    return row


async def _sqlite_compute(db: Database, schools: str, term_id: int) -> dict[str, Any]:
    """SQLite: three temporary tables (subject averages, subject rows, general averages), three ``INSERT … SELECT``."""
    agg, sr, gen = "temp.grades_close_agg", "temp.grades_close_sr", "temp.grades_close_gen"
    for table in (agg, sr, gen):
        await db.execute(f"DROP TABLE IF EXISTS {table}")
    try:
        await db.execute(f"CREATE TEMP TABLE grades_close_agg AS {mark_average_select(schools, term_id)}")
        await db.execute(
            f"CREATE TEMP TABLE grades_close_sr AS WITH {subject_row_ctes(agg, schools, term_id)} SELECT * FROM sr"
        )
        await db.execute(f"CREATE TEMP TABLE grades_close_gen AS {general_average_select(sr)}")
        await db.execute(subject_insert(sr, term_id))
        await db.execute(general_insert(gen, term_id))
        await db.execute(f"WITH {population_cte(sr, gen)}, {SQLITE_MEDIAN_CTE} {stats_insert(term_id, 'sqlite')}")
        row = await db.fetchrow(
            f"SELECT (SELECT COUNT(*) FROM {sr}) AS subject_results, (SELECT COUNT(*) FROM {gen}) AS general_results, "
            f"(SELECT COUNT(*) FROM {gen} WHERE enrolled = 1 AND average IS NOT NULL) AS ranked, "
            f"(SELECT COUNT(*) FROM grade_class_stats WHERE term_id = {term_id} AND school_id IN {schools}) "
            "AS class_stats"
        )
    finally:
        for table in (agg, sr, gen):
            await db.execute(f"DROP TABLE IF EXISTS {table}")
    assert row is not None
    return row


async def close_term(db: Database, *, school_ids: Sequence[int], term_id: int, actor_id: int | None) -> CloseStats:
    """Close a term for these schools: lock it (one ``grade_term_close`` row each), then compute the results.

    Runs inside the caller's ``db.scoped(...)``. A school whose term is already closed raises
    :class:`TermAlreadyClosed` (409) and nothing is written; two closes racing meet on the unique
    index ``(school_id, term_id)``, and the second one fails the same way.
    """
    if not db.in_transaction():
        raise RuntimeError("close_term runs inside the caller's transaction (db.scoped(...))")
    term_id = int(term_id)
    rows = await _check_schools(db, school_ids)
    if await db.fetchval(f"SELECT id FROM term WHERE id = {term_id}") is None:
        raise ValueError(f"no term {term_id}")
    ids = _ids([r["id"] for r in rows])
    closed = await db.fetch(f"SELECT school_id FROM grade_term_close WHERE term_id = {term_id} AND school_id IN {ids}")
    if closed:
        raise TermAlreadyClosed(term_id, [r["school_id"] for r in closed])
    now = datetime.now(UTC)
    values = []
    for r in rows:
        path = parse_path(r["path"])
        values.append((path[1], path[2] if len(path) > 2 else None, r["id"], term_id, now, actor_id))
    try:
        async with db.savepoint():
            await db.executemany(
                "INSERT INTO grade_term_close (region_id, province_id, school_id, term_id, closed_at, closed_by) "
                "VALUES ({}, {}, {}, {}, {}, {})",
                values,
            )
    except Exception as exc:
        if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
            raise TermAlreadyClosed(term_id, [r["id"] for r in rows]) from exc
        raise
    return await compute_results(db, school_ids=[r["id"] for r in rows], term_id=term_id)
