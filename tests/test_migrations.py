"""Migrations that cannot drift: the migrated schema equals what the table classes declare.

The oracle is a second, throw-away database where every table of core and of every plugin's
``madrasa_tables`` hook is created straight from its Piccolo class (``create_table().ddl``), with
the RLS policy of :meth:`Migrator.enable_rls` on every table that carries a scope column. An empty
database is migrated, and both catalogues are compared: tables, columns (type, length, precision,
nullability, default), primary/unique/foreign-key constraints, the classes' indexes, and on
PostgreSQL row-level security (enabled, forced, policies) and the application role's grants.
Indexes a migration adds beyond the classes (composite keys) are allowed; anything else that
differs fails with the table and the column named.

The upgrade test migrates a database only up to an earlier point of the history (:data:`PREVIOUS`),
fills core, grades and attendance tables, runs the remaining migrations and checks the rows and
the schema.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.table import Table

from core.app import build_plugin_host, migration_sets, owned_tables
from core.config import Settings
from core.db import UNIQUE_VIOLATIONS, Database
from core.migrate import Migration, MigrationError, MigrationSet, Migrator, check_dependencies, migrate, plan
from core.scope import Scope
from core.sql import SQL, ident
from core.tables import SCOPE_COLUMNS
from tests.conftest import PgServer, make_settings

BACKENDS = ["sqlite", "postgres"]

#: An earlier state of the history: the last migration applied per app before the upgrade.
PREVIOUS = {
    "core": "m0002_school_structure",
    "attendance": "m0001_attendance",
    "grades": "m0001_grades",
    "tenants": "m0001_onboarding",
}


def declared_tables(settings: Settings) -> list[type[Table]]:
    """Every table class the application binds: core's and each plugin's ``madrasa_tables``."""
    return [table for _, table in owned_tables(build_plugin_host(settings))]


def class_ddl(tables: Iterable[type[Table]], engine: Any) -> list[str]:
    """The DDL Piccolo generates from the classes for ``engine``'s dialect (rebinding only while reading it)."""
    out: list[str] = []
    for table in tables:
        previous = table._meta._db
        table._meta.db = engine
        try:
            out.extend(table.create_table().ddl)
        finally:
            table._meta._db = previous
    return out


def pg_text(query: SQL, dialect: str = "postgres") -> str:
    """A statement of identifiers only, as text (asyncpg's admin connections, SQLite's ``PRAGMA``)."""
    text, values = query.compile(dialect)
    assert not values
    return text


# -- throw-away databases ---------------------------------------------------------------------


@dataclasses.dataclass
class Scratch:
    """Creates empty databases for one test (SQLite files, or PostgreSQL databases owned by the test owner)."""

    backend: str
    tmp: Path
    pg: PgServer | None
    created: list[str] = dataclasses.field(default_factory=list)
    opened: list[Database] = dataclasses.field(default_factory=list)

    async def database(self, name: str) -> Database:
        """An empty database and its :class:`Database` (owner engine for migrations, app role otherwise)."""
        folder = self.tmp / name
        pg = None
        if self.backend == "postgres":
            assert self.pg is not None
            dbname = "madrasa_mig_" + secrets.token_hex(5)
            admin = await asyncpg.connect(self.pg.admin_url)
            try:
                await admin.execute(pg_text(SQL("CREATE DATABASE {} OWNER {}", ident(dbname), ident(self.pg.owner))))
            finally:
                await admin.close()
            self.created.append(dbname)
            inside = await asyncpg.connect(self.pg.admin_url.rsplit("/", 1)[0] + "/" + dbname)
            try:
                await inside.execute(pg_text(SQL("ALTER SCHEMA public OWNER TO {}", ident(self.pg.owner))))
            finally:
                await inside.close()
            pg = dataclasses.replace(self.pg, database=dbname)
        db = Database(make_settings(self.backend, folder, pg))
        await db.start()
        self.opened.append(db)
        return db

    async def close(self) -> None:
        for db in self.opened:
            await db.stop()
        if not self.created:
            return
        assert self.pg is not None
        admin = await asyncpg.connect(self.pg.admin_url)
        try:
            for dbname in self.created:
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", dbname)
                await admin.execute(pg_text(SQL("DROP DATABASE IF EXISTS {}", ident(dbname))))
        finally:
            await admin.close()


@pytest.fixture(params=BACKENDS)
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scratch]:
    """Empty databases on each backend, dropped afterwards."""
    pg = request.getfixturevalue("pg_server") if request.param == "postgres" else None
    box = Scratch(request.param, tmp_path, pg)
    try:
        yield box
    finally:
        await box.close()


