"""School structure: reference data, classes, rooms, pupils, guardians, staff, enrolments, timetables."""

from datetime import date
from decimal import Decimal

from core.migrate import Migrator
from core.school import reference
from core.sql import SQL

#: The tables as this migration creates them, per dialect: frozen text, generated once by Piccolo
#: from the table classes of the time. A later change to a class needs a new migration.
TABLES = {
    "postgres": (
        (
            'CREATE TABLE "level" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(8) UNIQUE NOT NULL DEFAULT '', "
            "\"cycle\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"rank" INTEGER NOT NULL DEFAULT 0, '
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "track" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(12) UNIQUE NOT NULL DEFAULT '', "
            "\"levels\" VARCHAR(40) NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "subject" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(16) UNIQUE NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "subject_coefficient" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"level_code\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"track_code" VARCHAR(12) DEFAULT null, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"coefficient" NUMERIC(5, 2) NOT NULL DEFAULT 0, '
            '"weekly_hours" NUMERIC(4, 1) NOT NULL DEFAULT 0'
            ")"
        ),
        (
            'CREATE TABLE "school_year" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"label\" VARCHAR(9) UNIQUE NOT NULL DEFAULT '', "
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        (
            'CREATE TABLE "term" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"number" INTEGER NOT NULL DEFAULT 0, '
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX term_school_year_id ON "term" USING btree ("school_year_id")',
        (
            'CREATE TABLE "holiday" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX holiday_school_year_id ON "holiday" USING btree ("school_year_id")',
        (
            'CREATE TABLE "room" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"name\" VARCHAR(60) NOT NULL DEFAULT '', "
            '"capacity" INTEGER NOT NULL DEFAULT 40'
            ")"
        ),
        'CREATE INDEX room_region_id ON "room" USING btree ("region_id")',
        'CREATE INDEX room_school_id ON "room" USING btree ("school_id")',
        (
            'CREATE TABLE "school_class" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            "\"level_code\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"track_code" VARCHAR(12) DEFAULT null, '
            "\"name\" VARCHAR(60) NOT NULL DEFAULT '', "
            '"homeroom_teacher_id" INTEGER DEFAULT null, '
            '"capacity" INTEGER NOT NULL DEFAULT 45'
            ")"
        ),
        'CREATE INDEX school_class_region_id ON "school_class" USING btree ("region_id")',
        'CREATE INDEX school_class_school_id ON "school_class" USING btree ("school_id")',
        'CREATE INDEX school_class_school_year_id ON "school_class" USING btree ("school_year_id")',
        (
            'CREATE TABLE "student" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            "\"national_code\" VARCHAR(10) UNIQUE NOT NULL DEFAULT '', "
            '"person_id" INTEGER DEFAULT null, '
            "\"first_name\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"last_name\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"first_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"last_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"birth_date" DATE DEFAULT null, '
            "\"gender\" VARCHAR(1) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX student_region_id ON "student" USING btree ("region_id")',
        'CREATE INDEX student_school_id ON "student" USING btree ("school_id")',
        'CREATE INDEX student_person_id ON "student" USING btree ("person_id")',
        (
            'CREATE TABLE "guardianship" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"relation\" VARCHAR(16) NOT NULL DEFAULT 'guardian'"
            ")"
        ),
        'CREATE INDEX guardianship_region_id ON "guardianship" USING btree ("region_id")',
        'CREATE INDEX guardianship_school_id ON "guardianship" USING btree ("school_id")',
        'CREATE INDEX guardianship_student_id ON "guardianship" USING btree ("student_id")',
        'CREATE INDEX guardianship_person_id ON "guardianship" USING btree ("person_id")',
        (
            'CREATE TABLE "staff" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"staff_number\" VARCHAR(12) UNIQUE NOT NULL DEFAULT '', "
            "\"grade\" VARCHAR(40) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX staff_region_id ON "staff" USING btree ("region_id")',
        'CREATE INDEX staff_school_id ON "staff" USING btree ("school_id")',
        (
            'CREATE TABLE "enrolment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE DEFAULT null, '
            "\"status\" VARCHAR(16) NOT NULL DEFAULT 'active'"
            ")"
        ),
        'CREATE INDEX enrolment_region_id ON "enrolment" USING btree ("region_id")',
        'CREATE INDEX enrolment_school_id ON "enrolment" USING btree ("school_id")',
        'CREATE INDEX enrolment_student_id ON "enrolment" USING btree ("student_id")',
        'CREATE INDEX enrolment_class_id ON "enrolment" USING btree ("class_id")',
        (
            'CREATE TABLE "teaching_assignment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"school_year_id" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX teaching_assignment_region_id ON "teaching_assignment" USING btree ("region_id")',
        'CREATE INDEX teaching_assignment_school_id ON "teaching_assignment" USING btree ("school_id")',
        'CREATE INDEX teaching_assignment_person_id ON "teaching_assignment" USING btree ("person_id")',
        'CREATE INDEX teaching_assignment_class_id ON "teaching_assignment" USING btree ("class_id")',
        (
            'CREATE TABLE "timetable_slot" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            '"room_id" INTEGER DEFAULT null, '
            '"weekday" INTEGER NOT NULL DEFAULT 0, '
            '"starts_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"ends_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"valid_from" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"valid_to" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX timetable_slot_region_id ON "timetable_slot" USING btree ("region_id")',
        'CREATE INDEX timetable_slot_school_id ON "timetable_slot" USING btree ("school_id")',
        'CREATE INDEX timetable_slot_class_id ON "timetable_slot" USING btree ("class_id")',
        'CREATE INDEX timetable_slot_teacher_id ON "timetable_slot" USING btree ("teacher_id")',
        'CREATE INDEX timetable_slot_room_id ON "timetable_slot" USING btree ("room_id")',
        (
            'CREATE TABLE "duty_slot" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"label\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"weekday" INTEGER NOT NULL DEFAULT 0, '
            '"starts_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"ends_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"valid_from" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"valid_to" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX duty_slot_region_id ON "duty_slot" USING btree ("region_id")',
        'CREATE INDEX duty_slot_school_id ON "duty_slot" USING btree ("school_id")',
        'CREATE INDEX duty_slot_person_id ON "duty_slot" USING btree ("person_id")',
        (
            'CREATE TABLE "calendar_feed" ('
            '"id" SERIAL PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"active" BOOLEAN NOT NULL DEFAULT true'
            ")"
        ),
    ),
    "sqlite": (
        (
            'CREATE TABLE "level" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(8) UNIQUE NOT NULL DEFAULT '', "
            "\"cycle\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"rank" INTEGER NOT NULL DEFAULT 0, '
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "track" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(12) UNIQUE NOT NULL DEFAULT '', "
            "\"levels\" VARCHAR(40) NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "subject" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"code\" VARCHAR(16) UNIQUE NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_en\" VARCHAR(100) NOT NULL DEFAULT ''"
            ")"
        ),
        (
            'CREATE TABLE "subject_coefficient" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"level_code\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"track_code" VARCHAR(12) DEFAULT null, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"coefficient" NUMERIC(5, 2) NOT NULL DEFAULT 0, '
            '"weekly_hours" NUMERIC(4, 1) NOT NULL DEFAULT 0'
            ")"
        ),
        (
            'CREATE TABLE "school_year" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"label\" VARCHAR(9) UNIQUE NOT NULL DEFAULT '', "
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        (
            'CREATE TABLE "term" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER DEFAULT null, '
            '"number" INTEGER NOT NULL DEFAULT 0, '
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX term_school_year_id ON "term" ("school_year_id")',
        (
            'CREATE TABLE "holiday" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"tenant_id" INTEGER DEFAULT null, '
            "\"name_fr\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX holiday_school_year_id ON "holiday" ("school_year_id")',
        (
            'CREATE TABLE "room" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"name\" VARCHAR(60) NOT NULL DEFAULT '', "
            '"capacity" INTEGER NOT NULL DEFAULT 40'
            ")"
        ),
        'CREATE INDEX room_region_id ON "room" ("region_id")',
        'CREATE INDEX room_school_id ON "room" ("school_id")',
        (
            'CREATE TABLE "school_class" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            "\"level_code\" VARCHAR(8) NOT NULL DEFAULT '', "
            '"track_code" VARCHAR(12) DEFAULT null, '
            "\"name\" VARCHAR(60) NOT NULL DEFAULT '', "
            '"homeroom_teacher_id" INTEGER DEFAULT null, '
            '"capacity" INTEGER NOT NULL DEFAULT 45'
            ")"
        ),
        'CREATE INDEX school_class_region_id ON "school_class" ("region_id")',
        'CREATE INDEX school_class_school_id ON "school_class" ("school_id")',
        'CREATE INDEX school_class_school_year_id ON "school_class" ("school_year_id")',
        (
            'CREATE TABLE "student" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            "\"national_code\" VARCHAR(10) UNIQUE NOT NULL DEFAULT '', "
            '"person_id" INTEGER DEFAULT null, '
            "\"first_name\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"last_name\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"first_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            "\"last_name_ar\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"birth_date" DATE DEFAULT null, '
            "\"gender\" VARCHAR(1) NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp'
            ")"
        ),
        'CREATE INDEX student_region_id ON "student" ("region_id")',
        'CREATE INDEX student_school_id ON "student" ("school_id")',
        'CREATE INDEX student_person_id ON "student" ("person_id")',
        (
            'CREATE TABLE "guardianship" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"relation\" VARCHAR(16) NOT NULL DEFAULT 'guardian'"
            ")"
        ),
        'CREATE INDEX guardianship_region_id ON "guardianship" ("region_id")',
        'CREATE INDEX guardianship_school_id ON "guardianship" ("school_id")',
        'CREATE INDEX guardianship_student_id ON "guardianship" ("student_id")',
        'CREATE INDEX guardianship_person_id ON "guardianship" ("person_id")',
        (
            'CREATE TABLE "staff" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"staff_number\" VARCHAR(12) UNIQUE NOT NULL DEFAULT '', "
            "\"grade\" VARCHAR(40) NOT NULL DEFAULT ''"
            ")"
        ),
        'CREATE INDEX staff_region_id ON "staff" ("region_id")',
        'CREATE INDEX staff_school_id ON "staff" ("school_id")',
        (
            'CREATE TABLE "enrolment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"student_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_year_id" INTEGER NOT NULL DEFAULT 0, '
            '"starts_on" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"ends_on" DATE DEFAULT null, '
            "\"status\" VARCHAR(16) NOT NULL DEFAULT 'active'"
            ")"
        ),
        'CREATE INDEX enrolment_region_id ON "enrolment" ("region_id")',
        'CREATE INDEX enrolment_school_id ON "enrolment" ("school_id")',
        'CREATE INDEX enrolment_student_id ON "enrolment" ("student_id")',
        'CREATE INDEX enrolment_class_id ON "enrolment" ("class_id")',
        (
            'CREATE TABLE "teaching_assignment" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"school_year_id" INTEGER NOT NULL DEFAULT 0'
            ")"
        ),
        'CREATE INDEX teaching_assignment_region_id ON "teaching_assignment" ("region_id")',
        'CREATE INDEX teaching_assignment_school_id ON "teaching_assignment" ("school_id")',
        'CREATE INDEX teaching_assignment_person_id ON "teaching_assignment" ("person_id")',
        'CREATE INDEX teaching_assignment_class_id ON "teaching_assignment" ("class_id")',
        (
            'CREATE TABLE "timetable_slot" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"class_id" INTEGER NOT NULL DEFAULT 0, '
            "\"subject_code\" VARCHAR(16) NOT NULL DEFAULT '', "
            '"teacher_id" INTEGER NOT NULL DEFAULT 0, '
            '"room_id" INTEGER DEFAULT null, '
            '"weekday" INTEGER NOT NULL DEFAULT 0, '
            '"starts_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"ends_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"valid_from" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"valid_to" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX timetable_slot_region_id ON "timetable_slot" ("region_id")',
        'CREATE INDEX timetable_slot_school_id ON "timetable_slot" ("school_id")',
        'CREATE INDEX timetable_slot_class_id ON "timetable_slot" ("class_id")',
        'CREATE INDEX timetable_slot_teacher_id ON "timetable_slot" ("teacher_id")',
        'CREATE INDEX timetable_slot_room_id ON "timetable_slot" ("room_id")',
        (
            'CREATE TABLE "duty_slot" ('
            '"region_id" INTEGER NOT NULL DEFAULT 0, '
            '"province_id" INTEGER NOT NULL DEFAULT 0, '
            '"school_id" INTEGER NOT NULL DEFAULT 0, '
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER NOT NULL DEFAULT 0, '
            "\"label\" VARCHAR(100) NOT NULL DEFAULT '', "
            '"weekday" INTEGER NOT NULL DEFAULT 0, '
            '"starts_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"ends_at" TIME NOT NULL DEFAULT CURRENT_TIME, '
            '"valid_from" DATE NOT NULL DEFAULT CURRENT_DATE, '
            '"valid_to" DATE NOT NULL DEFAULT CURRENT_DATE'
            ")"
        ),
        'CREATE INDEX duty_slot_region_id ON "duty_slot" ("region_id")',
        'CREATE INDEX duty_slot_school_id ON "duty_slot" ("school_id")',
        'CREATE INDEX duty_slot_person_id ON "duty_slot" ("person_id")',
        (
            'CREATE TABLE "calendar_feed" ('
            '"id" INTEGER PRIMARY KEY NOT NULL, '
            '"person_id" INTEGER UNIQUE NOT NULL DEFAULT 0, '
            "\"token_hash\" VARCHAR(64) UNIQUE NOT NULL DEFAULT '', "
            '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
            '"active" BOOLEAN NOT NULL DEFAULT true'
            ")"
        ),
    ),
}

#: Tables this migration creates (each granted to the application role here).
CREATED = (
    "level",
    "track",
    "subject",
    "subject_coefficient",
    "school_year",
    "term",
    "holiday",
    "room",
    "school_class",
    "student",
    "guardianship",
    "staff",
    "enrolment",
    "teaching_assignment",
    "timetable_slot",
    "duty_slot",
    "calendar_feed",
)
#: Tables owned by a school: row-level security.
SCOPED = (
    "room",
    "school_class",
    "student",
    "guardianship",
    "staff",
    "enrolment",
    "teaching_assignment",
    "timetable_slot",
    "duty_slot",
)


async def forwards(m: Migrator) -> None:
    """Create the tables, their constraints, row-level security, grants and the national reference data."""
    await m.ddl(TABLES)
    await m.sql(
        'CREATE UNIQUE INDEX subject_coefficient_unique ON "subject_coefficient" '
        "(COALESCE(tenant_id, 0), level_code, COALESCE(track_code, ''), subject_code)"
    )
    await m.sql('CREATE UNIQUE INDEX enrolment_one_open ON "enrolment" (student_id) WHERE ends_on IS NULL')
    await m.sql('CREATE UNIQUE INDEX guardianship_unique ON "guardianship" (student_id, person_id)')
    await m.sql(
        'CREATE UNIQUE INDEX teaching_assignment_unique ON "teaching_assignment" '
        "(class_id, subject_code, school_year_id)"
    )
    await m.sql('CREATE UNIQUE INDEX school_class_name ON "school_class" (school_id, school_year_id, name)')
    await m.sql('CREATE UNIQUE INDEX room_name ON "room" (school_id, name)')
    await m.sql('CREATE INDEX timetable_slot_day ON "timetable_slot" (weekday, school_id)')
    for table in SCOPED:
        await m.enable_rls(table)
    for table in CREATED:
        await m.grant_app(table)
    if m.dialect == "postgres":
        # A teacher may teach in two schools; a director sees only their own school's slots, so
        # the clash check asks this narrow function, which answers across schools for one teacher.
        await m.sql(
            "CREATE FUNCTION madrasa_teacher_busy(p_teacher integer, p_weekday integer, p_start time, "
            "p_end time, p_from date, p_to date, p_exclude integer) "
            "RETURNS TABLE (school_id integer, starts_at time, ends_at time) "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "RETURN QUERY SELECT s.school_id, s.starts_at, s.ends_at FROM timetable_slot s "
            "WHERE s.teacher_id = p_teacher AND s.weekday = p_weekday AND s.starts_at < p_end "
            "AND p_start < s.ends_at AND s.valid_from <= p_to AND p_from <= s.valid_to "
            "AND s.id <> COALESCE(p_exclude, 0); "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); END $$"
        )
        # Pupil codes are unique nationally; a school must be told a code is taken even when the
        # pupil lives in a region it cannot see. The answer is yes or no, nothing more.
        await m.sql(
            "CREATE FUNCTION madrasa_pupil_code_taken(p_code varchar) RETURNS boolean LANGUAGE plpgsql VOLATILE "
            "SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); found boolean; "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "SELECT EXISTS (SELECT 1 FROM student WHERE national_code = p_code) INTO found; "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); RETURN found; END $$"
        )
    await m.executemany(
        "INSERT INTO level (code, cycle, rank, name_ar, name_fr, name_en) VALUES ({}, {}, {}, {}, {}, {})",
        reference.LEVELS,
    )
    await m.executemany(
        "INSERT INTO track (code, levels, name_ar, name_fr, name_en) VALUES ({}, {}, {}, {}, {})", reference.TRACKS
    )
    await m.executemany(
        "INSERT INTO subject (code, name_ar, name_fr, name_en) VALUES ({}, {}, {}, {})", reference.SUBJECTS
    )
    await m.executemany(
        "INSERT INTO subject_coefficient (tenant_id, level_code, track_code, subject_code, coefficient, weekly_hours) "
        "VALUES (NULL, {}, {}, {}, {}, {})",
        [(level, track, subject, _decimal(c), _decimal(h)) for level, track, subject, c, h in reference.coefficients()],
    )
    label, starts, ends = reference.SCHOOL_YEAR
    await m.execute(
        SQL(
            "INSERT INTO school_year (label, starts_on, ends_on) VALUES ({}, {}, {})",
            label,
            date.fromisoformat(starts),
            date.fromisoformat(ends),
        )
    )
    await m.executemany(
        "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
        "SELECT id, NULL, {}, {}, {} FROM school_year WHERE label = {}",
        [(number, date.fromisoformat(s), date.fromisoformat(e), label) for number, s, e in reference.TERMS],
    )
    await m.executemany(
        "INSERT INTO holiday (school_year_id, tenant_id, name_fr, name_ar, starts_on, ends_on) "
        "SELECT id, NULL, {}, {}, {}, {} FROM school_year WHERE label = {}",
        [(fr, ar, date.fromisoformat(s), date.fromisoformat(e), label) for fr, ar, s, e in reference.HOLIDAYS],
    )


def _decimal(value: float) -> Decimal:
    """A coefficient or a number of hours as the exact decimal it reads as (``2.5``, not a float)."""
    return Decimal(repr(value))
