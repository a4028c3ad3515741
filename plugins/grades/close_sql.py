"""The statements of the semester close (:mod:`plugins.grades.close`), composed with :class:`SQL`.

Set-based throughout; each function returns a statement or a fragment of one, with its values bound.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.plugin_api import SQL, ident, in_, join
from plugins.grades import policy
from plugins.grades.calc import BAND_WIDTH, BANDS, COMPARE_SCALE, PASS_MARK, SCALE


def school_list(values: Sequence[int]) -> SQL:
    """An ``IN`` list of school ids (validated ``int``s, sorted, each bound once)."""
    return in_(sorted({int(v) for v in values}))


def _key(column: SQL) -> SQL:
    """The comparison key of :func:`plugins.grades.calc.compare_key` in SQL."""
    return SQL("ROUND({} * {})", column, float(COMPARE_SCALE))


def _millionths(value: float) -> int:
    """A threshold on the comparison key's scale."""
    return round(value * COMPARE_SCALE)


def _term(term_id: int) -> SQL:
    """The term id as an integer column value (a bare parameter in a select list has no type)."""
    return SQL("CAST({} AS INTEGER)", term_id)


def mark_average_select(schools: SQL, term_id: int) -> SQL:
    """Per pupil × subject, from the marks: the weighted mean on /20 and the pupil's highest class among them.

    Each mark counts ``score × 20 ÷ max_score`` with its assessment's weight; an absence counts 0
    or nothing, an excused absence nothing or 0, by the policy of the assessment's region
    (:mod:`plugins.grades.policy`: the region's row, else the national one, else the defaults);
    a present mark without a score counts nothing.
    """
    return SQL(
        """
  SELECT student_id, subject_code, MAX(class_id) AS mark_class,
         SUM(v * w) / NULLIF(SUM(CASE WHEN v IS NOT NULL THEN w END), 0) AS average
  FROM (
    SELECT m.student_id, a.subject_code, a.class_id, CAST(a.weight AS DOUBLE PRECISION) AS w,
           CASE WHEN m.status = 'absent' THEN (CASE WHEN {} = 'zero' THEN 0.0 END)
                WHEN m.status = 'excused' THEN (CASE WHEN {} = 'zero' THEN 0.0 END)
                ELSE CAST(m.score AS DOUBLE PRECISION) * {} / CAST(a.max_score AS DOUBLE PRECISION) END AS v
    FROM grade_mark m
    JOIN grade_assessment a ON a.id = m.assessment_id
    {}
    WHERE a.term_id = {} AND a.school_id IN {} AND a.max_score > 0
  ) marks
  GROUP BY student_id, subject_code""",
        policy.policy_value("absent_counts_as"),
        policy.policy_value("excused_counts_as"),
        float(SCALE),
        policy.policy_join(SQL("a.region_id")),
        term_id,
        schools,
    )


def subject_row_ctes(agg: SQL, schools: SQL, term_id: int, materialized: bool = False) -> SQL:
    """CTEs ending in ``sr``: per pupil × subject of ``agg``, the pupil's class, enrolment flag, scope, coefficient."""
    return SQL(
        """
placed AS (
  SELECT p.student_id, COALESCE(e.class_id, p.mark_class) AS class_id,
         CASE WHEN e.class_id IS NULL THEN 0 ELSE 1 END AS enrolled
  FROM (SELECT student_id, MAX(mark_class) AS mark_class FROM {} GROUP BY student_id) p
  LEFT JOIN enrolment e ON e.student_id = p.student_id AND e.ends_on IS NULL AND e.school_id IN {}
       AND e.school_year_id = (SELECT school_year_id FROM term WHERE id = {})
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
    WHERE c.school_id IN {}
  ) r WHERE rn = 1
),
sr AS {} (
  SELECT g.student_id, g.subject_code, p.class_id, p.enrolled, c.region_id, c.province_id, c.school_id,
         g.average, COALESCE(k.coefficient, 0.0) AS coefficient
  FROM {} g
  JOIN placed p ON p.student_id = g.student_id
  JOIN school_class c ON c.id = p.class_id
  LEFT JOIN coef k ON k.class_id = p.class_id AND k.subject_code = g.subject_code
)""",
        agg,
        schools,
        term_id,
        schools,
        SQL("MATERIALIZED") if materialized else SQL(),
        agg,
    )


