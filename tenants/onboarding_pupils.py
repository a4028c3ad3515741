"""Onboarding pupils and guardians: staged in temporary tables, checked and written set by set.

Each row is checked by the shared pupil check (:func:`core.school.pupil_rows.check_pupil`, through
:func:`tenants.onboarding_rows.check_student`) and staged; duplicates within the file, classes,
pupil codes registered anywhere on the platform and existing guardians are then found by the
shared set-based checks over the staging tables (:func:`core.school.pupil_staging.check_staged_pupils`,
which a director's import runs too), and the writes are ``INSERT … SELECT`` from them. A pupil
already registered in the same school with the same details is ``unchanged``.
"""

from __future__ import annotations

from datetime import date
from typing import IO, Any

from core.db import Database
from core.school import guardians
from core.school.guardians import PendingMail, known_to
from core.school.pupil_staging import PupilChecks, check_staged_pupils, duplicate_codes, stage_pupil
from core.school.service import current_year
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
from tenants.onboarding_rows import MESSAGES, StudentRow, check_student
from tenants.onboarding_staging import Stage, stage_rows, typed

#: Region onboarding's findings: a pupil already registered identically in the same school is unchanged.
ONBOARDING_CHECKS = PupilChecks(messages=MESSAGES, existing="merge")


async def students(
    actor: Actor, stream: IO[bytes], *, write: bool, progress: Progress | None, sink: IO[bytes] | None = None
) -> Report:
    db = actor.db
    errors = ErrorLog(sink)
    tree = await load_tree(db, actor.region)
    stage = Stage(db, "onb_student", "onb_guardian")
    await stage.create()
    today = date.today()

    def add(line: int, cells: list[str], columns: dict[str, int]) -> None:
        row: StudentRow
        row, problems = check_student(line, cells, columns, today)
        errors.extend(problems)
        school = tree.school(row.school) if row.school else None
        if row.school and school is None:
            errors.add(tree.school_problem(line, row.school))
        stage_pupil(stage, row, school)

    rows = await stage_rows("students", stream, stage, errors, progress, add)
    if isinstance(rows, Report):
        return rows
    await stage.index()
    year = await current_year(db)
    await duplicate_codes(db, errors)
    await check_staged_pupils(db, actor.scope, errors, year, ONBOARDING_CHECKS, actor.region)
    if progress:
        await progress(rows, rows, "checked")
    known = known_to(actor.region, SQL("g.person_id"))
    counts = await db.fetchrow(
        SQL(
            "SELECT (SELECT COUNT(*) FROM onb_student WHERE state IS NULL) AS new_students, "
            "(SELECT COUNT(*) FROM onb_student WHERE state = 'unchanged') AS unchanged, "
            "(SELECT COUNT(DISTINCT email) FROM onb_guardian WHERE person_id IS NULL) AS new_guardians, "
            "(SELECT COUNT(*) FROM onb_student WHERE state IS NULL AND class_id IS NOT NULL) AS enrolments",
        )
    )
    assert counts is not None
    # links to write: every guardian of a new pupil or new guardian, and missing links of existing pupils;
    # a guardian with an account but unknown to the region is invited instead
    links = int(
        await db.fetchval(
            SQL(
                "SELECT COUNT(*) FROM onb_guardian g JOIN onb_student s ON s.line = g.line "
                "WHERE (g.person_id IS NULL OR {}) AND (s.student_id IS NULL OR g.person_id IS NULL OR "
                "NOT EXISTS (SELECT 1 FROM guardianship x WHERE x.student_id = s.student_id "
                "AND x.person_id = g.person_id))",
                known,
            )
        )
        or 0
    )
    invitations = await _invitations_due(db, known)
    created = {
        "students": int(counts["new_students"]),
        "guardians": int(counts["new_guardians"]),
        "guardian_links": links,
        "guardian_invitations": len(invitations),
        "enrolments": int(counts["enrolments"]),
    }
    bad = errors.lines()
    sample = [
        SampleRow(
            r["line"],
            r["code"],
            f"{r['last_name']} {r['first_name']}".strip(),
            "error" if r["line"] in bad else (r["state"] or "new"),
        )
        for r in await db.fetch(
            "SELECT line, code, last_name, first_name, state FROM onb_student ORDER BY line LIMIT {}", SAMPLE_ROWS
        )
    ]
    values = {"rows": rows, "created": created, "unchanged": int(counts["unchanged"]), "sample": sample}
    if errors.count or not write:
        return make_report("students", errors, **values)
    at = now()
    region = typed(db, actor.region.id, "integer")
    await db.execute(
        SQL(
            "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
            "first_name_ar, last_name_ar, birth_date, gender, created_at) "
            "SELECT {}, province_id, school_id, code, first_name, last_name, first_name_ar, last_name_ar, "
            "birth_date, gender, {} FROM onb_student WHERE student_id IS NULL ORDER BY line",
            region,
            typed(db, at, "timestamptz"),
        )
    )
    await db.execute(
        "UPDATE onb_student SET student_id = st.id, state = 'new' FROM student st "
        "WHERE st.national_code = onb_student.code AND onb_student.student_id IS NULL"
    )
    if progress:
        await progress(rows, rows, "pupils written")
    await db.execute(
        SQL(
            "INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, "
            "starts_on, status) SELECT {}, province_id, school_id, student_id, class_id, {}, {}, 'active' "
            "FROM onb_student WHERE state = 'new' AND class_id IS NOT NULL",
            region,
            typed(db, year["id"], "integer"),
            typed(db, today, "date"),
        )
    )
    actor.guardian_invitations = await _invite(actor, known)
    await db.execute(
        SQL(
            "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
            "SELECT g.email, NULL, g.name, g.name_ar, 'ar', {}, {} FROM onb_guardian g WHERE g.person_id IS NULL "
            "AND g.name <> '' AND g.key = "
            "(SELECT MIN(h.key) FROM onb_guardian h WHERE h.email = g.email AND h.name <> '')",
            typed(db, True, "boolean"),
            typed(db, at, "timestamptz"),
        )
    )
    await db.execute(
        "UPDATE onb_guardian SET person_id = p.id FROM person p WHERE p.email = onb_guardian.email "
        "AND onb_guardian.person_id IS NULL"
    )
    await db.execute(
        SQL(
            "INSERT INTO guardianship (region_id, province_id, school_id, student_id, person_id, relation) "
            "SELECT {}, s.province_id, s.school_id, s.student_id, g.person_id, g.relation FROM onb_guardian g "
            "JOIN onb_student s ON s.line = g.line WHERE NOT EXISTS (SELECT 1 FROM guardianship x "
            "WHERE x.student_id = s.student_id AND x.person_id = g.person_id)",
            region,
        )
    )
    await db.execute(
        SQL(
            "INSERT INTO membership (person_id, role, tenant_id, created_at) "
            "SELECT DISTINCT g.person_id, 'parent', s.school_id, {} FROM onb_guardian g JOIN onb_student s "
            "ON s.line = g.line WHERE NOT EXISTS (SELECT 1 FROM membership m WHERE m.person_id = g.person_id "
            "AND m.role = 'parent' AND m.tenant_id = s.school_id)",
            typed(db, at, "timestamptz"),
        )
    )
    actor.services.grants.invalidate()
    return make_report("students", errors, committed=True, **values)


