"""Onboarding a region: schools, staff, pupils and guardians from CSV or XLSX files, all or nothing.

The flow: :func:`upload` reads the file as a stream, validates it, stores it (in parts, so no more
than one part is ever in memory) and records an ``onboarding_batch`` with its report (nothing else
is written; a large file is validated by a background job with progress, :func:`run_validation`);
every error is kept in a stored error file (:func:`errors_csv`), the first 500 in the report.
:func:`start_commit` claims a batch that validated (or one whose committing worker died) and
:func:`run_commit` validates it again and, when every row is still valid, writes it in one scoped
transaction (inline for small files, as a background job with progress for large ones).
Re-running a file creates nothing new: rows already present and identical are counted as
``unchanged``; rows that contradict what exists are errors.

Validation is streamed: rows are read one at a time (:mod:`tenants.onboarding_files`), checked
cell by cell in Python, and staged in chunks into temporary tables (``COPY`` on PostgreSQL,
``executemany`` on SQLite). Everything that needs the database — duplicates within the file,
classes, pupil codes and staff numbers registered anywhere on the platform, existing people —
is then answered by a few set-based statements over the staging tables, and the writes are
``INSERT … SELECT`` from them. Python never holds more than a chunk of rows.

Directors are invited by e-mail with a one-time link (:func:`invite`, :func:`accept_invitation`):
the token is stored hashed, expires, and works once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException

from core import audit
from core.context import RequestContext
from core.csv_cells import csv_cell
from core.db import Database, in_list, scope_filter
from core.i18n import locale_var
from core.identity import Identity, check_password_strength, normalise_email, sha256
from core.jobs import JobContext, register_job
from core.mail import Mail
from core.school.csv_import import FILE
from core.school.service import current_year
from core.scope import Scope
from core.services import Services
from core.storage import build_key
from core.tenancy import TenantInfo
from tenants import service as tenant_service
from tenants.onboarding_files import (
    COLUMNS,
    EXTRA_COLUMNS,
    KINDS,
    CellError,
    FileProblem,
    SchoolRow,
    StaffRow,
    StudentRow,
    check_school,
    check_staff,
    check_student,
    count_lines,
    file_error,
    map_header,
    open_table,
    problem,
    translated,
)

#: Errors listed in a report (all are counted).
MAX_LISTED_ERRORS = 500
#: Rows shown in a preview.
SAMPLE_ROWS = 50
#: Rows staged per statement.
CHUNK = 5000
#: Files with more rows than this are committed by a background job.
INLINE_ROWS = 2000
MAX_ROWS = {"schools": 5000, "staff": 200_000, "students": 1_000_000}
INVITATION_TTL = timedelta(days=7)
JOB_KIND = "onboarding.commit"
VALIDATE_JOB_KIND = "onboarding.validate"
#: An XLSX file larger than this is previewed by a background job (its rows are not counted up front).
INLINE_XLSX_BYTES = 256 * 1024
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Files are stored in parts of this size, so no more than one part is ever held in memory.
PART_BYTES = 8 * 1024 * 1024
#: A batch ``committing`` for longer than this lost its worker: a new commit may claim it.
STALE_CLAIM = timedelta(minutes=15)


def _upload_limit(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Onboarding's own upload cap: ``MADRASA_ONBOARDING_MAX_BYTES``, 200 MiB by default."""
    raw = environ.get("MADRASA_ONBOARDING_MAX_BYTES", "").strip()
    try:
        return int(raw) if raw else 200 * 1024 * 1024
    except ValueError:
        raise ValueError(f"MADRASA_ONBOARDING_MAX_BYTES: expected a whole number, got {raw!r}") from None


#: Largest file onboarding accepts (a 100,000-pupil CSV is about 14 MiB; general uploads keep their own cap).
MAX_UPLOAD_BYTES = _upload_limit()
logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], Awaitable[None]]


class Conflict(ClientException):
    """409: the batch is not in a state that allows this; ``msgid`` and ``params`` let pages translate it."""

    status_code = 409

    def __init__(self, code: str, msgid: str, **params: object) -> None:
        self.code, self.msgid, self.params = code, msgid, {k: str(v) for k, v in params.items()}
        super().__init__(msgid.format(**self.params), extra={"code": code})


