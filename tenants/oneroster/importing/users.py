"""users.csv and roles.csv → persons, memberships, pupils and guardians."""

from __future__ import annotations

from collections import defaultdict

from core import access
from core.identity import normalise_email
from core.school import service as school
from core.sql import SQL, ident, join
from core.tenancy import TenantInfo, parse_path
from tenants.oneroster import mapping
from tenants.oneroster.bundle import Issue, split_list, tr
from tenants.oneroster.importing.base import EMAIL_RE, RELATIONS, ImporterBase

#: What an import reads of a pupil.
PUPIL_COLUMNS = ("id", "national_code", "region_id", "province_id", "school_id", "person_id")


class UsersImport(ImporterBase):
    """Users with their roles, pupils, and guardians linked to their children."""

    async def collect_roles(self) -> None:
        """Who holds which role where: roles.csv (1.2), or each user's role and orgs (1.1)."""
        if self.bundle.version == "1.1":
            for row in self.bundle.rows.get("users", []):
                role = row["role"].casefold()
                role = "principal" if role == "administrator" else role
                for org in split_list(row["orgSourcedIds"]):
                    self.roles[row["sourcedId"]].append((role, org))
            return
        for row in self.bundle.rows.get("roles", []):
            self.roles[row["userSourcedId"]].append((row["role"], row["orgSourcedId"]))

    async def import_users(self) -> None:
        """Pupils, then persons with their memberships, then guardians linked to their children."""
        users = self.bundle.rows.get("users", [])
        ignored: dict[str, int] = defaultdict(int)
        provisional = 0
        for row in users:
            sid = row["sourcedId"]
            roles = self.roles.get(sid, [])
            if not roles:
                self.warn("users", row, "sourcedId", tr("user {sid!r} has no role: not imported", sid=sid))
                continue
            for role, org_sid in roles:
                if role not in mapping.ROLE_MEMBERSHIPS:
                    ignored[role] += 1
                    continue
                node = self.orgs.get(org_sid)
                if node is None or node.kind != "school":
                    self.error(
                        "users",
                        row,
                        "sourcedId",
                        tr(
                            "user {sid!r} is a {role} of {org_sid!r}, which is no school",
                            sid=sid,
                            role=role,
                            org_sid=org_sid,
                        ),
                    )
                    continue
                if not self.ctx.scope.covers(node.path):
                    self.error("users", row, "sourcedId", tr("{slug} is outside what you may change", slug=node.slug))
                    continue
                if role == "student" and sid not in self.pupils:
                    provisional += await self._pupil(row, node)
            needs_person = any(r in mapping.ROLE_MEMBERSHIPS and r != "student" for r, _ in roles) or (
                sid in self.pupils and row.get("email")
            )
            if needs_person:
                person = await self._person(row)
                if person is None:
                    continue
                for role, org_sid in roles:
                    node = self.orgs.get(org_sid)
                    membership = mapping.ROLE_MEMBERSHIPS.get(role)
                    if membership and node is not None and node.kind == "school" and self.ctx.scope.covers(node.path):
                        await self._membership(person, membership, node)
                if sid in self.pupils:
                    await self.db.execute(
                        "UPDATE student SET person_id = {} WHERE id = {}", person, self.pupils[sid]["id"]
                    )
        if provisional:
            self.warnings.append(
                Issue(
                    "users.csv",
                    0,
                    "identifier",
                    tr(
                        "{provisional} pupil(s) carry no national pupil code (identifier or {{Massar:…}} in userIds): "
                        "provisional codes starting with X were given",
                        provisional=provisional,
                    ),
                    "warning",
                )
            )
        for role, n in sorted(ignored.items()):
            self.warnings.append(
                Issue(
                    "users.csv",
                    0,
                    "role",
                    tr("{n} {role} role(s) have no place here: ignored", n=n, role=role),
                    "warning",
                )
            )
        await self._guardians(users)

    async def _pupil(self, row: dict[str, str], node: TenantInfo) -> int:
        """Find or create the pupil; returns 1 when a provisional code was given."""
        sid = row["sourcedId"]
        where = self.scoped()
        columns = join(", ", [ident(c) for c in PUPIL_COLUMNS])
        found = None
        previous = self.linked("pupil", sid)
        if previous is not None:
            found = await self.db.fetchrow(SQL("SELECT {} FROM student WHERE id = {} AND {}", columns, previous, where))
        code = mapping.pupil_code(row.get("identifier", ""), split_list(row.get("userIds", "")))
        provisional = 0
        if found is None and code is not None:
            found = await self.db.fetchrow(
                SQL("SELECT {} FROM student WHERE national_code = {} AND {}", columns, code, where)
            )
            if found is None and await school.code_taken(self.db, code):
                self.error(
                    "users",
                    row,
                    "identifier",
                    tr("pupil code {code} is registered in another school or region", code=code),
                )
                return 0
        names = {
            "first_name": row["givenName"][:100],
            "last_name": row["familyName"][:100],
            "first_name_ar": row.get("metadata.givenNameAr", "")[:100],
            "last_name_ar": row.get("metadata.familyNameAr", "")[:100],
        }
        if found is not None:
            if found["school_id"] != node.id:
                self.error(
                    "users",
                    row,
                    "sourcedId",
                    tr("pupil {national_code} is in another school: transfer", national_code=found["national_code"]),
                )
                return 0
            await self.db.execute(
                "UPDATE student SET first_name = {}, last_name = {}, first_name_ar = {}, last_name_ar = {} "
                "WHERE id = {}",
                *names.values(),
                found["id"],
            )
            self.count("pupils", "updated" if previous is not None else "linked")
        else:
            if code is None:
                attempt = 0
                code = mapping.provisional_code(self.anchor.id, sid)
                while await school.code_taken(self.db, code):
                    attempt += 1
                    code = mapping.provisional_code(self.anchor.id, sid, attempt)
                provisional = 1
            cols = node.scope_columns()
            found = await self.db.fetchrow(
                SQL(
                    "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
                    "first_name_ar, last_name_ar, gender, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, '', {}) "
                    "RETURNING {}",
                    cols["region_id"],
                    cols["province_id"],
                    cols["school_id"],
                    code,
                    *names.values(),
                    self.now,
                    columns,
                )
            )
            assert found is not None
            self.count("pupils", "created")
        self.pupils[sid] = dict(found)
        await self.link("pupil", sid, int(found["id"]))
        return provisional

    async def _person(self, row: dict[str, str]) -> int | None:
        sid = row["sourcedId"]
        previous = self.linked("user", sid)
        email = normalise_email(row.get("email", ""))
        if previous is not None and await self.db.fetchval("SELECT id FROM person WHERE id = {}", previous):
            person = previous
            self.count("people", "updated")
        else:
            if not email or not EMAIL_RE.match(email) or len(email) > 254:
                self.error(
                    "users",
                    row,
                    "email",
                    tr("user {sid!r} needs a valid e-mail address (one identity per person)", sid=sid),
                )
                return None
            existing = await self.db.fetchval("SELECT id FROM person WHERE email = {}", email)
            if existing is not None and not await self._reachable(int(existing)):
                template = (
                    "user {sid!r}: this e-mail address cannot be used by this import; ask the platform administrator"
                )
                self.error("users", row, "email", tr(template, sid=sid))
                return None
            name = row.get("metadata.fullName") or mapping.full_name(
                row["givenName"], row.get("middleName", ""), row["familyName"]
            )
            person = await school.ensure_person(
                self.db, email, name[:200], row.get("metadata.fullNameAr", "")[:200], "fr"
            )
            self.count("people", "linked" if existing else "created")
        self.people[sid] = int(person)
        self.touched_people.add(int(person))
        await self.link("user", sid, int(person))
        return int(person)

    async def _reachable(self, person: int) -> bool:
        """Whether an existing person may be linked by e-mail: the importer already reaches them.

        That is a role at a node where the importer holds the import permission (anywhere, not only below
        the importing node), or the account of a pupil of the importing scope.
        """
        if self.reach is None:
            grants = await self.ctx.services.grants.grants(self.ctx.person_id) if self.ctx.person_id else []
            self.reach = access.scope_for(grants, self.ctx.services.permissions.roles_for(self.ctx.permission), None)
        scope = self.reach
        if scope.platform:
            return True
        paths = await self.db.fetch(
            "SELECT t.path FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE m.person_id = {}", person
        )
        if any(scope.covers(parse_path(r["path"])) for r in paths):
            return True
        pupil = await self.db.fetchval(SQL("SELECT id FROM student WHERE person_id = {} AND {}", person, self.scoped()))
        return pupil is not None

    def _link_relations(self, users: list[dict[str, str]]) -> dict[tuple[str, str], str]:
        """``(guardian, pupil) → relation`` from the pupils' ``metadata.agentRelations`` (``agent=relation,…``).

        A pair naming no agent of the row, or an unknown relation, is reported and ignored.
        """
        found: dict[tuple[str, str], str] = {}
        for row in users:
            if row["sourcedId"] not in self.pupils:
                continue
            agents = set(split_list(row.get("agentSourcedIds", "")))
            for item in split_list(row.get("metadata.agentRelations", "")):
                agent, _, relation = item.partition("=")
                agent, relation = agent.strip(), relation.strip().casefold()
                if agent not in agents or relation not in RELATIONS:
                    allowed = ", ".join(f"{a}={r}" for a in sorted(agents) for r in sorted(RELATIONS))
                    self.warn(
                        "users",
                        row,
                        "metadata.agentRelations",
                        tr("{value!r} is not one of {items}", value=item, items=allowed),
                    )
                    continue
                found[(agent, row["sourcedId"])] = relation
        return found

    async def _guardians(self, users: list[dict[str, str]]) -> None:
        by_id = {r["sourcedId"]: r for r in users}
        children: dict[str, set[str]] = defaultdict(set)
        for row in users:
            agents = split_list(row.get("agentSourcedIds", ""))
            for agent in agents:
                if row["sourcedId"] in self.pupils:
                    children[agent].add(row["sourcedId"])
                elif agent in self.pupils:
                    children[row["sourcedId"]].add(agent)
        per_link = self._link_relations(users)
        for sid, row in by_id.items():
            if not any(role in mapping.GUARDIAN_ROLES for role, _ in self.roles.get(sid, [])):
                continue
            person = self.people.get(sid)
            if person is None:
                continue
            kids = children.get(sid, set())
            if not kids:
                self.warn(
                    "users",
                    row,
                    "agentSourcedIds",
                    tr("guardian {sid!r} is linked to no pupil: no guardianship", sid=sid),
                )
                continue
            default = row.get("metadata.relation", "")
            for kid in sorted(kids):
                pupil = self.pupils[kid]
                relation = per_link.get((sid, kid)) or (default if default in RELATIONS else None)
                found = await self.db.fetchrow(
                    "SELECT id, relation FROM guardianship WHERE student_id = {} AND person_id = {}",
                    pupil["id"],
                    person,
                )
                if found is None:
                    await self.db.execute(
                        "INSERT INTO guardianship (region_id, province_id, school_id, student_id, person_id, relation) "
                        "VALUES ({}, {}, {}, {}, {}, {})",
                        pupil["region_id"],
                        pupil["province_id"],
                        pupil["school_id"],
                        pupil["id"],
                        person,
                        relation or "guardian",
                    )
                    self.count("guardianships", "created")
                elif relation is not None and relation != found["relation"]:
                    await self.db.execute("UPDATE guardianship SET relation = {} WHERE id = {}", relation, found["id"])
                    self.count("guardianships", "updated")
                    self.warn(
                        "users",
                        row,
                        "metadata.relation",
                        tr(
                            "the relation of {sid!r} to pupil {pupil!r} changes from {old} to {new}",
                            sid=sid,
                            pupil=kid,
                            old=found["relation"],
                            new=relation,
                        ),
                    )
                node = await self.ctx.services.tenants.by_id(pupil["school_id"])
                assert node is not None
                await self._membership(person, "parent", node)
