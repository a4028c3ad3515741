"""Schema migrations for core and every plugin, with row-level security on PostgreSQL.

Each app (core, a plugin) names a package of migration modules (``m0001_initial.py``, …)
applied in name order. A module defines ``async def forwards(m: Migrator) -> None``. Applied
migrations are recorded in ``madrasa_migration``. On PostgreSQL migrations run as the owner
role; the application role then receives plain DML grants, never ownership.

Piccolo's own migration runner expects a ``piccolo_conf`` module and one global engine; ours
needs the owner/app role split, RLS policies and per-test databases, so the runner is ours
while the DDL comes from the Piccolo tables.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from piccolo.engine.base import Engine
from piccolo.table import Table

from core.db import Database, postgres_config
from core.tables import SCOPE_COLUMNS

log = logging.getLogger("madrasa.migrate")

TRACKING_TABLE = "madrasa_migration"


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


def rls_predicate(columns: Sequence[str] = SCOPE_COLUMNS) -> str:
    """The policy expression: platform flag, or any scope column in ``app.scope``.

    An unset or empty ``app.scope`` yields NULL, which matches nothing.
    """
    ids = "string_to_array(NULLIF(current_setting('app.scope', true), ''), ',')::bigint[]"
    checks = [f"{col} = ANY ({ids})" for col in columns]
    return "(NULLIF(current_setting('app.platform', true), '') = 'on' OR " + " OR ".join(checks) + ")"


class Migrator:
    """What a migration module may do; the same calls work on SQLite and PostgreSQL."""

    def __init__(self, engine: Engine, dialect: str) -> None:
        self.engine = engine
        self.dialect = dialect

    async def sql(self, statement: str) -> None:
        """Run one raw SQL statement."""
        await self.engine.run_ddl(statement)

    async def create_tables(self, *tables: type[Table]) -> None:
        """Create tables (and their indexes) from Piccolo definitions."""
        for table in tables:
            previous = table._meta._db
            table._meta.db = self.engine
            try:
                for statement in table.create_table().ddl:
                    await self.sql(statement)
            finally:
                table._meta._db = previous

    async def enable_rls(self, tablename: str, columns: Sequence[str] = SCOPE_COLUMNS) -> None:
        """``ENABLE`` and ``FORCE`` row-level security with a ``USING``/``WITH CHECK`` policy."""
        if self.dialect != "postgres":
            return
        predicate = rls_predicate(columns)
        await self.sql(f'ALTER TABLE "{tablename}" ENABLE ROW LEVEL SECURITY')
        await self.sql(f'ALTER TABLE "{tablename}" FORCE ROW LEVEL SECURITY')
        await self.sql(f'CREATE POLICY tenant_scope ON "{tablename}" USING {predicate} WITH CHECK {predicate}')

    async def append_only(self, tablename: str) -> None:
        """Refuse ``UPDATE`` and ``DELETE`` on a table, whoever asks."""
        if self.dialect == "postgres":
            await self.sql(
                "CREATE OR REPLACE FUNCTION madrasa_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
            )
            await self.sql(
                f'CREATE TRIGGER {tablename}_append_only BEFORE UPDATE OR DELETE ON "{tablename}" '
                "FOR EACH ROW EXECUTE FUNCTION madrasa_append_only()"
            )
        else:
            for op in ("UPDATE", "DELETE"):
                await self.sql(
                    f'CREATE TRIGGER {tablename}_no_{op.lower()} BEFORE {op} ON "{tablename}" '
                    f"BEGIN SELECT RAISE(ABORT, '{tablename} is append-only'); END"
                )


async def _applied(engine: Engine, dialect: str) -> set[tuple[str, str]]:
    await engine.run_ddl(
        f'CREATE TABLE IF NOT EXISTS "{TRACKING_TABLE}" (app VARCHAR(64) NOT NULL, name VARCHAR(128) NOT NULL, '
        "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (app, name))"
    )
    rows = await engine.run_ddl(f'SELECT app, name FROM "{TRACKING_TABLE}"')
    return {(r["app"], r["name"]) for r in rows}


async def pending(db: Database, sets: Iterable[MigrationSet]) -> list[tuple[str, str]]:
    """Migrations not yet applied, as ``(app, module)`` pairs."""
    done = await _applied(db.owner_engine, db.dialect)
    return [(s.app, name) for s in sets for name in s.modules() if (s.app, name) not in done]


async def migrate(db: Database, sets: Sequence[MigrationSet]) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; returns what ran."""
    engine = db.owner_engine
    done = await _applied(engine, db.dialect)
    ran: list[str] = []
    migrator = Migrator(engine, db.dialect)
    for mset in sets:
        for name in mset.modules():
            if (mset.app, name) in done:
                continue
            module = importlib.import_module(f"{mset.package}.{name}")
            log.info("applying migration", extra={"app": mset.app, "migration": name})
            async with engine.transaction():
                await module.forwards(migrator)
                await engine.run_ddl(f"INSERT INTO \"{TRACKING_TABLE}\" (app, name) VALUES ('{mset.app}', '{name}')")
            ran.append(f"{mset.app}.{name}")
    if db.dialect == "postgres":
        await grant_app_role(db)
    return ran


async def grant_app_role(db: Database) -> None:
    """Give the application role DML on every table, never ownership; audit stays append-only."""
    app_user = postgres_config(db.settings.database_url)["user"]
    owner = await db.owner_engine.run_ddl("SELECT current_user AS u")
    if owner[0]["u"] == app_user:
        log.warning("the application role is the owner: row-level security is weaker that way")
        return
    quoted = '"' + app_user.replace('"', '""') + '"'
    await db.owner_engine.run_ddl(f"GRANT USAGE ON SCHEMA public TO {quoted}")
    await db.owner_engine.run_ddl(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}")
    await db.owner_engine.run_ddl(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
    await db.owner_engine.run_ddl(f"REVOKE UPDATE, DELETE ON audit_log FROM {quoted}")
    await db.owner_engine.run_ddl(f'REVOKE INSERT, UPDATE, DELETE ON "{TRACKING_TABLE}" FROM {quoted}')
