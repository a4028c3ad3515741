"""Onboarding staff: teachers and directors staged in a temporary table, checked and written set by set.

A staff number belongs to one person platform-wide; a person keeps their number. A row whose
person already has the membership (and number) is ``unchanged``. New directors are invited once
the commit is over (:attr:`Actor.new_directors`).
"""

from __future__ import annotations

from typing import IO

from core.sql import SQL
from tenants.onboarding_context import (
    SAMPLE_ROWS,
    Actor,
    ErrorLog,
    Progress,
    Report,
    SampleRow,
    load_tree,
    make_report,
    now,
)
from tenants.onboarding_rows import StaffRow, check_staff, problem
from tenants.onboarding_staging import Stage, distinct, sql_errors, stage_rows, typed


async def staff(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = ErrorLog(sink)
    tree = await load_tree(db, actor.region)
    stage = Stage(db, "onb_staff")
    await stage.create()

    def add(line: int, cells: list[str], columns: dict[str, int]) -> None:
        row: StaffRow
        row, problems = check_staff(line, cells, columns)
        errors.extend(problems)
        school = tree.school(row.school) if row.school else None
        if row.school and school is None:
            errors.add(tree.school_problem(line, row.school))
        stage.add(
            "onb_staff",
            (
                line,
                school[0] if school else None,
                school[1] if school else None,
                row.email,
                row.full_name,
                row.full_name_ar,
                row.role,
                row.staff_number,
                row.locale,
            ),
        )

    rows = await stage_rows("staff", stream, stage, errors, progress, add)
    if isinstance(rows, Report):
        return rows
    await stage.index()
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.email, (SELECT MIN(t.line) FROM onb_staff t WHERE t.email = s.email) AS first "
            "FROM onb_staff s WHERE s.email <> '' AND EXISTS "
            "(SELECT 1 FROM onb_staff t WHERE t.email = s.email AND t.line < s.line)"
        ),
        lambda r: problem(r["line"], "email", r["email"], "duplicate_row", first=r["first"]),
    )
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.staff_number, (SELECT MIN(t.line) FROM onb_staff t "
            "WHERE t.staff_number = s.staff_number) AS first FROM onb_staff s WHERE s.staff_number <> '' AND EXISTS "
            "(SELECT 1 FROM onb_staff t WHERE t.staff_number = s.staff_number AND t.line < s.line)"
        ),
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "same_number", first=r["first"]),
    )
    await db.execute("UPDATE onb_staff SET person_id = p.id FROM person p WHERE p.email = onb_staff.email")
    if db.dialect == "postgres":
        records = SQL(
            "SELECT * FROM madrasa_staff_records(ARRAY(SELECT staff_number FROM onb_staff WHERE staff_number <> '')"
            "::varchar[], ARRAY(SELECT person_id FROM onb_staff WHERE person_id IS NOT NULL)::integer[])"
        )
    else:
        records = SQL(
            "SELECT staff_number, person_id FROM staff WHERE staff_number IN (SELECT staff_number FROM onb_staff) "
            "OR person_id IN (SELECT person_id FROM onb_staff)"
        )
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.staff_number FROM onb_staff s JOIN ({}) r ON r.staff_number = s.staff_number "
            "WHERE s.staff_number <> '' AND r.person_id {} s.person_id",
            records,
            distinct(db),
        ),
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "number_taken"),
    )
    await sql_errors(
        db,
        errors,
        SQL(
            "SELECT s.line, s.staff_number FROM onb_staff s JOIN ({}) r ON r.person_id = s.person_id "
            "WHERE s.staff_number <> '' AND r.staff_number <> s.staff_number",
            records,
        ),
        lambda r: problem(r["line"], "staff_number", r["staff_number"], "other_number"),
    )
    await db.execute(
        SQL(
            "UPDATE onb_staff SET state = 'unchanged' WHERE person_id IS NOT NULL AND EXISTS (SELECT 1 "
            "FROM membership m WHERE m.person_id = onb_staff.person_id AND m.role = onb_staff.role "
            "AND m.tenant_id = onb_staff.school_id) AND (staff_number = '' OR staff_number IN "
            "(SELECT r.staff_number FROM ({}) r WHERE r.person_id = onb_staff.person_id))",
            records,
        )
    )
    counts = await db.fetchrow(
        "SELECT (SELECT COUNT(*) FROM onb_staff WHERE state IS NULL) AS new_rows, "
        "(SELECT COUNT(*) FROM onb_staff WHERE state = 'unchanged') AS unchanged, "
        "(SELECT COUNT(*) FROM onb_staff WHERE person_id IS NULL) AS new_people, "
        "(SELECT COUNT(*) FROM onb_staff WHERE state IS NULL AND role = 'school_director') AS directors"
    )
    assert counts is not None
    bad = errors.lines()
    sample = [
        SampleRow(r["line"], r["email"], r["full_name"], "error" if r["line"] in bad else (r["state"] or "new"))
        for r in await db.fetch(
            "SELECT line, email, full_name, state FROM onb_staff ORDER BY line LIMIT {}", SAMPLE_ROWS
        )
    ]
    values = {
        "rows": rows,
        "created": {
            "memberships": int(counts["new_rows"]),
            "people": int(counts["new_people"]),
            "directors": int(counts["directors"]),
        },
        "unchanged": int(counts["unchanged"]),
        "sample": sample,
    }
    if errors.count or not write:
        return make_report("staff", errors, **values)
    at = typed(db, now(), "timestamptz")
    await db.execute(
        SQL(
            "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
            "SELECT email, NULL, full_name, full_name_ar, locale, {}, {} FROM onb_staff WHERE person_id IS NULL",
            typed(db, True, "boolean"),
            at,
        )
    )
    await db.execute(
        "UPDATE onb_staff SET person_id = p.id FROM person p WHERE p.email = onb_staff.email "
        "AND onb_staff.person_id IS NULL"
    )
    actor.new_directors = [
        int(r["person_id"])
        for r in await db.fetch(
            "SELECT DISTINCT s.person_id FROM onb_staff s JOIN person p ON p.id = s.person_id "
            "WHERE s.state IS NULL AND s.role = 'school_director' AND p.password_hash IS NULL"
        )
    ]
    await db.execute(
        SQL(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) SELECT s.person_id, s.role, "
            "s.school_id, {} FROM onb_staff s WHERE s.state IS NULL AND NOT EXISTS (SELECT 1 FROM membership m "
            "WHERE m.person_id = s.person_id AND m.role = s.role AND m.tenant_id = s.school_id)",
            at,
        )
    )
    await db.execute(
        SQL(
            "INSERT INTO staff (region_id, province_id, school_id, person_id, staff_number, grade) "
            "SELECT {}, s.province_id, s.school_id, s.person_id, s.staff_number, '' FROM onb_staff s "
            "WHERE s.staff_number <> '' AND NOT EXISTS (SELECT 1 FROM ({}) r WHERE r.person_id = s.person_id)",
            typed(db, actor.region.id, "integer"),
            records,
        )
    )
    actor.services.grants.invalidate()
    return make_report("staff", errors, committed=True, **values)
