"""OneRoster 1.2 CSV exchange: export → import into an empty deployment, the Ed-Fi 1.1 bundle, broken bundles,
idempotent re-import, tenant boundaries.

The shared ``world`` is only read here (exports, refused imports); imports that write go to empty
deployments of their own (``Target``), on the same backend as the world. Round trips that compare a
whole region start from a ``pristine`` demo deployment of this module's own, which no other test writes to.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.app import build_plugin_host, build_services, create_app
from core.migrate import migrate
from core.scope import Scope
from core.services import Services
from tests.conftest import (
    PASSWORD,
    PG_ADMIN_URL,
    PgServer,
    World,
    _create_pg,
    _drop_pg,
    _pg_reachable,
    build_world,
    make_settings,
    missing_service,
    new_client,
    run_sync,
)
from tests.doubles import OutboxMailer

FIXTURES = Path(__file__).parent / "fixtures" / "oneroster"
EDFI = FIXTURES / "edfi-lms-toolkit-oneroster-1.1"
REGION = "casablanca-settat"
OTHER_REGION = "rabat-sale-kenitra"
ADMIN = "admin@target.test"
#: Tables an import writes to: none of them may change when an import is refused.
COUNTED = (
    "tenant",
    "school_year",
    "term",
    "subject",
    "person",
    "membership",
    "student",
    "guardianship",
    "school_class",
    "enrolment",
    "teaching_assignment",
    "grade_sheet",
    "grade_assessment",
    "grade_mark",
    "oneroster_link",
    "audit_log",
)


# --------------------------------------------------------------------------- bundles


def zip_files(files: dict[str, str | bytes]) -> bytes:
    """A zip of named members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content.encode("utf-8") if isinstance(content, str) else content)
    return buffer.getvalue()


def edfi_files() -> dict[str, bytes]:
    """The Ed-Fi bundle's files, byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(EDFI.glob("*.csv"))}


def unzip(data: bytes) -> dict[str, list[dict[str, str]]]:
    """A bundle's CSV files as rows (by file name without ``.csv``)."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            text = archive.read(name).decode("utf-8-sig")
            out[name.removesuffix(".csv")] = list(csv.DictReader(io.StringIO(text)))
    return out


def unzip_raw(data: bytes) -> dict[str, bytes]:
    """A bundle's members as bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --------------------------------------------------------------------------- empty deployments


def _pg_server() -> PgServer:
    problem = run_sync(_pg_reachable())
    if problem:
        missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    suffix = f"or_{os.getpid()}_{secrets.token_hex(4)}"
    server = PgServer(
        PG_ADMIN_URL,
        f"madrasa_test_{suffix}",
        f"madrasa_owner_{suffix}",
        f"madrasa_app_{suffix}",
        secrets.token_hex(12),
    )
    run_sync(_create_pg(server))
    return server


@dataclass
class Target:
    """An empty deployment: migrated, with a platform administrator and nothing else."""

    services: Services
    client: httpx.AsyncClient
    pg: PgServer | None
    passwords: dict[str, str]

    async def sql(self, query: str, *args: Any) -> Any:
        """One value, read with the platform scope."""
        async with self.services.db.scoped(Scope.everything(), write=False):
            return await self.services.db.fetchval(query, *args)

    async def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """Rows, read with the platform scope."""
        async with self.services.db.scoped(Scope.everything(), write=False):
            return await self.services.db.fetch(query, *args)

    async def counts(self) -> dict[str, int]:
        """Row counts of the tables an import writes to."""
        return {t: int(await self.sql(f'SELECT COUNT(*) FROM "{t}"')) for t in COUNTED}

    async def token(self, email: str) -> str:
        """An access token."""
        response = await self.client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def add_person(self, email: str, role: str, slug: str) -> str:
        """An account with a role at a node."""
        db = self.services.db
        now = datetime.now(UTC)
        async with db.transaction():
            pid = await db.fetchval(
                "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
                "VALUES ({}, {}, {}, '', 'fr', {}, {}) RETURNING id",
                email,
                self.services.identity.hash_password(PASSWORD),
                email.split("@")[0],
                True,
                now,
            )
            node = await db.fetchval("SELECT id FROM tenant WHERE slug = {}", slug)
            await db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) VALUES ({}, {}, {}, {})",
                pid,
                role,
                node,
                now,
            )
        self.services.grants.invalidate()
        self.passwords[email] = PASSWORD
        return email

    async def call(self, method: str, path: str, *, as_: str, tenant: str, **kwargs: Any) -> httpx.Response:
        """The API as an account, under ``/t/<tenant>``."""
        headers = {**kwargs.pop("headers", {}), "authorization": f"Bearer {await self.token(as_)}"}
        return await self.client.request(method, f"/t/{tenant}{path}", headers=headers, **kwargs)

    async def close(self) -> None:
        """Stop the deployment and drop its database."""
        await self.client.aclose()
        await self.services.db.stop()
        if self.pg is not None:
            await _drop_pg(self.pg)


async def build_target(backend: str, tmp: Path) -> Target:
    """Migrate an empty database and add one platform administrator."""
    pg = None
    if backend == "postgres":
        problem = await _pg_reachable()
        if problem:
            missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
        suffix = f"or_{os.getpid()}_{secrets.token_hex(4)}"
        pg = PgServer(
            PG_ADMIN_URL,
            f"madrasa_test_{suffix}",
            f"madrasa_owner_{suffix}",
            f"madrasa_app_{suffix}",
            secrets.token_hex(12),
        )
        await _create_pg(pg)
    settings = make_settings(backend, tmp, pg)
    services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
    await services.db.start()
    await services.storage.ensure_ready()
    await migrate(services.db, services.migration_sets)
    app = create_app(settings, services=services)
    target = Target(services, new_client(app), pg, {})
    await target.add_person(ADMIN, "platform_admin", "platform")
    return target


@pytest.fixture(scope="module")
async def pristine(world: World, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A demo deployment of this module's own, on the world's backend: only what the demo and the seeding made."""
    pg = None
    if world.backend == "postgres":
        suffix = f"orw_{os.getpid()}_{secrets.token_hex(4)}"
        pg = PgServer(
            PG_ADMIN_URL,
            f"madrasa_test_{suffix}",
            f"madrasa_owner_{suffix}",
            f"madrasa_app_{suffix}",
            secrets.token_hex(12),
        )
        await _create_pg(pg)
    own = await build_world(world.backend, tmp_path_factory.mktemp(f"pristine-{world.backend}"), pg)
    try:
        yield own
    finally:
        await own.client.aclose()
        await own.services.db.stop()
        if pg is not None:
            await _drop_pg(pg)


