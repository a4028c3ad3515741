"""Isolation samples for the director's rooms and staff pages.

Adding a room, a teacher, a duty or a supervisor acts on the caller's own school: at home they are creations, tested in
``tests/test_staff_admin_pages.py``; under a foreign prefix, or naming another school's teacher, they must
answer 403 or 404 like every route.
"""

from __future__ import annotations

from typing import Any

FOREIGN = "lycee-moulay-youssef"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/school/supervisors"): {"email": "isolation.supervisor@test.ma", "full_name": "Isolation Supervisor"},
    ("POST", "/school/rooms"): {"name": "ISOLATION-ROOM", "capacity": "30"},
    ("POST", "/school/staff/teachers"): {
        "email": "isolation.teacher@test.ma",
        "full_name": "Isolation Teacher",
        "staff_number": "99887766",
    },
    ("POST", "/school/staff/duties"): {
        "teacher_id": "1",
        "label": "Isolation duty",
        "weekday": "6",
        "starts_at": "18:00",
        "ends_at": "19:00",
    },
    ("POST", "/school/staff/{teacher_id:int}/assignments"): {"class_id": "1", "subject_code": "MATH"},
}
CREATES_AT_HOME = {
    ("POST", "/school/rooms"),
    ("POST", "/school/staff/teachers"),
    ("POST", "/school/supervisors"),
    ("POST", "/school/staff/duties"),  # a foreign teacher in the body: see tests/test_staff_admin_pages.py
}


def foreign_values(world: Any) -> dict[str, Any]:
    """A teacher of the foreign school (seeded by the world)."""
    return {"teacher_id": world.objects[FOREIGN]["teacher_id"]}