class TooLarge(ClientException):
    """413: the file is larger than :data:`MAX_UPLOAD_BYTES`."""

    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than {limit // 2**20} MiB: split it.")


class Invalid(ClientException):
    """400 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", extra=[{"key": field, "message": message}])


class SampleRow(msgspec.Struct):
    """A row of the preview: its line, what identifies it, and what committing will do with it."""

    row: int
    key: str
    label: str
    status: str  # new, unchanged, error


class Report(msgspec.Struct, kw_only=True):
    """What validating (and, once committed, writing) a file found."""

    ok: bool
    kind: str
    rows: int = 0
    #: What committing creates (or created), by kind of object.
    created: dict[str, int] = {}
    unchanged: int = 0
    error_count: int = 0
    errors: list[CellError] = []
    errors_truncated: bool = False
    sample: list[SampleRow] = []
    committed: bool = False


class BatchOut(msgspec.Struct, kw_only=True):
    """An onboarding batch."""

    id: str
    kind: str
    filename: str
    file_format: str
    status: str
    rows: int
    error_count: int
    job_id: str | None
    created_at: datetime
    committed_at: datetime | None
    report: Report


@dataclass
class Actor:
    """Who runs an onboarding step, with which scope, in which region."""

    services: Services
    scope: Scope
    identity: Identity | None
    region: TenantInfo
    #: Directors a committed staff file made, to be invited once the commit is over.
    new_directors: list[int] = field(default_factory=list)

    @property
    def person_id(self) -> int | None:
        """The acting person's id."""
        return self.identity.id if self.identity else None

    @property
    def db(self) -> Database:
        """The application database."""
        return self.services.db

    def request_context(self) -> RequestContext:
        """A request context for services written for handlers (the tenants service)."""
        return RequestContext(
            services=self.services,
            permission="tenants.manage",
            identity=self.identity,
            tenant=self.region,
            scope=self.scope,
        )


def actor_of(ctx: RequestContext) -> Actor:
    """The request's actor; the request must name a region (``/t/<region>/…``)."""
    return Actor(ctx.services, ctx.scope, ctx.identity, require_region(ctx))


def require_region(ctx: RequestContext) -> TenantInfo:
    """The request's tenant, which must be a region."""
    tenant = ctx.tenant
    if tenant is None or tenant.kind != "region":
        raise NotFoundException("Onboarding works inside a region: use /t/<region>/….")
    return tenant


class _Errors:
    """Every error counted; the first :data:`MAX_LISTED_ERRORS` kept, and every one written to ``sink``."""

    def __init__(self, sink: IO[bytes] | None = None) -> None:
        self.count = 0
        self.listed: list[CellError] = []
        self.sink = sink

    def keep(self, error: CellError) -> None:
        """Keep an error already counted."""
        if len(self.listed) < MAX_LISTED_ERRORS:
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
        return MAX_LISTED_ERRORS - len(self.listed)

    def lines(self) -> set[int]:
        return {e.row for e in self.listed}


_encode = msgspec.json.Encoder().encode
_ORDER = {kind: {FILE: -1, **{c: i for i, c in enumerate(COLUMNS[kind])}} for kind in KINDS}


def _report(kind: str, errors: _Errors, **values: Any) -> Report:
    order = _ORDER[kind]
    return Report(
        ok=errors.count == 0,
        kind=kind,
        error_count=errors.count,
        errors=sorted(errors.listed, key=lambda e: (e.row, order.get(e.column, len(order)))),
        errors_truncated=errors.count > len(errors.listed),
        **values,
    )


def _now() -> datetime:
    return datetime.now(UTC)


# -- the tenant tree as onboarding sees it ------------------------------------------------------


@dataclass
class Tree:
    """Schools and provinces by code and slug: this region's, and which belong to other regions."""

    region: TenantInfo
    schools: dict[str, tuple[int, int]]  # key → (school id, province id), this region
    provinces: dict[str, int]  # key → province id, this region
    foreign_schools: set[str]
    foreign_provinces: set[str]
    school_rows: dict[int, dict[str, Any]]

    def school(self, raw: str) -> tuple[int, int] | None:
        return self.schools.get(raw.upper()) or self.schools.get(raw.lower())

    def school_problem(self, line: int, raw: str) -> CellError:
        foreign = raw.upper() in self.foreign_schools or raw.lower() in self.foreign_schools
        return problem(line, "school", raw, "school_foreign" if foreign else "school_unknown", school=repr(raw))


async def load_tree(db: Database, region: TenantInfo) -> Tree:
    """The region's schools and provinces (a few thousand rows at most)."""
    rows = await db.fetch(
        "SELECT id, kind, slug, code, path, parent_id, name_ar, name_fr, name_en FROM tenant "
        "WHERE kind IN ('province', 'school')"
    )
    prefix = "/".join(str(p) for p in region.path) + "/"
    tree = Tree(region, {}, {}, set(), set(), {})
    for r in rows:
        keys = [r["slug"].lower()] + ([r["code"].upper()] if r["code"] else [])
        inside = r["path"].startswith(prefix)
        if r["kind"] == "school":
            if inside:
                province = int(r["path"].split("/")[2])
                for k in keys:
                    tree.schools[k] = (int(r["id"]), province)
                tree.school_rows[int(r["id"])] = r
            else:
                tree.foreign_schools.update(keys)
        elif inside:
            for k in keys:
                tree.provinces[k] = int(r["id"])
        else:
            tree.foreign_provinces.update(keys)
    return tree


# -- staging tables -----------------------------------------------------------------------------

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
            await self.db.execute(f"DROP TABLE IF EXISTS {'' if pg else 'temp.'}{table}")
            cols = ", ".join(f"{n} {t}" for n, t in STAGES[table] + DERIVED[table])
            await self.db.execute(f"CREATE TEMP TABLE {table} ({cols}){' ON COMMIT DROP' if pg else ''}")

    async def index(self) -> None:
        for table in self.tables:
            for column in INDEXES[table]:
                await self.db.execute(f"CREATE INDEX {table}_{column} ON {table} ({column})")
            if self.db.dialect == "postgres":
                await self.db.execute(f"ANALYZE {table}")

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.pending[table].append(row)

    def full(self) -> bool:
        return any(len(rows) >= CHUNK for rows in self.pending.values())

    async def flush(self) -> None:
        for table, rows in self.pending.items():
            if not rows:
                continue
            names = [n for n, _ in STAGES[table]]
            if self.db.dialect == "postgres":
                tx = self.db.engine.current_transaction.get()
                assert tx is not None
                await tx.connection.copy_records_to_table(table, records=rows, columns=names)
            else:
                marks = ", ".join("{}" for _ in names)
                await self.db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)
            rows.clear()


async def _sql_errors(
    db: Database,
    errors: _Errors,
    sql: str,
    args: list[Any],
    make: Callable[[dict[str, Any]], CellError],
) -> int:
    """Count the rows a query finds and keep the errors they make (every one when errors go to a sink)."""
    total = int(await db.fetchval(f"SELECT COUNT(*) FROM ({sql}) AS q", *args) or 0)
    errors.count += total
    offset = 0
    while offset < total:
        limit = CHUNK if errors.sink is not None else errors.room
        if limit <= 0:
            break
        rows = await db.fetch(f"{sql} ORDER BY 1, 2 LIMIT {int(limit)} OFFSET {offset}", *args)
        if not rows:
            break
        for r in rows:
            errors.keep(make(r))
        offset += len(rows)
    return total


def _casts(db: Database) -> tuple[str, str, str, str]:
    """Casts for parameters in a SELECT list (integer, timestamptz, boolean, date): PostgreSQL needs them."""
    if db.dialect == "postgres":
        return "::integer", "::timestamptz", "::boolean", "::date"
    return "", "", "", ""


def _distinct(db: Database) -> str:
    return "IS DISTINCT FROM" if db.dialect == "postgres" else "IS NOT"


# -- reading a file -----------------------------------------------------------------------------


def _records(stream: IO[bytes], kind: str) -> tuple[str, dict[str, int], Iterator[tuple[int, list[str]]]]:
    fmt, records = open_table(stream, width=len(COLUMNS[kind]) + EXTRA_COLUMNS, max_rows=MAX_ROWS[kind] + 1)
    first = next(records, None)
    if first is None:
        raise file_error("empty")
    columns, problems = map_header(kind, *first)
    if problems:
        raise _HeaderProblem(problems)
    return fmt, columns, records


class _HeaderProblem(Exception):
    def __init__(self, errors: list[CellError]) -> None:
        super().__init__("bad header")
        self.errors = errors


# -- schools ------------------------------------------------------------------------------------


async def _stage_rows(
    kind: str,
    stream: IO[bytes],
    stage: Stage,
    errors: _Errors,
    progress: Progress | None,
    add: Callable[[int, list[str], dict[str, int]], None],
) -> Report | int:
    """Read a file row by row into staging tables (``add`` checks and stages one row), in batches.

    Returns the number of rows, or the report of a file that cannot be read or has no rows.
    """
    total = count_lines(stream)
    rows = 0
    try:
        _, columns, records = _records(stream, kind)
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
        return _report(kind, errors, rows=rows)
    except _HeaderProblem as exc:
        errors.extend(exc.errors)
        return _report(kind, errors)
    if rows == 0:
        errors.add(problem(0, FILE, "", "only_header"))
        return _report(kind, errors)
    return rows


