"""enrollments.csv and demographics.csv → enrolments, homeroom teachers, teaching assignments, birth dates."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from core.sql import SQL
from tenants.oneroster import mapping
from tenants.oneroster.bundle import Issue, tr
from tenants.oneroster.importing.base import ImporterBase


class EnrollmentsImport(ImporterBase):
    """Enrolments, teachers of classes and subjects, and pupils' demographics."""

    async def import_enrollments(self) -> None:
        """Pupils into classes (with dates), teachers onto their classes and subjects."""
        rows = self.bundle.rows.get("enrollments", [])
        open_in: dict[str, str] = {}
        ignored: dict[str, int] = defaultdict(int)
        for row in rows:
            klass = self.classes.get(row["classSourcedId"])
            if klass is None:
                continue
            school_node = self.orgs.get(row["schoolSourcedId"])
            if school_node is None or school_node.id != klass["school_id"]:
                self.error(
                    "enrollments", row, "schoolSourcedId", tr("the enrollment's school is not the class's school")
                )
                continue
            role = row["role"].casefold()
            user = row["userSourcedId"]
            if user in self.failed_users:
                continue
            if role == "student":
                if user not in self.pupils:
                    self.error(
                        "enrollments",
                        row,
                        "userSourcedId",
                        tr("{user!r} is enrolled as a student but is no pupil", user=user),
                    )
                    continue
                if klass["attached"]:
                    continue
                if not row.get("endDate"):
                    other = open_in.get(user)
                    if other is not None and other != row["classSourcedId"]:
                        self.error(
                            "enrollments",
                            row,
                            "classSourcedId",
                            tr(
                                "pupil {user!r} is also in {other!r} with no end date: "
                                "a pupil is in one class at a time",
                                user=user,
                                other=other,
                            ),
                        )
                        continue
                    open_in[user] = row["classSourcedId"]
                await self._enrolment(row, klass, self.pupils[user])
            elif role == "teacher":
                person = self.people.get(user)
                if person is None:
                    self.error(
                        "enrollments",
                        row,
                        "userSourcedId",
                        tr("{user!r} teaches but was not imported as a person", user=user),
                    )
                    continue
                node = await self.ctx.services.tenants.by_id(klass["school_id"])
                assert node is not None
                await self._membership(person, "teacher", node)
                await self._teaching(row, klass, person)
            else:
                ignored[role] += 1
        for role, n in sorted(ignored.items()):
            self.warnings.append(
                Issue(
                    "enrollments.csv",
                    0,
                    "role",
                    tr("{n} {role} enrollment(s) have no place here: ignored", n=n, role=role),
                    "warning",
                )
            )

    async def _enrolment(self, row: dict[str, str], klass: dict[str, Any], pupil: dict[str, Any]) -> None:
        if pupil["school_id"] != klass["school_id"]:
            self.error("enrollments", row, "classSourcedId", tr("the pupil and the class belong to different schools"))
            return
        year_start = self.year_bounds.get(klass["year_id"], (date.today(), date.today()))[0]
        starts = date.fromisoformat(row["beginDate"]) if row.get("beginDate") else year_start
        ends = date.fromisoformat(row["endDate"]) if row.get("endDate") else None
        if ends is not None and ends < starts:
            self.error("enrollments", row, "endDate", tr("the enrollment ends before it begins"))
            return
        status = "active" if ends is None else "ended"
        where = self.scoped()
        previous = self.linked("enrollment", row["sourcedId"])
        found = None
        if previous is not None:
            found = await self.db.fetchval(SQL("SELECT id FROM enrolment WHERE id = {} AND {}", previous, where))
        if found is None:
            found = await self.db.fetchval(
                "SELECT id FROM enrolment WHERE student_id = {} AND class_id = {} AND starts_on = {}",
                pupil["id"],
                klass["id"],
                starts,
            )
        if found is None and ends is None:
            opened = await self.db.fetchrow(
                "SELECT id, class_id, starts_on FROM enrolment WHERE student_id = {} AND ends_on IS NULL", pupil["id"]
            )
            if opened is not None and opened["class_id"] == klass["id"]:
                found = opened["id"]
            elif opened is not None:
                closing = max(starts - timedelta(days=1), opened["starts_on"])
                await self.db.execute(
                    "UPDATE enrolment SET ends_on = {}, status = 'moved' WHERE id = {}", closing, opened["id"]
                )
        if found is not None:
            await self.db.execute(
                "UPDATE enrolment SET class_id = {}, school_year_id = {}, starts_on = {}, ends_on = {}, status = {} "
                "WHERE id = {}",
                klass["id"],
                klass["year_id"],
                starts,
                ends,
                status,
                found,
            )
            self.count("enrolments", "updated" if previous is not None else "linked")
        else:
            found = await self.db.fetchval(
                "INSERT INTO enrolment (region_id, province_id, school_id, student_id, class_id, school_year_id, "
                "starts_on, ends_on, status) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
                pupil["region_id"],
                pupil["province_id"],
                pupil["school_id"],
                pupil["id"],
                klass["id"],
                klass["year_id"],
                starts,
                ends,
                status,
            )
            self.count("enrolments", "created")
        await self.link("enrollment", row["sourcedId"], int(found), "enrolment")

    async def _teaching(self, row: dict[str, str], klass: dict[str, Any], person: int) -> None:
        if klass["homeroom"]:
            await self.db.execute("UPDATE school_class SET homeroom_teacher_id = {} WHERE id = {}", person, klass["id"])
            self.count("homeroomTeachers", "linked")
            await self.link("enrollment", row["sourcedId"], klass["id"], "homeroom")
            return
        subject = klass["subject"]
        if subject is None:
            self.error("enrollments", row, "classSourcedId", tr("the class's course names no subject"))
            return
        node = await self.ctx.services.tenants.by_id(klass["school_id"])
        assert node is not None
        found = await self.db.fetchval(
            "SELECT id FROM teaching_assignment WHERE person_id = {} AND class_id = {} AND subject_code = {} "
            "AND school_year_id = {}",
            person,
            klass["id"],
            subject,
            klass["year_id"],
        )
        if found is None:
            cols = node.scope_columns()
            found = await self.db.fetchval(
                "INSERT INTO teaching_assignment (region_id, province_id, school_id, person_id, class_id, "
                "subject_code, school_year_id) VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                person,
                klass["id"],
                subject,
                klass["year_id"],
            )
            self.count("assignments", "created")
        else:
            self.count("assignments", "linked")
        await self.link("enrollment", row["sourcedId"], int(found), "assignment")

    # -- demographics --------------------------------------------------------------------------

    async def import_demographics(self) -> None:
        """A pupil's birth date and sex (other users' demographics have no place here)."""
        skipped = 0
        for row in self.bundle.rows.get("demographics", []):
            pupil = self.pupils.get(row["sourcedId"])
            if pupil is None:
                skipped += 1
                continue
            born = date.fromisoformat(row["birthDate"]) if row.get("birthDate") else None
            gender = mapping.SEX_GENDER.get(row.get("sex", "").casefold(), "")
            await self.db.execute(
                "UPDATE student SET birth_date = {}, gender = {} WHERE id = {}", born, gender, pupil["id"]
            )
            self.count("demographics", "updated")
        if skipped:
            self.warnings.append(
                Issue(
                    "demographics.csv",
                    0,
                    "sourcedId",
                    tr("{skipped} row(s) are not pupils: ignored", skipped=skipped),
                    "warning",
                )
            )
