"""Core schema: tenant tree, programmes, identities, sessions, module settings, audit, files."""

from core.migrate import Migrator
from core.tables import CORE_TABLES


async def forwards(m: Migrator) -> None:
    """Create the core tables, their composite constraints and row-level security."""
    await m.create_tables(*CORE_TABLES)
    await m.sql('CREATE UNIQUE INDEX programme_school_unique ON "programme_school" (programme_id, tenant_id)')
    await m.sql(
        'CREATE UNIQUE INDEX membership_unique ON "membership" '
        "(person_id, role, COALESCE(tenant_id, 0), COALESCE(programme_id, 0))"
    )
    await m.sql(
        'CREATE UNIQUE INDEX module_setting_unique ON "module_setting" '
        "(module, COALESCE(tenant_id, 0), COALESCE(programme_id, 0))"
    )
    await m.sql('CREATE INDEX auth_session_person ON "auth_session" (person_id, revoked_at)')
    await m.sql('CREATE INDEX audit_log_object ON "audit_log" (object_type, object_id)')
    await m.enable_rls("audit_log")
    await m.enable_rls("stored_file")
    await m.append_only("audit_log")
    await m.sql(
        "INSERT INTO tenant (kind, parent_id, path, slug, name_ar, name_fr, name_en, status, default_locale, "
        "display_name, primary_color, secondary_color, created_at) VALUES ('platform', NULL, '', 'platform', "
        "'المنصة', 'Plateforme', 'Platform', 'active', 'fr', 'madrasa', '#0b5d3b', '#c1272d', CURRENT_TIMESTAMP)"
    )
    await m.sql("UPDATE tenant SET path = CAST(id AS VARCHAR(20)) || '/' WHERE kind = 'platform'")