async def _schools(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = _Errors(sink)
    try:
        _, columns, records = _records(stream, "schools")
        rows: list[SchoolRow] = []
        for line, cells in records:
            if len(rows) >= MAX_ROWS["schools"]:
                raise file_error("too_many_rows", row=line, limit=MAX_ROWS["schools"])
            row, problems = check_school(line, cells, columns)
            errors.extend(problems)
            rows.append(row)
    except FileProblem as exc:
        errors.add(exc.error)
        return _report("schools", errors)
    except _HeaderProblem as exc:
        errors.extend(exc.errors)
        return _report("schools", errors)
    if not rows:
        errors.add(problem(0, FILE, "", "only_header"))
        return _report("schools", errors, rows=0)
    tree = await load_tree(db, actor.region)
    where, args = scope_filter(actor.scope)
    profiles = {
        int(r["school_id"]): r
        for r in await db.fetch(f"SELECT school_id, cycle, address FROM school_profile WHERE {where}", *args)
    }
    slugs = {r["slug"] for r in await db.fetch("SELECT slug FROM tenant")}
    seen_code: dict[str, int] = {}
    seen_slug: dict[str, int] = {}
    status: dict[int, str] = {}
    for row in rows:
        state = "new"
        province = None
        if row.province:
            province = tree.provinces.get(row.province.lower()) or tree.provinces.get(row.province.upper())
            if province is None:
                foreign = (
                    row.province.lower() in tree.foreign_provinces or row.province.upper() in tree.foreign_provinces
                )
                code = "province_foreign" if foreign else "province_unknown"
                errors.add(problem(row.line, "province", row.province, code))
        if row.code:
            if row.code in seen_code:
                errors.add(problem(row.line, "code", row.code, "duplicate_row", first=seen_code[row.code]))
            seen_code.setdefault(row.code, row.line)
            if row.code in tree.foreign_schools:
                errors.add(problem(row.line, "code", row.code, "school_code_foreign"))
            elif (found := tree.schools.get(row.code)) is not None:
                existing = tree.school_rows[found[0]]
                profile = profiles.get(found[0], {})
                differs = [
                    name
                    for name, mine, theirs in (
                        ("name_ar", row.name_ar, existing["name_ar"]),
                        ("name_fr", row.name_fr, existing["name_fr"]),
                        ("province", province, found[1]),
                        ("cycle", row.cycle, profile.get("cycle")),
                        ("address", row.address, profile.get("address", row.address)),
                    )
                    if mine and mine != theirs
                ]
                if differs:
                    errors.add(problem(row.line, "code", row.code, "school_differs", fields=", ".join(differs)))
                else:
                    state = "unchanged"
        if state == "new" and row.slug:
            if row.slug in seen_slug:
                errors.add(problem(row.line, "slug", row.slug, "same_slug", first=seen_slug[row.slug]))
            elif row.slug in slugs:
                errors.add(problem(row.line, "slug", row.slug, "slug_taken"))
            seen_slug.setdefault(row.slug, row.line)
        status[row.line] = state
    bad = {e.row for e in errors.listed}
    sample = [
        SampleRow(r.line, r.code, r.name_fr, "error" if r.line in bad else status[r.line]) for r in rows[:SAMPLE_ROWS]
    ]
    new = [r for r in rows if status[r.line] == "new"]
    unchanged = len(rows) - len(new)
    if errors.count or not write:
        return _report(
            "schools", errors, rows=len(rows), created={"schools": len(new)}, unchanged=unchanged, sample=sample
        )
    ctx = actor.request_context()
    for done, row in enumerate(new, start=1):
        province_id = tree.provinces.get(row.province.lower()) or tree.provinces[row.province.upper()]
        parent = await actor.services.tenants.by_id(province_id)
        assert parent is not None
        node = await tenant_service.create_node(
            ctx,
            parent,
            kind="school",
            slug=row.slug,
            code=row.code,
            name_ar=row.name_ar,
            name_fr=row.name_fr,
            name_en=row.name_en,
            default_locale=actor.region.default_locale,
        )
        await db.execute(
            "INSERT INTO school_profile (region_id, province_id, school_id, cycle, address, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, {})",
            actor.region.id,
            province_id,
            node.id,
            row.cycle,
            row.address,
            _now(),
        )
        if progress and done % 100 == 0:
            await progress(done, len(new), "schools")
    return _report(
        "schools",
        errors,
        rows=len(rows),
        created={"schools": len(new)},
        unchanged=unchanged,
        sample=sample,
        committed=True,
    )


# -- pupils and guardians -----------------------------------------------------------------------


async def _students(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = _Errors(sink)
    tree = await load_tree(db, actor.region)
    stage = Stage(db, "onb_student", "onb_guardian")
    await stage.create()
    today = date.today()

    def add(line: int, cells: list[str], columns: dict[str, int]) -> None:
        row: StudentRow
        row, problems = check_student(line, cells, columns, today)
        errors.extend(problems)
        school = tree.school(row.school) if row.school else None
        if row.school and school is None:
            errors.add(tree.school_problem(line, row.school))
        stage.add(
            "onb_student",
            (
                line,
                school[0] if school else None,
                school[1] if school else None,
                row.national_code,
                row.last_name,
                row.first_name,
                row.last_name_ar,
                row.first_name_ar,
                row.birth_date if db.dialect == "postgres" else (row.birth_date and row.birth_date.isoformat()),
                row.gender,
                row.class_name,
            ),
        )
        for g in row.guardians:
            stage.add("onb_guardian", (line * 2 + g.position, line, g.position, g.email, g.name, g.name_ar, g.relation))

    rows = await _stage_rows("students", stream, stage, errors, progress, add)
    if isinstance(rows, Report):
        return rows
    await stage.index()
    year = await current_year(db)
    distinct = _distinct(db)
    # duplicates within the file
    await _sql_errors(
        db,
        errors,
        "SELECT s.line, s.code, (SELECT MIN(t.line) FROM onb_student t WHERE t.code = s.code) AS first "
        "FROM onb_student s WHERE s.code <> '' AND EXISTS "
        "(SELECT 1 FROM onb_student t WHERE t.code = s.code AND t.line < s.line)",
        [],
        lambda r: problem(r["line"], "national_code", r["code"], "duplicate_row", first=r["first"]),
    )
    # classes of this year
    await db.execute(
        "UPDATE onb_student SET class_id = c.id FROM school_class c WHERE c.school_id = onb_student.school_id "
        "AND c.school_year_id = {} AND lower(c.name) = lower(onb_student.class_name) AND onb_student.class_name <> ''",
        year["id"],
    )
    await _sql_errors(
        db,
        errors,
        "SELECT line, class_name FROM onb_student WHERE class_name <> '' AND class_id IS NULL "
        "AND school_id IS NOT NULL",
        [],
        lambda r: problem(r["line"], "class", r["class_name"], "no_class", year=year["label"]),
    )
    # pupils already registered: here (identical → unchanged), elsewhere in the region, in another region
    where, args = scope_filter(actor.scope, "st")
    await db.execute(
        f"UPDATE onb_student SET student_id = st.id FROM student st WHERE st.national_code = onb_student.code "
        f"AND onb_student.code <> '' AND {where}",
        *args,
    )
    await _sql_errors(
        db,
        errors,
        "SELECT s.line, s.code, t.slug FROM onb_student s JOIN student st ON st.id = s.student_id "
        "JOIN tenant t ON t.id = st.school_id WHERE st.school_id <> s.school_id",
        [],
        lambda r: problem(r["line"], "national_code", r["code"], "enrolled_elsewhere", school=r["slug"]),
    )
    differs = (
        f"(st.last_name <> s.last_name OR st.first_name <> s.first_name "
        f"OR (s.last_name_ar <> '' AND st.last_name_ar <> s.last_name_ar) "
        f"OR (s.first_name_ar <> '' AND st.first_name_ar <> s.first_name_ar) "
        f"OR (s.birth_date IS NOT NULL AND st.birth_date {distinct} s.birth_date) "
        f"OR (s.gender <> '' AND st.gender <> s.gender) "
        f"OR (s.class_id IS NOT NULL AND s.class_id {distinct} "
        f"(SELECT e.class_id FROM enrolment e WHERE e.student_id = st.id AND e.ends_on IS NULL)))"
    )
    await _sql_errors(
        db,
        errors,
        "SELECT s.line, s.code FROM onb_student s JOIN student st ON st.id = s.student_id "
        f"WHERE st.school_id = s.school_id AND {differs}",
        [],
        lambda r: problem(r["line"], "national_code", r["code"], "pupil_differs"),
    )
    await db.execute(
        "UPDATE onb_student SET state = 'unchanged' WHERE student_id IS NOT NULL AND line IN "
        f"(SELECT s.line FROM onb_student s JOIN student st ON st.id = s.student_id "
        f"WHERE st.school_id = s.school_id AND NOT {differs})"
    )
    if db.dialect == "postgres":
        taken = (
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code IN "
            "(SELECT madrasa_pupil_codes_taken(ARRAY(SELECT code FROM onb_student "
            "WHERE student_id IS NULL AND code <> '')::varchar[]))"
        )
    else:
        taken = (
            "SELECT s.line, s.code FROM onb_student s WHERE s.student_id IS NULL AND s.code <> '' "
            "AND EXISTS (SELECT 1 FROM student st WHERE st.national_code = s.code)"
        )
    await _sql_errors(
        db,
        errors,
        taken,
        [],
        lambda r: problem(r["line"], "national_code", r["code"], "pupil_other_region"),
    )
    # guardians: a new e-mail needs a name somewhere in the file
    await db.execute("UPDATE onb_guardian SET person_id = p.id FROM person p WHERE p.email = onb_guardian.email")
    await _sql_errors(
        db,
        errors,
        "SELECT g.line, g.position, g.email FROM onb_guardian g WHERE g.person_id IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM onb_guardian h WHERE h.email = g.email AND h.name <> '')",
        [],
        lambda r: problem(r["line"], f"guardian{r['position']}_name", "", "guardian_name_required"),
    )
    if progress:
        await progress(rows, rows, "checked")
    counts = await db.fetchrow(
        "SELECT (SELECT COUNT(*) FROM onb_student WHERE state IS NULL) AS new_students, "
        "(SELECT COUNT(*) FROM onb_student WHERE state = 'unchanged') AS unchanged, "
        "(SELECT COUNT(DISTINCT email) FROM onb_guardian WHERE person_id IS NULL) AS new_guardians, "
        "(SELECT COUNT(*) FROM onb_student WHERE state IS NULL AND class_id IS NOT NULL) AS enrolments"
    )
    assert counts is not None
    # links to write: every guardian of a new pupil or new guardian, and missing links of existing pupils
    links = int(
        await db.fetchval(
            "SELECT (SELECT COUNT(*) FROM onb_guardian g JOIN onb_student s ON s.line = g.line "
            "WHERE s.student_id IS NULL OR g.person_id IS NULL) + (SELECT COUNT(*) FROM onb_guardian g "
            "JOIN onb_student s ON s.line = g.line WHERE s.student_id IS NOT NULL AND g.person_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM guardianship x WHERE x.student_id = s.student_id "
            "AND x.person_id = g.person_id))"
        )
        or 0
    )
    created = {
        "students": int(counts["new_students"]),
        "guardians": int(counts["new_guardians"]),
        "guardian_links": links,
        "enrolments": int(counts["enrolments"]),
    }
    bad = errors.lines()
    sample = [
        SampleRow(
            r["line"],
            r["code"],
            f"{r['last_name']} {r['first_name']}".strip(),
            "error" if r["line"] in bad else (r["state"] or "new"),
        )
        for r in await db.fetch(
            f"SELECT line, code, last_name, first_name, state FROM onb_student ORDER BY line LIMIT {SAMPLE_ROWS}"
        )
    ]
    values = {"rows": rows, "created": created, "unchanged": int(counts["unchanged"]), "sample": sample}
    if errors.count or not write:
        return _report("students", errors, **values)
    now = _now()
    region = actor.region.id
    i, t, b, d = _casts(db)
    await db.execute(
        "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
        "first_name_ar, last_name_ar, birth_date, gender, created_at) "
        f"SELECT {{}}{i}, province_id, school_id, code, first_name, last_name, first_name_ar, last_name_ar, "
        f"birth_date, gender, {{}}{t} FROM onb_student WHERE student_id IS NULL ORDER BY line",
        region,
        now,
    )
    await db.execute(
        "UPDATE onb_student SET student_id = st.id, state = 'new' FROM student st "
        "WHERE st.national_code = onb_student.code AND onb_student.student_id IS NULL"
    )
    if progress:
        await progress(rows, rows, "pupils written")
    await db.execute(
        "INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, starts_on, "
        f"status) SELECT {{}}{i}, province_id, school_id, student_id, class_id, {{}}{i}, {{}}{d}, 'active' "
        "FROM onb_student "
        "WHERE state = 'new' AND class_id IS NOT NULL",
        region,
        year["id"],
        today if db.dialect == "postgres" else today.isoformat(),
    )
    await db.execute(
        "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
        f"SELECT g.email, NULL, g.name, g.name_ar, 'ar', {{}}{b}, {{}}{t} FROM onb_guardian g "
        "WHERE g.person_id IS NULL "
        "AND g.name <> '' AND g.key = "
        "(SELECT MIN(h.key) FROM onb_guardian h WHERE h.email = g.email AND h.name <> '')",
        True,
        now,
    )
    await db.execute(
        "UPDATE onb_guardian SET person_id = p.id FROM person p WHERE p.email = onb_guardian.email "
        "AND onb_guardian.person_id IS NULL"
    )
    await db.execute(
        "INSERT INTO guardianship (region_id, province_id, school_id, student_id, person_id, relation) "
        f"SELECT {{}}{i}, s.province_id, s.school_id, s.student_id, g.person_id, g.relation FROM onb_guardian g "
        "JOIN onb_student s ON s.line = g.line WHERE NOT EXISTS (SELECT 1 FROM guardianship x "
        "WHERE x.student_id = s.student_id AND x.person_id = g.person_id)",
        region,
    )
    await db.execute(
        "INSERT INTO membership (person_id, role, tenant_id, created_at) "
        f"SELECT DISTINCT g.person_id, 'parent', s.school_id, {{}}{t} FROM onb_guardian g JOIN onb_student s "
        "ON s.line = g.line WHERE NOT EXISTS (SELECT 1 FROM membership m WHERE m.person_id = g.person_id "
        "AND m.role = 'parent' AND m.tenant_id = s.school_id)",
        now,
    )
    actor.services.grants.invalidate()
    return _report("students", errors, committed=True, **values)


# -- staff --------------------------------------------------------------------------------------


async def _staff(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = _Errors(sink)
    tree = await load_tree(db, actor.region)
    stage = Stage(db, "onb_staff")
    await stage.create()

    def add(line: int, cells: list[str], columns: dict[str, int]) -> None:
        row: StaffRow
        row, problems = check_staff(line, cells, columns)
        errors.extend(problems)
        school = tree.school(row.school) if row.school else None
        if row.school and school is None:
            errors.add(tree.school_problem(line, row.school))
        stage.add(
            "onb_staff",
            (
                line,
                school[0] if school else None,
                school[1] if school else None,
                row.email,
                row.full_name,
                row.full_name_ar,
                row.role,
                row.staff_number,
                row.locale,
            ),
        )

    rows = await _stage_rows("staff", stream, stage, errors, progress, add)
    if isinstance(rows, Report):
        return rows
    await stage.index()
    await _sql_errors(
        db,
        errors,
        "SELECT s.line, s.email, (SELECT MIN(t.line) FROM onb_staff t WHERE t.email = s.email) AS first "
        "FROM onb_staff s WHERE s.email <> '' AND EXISTS "
        "(SELECT 1 FROM onb_staff t WHERE t.email = s.email AND t.line < s.line)",
        [],
        lambda r: problem(r["line"], "email", r["email"], "duplicate_row", first=r["first"]),
    )
    await _sql_errors(
        db,
        errors,
        "SELECT s.line, s.staff_number, (SELECT MIN(t.line) FROM onb_staff t WHERE t.staff_number = s.staff_number) "
        "AS first FROM onb_staff s WHERE s.staff_number <> '' AND EXISTS "
        "(SELECT 1 FROM onb_staff t WHERE t.staff_number = s.staff_number AND t.line < s.line)",
        [],
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "same_number", first=r["first"]),
    )
    await db.execute("UPDATE onb_staff SET person_id = p.id FROM person p WHERE p.email = onb_staff.email")
    if db.dialect == "postgres":
        records_sql = (
            "SELECT * FROM madrasa_staff_records(ARRAY(SELECT staff_number FROM onb_staff WHERE staff_number <> '')"
            "::varchar[], ARRAY(SELECT person_id FROM onb_staff WHERE person_id IS NOT NULL)::integer[])"
        )
    else:
        records_sql = (
            "SELECT staff_number, person_id FROM staff WHERE staff_number IN (SELECT staff_number FROM onb_staff) "
            "OR person_id IN (SELECT person_id FROM onb_staff)"
        )
    distinct = _distinct(db)
    await _sql_errors(
        db,
        errors,
        f"SELECT s.line, s.staff_number FROM onb_staff s JOIN ({records_sql}) r ON r.staff_number = s.staff_number "
        f"WHERE s.staff_number <> '' AND r.person_id {distinct} s.person_id",
        [],
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "number_taken"),
    )
    await _sql_errors(
        db,
        errors,
        f"SELECT s.line, s.staff_number FROM onb_staff s JOIN ({records_sql}) r ON r.person_id = s.person_id "
        "WHERE s.staff_number <> '' AND r.staff_number <> s.staff_number",
        [],
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "other_number"),
    )
    await db.execute(
        "UPDATE onb_staff SET state = 'unchanged' WHERE person_id IS NOT NULL AND EXISTS (SELECT 1 FROM membership m "
        "WHERE m.person_id = onb_staff.person_id AND m.role = onb_staff.role AND m.tenant_id = onb_staff.school_id) "
        f"AND (staff_number = '' OR staff_number IN (SELECT r.staff_number FROM ({records_sql}) r "
        "WHERE r.person_id = onb_staff.person_id))"
    )
    counts = await db.fetchrow(
        "SELECT (SELECT COUNT(*) FROM onb_staff WHERE state IS NULL) AS new_rows, "
        "(SELECT COUNT(*) FROM onb_staff WHERE state = 'unchanged') AS unchanged, "
        "(SELECT COUNT(*) FROM onb_staff WHERE person_id IS NULL) AS new_people, "
        "(SELECT COUNT(*) FROM onb_staff WHERE state IS NULL AND role = 'school_director') AS directors"
    )
    assert counts is not None
    bad = errors.lines()
    sample = [
        SampleRow(r["line"], r["email"], r["full_name"], "error" if r["line"] in bad else (r["state"] or "new"))
        for r in await db.fetch(
            f"SELECT line, email, full_name, state FROM onb_staff ORDER BY line LIMIT {SAMPLE_ROWS}"
        )
    ]
    values = {
        "rows": rows,
        "created": {
            "memberships": int(counts["new_rows"]),
            "people": int(counts["new_people"]),
            "directors": int(counts["directors"]),
        },
        "unchanged": int(counts["unchanged"]),
        "sample": sample,
    }
    if errors.count or not write:
        return _report("staff", errors, **values)
    now = _now()
    i, t, b, _ = _casts(db)
    await db.execute(
        "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
        f"SELECT email, NULL, full_name, full_name_ar, locale, {{}}{b}, {{}}{t} FROM onb_staff WHERE person_id IS NULL",
        True,
        now,
    )
    await db.execute(
        "UPDATE onb_staff SET person_id = p.id FROM person p WHERE p.email = onb_staff.email "
        "AND onb_staff.person_id IS NULL"
    )
    actor.new_directors = [
        int(r["person_id"])
        for r in await db.fetch(
            "SELECT DISTINCT s.person_id FROM onb_staff s JOIN person p ON p.id = s.person_id "
            "WHERE s.state IS NULL AND s.role = 'school_director' AND p.password_hash IS NULL"
        )
    ]
    await db.execute(
        "INSERT INTO membership (person_id, role, tenant_id, created_at) SELECT s.person_id, s.role, s.school_id, "
        f"{{}}{t} "
        "FROM onb_staff s WHERE s.state IS NULL AND NOT EXISTS (SELECT 1 FROM membership m "
        "WHERE m.person_id = s.person_id AND m.role = s.role AND m.tenant_id = s.school_id)",
        now,
    )
    await db.execute(
        "INSERT INTO staff (region_id, province_id, school_id, person_id, staff_number, grade) "
        f"SELECT {{}}{i}, s.province_id, s.school_id, s.person_id, s.staff_number, '' FROM onb_staff s "
        f"WHERE s.staff_number <> '' AND NOT EXISTS (SELECT 1 FROM ({records_sql}) r WHERE r.person_id = s.person_id)",
        actor.region.id,
    )
    actor.services.grants.invalidate()
    return _report("staff", errors, committed=True, **values)


