"""Attendance: sessions taken, absent/late marks, notices, justifications, alerts, reasons, rules."""

from core.plugin_api import Migrator

#: Pupils, classes, timetable slots and schools.
DEPENDS_ON = [("core", "m0002_school_structure")]

#: The tables as this migration creates them, per dialect: frozen text, generated once by Piccolo
#: from the table classes of the time. A later change to a class needs a new migration.
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "attendance_session" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"slot_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            '"taken_by" INTEGER NOT NULL DEFAULT 0, '
            '"taken_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"version" INTEGER NOT NULL DEFAULT 1'
            ")"
        ),
        'CREATE INDEX attendance_session_region_id ON "attendance_session" USING btree ("region_id")',
        'CREATE INDEX attendance_session_school_id ON "attendance_session" USING btree ("school_id")',
        'CREATE INDEX attendance_session_class_id ON "attendance_session" USING btree ("class_id")',
        'CREATE INDEX attendance_session_teacher_id ON "attendance_session" USING btree ("teacher_id")',
        (
            'CREATE TABLE "attendance_mark" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"session_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"justification_id" INTEGER DEFAULT null, '
            '"justified" BOOLEAN NOT NULL DEFAULT false'
            ")"
        ),
        'CREATE INDEX attendance_mark_region_id ON "attendance_mark" USING btree ("region_id")',
        'CREATE INDEX attendance_mark_school_id ON "attendance_mark" USING btree ("school_id")',
        (
            'CREATE TABLE "attendance_notice" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT 'absence', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'pending', "
            '"sent_at" TIMESTAMPTZ DEFAULT null, '
            "\"channels\" VARCHAR(40) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX attendance_notice_region_id ON "attendance_notice" USING btree ("region_id")',
        'CREATE INDEX attendance_notice_school_id ON "attendance_notice" USING btree ("school_id")',
        (
            'CREATE TABLE "attendance_justification" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"submitted_by" INTEGER NOT NULL DEFAULT 0, '
            "\"reason_code\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"note\" TEXT NOT NULL DEFAULT '', "
            '"file_key" VARCHAR(1024) DEFAULT null, '
            '"file_type" VARCHAR(120) DEFAULT null, '
            '"file_size" INTEGER DEFAULT null, '
            "\"state\" VARCHAR(10) NOT NULL DEFAULT 'pending', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"reviewed_by" INTEGER DEFAULT null, '
            '"reviewed_at" TIMESTAMPTZ DEFAULT null, '
            "\"review_note\" TEXT NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX attendance_justification_region_id ON "attendance_justification" USING btree ("region_id")',
        'CREATE INDEX attendance_justification_school_id ON "attendance_justification" USING btree ("school_id")',
        'CREATE INDEX attendance_justification_student_id ON "attendance_justification" USING btree ("student_id")',
        (
            'CREATE TABLE "attendance_alert" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"window_no" INTEGER NOT NULL DEFAULT 0, '
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX attendance_alert_region_id ON "attendance_alert" USING btree ("region_id")',
        'CREATE INDEX attendance_alert_school_id ON "attendance_alert" USING btree ("school_id")',
        'CREATE INDEX attendance_alert_student_id ON "attendance_alert" USING btree ("student_id")',
        (
            'CREATE TABLE "attendance_reason" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"code\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"label_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"label_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"label_en\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"position" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        (
            'CREATE TABLE "attendance_rule" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"unjustified_hours" INTEGER NOT NULL DEFAULT 10, '
            '"window_days" INTEGER NOT NULL DEFAULT 30'
            ")"
        ),
        (
            'CREATE TABLE "attendance_contact" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"phone\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
    ),
    "sqlite": (
        (
            'CREATE TABLE "attendance_session" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"slot_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            '"taken_by" INTEGER NOT NULL DEFAULT 0, '
            '"taken_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"version" INTEGER NOT NULL DEFAULT 1'
            ")"
        ),
        'CREATE INDEX attendance_session_region_id ON "attendance_session" ("region_id")',
        'CREATE INDEX attendance_session_school_id ON "attendance_session" ("school_id")',
        'CREATE INDEX attendance_session_class_id ON "attendance_session" ("class_id")',
        'CREATE INDEX attendance_session_teacher_id ON "attendance_session" ("teacher_id")',
        (
            'CREATE TABLE "attendance_mark" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"session_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"justification_id" INTEGER DEFAULT null, '
            '"justified" BOOLEAN NOT NULL DEFAULT false'
            ")"
        ),
        'CREATE INDEX attendance_mark_region_id ON "attendance_mark" ("region_id")',
        'CREATE INDEX attendance_mark_school_id ON "attendance_mark" ("school_id")',
        (
            'CREATE TABLE "attendance_notice" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"on_date" DATE NOT NULL DEFAULT CURRENT_DATE, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT 'absence', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'pending', "
            '"sent_at" TIMESTAMPTZ DEFAULT null, '
            "\"channels\" VARCHAR(40) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX attendance_notice_region_id ON "attendance_notice" ("region_id")',
        'CREATE INDEX attendance_notice_school_id ON "attendance_notice" ("school_id")',
        (
            'CREATE TABLE "attendance_justification" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"submitted_by" INTEGER NOT NULL DEFAULT 0, '
            "\"reason_code\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"note\" TEXT NOT NULL DEFAULT '', "
            '"file_key" VARCHAR(1024) DEFAULT null, '
            '"file_type" VARCHAR(120) DEFAULT null, '
            '"file_size" INTEGER DEFAULT null, '
            "\"state\" VARCHAR(10) NOT NULL DEFAULT 'pending', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"reviewed_by" INTEGER DEFAULT null, '
            '"reviewed_at" TIMESTAMPTZ DEFAULT null, '
            "\"review_note\" TEXT NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX attendance_justification_region_id ON "attendance_justification" ("region_id")',
        'CREATE INDEX attendance_justification_school_id ON "attendance_justification" ("school_id")',
        'CREATE INDEX attendance_justification_student_id ON "attendance_justification" ("student_id")',
        (
            'CREATE TABLE "attendance_alert" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"window_no" INTEGER NOT NULL DEFAULT 0, '
            '"minutes" INTEGER NOT NULL DEFAULT 0, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX attendance_alert_region_id ON "attendance_alert" ("region_id")',
        'CREATE INDEX attendance_alert_school_id ON "attendance_alert" ("school_id")',
        'CREATE INDEX attendance_alert_student_id ON "attendance_alert" ("student_id")',
        (
            'CREATE TABLE "attendance_reason" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"code\" VARCHAR(24) NOT NULL DEFAULT '', "
            "\"label_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"label_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"label_en\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"position" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        (
            'CREATE TABLE "attendance_rule" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"unjustified_hours" INTEGER NOT NULL DEFAULT 10, '
            '"window_days" INTEGER NOT NULL DEFAULT 30'
            ")"
        ),
        (
            'CREATE TABLE "attendance_contact" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"phone\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
    ),
}

#: Tables owned by a school: row-level security.
SCOPED = (
    "attendance_session",
    "attendance_mark",
    "attendance_notice",
    "attendance_justification",
    "attendance_alert",
)
#: Tables this migration creates (each granted to the application role here).
CREATED = (*SCOPED, "attendance_reason", "attendance_rule", "attendance_contact")

REASONS = [
    ("illness", "Maladie", "مرض", "Illness"),
    ("family", "Raison familiale", "ظرف عائلي", "Family reason"),
    ("transport", "Problème de transport", "مشكل في النقل", "Transport problem"),
    ("appointment", "Rendez-vous médical ou administratif", "موعد طبي أو إداري", "Medical or official appointment"),
    ("other", "Autre", "سبب آخر", "Other"),
]


async def forwards(m: Migrator) -> None:
    """Create the tables, the keys that make submissions and notices idempotent, RLS, grants, national settings."""
    await m.ddl(TABLES)
    await m.sql('CREATE UNIQUE INDEX attendance_session_unique ON "attendance_session" (slot_id, on_date)')
    await m.sql('CREATE INDEX attendance_session_day ON "attendance_session" (school_id, on_date)')
    await m.sql('CREATE UNIQUE INDEX attendance_mark_unique ON "attendance_mark" (session_id, student_id)')
    await m.sql('CREATE INDEX attendance_mark_student ON "attendance_mark" (student_id, on_date)')
    await m.sql('CREATE INDEX attendance_mark_class ON "attendance_mark" (class_id, on_date)')
    await m.sql('CREATE UNIQUE INDEX attendance_notice_unique ON "attendance_notice" (student_id, on_date, kind)')
    await m.sql('CREATE UNIQUE INDEX attendance_alert_unique ON "attendance_alert" (student_id, window_no)')
    await m.sql('CREATE UNIQUE INDEX attendance_reason_unique ON "attendance_reason" (COALESCE(tenant_id, 0), code)')
    await m.sql('CREATE UNIQUE INDEX attendance_rule_unique ON "attendance_rule" (COALESCE(tenant_id, 0))')
    for table in SCOPED:
        await m.enable_rls(table)
    for table in CREATED:
        await m.grant_app(table)
    await m.executemany(
        "INSERT INTO attendance_reason (tenant_id, code, label_fr, label_ar, label_en, position) "
        "VALUES (NULL, {}, {}, {}, {}, {})",
        [(code, fr, ar, en, position) for position, (code, fr, ar, en) in enumerate(REASONS)],
    )
    await m.sql("INSERT INTO attendance_rule (tenant_id, unjustified_hours, window_days) VALUES (NULL, 10, 30)")
