"""Grades: a school's publication version (``grade_publication``), which keys the results-day caches."""

from core.plugin_api import Migrator

DEPENDS_ON = [("grades", "m0001_grades")]

#: Frozen DDL, per dialect (generated once by Piccolo from the table class of the time).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "grade_publication" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"version" INTEGER NOT NULL DEFAULT 0, '
            '"changed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_publication_region_id ON "grade_publication" USING btree ("region_id")',
        'CREATE INDEX grade_publication_school_id ON "grade_publication" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "grade_publication" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"version" INTEGER NOT NULL DEFAULT 0, '
            '"changed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_publication_region_id ON "grade_publication" ("region_id")',
        'CREATE INDEX grade_publication_school_id ON "grade_publication" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """The table (one row per school, made by the first change), row-level security and the grant."""
    await m.ddl(TABLES)
    await m.sql('CREATE UNIQUE INDEX grade_publication_unique ON "grade_publication" (region_id, school_id)')
    await m.enable_rls("grade_publication")
    await m.grant_app("grade_publication")
