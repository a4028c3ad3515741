"""Personal data (law 09-08): ``retention_period`` and, on PostgreSQL, the one way to purge old audit entries.

``retention_period`` holds a region's (or the platform's default) periods for audit entries, login records,
notices and messages (:mod:`core.privacy.retention`). It is a platform settings table like ``module_setting``:
no scope columns, only core services touch it.

``audit_log`` stays append-only: no ``UPDATE`` ever, and the trigger that refused every ``DELETE`` now lets
through only entries older than 365 days (the shortest retention period of the audit log). On PostgreSQL the
application role still has no ``DELETE`` on the table: the daily purge goes through
``madrasa_purge_audit(region, before)``, a ``SECURITY DEFINER`` function owned by the owner role that deletes
one region's entries (``NULL``: the platform's) older than ``before`` and refuses a ``before`` less than 365
days ago. So neither role can erase recent traces.
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

#: The append-only triggers of ``audit_log``, now letting entries older than 365 days be deleted.
AUDIT_GUARD = {
    "postgres": (
        "CREATE FUNCTION madrasa_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' AND OLD.at < now() - interval '365 days' THEN RETURN OLD; END IF; "
        "RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
        'DROP TRIGGER audit_log_append_only ON "audit_log"',
        'CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "audit_log" '
        "FOR EACH ROW EXECUTE FUNCTION madrasa_audit_guard()",
    ),
    "sqlite": (
        "DROP TRIGGER audit_log_no_delete",
        'CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON "audit_log" '
        "WHEN julianday(old.at) > julianday('now') - 365 "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
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
    """Create the settings table (granted to the application), relax the audit trigger for old entries and,
    on PostgreSQL, create the audit purge function."""
    await m.ddl(TABLES)
    await m.grant_app("retention_period")
    await m.ddl(AUDIT_GUARD)
    if m.dialect != "postgres":
        return
    await m.sql(PURGE_FUNCTION)
    await m.sql("REVOKE ALL ON FUNCTION madrasa_purge_audit(integer, timestamptz) FROM PUBLIC")
    if m.app_role is not None:
        await m.sql(SQL("GRANT EXECUTE ON FUNCTION madrasa_purge_audit(integer, timestamptz) TO {}", ident(m.app_role)))
