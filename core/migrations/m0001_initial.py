"""Core schema: tenant tree, programmes, identities, sessions, module settings, audit, files."""

from core.migrate import Migrator
from core.sql import SQL

#: The tables as this migration creates them, per dialect: frozen text, generated once by Piccolo
#: from the table classes of the time. A later change to a class needs a new migration.
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "tenant" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"parent_id" INTEGER DEFAULT null, '
            "\"path\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"slug\" VARCHAR(80) UNIQUE NOT NULL DEFAULT '', "
            '"code" VARCHAR(40) DEFAULT null, '
            "\"name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(16) NOT NULL DEFAULT 'active', "
            "\"default_locale\" VARCHAR(8) NOT NULL DEFAULT 'fr', "
            '"display_name" VARCHAR(200) DEFAULT null, '
            '"logo_key" VARCHAR(300) DEFAULT null, '
            "\"primary_color\" VARCHAR(7) NOT NULL DEFAULT '#0b5d3b', "
            "\"secondary_color\" VARCHAR(7) NOT NULL DEFAULT '#c1272d', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX tenant_parent_id ON "tenant" USING btree ("parent_id")',
        'CREATE INDEX tenant_path ON "tenant" USING btree ("path")',
        (
            'CREATE TABLE "tenant_domain" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"host\" VARCHAR(253) UNIQUE NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX tenant_domain_tenant_id ON "tenant_domain" USING btree ("tenant_id")',
        (
            'CREATE TABLE "programme" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"slug\" VARCHAR(80) UNIQUE NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(200) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "programme_school" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"programme_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX programme_school_programme_id ON "programme_school" USING btree ("programme_id")',
        'CREATE INDEX programme_school_tenant_id ON "programme_school" USING btree ("tenant_id")',
        (
            'CREATE TABLE "person" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"email\" VARCHAR(254) UNIQUE NOT NULL DEFAULT '', "
            '"password_hash" VARCHAR(200) DEFAULT null, '
            "\"full_name\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"full_name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(8) NOT NULL DEFAULT 'fr', "
            '"active" BOOLEAN NOT NULL DEFAULT true, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "membership" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"role\" VARCHAR(32) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"programme_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX membership_person_id ON "membership" USING btree ("person_id")',
        'CREATE INDEX membership_tenant_id ON "membership" USING btree ("tenant_id")',
        'CREATE INDEX membership_programme_id ON "membership" USING btree ("programme_id")',
        (
            'CREATE TABLE "auth_session" ('
            "\"id\" VARCHAR(64) PRIMARY KEY NOT NULL DEFAULT '', "
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"secret_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            "\"csrf_token\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"revoked_at" TIMESTAMPTZ DEFAULT null, '
            "\"user_agent\" VARCHAR(300) NOT NULL DEFAULT '', "
            "\"ip\" VARCHAR(64) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX auth_session_person_id ON "auth_session" USING btree ("person_id")',
        (
            'CREATE TABLE "login_attempt" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"ip\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX login_attempt_email ON "login_attempt" USING btree ("email")',
        'CREATE INDEX login_attempt_ip ON "login_attempt" USING btree ("ip")',
        'CREATE INDEX login_attempt_at ON "login_attempt" USING btree ("at")',
        (
            'CREATE TABLE "password_reset" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX password_reset_person_id ON "password_reset" USING btree ("person_id")',
        (
            'CREATE TABLE "module_setting" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"module\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"programme_id" INTEGER DEFAULT null, '
            '"enabled" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_by" INTEGER DEFAULT null, '
            "\"reason\" TEXT NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "audit_log" ('
            '"id" BIGSERIAL PRIMARY KEY NOT NULL, '
            '"at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"actor_id" INTEGER DEFAULT null, '
            "\"action\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"object_type\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"object_id\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"before" JSONB DEFAULT null, '
            '"after" JSONB DEFAULT null, '
            "\"reason\" TEXT NOT NULL DEFAULT '', "
            "\"request_id\" VARCHAR(64) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX audit_log_at ON "audit_log" USING btree ("at")',
        'CREATE INDEX audit_log_region_id ON "audit_log" USING btree ("region_id")',
        'CREATE INDEX audit_log_school_id ON "audit_log" USING btree ("school_id")',
        (
            'CREATE TABLE "stored_file" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"key\" VARCHAR(400) UNIQUE NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            "\"category\" VARCHAR(40) NOT NULL DEFAULT '', "
            "\"filename\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"content_type\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"size" BIGINT NOT NULL DEFAULT 0, '
            '"owner_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX stored_file_region_id ON "stored_file" USING btree ("region_id")',
        'CREATE INDEX stored_file_school_id ON "stored_file" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "tenant" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"parent_id" INTEGER DEFAULT null, '
            "\"path\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"slug\" VARCHAR(80) UNIQUE NOT NULL DEFAULT '', "
            '"code" VARCHAR(40) DEFAULT null, '
            "\"name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(16) NOT NULL DEFAULT 'active', "
            "\"default_locale\" VARCHAR(8) NOT NULL DEFAULT 'fr', "
            '"display_name" VARCHAR(200) DEFAULT null, '
            '"logo_key" VARCHAR(300) DEFAULT null, '
            "\"primary_color\" VARCHAR(7) NOT NULL DEFAULT '#0b5d3b', "
            "\"secondary_color\" VARCHAR(7) NOT NULL DEFAULT '#c1272d', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX tenant_parent_id ON "tenant" ("parent_id")',
        'CREATE INDEX tenant_path ON "tenant" ("path")',
        (
            'CREATE TABLE "tenant_domain" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"host\" VARCHAR(253) UNIQUE NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX tenant_domain_tenant_id ON "tenant_domain" ("tenant_id")',
        (
            'CREATE TABLE "programme" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"slug\" VARCHAR(80) UNIQUE NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(200) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "programme_school" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"programme_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX programme_school_programme_id ON "programme_school" ("programme_id")',
        'CREATE INDEX programme_school_tenant_id ON "programme_school" ("tenant_id")',
        (
            'CREATE TABLE "person" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"email\" VARCHAR(254) UNIQUE NOT NULL DEFAULT '', "
            '"password_hash" VARCHAR(200) DEFAULT null, '
            "\"full_name\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"full_name_ar\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(8) NOT NULL DEFAULT 'fr', "
            '"active" BOOLEAN NOT NULL DEFAULT true, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "membership" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"role\" VARCHAR(32) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"programme_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX membership_person_id ON "membership" ("person_id")',
        'CREATE INDEX membership_tenant_id ON "membership" ("tenant_id")',
        'CREATE INDEX membership_programme_id ON "membership" ("programme_id")',
        (
            'CREATE TABLE "auth_session" ('
            "\"id\" VARCHAR(64) PRIMARY KEY NOT NULL DEFAULT '', "
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"secret_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            "\"csrf_token\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"revoked_at" TIMESTAMPTZ DEFAULT null, '
            "\"user_agent\" VARCHAR(300) NOT NULL DEFAULT '', "
            "\"ip\" VARCHAR(64) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX auth_session_person_id ON "auth_session" ("person_id")',
        (
            'CREATE TABLE "login_attempt" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"ip\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX login_attempt_email ON "login_attempt" ("email")',
        'CREATE INDEX login_attempt_ip ON "login_attempt" ("ip")',
        'CREATE INDEX login_attempt_at ON "login_attempt" ("at")',
        (
            'CREATE TABLE "password_reset" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX password_reset_person_id ON "password_reset" ("person_id")',
        (
            'CREATE TABLE "module_setting" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"module\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"programme_id" INTEGER DEFAULT null, '
            '"enabled" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_by" INTEGER DEFAULT null, '
            "\"reason\" TEXT NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "audit_log" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"actor_id" INTEGER DEFAULT null, '
            "\"action\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"object_type\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"object_id\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER DEFAULT null, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"before" JSONB DEFAULT null, '
            '"after" JSONB DEFAULT null, '
            "\"reason\" TEXT NOT NULL DEFAULT '', "
            "\"request_id\" VARCHAR(64) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX audit_log_at ON "audit_log" ("at")',
        'CREATE INDEX audit_log_region_id ON "audit_log" ("region_id")',
        'CREATE INDEX audit_log_school_id ON "audit_log" ("school_id")',
        (
            'CREATE TABLE "stored_file" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"key\" VARCHAR(400) UNIQUE NOT NULL DEFAULT '', "
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            "\"category\" VARCHAR(40) NOT NULL DEFAULT '', "
            "\"filename\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"content_type\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"size" INTEGER NOT NULL DEFAULT 0, '
            '"owner_id" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX stored_file_region_id ON "stored_file" ("region_id")',
        'CREATE INDEX stored_file_school_id ON "stored_file" ("school_id")',
    ),
}

#: Tables this migration creates (each granted to the application role here).
CREATED = (
    "tenant",
    "tenant_domain",
    "programme",
    "programme_school",
    "person",
    "membership",
    "auth_session",
    "login_attempt",
    "password_reset",
    "module_setting",
    "audit_log",
    "stored_file",
)

#: ``audit_log`` refuses ``UPDATE`` and ``DELETE``, whoever asks (the owner included).
APPEND_ONLY = {
    "postgres": (
        "CREATE OR REPLACE FUNCTION madrasa_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$",
        'CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "audit_log" '
        "FOR EACH ROW EXECUTE FUNCTION madrasa_append_only()",
    ),
    "sqlite": (
        'CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON "audit_log" '
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        'CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON "audit_log" '
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the core tables, their composite constraints, row-level security, grants and the platform node."""
    await m.ddl(TABLES)
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
    await m.ddl(APPEND_ONLY)
    for table in CREATED:
        await m.grant_app(table, append_only=table == "audit_log")
    await m.execute(
        SQL(
            "INSERT INTO tenant (kind, parent_id, path, slug, name_ar, name_fr, name_en, status, default_locale, "
            "display_name, primary_color, secondary_color, created_at) "
            "VALUES ({}, NULL, '', {}, {}, {}, {}, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP)",
            "platform",
            "platform",
            "المنصة",
            "Plateforme",
            "Platform",
            "active",
            "fr",
            "madrasa",
            "#0b5d3b",
            "#c1272d",
        )
    )
    await m.sql("UPDATE tenant SET path = CAST(id AS VARCHAR(20)) || '/' WHERE kind = 'platform'")
