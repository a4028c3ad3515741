"""Schema migrations for core and every plugin, with row-level security on PostgreSQL.

Each app (core, a plugin) names a package of migration modules (``m0001_initial.py``, …)
applied in name order, core first, then the plugins by name. A module defines
``async def forwards(m: Migrator) -> None`` and may declare the migrations of other apps it
needs::

    DEPENDS_ON = [("core", "m0002_school_structure")]

The runner checks every pending migration before applying any: a dependency must already be
applied or run earlier in the same pass, otherwise :class:`MigrationError` names both. Applied
migrations are recorded in ``madrasa_migration``.

A migration's DDL is frozen in the module as literal statements per dialect (see
:meth:`Migrator.ddl`), never generated from the Piccolo table classes at run time: a later change
to a class cannot change what an old migration does, it needs a new migration, and
``tests/test_migrations.py`` fails until the migrated schema and the classes agree again.

On PostgreSQL migrations run as the owner role. The migration that creates a table enables its
row-level security (:meth:`Migrator.enable_rls`) and grants the application role plain DML on it
(:meth:`Migrator.grant_app`), never ownership; after the run, :func:`grant_app_role` only catches
tables a migration forgot, with a warning.

Piccolo's own migration runner expects a ``piccolo_conf`` module and one global engine; ours
needs the owner/app role split, RLS policies and per-test databases, so the runner is ours.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from core.db import Database, postgres_config, querystring, run_many
from core.sql import SQL, ident, join
from core.tables import SCOPE_COLUMNS

log = logging.getLogger("madrasa.migrate")

TRACKING_TABLE = "madrasa_migration"

_CREATE_TRACKING = (
    'CREATE TABLE IF NOT EXISTS "madrasa_migration" (app VARCHAR(64) NOT NULL, name VARCHAR(128) NOT NULL, '
    "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (app, name))"
)
_TRACKING_EXISTS = {
    "postgres": "SELECT to_regclass('public.madrasa_migration') IS NOT NULL AS present",
    "sqlite": "SELECT COUNT(*) > 0 AS present FROM sqlite_master WHERE type = 'table' AND name = 'madrasa_migration'",
}
_IDS = "string_to_array(NULLIF(current_setting('app.scope', true), ''), ',')::bigint[]"
_DML = SQL("SELECT, INSERT, UPDATE, DELETE")
_APPEND = SQL("SELECT, INSERT")


class MigrationError(RuntimeError):
    """Migrations that cannot run as declared (a dependency missing or ordered after its dependant)."""


@dataclass(frozen=True)
class Migration:
    """One migration module: its app, its name, and the migrations of other apps it needs."""

    app: str
    name: str
    module: str
    depends_on: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """``app.name``."""
        return f"{self.app}.{self.name}"


def _label(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}"


@dataclass(frozen=True)
class MigrationSet:
    """An app's migrations: ``package`` is a dotted package of ``m####_name`` modules."""

    app: str
    package: str

    def modules(self) -> list[str]:
        """Migration module names in the order they apply."""
        pkg = importlib.import_module(self.package)
        names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("m")]
        return sorted(names)

    def migrations(self) -> list[Migration]:
        """The migrations in order, with the dependencies each module declares in ``DEPENDS_ON``."""
        out = []
        for name in self.modules():
            dotted = f"{self.package}.{name}"
            declared = getattr(importlib.import_module(dotted), "DEPENDS_ON", ())
            deps: list[tuple[str, str]] = []
            for dep in declared:
                if not (isinstance(dep, tuple | list) and len(dep) == 2 and all(isinstance(p, str) for p in dep)):
                    raise MigrationError(f"{self.app}.{name}: DEPENDS_ON lists (app, migration) pairs, not {dep!r}")
                deps.append((dep[0], dep[1]))
            out.append(Migration(self.app, name, dotted, tuple(deps)))
        return out


def rls_predicate(columns: Sequence[str] = SCOPE_COLUMNS) -> SQL:
    """The policy expression: platform flag, or any scope column in ``app.scope``.

    An unset or empty ``app.scope`` yields NULL, which matches nothing.
    """
    checks = [SQL("{} = ANY (" + _IDS + ")", ident(col)) for col in columns]
    return SQL("(NULLIF(current_setting('app.platform', true), '') = 'on' OR {})", join(" OR ", checks))


async def _fetch(engine: Engine, dialect: str, query: SQL) -> list[dict[str, Any]]:
    rows = await engine.run_querystring(querystring(query, dialect))
    return [dict(r) for r in rows or []]


