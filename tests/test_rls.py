"""PostgreSQL row-level security: the catalogue, and direct SQL as the application role."""

from __future__ import annotations

import asyncpg
import pytest

from core.tables import SCOPE_COLUMNS


@pytest.fixture
async def pg(world):
    """The PostgreSQL world (tests using it are marked ``postgres_only``)."""
    assert world.backend == "postgres"
    return world


async def connect(world, role: str) -> asyncpg.Connection:
    return await asyncpg.connect(world.pg.url(role))


@pytest.mark.postgres_only
async def test_every_scoped_table_has_forced_rls_with_both_clauses(pg):
    conn = await connect(pg, pg.pg.owner)
    try:
        tables = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = ANY($1::text[]) "
            "AND NOT a.attisdropped)",
            list(SCOPE_COLUMNS),
        )
        names = {t["relname"] for t in tables}
        assert {"audit_log", "stored_file"} <= names
        for table in tables:
            assert table["relrowsecurity"], f"{table['relname']}: RLS not enabled"
            assert table["relforcerowsecurity"], f"{table['relname']}: RLS not forced"
            policies = await conn.fetch(
                "SELECT polname, pg_get_expr(polqual, polrelid) AS using_expr, "
                "pg_get_expr(polwithcheck, polrelid) AS check_expr FROM pg_policy "
                "WHERE polrelid = $1::regclass",
                table["relname"],
            )
            assert policies, f"{table['relname']}: no policy"
            for policy in policies:
                assert policy["using_expr"] and "app.scope" in policy["using_expr"], table["relname"]
                assert policy["check_expr"] and "app.scope" in policy["check_expr"], table["relname"]
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_application_role_is_neither_owner_nor_bypassing(pg):
    conn = await connect(pg, pg.pg.app_role)
    try:
        role = await conn.fetchrow("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        assert role["rolsuper"] is False and role["rolbypassrls"] is False
        owned = await conn.fetchval(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
        )
        assert owned == 0
        # the app's own connection is this role
        assert pg.settings.database_url.split("//")[1].split(":")[0] == pg.pg.app_role
    finally:
        await conn.close()


async def scoped(conn: asyncpg.Connection, nodes: str | None) -> None:
    if nodes is not None:
        await conn.execute("SELECT set_config('app.scope', $1, true)", nodes)


@pytest.mark.postgres_only
async def test_scope_a_sees_none_of_b(pg):
    casa, rabat = pg.ids["casablanca-settat"], pg.ids["rabat-sale-kenitra"]
    conn = await connect(pg, pg.pg.app_role)
    try:
        async with conn.transaction():
            await scoped(conn, str(casa))
            rows = await conn.fetch("SELECT region_id FROM stored_file")
            assert rows and {r["region_id"] for r in rows} == {casa}
            assert await conn.fetchval("SELECT COUNT(*) FROM stored_file WHERE region_id = $1", rabat) == 0
            assert await conn.fetchval("SELECT COUNT(*) FROM audit_log WHERE region_id = $1", rabat) == 0
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_insert_into_b_is_rejected_from_scope_a(pg):
    casa, rabat = pg.ids["casablanca-settat"], pg.ids["rabat-sale-kenitra"]
    school_b = pg.ids["lycee-moulay-youssef"]
    conn = await connect(pg, pg.pg.app_role)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await scoped(conn, str(casa))
                await conn.execute(
                    "INSERT INTO stored_file (key, tenant_id, region_id, school_id, category, filename, content_type, "
                    "size, created_at) VALUES ('t/x/y', $1, $2, $1, 'x', 'x', 'text/plain', 1, now())",
                    school_b,
                    rabat,
                )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await scoped(conn, str(casa))
                await conn.execute(
                    "INSERT INTO audit_log (at, action, object_type, region_id, school_id) "
                    "VALUES (now(), 'forged', 'x', $1, $2)",
                    rabat,
                    school_b,
                )
        # moving a home row into the other region is a WITH CHECK violation too
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            async with conn.transaction():
                await scoped(conn, str(casa))
                await conn.execute("UPDATE stored_file SET region_id = $1 WHERE region_id = $2", rabat, casa)
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_unset_or_empty_scope_sees_nothing(pg):
    conn = await connect(pg, pg.pg.app_role)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM stored_file") == 0
        assert await conn.fetchval("SELECT COUNT(*) FROM audit_log") == 0
        async with conn.transaction():
            await scoped(conn, "")
            assert await conn.fetchval("SELECT COUNT(*) FROM stored_file") == 0
        # the scope is transaction-local: gone after commit
        async with conn.transaction():
            await scoped(conn, str(pg.ids["casablanca-settat"]))
            assert await conn.fetchval("SELECT COUNT(*) FROM stored_file") > 0
        assert await conn.fetchval("SELECT COUNT(*) FROM stored_file") == 0
    finally:
        await conn.close()


@pytest.mark.postgres_only
async def test_audit_log_is_append_only_even_for_the_owner(pg):
    conn = await connect(pg, pg.pg.app_role)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.platform', 'on', true)")
                await conn.execute("DELETE FROM audit_log")
    finally:
        await conn.close()
    owner = await connect(pg, pg.pg.owner)
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            async with owner.transaction():
                await owner.execute("SELECT set_config('app.platform', 'on', true)")
                await owner.execute("UPDATE audit_log SET reason = 'rewritten'")
    finally:
        await owner.close()


async def test_service_layer_filter_alone_also_isolates(world):
    """On both backends the application filter keeps scopes apart even without RLS."""
    from core.db import scope_sql
    from core.scope import Scope
    from core.sql import SQL

    casa = world.ids["casablanca-settat"]
    where = scope_sql(Scope(frozenset({casa})))
    async with world.services.db.scoped(Scope(frozenset({casa})), write=False):
        rows = await world.services.db.fetch(SQL("SELECT region_id FROM stored_file WHERE {}", where))
    assert rows and {r["region_id"] for r in rows} == {casa}
    nothing = scope_sql(Scope.nothing())
    assert await world.services.db.fetch(SQL("SELECT id FROM stored_file WHERE {}", nothing)) == []


def test_every_table_without_rls_is_documented():
    """A table without scope columns (so without a policy) is explained in docs/security.md, and nothing else."""
    import re
    from pathlib import Path

    from core.app import build_plugin_host, owned_tables
    from core.config import load_settings

    settings = load_settings({}, data_dir=Path("var-unused"), secret_key="t" * 48, allowed_plugins=("example",))
    unscoped = {
        table._meta.tablename
        for _, table in owned_tables(build_plugin_host(settings))
        if not {c._meta.db_column_name for c in table._meta.columns} & set(SCOPE_COLUMNS)
    }
    text = (Path(__file__).parents[1] / "docs" / "security.md").read_text()
    section = text.split("## Row-level security, table by table", 1)[1]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    assert unscoped == documented, (
        f"undocumented: {sorted(unscoped - documented)}; stale: {sorted(documented - unscoped)}"
    )