def general_average_select(sa: SQL) -> SQL:
    """Per pupil from the subject averages in ``sa``: class, enrolment flag, scope, general average."""
    return SQL(
        """
  SELECT student_id, class_id, enrolled, region_id, province_id, school_id,
         SUM(CASE WHEN average IS NOT NULL THEN average * coefficient END)
           / NULLIF(SUM(CASE WHEN average IS NOT NULL THEN coefficient END), 0) AS average
  FROM {} GROUP BY student_id, class_id, enrolled, region_id, province_id, school_id""",
        sa,
    )


def subject_insert(sa: SQL, term_id: int) -> SQL:
    """``INSERT`` of ``grade_subject_result`` from ``sa``, in the order of its unique index.

    Sorted rows reach the indexes on (term, pupil, subject), pupil and class in ascending order;
    on a term without results yet, PostgreSQL then appends to the rightmost leaf without
    descending the tree, which makes the insert about 40 % faster.
    """
    return SQL(
        """
  INSERT INTO grade_subject_result
    (region_id, province_id, school_id, term_id, class_id, student_id, subject_code, average, coefficient)
  SELECT region_id, province_id, school_id, {}, class_id, student_id, subject_code, average, coefficient
  FROM {}
  ORDER BY student_id, subject_code""",
        _term(term_id),
        sa,
    )


def general_ranked_select(gen: SQL, term_id: int, extra: SQL | None = None) -> SQL:
    """The rows of ``grade_general_result`` from ``gen`` with ``RANK()`` per class, by pupil (and ``extra``)."""
    return SQL(
        """
  SELECT region_id, province_id, school_id, {} AS term_id, class_id, student_id, average,
         CASE WHEN flag = 1 THEN RANK() OVER (PARTITION BY class_id, flag ORDER BY k DESC) END AS rank,
         SUM(flag) OVER (PARTITION BY class_id) AS ranked{}
  FROM (
    SELECT g.*, {} AS k,
           CASE WHEN enrolled = 1 AND average IS NOT NULL THEN 1 ELSE 0 END AS flag
    FROM {} g
  ) t
  ORDER BY student_id""",
        _term(term_id),
        extra if extra is not None else SQL(),
        _key(SQL("average")),
        gen,
    )


def general_insert(gen: SQL, term_id: int) -> SQL:
    """``INSERT`` of ``grade_general_result`` from ``gen``, with ``RANK()`` per class."""
    return SQL(
        """
  INSERT INTO grade_general_result
    (region_id, province_id, school_id, term_id, class_id, student_id, average, rank, ranked)
  {}""",
        general_ranked_select(gen, term_id),
    )


def population_cte(sa: SQL, gen: SQL) -> SQL:
    """``pop``: the averages the statistics describe (pupils with an open enrolment in the class)."""
    key = _key(SQL("average"))
    return SQL(
        """
pop AS (
  SELECT region_id, province_id, school_id, class_id, subject_code, average, {} AS k
  FROM {} WHERE enrolled = 1
  UNION ALL
  SELECT region_id, province_id, school_id, class_id, '' AS subject_code, average, {} AS k
  FROM {} WHERE enrolled = 1
)""",
        key,
        sa,
        key,
        gen,
    )


def _bands(dialect: str) -> SQL:
    parts = []
    for i in range(BANDS):
        low, high = _millionths(i * BAND_WIDTH), _millionths((i + 1) * BAND_WIDTH)
        if i == 0:
            test = SQL("k < {}", high)
        elif i == BANDS - 1:
            test = SQL("k >= {}", low)
        else:
            test = SQL("k >= {} AND k < {}", low, high)
        parts.append(SQL("SUM(CASE WHEN {} THEN 1 ELSE 0 END)", test))
    if dialect == "postgres":
        return SQL("jsonb_build_array({})", join(", ", parts))
    return SQL("json_array({})", join(", ", parts))


