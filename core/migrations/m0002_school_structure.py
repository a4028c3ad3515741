"""School structure: reference data, classes, rooms, pupils, guardians, staff, enrolments, timetables."""

from core.migrate import Migrator
from core.school import reference
from core.school.tables import SCHOOL_TABLES, SCOPED_TABLES


def _q(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


async def forwards(m: Migrator) -> None:
    """Create the tables, their constraints, row-level security and the national reference data."""
    await m.create_tables(*SCHOOL_TABLES)
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
    for table in SCOPED_TABLES:
        await m.enable_rls(table._meta.tablename)
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
    for code, cycle, rank, ar, fr, en in reference.LEVELS:
        await m.sql(
            "INSERT INTO level (code, cycle, rank, name_ar, name_fr, name_en) VALUES "
            f"({_q(code)}, {_q(cycle)}, {rank}, {_q(ar)}, {_q(fr)}, {_q(en)})"
        )
    for code, levels, ar, fr, en in reference.TRACKS:
        await m.sql(
            "INSERT INTO track (code, levels, name_ar, name_fr, name_en) VALUES "
            f"({_q(code)}, {_q(levels)}, {_q(ar)}, {_q(fr)}, {_q(en)})"
        )
    for code, ar, fr, en in reference.SUBJECTS:
        await m.sql(
            f"INSERT INTO subject (code, name_ar, name_fr, name_en) VALUES ({_q(code)}, {_q(ar)}, {_q(fr)}, {_q(en)})"
        )
    for level, track, subject, coefficient, hours in reference.coefficients():
        await m.sql(
            "INSERT INTO subject_coefficient (tenant_id, level_code, track_code, subject_code, coefficient, "
            f"weekly_hours) VALUES (NULL, {_q(level)}, {_q(track)}, {_q(subject)}, {coefficient}, {hours})"
        )
    label, starts, ends = reference.SCHOOL_YEAR
    await m.sql(f"INSERT INTO school_year (label, starts_on, ends_on) VALUES ({_q(label)}, {_q(starts)}, {_q(ends)})")
    for number, t_start, t_end in reference.TERMS:
        await m.sql(
            "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
            f"SELECT id, NULL, {number}, {_q(t_start)}, {_q(t_end)} FROM school_year WHERE label = {_q(label)}"
        )
    for fr, ar, h_start, h_end in reference.HOLIDAYS:
        await m.sql(
            "INSERT INTO holiday (school_year_id, tenant_id, name_fr, name_ar, starts_on, ends_on) "
            f"SELECT id, NULL, {_q(fr)}, {_q(ar)}, {_q(h_start)}, {_q(h_end)} FROM school_year "
            f"WHERE label = {_q(label)}"
        )