# -- batches -------------------------------------------------------------------------------------

RUNNERS = {"schools": _schools, "students": _students, "staff": _staff}
BATCH_COLUMNS = (
    "id, kind, filename, file_key, file_bytes, file_format, sha256, status, rows, error_count, errors_key, "
    "errors_bytes, report, job_id, created_by, created_at, claimed_at, committed_at, region_id"
)


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def batch_out(row: dict[str, Any]) -> BatchOut:
    """The API view of a batch row."""
    report = row["report"]
    if isinstance(report, str | bytes):
        report = msgspec.json.decode(report, type=Report)
    else:
        report = msgspec.convert(report, Report)
    created_at = _when(row["created_at"])
    assert created_at is not None
    return BatchOut(
        id=row["id"],
        kind=row["kind"],
        filename=row["filename"],
        file_format=row["file_format"],
        status=row["status"],
        rows=int(row["rows"] or 0),
        error_count=int(row["error_count"] or 0),
        job_id=row["job_id"],
        created_at=created_at,
        committed_at=_when(row["committed_at"]),
        report=report,
    )


async def validate_stream(
    actor: Actor,
    kind: str,
    stream: IO[bytes],
    *,
    write: bool,
    progress: Progress | None = None,
    errors_sink: IO[bytes] | None = None,
) -> Report:
    """Validate (and with ``write``, commit) a file inside the caller's scoped transaction.

    With ``errors_sink``, every error (not only the listed ones) is written there, one JSON object a line.
    """
    return await RUNNERS[kind](actor, stream, write=write, progress=progress, sink=errors_sink)


