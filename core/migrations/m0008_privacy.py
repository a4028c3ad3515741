"""Personal data (law 09-08): ``retention_period`` and, on PostgreSQL, the one way to purge old audit entries.

``retention_period`` holds a region's (or the platform's default) periods for audit entries, login records,
notices and messages (:mod:`core.privacy.retention`). It is a platform settings table like ``module_setting``:
no scope columns, only core services touch it.

The application role may only append to ``audit_log``. The daily purge removes entries past their period
through ``madrasa_purge_audit(region, before)``, a ``SECURITY DEFINER`` function owned by the owner role: it
deletes one region's entries (``NULL``: the platform's) older than ``before`` and refuses a ``before`` less
than 365 days ago, so the application role still cannot erase recent traces.
"""

from core.migrate import Migrator
from core.sql import SQL, ident

DEPENDS_ON = [("core", "m0001_initial")]

#: The table as this migration creates it, per dialect (frozen text).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "retention_period" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"days" INTEGER NOT NULL DEFAULT 0, '
            '"updated_by" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX retention_period_tenant_id ON "retention_period" USING btree ("tenant_id")',
        'CREATE UNIQUE INDEX retention_period_unique ON "retention_period" (tenant_id, kind)',
    ),
    "sqlite": (
        (
            'CREATE TABLE "retention_period" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"days" INTEGER NOT NULL DEFAULT 0, '
            '"updated_by" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX retention_period_tenant_id ON "retention_period" ("tenant_id")',
        'CREATE UNIQUE INDEX retention_period_unique ON "retention_period" (tenant_id, kind)',
    ),
}

PURGE_FUNCTION = """
CREATE FUNCTION madrasa_purge_audit(p_region integer, p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  removed bigint;
BEGIN
  IF p_before IS NULL OR p_before > now() - interval '365 days' THEN
    RAISE EXCEPTION 'audit entries are kept at least 365 days';
  END IF;
  IF p_region IS NULL THEN
    DELETE FROM audit_log WHERE region_id IS NULL AND at < p_before;
  ELSE
    DELETE FROM audit_log WHERE region_id = p_region AND at < p_before;
  END IF;
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$
"""


async def forwards(m: Migrator) -> None:
    """Create the settings table (granted to the application) and, on PostgreSQL, the audit purge function."""
    await m.ddl(TABLES)
    await m.grant_app("retention_period")
    if m.dialect != "postgres":
        return
    await m.sql(PURGE_FUNCTION)
    await m.sql("REVOKE ALL ON FUNCTION madrasa_purge_audit(integer, timestamptz) FROM PUBLIC")
    if m.app_role is not None:
        await m.sql(SQL("GRANT EXECUTE ON FUNCTION madrasa_purge_audit(integer, timestamptz) TO {}", ident(m.app_role)))