@pytest.fixture
async def target(world: World, tmp_path: Path) -> AsyncIterator[Target]:
    """An empty deployment on the world's backend."""
    t = await build_target(world.backend, tmp_path)
    try:
        yield t
    finally:
        await t.close()


async def post_bundle(
    client_call: Any, data: bytes, *, dry_run: bool = False, name: str = "bundle.zip", **kwargs: Any
) -> httpx.Response:
    """POST a bundle to the import endpoint."""
    return await client_call(
        "POST",
        "/api/v1/oneroster/import",
        files={"file": (name, data, "application/zip")},
        data={"dry_run": "true" if dry_run else "false"},
        **kwargs,
    )


# --------------------------------------------------------------------------- normalised rosters


async def rosters(sql_rows: Any, region: str) -> dict[str, set[tuple[Any, ...]]]:
    """What a region's rosters say, without our ids: schools, classes, pupils, families, staff, marks."""
    path = (await sql_rows("SELECT path FROM tenant WHERE slug = {}", region))[0]["path"]
    like = path + "%"
    school_join = "JOIN tenant ts ON ts.id = {alias}.school_id AND ts.path LIKE {{}}"

    async def q(query: str) -> set[tuple[Any, ...]]:
        return {tuple(str(v) for v in r.values()) for r in await sql_rows(query, like)}

    return {
        "orgs": await q(
            "SELECT t.slug, t.kind, t.code, t.name_fr, t.name_ar, t.name_en, p.slug AS parent FROM tenant t "
            "JOIN tenant p ON p.id = t.parent_id WHERE t.path LIKE {}"
        ),
        "classes": await q(
            "SELECT ts.slug, y.label, c.name, c.level_code, c.track_code FROM school_class c "
            + school_join.format(alias="c")
            + " JOIN school_year y ON y.id = c.school_year_id"
        ),
        "pupils": await q(
            "SELECT ts.slug, s.national_code, s.first_name, s.last_name, s.first_name_ar, s.last_name_ar, "
            "s.birth_date, s.gender, p.email FROM student s "
            + school_join.format(alias="s")
            + " LEFT JOIN person p ON p.id = s.person_id"
        ),
        "enrolments": await q(
            "SELECT s.national_code, c.name, e.starts_on, e.ends_on FROM enrolment e "
            + school_join.format(alias="e")
            + " JOIN student s ON s.id = e.student_id AND s.school_id = e.school_id "
            "JOIN school_class c ON c.id = e.class_id"
        ),
        "guardians": await q(
            "SELECT s.national_code, p.email, p.full_name, p.full_name_ar, g.relation FROM guardianship g "
            + school_join.format(alias="g")
            + " JOIN student s ON s.id = g.student_id JOIN person p ON p.id = g.person_id"
        ),
        "memberships": await q(
            "SELECT p.email, p.full_name, m.role, ts.slug FROM membership m JOIN tenant ts ON ts.id = m.tenant_id "
            "AND ts.path LIKE {} AND ts.kind = 'school' JOIN person p ON p.id = m.person_id "
            "WHERE m.role IN ('teacher', 'school_director', 'parent', 'student')"
        ),
        "assignments": await q(
            "SELECT ts.slug, c.name, a.subject_code, p.email FROM teaching_assignment a "
            + school_join.format(alias="a")
            + " JOIN school_class c ON c.id = a.class_id JOIN person p ON p.id = a.person_id"
        ),
        "homerooms": await q(
            "SELECT ts.slug, c.name, p.email FROM school_class c "
            + school_join.format(alias="c")
            + " JOIN person p ON p.id = c.homeroom_teacher_id"
        ),
        "assessments": await q(
            "SELECT ts.slug, c.name, a.subject_code, t.number, a.kind, a.title, a.scheduled_on, a.max_score "
            "FROM grade_assessment a "
            + school_join.format(alias="a")
            + " JOIN school_class c ON c.id = a.class_id JOIN term t ON t.id = a.term_id"
        ),
        "marks": await q(
            "SELECT s.national_code, a.title, a.subject_code, m.score, m.status FROM grade_mark m "
            + school_join.format(alias="m")
            + " JOIN student s ON s.id = m.student_id JOIN grade_assessment a ON a.id = m.assessment_id"
        ),
    }


