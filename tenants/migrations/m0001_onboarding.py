"""Onboarding: batches, school profiles, invitations (with RLS), and set-based national code lookups."""

from core.migrate import Migrator
from tenants.onboarding_tables import SCOPED_TABLES


async def forwards(m: Migrator) -> None:
    """Create the tables, their RLS policies, and ``madrasa_pupil_codes_taken(codes[])`` on PostgreSQL."""
    await m.create_tables(*SCOPED_TABLES)
    await m.sql('CREATE INDEX onboarding_batch_region_created ON "onboarding_batch" (region_id, created_at)')
    for table in SCOPED_TABLES:
        await m.enable_rls(table._meta.tablename)
    if m.dialect == "postgres":
        # The set-based twin of madrasa_pupil_code_taken: which of these codes exist anywhere on the
        # platform (codes only; the region that holds them stays hidden).
        await m.sql(
            "CREATE FUNCTION madrasa_pupil_codes_taken(p_codes varchar[]) RETURNS SETOF varchar "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "RETURN QUERY SELECT s.national_code FROM student s "
            "JOIN unnest(p_codes) c(code) ON c.code = s.national_code; "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); END $$"
        )
        # Staff numbers are national too: the staff records holding these numbers or belonging to these
        # people, anywhere (numbers and person ids only).
        await m.sql(
            "CREATE FUNCTION madrasa_staff_records(p_numbers varchar[], p_people integer[]) "
            "RETURNS TABLE (staff_number varchar, person_id integer) "
            "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
            "DECLARE previous text := current_setting('app.platform', true); "
            "BEGIN PERFORM set_config('app.platform', 'on', true); "
            "RETURN QUERY SELECT s.staff_number, s.person_id FROM staff s "
            "WHERE s.staff_number = ANY (p_numbers) OR s.person_id = ANY (p_people); "
            "PERFORM set_config('app.platform', COALESCE(previous, ''), true); END $$"
        )
