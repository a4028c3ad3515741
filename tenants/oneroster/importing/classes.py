"""courses.csv and classes.csv → subjects and classes (a scheduled class naming its homeroom adds a subject to it)."""

from __future__ import annotations

from typing import Any

from core.sql import SQL
from core.tenancy import TenantInfo
from tenants.oneroster import mapping
from tenants.oneroster.bundle import split_list, tr
from tenants.oneroster.importing.base import ImporterBase


class ClassesImport(ImporterBase):
    """Courses (subjects) and classes."""

    async def import_courses(self) -> None:
        """Nothing to write yet: a course's subject is resolved when a scheduled class uses it."""
        for row in self.bundle.rows.get("courses", []):
            if row.get("orgSourcedId") in self.orgs and self.orgs[row["orgSourcedId"]] is None:
                self.warn("courses", row, "orgSourcedId", tr("the course's org has no place in the tenant tree"))

    async def subject_of(self, course: dict[str, str]) -> str:
        """The subject a course teaches: an existing subject code it names, else a new subject."""
        sid = course["sourcedId"]
        if sid in self.subjects:
            return self.subjects[sid]
        existing = {r["code"]: r["code"] for r in await self.db.fetch("SELECT code FROM subject")}
        folded = {code.upper(): code for code in existing}
        candidates = [*split_list(course.get("subjectCodes", "")), course.get("courseCode", "")]
        code = next((folded[c.upper()] for c in candidates if c and c.upper() in folded), None)
        if code is None:
            code = mapping.subject_code(course.get("courseCode") or course["title"])
            if code.upper() in folded:
                code = folded[code.upper()]
            elif not self.may_add_reference:
                self.error(
                    "courses", course, "courseCode", tr("no subject matches course {sid!r}: ask your region", sid=sid)
                )
            else:
                title = course["title"][:100]
                await self.db.execute(
                    "INSERT INTO subject (code, name_ar, name_fr, name_en) VALUES ({}, {}, {}, {})",
                    code,
                    course.get("metadata.titleAr", "")[:100] or title,
                    title,
                    title,
                )
                self.count("subjects", "created")
                self.warn(
                    "courses",
                    course,
                    "courseCode",
                    tr("no subject matches course {sid!r}: subject {code} created", sid=sid, code=code),
                )
        self.subjects[sid] = code
        await self.link("course", sid, 0, code)
        return code

    # -- classes -------------------------------------------------------------------------------

    async def import_classes(self) -> None:
        """Homeroom classes first, then scheduled ones (attached to their homeroom, or classes of their own)."""
        rows = self.bundle.rows.get("classes", [])
        courses = self.bundle.by_id("courses")
        homerooms = {r["sourcedId"] for r in rows if r["classType"].casefold() == "homeroom"}
        ordered = sorted(rows, key=lambda r: r["classType"].casefold() != "homeroom")
        for row in ordered:
            sid = row["sourcedId"]
            node = self.orgs.get(row["schoolSourcedId"])
            if node is None or node.kind != "school":
                self.error(
                    "classes",
                    row,
                    "schoolSourcedId",
                    tr("{schoolSourcedId!r} is not a school", schoolSourcedId=row["schoolSourcedId"]),
                )
                continue
            course = courses.get(row["courseSourcedId"], {})
            terms = split_list(row["termSourcedIds"])
            year_id = next((self.years[t] for t in terms if t in self.years), None)
            if year_id is None:
                self.error("classes", row, "termSourcedIds", tr("none of the class's sessions was imported"))
                continue
            homeroom = row["classType"].casefold() == "homeroom"
            subject = None if homeroom else await self.subject_of(course) if course else None
            attach = row.get("metadata.homeroomClass", "")
            if not homeroom and attach:
                if attach not in homerooms:
                    self.error(
                        "classes",
                        row,
                        "metadata.homeroomClass",
                        tr("{attach!r} is not a homeroom class here", attach=attach),
                    )
                    continue
                parent = self.classes.get(attach)
                if parent is None:
                    continue
                if parent["school_id"] != node.id:
                    self.error("classes", row, "metadata.homeroomClass", tr("the homeroom class is in another school"))
                    continue
                self.classes[sid] = {**parent, "subject": subject, "homeroom": False, "attached": True}
                await self.link("class", sid, parent["id"], subject or "")
                continue
            level = mapping.level_of(split_list(row.get("grades", ""))) or mapping.level_of(
                split_list(course.get("grades", ""))
            )
            if level is None:
                shown = row.get("grades") or course.get("grades") or "(none)"
                self.error(
                    "classes",
                    row,
                    "grades",
                    tr("grades {shown!r} name no level (01–12, as CEDS codes, or 1AP…2BAC)", shown=shown),
                )
                continue
            track = row.get("metadata.track") or None
            if track is not None:
                levels = await self.db.fetchval("SELECT levels FROM track WHERE code = {}", track)
                if levels is None or level not in levels.split(","):
                    self.warn(
                        "classes",
                        row,
                        "metadata.track",
                        tr("track {track!r} does not exist at {level}: ignored", track=track, level=level),
                    )
                    track = None
            klass = await self._class(row, node, year_id, level, track)
            self.classes[sid] = {**klass, "subject": subject, "homeroom": homeroom, "attached": False}

    async def _class(
        self, row: dict[str, str], node: TenantInfo, year_id: int, level: str, track: str | None
    ) -> dict[str, Any]:
        sid, name = row["sourcedId"], row["title"][:60]
        where = self.scoped()
        found = None
        previous = self.linked("class", sid)
        if previous is not None:
            found = await self.db.fetchrow(
                SQL("SELECT id, school_id, school_year_id FROM school_class WHERE id = {} AND {}", previous, where)
            )
        if found is None:
            found = await self.db.fetchrow(
                SQL(
                    "SELECT id, school_id, school_year_id FROM school_class WHERE school_id = {} "
                    "AND school_year_id = {} AND name = {} AND {}",
                    node.id,
                    year_id,
                    name,
                    where,
                )
            )
            if found is not None:
                self.count("classes", "linked")
        if found is not None:
            clash = await self.db.fetchval(
                "SELECT id FROM school_class WHERE school_id = {} AND school_year_id = {} AND name = {} AND id <> {}",
                found["school_id"],
                found["school_year_id"],
                name,
                found["id"],
            )
            if clash is not None:
                self.error(
                    "classes", row, "title", tr("another class is named {name!r} in that school and year", name=name)
                )
            else:
                await self.db.execute(
                    "UPDATE school_class SET name = {}, level_code = {}, track_code = {} WHERE id = {}",
                    name,
                    level,
                    track,
                    found["id"],
                )
                if previous is not None:
                    self.count("classes", "updated")
        else:
            cols = node.scope_columns()
            found = await self.db.fetchrow(
                "INSERT INTO school_class (region_id, province_id, school_id, school_year_id, level_code, track_code, "
                "name, capacity) VALUES ({}, {}, {}, {}, {}, {}, {}, 45) RETURNING id, school_id, school_year_id",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                year_id,
                level,
                track,
                name,
            )
            assert found is not None
            self.count("classes", "created")
        await self.link("class", sid, int(found["id"]))
        return {"id": int(found["id"]), "school_id": int(found["school_id"]), "year_id": int(found["school_year_id"])}
