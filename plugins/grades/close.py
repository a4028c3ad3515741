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
or the mean of the two middle rows, by ``ROW_NUMBER``). The statements themselves are built in
:mod:`plugins.grades.close_sql`; how absences count comes from :mod:`plugins.grades.policy`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from core.plugin_api import SQL, Conflict, Database, RequestContext, current_scope, ident, join, parse_path, school
from plugins.grades import publication
from plugins.grades.close_sql import (
    AGG_TABLE,
    DROP_PG_TEMPORARY,
    DROP_SQLITE_TEMPORARY,
    RECLOSE_COUNTS,
    SQLITE_AGG,
    SQLITE_GEN,
    SQLITE_MEDIAN_CTE,
    SQLITE_SR,
    delete_statements,
    existing_results,
    general_average_select,
    general_insert,
    mark_average_select,
    population_cte,
    postgres_statement,
    reclose_statements,
    reclose_tables,
    school_list,
    settings_sql,
    stats_insert,
    subject_insert,
    subject_row_ctes,
)

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


# --------------------------------------------------------------------------- running it


async def _check_schools(db: Database, school_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The school rows (``id``, ``path``); ``ValueError`` for a non-school, ``PermissionError`` outside the scope."""
    ids = sorted({int(s) for s in school_ids})
    if not ids:
        raise ValueError("no school to close")
    rows = await db.fetch("SELECT id, kind, path FROM tenant WHERE id IN {}", school_list(ids))
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
    school_ids = [int(r["id"]) for r in schools_rows]
    schools = school_list(school_ids)
    if db.dialect == "postgres":
        # Two computations for the same school (two previews, a preview and a close) take turns:
        # the second one's DELETE then sees the first one's rows. (SQLite serialises writers.)
        await db.execute(
            "SELECT pg_advisory_xact_lock(hashtext('grades.close'), s) "
            "FROM unnest(CAST({} AS INTEGER[])) AS s ORDER BY s",
            sorted(school_ids),
        )
    if db.dialect == "postgres":
        row = await _postgres_compute(db, schools, term_id)
    else:
        for statement in delete_statements(schools, term_id, db.dialect):
            await db.execute(statement)
        row = await _sqlite_compute(db, schools, term_id)
    assert row is not None
    await publication.bump(db, school_ids)  # new results: new ETags, cache keys and report cards
    return CloseStats(
        term_id=term_id,
        schools=len(schools_rows),
        subject_results=int(row["subject_results"]),
        general_results=int(row["general_results"]),
        ranked=int(row["ranked"]),
        class_stats=int(row["class_stats"]),
        seconds=time.perf_counter() - began,
    )


async def _postgres_compute(db: Database, schools: SQL, term_id: int) -> dict[str, Any]:
    """PostgreSQL: the planner settings, the pass over the marks, the statement writing the results."""
    names = list(PG_SETTINGS)
    previous = await db.fetchrow(
        SQL("SELECT {}", join(", ", [SQL("current_setting({}) AS {}", name, ident(name)) for name in names]))
    )
    assert previous is not None
    await db.execute(settings_sql(PG_SETTINGS))
    # On failure the transaction (or the caller's savepoint) rolls back, and the settings with it.
    await db.execute(DROP_PG_TEMPORARY)
    reclose = await db.fetchval(existing_results(schools, term_id)) is not None
    # The one pass over the marks, in a statement of its own: PostgreSQL plans parallel workers for
    # CREATE TABLE … AS but not for INSERT or writable CTEs. Analysed, so that the next statement
    # is planned on real sizes.
    await db.execute(
        SQL("CREATE TEMP TABLE grades_close_agg ON COMMIT DROP AS {}", mark_average_select(schools, term_id))
    )
    await db.execute("ANALYZE pg_temp.grades_close_agg")
    if reclose:
        # Results exist: compute into temporary tables and write only the rows that changed (deleting
        # and inserting a million unchanged rows costs more than computing them).
        for statement in [*reclose_tables(AGG_TABLE, schools, term_id), *reclose_statements(schools, term_id)]:
            await db.execute(statement)
        row = await db.fetchrow(RECLOSE_COUNTS)
    else:
        # A first close: one statement writes the three tables.
        row = await db.fetchrow(postgres_statement(AGG_TABLE, schools, term_id))
    await db.execute(DROP_PG_TEMPORARY)
    await db.execute(settings_sql({name: str(previous[name]) for name in names}))
    assert row is not None
    return row


async def _sqlite_compute(db: Database, schools: SQL, term_id: int) -> dict[str, Any]:
    """SQLite: three temporary tables (subject averages, subject rows, general averages), three ``INSERT … SELECT``."""
    agg, sr, gen = SQLITE_AGG, SQLITE_SR, SQLITE_GEN
    for statement in DROP_SQLITE_TEMPORARY:
        await db.execute(statement)
    try:
        await db.execute(SQL("CREATE TEMP TABLE grades_close_agg AS {}", mark_average_select(schools, term_id)))
        await db.execute(
            SQL(
                "CREATE TEMP TABLE grades_close_sr AS WITH {} SELECT * FROM sr", subject_row_ctes(agg, schools, term_id)
            )
        )
        await db.execute(SQL("CREATE TEMP TABLE grades_close_gen AS {}", general_average_select(sr)))
        await db.execute(subject_insert(sr, term_id))
        await db.execute(general_insert(gen, term_id))
        await db.execute(
            SQL("WITH {}, {} {}", population_cte(sr, gen), SQLITE_MEDIAN_CTE, stats_insert(term_id, "sqlite"))
        )
        row = await db.fetchrow(
            "SELECT (SELECT COUNT(*) FROM {}) AS subject_results, (SELECT COUNT(*) FROM {}) AS general_results, "
            "(SELECT COUNT(*) FROM {} WHERE enrolled = 1 AND average IS NOT NULL) AS ranked, "
            "(SELECT COUNT(*) FROM grade_class_stats WHERE term_id = {} AND school_id IN {}) AS class_stats",
            sr,
            gen,
            gen,
            term_id,
            schools,
        )
    finally:
        for statement in DROP_SQLITE_TEMPORARY:
            await db.execute(statement)
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
    if await db.fetchval("SELECT id FROM term WHERE id = {}", term_id) is None:
        raise ValueError(f"no term {term_id}")
    closed = await db.fetch(
        "SELECT school_id FROM grade_term_close WHERE term_id = {} AND school_id IN {}",
        term_id,
        school_list([r["id"] for r in rows]),
    )
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


async def close_school_term(ctx: RequestContext, term_id: int) -> CloseStats:
    """Close the caller's school's term (the API's and the director's page): 400 for a term that is not
    the school's, 409 when it is already closed."""
    from plugins.grades.terms import school_term

    tenant = school.require_school(ctx)
    db = ctx.services.db
    async with db.scoped(ctx.scope):
        await school_term(db, tenant.region_id, term_id)
        return await close_term(db, school_ids=[tenant.id], term_id=term_id, actor_id=ctx.person_id)
