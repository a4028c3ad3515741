"""Exporting a tenant's rosters as a OneRoster 1.2 CSV bundle: only what the caller's scope covers.

Every query runs inside ``db.scoped(ctx.scope)`` (row-level security on PostgreSQL) and names the
schools of the exported subtree that the scope covers, so another region's rows can't appear.

Our model → OneRoster: region → state org, province → district, school → school; a school year →
``schoolYear`` session and its terms → ``semester`` sessions; a class → a ``homeroom`` class (course:
its level) plus one ``scheduled`` class per subject taught in it (course: subject × level, extension
column ``metadata.homeroomClass`` naming the homeroom); pupils, teachers, directors and guardians →
users with roles (a guardian's relation to each pupil — mother, father, guardian — is a property of the link,
so it travels on the pupil's row: ``metadata.agentRelations`` lists ``guardianSourcedId=relation`` for each of
the pupil's ``agentSourcedIds``; the guardian's own ``metadata.relation`` is filled only when all their links
share one relation); enrolments and teaching assignments → enrollments; a pupil's birth date and sex →
demographics; with the grades module on for a school, assessments → lineItems and marks → results.

Free-text cells (names, titles, ``metadata.*``, and ``classCode``, which carries a class's name) that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) leave with a leading
apostrophe; sourcedIds, codes, dates and e-mail addresses are written as they are. Importing such a bundle
back keeps the apostrophe: the importer refuses free text that starts like a formula.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from core.context import RequestContext
from core.db import in_list, scope_filter
from core.tenancy import TenantInfo, parse_path
from tenants.oneroster import mapping
from tenants.oneroster.spec import EXPORTED_AS_TEXT, MANIFEST_FILES, SPECS_12, csv_safe, free_text

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "orgs": ("metadata.nameAr", "metadata.nameEn"),
    "courses": ("metadata.titleAr",),
    "classes": ("metadata.track", "metadata.homeroomClass"),
    "users": (
        "metadata.fullName",
        "metadata.fullNameAr",
        "metadata.givenNameAr",
        "metadata.familyNameAr",
        "metadata.relation",
        "metadata.agentRelations",
    ),
}
CHUNK = 5000


def key(*parts: object) -> str:
    """A stable identifier made from natural keys: the same object gets the same sourcedId in every deployment."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:20]


def agent_relations(relations: dict[str, str]) -> str:
    """A pupil's ``metadata.agentRelations`` cell: ``guardianSourcedId=relation`` per link, in sourcedId order."""
    return ",".join(f"{sid}={relations[sid]}" for sid in sorted(relations))


def one_relation(relations: set[str]) -> str:
    """A guardian's ``metadata.relation`` cell: their relation when every link has the same one, else blank."""
    return next(iter(relations)) if len(relations) == 1 else ""


CATEGORIES = {"cc": "Contrôle continu", "exam": "Examen", "activity": "Activité"}
STATUS_SCORE = {"absent": "not submitted", "excused": "exempt"}


