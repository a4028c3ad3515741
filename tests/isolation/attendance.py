"""Isolation samples for the attendance module's routes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from core.scope import Scope
from tests.isolation import Multipart

FOREIGN = "lycee-moulay-youssef"
PDF = b"%PDF-1.4\n% isolation\n"

BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/api/v1/attendance/sessions/{slot_id:int}/{on_date:date}"): {"entries": []},
    ("POST", "/api/v1/attendance/pupils/{student_id:int}/justifications"): Multipart(
        files={"file": ("x.pdf", PDF, "application/pdf")}, data={"absences": "1", "reason": "illness"}
    ),
    ("PUT", "/api/v1/attendance/me/phone"): {"phone": None},
    ("PUT", "/api/v1/attendance/reasons"): {"reasons": [{"code": "intrus", "label_fr": "Intrus"}]},
    ("PUT", "/api/v1/attendance/rules"): {"unjustified_hours": 1, "window_days": 30},
    ("POST", "/api/v1/attendance/justifications/{justification_id:int}/review"): {"decision": "accepted"},
    # portal forms (sent form-encoded)
    ("POST", "/attendance/sessions/{slot_id:int}/{on_date:date}"): {"status_1": "absent"},
    ("POST", "/attendance/pupils/{student_id:int}/justify"): {"absence": "1", "reason": "illness"},
    ("POST", "/attendance/justifications/{justification_id:int}/review"): {"decision": "accepted"},
}

# One's own phone number for SMS notices: a personal setting, not a tenant's object.
CREATES_AT_HOME = {("PUT", "/api/v1/attendance/me/phone")}


async def foreign_values(world: Any) -> dict[str, Any]:
    """A Monday of the foreign school's lesson, and a justification of one of its absences (created once)."""
    objects = world.objects[FOREIGN]
    if "attendance_justification_id" not in objects:
        db = world.services.db
        tenant = await world.services.tenants.by_slug(FOREIGN)
        cols = tenant.scope_columns()
        scope = [cols["region_id"], cols["province_id"], cols["school_id"]]
        now = datetime.now(UTC)
        day = date(2026, 10, 5)  # a Monday of the first term: the seeded lesson's weekday
        async with db.scoped(Scope.everything()):
            session = await db.fetchrow(
                "INSERT INTO attendance_session (region_id, province_id, school_id, slot_id, class_id, on_date, "
                "minutes, teacher_id, taken_by, taken_at, updated_at, version) "
                "VALUES ({}, {}, {}, {}, {}, {}, 120, {}, {}, {}, {}, 1) RETURNING id",
                *scope,
                objects["slot_id"],
                objects["class_id"],
                day,
                objects["teacher_id"],
                objects["teacher_id"],
                now,
                now,
            )
            justification = await db.fetchrow(
                "INSERT INTO attendance_justification (region_id, province_id, school_id, student_id, submitted_by, "
                "reason_code, note, file_key, file_type, file_size, state, created_at, review_note) "
                "VALUES ({}, {}, {}, {}, {}, 'illness', '', {}, 'application/pdf', 10, 'pending', {}, '') "
                "RETURNING id",
                *scope,
                objects["student_id"],
                objects["guardian_id"],
                f"t/{tenant.id}/justifications/isolation.pdf",
                now,
            )
            await db.execute(
                "INSERT INTO attendance_mark (region_id, province_id, school_id, session_id, class_id, student_id, "
                "on_date, kind, minutes, justification_id, justified) VALUES ({}, {}, {}, {}, {}, {}, {}, 'absent', "
                "120, {}, {})",
                *scope,
                session["id"],
                objects["class_id"],
                objects["student_id"],
                day,
                justification["id"],
                False,
            )
        objects["attendance_justification_id"] = justification["id"]
    return {"on_date": "2026-10-05", "justification_id": objects["attendance_justification_id"]}
