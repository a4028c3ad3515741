"""What the grades module holds about a pupil, for the right of access (``madrasa_personal_data``).

Marks, subject averages, general averages and ranks, and the report cards with their PDF files. Runs in the
caller's read transaction (platform scope); every query filters by the pupils asked for.
"""

from __future__ import annotations

from typing import Any

from core.plugin_api import Database, DataFile, DataSection, DataSubject, in_


async def personal_data(db: Database, subject: DataSubject) -> list[DataSection]:
    """The pupils' marks, averages, ranks and report cards."""
    if not subject.student_ids:
        return []
    ids = in_(list(subject.student_ids))
    marks = await db.fetch(
        "SELECT m.student_id, a.subject_code, a.term_id, a.kind, a.title, a.scheduled_on, a.max_score, m.score, "
        "m.status, m.updated_at FROM grade_mark m JOIN grade_assessment a ON a.id = m.assessment_id "
        "WHERE m.student_id IN {} ORDER BY a.scheduled_on, a.id",
        ids,
    )
    subjects = await db.fetch(
        "SELECT student_id, term_id, subject_code, average, coefficient FROM grade_subject_result "
        "WHERE student_id IN {} ORDER BY term_id, subject_code",
        ids,
    )
    general = await db.fetch(
        "SELECT student_id, term_id, average, rank, ranked FROM grade_general_result WHERE student_id IN {} "
        "ORDER BY term_id",
        ids,
    )
    bulletins = await db.fetch(
        "SELECT id, student_id, term_id, locale, created_at, storage_key, school_id FROM grade_bulletin "
        "WHERE student_id IN {} ORDER BY id",
        ids,
    )
    rows: list[dict[str, Any]] = [{k: v for k, v in b.items() if k != "storage_key"} for b in bulletins]
    files = [DataFile(b["storage_key"], f"bulletin-{b['term_id']}-{b['id']}.pdf", b["school_id"]) for b in bulletins]
    return [
        DataSection("grades.marks", [dict(r) for r in marks], "Marks of every assessment."),
        DataSection("grades.subject_averages", [dict(r) for r in subjects], "Averages per subject and term."),
        DataSection("grades.general_averages", [dict(r) for r in general], "General averages and ranks per term."),
        DataSection("grades.bulletins", rows, "Report cards (the PDF files are in files/).", files),
    ]
