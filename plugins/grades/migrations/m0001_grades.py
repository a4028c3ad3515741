"""Grades: sheets, assessments, marks, policies, deadlines, closes, results, statistics, bulletins."""

from core.plugin_api import Migrator

#: Terms (the national deadlines are read from them) and pupils, classes and schools.
DEPENDS_ON = [("core", "m0002_school_structure")]

#: The tables as this migration creates them, per dialect: frozen text, generated once by Piccolo
#: from the table classes of the time. A later change to a class needs a new migration.
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "grade_sheet" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            "\"state\" VARCHAR(12) NOT NULL DEFAULT 'draft', "
            '"submitted_at" TIMESTAMPTZ DEFAULT null, '
            '"validated_by" INTEGER DEFAULT null, '
            '"published_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_sheet_region_id ON "grade_sheet" USING btree ("region_id")',
        'CREATE INDEX grade_sheet_school_id ON "grade_sheet" USING btree ("school_id")',
        'CREATE INDEX grade_sheet_class_id ON "grade_sheet" USING btree ("class_id")',
        'CREATE INDEX grade_sheet_teacher_id ON "grade_sheet" USING btree ("teacher_id")',
        (
            'CREATE TABLE "grade_assessment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"sheet_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT 'cc', "
            '"position" INTEGER NOT NULL DEFAULT 1, '
            "\"title\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"scheduled_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"max_score" NUMERIC(5, 2) NOT NULL DEFAULT 20, '
            '"weight" NUMERIC(5, 2) NOT NULL DEFAULT 1, '
            '"version" INTEGER NOT NULL DEFAULT 0, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_assessment_region_id ON "grade_assessment" USING btree ("region_id")',
        'CREATE INDEX grade_assessment_school_id ON "grade_assessment" USING btree ("school_id")',
        'CREATE INDEX grade_assessment_sheet_id ON "grade_assessment" USING btree ("sheet_id")',
        'CREATE INDEX grade_assessment_class_id ON "grade_assessment" USING btree ("class_id")',
        (
            'CREATE TABLE "grade_mark" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"assessment_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"score" NUMERIC(5, 2) DEFAULT null, '
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'present', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"updated_by" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_mark_region_id ON "grade_mark" USING btree ("region_id")',
        'CREATE INDEX grade_mark_school_id ON "grade_mark" USING btree ("school_id")',
        'CREATE INDEX grade_mark_assessment_id ON "grade_mark" USING btree ("assessment_id")',
        'CREATE INDEX grade_mark_student_id ON "grade_mark" USING btree ("student_id")',
        (
            'CREATE TABLE "grade_term_close" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"closed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"closed_by" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_term_close_region_id ON "grade_term_close" USING btree ("region_id")',
        'CREATE INDEX grade_term_close_school_id ON "grade_term_close" USING btree ("school_id")',
        (
            'CREATE TABLE "grade_subject_result" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"average" NUMERIC(6, 3) DEFAULT null, '
            '"coefficient" NUMERIC(5, 2) NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX grade_subject_result_region_id ON "grade_subject_result" USING btree ("region_id")',
        'CREATE INDEX grade_subject_result_school_id ON "grade_subject_result" USING btree ("school_id")',
        'CREATE INDEX grade_subject_result_class_id ON "grade_subject_result" USING btree ("class_id")',
        'CREATE INDEX grade_subject_result_student_id ON "grade_subject_result" USING btree ("student_id")',
        (
            'CREATE TABLE "grade_general_result" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"average" NUMERIC(6, 3) DEFAULT null, '
            '"rank" INTEGER DEFAULT null, '
            '"ranked" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX grade_general_result_region_id ON "grade_general_result" USING btree ("region_id")',
        'CREATE INDEX grade_general_result_school_id ON "grade_general_result" USING btree ("school_id")',
        'CREATE INDEX grade_general_result_class_id ON "grade_general_result" USING btree ("class_id")',
        'CREATE INDEX grade_general_result_student_id ON "grade_general_result" USING btree ("student_id")',
        (
            'CREATE TABLE "grade_class_stats" ('
            '"count" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"mean" NUMERIC(6, 3) DEFAULT null, '
            '"median" NUMERIC(6, 3) DEFAULT null, '
            '"minimum" NUMERIC(6, 3) DEFAULT null, '
            '"maximum" NUMERIC(6, 3) DEFAULT null, '
            '"pass_share" NUMERIC(5, 4) DEFAULT null, '
            "\"distribution\" JSONB NOT NULL DEFAULT '[]'"
            ")"
        ),
        'CREATE INDEX grade_class_stats_region_id ON "grade_class_stats" USING btree ("region_id")',
        'CREATE INDEX grade_class_stats_school_id ON "grade_class_stats" USING btree ("school_id")',
        'CREATE INDEX grade_class_stats_class_id ON "grade_class_stats" USING btree ("class_id")',
        (
            'CREATE TABLE "grade_bulletin" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"storage_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(4) NOT NULL DEFAULT 'ar', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_bulletin_region_id ON "grade_bulletin" USING btree ("region_id")',
        'CREATE INDEX grade_bulletin_school_id ON "grade_bulletin" USING btree ("school_id")',
        'CREATE INDEX grade_bulletin_student_id ON "grade_bulletin" USING btree ("student_id")',
        (
            'CREATE TABLE "grade_policy" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"required_cc" INTEGER NOT NULL DEFAULT 3, '
            "\"absent_counts_as\" VARCHAR(8) NOT NULL DEFAULT 'zero', "
            "\"excused_counts_as\" VARCHAR(8) NOT NULL DEFAULT 'ignore'"
            ")"
        ),
        (
            'CREATE TABLE "grade_deadline" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"entry_deadline" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
    ),
    "sqlite": (
        (
            'CREATE TABLE "grade_sheet" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            "\"state\" VARCHAR(12) NOT NULL DEFAULT 'draft', "
            '"submitted_at" TIMESTAMPTZ DEFAULT null, '
            '"validated_by" INTEGER DEFAULT null, '
            '"published_at" TIMESTAMPTZ DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_sheet_region_id ON "grade_sheet" ("region_id")',
        'CREATE INDEX grade_sheet_school_id ON "grade_sheet" ("school_id")',
        'CREATE INDEX grade_sheet_class_id ON "grade_sheet" ("class_id")',
        'CREATE INDEX grade_sheet_teacher_id ON "grade_sheet" ("teacher_id")',
        (
            'CREATE TABLE "grade_assessment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"sheet_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            "\"kind\" VARCHAR(8) NOT NULL DEFAULT 'cc', "
            '"position" INTEGER NOT NULL DEFAULT 1, '
            "\"title\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"scheduled_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"max_score" NUMERIC(5, 2) NOT NULL DEFAULT 20, '
            '"weight" NUMERIC(5, 2) NOT NULL DEFAULT 1, '
            '"version" INTEGER NOT NULL DEFAULT 0, '
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_assessment_region_id ON "grade_assessment" ("region_id")',
        'CREATE INDEX grade_assessment_school_id ON "grade_assessment" ("school_id")',
        'CREATE INDEX grade_assessment_sheet_id ON "grade_assessment" ("sheet_id")',
        'CREATE INDEX grade_assessment_class_id ON "grade_assessment" ("class_id")',
        (
            'CREATE TABLE "grade_mark" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"assessment_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"score" NUMERIC(5, 2) DEFAULT null, '
            "\"status\" VARCHAR(8) NOT NULL DEFAULT 'present', "
            '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"updated_by" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_mark_region_id ON "grade_mark" ("region_id")',
        'CREATE INDEX grade_mark_school_id ON "grade_mark" ("school_id")',
        'CREATE INDEX grade_mark_assessment_id ON "grade_mark" ("assessment_id")',
        'CREATE INDEX grade_mark_student_id ON "grade_mark" ("student_id")',
        (
            'CREATE TABLE "grade_term_close" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"closed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"closed_by" INTEGER DEFAULT null'
            ")"
        ),
        'CREATE INDEX grade_term_close_region_id ON "grade_term_close" ("region_id")',
        'CREATE INDEX grade_term_close_school_id ON "grade_term_close" ("school_id")',
        (
            'CREATE TABLE "grade_subject_result" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"average" NUMERIC(6, 3) DEFAULT null, '
            '"coefficient" NUMERIC(5, 2) NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX grade_subject_result_region_id ON "grade_subject_result" ("region_id")',
        'CREATE INDEX grade_subject_result_school_id ON "grade_subject_result" ("school_id")',
        'CREATE INDEX grade_subject_result_class_id ON "grade_subject_result" ("class_id")',
        'CREATE INDEX grade_subject_result_student_id ON "grade_subject_result" ("student_id")',
        (
            'CREATE TABLE "grade_general_result" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"average" NUMERIC(6, 3) DEFAULT null, '
            '"rank" INTEGER DEFAULT null, '
            '"ranked" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX grade_general_result_region_id ON "grade_general_result" ("region_id")',
        'CREATE INDEX grade_general_result_school_id ON "grade_general_result" ("school_id")',
        'CREATE INDEX grade_general_result_class_id ON "grade_general_result" ("class_id")',
        'CREATE INDEX grade_general_result_student_id ON "grade_general_result" ("student_id")',
        (
            'CREATE TABLE "grade_class_stats" ('
            '"count" INTEGER NOT NULL DEFAULT 0, '
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"mean" NUMERIC(6, 3) DEFAULT null, '
            '"median" NUMERIC(6, 3) DEFAULT null, '
            '"minimum" NUMERIC(6, 3) DEFAULT null, '
            '"maximum" NUMERIC(6, 3) DEFAULT null, '
            '"pass_share" NUMERIC(5, 4) DEFAULT null, '
            "\"distribution\" JSONB NOT NULL DEFAULT '[]'"
            ")"
        ),
        'CREATE INDEX grade_class_stats_region_id ON "grade_class_stats" ("region_id")',
        'CREATE INDEX grade_class_stats_school_id ON "grade_class_stats" ("school_id")',
        'CREATE INDEX grade_class_stats_class_id ON "grade_class_stats" ("class_id")',
        (
            'CREATE TABLE "grade_bulletin" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"storage_key\" VARCHAR(400) NOT NULL DEFAULT '', "
            "\"locale\" VARCHAR(4) NOT NULL DEFAULT 'ar', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX grade_bulletin_region_id ON "grade_bulletin" ("region_id")',
        'CREATE INDEX grade_bulletin_school_id ON "grade_bulletin" ("school_id")',
        'CREATE INDEX grade_bulletin_student_id ON "grade_bulletin" ("student_id")',
        (
            'CREATE TABLE "grade_policy" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"required_cc" INTEGER NOT NULL DEFAULT 3, '
            "\"absent_counts_as\" VARCHAR(8) NOT NULL DEFAULT 'zero', "
            "\"excused_counts_as\" VARCHAR(8) NOT NULL DEFAULT 'ignore'"
            ")"
        ),
        (
            'CREATE TABLE "grade_deadline" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"term_id" INTEGER NOT NULL DEFAULT 0, '
            '"entry_deadline" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
    ),
}

#: Tables owned by a school: row-level security.
SCOPED = (
    "grade_sheet",
    "grade_assessment",
    "grade_mark",
    "grade_term_close",
    "grade_subject_result",
    "grade_general_result",
    "grade_class_stats",
    "grade_bulletin",
)
#: Tables this migration creates (each granted to the application role here).
CREATED = (*SCOPED, "grade_policy", "grade_deadline")


async def forwards(m: Migrator) -> None:
    """Create the tables, their constraints, RLS, grants, and the national policy."""
    await m.ddl(TABLES)
    await m.sql('CREATE UNIQUE INDEX grade_sheet_unique ON "grade_sheet" (class_id, subject_code, term_id)')
    await m.sql('CREATE UNIQUE INDEX grade_mark_unique ON "grade_mark" (assessment_id, student_id)')
    await m.sql('CREATE UNIQUE INDEX grade_term_close_unique ON "grade_term_close" (school_id, term_id)')
    await m.sql('CREATE INDEX grade_assessment_sheet ON "grade_assessment" (sheet_id, position)')
    await m.sql(
        'CREATE UNIQUE INDEX grade_subject_result_unique ON "grade_subject_result" (term_id, student_id, subject_code)'
    )
    await m.sql('CREATE UNIQUE INDEX grade_general_result_unique ON "grade_general_result" (term_id, student_id)')
    await m.sql('CREATE INDEX grade_mark_student ON "grade_mark" (student_id, assessment_id)')
    await m.sql('CREATE UNIQUE INDEX grade_policy_unique ON "grade_policy" (COALESCE(tenant_id, 0))')
    await m.sql('CREATE UNIQUE INDEX grade_deadline_unique ON "grade_deadline" (COALESCE(tenant_id, 0), term_id)')
    for table in SCOPED:
        await m.enable_rls(table)
    for table in CREATED:
        await m.grant_app(table)
    await m.sql(
        "INSERT INTO grade_policy (tenant_id, required_cc, absent_counts_as, excused_counts_as) "
        "VALUES (NULL, 3, 'zero', 'ignore')"
    )
    # National entry deadlines: the last day of each term.
    await m.sql(
        "INSERT INTO grade_deadline (tenant_id, term_id, entry_deadline) "
        "SELECT NULL, id, ends_on FROM term WHERE tenant_id IS NULL"
    )
