"""Who may read a stored file: ``stored_file_reader`` (the people a file is addressed to), with row-level security.

Until now any member of a school could read every file stored in it; the files API now also asks
that the reader be the uploader, an addressee listed here, or one of the tenant's managers.
"""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0001_initial")]

#: The table as this migration creates it, per dialect (frozen text, generated once by Piccolo).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "stored_file_reader" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"file_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX stored_file_reader_file_id ON "stored_file_reader" USING btree ("file_id")',
        'CREATE INDEX stored_file_reader_person_id ON "stored_file_reader" USING btree ("person_id")',
        'CREATE INDEX stored_file_reader_region_id ON "stored_file_reader" USING btree ("region_id")',
        'CREATE INDEX stored_file_reader_school_id ON "stored_file_reader" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "stored_file_reader" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"file_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX stored_file_reader_file_id ON "stored_file_reader" ("file_id")',
        'CREATE INDEX stored_file_reader_person_id ON "stored_file_reader" ("person_id")',
        'CREATE INDEX stored_file_reader_region_id ON "stored_file_reader" ("region_id")',
        'CREATE INDEX stored_file_reader_school_id ON "stored_file_reader" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the table, one row per file and person, its row-level security and the application role's grant."""
    await m.ddl(TABLES)
    await m.sql('CREATE UNIQUE INDEX stored_file_reader_unique ON "stored_file_reader" (file_id, person_id)')
    await m.enable_rls("stored_file_reader")
    await m.grant_app("stored_file_reader")