class Migrator:
    """What a migration module may do; the same calls work on SQLite and PostgreSQL.

    ``app_role`` is the PostgreSQL role the application connects as (``None``: no grants, as on
    SQLite or when the application connects as the owner).
    """

    def __init__(self, engine: Engine, dialect: str, app_role: str | None = None) -> None:
        self.engine = engine
        self.dialect = dialect
        self.app_role = app_role

    async def sql(self, statement: str | SQL) -> None:
        """Run one statement without bound values (DDL): a constant string or an :class:`SQL` of identifiers."""
        if isinstance(statement, SQL):
            text, values = statement.compile(self.dialect)
            if values:
                raise ValueError("a DDL statement takes no bound values: use Migrator.execute()")
            statement = text
        await self.engine.run_ddl(statement)

    async def ddl(self, statements: Mapping[str, Sequence[str]]) -> None:
        """Run a migration's frozen DDL: ``{"postgres": (...), "sqlite": (...)}``, the statements of this dialect."""
        for statement in statements[self.dialect]:
            await self.sql(statement)

    async def execute(self, query: SQL) -> None:
        """Run a statement with bound values (seed data)."""
        await self.engine.run_querystring(querystring(query, self.dialect))

    async def fetch(self, query: SQL | str) -> list[dict[str, Any]]:
        """Rows as dicts."""
        return await _fetch(self.engine, self.dialect, query if isinstance(query, SQL) else SQL(query))

    async def executemany(self, statement: SQL | str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement for many rows of values (inside the migration's transaction)."""
        await run_many(self.engine, self.dialect, statement, rows)

    async def enable_rls(self, tablename: str, columns: Sequence[str] = SCOPE_COLUMNS) -> None:
        """``ENABLE`` and ``FORCE`` row-level security with a ``USING``/``WITH CHECK`` policy."""
        if self.dialect != "postgres":
            return
        table = ident(tablename)
        predicate = rls_predicate(columns)
        await self.sql(SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", table))
        await self.sql(SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY", table))
        await self.sql(SQL("CREATE POLICY tenant_scope ON {} USING {} WITH CHECK {}", table, predicate, predicate))

    async def grant_app(self, tablename: str, *, append_only: bool = False) -> None:
        """Give the application role DML on a table (``SELECT, INSERT`` only when append-only) and its sequences."""
        if self.dialect != "postgres" or self.app_role is None:
            return
        role = ident(self.app_role)
        await self.sql(SQL("GRANT {} ON {} TO {}", _APPEND if append_only else _DML, ident(tablename), role))
        sequences = await self.fetch(
            SQL(
                "SELECT s.relname AS name FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
                "AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
                "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE s.relkind = 'S' AND n.nspname = 'public' AND t.relname = {} ORDER BY s.relname",
                tablename,
            )
        )
        for row in sequences:
            await self.sql(SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}", ident(row["name"]), role))

    async def append_only(self, tablename: str) -> None:
        """Refuse ``UPDATE`` and ``DELETE`` on a table, whoever asks."""
        table = ident(tablename)
        if self.dialect == "postgres":
            await self.sql(
                "CREATE OR REPLACE FUNCTION madrasa_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
            )
            await self.sql(
                SQL(
                    "CREATE TRIGGER {} BEFORE UPDATE OR DELETE ON {} "
                    "FOR EACH ROW EXECUTE FUNCTION madrasa_append_only()",
                    ident(tablename + "_append_only"),
                    table,
                )
            )
        else:
            await self.sql(
                SQL(
                    "CREATE TRIGGER {} BEFORE UPDATE ON {} BEGIN SELECT RAISE(ABORT, 'table is append-only'); END",
                    ident(tablename + "_no_update"),
                    table,
                )
            )
            await self.sql(
                SQL(
                    "CREATE TRIGGER {} BEFORE DELETE ON {} BEGIN SELECT RAISE(ABORT, 'table is append-only'); END",
                    ident(tablename + "_no_delete"),
                    table,
                )
            )


async def _applied(engine: Engine, dialect: str, *, create: bool = True) -> set[tuple[str, str]]:
    if create:
        await engine.run_ddl(_CREATE_TRACKING)
    else:
        exists = await engine.run_ddl(_TRACKING_EXISTS[dialect])
        if not exists or not exists[0]["present"]:
            return set()
    rows = await engine.run_ddl('SELECT app, name FROM "madrasa_migration"')
    return {(r["app"], r["name"]) for r in rows}


def check_dependencies(sets: Sequence[MigrationSet], done: set[tuple[str, str]]) -> list[Migration]:
    """The pending migrations in order, after checking that each one's dependencies run first.

    A dependency must be applied already, or be pending and come earlier in the order; otherwise
    :class:`MigrationError` names the migration and its dependency (nothing has run yet).
    """
    ordered = [mig for mset in sets for mig in mset.migrations()]
    position = {(mig.app, mig.name): i for i, mig in enumerate(ordered)}
    pending_list = [mig for mig in ordered if (mig.app, mig.name) not in done]
    for mig in pending_list:
        here = position[(mig.app, mig.name)]
        for dep in mig.depends_on:
            if dep in done:
                continue
            if dep not in position:
                raise MigrationError(
                    f"{mig.label} depends on {_label(dep)}, which is neither applied nor provided by any installed app"
                )
            if position[dep] > here:
                raise MigrationError(
                    f"{mig.label} depends on {_label(dep)}, which is not applied and would run after it"
                )
    return pending_list


async def pending(db: Database, sets: Iterable[MigrationSet]) -> list[tuple[str, str]]:
    """Migrations not yet applied, as ``(app, module)`` pairs.

    Read only: ``/readyz`` asks this as the application role, which may read the tracking table but may not
    create anything (PostgreSQL refuses even ``CREATE TABLE IF NOT EXISTS`` on an existing table to a role
    without ``CREATE`` on the schema).
    """
    done = await _applied(db.owner_engine, db.dialect, create=False)
    return [(s.app, name) for s in sets for name in s.modules() if (s.app, name) not in done]


async def plan(db: Database, sets: Sequence[MigrationSet]) -> list[Migration]:
    """What :func:`migrate` would apply, in order, with each migration's dependencies; changes nothing.

    Raises :class:`MigrationError` when a dependency is missing or ordered after its dependant.
    """
    done = await _applied(db.owner_engine, db.dialect, create=False)
    return check_dependencies(sets, done)


async def _app_role(db: Database) -> str | None:
    """The application role to grant to, or ``None`` (SQLite, or the application connects as the owner)."""
    if db.dialect != "postgres":
        return None
    app_user = postgres_config(db.settings.database_url)["user"]
    owner = await db.owner_engine.run_ddl("SELECT current_user AS u")
    if owner[0]["u"] == app_user:
        log.warning("the application role is the owner: row-level security is weaker that way")
        return None
    try:
        ident(app_user)
    except ValueError:
        raise MigrationError(
            f"the application role {app_user!r} is not a plain name (letters, digits, underscores), "
            "so the migrations cannot grant it DML; connect as a role named like madrasa_app"
        ) from None
    return str(app_user)


async def migrate(db: Database, sets: Sequence[MigrationSet]) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns what ran.

    Every dependency is checked before the first migration runs (:class:`MigrationError`).
    """
    engine = db.owner_engine
    done = await _applied(engine, db.dialect)
    todo = check_dependencies(sets, done)
    app_role = await _app_role(db)
    migrator = Migrator(engine, db.dialect, app_role)
    if app_role is not None:
        await migrator.sql(SQL("GRANT USAGE ON SCHEMA public TO {}", ident(app_role)))
    ran: list[str] = []
    for mig in todo:
        module = importlib.import_module(mig.module)
        log.info("applying migration", extra={"app": mig.app, "migration": mig.name})
        async with engine.transaction():
            await module.forwards(migrator)
            await migrator.execute(
                SQL('INSERT INTO "madrasa_migration" (app, name) VALUES ({}, {})', mig.app, mig.name)
            )
        ran.append(mig.label)
    if app_role is not None:
        await grant_app_role(db, app_role)
    return ran


async def grant_app_role(db: Database, app_role: str | None = None) -> list[str]:
    """The safety net after a run: grant DML on any table or sequence a migration did not grant, with a warning.

    Each creating migration grants its own tables (:meth:`Migrator.grant_app`); this only catches
    what one forgot, so the application never finds a table it cannot use. ``audit_log`` stays
    append-only and the tracking table read-only. Returns the objects it had to grant.
    """
    role = app_role or await _app_role(db)
    if role is None:
        return []
    migrator = Migrator(db.owner_engine, db.dialect, role)
    quoted = ident(role)
    await migrator.sql(SQL("GRANT USAGE ON SCHEMA public TO {}", quoted))
    missing = await migrator.fetch(
        SQL(
            "SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S') AND c.relname <> 'madrasa_migration' "
            "AND NOT (CASE WHEN c.relkind = 'S' THEN has_sequence_privilege({}, c.oid, 'USAGE') "
            "ELSE has_table_privilege({}, c.oid, 'SELECT') END) ORDER BY c.relname",
            role,
            role,
        )
    )
    fixed = []
    for row in missing:
        name = str(row["name"])
        log.warning("a migration created %s without granting it to the application role; granting now", name)
        if row["kind"] == "S":
            await migrator.sql(SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}", ident(name), quoted))
        else:
            await migrator.sql(SQL("GRANT {} ON {} TO {}", _DML, ident(name), quoted))
        fixed.append(name)
    await migrator.sql(SQL("REVOKE UPDATE, DELETE ON audit_log FROM {}", quoted))
    await migrator.sql(SQL('GRANT SELECT ON "madrasa_migration" TO {}', quoted))
    await migrator.sql(SQL('REVOKE INSERT, UPDATE, DELETE ON "madrasa_migration" FROM {}', quoted))
    return fixed
