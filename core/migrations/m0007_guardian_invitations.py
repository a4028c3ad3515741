"""Pending guardian links: ``guardian_invitation``, with row-level security.

A director linking a guardian who is not already within the school's reach (a member of the school or a
guardian of one of its pupils) no longer attaches the account at once: a one-time link is mailed, and the
guardianship and the parent role come when the guardian uses it.
"""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0001_initial"), ("core", "m0002_school_structure")]

#: The table as this migration creates it, per dialect (frozen text).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "guardian_invitation" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"full_name\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"full_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"relation\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null, '
            '"person_id" INTEGER DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX guardian_invitation_student_id ON "guardian_invitation" USING btree ("student_id")',
        'CREATE INDEX guardian_invitation_region_id ON "guardian_invitation" USING btree ("region_id")',
        'CREATE INDEX guardian_invitation_school_id ON "guardian_invitation" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "guardian_invitation" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            "\"email\" VARCHAR(254) NOT NULL DEFAULT '', "
            "\"full_name\" VARCHAR(200) NOT NULL DEFAULT '', "
            "\"full_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"relation\" VARCHAR(16) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"used_at" TIMESTAMPTZ DEFAULT null, '
            '"person_id" INTEGER DEFAULT null, '
            '"created_by" INTEGER DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX guardian_invitation_student_id ON "guardian_invitation" ("student_id")',
        'CREATE INDEX guardian_invitation_region_id ON "guardian_invitation" ("region_id")',
        'CREATE INDEX guardian_invitation_school_id ON "guardian_invitation" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Create the table, its row-level security and the application role's grant."""
    await m.ddl(TABLES)
    await m.enable_rls("guardian_invitation")
    await m.grant_app("guardian_invitation")