STATS_COLUMNS = SQL(
    'region_id, province_id, school_id, term_id, class_id, subject_code, "count", mean, median, minimum, maximum, '
    "pass_share, distribution"
)


def stats_select(term_id: int, dialect: str) -> SQL:
    """The rows of ``grade_class_stats`` from ``pop`` (and ``med`` on SQLite), in :data:`STATS_COLUMNS` order.

    Grouped on the class and subject only: a class's region, province and school are the same on
    all its rows (a shorter sort key than the five columns).
    """
    if dialect == "postgres":
        median, joined = SQL("percentile_cont(0.5) WITHIN GROUP (ORDER BY p.average)"), SQL()
    else:
        median = SQL("MAX(med.median)")
        joined = SQL("LEFT JOIN med ON med.class_id = p.class_id AND med.subject_code = p.subject_code")
    return SQL(
        """
  SELECT MIN(p.region_id) AS region_id, MIN(p.province_id) AS province_id, MIN(p.school_id) AS school_id,
         {} AS term_id, p.class_id, p.subject_code, COUNT(p.average) AS "count",
         AVG(p.average) AS mean, {} AS median, MIN(p.average) AS minimum, MAX(p.average) AS maximum,
         CAST(SUM(CASE WHEN k >= {} THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
           / NULLIF(COUNT(p.average), 0) AS pass_share,
         {} AS distribution
  FROM pop p {}
  GROUP BY p.class_id, p.subject_code""",
        _term(term_id),
        median,
        _millionths(PASS_MARK),
        _bands(dialect),
        joined,
    )


def stats_insert(term_id: int, dialect: str) -> SQL:
    """``INSERT`` of ``grade_class_stats`` from ``pop`` (and ``med`` on SQLite)."""
    return SQL(
        """
  INSERT INTO grade_class_stats ({}){}""",
        STATS_COLUMNS,
        stats_select(term_id, dialect),
    )


#: SQLite's median: the middle value, or the mean of the two middle values, per class × subject.
SQLITE_MEDIAN_CTE = SQL("""
med AS (
  SELECT class_id, subject_code, AVG(average) AS median FROM (
    SELECT class_id, subject_code, average,
           ROW_NUMBER() OVER (PARTITION BY class_id, subject_code ORDER BY average) AS rn,
           COUNT(*) OVER (PARTITION BY class_id, subject_code) AS n
    FROM pop WHERE average IS NOT NULL
  ) o
  WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
  GROUP BY class_id, subject_code
)""")


def postgres_statement(agg: SQL, schools: SQL, term_id: int) -> SQL:
    """From the per-pupil subject averages in ``agg``, the three result tables in one PostgreSQL statement.

    Writable CTEs: the subject rows and the general averages are materialised once and feed the
    three ``INSERT … SELECT``; the statement returns the counts.
    """
    return SQL(
        """
WITH {},
gen AS MATERIALIZED ({}
),
ins_subject AS ({}
),
ins_general AS ({}
),
{},
ins_stats AS ({}
  RETURNING 1
)
SELECT (SELECT COUNT(*) FROM sr) AS subject_results,
       (SELECT COUNT(*) FROM gen) AS general_results,
       (SELECT COUNT(*) FROM gen WHERE enrolled = 1 AND average IS NOT NULL) AS ranked,
       (SELECT COUNT(*) FROM ins_stats) AS class_stats""",
        subject_row_ctes(agg, schools, term_id, materialized=True),
        general_average_select(SQL("sr")),
        subject_insert(SQL("sr"), term_id),
        general_insert(SQL("gen"), term_id),
        population_cte(SQL("sr"), SQL("gen")),
        stats_insert(term_id, "postgres"),
    )


#: The pass over the marks' temporary table, and a re-close's (PostgreSQL): subject rows, general
#: averages with ranks, class statistics.
AGG_TABLE = SQL("pg_temp.grades_close_agg")
SR_TABLE, GEN_TABLE, STATS_TABLE = (
    SQL("pg_temp.grades_close_sr"),
    SQL("pg_temp.grades_close_gen"),
    SQL("pg_temp.grades_close_stats"),
)


