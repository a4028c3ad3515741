"""OneRoster exchange: the sourcedId links of imported bundles, with row-level security."""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0001_initial")]

#: The table as this migration creates it, per dialect (frozen text, generated once by Piccolo).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "oneroster_link" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"anchor_id" INTEGER NOT NULL DEFAULT 0, '
            "\"source\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"sourced_id\" VARCHAR(255) NOT NULL DEFAULT '', "
            '"local_id" INTEGER NOT NULL DEFAULT 0, '
            "\"local_key\" VARCHAR(40) NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX oneroster_link_region_id ON "oneroster_link" USING btree ("region_id")',
        'CREATE INDEX oneroster_link_school_id ON "oneroster_link" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "oneroster_link" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"anchor_id" INTEGER NOT NULL DEFAULT 0, '
            "\"source\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"kind\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"sourced_id\" VARCHAR(255) NOT NULL DEFAULT '', "
            '"local_id" INTEGER NOT NULL DEFAULT 0, '
            "\"local_key\" VARCHAR(40) NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX oneroster_link_region_id ON "oneroster_link" ("region_id")',
        'CREATE INDEX oneroster_link_school_id ON "oneroster_link" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the link table, its unique key per importing tenant, RLS and the application's grant."""
    await m.ddl(TABLES)
    await m.sql('CREATE UNIQUE INDEX oneroster_link_key ON "oneroster_link" (anchor_id, source, kind, sourced_id)')
    await m.enable_rls("oneroster_link")
    await m.grant_app("oneroster_link")
