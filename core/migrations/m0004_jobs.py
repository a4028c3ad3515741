"""Background jobs: the ``job`` table (status, progress, result) with row-level security."""

from core.migrate import Migrator

#: The table as this migration creates it, per dialect (frozen text, generated once by Piccolo).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "job" ('
            "\"id\" VARCHAR(36) PRIMARY KEY NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"params\" JSONB NOT NULL DEFAULT '{}', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'queued', "
            '"done" INTEGER NOT NULL DEFAULT 0, '
            '"total" INTEGER NOT NULL DEFAULT 0, '
            "\"message\" TEXT NOT NULL DEFAULT '', "
            '"result" JSONB DEFAULT null, '
            '"error" TEXT DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"started_at" TIMESTAMPTZ DEFAULT null, '
            '"finished_at" TIMESTAMPTZ DEFAULT null, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX job_status ON "job" USING btree ("status")',
        'CREATE INDEX job_created_by ON "job" USING btree ("created_by")',
        'CREATE INDEX job_region_id ON "job" USING btree ("region_id")',
        'CREATE INDEX job_school_id ON "job" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "job" ('
            "\"id\" VARCHAR(36) PRIMARY KEY NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"params\" JSONB NOT NULL DEFAULT '{}', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'queued', "
            '"done" INTEGER NOT NULL DEFAULT 0, '
            '"total" INTEGER NOT NULL DEFAULT 0, '
            "\"message\" TEXT NOT NULL DEFAULT '', "
            '"result" JSONB DEFAULT null, '
            '"error" TEXT DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"started_at" TIMESTAMPTZ DEFAULT null, '
            '"finished_at" TIMESTAMPTZ DEFAULT null, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX job_status ON "job" ("status")',
        'CREATE INDEX job_created_by ON "job" ("created_by")',
        'CREATE INDEX job_region_id ON "job" ("region_id")',
        'CREATE INDEX job_school_id ON "job" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the table, an index for a tenant's recent jobs, its RLS policy and the application's grant."""
    await m.ddl(TABLES)
    await m.sql('CREATE INDEX job_school_created ON "job" (school_id, created_at)')
    await m.enable_rls("job")
    await m.grant_app("job")