def reclose_tables(agg: SQL, schools: SQL, term_id: int) -> list[SQL]:
    """A re-close on PostgreSQL: the three kinds of results of ``agg`` into temporary tables (to compare)."""
    return [
        SQL(
            "CREATE TEMP TABLE grades_close_sr ON COMMIT DROP AS WITH {} SELECT * FROM sr",
            subject_row_ctes(agg, schools, term_id),
        ),
        SQL(
            "CREATE TEMP TABLE grades_close_gen ON COMMIT DROP AS {}",
            general_ranked_select(SQL("({})", general_average_select(SR_TABLE)), term_id, SQL(", enrolled")),
        ),
        SQL(
            "CREATE TEMP TABLE grades_close_stats ON COMMIT DROP AS WITH {} {}",
            population_cte(SR_TABLE, GEN_TABLE),
            stats_select(term_id, "postgres"),
        ),
    ]


#: A computed value as stored, rounded to its column's scale (a type modifier is text, never a value).
_NUMERIC = {
    (6, 3): "CAST({} AS NUMERIC(6, 3)) IS NOT DISTINCT FROM {}",
    (5, 2): "CAST({} AS NUMERIC(5, 2)) IS NOT DISTINCT FROM {}",
    (5, 4): "CAST({} AS NUMERIC(5, 4)) IS NOT DISTINCT FROM {}",
}


def _as_stored(column: str, digits: tuple[int, int] | None = None) -> SQL:
    """``n.column`` and ``t.column`` are equal as stored (a computed value rounded to the column's scale)."""
    new, old = ident("n", column), ident("t", column)
    if digits:
        return SQL(_NUMERIC[digits], new, old)
    return SQL("{} IS NOT DISTINCT FROM {}", new, old)


def reclose_statements(schools: SQL, term_id: int) -> list[SQL]:
    """A re-close on PostgreSQL, from :func:`reclose_tables`: only what changed is written.

    First one statement deleting the stored rows of these schools and term that are gone or differ
    in any column (as stored: numerics at their scale), then one inserting the computed rows whose
    key (pupil × subject, pupil, class × subject) is no longer stored. Rows that did not change keep
    their place, their index entries and their id; the result is the same as deleting everything
    and inserting it again.
    """
    where = SQL("t.term_id = {} AND t.school_id IN {}", term_id, schools)
    scope = join(" AND ", [_as_stored(c) for c in ("region_id", "province_id", "school_id", "class_id")])
    average = _as_stored("average", (6, 3))
    stats_values = join(
        " AND ",
        [
            _as_stored("count"),
            *(_as_stored(c, (6, 3)) for c in ("mean", "median", "minimum", "maximum")),
            _as_stored("pass_share", (5, 4)),
            _as_stored("distribution"),
        ],
    )
    delete = SQL(
        """
WITH d_subject AS (
  DELETE FROM grade_subject_result t WHERE {} AND NOT EXISTS (
    SELECT 1 FROM {} n WHERE n.student_id = t.student_id AND n.subject_code = t.subject_code AND {}
      AND {} AND {})
),
d_general AS (
  DELETE FROM grade_general_result t WHERE {} AND NOT EXISTS (
    SELECT 1 FROM {} n WHERE n.student_id = t.student_id AND {}
      AND {} AND {} AND {})
)
DELETE FROM grade_class_stats t WHERE {} AND NOT EXISTS (
  SELECT 1 FROM {} n WHERE n.class_id = t.class_id AND n.subject_code = t.subject_code AND {}
    AND {})""",
        where,
        SR_TABLE,
        scope,
        average,
        _as_stored("coefficient", (5, 2)),
        where,
        GEN_TABLE,
        scope,
        average,
        _as_stored("rank"),
        _as_stored("ranked"),
        where,
        STATS_TABLE,
        scope,
        stats_values,
    )
    insert = SQL(
        """
WITH i_subject AS (
  INSERT INTO grade_subject_result
    (region_id, province_id, school_id, term_id, class_id, student_id, subject_code, average, coefficient)
  SELECT region_id, province_id, school_id, {}, class_id, student_id, subject_code, average, coefficient
  FROM {} n WHERE NOT EXISTS (
    SELECT 1 FROM grade_subject_result t
    WHERE t.term_id = {} AND t.student_id = n.student_id AND t.subject_code = n.subject_code)
  ORDER BY student_id, subject_code
),
i_general AS (
  INSERT INTO grade_general_result
    (region_id, province_id, school_id, term_id, class_id, student_id, average, rank, ranked)
  SELECT region_id, province_id, school_id, {}, class_id, student_id, average, rank, ranked
  FROM {} n WHERE NOT EXISTS (
    SELECT 1 FROM grade_general_result t WHERE t.term_id = {} AND t.student_id = n.student_id)
  ORDER BY student_id
)
INSERT INTO grade_class_stats ({})
SELECT {} FROM {} n WHERE NOT EXISTS (
  SELECT 1 FROM grade_class_stats t
  WHERE t.term_id = {} AND t.class_id = n.class_id AND t.subject_code = n.subject_code)""",
        _term(term_id),
        SR_TABLE,
        term_id,
        _term(term_id),
        GEN_TABLE,
        term_id,
        STATS_COLUMNS,
        STATS_COLUMNS,
        STATS_TABLE,
        term_id,
    )
    return [delete, insert]


