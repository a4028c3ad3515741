"""Isolation samples for taking a role away (``POST /api/v1/people/{person_id}/roles/remove``).

The person is the foreign school's teacher and the node the foreign school: from the home region, under either
prefix, it must answer 403 or 404 and take nothing away (the role-removal flows are tested in
``tests/test_people_roles.py`` and ``tests/test_cross_process.py``).
"""

from __future__ import annotations

from typing import Any

FOREIGN = "lycee-moulay-youssef"

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/people/{person_id:int}/roles/remove"): {
        "role": "teacher",
        "tenant": FOREIGN,
        "reason": "isolation test",
    },
}


def foreign_values(world: Any) -> dict[str, Any]:
    """The foreign school's teacher, as a person."""
    return {"person_id": world.objects[FOREIGN]["teacher_id"]}
