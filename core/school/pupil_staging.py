"""Staging pupils for set-based checks: one path for the director's import and region onboarding.

Rows checked cell by cell (:mod:`core.school.pupil_rows`) are staged in bulk (COPY on PostgreSQL,
``executemany`` on SQLite) and checked against the database in single statements: duplicate codes in
the file, codes registered anywhere on the platform, classes of the school's year, known guardians.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from core.db import Database, scope_sql
from core.school.guardians import known_to
from core.school.pupil_rows import CellError, PupilRow, problem, problem_maker
from core.scope import Scope
from core.sql import SQL, ident, join
from core.tenancy import TenantInfo

# -- staging pupils: one set-based path for both importers -------------------------------------


class ErrorLog:
    """Every error counted; the first ``listed_max`` kept, and every one written to ``sink`` (JSON lines)."""

    def __init__(self, sink: IO[bytes] | None = None, listed_max: int = 10**6) -> None:
        self.count = 0
        self.listed: list[CellError] = []
        self.sink = sink
        self.listed_max = listed_max

    def keep(self, error: CellError) -> None:
        """Keep an error already counted."""
        if len(self.listed) < self.listed_max:
            self.listed.append(error)
        if self.sink is not None:
            self.sink.write(_encode(error) + b"\n")

    def add(self, error: CellError) -> None:
        self.count += 1
        self.keep(error)

    def extend(self, errors: list[CellError]) -> None:
        for error in errors:
            self.add(error)

    @property
    def room(self) -> int:
        return self.listed_max - len(self.listed)

    def lines(self) -> set[int]:
        return {e.row for e in self.listed}


_encode = msgspec.json.Encoder().encode
#: Rows staged per statement (and errors read per query when they go to a sink).
STAGE_CHUNK = 5000
_TYPES = {"integer": SQL("integer"), "text": SQL("text"), "date": SQL("date")}

#: Staging tables: name → (columns filled from the file, columns the checks derive, indexed columns,
#: the statement that stages a chunk on SQLite; PostgreSQL copies records into the same columns).
STAGES: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], list[str], str]] = {
    "onb_student": (
        [
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
        [("class_id", "integer"), ("student_id", "integer"), ("state", "text")],
        ["line", "code"],
        "INSERT INTO onb_student (line, school_id, province_id, code, last_name, first_name, last_name_ar, "
        "first_name_ar, birth_date, gender, class_name) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
    ),
    "onb_guardian": (
        [
            ("key", "integer"),
            ("line", "integer"),
            ("position", "integer"),
            ("email", "text"),
            ("name", "text"),
            ("name_ar", "text"),
            ("relation", "text"),
        ],
        [("person_id", "integer")],
        ["line", "email"],
        "INSERT INTO onb_guardian (key, line, position, email, name, name_ar, relation) "
        "VALUES ({}, {}, {}, {}, {}, {}, {})",
    ),
}


class Stage:
    """Temporary tables of the current transaction (described in ``stages``), filled in chunks."""

    def __init__(self, db: Database, *tables: str, stages: Mapping[str, Any] = STAGES) -> None:
        self.db = db
        self.tables = tables
        self.stages = stages
        self.pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in tables}

    async def create(self) -> None:
        pg = self.db.dialect == "postgres"
        for table in self.tables:
            filled, derived, _, _ = self.stages[table]
            await self.db.execute(SQL("DROP TABLE IF EXISTS {}", ident(table) if pg else ident("temp", table)))
            cols = join(", ", [SQL("{} {}", ident(n), _TYPES[t]) for n, t in filled + derived])
            on_commit = SQL(" ON COMMIT DROP") if pg else SQL()
            await self.db.execute(SQL("CREATE TEMP TABLE {} ({}){}", ident(table), cols, on_commit))

    async def index(self) -> None:
        for table in self.tables:
            for column in self.stages[table][2]:
                name = ident(f"{table}_{column}")
                await self.db.execute(SQL("CREATE INDEX {} ON {} ({})", name, ident(table), ident(column)))
            if self.db.dialect == "postgres":
                await self.db.execute(SQL("ANALYZE {}", ident(table)))

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.pending[table].append(row)

    def full(self) -> bool:
        return any(len(rows) >= STAGE_CHUNK for rows in self.pending.values())

    async def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            filled, _, _, insert = self.stages[table]
            if self.db.dialect == "postgres":
                tx = self.db.engine.current_transaction.get()
                assert tx is not None
                await tx.connection.copy_records_to_table(table, records=rows, columns=[n for n, _ in filled])
            else:
                await self.db.executemany(insert, rows)
            rows.clear()


async def sql_errors(db: Database, errors: ErrorLog, query: SQL, make: Callable[[dict[str, Any]], CellError]) -> int:
    """Count the rows a query finds and keep the errors they make (every one when errors go to a sink)."""
    total = int(await db.fetchval(SQL("SELECT COUNT(*) FROM ({}) AS q", query)) or 0)
    errors.count += total
    offset = 0
    while offset < total:
        limit = STAGE_CHUNK if errors.sink is not None else errors.room
        if limit <= 0:
            break
        rows = await db.fetch(SQL("{} ORDER BY 1, 2 LIMIT {} OFFSET {}", query, int(limit), offset))
        if not rows:
            break
        for r in rows:
            errors.keep(make(r))
        offset += len(rows)
    return total


_CASTS = {"integer": "{}::integer", "timestamptz": "{}::timestamptz", "boolean": "{}::boolean", "date": "{}::date"}


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


def stage_pupil(stage: Stage, row: PupilRow, school: tuple[int, int] | None) -> None:
    """Stage one checked pupil row (and its guardians) for ``school`` (``(school id, province id)``)."""
    born = row.birth_date if stage.db.dialect == "postgres" else (row.birth_date and row.birth_date.isoformat())
    stage.add(
        "onb_student",
        (
            row.line,
            school[0] if school else None,
            school[1] if school else None,
            row.national_code,
            row.last_name,
            row.first_name,
            row.last_name_ar,
            row.first_name_ar,
            born,
            row.gender,
            row.class_name,
        ),
    )
    for g in row.guardians:
        stage.add(
            "onb_guardian", (row.line * 2 + g.position, row.line, g.position, g.email, g.name, g.name_ar, g.relation)
        )


async def duplicate_codes(db: Database, errors: ErrorLog) -> None:
    """A pupil code given twice in the file: an error on every row after the first."""
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.code, (SELECT MIN(t.line) FROM onb_student t WHERE t.code = s.code) AS first "
            "FROM onb_student s WHERE s.code <> '' AND EXISTS "
            "(SELECT 1 FROM onb_student t WHERE t.code = s.code AND t.line < s.line)"
        ),
        lambda r: problem(r["line"], "national_code", r["code"], "duplicate_row", first=r["first"]),
    )


@dataclass(frozen=True)
class PupilChecks:
    """How :func:`check_staged_pupils` reports: the code of each finding and a guardian name's column.

    ``existing``: ``merge`` (region onboarding: a pupil registered in the same school with the same
    details is ``unchanged``) or ``refuse`` (a director's import: any registered code is an error).
    """

    messages: Mapping[str, str]
    existing: str = "merge"
    no_class: str = "no_class"
    code_taken: str = "code_taken"
    guardian_unknown: str = "guardian_name_required"
    guardian_column: Callable[[int], str] = lambda n: f"guardian{n}_name"


async def check_staged_pupils(
    db: Database, scope: Scope, errors: ErrorLog, year: dict[str, Any], how: PupilChecks, reach: TenantInfo
) -> SQL:
    """What only the database can tell about staged pupils, set by set; returns the ``differs`` condition.

    Classes of this year (matched case-insensitively), pupil codes registered in scope or anywhere on
    the platform, and guardians: an e-mail not yet known to ``reach`` (the importing school or region: no
    role there, no pupil there) needs a name somewhere in the file. Whether the address has an account
    elsewhere makes no difference, so the check tells nothing about accounts outside the reach.
    """
    make = problem_maker(how.messages)

    def class_params(name: str) -> dict[str, str]:
        wanted = how.messages[how.no_class]
        return {"year": year["label"], **({"name": repr(name)} if "{name}" in wanted else {})}

    await db.execute(
        "UPDATE onb_student SET class_id = c.id FROM school_class c WHERE c.school_id = onb_student.school_id "
        "AND c.school_year_id = {} AND lower(c.name) = lower(onb_student.class_name) AND onb_student.class_name <> ''",
        year["id"],
    )
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT line, class_name FROM onb_student WHERE class_name <> '' AND class_id IS NULL "
            "AND school_id IS NOT NULL"
        ),
        lambda r: make(r["line"], "class", r["class_name"], how.no_class, **class_params(r["class_name"])),
    )
    is_not = distinct(db)
    differs = SQL(
        "(st.last_name <> s.last_name OR st.first_name <> s.first_name "
        "OR (s.last_name_ar <> '' AND st.last_name_ar <> s.last_name_ar) "
        "OR (s.first_name_ar <> '' AND st.first_name_ar <> s.first_name_ar) "
        "OR (s.birth_date IS NOT NULL AND st.birth_date {} s.birth_date) "
        "OR (s.gender <> '' AND st.gender <> s.gender) "
        "OR (s.class_id IS NOT NULL AND s.class_id {} "
        "(SELECT e.class_id FROM enrolment e WHERE e.student_id = st.id AND e.ends_on IS NULL)))",
        is_not,
        is_not,
    )
    if how.existing == "merge":
        # registered here (identical → unchanged), elsewhere in the region; the rest below
        await db.execute(
            SQL(
                "UPDATE onb_student SET student_id = st.id FROM student st WHERE st.national_code = onb_student.code "
                "AND onb_student.code <> '' AND {}",
                scope_sql(scope, "st"),
            )
        )
        await sql_errors(
            db,
            errors,
            SQL(
                "SELECT s.line, s.code, t.slug FROM onb_student s JOIN student st ON st.id = s.student_id "
                "JOIN tenant t ON t.id = st.school_id WHERE st.school_id <> s.school_id"
            ),
            lambda r: make(r["line"], "national_code", r["code"], "enrolled_elsewhere", school=r["slug"]),
        )
        await sql_errors(
            db,
            errors,
            SQL(
                "SELECT s.line, s.code FROM onb_student s JOIN student st ON st.id = s.student_id "
                "WHERE st.school_id = s.school_id AND {}",
                differs,
            ),
            lambda r: make(r["line"], "national_code", r["code"], "pupil_differs"),
        )
        await db.execute(
            SQL(
                "UPDATE onb_student SET state = 'unchanged' WHERE student_id IS NOT NULL AND line IN "
                "(SELECT s.line FROM onb_student s JOIN student st ON st.id = s.student_id "
                "WHERE st.school_id = s.school_id AND NOT {})",
                differs,
            )
        )
    taken_code = "pupil_other_region" if how.existing == "merge" else how.code_taken
    if db.dialect == "postgres":
        taken = SQL(
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code IN "
            "(SELECT madrasa_pupil_codes_taken(ARRAY(SELECT code FROM onb_student "
            "WHERE student_id IS NULL AND code <> '')::varchar[]))"
        )
    else:
        taken = SQL(
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code <> '' "
            "AND EXISTS (SELECT 1 FROM student st WHERE st.national_code = s.code)"
        )
    await sql_errors(db, errors, taken, lambda r: make(r["line"], "national_code", r["code"], taken_code))
    await db.execute("UPDATE onb_guardian SET person_id = p.id FROM person p WHERE p.email = onb_guardian.email")
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT g.line, g.position, g.email FROM onb_guardian g WHERE NOT (g.person_id IS NOT NULL AND {}) "
            "AND NOT EXISTS (SELECT 1 FROM onb_guardian h WHERE h.email = g.email AND h.name <> '')",
            known_to(reach, SQL("g.person_id")),
        ),
        lambda r: make(r["line"], how.guardian_column(r["position"]), "", how.guardian_unknown),
    )
    return differs
