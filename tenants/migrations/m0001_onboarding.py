"""Onboarding: batches, school profiles, invitations (with RLS), and set-based national code lookups."""

from core.migrate import Migrator

#: The lookups read pupils and staff.
DEPENDS_ON = [("core", "m0002_school_structure")]

#: The tables as this migration creates them, per dialect: frozen text, generated once by Piccolo
#: from the table classes of the time. A later change to a class needs a new migration.
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "onboarding_batch" ('
            "\"id\" VARCHAR(36) PRIMARY KEY NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"filename\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"file_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            '"file_bytes" BIGINT NOT NULL DEFAULT 0, '
            "\"file_format\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"sha256\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(12) NOT NULL DEFAULT '', "
            '"rows" INTEGER NOT NULL DEFAULT 0, '
            '"error_count" INTEGER NOT NULL DEFAULT 0, '
            "\"errors_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            '"errors_bytes" BIGINT NOT NULL DEFAULT 0, '
            "\"report\" JSONB NOT NULL DEFAULT '{}', "
            '"job_id" VARCHAR(36) DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"claimed_at" TIMESTAMPTZ DEFAULT null, '
            '"committed_at" TIMESTAMPTZ DEFAULT null, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX onboarding_batch_sha256 ON "onboarding_batch" USING btree ("sha256")',
        'CREATE INDEX onboarding_batch_region_id ON "onboarding_batch" USING btree ("region_id")',
        (
            'CREATE TABLE "school_profile" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"cycle\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"address\" TEXT NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER UNIQUE NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX school_profile_region_id ON "school_profile" USING btree ("region_id")',
        (
            'CREATE TABLE "onboarding_invitation" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"role\" VARCHAR(32) NOT NULL DEFAULT '', "
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX onboarding_invitation_person_id ON "onboarding_invitation" USING btree ("person_id")',
        'CREATE INDEX onboarding_invitation_region_id ON "onboarding_invitation" USING btree ("region_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "onboarding_batch" ('
            "\"id\" VARCHAR(36) PRIMARY KEY NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"filename\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"file_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            '"file_bytes" INTEGER NOT NULL DEFAULT 0, '
            "\"file_format\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"sha256\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(12) NOT NULL DEFAULT '', "
            '"rows" INTEGER NOT NULL DEFAULT 0, '
            '"error_count" INTEGER NOT NULL DEFAULT 0, '
            "\"errors_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            '"errors_bytes" INTEGER NOT NULL DEFAULT 0, '
            "\"report\" JSONB NOT NULL DEFAULT '{}', "
            '"job_id" VARCHAR(36) DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"claimed_at" TIMESTAMPTZ DEFAULT null, '
            '"committed_at" TIMESTAMPTZ DEFAULT null, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX onboarding_batch_sha256 ON "onboarding_batch" ("sha256")',
        'CREATE INDEX onboarding_batch_region_id ON "onboarding_batch" ("region_id")',
        (
            'CREATE TABLE "school_profile" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"cycle\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"address\" TEXT NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER UNIQUE NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX school_profile_region_id ON "school_profile" ("region_id")',
        (
            'CREATE TABLE "onboarding_invitation" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"role\" VARCHAR(32) NOT NULL DEFAULT '', "
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX onboarding_invitation_person_id ON "onboarding_invitation" ("person_id")',
        'CREATE INDEX onboarding_invitation_region_id ON "onboarding_invitation" ("region_id")',
    ),
}

#: Tables this migration creates, all owned by a tenant: row-level security and the application's grant.
CREATED = ("onboarding_batch", "school_profile", "onboarding_invitation")


async def forwards(m: Migrator) -> None:
    """Create the tables, their RLS policies, grants, and ``madrasa_pupil_codes_taken(codes[])`` on PostgreSQL."""
    await m.ddl(TABLES)
    await m.sql('CREATE INDEX onboarding_batch_region_created ON "onboarding_batch" (region_id, created_at)')
    for table in CREATED:
        await m.enable_rls(table)
        await m.grant_app(table)
    if m.dialect == "postgres":
        # The set-based twin of madrasa_pupil_code_taken: which of these codes exist anywhere on the
        # platform (codes only; the region that holds them stays hidden).
        await m.sql(
            "CREATE FUNCTION madrasa_pupil_codes_taken(p_codes varchar[]) RETURNS SETOF varchar "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "RETURN QUERY SELECT s.national_code FROM student s "
            "JOIN unnest(p_codes) c(code) ON c.code = s.national_code; "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); END $$"
        )
        # Staff numbers are national too: the staff records holding these numbers or belonging to these
        # people, anywhere (numbers and person ids only).
        await m.sql(
            "CREATE FUNCTION madrasa_staff_records(p_numbers varchar[], p_people integer[]) "
            "RETURNS TABLE (staff_number varchar, person_id integer) "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "RETURN QUERY SELECT s.staff_number, s.person_id FROM staff s "
            "WHERE s.staff_number = ANY (p_numbers) OR s.person_id = ANY (p_people); "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); END $$"
        )
