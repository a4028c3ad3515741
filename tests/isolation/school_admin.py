"""Isolation samples for the director's school management pages (import, pupils, classes, lessons).

Importing a file, registering a pupil and opening a class act on the caller's own school: at home they are
creations, tested in ``tests/test_school_manage_pages.py``; under a foreign prefix, or naming another
school's pupil, class or lesson, they must answer 403 or 404 like every route.
"""

from __future__ import annotations

from typing import Any

from tests.isolation import Multipart

PUPILS_CSV = (
    b"national_code;last_name;first_name;birth_date;gender;class\n"
    b"Z123456789;Isolation;Test;2010-01-01;F;NO-SUCH-CLASS\n"
)

BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/school/import"): Multipart(
        files={"file": ("eleves.csv", PUPILS_CSV, "text/csv")}, data={"action": "check"}
    ),
    ("POST", "/school/classes"): {"name": "ISOLATION-1", "level_code": "TC", "track_code": "TCS", "capacity": "30"},
    ("POST", "/school/pupils/new"): {
        "national_code": "Z987654321",
        "first_name": "Isolation",
        "last_name": "Test",
        "gender": "F",
    },
    ("POST", "/school/pupils/{student_id:int}/enrol"): {"class_id": "1"},
    ("POST", "/school/pupils/{student_id:int}/transfer"): {"to_school": "lycee-ibn-batouta"},
    ("POST", "/school/pupils/{student_id:int}/guardians"): {
        "email": "isolation.guardian@test.ma",
        "full_name": "Isolation Guardian",
        "relation": "mother",
    },
    ("POST", "/timetable/classes/{class_id:int}/slots"): {
        "weekday": "1",
        "starts_at": "08:00",
        "ends_at": "09:00",
        "subject_code": "MATH",
    },
    ("POST", "/timetable/classes/{class_id:int}/slots/{slot_id:int}/delete"): {},
}
CREATES_AT_HOME = {
    ("POST", "/school/import"),
    ("POST", "/school/classes"),
    ("POST", "/school/pupils/new"),
}
