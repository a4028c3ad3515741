"""Staging onboarding rows in temporary tables, and asking the database about them set by set.

Rows are read one at a time (:mod:`tenants.onboarding_files`), checked cell by cell in Python
(:mod:`tenants.onboarding_rows`) and staged in chunks into temporary tables of the current
transaction (``COPY`` on PostgreSQL, ``executemany`` on SQLite): Python never holds more than a
chunk of rows. What needs the database is then answered by a few set-based statements over the
staging tables (:func:`sql_errors` turns the rows a query finds into errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from core.db import Database
from core.school import pupil_staging
from core.school.pupil_staging import distinct, sql_errors, typed
from tenants.onboarding_context import MAX_ROWS, ErrorLog, Progress, Report, make_report
from tenants.onboarding_files import EXTRA_COLUMNS, FileProblem, count_lines, file_error, open_table
from tenants.onboarding_rows import COLUMNS, FILE, CellError, map_header, problem

__all__ = ["STAGES", "HeaderProblem", "Stage", "distinct", "read_records", "sql_errors", "stage_rows", "typed"]

#: The staging tables: a pupil's (shared with the director's import) and staff's.
STAGES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], list[str], str]] = {
    **pupil_staging.STAGES,
    "onb_staff": (
        [
            ("line", "integer"),
            ("school_id", "integer"),
            ("province_id", "integer"),
            ("email", "text"),
            ("full_name", "text"),
            ("full_name_ar", "text"),
            ("role", "text"),
            ("staff_number", "text"),
            ("locale", "text"),
        ],
        [("person_id", "integer"), ("state", "text")],
        ["line", "email", "staff_number"],
        "INSERT INTO onb_staff (line, school_id, province_id, email, full_name, full_name_ar, role, staff_number, "
        "locale) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
    ),
}


class Stage(pupil_staging.Stage):
    """Temporary tables of the current transaction, filled in chunks (see :class:`core.school.pupil_staging.Stage`)."""

    def __init__(self, db: Database, *tables: str) -> None:
        super().__init__(db, *tables, stages=STAGES)


# -- reading a file -----------------------------------------------------------------------------


class HeaderProblem(Exception):
    """The header row is wrong (its errors)."""

    def __init__(self, errors: list[CellError]) -> None:
        super().__init__("bad header")
        self.errors = errors


def read_records(stream: IO[bytes], kind: str) -> tuple[str, dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The format, the column positions and the data records of a kind's file."""
    fmt, records = open_table(stream, width=len(COLUMNS[kind]) + EXTRA_COLUMNS, max_rows=MAX_ROWS[kind] + 1)
    first = next(records, None)
    if first is None:
        raise file_error("empty")
    columns, problems = map_header(kind, *first)
    if problems:
        raise HeaderProblem(problems)
    return fmt, columns, records


async def stage_rows(
    kind: str,
    stream: IO[bytes],
    stage: Stage,
    errors: ErrorLog,
    progress: Progress | None,
    add: Callable[[int, list[str], dict[str, int]], None],
) -> Report | int:
    """Read a file row by row into staging tables (``add`` checks and stages one row), in batches.

    Returns the number of rows, or the report of a file that cannot be read or has no rows.
    """
    total = count_lines(stream)
    rows = 0
    try:
        _, columns, records = read_records(stream, kind)
        for line, cells in records:
            rows += 1
            if rows > MAX_ROWS[kind]:
                raise file_error("too_many_rows", row=line, limit=MAX_ROWS[kind])
            add(line, cells, columns)
            if stage.full():
                await stage.flush()
                if progress:
                    await progress(rows, total, "validating")
        await stage.flush()
    except FileProblem as exc:
        errors.add(exc.error)
        return make_report(kind, errors, rows=rows)
    except HeaderProblem as exc:
        errors.extend(exc.errors)
        return make_report(kind, errors)
    if rows == 0:
        errors.add(problem(0, FILE, "", "only_header"))
        return make_report(kind, errors)
    return rows
