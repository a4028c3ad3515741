"""Neighbours inside the home school: another family, and a teacher of another class (created once).

No route samples here: ``tests/test_isolation.py`` and ``tests/test_files_api.py`` use these actors
to try the seeded family's and class's objects from inside the same school.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import link_guardian

HOME = "lycee-ibn-batouta"
PASSWORD = "correct-horse-42"
OTHER_FAMILY = f"guardian2.{HOME}@test.ma"
OTHER_CLASS_TEACHER = f"teacher2.{HOME}@test.ma"


async def _post(world: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.api("POST", path, as_=f"director.{HOME}@test.ma", tenant=HOME, json=body)
    assert response.status_code in (200, 201), f"{path}: {response.text}"
    return dict(response.json())


async def other_family(world: Any) -> str:
    """The guardian of a second pupil of the home school, in the seeded pupil's class."""
    objects = world.objects[HOME]
    if "other_guardian_id" not in objects:
        pupil = await _post(
            world,
            "/api/v1/school/students",
            {
                "national_code": "F000000077",
                "first_name": "Other",
                "last_name": "Family",
                "class_id": objects["class_id"],
            },
        )
        guardian = await link_guardian(world, HOME, pupil["id"], OTHER_FAMILY, "Other")
        await world.services.identity.set_password(guardian, PASSWORD)
        world.passwords[OTHER_FAMILY] = PASSWORD
        objects["other_student_id"] = pupil["id"]
        objects["other_guardian_id"] = guardian
    return OTHER_FAMILY


async def other_class_teacher(world: Any) -> str:
    """A teacher of the home school who teaches another class than the seeded one."""
    objects = world.objects[HOME]
    if "other_class_id" not in objects:
        await world.add_person(OTHER_CLASS_TEACHER, "teacher", HOME)
        teacher = await world.services.db.fetchval("SELECT id FROM person WHERE email = {}", OTHER_CLASS_TEACHER)
        other = await _post(
            world, "/api/v1/school/classes", {"name": "TEST-2", "level_code": "TC", "track_code": "TCS"}
        )
        await _post(
            world,
            "/api/v1/school/assignments",
            {"teacher_id": teacher, "class_id": other["id"], "subject_code": "MATH"},
        )
        objects["other_class_id"] = other["id"]
        objects["other_teacher_id"] = teacher
    return OTHER_CLASS_TEACHER