# -- files in storage ----------------------------------------------------------------------------


def _size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


async def _store(actor: Actor, name: str, stream: IO[bytes]) -> tuple[str, int]:
    """Store a file in parts of :data:`PART_BYTES` (never more than one part in memory); its key and size."""
    storage, tenant = actor.services.storage, actor.region.id
    key = build_key(tenant, "onboarding", name)
    stream.seek(0)
    size, part = 0, 0
    while chunk := stream.read(PART_BYTES):
        await storage.put(f"{key}.{part:05d}", chunk, "application/octet-stream", tenant_id=tenant)
        size += len(chunk)
        part += 1
    stream.seek(0)
    return key, size


async def _load(actor: Actor, key: str, size: int, into: IO[bytes]) -> None:
    """Copy a stored file, part by part, into a local file (left at its start)."""
    storage, tenant = actor.services.storage, actor.region.id
    for part in range(-(-size // PART_BYTES)):
        into.write(await storage.get(f"{key}.{part:05d}", tenant_id=tenant))
    into.seek(0)


def _digest(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


async def upload(actor: Actor, kind: str, filename: str, file: bytes | IO[bytes]) -> BatchOut:
    """Validate a file, store it and record the batch with its report; nothing else is written.

    ``file`` is read as a stream (a spooled upload stays on disk); every error goes to a stored
    error file that :func:`errors_csv` serves.
    """
    if kind not in KINDS:
        raise Invalid("kind", f"must be one of {', '.join(KINDS)}")
    stream: IO[bytes] = io.BytesIO(file) if isinstance(file, bytes) else file
    size = _size(stream)
    if size > MAX_UPLOAD_BYTES:
        raise TooLarge(MAX_UPLOAD_BYTES)
    db = actor.db
    fmt = "xlsx" if stream.read(4) == b"PK\x03\x04" else "csv"
    stream.seek(0)
    sha = _digest(stream)
    batch_id = str(uuid.uuid4())
    large = size > INLINE_XLSX_BYTES if fmt == "xlsx" else count_lines(stream) > INLINE_ROWS
    if large and actor.services.jobs is not None:
        return await _queue_validation(actor, batch_id, kind, filename, fmt, sha, stream)
    with tempfile.TemporaryFile() as sink:
        async with db.scoped(actor.scope):
            report = await validate_stream(actor, kind, stream, write=False, errors_sink=sink)
        key, stored = await _store(actor, f"file.{fmt}", stream) if report.ok else ("", 0)
        errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink) if report.error_count else ("", 0)
    status = "ready" if report.ok else "invalid"
    async with db.scoped(actor.scope):
        await db.execute(
            "INSERT INTO onboarding_batch (id, kind, filename, file_key, file_bytes, file_format, sha256, status, "
            "rows, error_count, errors_key, errors_bytes, report, job_id, created_by, created_at, region_id) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NULL, {}, {}, {})",
            batch_id,
            kind,
            (filename or "file")[:200],
            key,
            stored,
            fmt,
            sha,
            status,
            report.rows,
            report.error_count,
            errors_key,
            errors_bytes,
            msgspec.json.encode(report).decode(),
            actor.person_id,
            _now(),
            actor.region.id,
        )
        row = await _batch_row(actor, batch_id)
    return batch_out(row)


async def _queue_validation(
    actor: Actor, batch_id: str, kind: str, filename: str, fmt: str, sha: str, stream: IO[bytes]
) -> BatchOut:
    """Store a large file and record its batch as ``validating``; a job previews it with progress."""
    db = actor.db
    key, stored = await _store(actor, f"file.{fmt}", stream)
    pending = Report(ok=False, kind=kind)
    async with db.scoped(actor.scope):
        await db.execute(
            "INSERT INTO onboarding_batch (id, kind, filename, file_key, file_bytes, file_format, sha256, status, "
            "rows, error_count, errors_key, errors_bytes, report, job_id, created_by, created_at, claimed_at, "
            "region_id) VALUES ({}, {}, {}, {}, {}, {}, {}, 'validating', 0, 0, '', 0, {}, NULL, {}, {}, {}, {})",
            batch_id,
            kind,
            (filename or "file")[:200],
            key,
            stored,
            fmt,
            sha,
            msgspec.json.encode(pending).decode(),
            actor.person_id,
            _now(),
            _now(),
            actor.region.id,
        )
    try:
        job_id = await actor.services.jobs.enqueue(
            VALIDATE_JOB_KIND,
            {"batch_id": batch_id},
            scope_columns={"region_id": actor.region.id},
            created_by=actor.person_id,
        )
    except Exception:
        async with db.scoped(actor.scope):
            await db.execute("DELETE FROM onboarding_batch WHERE id = {}", batch_id)
        raise
    async with db.scoped(actor.scope):
        await db.execute("UPDATE onboarding_batch SET job_id = {} WHERE id = {}", job_id, batch_id)
        return batch_out(await _batch_row(actor, batch_id))


async def run_validation(actor: Actor, batch_id: str, progress: Progress | None = None) -> Report:
    """Preview a stored file (a ``validating`` batch): validate it, keep every error, record the report."""
    db = actor.db
    async with db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    if row["status"] != "validating":
        return batch_out(row).report
    errors_key, errors_bytes = "", 0
    try:
        with tempfile.TemporaryFile() as local, tempfile.TemporaryFile() as sink:
            await _load(actor, row["file_key"], int(row["file_bytes"] or 0), local)
            async with db.scoped(actor.scope):
                report = await validate_stream(
                    actor, row["kind"], local, write=False, progress=progress, errors_sink=sink
                )
            if report.error_count:
                errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink)
    except Exception:
        logger.exception("onboarding preview of batch %s failed", batch_id)
        report = Report(ok=False, kind=row["kind"], error_count=1, errors=[problem(0, FILE, "", "preview_failed")])
    async with db.scoped(actor.scope):
        await db.execute(
            "UPDATE onboarding_batch SET status = {}, rows = {}, report = {}, error_count = {}, errors_key = {}, "
            "errors_bytes = {} WHERE id = {} AND status = 'validating'",
            "ready" if report.ok else "invalid",
            report.rows,
            msgspec.json.encode(report).decode(),
            report.error_count,
            errors_key,
            errors_bytes,
            batch_id,
        )
    return report


async def _batch_row(actor: Actor, batch_id: str) -> dict[str, Any]:
    where, args = scope_filter(actor.scope)
    row = await actor.db.fetchrow(
        f"SELECT {BATCH_COLUMNS} FROM onboarding_batch WHERE id = {{}} AND region_id = {{}} AND {where}",
        batch_id,
        actor.region.id,
        *args,
    )
    if row is None:
        raise NotFoundException("No such onboarding batch.")
    return row


async def get_batch(actor: Actor, batch_id: str) -> BatchOut:
    """A batch of the actor's region, or 404."""
    if len(batch_id) > 64:
        raise NotFoundException("No such onboarding batch.")
    async with actor.db.scoped(actor.scope, write=False):
        return batch_out(await _batch_row(actor, batch_id))


async def list_batches(actor: Actor, limit: int = 50) -> list[BatchOut]:
    """The region's latest batches."""
    where, args = scope_filter(actor.scope)
    async with actor.db.scoped(actor.scope, write=False):
        rows = await actor.db.fetch(
            f"SELECT {BATCH_COLUMNS} FROM onboarding_batch WHERE region_id = {{}} AND {where} "
            f"ORDER BY created_at DESC LIMIT {int(limit)}",
            actor.region.id,
            *args,
        )
    return [batch_out(r) for r in rows]


ERRORS_CSV_HEADER = ("row", "column", "value", "code", "message")


async def errors_csv(actor: Actor, batch_id: str, locale: str) -> AsyncIterator[bytes]:
    """Every error of a batch as CSV (UTF-8 with BOM), messages in ``locale``; read part by part."""
    if len(batch_id) > 64:
        raise NotFoundException("No such onboarding batch.")
    async with actor.db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    listed = batch_out(row).report.errors
    key, size = row["errors_key"] or "", int(row["errors_bytes"] or 0)
    storage, tenant = actor.services.storage, actor.region.id
    decode = msgspec.json.Decoder(CellError).decode

    def lines(errors: list[CellError]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for e in errors:
            writer.writerow([e.row, e.column, csv_cell(e.value), e.code, csv_cell(translated(e))])
        return buffer.getvalue().encode()

    async def chunks() -> AsyncIterator[bytes]:
        locale_var.set(locale)
        buffer = io.StringIO()
        csv.writer(buffer).writerow(ERRORS_CSV_HEADER)
        yield b"\xef\xbb\xbf" + buffer.getvalue().encode()
        if not key:
            yield lines(listed)
            return
        rest = b""
        for part in range(-(-size // PART_BYTES)):
            data = rest + await storage.get(f"{key}.{part:05d}", tenant_id=tenant)
            complete, _, rest = data.rpartition(b"\n")
            if complete:
                yield lines([decode(line) for line in complete.split(b"\n") if line])
        if rest.strip():
            yield lines([decode(rest)])

    return chunks()


async def start_commit(actor: Actor, batch_id: str, base_url: str) -> tuple[BatchOut, bool]:
    """Commit a ready batch: inline when small (returns ``(batch, False)``), else as a job (``True``).

    A batch left ``committing`` for longer than :data:`STALE_CLAIM` (its worker died) may be claimed again.
    """
    db = actor.db
    now = _now()
    async with db.scoped(actor.scope):
        row = await _batch_row(actor, batch_id)
        claimed_at = _when(row["claimed_at"])
        stale = row["status"] == "committing" and claimed_at is not None and claimed_at < now - STALE_CLAIM
        if row["status"] == "committing" and not stale:
            raise Conflict("being_committed", "This batch is being committed by someone else.")
        if row["status"] != "ready" and not stale:
            raise Conflict(
                "not_ready",
                "This batch is {status}: only a batch that validated can be committed.",
                status=row["status"],
            )
        if stale:
            claimed = await db.fetchrow(
                "UPDATE onboarding_batch SET claimed_at = {}, job_id = NULL WHERE id = {} AND status = 'committing' "
                "AND claimed_at = {} RETURNING id",
                now,
                batch_id,
                row["claimed_at"],
            )
        else:
            claimed = await db.fetchrow(
                "UPDATE onboarding_batch SET status = 'committing', claimed_at = {} WHERE id = {} AND status = 'ready' "
                "RETURNING id",
                now,
                batch_id,
            )
        if claimed is None:
            raise Conflict("being_committed", "This batch is being committed by someone else.")
    if int(row["rows"] or 0) > INLINE_ROWS and actor.services.jobs is not None:
        try:
            job_id = await actor.services.jobs.enqueue(
                JOB_KIND,
                {"batch_id": batch_id, "base_url": base_url},
                scope_columns={"region_id": actor.region.id},
                created_by=actor.person_id,
            )
        except Exception:
            async with db.scoped(actor.scope):
                await db.execute("UPDATE onboarding_batch SET status = 'ready' WHERE id = {}", batch_id)
            raise
        async with db.scoped(actor.scope):
            await db.execute("UPDATE onboarding_batch SET job_id = {} WHERE id = {}", job_id, batch_id)
            return batch_out(await _batch_row(actor, batch_id)), True
    await run_commit(actor, batch_id, base_url)
    return await get_batch(actor, batch_id), False


async def run_commit(actor: Actor, batch_id: str, base_url: str, progress: Progress | None = None) -> Report:
    """Validate the stored file again and write it in one transaction; record the outcome on the batch.

    The file is read back part by part into a local temporary file and validated as a stream.
    """
    db = actor.db
    async with db.scoped(actor.scope, write=False):
        row = await _batch_row(actor, batch_id)
    report: Report
    errors_key, errors_bytes = "", 0
    try:
        with tempfile.TemporaryFile() as local, tempfile.TemporaryFile() as sink:
            await _load(actor, row["file_key"], int(row["file_bytes"] or 0), local)
            try:
                async with db.scoped(actor.scope):
                    report = await validate_stream(
                        actor, row["kind"], local, write=True, progress=progress, errors_sink=sink
                    )
                    if not report.ok:
                        raise RolledBack(report)
                    await audit.record(
                        db,
                        actor_id=actor.person_id,
                        action="onboarding.commit",
                        object_type="onboarding_batch",
                        object_id=batch_id,
                        tenant=actor.region,
                        after={"kind": row["kind"], "created": report.created, "unchanged": report.unchanged},
                    )
            except RolledBack as exc:
                report = exc.report
                errors_key, errors_bytes = await _store(actor, "errors.jsonl", sink)
    except Exception:
        logger.exception("onboarding commit of batch %s failed", batch_id)
        report = Report(
            ok=False,
            kind=row["kind"],
            rows=int(row["rows"] or 0),
            error_count=1,
            errors=[problem(0, FILE, "", "commit_failed")],
        )
    async with db.scoped(actor.scope):
        await db.execute(
            "UPDATE onboarding_batch SET status = {}, report = {}, error_count = {}, errors_key = {}, "
            "errors_bytes = {}, committed_at = {} WHERE id = {}",
            "committed" if report.ok else "invalid",
            msgspec.json.encode(report).decode(),
            report.error_count,
            errors_key,
            errors_bytes,
            _now() if report.ok else None,
            batch_id,
        )
    if report.ok and actor.new_directors:
        await invite_directors(actor, actor.new_directors, base_url)
    return report


class RolledBack(Exception):
    """A validation that found errors inside a write transaction: roll it back, keep the report."""

    def __init__(self, report: Report) -> None:
        super().__init__("rolled back")
        self.report = report


async def _job_actor(job: JobContext) -> Actor:
    """The actor a job runs as: its creator, in its region."""
    region_id = job.scope_columns.get("region_id")
    region = await job.services.tenants.by_id(int(region_id or 0))
    if region is None:
        raise LookupError("the batch's region no longer exists")
    identity = None
    if job.created_by is not None:
        person = await job.db.fetchrow(
            "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE id = {}", job.created_by
        )
        if person is not None:
            identity = Identity(
                person["id"], person["email"], person["full_name"], person["full_name_ar"], person["locale"]
            )
    return Actor(job.services, job.scope, identity, region)


@register_job(JOB_KIND)
async def commit_job(job: JobContext, *, batch_id: str, base_url: str) -> dict[str, Any]:
    """The background commit of a large batch (progress in the job table)."""
    actor = await _job_actor(job)

    async def progress(done: int, total: int, message: str) -> None:
        await _progress_outside(job, done, total, message)

    report = await run_commit(actor, batch_id, base_url, progress=progress)
    return {"ok": report.ok, "created": report.created, "unchanged": report.unchanged, "errors": report.error_count}


@register_job(VALIDATE_JOB_KIND)
async def validate_job(job: JobContext, *, batch_id: str) -> dict[str, Any]:
    """The background preview of a large file (progress in the job table)."""
    actor = await _job_actor(job)

    async def progress(done: int, total: int, message: str) -> None:
        await _progress_outside(job, done, total, message)

    report = await run_validation(actor, batch_id, progress=progress)
    return {"ok": report.ok, "rows": report.rows, "errors": report.error_count}


async def _progress_outside(job: JobContext, done: int, total: int, message: str) -> None:
    """Progress written on its own connection, so it shows while the commit's transaction is open."""
    db = job.db
    if db.dialect != "postgres":
        return  # SQLite allows one writer: the commit's transaction; progress is recorded when it ends
    pool = db.engine.pool  # type: ignore[attr-defined]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.scope', $1, true)", ",".join(str(n) for n in job.scope.nodes))
        await conn.execute(
            "UPDATE job SET done = $1, total = $2, message = $3 WHERE id = $4", done, max(total, done), message, job.id
        )


# -- one school ---------------------------------------------------------------------------------


async def add_school(actor: Actor, fields: dict[str, str]) -> Report:
    """Onboard one school (the same checks as a file of one row); written at once when valid."""
    header = list(fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerow([fields[h] for h in header])
    data = buffer.getvalue().encode()
    async with actor.db.scoped(actor.scope):
        report = await _schools(actor, io.BytesIO(data), write=True, progress=None)
        if not report.ok:
            raise RolledBack(report)
    return report


# -- invitations --------------------------------------------------------------------------------


async def invite(
    actor: Actor,
    school: TenantInfo,
    *,
    email: str,
    full_name: str,
    full_name_ar: str,
    locale: str,
    base_url: str,
) -> int:
    """Make a person director of a school and e-mail them a one-time link to set their password."""
    if school.kind != "school" or not actor.region.covers(school):
        raise NotFoundException(f"No school {school.slug!r} in this region.")
    email = normalise_email(email)
    db = actor.db
    async with db.scoped(actor.scope):
        ctx = actor.request_context()
        person_id = await tenant_service.create_person(
            ctx, email=email, full_name=full_name, full_name_ar=full_name_ar, locale=locale, password=None
        )
        await tenant_service.add_membership(ctx, person_id, "school_director", school)
        token = await _new_invitation(actor, person_id, email, school)
    await _send_invitation(actor.services, email, full_name, locale, school, token, base_url)
    return person_id


async def _new_invitation(actor: Actor, person_id: int, email: str, school: TenantInfo) -> str:
    token = secrets.token_urlsafe(32)
    cols = school.scope_columns()
    await actor.db.execute(
        "INSERT INTO onboarding_invitation (person_id, email, role, token_hash, expires_at, created_by, created_at, "
        "region_id, province_id, school_id) VALUES ({}, {}, 'school_director', {}, {}, {}, {}, {}, {}, {})",
        person_id,
        email,
        sha256(token),
        _now() + INVITATION_TTL,
        actor.person_id,
        _now(),
        cols["region_id"],
        cols["province_id"],
        cols["school_id"],
    )
    return token


INVITATION_TEXT = {
    "fr": (
        "madrasa : invitation à diriger {school}",
        "Bonjour {name},\n\nVous êtes invité(e) comme directeur/directrice de {school}. Ouvrez ce lien dans les "
        "7 jours pour choisir votre mot de passe (il ne sert qu'une fois) :\n{url}\n",
    ),
    "ar": (
        "مدرسة: دعوة لإدارة {school}",
        "مرحبا {name}،\n\nتمت دعوتك مديرا(ة) لـ {school}. افتح هذا الرابط خلال 7 أيام لاختيار كلمة المرور "
        "(يستعمل مرة واحدة):\n{url}\n",
    ),
    "en": (
        "madrasa: invitation to run {school}",
        "Hello {name},\n\nYou are invited as the director of {school}. Open this link within 7 days to choose "
        "your password (it works once):\n{url}\n",
    ),
}


async def _send_invitation(
    services: Services, email: str, name: str, locale: str, school: TenantInfo, token: str, base_url: str
) -> None:
    subject, body = INVITATION_TEXT.get(locale, INVITATION_TEXT["fr"])
    url = f"{base_url.rstrip('/')}/onboarding/invitations/{token}"
    title = school.name(locale)
    await services.mailer.send(
        Mail(
            to=email,
            subject=subject.format(school=title),
            body=body.format(name=name or email, school=title, url=url) + f"\nToken: {token}\n",
        )
    )


async def invite_directors(actor: Actor, people: list[int], base_url: str) -> int:
    """Invite these directors of the region (one live invitation each); returns how many were sent."""
    db = actor.db
    marks, ids = in_list(people)
    prefix = "/".join(str(p) for p in actor.region.path) + "/%"
    async with db.scoped(actor.scope):
        rows = await db.fetch(
            "SELECT DISTINCT p.id, p.email, p.full_name, p.locale, m.tenant_id FROM membership m "
            "JOIN person p ON p.id = m.person_id JOIN tenant t ON t.id = m.tenant_id "
            f"WHERE m.role = 'school_director' AND t.path LIKE {{}} AND p.id IN {marks}",
            prefix,
            *ids,
        )
        sent = []
        for r in rows:
            school = await actor.services.tenants.by_id(r["tenant_id"])
            assert school is not None
            token = await _new_invitation(actor, r["id"], r["email"], school)
            sent.append((r, school, token))
    for r, school, token in sent:
        await _send_invitation(actor.services, r["email"], r["full_name"], r["locale"], school, token, base_url)
    return len(sent)


async def invitation_for(services: Services, token: str) -> dict[str, Any] | None:
    """A live invitation by its token (``None`` when unknown, used or expired)."""
    if not 10 <= len(token) <= 200:
        return None
    db = services.db
    async with db.scoped(Scope.everything(), write=False):
        row = await db.fetchrow(
            "SELECT i.id, i.person_id, i.email, i.expires_at, i.used_at, i.school_id, p.full_name "
            "FROM onboarding_invitation i JOIN person p ON p.id = i.person_id WHERE i.token_hash = {}",
            sha256(token),
        )
    if row is None or row["used_at"] is not None or _when(row["expires_at"]) <= _now():  # type: ignore[operator]
        return None
    return row


async def accept_invitation(services: Services, token: str, password: str) -> int:
    """Use an invitation once: set the person's password. Returns the person id."""
    weak = check_password_strength(password)
    if weak:
        raise Invalid("password", weak)
    row = await invitation_for(services, token)
    if row is None:
        raise Invalid("token", "this invitation link is invalid, expired or already used")
    db = services.db
    async with db.scoped(Scope.everything()):
        claimed = await db.fetchrow(
            "UPDATE onboarding_invitation SET used_at = {} WHERE id = {} AND used_at IS NULL RETURNING id",
            _now(),
            row["id"],
        )
        if claimed is None:
            raise Invalid("token", "this invitation link is invalid, expired or already used")
        await services.identity.set_password(row["person_id"], password)
    services.grants.invalidate(row["person_id"])
    return int(row["person_id"])
