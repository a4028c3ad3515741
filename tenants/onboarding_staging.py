"""Staging onboarding rows in temporary tables, and asking the database about them set by set.

Rows are read one at a time (:mod:`tenants.onboarding_files`), checked cell by cell in Python
(:mod:`tenants.onboarding_rows`) and staged in chunks into temporary tables of the current
transaction (``COPY`` on PostgreSQL, ``executemany`` on SQLite): Python never holds more than a
chunk of rows. What needs the database is then answered by a few set-based statements over the
staging tables (:func:`sql_errors` turns the rows a query finds into errors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

from core.db import Database
from core.sql import SQL, ident, join
from tenants.onboarding_context import CHUNK, MAX_ROWS, ErrorLog, Progress, Report, make_report
from tenants.onboarding_files import EXTRA_COLUMNS, FileProblem, count_lines, file_error, open_table
from tenants.onboarding_rows import COLUMNS, FILE, CellError, map_header, problem

__all__ = ["STAGES", "HeaderProblem", "Stage", "distinct", "read_records", "sql_errors", "stage_rows", "typed"]

_TYPES = {"integer": SQL("integer"), "text": SQL("text"), "date": SQL("date")}

STAGES: dict[str, list[tuple[str, str]]] = {
    "onb_student": [
        ("line", "integer"),
        ("school_id", "integer"),
        ("province_id", "integer"),
        ("code", "text"),
        ("last_name", "text"),
        ("first_name", "text"),
        ("last_name_ar", "text"),
        ("first_name_ar", "text"),
        ("birth_date", "date"),
        ("gender", "text"),
        ("class_name", "text"),
    ],
    "onb_guardian": [
        ("key", "integer"),
        ("line", "integer"),
        ("position", "integer"),
        ("email", "text"),
        ("name", "text"),
        ("name_ar", "text"),
        ("relation", "text"),
    ],
    "onb_staff": [
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
}
#: The statement that stages a chunk on SQLite (PostgreSQL copies records into the same columns).
STAGE_INSERT: dict[str, str] = {
    "onb_student": "INSERT INTO onb_student (line, school_id, province_id, code, last_name, first_name, "
    "last_name_ar, first_name_ar, birth_date, gender, class_name) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
    "onb_guardian": "INSERT INTO onb_guardian (key, line, position, email, name, name_ar, relation) "
    "VALUES ({}, {}, {}, {}, {}, {}, {})",
    "onb_staff": "INSERT INTO onb_staff (line, school_id, province_id, email, full_name, full_name_ar, role, "
    "staff_number, locale) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
}
#: Columns the checks fill in after staging.
DERIVED: dict[str, list[tuple[str, str]]] = {
    "onb_student": [("class_id", "integer"), ("student_id", "integer"), ("state", "text")],
    "onb_guardian": [("person_id", "integer")],
    "onb_staff": [("person_id", "integer"), ("state", "text")],
}
INDEXES: dict[str, list[str]] = {
    "onb_student": ["line", "code"],
    "onb_guardian": ["line", "email"],
    "onb_staff": ["line", "email", "staff_number"],
}


class Stage:
    """Temporary tables of the current transaction, filled in chunks."""

    def __init__(self, db: Database, *tables: str) -> None:
        self.db = db
        self.tables = tables
        self.pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}

    async def create(self) -> None:
        pg = self.db.dialect == "postgres"
        for table in self.tables:
            await self.db.execute(SQL("DROP TABLE IF EXISTS {}", ident(table) if pg else ident("temp", table)))
            cols = join(", ", [SQL("{} {}", ident(n), _TYPES[t]) for n, t in STAGES[table] + DERIVED[table]])
            on_commit = SQL(" ON COMMIT DROP") if pg else SQL()
            await self.db.execute(SQL("CREATE TEMP TABLE {} ({}){}", ident(table), cols, on_commit))

    async def index(self) -> None:
        for table in self.tables:
            for column in INDEXES[table]:
                name = ident(f"{table}_{column}")
                await self.db.execute(SQL("CREATE INDEX {} ON {} ({})", name, ident(table), ident(column)))
            if self.db.dialect == "postgres":
                await self.db.execute(SQL("ANALYZE {}", ident(table)))

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.pending[table].append(row)

    def full(self) -> bool:
        return any(len(rows) >= CHUNK for rows in self.pending.values())

    async def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            if self.db.dialect == "postgres":
                tx = self.db.engine.current_transaction.get()
                assert tx is not None
                names = [n for n, _ in STAGES[table]]
                await tx.connection.copy_records_to_table(table, records=rows, columns=names)
            else:
                await self.db.executemany(STAGE_INSERT[table], rows)
            rows.clear()


async def sql_errors(db: Database, errors: ErrorLog, query: SQL, make: Callable[[dict[str, Any]], CellError]) -> int:
    """Count the rows a query finds and keep the errors they make (every one when errors go to a sink)."""
    total = int(await db.fetchval(SQL("SELECT COUNT(*) FROM ({}) AS q", query)) or 0)
    errors.count += total
    offset = 0
    while offset < total:
        limit = CHUNK if errors.sink is not None else errors.room
        if limit <= 0:
            break
        rows = await db.fetch(SQL("{} ORDER BY 1, 2 LIMIT {} OFFSET {}", query, int(limit), offset))
        if not rows:
            break
        for r in rows:
            errors.keep(make(r))
        offset += len(rows)
    return total


_CASTS = {
    "integer": "{}::integer",
    "timestamptz": "{}::timestamptz",
    "boolean": "{}::boolean",
    "date": "{}::date",
}


def typed(db: Database, value: Any, kind: str) -> SQL:
    """A bound value in a SELECT list, cast to ``kind`` where PostgreSQL needs to know its type."""
    if db.dialect == "postgres":
        return SQL(_CASTS[kind], value)
    if kind == "date" and value is not None:
        value = value.isoformat()
    return SQL("{}", value)


def distinct(db: Database) -> SQL:
    """``IS DISTINCT FROM`` (``IS NOT`` on SQLite)."""
    return SQL("IS DISTINCT FROM") if db.dialect == "postgres" else SQL("IS NOT")


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
