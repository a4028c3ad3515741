"""Attendance: notices and alerts retried with backoff, each message per person and channel recorded once sent."""

from core.plugin_api import Migrator

DEPENDS_ON = [("attendance", "m0002_notice_claims")]

#: Frozen DDL, per dialect (generated once by Piccolo from the table classes of the time).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "attendance_delivery" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"notice_id" INTEGER DEFAULT null, '
            '"alert_id" INTEGER DEFAULT null, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'retrying', "
            '"attempts" INTEGER NOT NULL DEFAULT 0, '
            '"next_attempt_at" TIMESTAMPTZ DEFAULT null, '
            "\"last_error\" TEXT NOT NULL DEFAULT '', "
            '"sent_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX attendance_delivery_region_id ON "attendance_delivery" USING btree ("region_id")',
        'CREATE INDEX attendance_delivery_school_id ON "attendance_delivery" USING btree ("school_id")',
    ),
    "sqlite": (
        (
            'CREATE TABLE "attendance_delivery" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"notice_id" INTEGER DEFAULT null, '
            '"alert_id" INTEGER DEFAULT null, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'retrying', "
            '"attempts" INTEGER NOT NULL DEFAULT 0, '
            '"next_attempt_at" TIMESTAMPTZ DEFAULT null, '
            "\"last_error\" TEXT NOT NULL DEFAULT '', "
            '"sent_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX attendance_delivery_region_id ON "attendance_delivery" ("region_id")',
        'CREATE INDEX attendance_delivery_school_id ON "attendance_delivery" ("school_id")',
    ),
}


async def forwards(m: Migrator) -> None:
    """Attempts, next attempt and last error on ``attendance_notice``; the ``attendance_delivery`` table (one row
    per message of a notice or an alert, unique per person and channel)."""
    await m.sql('ALTER TABLE "attendance_notice" ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0')
    await m.sql('ALTER TABLE "attendance_notice" ADD COLUMN next_attempt_at TIMESTAMPTZ DEFAULT null')
    await m.sql("ALTER TABLE \"attendance_notice\" ADD COLUMN last_error TEXT NOT NULL DEFAULT ''")
    await m.sql('CREATE INDEX attendance_notice_retry ON "attendance_notice" (status, next_attempt_at)')
    await m.ddl(TABLES)
    await m.sql(
        'CREATE UNIQUE INDEX attendance_delivery_unique ON "attendance_delivery" (notice_id, person_id, channel)'
    )
    await m.sql('CREATE UNIQUE INDEX attendance_delivery_alert ON "attendance_delivery" (alert_id, person_id, channel)')
    await m.sql('CREATE INDEX attendance_delivery_retry ON "attendance_delivery" (status, next_attempt_at)')
    await m.enable_rls("attendance_delivery")
    await m.grant_app("attendance_delivery")
