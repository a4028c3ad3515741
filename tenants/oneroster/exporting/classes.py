"""courses.csv and classes.csv: a class → a homeroom class (course: its level) plus one scheduled class per
subject taught or assessed in it (course: subject × level, ``metadata.homeroomClass`` naming the homeroom)."""

from __future__ import annotations

from typing import Any

from tenants.oneroster import mapping
from tenants.oneroster.exporting.base import ExporterBase, key

CLASS_COLUMNS = ("id", "school_id", "school_year_id", "level_code", "track_code", "name", "homeroom_teacher_id")
ASSIGNMENT_COLUMNS = ("id", "person_id", "class_id", "subject_code", "school_year_id")


class ClassesExport(ExporterBase):
    """Classes, the subjects taught in them, and their courses."""

    # set by the other parts
    slug: dict[int, str]
    schools: list[int]
    region_of: dict[int, int]
    course_org: str
    years: dict[int, dict[str, Any]]
    terms_of: dict[tuple[int, int], list[dict[str, Any]]]
    term_sid: dict[int, str]

    async def read_classes(self) -> None:
        """The schools' classes: sets ``classes``, ``class_by_id`` and ``year_ids``."""
        self.classes = await self.read_schools("school_class", CLASS_COLUMNS, self.schools)
        self.class_by_id: dict[int, dict[str, Any]] = {c["id"]: c for c in self.classes}
        self.year_ids: set[int] = {c["school_year_id"] for c in self.classes}

    async def read_teaching(self) -> None:
        """Levels, subjects and who teaches what where: sets ``levels``, ``subjects`` and ``assignments``."""
        self.levels = {r["code"]: r for r in await self.db.fetch("SELECT code, name_fr, name_ar FROM level")}
        self.subjects = {
            r["code"]: r for r in await self.db.fetch("SELECT code, name_fr, name_ar, name_en FROM subject")
        }
        self.assignments = [
            a
            for a in await self.read_schools("teaching_assignment", ASSIGNMENT_COLUMNS, self.schools)
            if a["class_id"] in self.class_by_id
        ]

    def class_sid(self, class_id: int) -> str:
        """A class's sourcedId, from its school, year and name."""
        klass = self.class_by_id[class_id]
        label = self.years[klass["school_year_id"]]["label"]
        return f"class-{key(self.slug[klass['school_id']], label, klass['name'])}"

    def term_ids(self, klass: dict[str, Any]) -> str:
        """The sessions a class runs in: its region's terms of the year."""
        terms = self.terms_of.get((klass["school_year_id"], self.region_of[klass["school_id"]]), [])
        return ",".join(self.term_sid[t["id"]] for t in terms) or f"year-{self.years[klass['school_year_id']]['label']}"

    def course(self, klass: dict[str, Any], subject: str | None) -> str:
        """The course of a class (its level) or of a subject taught in it, added once to ``courses``."""
        label = self.years[klass["school_year_id"]]["label"]
        level = klass["level_code"]
        sid = f"course-{label}-{level}" + (f"-{subject}" if subject else "")
        if sid not in self.courses:
            lvl = self.levels.get(level, {"name_fr": level, "name_ar": ""})
            row = {
                "sourcedId": sid,
                "schoolYearSourcedId": f"year-{label}",
                "title": lvl["name_fr"],
                "courseCode": level,
                "grades": mapping.LEVEL_GRADES.get(level, ""),
                "orgSourcedId": self.course_org,
                "metadata.titleAr": lvl["name_ar"],
            }
            if subject:
                sub = self.subjects.get(subject, {"name_fr": subject, "name_ar": "", "name_en": subject})
                row.update(
                    title=f"{sub['name_fr']} — {lvl['name_fr']}",
                    courseCode=subject,
                    subjects=(sub["name_en"] or sub["name_fr"]).replace(",", " "),
                    subjectCodes=subject,
                )
                row["metadata.titleAr"] = f"{sub['name_ar']} — {lvl['name_ar']}".strip(" —")
            self.courses[sid] = row
        return sid

    def class_rows(self, assessed: set[tuple[int, str]]) -> list[dict[str, str]]:
        """Homeroom classes, then the scheduled ones (subjects taught, or ``assessed`` as (class, subject))."""
        self.courses: dict[str, dict[str, str]] = {}
        self.scheduled = sorted({(a["class_id"], a["subject_code"]) for a in self.assignments} | assessed)
        rows: list[dict[str, str]] = []
        for klass in self.classes:
            rows.append(
                {
                    "sourcedId": self.class_sid(klass["id"]),
                    "title": klass["name"],
                    "grades": mapping.LEVEL_GRADES.get(klass["level_code"], ""),
                    "courseSourcedId": self.course(klass, None),
                    "classCode": klass["name"],
                    "classType": "homeroom",
                    "schoolSourcedId": self.slug[klass["school_id"]],
                    "termSourcedIds": self.term_ids(klass),
                    "metadata.track": klass["track_code"] or "",
                }
            )
        for class_id, subject in self.scheduled:
            klass = self.class_by_id[class_id]
            rows.append(
                {
                    "sourcedId": f"{self.class_sid(class_id)}-{subject}",
                    "title": f"{klass['name']} {subject}",
                    "grades": mapping.LEVEL_GRADES.get(klass["level_code"], ""),
                    "courseSourcedId": self.course(klass, subject),
                    "classCode": f"{klass['name']}-{subject}",
                    "classType": "scheduled",
                    "schoolSourcedId": self.slug[klass["school_id"]],
                    "termSourcedIds": self.term_ids(klass),
                    "subjectCodes": subject,
                    "metadata.homeroomClass": self.class_sid(class_id),
                }
            )
        return rows
