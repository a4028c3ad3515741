"""A narrow cross-region lookup of staff numbers (national, unique), like pupil codes."""

from core.migrate import Migrator

DEPENDS_ON = [("core", "m0002_school_structure")]


async def forwards(m: Migrator) -> None:
    """``madrasa_staff_owner(number, person)``: the person holding a number, or a person's own record."""
    if m.dialect != "postgres":
        return
    await m.sql(
        "CREATE FUNCTION madrasa_staff_owner(p_number varchar, p_person integer) RETURNS integer "
        "LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$ "
        "DECLARE previous text := current_setting('app.platform', true); owner integer; "
        "BEGIN PERFORM set_config('app.platform', 'on', true); "
        "SELECT person_id INTO owner FROM staff WHERE (p_number IS NOT NULL AND staff_number = p_number) "
        "OR (p_number IS NULL AND person_id = p_person) LIMIT 1; "
        "PERFORM set_config('app.platform', COALESCE(previous, ''), true); RETURN owner; END $$"
    )
