"""enrollments.csv: pupils in their homeroom class and its scheduled classes, homeroom and subject teachers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from tenants.oneroster.exporting.base import ExporterBase, key, text
from tenants.oneroster.exporting.users import pupil_sid


class EnrollmentsExport(ExporterBase):
    """Who is in (or teaches) which class."""

    # set by the other parts
    slug: dict[int, str]
    classes: list[dict[str, Any]]
    class_by_id: dict[int, dict[str, Any]]
    assignments: list[dict[str, Any]]
    scheduled: list[tuple[int, str]]
    enrolments: list[dict[str, Any]]
    pupil_by_id: dict[int, dict[str, Any]]
    persons: dict[int, dict[str, Any]]
    person_roles: dict[int, list[tuple[str, str, str]]]
    class_sid: Callable[[int], str]
    person_sid: Callable[[int], str]

    def enrollment_rows(self) -> list[dict[str, str]]:
        """Pupils (homeroom, then each subject of it), homeroom teachers, then subject teachers."""
        slug = self.slug
        enrollments: list[dict[str, str]] = []
        subjects_of: dict[int, list[str]] = defaultdict(list)
        for class_id, subject in self.scheduled:
            subjects_of[class_id].append(subject)
        for e in self.enrolments:
            klass = self.class_by_id[e["class_id"]]
            base = {
                "schoolSourcedId": slug[klass["school_id"]],
                "userSourcedId": pupil_sid(self.pupil_by_id[e["student_id"]]),
                "role": "student",
                "beginDate": text(e["starts_on"]),
                "endDate": text(e["ends_on"]),
            }
            homeroom_sid = self.class_sid(e["class_id"])
            enrollment_sid = f"enr-{key(base['userSourcedId'], homeroom_sid, base['beginDate'])}"
            enrollments.append({"sourcedId": enrollment_sid, "classSourcedId": homeroom_sid, **base})
            for subject in subjects_of.get(e["class_id"], []):
                enrollments.append(
                    {"sourcedId": f"{enrollment_sid}-{subject}", "classSourcedId": f"{homeroom_sid}-{subject}", **base}
                )
        for klass in self.classes:
            teacher = klass["homeroom_teacher_id"]
            if teacher in self.persons and self.person_roles.get(teacher):
                enrollments.append(
                    {
                        "sourcedId": f"enr-{key('homeroom', self.class_sid(klass['id']))}",
                        "classSourcedId": self.class_sid(klass["id"]),
                        "schoolSourcedId": slug[klass["school_id"]],
                        "userSourcedId": self.person_sid(teacher),
                        "role": "teacher",
                        "primary": "true",
                    }
                )
        for a in self.assignments:
            klass = self.class_by_id[a["class_id"]]
            person = self.person_sid(a["person_id"])
            enrollments.append(
                {
                    "sourcedId": f"enr-{key(person, self.class_sid(a['class_id']), a['subject_code'])}",
                    "classSourcedId": f"{self.class_sid(a['class_id'])}-{a['subject_code']}",
                    "schoolSourcedId": slug[klass["school_id"]],
                    "userSourcedId": person,
                    "role": "teacher",
                    "primary": "true",
                }
            )
        return enrollments