async def world_rows(world: World, query: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of the world, with the platform scope."""
    async with world.services.db.scoped(Scope.everything(), write=False):
        return await world.services.db.fetch(query, *args)


async def export_as(world: World, email: str, tenant: str) -> httpx.Response:
    """Export through the API."""
    return await world.api("GET", "/api/v1/oneroster/export", as_=email, tenant=tenant)


# --------------------------------------------------------------------------- export → import


async def test_region_export_imports_into_an_empty_deployment_with_the_same_rosters(
    pristine: World, target: Target
) -> None:
    world = pristine
    response = await export_as(world, "region.casa@madrasa.demo", REGION)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    bundle = response.content
    files = unzip(bundle)
    manifest = {r["propertyName"]: r["value"] for r in files["manifest"]}
    assert manifest["oneroster.version"] == "1.2" and manifest["manifest.version"] == "1.0"
    assert manifest["file.users"] == "bulk" and manifest["file.resources"] == "absent"

    before = await target.counts()
    dry = await post_bundle(target.call, bundle, dry_run=True, as_=ADMIN, tenant="platform")
    assert dry.status_code == 200, dry.text
    assert dry.json()["ok"] and dry.json()["dry_run"]
    assert dry.json()["counts"]["pupils"]["created"] > 0
    assert await target.counts() == before, "a dry run writes nothing"

    done = await post_bundle(target.call, bundle, as_=ADMIN, tenant="platform")
    assert done.status_code == 201, done.text
    report = done.json()
    assert report["ok"] and not report["errors"], report["errors"][:5]
    assert report["counts"] == dry.json()["counts"], "the dry run reports what the import does"

    source = await rosters(lambda q, *a: world_rows(world, q, *a), REGION)
    copied = await rosters(target.rows, REGION)
    for key in source:
        assert copied[key] == source[key], (
            key,
            sorted(source[key] - copied[key])[:3],
            sorted(copied[key] - source[key])[:3],
        )
    assert len(source["pupils"]) > 150 and len(source["enrolments"]) > 150
    assert source["guardians"] and source["assignments"] and source["memberships"]
    assert source["assessments"], "the seeded assessments travel as lineItems"

    # Importing the same bundle again creates nothing.
    counts = await target.counts()
    again = await post_bundle(target.call, bundle, as_=ADMIN, tenant="platform")
    assert again.status_code == 201, again.text
    created = {k: v["created"] for k, v in again.json()["counts"].items() if v["created"]}
    assert created == {}
    after = await target.counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in counts.items() if k != "audit_log"}
    assert await rosters(target.rows, REGION) == copied

    # And the copy exports to the same bundle content (our ids aside).
    token = await target.token(ADMIN)
    second = await target.client.get(
        "/t/platform/api/v1/oneroster/export", headers={"authorization": f"Bearer {token}"}
    )
    assert second.status_code == 200
    files_again = unzip(second.content)
    # sourcedIds come from natural keys (slugs, codes, e-mails, class names): the same in both deployments.
    for name in ("users", "roles", "classes", "courses", "enrollments", "demographics", "lineItems"):
        assert {r["sourcedId"] for r in files[name]} == {r["sourcedId"] for r in files_again[name]}, name
    assert {r["sourcedId"] for r in files["orgs"]} | {"platform"} == {r["sourcedId"] for r in files_again["orgs"]}
    users = {r["sourcedId"]: r for r in files["users"]}
    for row in files_again["users"]:
        same = {k: v for k, v in users[row["sourcedId"]].items() if k != "primaryOrgSourcedId"}
        assert {k: v for k, v in row.items() if k != "primaryOrgSourcedId"} == same


# --------------------------------------------------------------------------- the Ed-Fi 1.1 bundle


async def test_the_edfi_oneroster_11_bundle_is_read_leniently_and_imported_once(target: Target) -> None:
    response = await target.call(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        tenant="platform",
        json={"parent": "platform", "kind": "region", "slug": "texas", "name_fr": "Texas"},
    )
    assert response.status_code == 201, response.text
    admin = await target.add_person("region@texas.test", "region_admin", "texas")
    bundle = zip_files(edfi_files())

    before = await target.counts()
    done = await post_bundle(target.call, bundle, as_=admin, tenant="texas")
    assert done.status_code == 201, done.text
    report = done.json()
    assert report["ok"] and report["version"] == "1.1"
    warnings = " | ".join(w["message"] for w in report["warnings"])
    assert "tolerant 1.1 mode" in warnings
    assert "manifest.version 1 read as 1.0" in warnings
    assert "end with empty cells" in warnings  # the two teacher rows of users.csv
    assert "provisional codes" in warnings
    assert "school year 2020-2021 did not exist" in warnings

    tree = {r["slug"]: r for r in await target.rows("SELECT slug, kind, name_fr, parent_id FROM tenant")}
    assert tree["grand-bend-isd"]["kind"] == "province" and tree["grand-bend-isd"]["name_fr"] == "Grand Bend ISD"
    assert tree["grand-bend-high-school"]["kind"] == "school"
    classes = await target.rows(
        "SELECT c.name, c.level_code, y.label FROM school_class c JOIN school_year y ON y.id = c.school_year_id "
        "ORDER BY c.name"
    )
    assert [(c["name"], c["level_code"], c["label"]) for c in classes] == [
        ("ALG-1", "3AC", "2020-2021"),
        ("ENG-1", "3AC", "2020-2021"),
    ]
    pupils = await target.rows("SELECT national_code, first_name, last_name, birth_date, gender FROM student")
    assert len(pupils) == 8
    assert all(p["national_code"].startswith("X") and len(p["national_code"]) == 10 for p in pupils)
    mary = next(p for p in pupils if p["first_name"] == "Mary")
    assert (mary["last_name"], str(mary["birth_date"])[:10], mary["gender"]) == ("Archer", "1997-05-30", "F")
    assert await target.sql("SELECT COUNT(*) FROM enrolment WHERE ends_on IS NOT NULL") == 20
    teaching = await target.rows(
        "SELECT p.email, c.name, a.subject_code FROM teaching_assignment a JOIN person p ON p.id = a.person_id "
        "JOIN school_class c ON c.id = a.class_id ORDER BY p.email"
    )
    assert [(t["email"], t["name"], t["subject_code"]) for t in teaching] == [
        ("kelley.christian@studentgps.org", "ALG-1", "ALG-1"),
        ("sara.preston@studentgps.org", "ENG-1", "ENG-1"),
    ]
    terms = await target.rows(
        "SELECT t.number, t.starts_on FROM term t JOIN school_year y ON y.id = t.school_year_id "
        "WHERE y.label = '2020-2021' ORDER BY t.number"
    )
    assert [str(t["starts_on"])[:10] for t in terms] == ["2020-08-17", "2021-01-04"]
    assert (
        await target.sql(
            "SELECT COUNT(*) FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE m.role = 'teacher' "
            "AND t.slug = 'grand-bend-high-school'"
        )
        == 2
    )

    # The same bundle again: nothing new.
    counts = await target.counts()
    assert counts["student"] == before["student"] + 8
    again = await post_bundle(target.call, bundle, as_=admin, tenant="texas")
    assert again.status_code == 201, again.text
    assert {k: v["created"] for k, v in again.json()["counts"].items() if v["created"]} == {}
    after = await target.counts()
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in counts.items() if k != "audit_log"}
    assert {p["national_code"] for p in await target.rows("SELECT national_code FROM student")} == {
        p["national_code"] for p in pupils
    }


async def test_the_edfi_bundle_at_the_platform_is_refused_clearly(target: Target) -> None:
    """Its district has no state above it: there is no region to put it in, and nothing is written."""
    before = await target.counts()
    response = await post_bundle(target.call, zip_files(edfi_files()), as_=ADMIN, tenant="platform")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors[0]["file"] == "orgs.csv" and errors[0]["row"] == 2 and errors[0]["column"] == "parentSourcedId"
    assert "needs a parent org of type state" in errors[0]["message"]
    assert await target.counts() == before


# --------------------------------------------------------------------------- a small valid bundle, then broken ones

MINIMAL = FIXTURES / "minimal-1.2"


def minimal_files() -> dict[str, str]:
    """The hand-made valid 1.2 bundle, as text."""
    return {p.name: p.read_text("utf-8") for p in sorted(MINIMAL.glob("*.csv"))}


def replace(files: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    """A copy with one text change in one file (the change must apply)."""
    assert old in files[name], (name, old)
    return {**files, name: files[name].replace(old, new, 1)}


async def test_a_small_12_bundle_imports_at_a_region_with_guardians_and_subjects(target: Target) -> None:
    await target.call(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        tenant="platform",
        json={"parent": "platform", "kind": "region", "slug": "oriental", "name_fr": "Oriental"},
    )
    admin = await target.add_person("region@oriental.test", "region_admin", "oriental")
    response = await post_bundle(target.call, zip_files(minimal_files()), as_=admin, tenant="oriental")
    assert response.status_code == 201, response.text
    assert not response.json()["warnings"], response.json()["warnings"]
    school = await target.sql("SELECT path FROM tenant WHERE slug = 'school-1'")
    assert school is not None and school.count("/") == 4, "school-1 sits under dist-1 under the region"
    assert await target.sql("SELECT code FROM tenant WHERE slug = 'dist-1'") == "901"
    rows = await target.rows(
        "SELECT s.national_code, s.gender, p.email, g.relation FROM guardianship g "
        "JOIN student s ON s.id = g.student_id JOIN person p ON p.id = g.person_id ORDER BY s.national_code"
    )
    assert [(r["national_code"], r["gender"], r["email"]) for r in rows] == [
        ("B100000001", "M", "g1@bundle.test"),
        ("B100000002", "F", "g1@bundle.test"),
    ]
    assert (
        await target.sql(
            "SELECT COUNT(*) FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = 'g1@bundle.test' "
            "AND m.role = 'parent'"
        )
        == 1
    )
    assignment = await target.rows(
        "SELECT c.name, a.subject_code FROM teaching_assignment a JOIN school_class c ON c.id = a.class_id"
    )
    assert [(a["name"], a["subject_code"]) for a in assignment] == [("TC-1", "MATH")], "attached to the homeroom"
    assert await target.sql("SELECT COUNT(*) FROM school_class") == 1
    assert await target.sql("SELECT COUNT(*) FROM enrolment WHERE ends_on IS NULL") == 2


BROKEN: dict[str, tuple[Any, tuple[str, int, str, str]]] = {
    "missing manifest": (
        lambda f: {k: v for k, v in f.items() if k != "manifest.csv"},
        ("manifest.csv", 0, "", "manifest.csv is missing"),
    ),
    "wrong header order": (
        lambda f: replace(f, "classes.csv", "title,grades,courseSourcedId", "grades,title,courseSourcedId"),
        ("classes.csv", 1, "title", "columns are out of order"),
    ),
    "header case": (
        lambda f: replace(f, "users.csv", "givenName", "GivenName"),
        ("users.csv", 1, "givenName", "case-sensitive"),
    ),
    "missing required value": (
        lambda f: replace(f, "users.csv", "Sara,Bennis", ",Bennis"),
        ("users.csv", 4, "givenName", "givenName is required"),
    ),
    "dangling reference": (
        lambda f: replace(f, "enrollments.csv", "e2,,,k1,", "e2,,,k9,"),
        ("enrollments.csv", 3, "classSourcedId", "'k9' is not in classes.csv"),
    ),
    "class to a missing course": (
        lambda f: replace(f, "classes.csv", ",c-tc-math,", ",c-nope,"),
        ("classes.csv", 3, "courseSourcedId", "'c-nope' is not in courses.csv"),
    ),
    "bad vocabulary": (
        lambda f: replace(f, "roles.csv", "primary,teacher", "primary,headmaster"),
        ("roles.csv", 2, "role", "'headmaster' is not one of"),
    ),
    "absent file present": (
        lambda f: {**f, "lineItems.csv": "sourcedId,status,dateLastModified\n"},
        ("lineItems.csv", 0, "", "file.lineItems is absent, but lineItems.csv is in the bundle"),
    ),
    "bulk file missing": (
        lambda f: {k: v for k, v in f.items() if k != "roles.csv"},
        ("roles.csv", 0, "", "file.roles is bulk, but roles.csv is missing"),
    ),
    "delta mode": (
        lambda f: replace(f, "manifest.csv", "file.users,bulk", "file.users,delta"),
        ("manifest.csv", 24, "value", "only bulk bundles are imported"),
    ),
    "unknown version": (
        lambda f: replace(f, "manifest.csv", "oneroster.version,1.2", "oneroster.version,1.0"),
        ("manifest.csv", 3, "value", "only 1.2 and 1.1 are read"),
    ),
    "bad date": (
        lambda f: replace(f, "demographics.csv", "2010-03-04", "04/03/2010"),
        ("demographics.csv", 2, "birthDate", "is not a date (YYYY-MM-DD)"),
    ),
    "duplicate sourcedId": (
        lambda f: replace(f, "roles.csv", "r3,", "r2,"),
        ("roles.csv", 3, "sourcedId", "appears more than once"),
    ),
    "unknown extension column": (
        lambda f: replace(f, "orgs.csv", "parentSourcedId", "parentSourcedId,address"),
        ("orgs.csv", 1, "address", "extension columns are named metadata.*"),
    ),
    "unlisted file": (
        lambda f: {**f, "notes.csv": "a,b\n"},
        ("notes.csv", 0, "", "not a OneRoster 1.2 file named in the manifest"),
    ),
    "status filled in strict 1.2 sense is tolerated, not a bad sourcedId": (
        lambda f: replace(f, "orgs.csv", "school-1,,,", "school 1,,,"),
        ("orgs.csv", 3, "sourcedId", "1–255 characters"),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_broken_bundle_is_reported_and_nothing_is_written(world: World, case: str) -> None:
    change, (file, row, column, message) = BROKEN[case]
    data = zip_files(change(minimal_files()))
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", data, "application/zip")},
    )
    assert response.status_code == 422, response.text
    report = response.json()
    assert not report["ok"] and report["error_count"] >= 1 and report["counts"] == {}
    assert any(
        e["file"] == file and e["row"] == row and e["column"] == column and message in e["message"]
        for e in report["errors"]
    ), report["errors"]
    assert await world_counts(world) == before


async def world_counts(world: World) -> dict[str, int]:
    """Row counts of the tables an import writes to, in the world."""
    return {t: int(await world.sql(f'SELECT COUNT(*) FROM "{t}"')) for t in COUNTED}


async def test_not_a_zip_and_a_zip_bomb_are_refused_with_a_report(world: World) -> None:
    for data, message in (
        (b"sourcedId,name\n1,x\n", "this is not a zip archive"),
        (zip_files({"manifest.csv": b"propertyName,value\n", "users.csv": b"\0" * (65 * 1024 * 1024)}), "unpacks to"),
    ):
        before = await world_counts(world)
        response = await world.api(
            "POST",
            "/api/v1/oneroster/import",
            as_="region.casa@madrasa.demo",
            tenant=REGION,
            files={"file": ("bundle.zip", data, "application/zip")},
        )
        assert response.status_code == 422, response.text
        assert message in response.json()["errors"][0]["message"]
        assert await world_counts(world) == before


async def test_an_oversized_upload_is_refused_with_413(world: World) -> None:
    data = b"PK" + b"x" * (world.settings.max_upload_bytes + 10)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", data, "application/zip")},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_bad_dry_run_flag_is_a_400(world: World) -> None:
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
        data={"dry_run": "maybe"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_an_error_found_while_writing_rolls_everything_back(world: World) -> None:
    """Orgs, classes and pupils are written before a pupil code turns out to belong to another region."""
    foreign_code = await world.sql(
        "SELECT national_code FROM student WHERE id = {}", world.objects["lycee-moulay-youssef"]["student_id"]
    )
    files = replace(minimal_files(), "users.csv", "B100000002,,,", f"{foreign_code},,,")
    before = await world_counts(world)
    slugs = {r["slug"] for r in await world_rows(world, "SELECT slug FROM tenant")}
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(files), "application/zip")},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["file"], e["row"], e["column"]) for e in errors] == [("users.csv", 4, "identifier")]
    assert "registered in another school or region" in errors[0]["message"]
    assert await world_counts(world) == before
    assert {r["slug"] for r in await world_rows(world, "SELECT slug FROM tenant")} == slugs
    assert await world.services.tenants.by_slug("school-1") is None


async def test_a_dry_run_at_a_region_writes_nothing_and_reports_what_it_would_do(world: World) -> None:
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
        data={"dry_run": "true"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] and report["dry_run"]
    assert report["counts"]["orgs"]["created"] == 2 and report["counts"]["pupils"]["created"] == 2
    assert await world_counts(world) == before
    assert await world.services.tenants.by_slug("school-1") is None


# --------------------------------------------------------------------------- tenant boundaries


@pytest.mark.parametrize(
    ("actor", "tenant"),
    [
        ("region.casa@madrasa.demo", OTHER_REGION),
        ("region.casa@madrasa.demo", "lycee-moulay-youssef"),
        ("director.lycee-ibn-batouta@test.ma", "lycee-moulay-youssef"),
        ("teacher.lycee-ibn-batouta@test.ma", "lycee-ibn-batouta"),
        ("parent@madrasa.demo", "lycee-ibn-batouta"),
        ("student@madrasa.demo", "lycee-ibn-batouta"),
    ],
)
async def test_import_and_export_outside_ones_reach_are_403(world: World, actor: str, tenant: str) -> None:
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_=actor,
        tenant=tenant,
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await export_as(world, actor, tenant)).status_code == 403
    assert await world_counts(world) == before


async def test_a_director_cannot_import_a_bundle_of_several_schools_into_one(world: World) -> None:
    files = replace(
        minimal_files(),
        "orgs.csv",
        "school-1,,,Lycée Test,school,90101X,dist-1",
        "school-1,,,Lycée Test,school,90101X,dist-1\r\nschool-2,,,Collège Test,school,90102Y,dist-1",
    )
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="director.lycee-ibn-batouta@test.ma",
        tenant="lycee-ibn-batouta",
        files={"file": ("bundle.zip", zip_files(files), "application/zip")},
    )
    assert response.status_code == 422, response.text
    assert any("import this bundle higher up" in e["message"] for e in response.json()["errors"])
    assert await world_counts(world) == before


async def test_a_region_export_holds_nothing_of_the_other_region(world: World) -> None:
    response = await export_as(world, "region.casa@madrasa.demo", REGION)
    assert response.status_code == 200
    files = unzip(response.content)
    home_path = await world.sql("SELECT path FROM tenant WHERE slug = {}", REGION)
    home = {r["slug"] for r in await world_rows(world, "SELECT slug FROM tenant WHERE path LIKE {}", home_path + "%")}
    assert {r["sourcedId"] for r in files["orgs"]} == home
    other_path = await world.sql("SELECT path FROM tenant WHERE slug = {}", OTHER_REGION)
    foreign_codes = {
        r["national_code"]
        for r in await world_rows(
            world,
            "SELECT s.national_code FROM student s JOIN tenant t ON t.id = s.school_id WHERE t.path LIKE {}",
            other_path + "%",
        )
    }
    codes = {r["identifier"] for r in files["users"] if r["sourcedId"].startswith("pupil-")}
    assert codes and not codes & foreign_codes
    emails = {r["email"] for r in files["users"]}
    for school in ("lycee-moulay-youssef", "ecole-al-amal"):
        assert f"director.{school}@test.ma" not in emails and f"teacher.{school}@test.ma" not in emails
    # No field names a node of the other region: slugs are whole fields or items of comma-separated lists
    # (a home school's slug may well contain a foreign slug, e.g. ``ecole-al-amal-settat-…``).
    # Slugs and school codes are unique; names are not (a home school may be called like a foreign one).
    foreign = await world_rows(world, "SELECT slug, kind, code FROM tenant WHERE path LIKE {}", other_path + "%")
    foreign_tokens = {r["slug"] for r in foreign} | {r["code"] for r in foreign if r["kind"] == "school"}
    assert {OTHER_REGION, "lycee-moulay-youssef", "ecole-al-amal", "42103C"} <= foreign_tokens
    tokens = {
        token.strip()
        for rows in files.values()
        for row in rows
        for value in row.values()
        if value
        for token in value.split(",")
    }
    assert not tokens & foreign_tokens, sorted(tokens & foreign_tokens)[:5]
    # The demo parent has a child in each region: only the home child is his here.
    parent = next(r for r in files["users"] if r["email"] == "parent@madrasa.demo")
    children = [r for r in files["users"] if parent["sourcedId"] in r["agentSourcedIds"].split(",")]
    assert [c["givenName"] for c in children] == ["Amine"]


async def test_a_director_exports_only_the_school(world: World) -> None:
    response = await export_as(world, "director.lycee-ibn-batouta@test.ma", "lycee-ibn-batouta")
    assert response.status_code == 200
    files = unzip(response.content)
    assert {(r["sourcedId"], r["type"]) for r in files["orgs"]} == {
        ("casablanca-settat", "state"),
        ("casablanca-anfa", "district"),
        ("lycee-ibn-batouta", "school"),
    }
    assert {r["schoolSourcedId"] for r in files["classes"]} == {"lycee-ibn-batouta"}
    assert {r["orgSourcedId"] for r in files["roles"]} == {"lycee-ibn-batouta"}
    assert "password" not in {k for r in files["users"] for k, v in r.items() if v and k == "password"}


# --------------------------------------------------------------------------- gradebook


async def test_marks_travel_as_lineitems_and_results(pristine: World, tmp_path: Path) -> None:
    world = pristine
    # An assessment in a class of the demo (many pupils) besides the seeded one (a class of one pupil).
    director = "director.lycee-ibn-batouta@test.ma"
    klass = (
        await world_rows(
            world,
            "SELECT a.class_id, a.subject_code FROM teaching_assignment a WHERE a.school_id = {} AND (SELECT COUNT(*) "
            "FROM enrolment e WHERE e.class_id = a.class_id AND e.ends_on IS NULL) >= 3 ORDER BY a.id LIMIT 1",
            world.ids["lycee-ibn-batouta"],
        )
    )[0]
    created = await world.api(
        "POST",
        "/api/v1/grades/assessments",
        as_=director,
        tenant="lycee-ibn-batouta",
        json={
            "class_id": klass["class_id"],
            "subject_code": klass["subject_code"],
            "term_id": world.objects["lycee-ibn-batouta"]["term_id"],
            "scheduled_on": "2026-10-05",
            "title": "Contrôle de classe",
        },
    )
    assert created.status_code == 201, created.text
    first = await build_target(world.backend, tmp_path / "first")
    second = await build_target(world.backend, tmp_path / "second")
    try:
        response = await export_as(world, director, "lycee-ibn-batouta")
        done = await post_bundle(first.call, response.content, as_=ADMIN, tenant="platform")
        assert done.status_code == 201, done.text
        assert done.json()["counts"]["lineItems"]["created"] >= 1
        # Marks in the copy: a score, an absence and an excused pupil.
        async with first.services.db.scoped(Scope.everything()):
            db = first.services.db
            # An assessment of a class of three pupils or more, and pupils of that class (a mark of a pupil
            # outside the class is refused on import).
            assessment = await db.fetchrow(
                "SELECT id, class_id, region_id, province_id, school_id FROM grade_assessment a WHERE (SELECT COUNT(*) "
                "FROM enrolment e WHERE e.class_id = a.class_id AND e.ends_on IS NULL) >= 3 ORDER BY id LIMIT 1"
            )
            assert assessment is not None
            pupils = await db.fetch(
                "SELECT student_id FROM enrolment WHERE class_id = {} AND ends_on IS NULL ORDER BY student_id LIMIT 3",
                assessment["class_id"],
            )
            for pupil, (score, status) in zip(
                pupils, [(15.25, "present"), (None, "absent"), (None, "excused")], strict=True
            ):
                await db.execute(
                    "INSERT INTO grade_mark (region_id, province_id, school_id, assessment_id, student_id, score, "
                    "status, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                    assessment["region_id"],
                    assessment["province_id"],
                    assessment["school_id"],
                    assessment["id"],
                    pupil["student_id"],
                    score,
                    status,
                    datetime(2026, 10, 6, tzinfo=UTC),
                )
        exported = await first.call("GET", "/api/v1/oneroster/export", as_=ADMIN, tenant="platform")
        assert exported.status_code == 200
        files = unzip(exported.content)
        assert sorted(r["scoreStatus"] for r in files["results"]) == ["exempt", "fully graded", "not submitted"]
        assert {r["score"] for r in files["results"]} == {"15.25", ""}
        # With the grades module off for the school, neither export nor import touches marks, and both say so.
        school = "lycee-ibn-batouta"
        switched = await first.call(
            "PUT",
            f"/api/v1/tenants/{school}/modules/grades",
            as_=ADMIN,
            tenant="platform",
            json={"enabled": False, "reason": "no marks this year"},
        )
        assert switched.status_code in (200, 204), switched.text
        first.services.modules.invalidate()
        without = unzip((await first.call("GET", "/api/v1/oneroster/export", as_=ADMIN, tenant="platform")).content)
        assert "lineItems" not in without and "results" not in without
        manifest = {r["propertyName"]: r["value"] for r in without["manifest"]}
        assert manifest["file.lineItems"] == "absent"
        assert manifest["source.note"] == f"the grades module is off for {school}: lineItems and results left out"
        counts = await first.counts()
        left_out = await post_bundle(first.call, exported.content, as_=ADMIN, tenant="platform")
        assert left_out.status_code == 201, left_out.text
        warnings = left_out.json()["warnings"]
        assert [(w["file"], w["message"]) for w in warnings if "grades" in w["message"]] == [
            ("lineItems.csv", f"the grades module is off for {school}")
        ], warnings
        assert "lineItems" not in left_out.json()["counts"] and "results" not in left_out.json()["counts"]
        after = await first.counts()
        assert after.pop("audit_log") == counts.pop("audit_log") + 1  # the import itself
        assert after == counts

        # A mark above the maximum is refused with its row, and nothing lands in the second deployment.
        raw = unzip_raw(exported.content)
        raw["results.csv"] = raw["results.csv"].replace(b",15.25,", b",25,")
        empty = await second.counts()
        refused = await post_bundle(second.call, zip_files(raw), as_=ADMIN, tenant="platform")
        assert refused.status_code == 422, refused.text
        assert [(e["file"], e["column"]) for e in refused.json()["errors"]] == [("results.csv", "score")]
        assert "the score must be 0 to 20.00" in refused.json()["errors"][0]["message"]
        assert await second.counts() == empty

        copied = await post_bundle(second.call, exported.content, as_=ADMIN, tenant="platform")
        assert copied.status_code == 201, copied.text
        assert await rosters(second.rows, REGION) == await rosters(first.rows, REGION)
        marks = (await rosters(second.rows, REGION))["marks"]
        assert {(m[3], m[4]) for m in marks} == {("15.25", "present"), ("None", "absent"), ("None", "excused")}
    finally:
        await first.close()
        await second.close()


async def test_a_director_imports_at_the_school_but_adds_no_national_reference_data(target: Target) -> None:
    for body in (
        {"parent": "platform", "kind": "region", "slug": "souss", "name_fr": "Souss-Massa"},
        {"parent": "souss", "kind": "province", "slug": "agadir", "name_fr": "Agadir"},
        {"parent": "agadir", "kind": "school", "slug": "lycee-agadir", "name_fr": "Lycée d'Agadir"},
    ):
        response = await target.call("POST", "/api/v1/tenants", as_=ADMIN, tenant="platform", json=body)
        assert response.status_code == 201, response.text
    director = await target.add_person("director@agadir.test", "school_director", "lycee-agadir")

    # The Ed-Fi bundle names a school year that does not exist here: only a region may add it.
    before = await target.counts()
    refused = await post_bundle(target.call, zip_files(edfi_files()), as_=director, tenant="lycee-agadir")
    assert refused.status_code == 422, refused.text
    assert any(
        "school year 2020-2021 does not exist: ask your region" in e["message"] for e in refused.json()["errors"]
    )
    assert await target.counts() == before

    # The small bundle: its district is the school's province, its school the school itself; nothing is created above.
    done = await post_bundle(target.call, zip_files(minimal_files()), as_=director, tenant="lycee-agadir")
    assert done.status_code == 201, done.text
    assert done.json()["counts"].get("orgs", {}).get("created", 0) == 0
    assert done.json()["counts"]["pupils"]["created"] == 2
    assert await target.sql("SELECT COUNT(*) FROM tenant") == before["tenant"]
    school = await target.sql("SELECT id FROM tenant WHERE slug = 'lycee-agadir'")
    assert await target.sql("SELECT COUNT(*) FROM student WHERE school_id = {}", school) == 2
    assert await target.sql("SELECT COUNT(*) FROM school_class WHERE school_id = {} AND name = 'TC-1'", school) == 1


async def test_importing_a_regions_own_export_back_changes_nothing(pristine: World) -> None:
    """Every row of the bundle is matched to what exists (by slug, code, e-mail, class name): nothing to create."""
    world = pristine
    exported = await export_as(world, "region.casa@madrasa.demo", REGION)
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", exported.content, "application/zip")},
        data={"dry_run": "true"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] and not report["warnings"], report["warnings"][:3]
    assert {k: v["created"] for k, v in report["counts"].items() if v["created"]} == {}
    assert report["counts"]["pupils"]["linked"] > 150
    assert await world_counts(world) == before


async def test_two_imports_at_once_leave_one_copy(target: Target) -> None:
    """Concurrent imports of the same bundle: each commits whole or answers 409 with nothing written."""
    import asyncio

    await target.call(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        tenant="platform",
        json={"parent": "platform", "kind": "region", "slug": "fes-meknes", "name_fr": "Fès-Meknès"},
    )
    admin = await target.add_person("region@fes.test", "region_admin", "fes-meknes")
    await target.token(admin)
    data = zip_files(minimal_files())
    first, second = await asyncio.gather(
        post_bundle(target.call, data, as_=admin, tenant="fes-meknes"),
        post_bundle(target.call, data, as_=admin, tenant="fes-meknes"),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses in ([201, 201], [201, 409]), (first.text, second.text)
    for response in (first, second):
        if response.status_code == 409:
            assert response.json()["conflict"] and "try again" in response.json()["errors"][0]["message"]
    assert await target.sql("SELECT COUNT(*) FROM tenant WHERE slug IN ('dist-1', 'school-1')") == 2
    assert await target.sql("SELECT COUNT(*) FROM student") == 2
    assert await target.sql("SELECT COUNT(*) FROM person WHERE email = 'g1@bundle.test'") == 1
    assert await target.sql("SELECT COUNT(*) FROM guardianship") == 2


async def test_an_import_without_a_file_is_a_400_problem(world: World) -> None:
    response = await world.api(
        "POST", "/api/v1/oneroster/import", as_="region.casa@madrasa.demo", tenant=REGION, data={"dry_run": "true"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_province_admin_may_not_create_schools_by_import(world: World) -> None:
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="province.anfa@madrasa.demo",
        tenant="casablanca-anfa",
        files={"file": ("bundle.zip", zip_files(minimal_files()), "application/zip")},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["file"], e["row"], e["column"]) for e in errors] == [("orgs.csv", 3, "sourcedId")]
    assert "would be a new school under casablanca-anfa: you may not create it" in errors[0]["message"]
    assert await world_counts(world) == before


async def test_a_province_export_holds_only_the_province(world: World) -> None:
    response = await export_as(world, "province.anfa@madrasa.demo", "casablanca-anfa")
    assert response.status_code == 200, response.text
    files = unzip(response.content)
    # The province's schools as the database has them (other tests may add schools to it), never another's.
    path = await world.sql("SELECT path FROM tenant WHERE slug = 'casablanca-anfa'")
    expected = {
        r["slug"]
        for r in await world_rows(world, "SELECT slug FROM tenant WHERE kind = 'school' AND path LIKE {}", path + "%")
    }
    assert "lycee-ibn-batouta" in expected and "college-al-khawarizmi" not in expected
    schools = {r["sourcedId"] for r in files["orgs"] if r["type"] == "school"}
    assert schools == expected
    assert {r["sourcedId"] for r in files["orgs"]} == {"casablanca-settat", "casablanca-anfa"} | expected
    roles_at = {r["orgSourcedId"] for r in files["roles"]}
    assert "lycee-ibn-batouta" in roles_at and roles_at <= expected
    assert {r["schoolSourcedId"] for r in files["classes"]} <= expected


async def test_a_pupil_in_two_classes_at_once_is_refused(world: World) -> None:
    files = replace(
        minimal_files(),
        "classes.csv",
        "k1-math,",
        'k2,,,TC-2,10,c-tc,TC-2,homeroom,,school-1,"s1,s2",,,,\nk1-math,',
    )
    files = replace(files, "enrollments.csv", "e3,", "e4,,,k2,school-1,u-p1,student,,2026-09-07,\ne3,")
    before = await world_counts(world)
    response = await world.api(
        "POST",
        "/api/v1/oneroster/import",
        as_="region.casa@madrasa.demo",
        tenant=REGION,
        files={"file": ("bundle.zip", zip_files(files), "application/zip")},
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["file"], e["row"], e["column"]) for e in errors] == [("enrollments.csv", 4, "classSourcedId")]
    assert "a pupil is in one class at a time" in errors[0]["message"]
    assert await world_counts(world) == before
