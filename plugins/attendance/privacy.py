"""What the attendance module holds about people and pupils, and how long it keeps family notices.

* ``madrasa_personal_data``: a pupil's absences and lateness, justifications (with their documents),
  the notices sent to the family and the alerts raised; a person's mobile number and the justifications
  they submitted;
* ``madrasa_retention_purge``: the region's notices older than the ``notices`` cutoff.

Both run in the caller's transaction (platform scope).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.plugin_api import SQL, Database, DataFile, DataSection, DataSubject, in_


async def personal_data(db: Database, subject: DataSubject) -> list[DataSection]:
    """Attendance records about the pupils and the person."""
    sections: list[DataSection] = []
    if subject.student_ids:
        ids = in_(list(subject.student_ids))
        marks = await db.fetch(
            "SELECT student_id, on_date, kind, minutes, justified FROM attendance_mark WHERE student_id IN {} "
            "ORDER BY on_date, id",
            ids,
        )
        justifications = await db.fetch(
            "SELECT id, student_id, reason_code, note, state, created_at, reviewed_at, review_note, file_key, "
            "file_type, school_id FROM attendance_justification WHERE student_id IN {} ORDER BY id",
            ids,
        )
        notices = await db.fetch(
            "SELECT student_id, on_date, kind, status, created_at, sent_at, channels FROM attendance_notice "
            "WHERE student_id IN {} ORDER BY id",
            ids,
        )
        alerts = await db.fetch(
            "SELECT student_id, minutes, created_at FROM attendance_alert WHERE student_id IN {} ORDER BY id", ids
        )
        files = [
            DataFile(j["file_key"], f"justification-{j['id']}", j["school_id"]) for j in justifications if j["file_key"]
        ]
        rows = [{k: v for k, v in j.items() if k not in ("file_key", "school_id")} for j in justifications]
        sections += [
            DataSection("attendance.absences", [dict(r) for r in marks], "Absences and lateness."),
            DataSection("attendance.justifications", rows, "Justifications (documents in files/).", files),
            DataSection("attendance.notices", [dict(r) for r in notices], "Notices sent to the family."),
            DataSection("attendance.alerts", [dict(r) for r in alerts], "Alerts about unjustified absences."),
        ]
    if subject.person_id is not None:
        contact = await db.fetch(
            "SELECT phone, updated_at FROM attendance_contact WHERE person_id = {}", subject.person_id
        )
        submitted = await db.fetch(
            "SELECT id, student_id, reason_code, note, state, created_at FROM attendance_justification "
            "WHERE submitted_by = {} ORDER BY id",
            subject.person_id,
        )
        sections += [
            DataSection("attendance.contact", [dict(r) for r in contact], "Mobile number for SMS notices."),
            DataSection("attendance.submitted", [dict(r) for r in submitted], "Justifications you submitted."),
        ]
    return sections


async def retention_purge(db: Database, region_id: int, cutoffs: dict[str, Any]) -> dict[str, int]:
    """Delete the region's family notices created before the ``notices`` cutoff; returns their count."""
    before: datetime | None = cutoffs.get("notices")
    if before is None:
        return {}
    where = SQL("region_id = {} AND created_at < {}", region_id, before)
    count = int(await db.fetchval(SQL("SELECT COUNT(*) FROM attendance_notice WHERE {}", where)) or 0)
    if count:
        await db.execute(SQL("DELETE FROM attendance_notice WHERE {}", where))
    return {"notices": count}