async def oracle(scratch: Scratch, tables: list[type[Table]]) -> Database:
    """A database with the tables created from their classes (and RLS on every scoped table)."""
    db = await scratch.database("oracle")
    for statement in class_ddl(tables, db.owner_engine):
        await db.owner_engine.run_ddl(statement)
    migrator = Migrator(db.owner_engine, db.dialect)
    for table in tables:
        names = {c._meta.db_column_name for c in table._meta.columns}
        if names & set(SCOPE_COLUMNS):
            await migrator.enable_rls(table._meta.tablename)
    return db


# -- catalogues -------------------------------------------------------------------------------


async def pg_catalogue(db: Database) -> dict[str, dict[str, Any]]:
    """Tables of ``public`` with their columns, constraints, indexes, RLS flags and policies."""
    conn = await asyncpg.connect(db.settings.migration_database_url)
    try:
        out: dict[str, dict[str, Any]] = {}
        for row in await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ):
            out[row["relname"]] = {
                "columns": {},
                "constraints": {},
                "indexes": {},
                "rls": {"enabled": row["relrowsecurity"], "forced": row["relforcerowsecurity"]},
                "policies": {},
            }
        for row in await conn.fetch(
            "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
            "datetime_precision, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            info = dict(row)
            table, column = info.pop("table_name"), info.pop("column_name")
            out[table]["columns"][column] = info
        for row in await conn.fetch(
            "SELECT c.relname, k.conname, k.contype::text AS contype, pg_get_constraintdef(k.oid) AS def "
            "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        ):
            out[row["relname"]]["constraints"][row["conname"]] = f"{row['contype']}: {row['def']}"
        for row in await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        ):
            out[row["tablename"]]["indexes"][row["indexname"]] = row["indexdef"]
        for row in await conn.fetch(
            "SELECT c.relname, p.polname, p.polcmd::text AS cmd, p.polpermissive, "
            "pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr "
            "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
        ):
            info = dict(row)
            out[info.pop("relname")]["policies"][info.pop("polname")] = info
        return out
    finally:
        await conn.close()


def sqlite_catalogue(db: Database) -> dict[str, dict[str, Any]]:
    """Tables with their columns, primary/unique constraints, foreign keys and indexes (``PRAGMA``)."""
    conn = sqlite3.connect(db.settings.sqlite_path)

    def pragma(name: str, target: str) -> list[tuple[Any, ...]]:
        return conn.execute(pg_text(SQL("PRAGMA " + name + "({})", ident(target)), "sqlite")).fetchall()

    try:
        out: dict[str, dict[str, Any]] = {}
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        for (table,) in names.fetchall():
            columns = {}
            for _, name, type_, notnull, default, pk in pragma("table_info", table):
                if isinstance(default, str) and default.lower() == "null":
                    default = None  # DEFAULT null and no default mean the same
                columns[name] = {"type": type_.upper(), "not_null": bool(notnull), "default": default, "pk": pk}
            constraints, indexes = {}, {}
            for _, index, unique, origin, partial in pragma("index_list", table):
                cols = tuple(r[2] for r in pragma("index_info", index))
                shape = f"unique={bool(unique)} partial={bool(partial)} columns={cols}"
                if origin == "c":
                    indexes[index] = shape
                else:  # a PRIMARY KEY or UNIQUE clause of the table: named after the table, not the clause
                    constraints[f"{origin} {cols}"] = shape
            for row in pragma("foreign_key_list", table):
                constraints[f"fk {row[3]}"] = f"references {row[2]}({row[4]}) on update {row[5]} on delete {row[6]}"
            out[table] = {"columns": columns, "constraints": constraints, "indexes": indexes}
        return out
    finally:
        conn.close()


async def catalogue(db: Database) -> dict[str, dict[str, Any]]:
    """The schema as the database reports it, without the migrations' own tracking table."""
    found = await pg_catalogue(db) if db.dialect == "postgres" else sqlite_catalogue(db)
    found.pop("madrasa_migration", None)
    return found


def drift(migrated: dict[str, dict[str, Any]], declared: dict[str, dict[str, Any]]) -> list[str]:
    """Every difference, each naming the table (and the column): empty when the migrations match the classes."""
    problems: list[str] = []
    for table in sorted(set(declared) - set(migrated)):
        problems.append(f"{table}: declared by a table class, but no migration creates it")
    for table in sorted(set(migrated) - set(declared)):
        problems.append(f"{table}: created by the migrations, but no table class declares it")
    for table in sorted(set(migrated) & set(declared)):
        have, want = migrated[table], declared[table]
        for column in sorted(set(want["columns"]) - set(have["columns"])):
            problems.append(f"{table}.{column}: declared by the class, missing from the migrated database")
        for column in sorted(set(have["columns"]) - set(want["columns"])):
            problems.append(f"{table}.{column}: in the migrated database, not declared by the class")
        for column in sorted(set(have["columns"]) & set(want["columns"])):
            for attribute, value in want["columns"][column].items():
                if have["columns"][column][attribute] != value:
                    problems.append(
                        f"{table}.{column}: {attribute} is {have['columns'][column][attribute]!r} after the "
                        f"migrations, {value!r} in the class"
                    )
        for name in sorted(set(want["constraints"]) | set(have["constraints"])):
            if want["constraints"].get(name) != have["constraints"].get(name):
                problems.append(
                    f"{table}: constraint {name} is {have['constraints'].get(name)!r} after the migrations, "
                    f"{want['constraints'].get(name)!r} in the class"
                )
        for name, definition in sorted(want["indexes"].items()):
            if have["indexes"].get(name) != definition:
                problems.append(
                    f"{table}: index {name} declared by the class is {have['indexes'].get(name)!r} after the "
                    f"migrations, not {definition!r}"
                )
        if "rls" in want:
            if have["rls"] != want["rls"]:
                problems.append(
                    f"{table}: row-level security {have['rls']} after the migrations, {want['rls']} expected"
                )
            if have["policies"] != want["policies"]:
                problems.append(
                    f"{table}: policies {have['policies']} after the migrations, {want['policies']} expected"
                )
    return problems


async def assert_no_drift(migrated: Database, scratch: Scratch, tables: list[type[Table]]) -> None:
    expected = await catalogue(await oracle(scratch, tables))
    problems = drift(await catalogue(migrated), expected)
    assert not problems, "schema drift between the migrations and the table classes:\n" + "\n".join(problems)


async def assert_app_grants(db: Database, tables: list[type[Table]]) -> None:
    """The application role has plain DML on every table (audit stays append-only) and owns nothing."""
    conn = await asyncpg.connect(db.settings.database_url)
    try:
        for table in tables:
            name = table._meta.tablename
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                granted = await conn.fetchval("SELECT has_table_privilege(current_user, $1, $2)", name, privilege)
                expected = not (name == "audit_log" and privilege in ("UPDATE", "DELETE"))
                assert granted is expected, f"{name}: {privilege} granted={granted}, expected {expected}"
        owned = await conn.fetchval(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
        )
        assert owned == 0
    finally:
        await conn.close()


# -- tests ------------------------------------------------------------------------------------


class Records(logging.Handler):
    """Log records of one logger, whatever the logging configuration of the process."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_migrated_schema_matches_the_table_classes(scratch: Scratch):
    db = await scratch.database("migrated")
    sets = migration_sets(build_plugin_host(db.settings))
    tables = declared_tables(db.settings)
    planned = await plan(db, sets)  # read-only: not even the tracking table yet
    assert await plan(db, sets) == planned
    records = Records()
    logger = logging.getLogger("madrasa.migrate")
    logger.addHandler(records)
    try:
        ran = await migrate(db, sets)
    finally:
        logger.removeHandler(records)
    assert ran == [m.label for m in planned] and len(ran) == sum(len(s.modules()) for s in sets)
    assert ("grades", "m0001_grades") in {(m.app, m.name) for m in planned if m.depends_on}
    # each creating migration granted its own tables: the safety net after the run found nothing to do
    assert not [m for m in records.messages if "without granting" in m]
    await assert_no_drift(db, scratch, tables)
    if db.dialect == "postgres":
        await assert_app_grants(db, tables)
    assert await migrate(db, sets) == []


async def test_a_class_change_without_a_migration_is_reported_by_table_and_column(scratch: Scratch):
    db = await scratch.database("migrated")
    await migrate(db, migration_sets(build_plugin_host(db.settings)))
    declared = await catalogue(await oracle(scratch, declared_tables(db.settings)))
    changed = {table: dict(info) for table, info in declared.items()}
    notice = dict(changed["attendance_notice"]["columns"])
    notice["escalated_at"] = notice.pop("claimed_at")
    changed["attendance_notice"] = {**changed["attendance_notice"], "columns": notice}
    problems = drift(await catalogue(db), changed)
    assert "attendance_notice.escalated_at: declared by the class, missing from the migrated database" in problems
    assert "attendance_notice.claimed_at: in the migrated database, not declared by the class" in problems


async def test_upgrade_from_an_earlier_state_keeps_the_data(scratch: Scratch):
    db = await scratch.database("upgraded")
    sets = migration_sets(build_plugin_host(db.settings))
    earlier = [Upto(s.app, s.package, PREVIOUS[s.app]) if s.app in PREVIOUS else s for s in sets]
    first = await migrate(db, earlier)
    assert "attendance.m0002_notice_claims" not in first and "tenants.m0003_console" not in first
    await fill(db)
    before = await snapshot(db)

    ran = await migrate(db, sets)
    assert ran == [
        "core.m0003_staff_lookup",
        "core.m0004_jobs",
        "core.m0005_file_readers",
        "core.m0006_login_devices",
        "core.m0007_guardian_invitations",
        "core.m0008_privacy",
        "core.m0009_notifications",
        "attendance.m0002_notice_claims",
        "attendance.m0003_notice_retries",
        "grades.m0002_publication",
        "tenants.m0002_exchange",
        "tenants.m0003_console",
    ]
    await db.stop()  # a new pool: statements the old one prepared were planned for the old columns
    await db.start()
    after = await snapshot(db)
    assert {t: len(rows) for t, rows in after.items()} == {t: len(rows) for t, rows in before.items()}
    for table, rows in before.items():
        for old, new in zip(rows, after[table], strict=True):
            if table == "attendance_notice":
                assert new.pop("claimed_at") is None
                assert (new.pop("attempts"), new.pop("next_attempt_at"), new.pop("last_error")) == (0, None, "")
            assert new == old, table
    await assert_no_drift(db, scratch, declared_tables(db.settings))
    # the upgraded schema is usable: the new column takes values, the new key refuses a second code
    async with db.scoped(Scope.everything()):
        await db.execute("UPDATE attendance_notice SET claimed_at = CURRENT_TIMESTAMP WHERE status = 'pending'")
        assert await db.fetchval("SELECT COUNT(*) FROM attendance_notice WHERE claimed_at IS NOT NULL") == 1
    with pytest.raises(UNIQUE_VIOLATIONS):
        async with db.scoped(Scope.everything()):
            await db.execute(
                "INSERT INTO tenant (kind, parent_id, path, slug, code) VALUES ('school', 1, '', 'b', '12345A')"
            )


@dataclasses.dataclass(frozen=True)
class Upto(MigrationSet):
    """An app's migrations up to ``last`` (inclusive): the history as an earlier release had it."""

    last: str = ""

    def modules(self) -> list[str]:
        return [name for name in super().modules() if name <= self.last]


UPGRADE_TABLES = (
    "tenant",
    "person",
    "student",
    "grade_sheet",
    "grade_assessment",
    "grade_mark",
    "attendance_session",
    "attendance_mark",
    "attendance_notice",
)


async def fill(db: Database) -> None:
    """A school with a pupil, a mark, an absence and its notices, through the application role."""
    async with db.scoped(Scope.everything()):
        school = await db.fetchval(
            "INSERT INTO tenant (kind, parent_id, path, slug, code, name_fr, name_ar) "
            "VALUES ('school', 1, '1/', 'ecole-test', '12345A', 'École « test »', 'مدرسة') RETURNING id"
        )
        scope = (school, school, school)
        await db.execute(
            "INSERT INTO person (email, full_name, created_at) VALUES ('parent@test.ma', 'Parent', CURRENT_TIMESTAMP)"
        )
        student = await db.fetchval(
            "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
            "birth_date, created_at) VALUES ({}, {}, {}, 'S000000001', 'Amina', 'O''Neil', '2012-03-04', "
            "CURRENT_TIMESTAMP) RETURNING id",
            *scope,
        )
        term = await db.fetchval("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1")
        sheet = await db.fetchval(
            "INSERT INTO grade_sheet (region_id, province_id, school_id, class_id, subject_code, term_id, teacher_id) "
            "VALUES ({}, {}, {}, 7, 'MATH', {}, 3) RETURNING id",
            *scope,
            term,
        )
        assessment = await db.fetchval(
            "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, subject_code, "
            "term_id, scheduled_on, title) VALUES ({}, {}, {}, {}, 7, 'MATH', {}, '2026-10-05', 'Contrôle 1') "
            "RETURNING id",
            *scope,
            sheet,
            term,
        )
        await db.execute(
            "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, updated_at) "
            "VALUES ({}, {}, {}, {}, {}, 14.25, CURRENT_TIMESTAMP)",
            *scope,
            assessment,
            student,
        )
        session = await db.fetchval(
            "INSERT INTO attendance_session (region_id, province_id, school_id, slot_id, class_id, on_date, minutes, "
            "teacher_id, taken_by, taken_at, updated_at) VALUES ({}, {}, {}, 11, 7, '2026-10-06', 120, 3, 3, "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id",
            *scope,
        )
        await db.execute(
            "INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, student_id, "
            "on_date, kind, minutes) VALUES ({}, {}, {}, {}, 7, {}, '2026-10-06', 'absent', 120)",
            *scope,
            session,
            student,
        )
        for day, status in (("2026-10-06", "sent"), ("2026-10-07", "pending")):
            await db.execute(
                "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, kind, "
                "created_at, status, channels) VALUES ({}, {}, {}, {}, {}, 'absence', CURRENT_TIMESTAMP, {}, 'sms')",
                *scope,
                student,
                date.fromisoformat(day),
                status,
            )


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    async with db.scoped(Scope.everything(), write=False):
        return {t: await db.fetch(SQL("SELECT * FROM {} ORDER BY id", ident(t))) for t in UPGRADE_TABLES}


# -- dependencies -----------------------------------------------------------------------------


#: A test migration: creates a table named after its package and module.
MODULE_BODY = """
from core.sql import SQL, ident


async def forwards(m):
    await m.sql(SQL("CREATE TABLE {} (x INTEGER)", ident(__package__ + "_" + __name__.rsplit(".", 1)[-1])))
"""


def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, modules: dict[str, str]) -> str:
    """A throw-away migration package on ``sys.path``."""
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, depends in modules.items():
        (root / (module + ".py")).write_text("DEPENDS_ON = " + depends + "\n" + MODULE_BODY)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def test_dependencies_are_checked_before_anything_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    core = MigrationSet("core", "core.migrations")
    later = MigrationSet("zz", package(tmp_path, monkeypatch, "mig_zz", {"m0001_a": "[]"}))
    early = MigrationSet(
        "aa", package(tmp_path, monkeypatch, "mig_aa", {"m0001_a": "[('zz', 'm0001_a')]", "m0002_b": "[]"})
    )
    unknown = MigrationSet("bb", package(tmp_path, monkeypatch, "mig_bb", {"m0001_a": "[('hr', 'm0001_staff')]"}))
    with pytest.raises(
        MigrationError, match=r"aa\.m0001_a depends on zz\.m0001_a, which is not applied and would run after it"
    ):
        check_dependencies([core, early, later], set())
    # applied already: fine
    assert [m.label for m in check_dependencies([core, early, later], {("zz", "m0001_a")})][-2:] == [
        "aa.m0001_a",
        "aa.m0002_b",
    ]
    with pytest.raises(MigrationError, match=r"bb\.m0001_a depends on hr\.m0001_staff, which is neither applied"):
        check_dependencies([core, unknown], set())
    ordered = check_dependencies([core, later, early], set())
    assert Migration("aa", "m0001_a", "mig_aa.m0001_a", (("zz", "m0001_a"),)) in ordered


async def test_a_failed_dependency_check_applies_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    db = Database(make_settings("sqlite", tmp_path / "db", None))
    early = MigrationSet("aa", package(tmp_path, monkeypatch, "mig_aa2", {"m0001_a": "[('zz', 'm0001_a')]"}))
    later = MigrationSet("zz", package(tmp_path, monkeypatch, "mig_zz2", {"m0001_a": "[]"}))
    sets = [MigrationSet("core", "core.migrations"), early, later]
    with pytest.raises(MigrationError, match="would run after it"):
        await plan(db, sets)
    with pytest.raises(MigrationError, match="would run after it"):
        await migrate(db, sets)
    assert await db.fetch("SELECT name FROM sqlite_master WHERE name = 'tenant'") == []
    assert await migrate(db, [sets[0], later, early]) == [
        "core.m0001_initial",
        "core.m0002_school_structure",
        "core.m0003_staff_lookup",
        "core.m0004_jobs",
        "core.m0005_file_readers",
        "core.m0006_login_devices",
        "core.m0007_guardian_invitations",
        "core.m0008_privacy",
        "core.m0009_notifications",
        "zz.m0001_a",
        "aa.m0001_a",
    ]
