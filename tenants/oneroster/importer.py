"""Importing a checked OneRoster bundle at a tenant node: all of it in one scoped transaction, or nothing.

Mapping: orgs → the tenant tree (state → region, district/local → province, school → school),
academicSessions → school years and terms, courses → subjects per level, classes → classes
(a scheduled class naming its homeroom in ``metadata.homeroomClass`` adds a subject to that class;
any other scheduled class is a class of its own), users + roles → persons and memberships, pupils,
guardians, enrollments → enrolments, homeroom teachers and teaching assignments, demographics → a
pupil's birth date and sex, lineItems/results → grade assessments and marks (grades module on).

Every sourcedId is remembered per importing tenant (``oneroster_link``), so importing the same
bundle again updates what it created instead of creating it twice. A dry run does the whole import
and rolls it back, so its report is exactly what a real run would do.

A guardian's relation (mother, father, guardian) belongs to each guardian–pupil link: it is read from the
pupil's ``metadata.agentRelations`` (``guardianSourcedId=relation``, as the export writes it), else from the
guardian's ``metadata.relation``; a link given no relation is created as "guardian" and an existing one is left
as it is. An existing link's relation is changed only when the bundle names another one, and every such change
is reported as a warning.

Mark sheets past draft (submitted, validated, published) are never changed: a lineItem or result that says
exactly what is stored is matched as it is, anything else for such a sheet is refused.

People are matched by e-mail. An existing person is linked (and given roles) only when the importer
already reaches them: a role at a node where the importer holds the import permission, or the account
of a pupil of the importing scope.
Any other existing address is refused with one neutral message ("cannot be used by this import; ask the
platform administrator"): it names no region, school, role or name, and the report's counts only ever
count persons the importer may see, so an import reveals no more than that the address is taken, which
creating an account with it would reveal anyway. A platform administrator's import links any address.
Every membership an import adds is written to the audit log (``membership.add``), like one added by hand.

A mark (results.csv) is written only for a pupil of the lineItem's school who is, or was, enrolled in
the lineItem's class.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from litestar.exceptions import HTTPException

from core import access, audit
from core.context import RequestContext
from core.db import scope_filter
from core.identity import normalise_email
from core.school import service as school
from core.school.csv_import import WRITE_CONFLICTS
from core.scope import Scope
from core.tenancy import KINDS, SLUG_RE, TenantInfo, parse_path
from tenants import service as tenants
from tenants.oneroster import mapping
from tenants.oneroster.bundle import MAX_ISSUES, Bundle, Issue, split_list, tr

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RELATIONS = frozenset({"mother", "father", "guardian"})
SCORED = frozenset({"fully graded", "partially graded", "submitted"})


class ImportReport(msgspec.Struct, kw_only=True):
    """What an import found and did: ``ok`` only when nothing was wrong (and, unless a dry run, it was written)."""

    ok: bool
    dry_run: bool
    version: str = ""
    tenant: str = ""
    error_count: int = 0
    errors: list[Issue] = []
    warnings: list[Issue] = []
    #: object kind → {"created": n, "updated": n, "linked": n}
    counts: dict[str, dict[str, int]] = {}
    #: Another import or edit wrote the same rows meanwhile: nothing was written, try again.
    conflict: bool = False


class _Abort(Exception):
    """Rolls the transaction back (a dry run, or errors found while mapping)."""


class Importer:
    """One import at one tenant node, inside the caller's ``db.scoped`` transaction."""

    def __init__(self, ctx: RequestContext, anchor: TenantInfo, bundle: Bundle) -> None:
        self.ctx = ctx
        self.db = ctx.services.db
        self.anchor = anchor
        self.bundle = bundle
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: {"created": 0, "updated": 0, "linked": 0})
        self.links: dict[tuple[str, str], tuple[int, str]] = {}
        self.pending: dict[tuple[str, str], tuple[int, str]] = {}
        self.now = datetime.now(UTC)
        self.orgs: dict[str, TenantInfo | None] = {}
        self.years: dict[str, int] = {}  # session sourcedId → school_year id
        self.year_bounds: dict[int, tuple[date, date]] = {}
        self.terms: dict[str, int] = {}  # session sourcedId → term id
        self.subjects: dict[str, str] = {}  # course sourcedId → subject code
        self.classes: dict[str, dict[str, Any]] = {}
        self.pupils: dict[str, dict[str, Any]] = {}  # user sourcedId → student row
        self.people: dict[str, int] = {}  # user sourcedId → person id
        self.roles: dict[str, list[tuple[str, str]]] = defaultdict(list)  # user → [(role, org sourcedId)]
        self.assessments: dict[str, dict[str, Any]] = {}
        self.touched_people: set[int] = set()
        #: where the importer holds the import permission (see :meth:`_reachable`)
        self.reach: Scope | None = None
        #: class id → pupils enrolled in it (now or before), for checking results
        self.class_pupils: dict[int, set[int]] = {}
        #: users whose own row failed (later rows naming them are not reported again)
        self.failed_users: set[str] = set()
        #: mark sheet id → its state, for sheets past draft (matched, never changed)
        self.locked: dict[int, str] = {}

    # -- bookkeeping ---------------------------------------------------------------------------

    def error(self, file: str, row: dict[str, str] | int, column: str, message: str) -> None:
        """Record an error (the import will be rolled back)."""
        line = row if isinstance(row, int) else int(row.get("_row", 0))
        if file == "users" and isinstance(row, dict):
            self.failed_users.add(row["sourcedId"])
        self.errors.append(Issue(f"{file}.csv", line, column, message))

    def warn(self, file: str, row: dict[str, str] | int, column: str, message: str) -> None:
        """Record a warning (the row is skipped or read leniently)."""
        line = row if isinstance(row, int) else int(row.get("_row", 0))
        self.warnings.append(Issue(f"{file}.csv", line, column, message, "warning"))

    def count(self, kind: str, what: str) -> None:
        """Count one created, updated or linked object."""
        self.counts[kind][what] += 1

    async def load_links(self) -> None:
        """The sourcedIds earlier imports at this node mapped."""
        rows = await self.db.fetch(
            "SELECT kind, sourced_id, local_id, local_key FROM oneroster_link WHERE anchor_id = {} AND source = {}",
            self.anchor.id,
            self.bundle.system,
        )
        self.links = {(r["kind"], r["sourced_id"]): (int(r["local_id"]), r["local_key"]) for r in rows}

    async def link(self, kind: str, sourced_id: str, local_id: int, key: str = "") -> None:
        """Remember (or move) what a sourcedId stands for; written in batches by :meth:`flush_links`."""
        if self.links.get((kind, sourced_id)) == (local_id, key):
            return
        self.links[(kind, sourced_id)] = (local_id, key)
        self.pending[(kind, sourced_id)] = (local_id, key)

    async def flush_links(self) -> None:
        """Write the new or moved links (one statement per batch of rows)."""
        cols = self.anchor.scope_columns()
        rows = [
            (
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                self.anchor.id,
                self.bundle.system,
                kind,
                sourced_id,
                local_id,
                key,
                self.now,
            )
            for (kind, sourced_id), (local_id, key) in self.pending.items()
        ]
        for start in range(0, len(rows), 1000):
            await self.db.executemany(
                "INSERT INTO oneroster_link (region_id, province_id, school_id, anchor_id, source, kind, sourced_id, "
                "local_id, local_key, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) "
                "ON CONFLICT (anchor_id, source, kind, sourced_id) DO UPDATE SET local_id = excluded.local_id, "
                "local_key = excluded.local_key, updated_at = excluded.updated_at",
                rows[start : start + 1000],
            )
        self.pending.clear()

    def linked(self, kind: str, sourced_id: str) -> int | None:
        """The local id a sourcedId was mapped to before."""
        found = self.links.get((kind, sourced_id))
        return found[0] if found else None

    def scoped(self, alias: str = "") -> tuple[str, list[Any]]:
        """The request's tenant filter."""
        return scope_filter(self.ctx.scope, alias)

    # -- the whole run ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Map every file in dependency order."""
        path = self.anchor.path
        #: National reference data (school years, terms, subjects) is added by region or platform administrators.
        self.may_add_reference = (await self.ctx.scope_for("calendar.manage")).covers(path)
        await self.load_links()
        await self.import_orgs()
        if self.errors:
            return
        await self.import_sessions()
        await self.import_courses()
        await self.import_classes()
        await self.collect_roles()
        await self.import_users()
        await self.import_enrollments()
        await self.import_demographics()
        if "lineItems" in self.bundle.rows:
            await self.import_gradebook()
        if not self.errors:
            await self.flush_links()

    # -- orgs ----------------------------------------------------------------------------------

    def _ordered_orgs(self) -> list[dict[str, str]]:
        rows = self.bundle.by_id("orgs")
        out: list[dict[str, str]] = []
        state: dict[str, int] = {}

        def visit(sid: str) -> None:
            """Parents before children (depth first); a cycle is an error."""
            if state.get(sid) == 2:
                return
            if state.get(sid) == 1:
                self.error("orgs", rows[sid], "parentSourcedId", tr("org {sid!r} is its own ancestor", sid=sid))
                return
            state[sid] = 1
            parent = rows[sid].get("parentSourcedId", "")
            if parent in rows:
                visit(parent)
            state[sid] = 2
            out.append(rows[sid])

        for sid in rows:
            visit(sid)
        return out

    async def import_orgs(self) -> None:
        """Map orgs onto the tenant tree below (or at, or above) the importing node; create what is missing."""
        manage = await self.ctx.scope_for("tenants.manage")
        anchor_rank = KINDS.index(self.anchor.kind)
        taken: dict[int, str] = {}
        for row in self._ordered_orgs():
            sid = row["sourcedId"]
            kind = mapping.TYPE_KINDS.get(row["type"].casefold() if row["type"] else "")
            if kind is None:
                self.warn(
                    "orgs",
                    row,
                    "type",
                    tr("org {sid!r} of type {type!r} has no place in the tenant tree", sid=sid, type=row["type"]),
                )
                self.orgs[sid] = None
                continue
            rank = KINDS.index(kind)
            node: TenantInfo | None = None
            previous = self.linked("org", sid)
            if previous is not None:
                found = await self.ctx.services.tenants.by_id(previous)
                if (
                    found is not None
                    and found.kind == kind
                    and (found.id in self.anchor.path or self.anchor.covers(found))
                ):
                    node = found
            if node is None and rank <= anchor_rank:
                node = await self.ctx.services.tenants.by_id(self.anchor.path[rank])
            if node is None:
                node = await self._child_org(row, kind, manage)
                if node is None:
                    self.orgs[sid] = None
                    continue
            if rank <= anchor_rank and node.id != self.anchor.path[rank]:
                self.error(
                    "orgs",
                    row,
                    "sourcedId",
                    tr("org {sid!r} was imported elsewhere before; it is not part of this tenant", sid=sid),
                )
                continue
            if node.id in taken and rank <= anchor_rank and kind != "platform":
                self.error(
                    "orgs",
                    row,
                    "sourcedId",
                    tr(
                        "org {sid!r} and {taken!r} both stand for {slug}: import this bundle higher up",
                        sid=sid,
                        taken=taken[node.id],
                        slug=node.slug,
                    ),
                )
                continue
            taken[node.id] = sid
            self.orgs[sid] = node
            if kind != "platform":
                await self.link("org", sid, node.id)

    async def _child_org(self, row: dict[str, str], kind: str, manage: Any) -> TenantInfo | None:
        """An org below the importing node: found under its parent by slug or code, else created there."""
        sid = row["sourcedId"]
        expected = KINDS[KINDS.index(kind) - 1]
        parent_sid = row.get("parentSourcedId", "")
        parent: TenantInfo | None
        if parent_sid:
            parent = self.orgs.get(parent_sid)
            if parent is None:
                self.error(
                    "orgs",
                    row,
                    "parentSourcedId",
                    tr("the parent {parent_sid!r} of org {sid!r} was not imported", parent_sid=parent_sid, sid=sid),
                )
                return None
        elif self.anchor.kind == expected:
            parent = self.anchor
        else:
            self.error(
                "orgs",
                row,
                "parentSourcedId",
                tr(
                    "org {sid!r} ({type}) needs a parent org of type {expected} to be placed under {slug}",
                    sid=sid,
                    type=row["type"],
                    expected=mapping.KIND_TYPES[expected],
                    slug=self.anchor.slug,
                ),
            )
            return None
        if parent.kind != expected:
            self.error(
                "orgs",
                row,
                "parentSourcedId",
                tr(
                    "a {type} sits under a {expected} org, not under a {found} ({parent})",
                    type=row["type"],
                    expected=mapping.KIND_TYPES[expected],
                    found=mapping.KIND_TYPES[parent.kind],
                    parent=parent_sid or parent.slug,
                ),
            )
            return None
        identifier = row.get("identifier", "")[:40]
        candidates = await self.db.fetch(
            "SELECT id, slug, code FROM tenant WHERE parent_id = {} AND kind = {}", parent.id, kind
        )
        for cand in candidates:
            if cand["slug"] == sid.lower() or (identifier and cand["code"] == identifier):
                found = await self.ctx.services.tenants.by_id(cand["id"])
                self.count("orgs", "linked")
                return found
        if not manage.covers(parent.path):
            self.error(
                "orgs",
                row,
                "sourcedId",
                tr(
                    "org {sid!r} would be a new {kind} under {slug}: you may not create it",
                    sid=sid,
                    kind=kind,
                    slug=parent.slug,
                ),
            )
            return None
        readable = SLUG_RE.match(sid.lower()) and any(c.isalpha() for c in sid)
        slug = await self._free_slug(sid.lower() if readable else mapping.slugify(row["name"]))
        node = await tenants.create_node(
            self.ctx,
            parent,
            kind=kind,
            slug=slug,
            code=identifier or None,
            name_ar=row.get("metadata.nameAr", "")[:200],
            name_fr=row["name"][:200],
            name_en=row.get("metadata.nameEn", "")[:200],
            default_locale=parent.default_locale,
        )
        self.count("orgs", "created")
        return node

    async def _free_slug(self, base: str) -> str:
        slug, n = base[:80], 1
        while await self.db.fetchval("SELECT id FROM tenant WHERE slug = {}", slug) is not None:
            n += 1
            slug = f"{base[:74]}-{n}"
        return slug

    # -- sessions ------------------------------------------------------------------------------

    async def _year(self, label: str, starts: date, ends: date) -> int:
        row = await self.db.fetchrow("SELECT id, starts_on, ends_on FROM school_year WHERE label = {}", label)
        if row is None and not self.may_add_reference:
            self.errors.append(
                Issue(
                    "academicSessions.csv",
                    0,
                    "schoolYear",
                    tr("school year {label} does not exist: ask your region", label=label),
                )
            )
            return 0
        if row is None:
            row = await self.db.fetchrow(
                "INSERT INTO school_year (label, starts_on, ends_on) VALUES ({}, {}, {}) RETURNING id, starts_on, "
                "ends_on",
                label,
                starts,
                ends,
            )
            assert row is not None
            self.count("schoolYears", "created")
            self.warnings.append(
                Issue(
                    "academicSessions.csv",
                    0,
                    "",
                    tr("school year {label} did not exist: created", label=label),
                    "warning",
                )
            )
        self.year_bounds[int(row["id"])] = (_as_date(row["starts_on"]), _as_date(row["ends_on"]))
        return int(row["id"])

    async def import_sessions(self) -> None:
        """School years become (or find) our school years; semesters and terms our terms, numbered by date."""
        rows = self.bundle.rows.get("academicSessions", [])
        by_id = {r["sourcedId"]: r for r in rows}
        region = self.anchor.region_id
        spans: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            label = mapping.year_label(row["schoolYear"])
            parent = by_id.get(row.get("parentSourcedId", ""))
            if parent is not None and parent["type"].casefold() == "schoolyear":
                label = mapping.year_label(parent["schoolYear"])
            spans[label].append(row)
        for label, members in spans.items():
            starts = min(date.fromisoformat(r["startDate"]) for r in members)
            ends = max(date.fromisoformat(r["endDate"]) for r in members)
            year_id = await self._year(label, starts, ends)
            if not year_id:
                continue
            terms = sorted(
                (r for r in members if r["type"].casefold() in ("semester", "term")), key=lambda r: r["startDate"]
            )
            for row in members:
                self.years[row["sourcedId"]] = year_id
                if row["type"].casefold() == "schoolyear":
                    await self.link("session", row["sourcedId"], year_id, "year")
            for number, row in enumerate(terms, start=1):
                term = await self.db.fetchrow(
                    "SELECT id FROM term WHERE school_year_id = {} AND number = {} AND (tenant_id IS NULL OR "
                    "tenant_id = {}) ORDER BY tenant_id IS NULL",
                    year_id,
                    number,
                    region,
                )
                if term is None and not self.may_add_reference:
                    self.error(
                        "academicSessions",
                        row,
                        "type",
                        tr("{label} has no term {number}: ask your region", label=label, number=number),
                    )
                    continue
                if term is None:
                    term = await self.db.fetchrow(
                        "INSERT INTO term (school_year_id, tenant_id, number, starts_on, ends_on) "
                        "VALUES ({}, {}, {}, {}, {}) RETURNING id",
                        year_id,
                        region,
                        number,
                        date.fromisoformat(row["startDate"]),
                        date.fromisoformat(row["endDate"]),
                    )
                    assert term is not None
                    self.count("terms", "created")
                else:
                    self.count("terms", "linked")
                self.terms[row["sourcedId"]] = int(term["id"])
                await self.link("session", row["sourcedId"], int(term["id"]), "term")
            for row in members:
                kind = row["type"].casefold()
                if kind in ("schoolyear", "semester", "term"):
                    continue
                start = row["startDate"]
                holder = next((t for t in terms if t["startDate"] <= start <= t["endDate"]), None)
                if holder is None:
                    self.warn(
                        "academicSessions",
                        row,
                        "type",
                        tr("{type} {sourcedId!r} lies in no term", type=row["type"], sourcedId=row["sourcedId"]),
                    )
                    continue
                self.terms[row["sourcedId"]] = self.terms[holder["sourcedId"]]
                await self.link("session", row["sourcedId"], self.terms[holder["sourcedId"]], "term")

    # -- courses -------------------------------------------------------------------------------

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
        where, args = self.scoped()
        found = None
        previous = self.linked("class", sid)
        if previous is not None:
            found = await self.db.fetchrow(
                f"SELECT id, school_id, school_year_id FROM school_class WHERE id = {{}} AND {where}", previous, *args
            )
        if found is None:
            found = await self.db.fetchrow(
                "SELECT id, school_id, school_year_id FROM school_class WHERE school_id = {} AND school_year_id = {} "
                f"AND name = {{}} AND {where}",
                node.id,
                year_id,
                name,
                *args,
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

    # -- users ---------------------------------------------------------------------------------

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
        where, args = self.scoped()
        columns = "id, national_code, region_id, province_id, school_id, person_id"
        found = None
        previous = self.linked("pupil", sid)
        if previous is not None:
            found = await self.db.fetchrow(
                f"SELECT {columns} FROM student WHERE id = {{}} AND {where}", previous, *args
            )
        code = mapping.pupil_code(row.get("identifier", ""), split_list(row.get("userIds", "")))
        provisional = 0
        if found is None and code is not None:
            found = await self.db.fetchrow(
                f"SELECT {columns} FROM student WHERE national_code = {{}} AND {where}", code, *args
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
                "INSERT INTO student (region_id, province_id, school_id, national_code, first_name, last_name, "
                "first_name_ar, last_name_ar, gender, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, '', {}) "
                f"RETURNING {columns}",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                code,
                *names.values(),
                self.now,
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
            if not email or not _EMAIL.match(email) or len(email) > 254:
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
        where, args = self.scoped()
        pupil = await self.db.fetchval(f"SELECT id FROM student WHERE person_id = {{}} AND {where}", person, *args)
        return pupil is not None

    async def _membership(self, person: int, role: str, node: TenantInfo) -> None:
        """Grant a role at a school (idempotent); each new membership is audited."""
        exists = await self.db.fetchval(
            "SELECT id FROM membership WHERE person_id = {} AND role = {} AND tenant_id = {}", person, role, node.id
        )
        if exists is None:
            await self.db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
                person,
                role,
                node.id,
                self.now,
            )
            await audit.record(
                self.db,
                actor_id=self.ctx.person_id,
                action="membership.add",
                object_type="person",
                object_id=person,
                tenant=node,
                after={"role": role, "source": "oneroster"},
            )
            self.count("memberships", "created")
        self.touched_people.add(person)

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

    # -- enrollments ---------------------------------------------------------------------------

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
        where, args = self.scoped()
        previous = self.linked("enrollment", row["sourcedId"])
        found = None
        if previous is not None:
            found = await self.db.fetchval(f"SELECT id FROM enrolment WHERE id = {{}} AND {where}", previous, *args)
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
                closing = max(starts - timedelta(days=1), _as_date(opened["starts_on"]))
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

    # -- gradebook -----------------------------------------------------------------------------

    async def import_gradebook(self) -> None:
        """lineItems → assessments of the class's sheet for the term; results → marks (grades module on)."""
        categories = self.bundle.by_id("categories")
        session_column = "gradingPeriodSourcedId" if self.bundle.version == "1.1" else "academicSessionSourcedId"
        positions: dict[int, int] = {}
        for row in self.bundle.rows.get("lineItems", []):
            klass = self.classes.get(row["classSourcedId"])
            if klass is None:
                continue
            node = await self.ctx.services.tenants.by_id(klass["school_id"])
            assert node is not None
            if "grades" in await self.ctx.services.disabled_for(node.path):
                self.error(
                    "lineItems", row, "classSourcedId", tr("the grades module is off for {slug}", slug=node.slug)
                )
                continue
            if klass["subject"] is None:
                self.error("lineItems", row, "classSourcedId", tr("marks need a scheduled class (a subject)"))
                continue
            term = self.terms.get(row.get(session_column, ""))
            if term is None:
                self.error("lineItems", row, session_column, tr("the session is no term of ours"))
                continue
            if await self.db.fetchval(
                "SELECT id FROM grade_term_close WHERE school_id = {} AND term_id = {}", node.id, term
            ):
                self.error("lineItems", row, session_column, tr("that term is closed at the school: marks are locked"))
                continue
            sheet = await self._sheet(row, klass, node, term)
            if sheet is None:
                continue
            category = categories.get(row.get("categorySourcedId", ""), {})
            label = f"{category.get('sourcedId', '')} {category.get('title', '')}".casefold()
            kind = "exam" if "exam" in label else "activity" if "activ" in label else "cc"
            try:
                max_score = Decimal(row.get("resultValueMax") or "20").quantize(Decimal("0.01"))
            except InvalidOperation:
                max_score = Decimal(0)
            if not Decimal(0) < max_score <= Decimal(100):
                self.error("lineItems", row, "resultValueMax", tr("the maximum score must be above 0 and at most 100"))
                continue
            previous = self.linked("lineItem", row["sourcedId"])
            where, args = self.scoped()
            found = None
            if previous is not None:
                found = await self.db.fetchval(
                    f"SELECT id FROM grade_assessment WHERE id = {{}} AND sheet_id = {{}} AND {where}",
                    previous,
                    sheet,
                    *args,
                )
            scheduled = date.fromisoformat(row["assignDate"])
            if found is None:
                found = await self.db.fetchval(
                    "SELECT id FROM grade_assessment WHERE sheet_id = {} AND title = {} AND scheduled_on = {} "
                    "ORDER BY id",
                    sheet,
                    row["title"][:100],
                    scheduled,
                )
                if found is not None:
                    self.count("lineItems", "linked")
            state = self.locked.get(sheet)
            if state is not None:
                same = found is not None and await self._same_assessment(
                    int(found), row["title"][:100], kind, scheduled, max_score
                )
                if not same:
                    self.error(
                        "lineItems",
                        row,
                        "classSourcedId",
                        tr("the mark sheet is {state}: not overwritten", state=state),
                    )
                    continue
            elif found is not None:
                await self.db.execute(
                    "UPDATE grade_assessment SET title = {}, kind = {}, scheduled_on = {}, max_score = {} "
                    "WHERE id = {}",
                    row["title"][:100],
                    kind,
                    scheduled,
                    max_score,
                    found,
                )
                if previous is not None:
                    self.count("lineItems", "updated")
            else:
                if sheet not in positions:
                    positions[sheet] = int(
                        await self.db.fetchval(
                            "SELECT COALESCE(MAX(position), 0) FROM grade_assessment WHERE sheet_id = {}", sheet
                        )
                    )
                positions[sheet] += 1
                cols = node.scope_columns()
                found = await self.db.fetchval(
                    "INSERT INTO grade_assessment (region_id, province_id, school_id, sheet_id, class_id, "
                    "subject_code, term_id, kind, position, title, scheduled_on, max_score, weight, version, "
                    "created_at) "
                    "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, 1, 0, {}) RETURNING id",
                    cols["region_id"],
                    cols["province_id"],
                    cols["school_id"],
                    sheet,
                    klass["id"],
                    klass["subject"],
                    term,
                    kind,
                    positions[sheet],
                    row["title"][:100],
                    scheduled,
                    max_score,
                    self.now,
                )
                self.count("lineItems", "created")
            self.assessments[row["sourcedId"]] = {
                "id": int(found),
                "max": max_score,
                "class_id": klass["id"],
                "school_id": klass["school_id"],
                "locked": state,
            }
            await self.link("lineItem", row["sourcedId"], int(found))
        await self._results()

    async def _same_assessment(
        self, assessment: int, title: str, kind: str, scheduled: date, max_score: Decimal
    ) -> bool:
        """Whether a stored assessment already says what a lineItem says."""
        stored = await self.db.fetchrow(
            "SELECT title, kind, scheduled_on, max_score FROM grade_assessment WHERE id = {}", assessment
        )
        return stored is not None and (
            stored["title"],
            stored["kind"],
            _as_date(stored["scheduled_on"]),
            _decimal(stored["max_score"]),
        ) == (title, kind, scheduled, max_score)

    async def _sheet(self, row: dict[str, str], klass: dict[str, Any], node: TenantInfo, term: int) -> int | None:
        """The class's mark sheet for the subject and term, created as a draft when there is none.

        A sheet past draft is remembered in ``self.locked``: its assessments and marks may only be matched as
        they are stored, never changed.
        """
        found = await self.db.fetchrow(
            "SELECT id, state FROM grade_sheet WHERE class_id = {} AND subject_code = {} AND term_id = {}",
            klass["id"],
            klass["subject"],
            term,
        )
        if found is not None:
            if found["state"] != "draft":
                self.locked[int(found["id"])] = str(found["state"])
            return int(found["id"])
        teacher = await self.db.fetchval(
            "SELECT person_id FROM teaching_assignment WHERE class_id = {} AND subject_code = {} ORDER BY id",
            klass["id"],
            klass["subject"],
        )
        if teacher is None:
            self.error(
                "lineItems",
                row,
                "classSourcedId",
                tr("nobody teaches {subject} in that class", subject=klass["subject"]),
            )
            return None
        cols = node.scope_columns()
        return int(
            await self.db.fetchval(
                "INSERT INTO grade_sheet (region_id, province_id, school_id, class_id, subject_code, term_id, "
                "teacher_id, state) VALUES ({}, {}, {}, {}, {}, {}, {}, 'draft') RETURNING id",
                cols["region_id"],
                cols["province_id"],
                cols["school_id"],
                klass["id"],
                klass["subject"],
                term,
                teacher,
            )
        )

    async def _in_class(self, class_id: int) -> set[int]:
        """The pupils with an enrolment (current or past) in a class, read once per class."""
        if class_id not in self.class_pupils:
            where, args = self.scoped()
            rows = await self.db.fetch(
                f"SELECT student_id FROM enrolment WHERE class_id = {{}} AND {where}", class_id, *args
            )
            self.class_pupils[class_id] = {int(r["student_id"]) for r in rows}
        return self.class_pupils[class_id]

    async def _results(self) -> None:
        """Marks for the pupils of each lineItem's class: a pupil of another school or class is refused."""
        for row in self.bundle.rows.get("results", []):
            assessment = self.assessments.get(row["lineItemSourcedId"])
            pupil = self.pupils.get(row["studentSourcedId"])
            if assessment is None:
                continue
            if pupil is None:
                self.error("results", row, "studentSourcedId", tr("marks are given to pupils only"))
                continue
            class_sid = row.get("classSourcedId", "")
            if class_sid and self.classes.get(class_sid, {}).get("id") != assessment["class_id"]:
                self.error("results", row, "classSourcedId", tr("the result's class is not its lineItem's class"))
                continue
            if pupil["school_id"] != assessment["school_id"]:
                self.error(
                    "results",
                    row,
                    "studentSourcedId",
                    tr(
                        "pupil {student!r} belongs to another school than the class of lineItem {item!r}",
                        student=row["studentSourcedId"],
                        item=row["lineItemSourcedId"],
                    ),
                )
                continue
            if pupil["id"] not in await self._in_class(assessment["class_id"]):
                self.error(
                    "results",
                    row,
                    "studentSourcedId",
                    tr(
                        "pupil {student!r} is not enrolled in the class of lineItem {item!r}",
                        student=row["studentSourcedId"],
                        item=row["lineItemSourcedId"],
                    ),
                )
                continue
            status_value = row["scoreStatus"].casefold()
            score: Decimal | None = None
            if status_value in SCORED:
                status = "present"
                try:
                    score = Decimal(row.get("score", ""))
                except InvalidOperation:
                    self.error(
                        "results", row, "score", tr("a {status_value} result needs a score", status_value=status_value)
                    )
                    continue
                if score != score.quantize(Decimal("0.01")) or not Decimal(0) <= score <= assessment["max"]:
                    self.error(
                        "results",
                        row,
                        "score",
                        tr("the score must be 0 to {max} with at most 2 decimals", max=assessment["max"]),
                    )
                    continue
            elif status_value == "exempt":
                status = "excused"
            elif status_value == "not submitted":
                status = "absent"
            else:
                self.warn(
                    "results",
                    row,
                    "scoreStatus",
                    tr("{scoreStatus!r} is not a mark: ignored", scoreStatus=row["scoreStatus"]),
                )
                continue
            stored = await self.db.fetchrow(
                "SELECT id, score, status FROM grade_mark WHERE assessment_id = {} AND student_id = {}",
                assessment["id"],
                pupil["id"],
            )
            same = stored is not None and (stored["status"], _decimal(stored["score"])) == (status, score)
            if assessment["locked"] is not None and not same:
                self.error(
                    "results",
                    row,
                    "score",
                    tr("the mark sheet is {state}: not overwritten", state=assessment["locked"]),
                )
                continue
            found = None if stored is None else stored["id"]
            if same:
                pass
            elif found is None:
                found = await self.db.fetchval(
                    "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, "
                    "status, updated_at, updated_by) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
                    pupil["region_id"],
                    pupil["province_id"],
                    pupil["school_id"],
                    assessment["id"],
                    pupil["id"],
                    score,
                    status,
                    self.now,
                    self.ctx.person_id,
                )
                self.count("results", "created")
            else:
                await self.db.execute(
                    "UPDATE grade_mark SET score = {}, status = {}, updated_at = {}, updated_by = {} WHERE id = {}",
                    score,
                    status,
                    self.now,
                    self.ctx.person_id,
                    found,
                )
                self.count("results", "updated")
            await self.link("result", row["sourcedId"], int(found))


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _decimal(value: Any) -> Decimal | None:
    """A stored score or maximum as a two-place decimal (SQLite hands back floats or text)."""
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


async def import_bundle(
    ctx: RequestContext, anchor: TenantInfo, bundle: Bundle, issues: list[Issue], *, dry_run: bool
) -> ImportReport:
    """Map a checked bundle in one scoped transaction; roll back on any error, or at the end of a dry run."""
    importer = Importer(ctx, anchor, bundle)
    db = ctx.services.db
    conflict = False
    try:
        async with db.scoped(ctx.scope):
            try:
                await importer.run()
            except WRITE_CONFLICTS as exc:
                detail = exc.detail if isinstance(exc, HTTPException) else str(exc).splitlines()[0]
                importer.errors.append(
                    Issue(
                        "bundle",
                        0,
                        "",
                        tr(
                            "someone changed the same data meanwhile ({detail}): nothing was imported; try again",
                            detail=detail,
                        ),
                    )
                )
                conflict = True
            if not importer.errors:
                await audit.record(
                    db,
                    actor_id=ctx.person_id,
                    action="oneroster.import",
                    object_type="tenant",
                    object_id=anchor.id,
                    tenant=anchor,
                    after={k: dict(v) for k, v in importer.counts.items()},
                )
            if importer.errors or dry_run:
                raise _Abort
    except _Abort:
        pass
    finally:
        ctx.services.tenants.invalidate()
        for person in importer.touched_people:
            ctx.services.grants.invalidate(person)
        if ctx.person_id is not None:
            ctx.services.grants.invalidate(ctx.person_id)
    report = build_report(
        issues + importer.errors + importer.warnings, bundle.version, anchor, dry_run, importer.counts
    )
    report.conflict = conflict
    return report


def build_report(
    issues: list[Issue],
    version: str,
    anchor: TenantInfo,
    dry_run: bool,
    counts: dict[str, dict[str, int]] | None = None,
) -> ImportReport:
    """The report of an import: errors first (capped), then warnings."""
    errors = [i for i in issues if i.severity == "error"]
    warnings = [i for i in issues if i.severity == "warning"]
    return ImportReport(
        ok=not errors,
        dry_run=dry_run,
        version=version,
        tenant=anchor.slug,
        error_count=len(errors),
        errors=errors[:MAX_ISSUES],
        warnings=warnings[:MAX_ISSUES],
        counts={k: dict(v) for k, v in (counts or {}).items()} if not errors else {},
    )