async def _invitations_due(db: Database, known: SQL) -> list[dict[str, Any]]:
    """Guardians with an account the region does not know, on pupils they are not linked or invited to yet."""
    return await db.fetch(
        SQL(
            "SELECT g.key, g.line, g.email, g.name, g.name_ar, g.relation, s.student_id, s.province_id, s.school_id "
            "FROM onb_guardian g JOIN onb_student s ON s.line = g.line WHERE g.person_id IS NOT NULL AND NOT {} "
            "AND (s.student_id IS NULL OR NOT EXISTS (SELECT 1 FROM guardian_invitation i "
            "WHERE i.student_id = s.student_id AND i.email = g.email AND i.used_at IS NULL AND i.expires_at > {})) "
            "ORDER BY g.key",
            known,
            typed(db, now(), "timestamptz"),
        )
    )


async def _invite(actor: Actor, known: SQL) -> list[PendingMail]:
    """Invite the guardians the region does not know (an account elsewhere) instead of linking them.

    As a director's link does: a pending link per pupil, mailed once the commit is over, and the guardianship
    and parent role only when the guardian accepts. Their staged rows are then dropped, so the set-based
    writes that follow link only guardians the region knows and new addresses.
    """
    db = actor.db
    mails: list[PendingMail] = []
    for row in await _invitations_due(db, known):
        student = {
            "id": row["student_id"],
            "region_id": actor.region.id,
            "province_id": row["province_id"],
            "school_id": row["school_id"],
        }
        _, pending = await guardians.invite(
            actor.request_context(),
            student,
            email=row["email"],
            full_name=row["name"],
            full_name_ar=row["name_ar"],
            relation=row["relation"],
            locale="ar",
        )
        mails.append(pending)
    await db.execute(
        SQL(
            "DELETE FROM onb_guardian WHERE key IN (SELECT g.key FROM onb_guardian g "
            "WHERE g.person_id IS NOT NULL AND NOT {})",
            known,
        )
    )
    return mails
