"""Grades: sheets, assessments, marks, policies, deadlines, closes, results, statistics, bulletins."""

from core.migrate import Migrator
from plugins.grades.tables import GRADES_TABLES, SCOPED_TABLES


async def forwards(m: Migrator) -> None:
    """Create the tables, their constraints, RLS, and the national policy."""
    await m.create_tables(*GRADES_TABLES)
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
    for table in SCOPED_TABLES:
        await m.enable_rls(table._meta.tablename)
    await m.sql(
        "INSERT INTO grade_policy (tenant_id, required_cc, absent_counts_as, excused_counts_as) "
        "VALUES (NULL, 3, 'zero', 'ignore')"
    )
    # National entry deadlines: the last day of each term.
    await m.sql(
        "INSERT INTO grade_deadline (tenant_id, term_id, entry_deadline) "
        "SELECT NULL, id, ends_on FROM term WHERE tenant_id IS NULL"
    )
