"""The notification centre: batches, the in-app inbox, deliveries per channel, preferences, policies, rate limit.

``notification_batch``, ``notification`` and ``notification_delivery`` belong to a tenant (scope columns, forced
row-level security on PostgreSQL). ``notification_preference``, ``notification_setting``, ``notification_policy``
and ``notification_rate`` are platform settings tables like ``retention_period``: no scope columns, only core's
services touch them. Unique keys make a batch expand once (``notification (batch_id, person_id)``), a message go
out once per channel (``notification_delivery (notification_id, channel)``) and a rate window count once
(``notification_rate (person_id, channel, window_start)``).
"""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0008_privacy")]

#: The tables as this migration creates them, per dialect (frozen text, generated once by Piccolo from
#: ``core.notifications.tables``; a later change to a class needs a new migration).
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "notification_batch" ('
            "\"id\" VARCHAR(80) PRIMARY KEY NOT NULL DEFAULT '', "
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"recipients\" TEXT NOT NULL DEFAULT '[]', "
            "\"msgid\" TEXT NOT NULL DEFAULT '', "
            "\"params\" TEXT NOT NULL DEFAULT '{}', "
            "\"link\" VARCHAR(500) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'pending', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"done_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX notification_batch_region_id ON "notification_batch" USING btree ("region_id")',
        'CREATE INDEX notification_batch_school_id ON "notification_batch" USING btree ("school_id")',
        'CREATE INDEX notification_batch_status ON "notification_batch" USING btree ("status")',
        (
            'CREATE TABLE "notification" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"batch_id\" VARCHAR(80) NOT NULL DEFAULT '', "
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"text\" TEXT NOT NULL DEFAULT '', "
            "\"link\" VARCHAR(500) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"read_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX notification_region_id ON "notification" USING btree ("region_id")',
        'CREATE INDEX notification_school_id ON "notification" USING btree ("school_id")',
        'CREATE INDEX notification_person_id ON "notification" USING btree ("person_id")',
        (
            'CREATE TABLE "notification_delivery" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"notification_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'queued', "
            '"attempts" INTEGER NOT NULL DEFAULT 0, '
            '"next_attempt_at" TIMESTAMPTZ DEFAULT null, '
            "\"last_error\" TEXT NOT NULL DEFAULT '', "
            '"sent_at" TIMESTAMPTZ DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX notification_delivery_region_id ON "notification_delivery" USING btree ("region_id")',
        'CREATE INDEX notification_delivery_school_id ON "notification_delivery" USING btree ("school_id")',
        (
            'CREATE TABLE "notification_preference" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"email" BOOLEAN NOT NULL DEFAULT false, '
            '"sms" BOOLEAN NOT NULL DEFAULT false, '
            '"digest" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        ('CREATE INDEX notification_preference_person_id ON "notification_preference" USING btree ("person_id")'),
        (
            'CREATE TABLE "notification_setting" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"phone\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"quiet_start" INTEGER DEFAULT null, '
            '"quiet_end" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "notification_policy" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"sms_allowed" BOOLEAN NOT NULL DEFAULT false, '
            '"mandatory" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_by" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX notification_policy_tenant_id ON "notification_policy" USING btree ("tenant_id")',
        (
            'CREATE TABLE "notification_rate" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"window_start" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"sent" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
    ),
    "sqlite": (
        (
            'CREATE TABLE "notification_batch" ('
            "\"id\" VARCHAR(80) PRIMARY KEY NOT NULL DEFAULT '', "
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"recipients\" TEXT NOT NULL DEFAULT '[]', "
            "\"msgid\" TEXT NOT NULL DEFAULT '', "
            "\"params\" TEXT NOT NULL DEFAULT '{}', "
            "\"link\" VARCHAR(500) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'pending', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"done_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX notification_batch_region_id ON "notification_batch" ("region_id")',
        'CREATE INDEX notification_batch_school_id ON "notification_batch" ("school_id")',
        'CREATE INDEX notification_batch_status ON "notification_batch" ("status")',
        (
            'CREATE TABLE "notification" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"batch_id\" VARCHAR(80) NOT NULL DEFAULT '', "
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            "\"text\" TEXT NOT NULL DEFAULT '', "
            "\"link\" VARCHAR(500) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"read_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX notification_region_id ON "notification" ("region_id")',
        'CREATE INDEX notification_school_id ON "notification" ("school_id")',
        'CREATE INDEX notification_person_id ON "notification" ("person_id")',
        (
            'CREATE TABLE "notification_delivery" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"region_id" INTEGER DEFAULT null, '
            '"province_id" INTEGER DEFAULT null, '
            '"school_id" INTEGER DEFAULT null, '
            '"notification_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'queued', "
            '"attempts" INTEGER NOT NULL DEFAULT 0, '
            '"next_attempt_at" TIMESTAMPTZ DEFAULT null, '
            "\"last_error\" TEXT NOT NULL DEFAULT '', "
            '"sent_at" TIMESTAMPTZ DEFAULT null, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX notification_delivery_region_id ON "notification_delivery" ("region_id")',
        'CREATE INDEX notification_delivery_school_id ON "notification_delivery" ("school_id")',
        (
            'CREATE TABLE "notification_preference" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"email" BOOLEAN NOT NULL DEFAULT false, '
            '"sms" BOOLEAN NOT NULL DEFAULT false, '
            '"digest" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX notification_preference_person_id ON "notification_preference" ("person_id")',
        (
            'CREATE TABLE "notification_setting" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"phone\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"quiet_start" INTEGER DEFAULT null, '
            '"quiet_end" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        (
            'CREATE TABLE "notification_policy" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(64) NOT NULL DEFAULT '', "
            '"sms_allowed" BOOLEAN NOT NULL DEFAULT false, '
            '"mandatory" BOOLEAN NOT NULL DEFAULT false, '
            '"updated_by" INTEGER DEFAULT null, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX notification_policy_tenant_id ON "notification_policy" ("tenant_id")',
        (
            'CREATE TABLE "notification_rate" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"channel\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"window_start" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"sent" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
    ),
}

SCOPED = ("notification_batch", "notification", "notification_delivery")
CREATED = (
    *SCOPED,
    "notification_preference",
    "notification_setting",
    "notification_policy",
    "notification_rate",
)
INDEXES = (
    'CREATE UNIQUE INDEX notification_batch_person ON "notification" (batch_id, person_id)',
    'CREATE INDEX notification_inbox ON "notification" (person_id, read_at)',
    'CREATE UNIQUE INDEX notification_delivery_unique ON "notification_delivery" (notification_id, channel)',
    'CREATE INDEX notification_delivery_due ON "notification_delivery" (status, next_attempt_at)',
    'CREATE UNIQUE INDEX notification_preference_unique ON "notification_preference" (person_id, kind)',
    'CREATE UNIQUE INDEX notification_policy_unique ON "notification_policy" (tenant_id, kind)',
    'CREATE UNIQUE INDEX notification_rate_window ON "notification_rate" (person_id, channel, window_start)',
)


async def forwards(m: Migrator) -> None:
    """Create the tables and their keys; row-level security on the tenant-owned ones; grants to the application."""
    await m.ddl(TABLES)
    for statement in INDEXES:
        await m.sql(statement)
    for table in SCOPED:
        await m.enable_rls(table)
    for table in CREATED:
        await m.grant_app(table)
