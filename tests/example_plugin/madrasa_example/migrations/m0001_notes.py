"""The ``example_note`` table, frozen as it was created, with its row-level security and grants."""

from core.plugin_api import Migrator

#: Applied after core's school structure (notes belong to schools).
DEPENDS_ON = [("core", "m0002_school_structure")]

#: The DDL as the table class produced it when this migration was written, per dialect.
TABLES = {
    "postgres": (
        'CREATE TABLE "example_note" ("id" SERIAL PRIMARY KEY NOT NULL, '
        '"region_id" INTEGER NOT NULL DEFAULT 0, "province_id" INTEGER NOT NULL DEFAULT 0, '
        '"school_id" INTEGER NOT NULL DEFAULT 0, "author_id" INTEGER NOT NULL DEFAULT 0, '
        '"body" TEXT NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
        'CREATE INDEX example_note_region_id ON "example_note" USING btree ("region_id")',
        'CREATE INDEX example_note_school_id ON "example_note" USING btree ("school_id")',
    ),
    "sqlite": (
        'CREATE TABLE "example_note" ("id" INTEGER PRIMARY KEY NOT NULL, '
        '"region_id" INTEGER NOT NULL DEFAULT 0, "province_id" INTEGER NOT NULL DEFAULT 0, '
        '"school_id" INTEGER NOT NULL DEFAULT 0, "author_id" INTEGER NOT NULL DEFAULT 0, '
        '"body" TEXT NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
        'CREATE INDEX example_note_region_id ON "example_note" ("region_id")',
        'CREATE INDEX example_note_school_id ON "example_note" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the table and its indexes; on PostgreSQL, force RLS on it and grant the app role DML."""
    await m.ddl(TABLES)
    await m.enable_rls("example_note")
    await m.grant_app("example_note")