def _csv(name: str, rows: list[dict[str, str]]) -> bytes:
    """A file's CSV text; free-text cells a spreadsheet would run as a formula get a leading apostrophe."""
    header = [*SPECS_12[name].header, *EXTENSIONS.get(name, ())]
    texts = {c for c in header if free_text(name, c) or c in EXPORTED_AS_TEXT.get(name, ())}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = ((column, row.get(column, "")) for column in header)
        writer.writerow([csv_safe(v) if c in texts and isinstance(v, str) else v for c, v in cells])
    return out.getvalue().encode("utf-8")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def pack(files: dict[str, list[dict[str, str]]], system: str = "madrasa") -> bytes:
    """The zip: ``manifest.csv`` (every ``file.*`` row) and the CSV files given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        manifest = io.StringIO()
        writer = csv.writer(manifest, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", "1.0"])
        writer.writerow(["oneroster.version", "1.2"])
        for name in MANIFEST_FILES:
            writer.writerow([f"file.{name}", "bulk" if name in files else "absent"])
        writer.writerow(["source.systemName", system])
        writer.writerow(["source.systemCode", "madrasa"])
        archive.writestr("manifest.csv", manifest.getvalue().encode("utf-8"))
        for name, rows in files.items():
            archive.writestr(f"{name}.csv", _csv(name, rows))
    return buffer.getvalue()


class Exporter:
    """Reads one tenant's rosters inside the caller's scoped transaction."""

    def __init__(self, ctx: RequestContext, tenant: TenantInfo) -> None:
        self.ctx = ctx
        self.db = ctx.services.db
        self.tenant = tenant

    async def _in(self, sql: str, ids: Iterable[Any], *before: Any) -> list[dict[str, Any]]:
        """``sql`` with one ``{ids}`` slot filled by ``IN (…)``, in chunks, plus the scope filter in ``{scope}``."""
        values = sorted(set(ids))
        out: list[dict[str, Any]] = []
        for start in range(0, len(values), CHUNK):
            placeholders, args = in_list(values[start : start + CHUNK])
            out.extend(await self.db.fetch(sql.replace("{ids}", placeholders), *before, *args))
        return out

    async def _scoped_in(self, table: str, columns: str, schools: list[int]) -> list[dict[str, Any]]:
        where, args = scope_filter(self.ctx.scope)
        placeholders, ids = in_list(schools)
        return await self.db.fetch(
            f"SELECT {columns} FROM {table} WHERE school_id IN {placeholders} AND {where} ORDER BY id", *ids, *args
        )

    async def build(self) -> dict[str, list[dict[str, str]]]:
        """Every file's rows."""
        db = self.db
        scope = self.ctx.scope
        prefix = "/".join(str(p) for p in self.tenant.path) + "/"
        rows = await db.fetch(
            "SELECT id, kind, parent_id, path, slug, code, name_fr, name_ar, name_en FROM tenant "
            "WHERE path LIKE {} ORDER BY path",
            prefix + "%",
        )
        nodes = {r["id"]: r for r in rows if scope.covers(parse_path(r["path"]))}
        for r in list(nodes.values()):
            for ancestor in parse_path(r["path"])[1:-1]:
                if ancestor not in nodes:
                    found = await db.fetchrow(
                        "SELECT id, kind, parent_id, path, slug, code, name_fr, name_ar, name_en FROM tenant "
                        "WHERE id = {}",
                        ancestor,
                    )
                    if found is not None:
                        nodes[ancestor] = found
        platform = self.tenant.kind == "platform"
        if platform:
            root = await db.fetchrow(
                "SELECT id, kind, parent_id, path, slug, code, name_fr, name_ar, name_en FROM tenant WHERE id = {}",
                self.tenant.id,
            )
            assert root is not None
            nodes[root["id"]] = root
        else:
            nodes.pop(self.tenant.path[0], None)
        slug = {i: r["slug"] for i, r in nodes.items()}
        schools = sorted(i for i, r in nodes.items() if r["kind"] == "school")
        region_of = {i: parse_path(nodes[i]["path"])[1] for i in schools}
        course_org = (
            slug[self.tenant.id] if self.tenant.id in slug else slug[min(nodes, key=lambda n: len(nodes[n]["path"]))]
        )
        orgs = [
            {
                "sourcedId": r["slug"],
                "name": r["name_fr"] or r["slug"],
                "type": mapping.KIND_TYPES[r["kind"]],
                "identifier": r["code"] or "",
                "parentSourcedId": slug.get(r["parent_id"], ""),
                "metadata.nameAr": r["name_ar"],
                "metadata.nameEn": r["name_en"],
            }
            for r in sorted(nodes.values(), key=lambda r: (len(r["path"]), r["path"]))
        ]

        classes = await self._scoped_in(
            "school_class", "id, school_id, school_year_id, level_code, track_code, name, homeroom_teacher_id", schools
        )
        class_by_id = {c["id"]: c for c in classes}
        year_ids = {c["school_year_id"] for c in classes}
        years = {
            r["id"]: r
            for r in await self._in("SELECT id, label, starts_on, ends_on FROM school_year WHERE id IN {ids}", year_ids)
        }
        regions = set(region_of.values())
        term_rows = await self._in(
            "SELECT id, school_year_id, tenant_id, number, starts_on, ends_on FROM term WHERE school_year_id IN {ids} "
            "ORDER BY number",
            year_ids,
        )
        terms_of: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for year in year_ids:
            national = [t for t in term_rows if t["school_year_id"] == year and t["tenant_id"] is None]
            for region in regions:
                own = [t for t in term_rows if t["school_year_id"] == year and t["tenant_id"] == region]
                terms_of[(year, region)] = own or national
        sessions: list[dict[str, str]] = []
        for year in sorted(years.values(), key=lambda y: y["label"]):
            sessions.append(
                {
                    "sourcedId": f"year-{year['label']}",
                    "title": year["label"],
                    "type": "schoolYear",
                    "startDate": _text(year["starts_on"]),
                    "endDate": _text(year["ends_on"]),
                    "schoolYear": mapping.ended_year(year["label"]),
                }
            )
        term_sid = {
            t["id"]: f"term-{years[t['school_year_id']]['label']}-{t['number']}"
            + (f"-{slug.get(t['tenant_id'], t['tenant_id'])}" if t["tenant_id"] is not None else "")
            for t in term_rows
        }
        levels = {r["code"]: r for r in await db.fetch("SELECT code, name_fr, name_ar FROM level")}
        subjects = {r["code"]: r for r in await db.fetch("SELECT code, name_fr, name_ar, name_en FROM subject")}
        assignments = [
            a
            for a in await self._scoped_in(
                "teaching_assignment", "id, person_id, class_id, subject_code, school_year_id", schools
            )
            if a["class_id"] in class_by_id
        ]
        grade_schools = []
        for school_id in schools:
            node = await self.ctx.services.tenants.by_id(school_id)
            if node is not None and "grades" not in await self.ctx.services.disabled_for(node.path):
                grade_schools.append(school_id)
        assessments = [
            a
            for a in (
                await self._scoped_in(
                    "grade_assessment",
                    "id, class_id, subject_code, term_id, kind, position, title, scheduled_on, max_score",
                    grade_schools,
                )
                if grade_schools
                else []
            )
            if a["class_id"] in class_by_id
        ]
        used_terms = {t["id"]: t for ts in terms_of.values() for t in ts}
        used_terms.update({a["term_id"]: t for a in assessments for t in term_rows if t["id"] == a["term_id"]})
        for term in sorted(used_terms.values(), key=lambda t: (t["school_year_id"], t["number"], t["id"])):
            label = years[term["school_year_id"]]["label"]
            sessions.append(
                {
                    "sourcedId": term_sid[term["id"]],
                    "title": f"S{term['number']} {label}",
                    "type": "semester",
                    "startDate": _text(term["starts_on"]),
                    "endDate": _text(term["ends_on"]),
                    "parentSourcedId": f"year-{label}",
                    "schoolYear": mapping.ended_year(label),
                }
            )

        scheduled = sorted(
            {(a["class_id"], a["subject_code"]) for a in assignments}
            | {(a["class_id"], a["subject_code"]) for a in assessments}
        )
        courses: dict[str, dict[str, str]] = {}

        def course(klass: dict[str, Any], subject: str | None) -> str:
            """The course of a class (its level) or of a subject taught in it, added once."""
            label = years[klass["school_year_id"]]["label"]
            level = klass["level_code"]
            sid = f"course-{label}-{level}" + (f"-{subject}" if subject else "")
            if sid not in courses:
                lvl = levels.get(level, {"name_fr": level, "name_ar": ""})
                row = {
                    "sourcedId": sid,
                    "schoolYearSourcedId": f"year-{label}",
                    "title": lvl["name_fr"],
                    "courseCode": level,
                    "grades": mapping.LEVEL_GRADES.get(level, ""),
                    "orgSourcedId": course_org,
                    "metadata.titleAr": lvl["name_ar"],
                }
                if subject:
                    sub = subjects.get(subject, {"name_fr": subject, "name_ar": "", "name_en": subject})
                    row.update(
                        title=f"{sub['name_fr']} — {lvl['name_fr']}",
                        courseCode=subject,
                        subjects=(sub["name_en"] or sub["name_fr"]).replace(",", " "),
                        subjectCodes=subject,
                    )
                    row["metadata.titleAr"] = f"{sub['name_ar']} — {lvl['name_ar']}".strip(" —")
                courses[sid] = row
            return sid

        def term_ids(klass: dict[str, Any]) -> str:
            """The sessions a class runs in: its region's terms of the year."""
            terms = terms_of.get((klass["school_year_id"], region_of[klass["school_id"]]), [])
            return ",".join(term_sid[t["id"]] for t in terms) or f"year-{years[klass['school_year_id']]['label']}"

        def class_sid(class_id: int) -> str:
            """A class's sourcedId, from its school, year and name."""
            klass = class_by_id[class_id]
            label = years[klass["school_year_id"]]["label"]
            return f"class-{key(slug[klass['school_id']], label, klass['name'])}"

        class_rows: list[dict[str, str]] = []
        for klass in classes:
            class_rows.append(
                {
                    "sourcedId": class_sid(klass["id"]),
                    "title": klass["name"],
                    "grades": mapping.LEVEL_GRADES.get(klass["level_code"], ""),
                    "courseSourcedId": course(klass, None),
                    "classCode": klass["name"],
                    "classType": "homeroom",
                    "schoolSourcedId": slug[klass["school_id"]],
                    "termSourcedIds": term_ids(klass),
                    "metadata.track": klass["track_code"] or "",
                }
            )
        for class_id, subject in scheduled:
            klass = class_by_id[class_id]
            class_rows.append(
                {
                    "sourcedId": f"{class_sid(class_id)}-{subject}",
                    "title": f"{klass['name']} {subject}",
                    "grades": mapping.LEVEL_GRADES.get(klass["level_code"], ""),
                    "courseSourcedId": course(klass, subject),
                    "classCode": f"{klass['name']}-{subject}",
                    "classType": "scheduled",
                    "schoolSourcedId": slug[klass["school_id"]],
                    "termSourcedIds": term_ids(klass),
                    "subjectCodes": subject,
                    "metadata.homeroomClass": class_sid(class_id),
                }
            )

        pupils = await self._scoped_in(
            "student",
            "id, national_code, person_id, first_name, last_name, first_name_ar, last_name_ar, birth_date, gender, "
            "school_id",
            schools,
        )
        pupil_by_id = {p["id"]: p for p in pupils}
        enrolments = [
            e
            for e in await self._scoped_in(
                "enrolment", "id, student_id, class_id, starts_on, ends_on, school_id", schools
            )
            if e["student_id"] in pupil_by_id and e["class_id"] in class_by_id
        ]
        guardianships = [
            g
            for g in await self._scoped_in("guardianship", "id, student_id, person_id, relation, school_id", schools)
            if g["student_id"] in pupil_by_id
        ]
        placeholders, ids = in_list(schools)
        memberships = await db.fetch(
            f"SELECT id, person_id, role, tenant_id FROM membership WHERE tenant_id IN {placeholders} "
            "AND role IN ('teacher', 'school_director') ORDER BY id",
            *ids,
        )
        person_ids = (
            {m["person_id"] for m in memberships}
            | {g["person_id"] for g in guardianships}
            | {p["person_id"] for p in pupils if p["person_id"]}
            | {a["person_id"] for a in assignments}
        )
        persons = {
            r["id"]: r
            for r in await self._in(
                "SELECT id, email, full_name, full_name_ar, active FROM person WHERE id IN {ids}", person_ids
            )
        }
        pupil_people = {p["person_id"] for p in pupils if p["person_id"]}

        def person_sid(person_id: int) -> str:
            """A person's sourcedId, from the e-mail (one identity per person)."""
            return f"person-{key(persons[person_id]['email'])}"

        def pupil_sid(p: dict[str, Any]) -> str:
            """A pupil's sourcedId, from the national code."""
            return f"pupil-{p['national_code']}"

        guardians_of: dict[int, dict[str, str]] = defaultdict(dict)  # pupil → {guardian sourcedId: relation}
        relations_of: dict[int, set[str]] = defaultdict(set)  # guardian → the relations of all their links
        for g in guardianships:
            if g["person_id"] in persons:
                guardians_of[g["student_id"]][person_sid(g["person_id"])] = g["relation"]
                relations_of[g["person_id"]].add(g["relation"])
        current_level: dict[int, str] = {}
        for e in sorted(enrolments, key=lambda e: (_text(e["starts_on"]), e["id"])):
            current_level[e["student_id"]] = class_by_id[e["class_id"]]["level_code"]
        users: list[dict[str, str]] = []
        roles: list[dict[str, str]] = []
        demographics: list[dict[str, str]] = []
        for p in pupils:
            account = persons.get(p["person_id"]) if p["person_id"] else None
            sid = pupil_sid(p)
            users.append(
                {
                    "sourcedId": sid,
                    "enabledUser": "true",
                    "username": p["national_code"],
                    "userIds": "{Massar:" + p["national_code"] + "}",
                    "givenName": p["first_name"],
                    "familyName": p["last_name"],
                    "identifier": p["national_code"],
                    "email": account["email"] if account else "",
                    "agentSourcedIds": ",".join(sorted(guardians_of.get(p["id"], {}))),
                    "metadata.agentRelations": agent_relations(guardians_of.get(p["id"], {})),
                    "grades": mapping.LEVEL_GRADES.get(current_level.get(p["id"], ""), ""),
                    "primaryOrgSourcedId": slug[p["school_id"]],
                    "metadata.givenNameAr": p["first_name_ar"],
                    "metadata.familyNameAr": p["last_name_ar"],
                }
            )
            roles.append(
                {
                    "sourcedId": f"role-{key(sid, 'student', slug[p['school_id']])}",
                    "userSourcedId": sid,
                    "roleType": "primary",
                    "role": "student",
                    "orgSourcedId": slug[p["school_id"]],
                }
            )
            if p["birth_date"] or p["gender"] in mapping.GENDER_SEX:
                demographics.append(
                    {
                        "sourcedId": sid,
                        "birthDate": _text(p["birth_date"]),
                        "sex": mapping.GENDER_SEX.get(p["gender"], ""),
                    }
                )
        person_roles: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for m in memberships:
            role = "teacher" if m["role"] == "teacher" else "principal"
            person_roles[m["person_id"]].append(("", role, slug[m["tenant_id"]]))
        seen: set[tuple[int, int]] = set()
        for g in guardianships:
            if (g["person_id"], g["school_id"]) in seen:
                continue
            seen.add((g["person_id"], g["school_id"]))
            role = "guardian" if g["relation"] == "guardian" else "parent"
            person_roles[g["person_id"]].append(("", role, slug[g["school_id"]]))
        for a in assignments:
            school_id = class_by_id[a["class_id"]]["school_id"]
            if not any(r[1] == "teacher" and r[2] == slug[school_id] for r in person_roles[a["person_id"]]):
                person_roles[a["person_id"]].append(("", "teacher", slug[school_id]))
        for person_id in sorted(person_roles):
            person = persons.get(person_id)
            if person is None:
                continue
            if person_id in pupil_people and not person_roles[person_id]:
                continue
            sid = person_sid(person_id)
            given, family = mapping.split_name(person["full_name"] or person["email"].split("@")[0])
            users.append(
                {
                    "sourcedId": sid,
                    "enabledUser": "true" if person["active"] else "false",
                    "username": person["email"],
                    "givenName": given,
                    "familyName": family,
                    "email": person["email"],
                    "primaryOrgSourcedId": person_roles[person_id][0][2],
                    "metadata.fullName": person["full_name"],
                    "metadata.fullNameAr": person["full_name_ar"],
                    "metadata.relation": one_relation(relations_of.get(person_id, set())),
                }
            )
            for n, (_, role, org) in enumerate(person_roles[person_id]):
                roles.append(
                    {
                        "sourcedId": f"role-{key(sid, role, org)}",
                        "userSourcedId": sid,
                        "roleType": "primary" if n == 0 else "secondary",
                        "role": role,
                        "orgSourcedId": org,
                    }
                )

        enrollments: list[dict[str, str]] = []
        subjects_of: dict[int, list[str]] = defaultdict(list)
        for class_id, subject in scheduled:
            subjects_of[class_id].append(subject)
        for e in enrolments:
            klass = class_by_id[e["class_id"]]
            base = {
                "schoolSourcedId": slug[klass["school_id"]],
                "userSourcedId": pupil_sid(pupil_by_id[e["student_id"]]),
                "role": "student",
                "beginDate": _text(e["starts_on"]),
                "endDate": _text(e["ends_on"]),
            }
            homeroom_sid = class_sid(e["class_id"])
            enrollment_sid = f"enr-{key(base['userSourcedId'], homeroom_sid, base['beginDate'])}"
            enrollments.append({"sourcedId": enrollment_sid, "classSourcedId": homeroom_sid, **base})
            for subject in subjects_of.get(e["class_id"], []):
                enrollments.append(
                    {
                        "sourcedId": f"{enrollment_sid}-{subject}",
                        "classSourcedId": f"{homeroom_sid}-{subject}",
                        **base,
                    }
                )
        for klass in classes:
            if klass["homeroom_teacher_id"] in persons and person_roles.get(klass["homeroom_teacher_id"]):
                enrollments.append(
                    {
                        "sourcedId": f"enr-{key('homeroom', class_sid(klass['id']))}",
                        "classSourcedId": class_sid(klass["id"]),
                        "schoolSourcedId": slug[klass["school_id"]],
                        "userSourcedId": person_sid(klass["homeroom_teacher_id"]),
                        "role": "teacher",
                        "primary": "true",
                    }
                )
        for a in assignments:
            klass = class_by_id[a["class_id"]]
            enrollments.append(
                {
                    "sourcedId": f"enr-{key(person_sid(a['person_id']), class_sid(a['class_id']), a['subject_code'])}",
                    "classSourcedId": f"{class_sid(a['class_id'])}-{a['subject_code']}",
                    "schoolSourcedId": slug[klass["school_id"]],
                    "userSourcedId": person_sid(a["person_id"]),
                    "role": "teacher",
                    "primary": "true",
                }
            )
        files: dict[str, list[dict[str, str]]] = {
            "orgs": orgs,
            "academicSessions": sessions,
            "courses": list(courses.values()),
            "classes": class_rows,
            "users": users,
            "roles": roles,
            "enrollments": enrollments,
            "demographics": demographics,
        }
        if assessments:
            files.update(
                await self._gradebook(assessments, class_sid, term_sid, slug, class_by_id, pupil_by_id, grade_schools)
            )
        return files

    async def _gradebook(
        self,
        assessments: list[dict[str, Any]],
        class_sid: Callable[[int], str],
        term_sid: dict[int, str],
        slug: dict[int, str],
        class_by_id: dict[int, dict[str, Any]],
        pupil_by_id: dict[int, dict[str, Any]],
        grade_schools: list[int],
    ) -> dict[str, list[dict[str, str]]]:
        by_id = {a["id"]: a for a in assessments}

        def item_sid(a: dict[str, Any]) -> str:
            """An assessment's sourcedId, from its class, subject, term, position, title and date."""
            scheduled = f"{class_sid(a['class_id'])}-{a['subject_code']}"
            return f"li-{key(scheduled, term_sid[a['term_id']], a['position'], a['title'], _text(a['scheduled_on']))}"

        line_items = [
            {
                "sourcedId": item_sid(a),
                "title": a["title"] or f"{a['subject_code']} {_text(a['scheduled_on'])}",
                "assignDate": _text(a["scheduled_on"]),
                "dueDate": _text(a["scheduled_on"]),
                "classSourcedId": f"{class_sid(a['class_id'])}-{a['subject_code']}",
                "categorySourcedId": f"category-{a['kind']}",
                "academicSessionSourcedId": term_sid[a["term_id"]],
                "resultValueMin": "0",
                "resultValueMax": _text(a["max_score"]),
                "schoolSourcedId": slug[class_by_id[a["class_id"]]["school_id"]],
            }
            for a in assessments
        ]
        marks = [
            m
            for m in await self._scoped_in(
                "grade_mark", "id, assessment_id, student_id, score, status, updated_at", grade_schools
            )
            if m["assessment_id"] in by_id and m["student_id"] in pupil_by_id
        ]
        results = []
        for m in marks:
            assessment = by_id[m["assessment_id"]]
            code = pupil_by_id[m["student_id"]]["national_code"]
            status = STATUS_SCORE.get(m["status"]) or ("fully graded" if m["score"] is not None else "not submitted")
            results.append(
                {
                    "sourcedId": f"res-{key(item_sid(assessment), code)}",
                    "lineItemSourcedId": item_sid(assessment),
                    "studentSourcedId": f"pupil-{code}",
                    "scoreStatus": status,
                    "score": _text(m["score"]) if status == "fully graded" else "",
                    "scoreDate": _text(m["updated_at"])[:10],
                    "classSourcedId": f"{class_sid(assessment['class_id'])}-{assessment['subject_code']}",
                }
            )
        kinds = sorted({a["kind"] for a in assessments})
        categories = [{"sourcedId": f"category-{k}", "title": CATEGORIES.get(k, k)} for k in kinds]
        return {"categories": categories, "lineItems": line_items, "results": results}


async def export_bundle(ctx: RequestContext, tenant: TenantInfo) -> bytes:
    """The zip of a tenant's rosters, read inside the caller's scope."""
    async with ctx.services.db.scoped(ctx.scope, write=False):
        files = await Exporter(ctx, tenant).build()
    return pack(files)