RECLOSE_COUNTS = SQL(
    """
SELECT (SELECT COUNT(*) FROM {}) AS subject_results, (SELECT COUNT(*) FROM {}) AS general_results,
       (SELECT COUNT(*) FROM {} WHERE rank IS NOT NULL) AS ranked,
       (SELECT COUNT(*) FROM {}) AS class_stats""",
    SR_TABLE,
    GEN_TABLE,
    GEN_TABLE,
    STATS_TABLE,
)


def existing_results(schools: SQL, term_id: int) -> SQL:
    """A row when these schools already have results for the term (then the computation is a re-close)."""
    where = SQL("term_id = {} AND school_id IN {}", term_id, schools)
    return SQL(
        "SELECT 1 FROM grade_subject_result WHERE {} UNION ALL SELECT 1 FROM grade_general_result WHERE {} "
        "UNION ALL SELECT 1 FROM grade_class_stats WHERE {} LIMIT 1",
        where,
        where,
        where,
    )


RESULT_TABLES = ("grade_subject_result", "grade_general_result", "grade_class_stats")


def delete_statements(schools: SQL, term_id: int, dialect: str) -> list[SQL]:
    """Remove the previous results of these schools and term (one statement on PostgreSQL)."""
    where = SQL("term_id = {} AND school_id IN {}", term_id, schools)
    tables = [ident(t) for t in RESULT_TABLES]
    if dialect == "postgres":
        return [
            SQL(
                "WITH d1 AS (DELETE FROM {} WHERE {}), d2 AS (DELETE FROM {} WHERE {}) DELETE FROM {} WHERE {}",
                tables[0],
                where,
                tables[1],
                where,
                tables[2],
                where,
            )
        ]
    return [SQL("DELETE FROM {} WHERE {}", table, where) for table in tables]


#: The temporary tables of a computation on PostgreSQL, dropped before and after.
DROP_PG_TEMPORARY = SQL(
    "DROP TABLE IF EXISTS pg_temp.grades_close_agg, pg_temp.grades_close_sr, pg_temp.grades_close_gen, "
    "pg_temp.grades_close_stats"
)


def settings_sql(values: dict[str, str]) -> SQL:
    """``SELECT set_config(name, value, true), …``: planner settings for the transaction only."""
    return SQL("SELECT {}", join(", ", [SQL("set_config({}, {}, true)", k, v) for k, v in values.items()]))


#: SQLite's temporary tables: subject averages, subject rows, general averages.
SQLITE_AGG, SQLITE_SR, SQLITE_GEN = (
    SQL("temp.grades_close_agg"),
    SQL("temp.grades_close_sr"),
    SQL("temp.grades_close_gen"),
)
DROP_SQLITE_TEMPORARY = [
    SQL("DROP TABLE IF EXISTS temp.grades_close_agg"),
    SQL("DROP TABLE IF EXISTS temp.grades_close_sr"),
    SQL("DROP TABLE IF EXISTS temp.grades_close_gen"),
]
