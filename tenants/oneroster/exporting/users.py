"""users.csv, roles.csv and demographics.csv: pupils, teachers, directors and guardians with their roles.

A guardian's relation to each pupil (mother, father, guardian) is a property of the link, so it travels on
the pupil's row: ``metadata.agentRelations`` lists ``guardianSourcedId=relation`` for each of the pupil's
``agentSourcedIds``; the guardian's own ``metadata.relation`` is filled only when all their links share one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from core.sql import SQL, in_
from tenants.oneroster import mapping
from tenants.oneroster.exporting.base import ExporterBase, key, text

PUPIL_COLUMNS = (
    "id",
    "national_code",
    "person_id",
    "first_name",
    "last_name",
    "first_name_ar",
    "last_name_ar",
    "birth_date",
    "gender",
    "school_id",
)
ENROLMENT_COLUMNS = ("id", "student_id", "class_id", "starts_on", "ends_on", "school_id")
GUARDIANSHIP_COLUMNS = ("id", "student_id", "person_id", "relation", "school_id")


def agent_relations(relations: dict[str, str]) -> str:
    """A pupil's ``metadata.agentRelations`` cell: ``guardianSourcedId=relation`` per link, in sourcedId order."""
    return ",".join(f"{sid}={relations[sid]}" for sid in sorted(relations))


def one_relation(relations: set[str]) -> str:
    """A guardian's ``metadata.relation`` cell: their relation when every link has the same one, else blank."""
    return next(iter(relations)) if len(relations) == 1 else ""


def pupil_sid(pupil: dict[str, Any]) -> str:
    """A pupil's sourcedId, from the national code."""
    return f"pupil-{pupil['national_code']}"


class UsersExport(ExporterBase):
    """Pupils, persons with a role at an exported school, and their links."""

    # set by the other parts
    slug: dict[int, str]
    schools: list[int]
    class_by_id: dict[int, dict[str, Any]]
    assignments: list[dict[str, Any]]

    async def read_people(self) -> None:
        """Sets ``pupils``, ``pupil_by_id``, ``enrolments``, ``guardianships``, ``memberships`` and ``persons``."""
        self.pupils = await self.read_schools("student", PUPIL_COLUMNS, self.schools)
        self.pupil_by_id: dict[int, dict[str, Any]] = {p["id"]: p for p in self.pupils}
        self.enrolments = [
            e
            for e in await self.read_schools("enrolment", ENROLMENT_COLUMNS, self.schools)
            if e["student_id"] in self.pupil_by_id and e["class_id"] in self.class_by_id
        ]
        self.guardianships = [
            g
            for g in await self.read_schools("guardianship", GUARDIANSHIP_COLUMNS, self.schools)
            if g["student_id"] in self.pupil_by_id
        ]
        self.memberships = await self.db.fetch(
            SQL(
                "SELECT id, person_id, role, tenant_id FROM membership WHERE tenant_id IN {} "
                "AND role IN ('teacher', 'school_director') ORDER BY id",
                in_(self.schools),
            )
        )
        person_ids = (
            {m["person_id"] for m in self.memberships}
            | {g["person_id"] for g in self.guardianships}
            | {p["person_id"] for p in self.pupils if p["person_id"]}
            | {a["person_id"] for a in self.assignments}
        )
        self.persons: dict[int, dict[str, Any]] = {
            r["id"]: r
            for r in await self.read_in(
                lambda ids: SQL("SELECT id, email, full_name, full_name_ar, active FROM person WHERE id IN {}", ids),
                person_ids,
            )
        }

    def person_sid(self, person_id: int) -> str:
        """A person's sourcedId, from the e-mail (one identity per person)."""
        return f"person-{key(self.persons[person_id]['email'])}"

    def user_rows(self) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
        """``(users, roles, demographics)``: pupils first, then the other persons; sets ``person_roles``."""
        slug = self.slug
        guardians_of: dict[int, dict[str, str]] = defaultdict(dict)  # pupil → {guardian sourcedId: relation}
        relations_of: dict[int, set[str]] = defaultdict(set)  # guardian → the relations of all their links
        for g in self.guardianships:
            if g["person_id"] in self.persons:
                guardians_of[g["student_id"]][self.person_sid(g["person_id"])] = g["relation"]
                relations_of[g["person_id"]].add(g["relation"])
        current_level: dict[int, str] = {}
        for e in sorted(self.enrolments, key=lambda e: (text(e["starts_on"]), e["id"])):
            current_level[e["student_id"]] = self.class_by_id[e["class_id"]]["level_code"]
        users: list[dict[str, str]] = []
        roles: list[dict[str, str]] = []
        demographics: list[dict[str, str]] = []
        for p in self.pupils:
            account = self.persons.get(p["person_id"]) if p["person_id"] else None
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
                        "birthDate": text(p["birth_date"]),
                        "sex": mapping.GENDER_SEX.get(p["gender"], ""),
                    }
                )
        self.person_roles = self.roles_of_persons()
        pupil_people = {p["person_id"] for p in self.pupils if p["person_id"]}
        for person_id in sorted(self.person_roles):
            person = self.persons.get(person_id)
            if person is None:
                continue
            if person_id in pupil_people and not self.person_roles[person_id]:
                continue
            sid = self.person_sid(person_id)
            given, family = mapping.split_name(person["full_name"] or person["email"].split("@")[0])
            users.append(
                {
                    "sourcedId": sid,
                    "enabledUser": "true" if person["active"] else "false",
                    "username": person["email"],
                    "givenName": given,
                    "familyName": family,
                    "email": person["email"],
                    "primaryOrgSourcedId": self.person_roles[person_id][0][2],
                    "metadata.fullName": person["full_name"],
                    "metadata.fullNameAr": person["full_name_ar"],
                    "metadata.relation": one_relation(relations_of.get(person_id, set())),
                }
            )
            for n, (_, role, org) in enumerate(self.person_roles[person_id]):
                roles.append(
                    {
                        "sourcedId": f"role-{key(sid, role, org)}",
                        "userSourcedId": sid,
                        "roleType": "primary" if n == 0 else "secondary",
                        "role": role,
                        "orgSourcedId": org,
                    }
                )
        return users, roles, demographics

    def roles_of_persons(self) -> dict[int, list[tuple[str, str, str]]]:
        """Each person's OneRoster roles ``("", role, org sourcedId)``: memberships, guardianships, teaching."""
        slug = self.slug
        person_roles: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for m in self.memberships:
            role = "teacher" if m["role"] == "teacher" else "principal"
            person_roles[m["person_id"]].append(("", role, slug[m["tenant_id"]]))
        seen: set[tuple[int, int]] = set()
        for g in self.guardianships:
            if (g["person_id"], g["school_id"]) in seen:
                continue
            seen.add((g["person_id"], g["school_id"]))
            role = "guardian" if g["relation"] == "guardian" else "parent"
            person_roles[g["person_id"]].append(("", role, slug[g["school_id"]]))
        for a in self.assignments:
            school_id = self.class_by_id[a["class_id"]]["school_id"]
            if not any(r[1] == "teacher" and r[2] == slug[school_id] for r in person_roles[a["person_id"]]):
                person_roles[a["person_id"]].append(("", "teacher", slug[school_id]))
        return person_roles
