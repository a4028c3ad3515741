"""Tenant archives: export a school or region, import it into another deployment, check equality.

Each backend gets its own source deployment (the test world, built on a fresh database, with marks
and a report card added) and fresh, empty target deployments (migrated, nothing else) built per
test; on PostgreSQL the target stores its files on S3 (a moto server over HTTP), on SQLite on the
file system, so both storage backends are crossed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import secrets
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from moto.server import ThreadedMotoServer

from core.app import build_plugin_host, build_services, create_app
from core.migrate import migrate
from core.scope import Scope
from core.services import Services
from core.sql import SQL, ident
from core.storage import FileSystemStorage, S3Storage
from tenants import archive, archive_cli
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

SCHOOL = "lycee-ibn-batouta"  # region casablanca-settat
REGION = "casablanca-settat"
OTHER_REGION = "rabat-sale-kenitra"
OTHER_SCHOOL = "lycee-moulay-youssef"
ADMIN = "admin@madrasa.demo"
REGION_ADMIN = "region.casa@madrasa.demo"
OTHER_REGION_ADMIN = "region.rabat@madrasa.demo"
TARGET_ADMIN = "root@target.test"
COUNTED = ("tenant", "person", "membership", "grade_mark", "grade_assessment", "stored_file", "audit_log", "student")


# --------------------------------------------------------------------------- deployments


def _pg_server() -> PgServer:
    problem = run_sync(_pg_reachable())
    if problem:
        missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    suffix = f"arc_{os.getpid()}_{secrets.token_hex(4)}"
    server = PgServer(
        PG_ADMIN_URL,
        f"madrasa_test_{suffix}",
        f"madrasa_owner_{suffix}",
        f"madrasa_app_{suffix}",
        secrets.token_hex(12),
    )
    run_sync(_create_pg(server))
    return server


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """A moto S3 server over plain HTTP."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


@dataclass
class Target:
    """An empty deployment: migrated, with one platform administrator and nothing else."""

    services: Services
    client: httpx.AsyncClient
    pg: PgServer | None

    async def sql(self, query: str, *args: Any) -> Any:
        """One value, read with the platform scope."""
        async with self.services.db.scoped(Scope.everything(), write=False):
            return await self.services.db.fetchval(query, *args)

    async def counts(self) -> dict[str, int]:
        """Row counts of the tables an import writes to."""
        return {t: int(await self.sql(SQL("SELECT COUNT(*) FROM {}", ident(t)))) for t in COUNTED}

    async def token(self, email: str, password: str = PASSWORD) -> str:
        """An access token in the target."""
        response = await self.client.post("/api/v1/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A seeded deployment of its own, with marks, a stored report card and a school logo."""
    backend = request.param
    pg = _pg_server() if backend == "postgres" else None
    world = await build_world(backend, tmp_path_factory.mktemp(f"archive-source-{backend}"), pg)
    try:
        await _add_grades(world)
        await _switch_homework_for_the_programme(world)
        yield world
    finally:
        await world.client.aclose()
        await world.services.db.stop()
        if pg is not None:
            run_sync(_drop_pg(pg))


async def _switch_homework_for_the_programme(world: World) -> None:
    """The demo programme turns homework on for its schools (a programme's switch, for the archive to carry).

    Written as the demo's seed would, without an audit row naming the platform administrator (an archive
    names such people only as references, which the tests below would then see remapped).
    """
    db = world.services.db
    async with db.scoped(Scope.everything()):
        programme_id = await db.fetchval("SELECT id FROM programme WHERE slug = 'nouveau-lycee'")
        await db.execute(
            "INSERT INTO module_setting (module, programme_id, enabled, reason, updated_at) "
            "VALUES ({}, {}, {}, {}, {})",
            "homework",
            programme_id,
            True,
            "Pilot of the new high-school model",
            datetime.now(UTC),
        )
    world.services.modules.invalidate()


async def _add_grades(world: World) -> None:
    """Marks through the grid API, a report card and a logo in storage."""
    director = f"director.{SCHOOL}@test.ma"
    objects = world.objects[SCHOOL]
    path = f"/api/v1/grades/assessments/{objects['assessment_id']}/marks"
    grid = await world.api("GET", path, as_=director, tenant=SCHOOL)
    assert grid.status_code == 200, grid.text
    response = await world.api(
        "PUT",
        path,
        as_=director,
        tenant=SCHOOL,
        headers={"if-match": grid.headers["etag"]},
        json={"marks": [{"student_id": objects["student_id"], "score": 14.5}]},
    )
    assert response.status_code == 200, response.text
    school = await world.services.tenants.by_slug(SCHOOL)
    assert school is not None
    cols = school.scope_columns()
    key = f"t/{school.id}/bulletins/{uuid.uuid4().hex}/bulletin-ar.pdf"
    logo = f"t/{school.id}/logos/{uuid.uuid4().hex}/logo.png"
    await world.services.storage.put(key, b"%PDF-1.4\n% report card\n", "application/pdf", tenant_id=school.id)
    await world.services.storage.put(logo, b"\x89PNG\r\n\x1a\nlogo", "image/png", tenant_id=school.id)
    db = world.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
            "storage_key, locale, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, 'ar', {})",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            objects["term_id"],
            objects["student_id"],
            objects["class_id"],
            key,
            datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC),
        )
        await db.execute("UPDATE tenant SET logo_key = {} WHERE id = {}", logo, school.id)
    world.services.tenants.invalidate()


@pytest.fixture
async def new_target(
    source: World, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    """A factory of empty target deployments on the source's backend (S3 storage on PostgreSQL)."""
    made: list[Target] = []

    async def make(root_id: int | None = None) -> Target:
        """An empty deployment whose administrator gets ``root_id`` (the next id when None)."""
        tmp = tmp_path_factory.mktemp(f"archive-target-{source.backend}")
        pg = _pg_server() if source.backend == "postgres" else None
        overrides: dict[str, Any] = {}
        if pg is not None:
            overrides = {
                "storage_backend": "s3",
                "s3_endpoint": request.getfixturevalue("moto"),
                "s3_access_key": "testing-access",
                "s3_secret_key": "testing-secret",
                "s3_bucket": f"target-{uuid.uuid4().hex[:12]}",
            }
        settings = make_settings(source.backend, tmp, pg, **overrides)
        services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
        await services.db.start()
        await services.storage.ensure_ready()
        await migrate(services.db, services.migration_sets)
        target = Target(services, new_client(create_app(settings, services=services)), pg)
        made.append(target)
        db = services.db
        async with db.transaction():
            id_column, id_value = (SQL("id, "), SQL("{}, ", root_id)) if root_id is not None else (SQL(), SQL())
            row = await db.fetchrow(
                SQL(
                    "INSERT INTO person ({}email, password_hash, full_name, full_name_ar, locale, active, created_at) "
                    "VALUES ({}{}, {}, 'Root', '', 'fr', {}, {}) RETURNING id",
                    id_column,
                    id_value,
                    TARGET_ADMIN,
                    services.identity.hash_password(PASSWORD),
                    True,
                    datetime.now(UTC),
                )
            )
            assert row is not None
            await db.execute(
                "INSERT INTO membership (person_id, role, tenant_id, created_at) "
                "SELECT {}, 'platform_admin', id, {} FROM tenant WHERE kind = 'platform'",
                row["id"],
                datetime.now(UTC),
            )
        return target

    yield make
    for target in made:
        await target.client.aclose()
        await target.services.db.stop()
        if target.pg is not None:
            run_sync(_drop_pg(target.pg))


async def _export(world: World, slug: str, path: Path) -> archive.Manifest:
    """An export as the deployment's operator (password hashes of the subtree's members kept)."""
    return await archive.export_tenant(world.services, slug, path, password_hashes=True)


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rows(members: dict[str, bytes], table: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in members[f"tables/{table}.jsonl"].splitlines()]


def _rezip(path: Path, members: dict[str, bytes]) -> Path:
    out = path.with_name(f"{path.stem}-{uuid.uuid4().hex[:6]}.zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _reseal(members: dict[str, bytes], table: str) -> None:
    """Recompute a table's hashes in the manifest after editing its member (a consistent forgery)."""
    manifest = json.loads(members["manifest.json"])
    data = members[f"tables/{table}.jsonl"]
    digest = archive.TableDigest()
    for line in data.splitlines():
        digest.add(line)
    for entry in manifest["tables"]:
        if entry["name"] == table:
            entry.update(
                rows=digest.count,
                sha256=digest.hexdigest(),
                member_sha256=hashlib.sha256(data).hexdigest(),
                member_bytes=len(data),
            )
    members["manifest.json"] = json.dumps(manifest).encode()


# --------------------------------------------------------------------------- export


async def test_school_export_holds_its_data_files_and_manifest(source: World, tmp_path: Path) -> None:
    """The manifest lists tables with counts and digests, the grades data and every stored file."""
    path = tmp_path / "school.zip"
    manifest = await _export(source, SCHOOL, path)
    members = _members(path)
    assert manifest.format == archive.FORMAT and manifest.format_version == archive.FORMAT_VERSION
    tables = {t.name: t for t in manifest.tables}
    assert {"tenant", "person", "membership", "student", "grade_mark", "grade_assessment", "grade_bulletin"} <= set(
        tables
    )
    assert not {"auth_session", "job", "password_reset", "login_attempt"} & set(tables)
    school_id = source.ids[SCHOOL]
    marks = _rows(members, "grade_mark")
    assert len(marks) == tables["grade_mark"].rows >= 1
    assert {"14.50"} <= {m["score"] for m in marks}
    assert all(m["school_id"] == school_id for m in marks)
    for table in manifest.tables:
        digest = archive.TableDigest()
        for line in members[table.member].splitlines():
            digest.add(line)
        assert (digest.count, digest.hexdigest()) == (table.rows, table.sha256)
    keys = {f.key for f in manifest.files}
    assert any("/bulletins/" in k for k in keys) and any("/logos/" in k for k in keys)
    stored = await source.sql("SELECT key FROM stored_file WHERE id = {}", source.files[SCHOOL])
    assert stored in keys
    for entry in manifest.files:
        data = members[entry.member]
        assert hashlib.sha256(data).hexdigest() == entry.sha256
        assert data == await source.services.storage.get(entry.key, tenant_id=entry.tenant_id)
    # The report card the world seeded without a file is reported, not silently dropped.
    assert any(k.endswith("/bulletins/seed/none.pdf") for k in manifest.missing_files)
    people = {p["email"] for p in _rows(members, "person")}
    assert f"teacher.{SCHOOL}@test.ma" in people and REGION_ADMIN not in people
    assert all(p["password_hash"] for p in _rows(members, "person") if p["email"].endswith("@test.ma"))


async def test_region_archive_contains_nothing_of_the_other_region(source: World, tmp_path: Path) -> None:
    """Every row of a region's archive lies in that region; the other region's people and files are absent."""
    path = tmp_path / "region.zip"
    manifest = await _export(source, REGION, path)
    members = _members(path)
    region_id = source.ids[REGION]
    nodes = {r["id"] for r in _rows(members, "tenant")}
    assert source.ids[SCHOOL] in nodes and source.ids[OTHER_SCHOOL] not in nodes
    assert source.ids[OTHER_REGION] not in nodes
    other_nodes = {
        r["id"]
        for r in await source.services.db.fetch(
            "SELECT id FROM tenant WHERE path LIKE {}", f"%/{source.ids[OTHER_REGION]}/%"
        )
    }
    programmes = {r["id"] for r in _rows(members, "programme")}
    assert programmes == {await source.sql("SELECT id FROM programme WHERE slug = 'nouveau-lycee'")}
    checked = 0
    for table in manifest.tables:
        for row in _rows(members, table.name):
            if "region_id" in row and "school_id" in row:
                assert row["region_id"] == region_id, (table.name, row)
                checked += 1
            if "tenant_id" in row and table.name not in ("tenant",):
                # A programme's own rows (its switches, its managers) come with the programme.
                assert row["tenant_id"] in nodes or row.get("programme_id") in programmes, (table.name, row)
            for column in ("region_id", "province_id", "school_id", "tenant_id"):
                assert row.get(column) not in other_nodes, (table.name, row)
    assert checked > 50
    people = {p["email"] for p in _rows(members, "person")}
    assert REGION_ADMIN in people
    assert OTHER_REGION_ADMIN not in people and f"director.{OTHER_SCHOOL}@test.ma" not in people
    assert all(f.tenant_id in nodes for f in manifest.files)
    assert not any(name.startswith(f"files/t/{n}/") for n in other_nodes for name in members)


def _members_of(members: dict[str, bytes], nodes: set[int]) -> set[int]:
    return {int(m["person_id"]) for m in _rows(members, "membership") if m["tenant_id"] in nodes}


async def test_password_hashes_only_of_members_and_only_for_platform_admins(source: World, tmp_path: Path) -> None:
    """A region admin's archive has no hash; a platform admin's keeps the region's members' hashes only."""
    # The platform administrator creates a school in the region: an audit row of the region names them.
    created = await source.api(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        json={"parent": "casablanca-anfa", "kind": "school", "slug": "ecole-hash-test", "name_fr": "Hash"},
    )
    assert created.status_code == 201, created.text
    admin_id = await source.sql("SELECT id FROM person WHERE email = {}", ADMIN)
    admin_hash = await source.sql("SELECT password_hash FROM person WHERE id = {}", admin_id)
    assert admin_hash and admin_hash.startswith("$argon2")

    by_region = await source.api("GET", f"/api/v1/archives/{REGION}", as_=REGION_ADMIN)
    assert by_region.status_code == 200, by_region.text
    path = tmp_path / "by-region.zip"
    path.write_bytes(by_region.content)
    members = _members(path)
    assert json.loads(members["manifest.json"])["password_hashes"] is False
    people = {p["email"]: p for p in _rows(members, "person")}
    assert ADMIN in people and people[ADMIN]["id"] == admin_id  # kept as a reference for remapping
    assert REGION_ADMIN in people and f"director.{SCHOOL}@test.ma" in people
    assert all(p["password_hash"] is None for p in people.values()), [
        e for e, p in people.items() if p["password_hash"]
    ]
    assert b"$argon2" not in b"".join(members.values())

    by_platform = await source.api("GET", f"/api/v1/archives/{REGION}", as_=ADMIN)
    assert by_platform.status_code == 200, by_platform.text
    path = tmp_path / "by-platform.zip"
    path.write_bytes(by_platform.content)
    members = _members(path)
    assert json.loads(members["manifest.json"])["password_hashes"] is True
    nodes = {int(r["id"]) for r in _rows(members, "tenant")}
    region_members = _members_of(members, nodes)
    people = {p["email"]: p for p in _rows(members, "person")}
    assert people[ADMIN]["password_hash"] is None
    assert admin_hash.encode() not in by_platform.content and admin_hash.encode() not in b"".join(members.values())
    assert "programme@madrasa.demo" in people and people["programme@madrasa.demo"]["password_hash"] is None
    assert OTHER_REGION_ADMIN not in people
    with_hash = {p["id"] for p in people.values() if p["password_hash"]}
    assert with_hash and with_hash <= region_members
    for email in (REGION_ADMIN, f"director.{SCHOOL}@test.ma", f"teacher.{SCHOOL}@test.ma"):
        stored = await source.sql("SELECT password_hash FROM person WHERE email = {}", email)
        assert people[email]["password_hash"] == stored, email
    # Every hash the source holds outside the region stays out of the archive.
    async with source.services.db.scoped(Scope.everything(), write=False):
        outside = await source.services.db.fetch(
            "SELECT password_hash FROM person WHERE password_hash IS NOT NULL AND id NOT IN "
            "(SELECT person_id FROM membership WHERE tenant_id IN (SELECT id FROM tenant WHERE path LIKE {}))",
            f"%/{source.ids[REGION]}/%",
        )
    assert len(outside) >= 3
    blob = b"".join(members.values())
    assert not [r for r in outside if r["password_hash"].encode() in blob]


# --------------------------------------------------------------------------- import


async def _import_via_api(target: Target, path: Path, *, dry_run: bool = False) -> httpx.Response:
    token = await target.token(TARGET_ADMIN)
    return await target.client.post(
        "/api/v1/archives/import",
        params={"dry_run": "true"} if dry_run else None,
        headers={"authorization": f"Bearer {token}"},
        files={"file": ("archive.zip", _read(path), "application/zip")},
    )


async def test_school_into_empty_deployment_is_equal(source: World, new_target: Any, tmp_path: Path) -> None:
    """API export → dry run (writes nothing) → import into an empty deployment → every table and file equal."""
    response = await source.api("GET", f"/api/v1/archives/{SCHOOL}", as_=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/zip")
    path = tmp_path / "school.zip"
    path.write_bytes(response.content)
    target: Target = await new_target()
    expected_storage = S3Storage if source.backend == "postgres" else FileSystemStorage
    assert isinstance(target.services.storage, expected_storage)
    before = await target.counts()

    dry = await _import_via_api(target, path, dry_run=True)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["equal"] is None
    assert await target.counts() == before

    response = await _import_via_api(target, path)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["equal"] is True and report["files_equal"] is True, report
    assert all(t["status"] == "equal" for t in report["tables"]), [
        t for t in report["tables"] if t["status"] != "equal"
    ]
    assert report["created_ancestors"] == [REGION, "casablanca-anfa"]
    assert report["files"] >= 3
    after = await target.counts()
    assert after["grade_mark"] == await source.sql(
        "SELECT COUNT(*) FROM grade_mark WHERE school_id = {}", source.ids[SCHOOL]
    )
    assert after["student"] > before["student"]
    # Stored files are in the target's storage, byte for byte.
    with zipfile.ZipFile(path) as zf:
        files = json.loads(zf.read("manifest.json"))["files"]
        for entry in files:
            data = await target.services.storage.get(entry["key"], tenant_id=entry["tenant_id"])
            assert data == zf.read(entry["member"])
    # People keep their logins, and the imported school answers in the target.
    token = await target.token(f"director.{SCHOOL}@test.ma")
    classes = await target.client.get(
        f"/t/{SCHOOL}/api/v1/school/classes", headers={"authorization": f"Bearer {token}"}
    )
    assert classes.status_code == 200, classes.text
    assert "TEST-1" in classes.text
    # New rows in the target get ids past the imported ones.
    teacher = await target.token(TARGET_ADMIN)
    created = await target.client.post(
        "/api/v1/tenants",
        headers={"authorization": f"Bearer {teacher}"},
        json={"parent": "casablanca-anfa", "kind": "school", "slug": "ecole-nouvelle", "name_fr": "Nouvelle"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] > source.ids[SCHOOL]


async def test_region_import_with_the_command_line(source: World, new_target: Any, tmp_path: Path) -> None:
    """``export-tenant`` then ``import-tenant --dry-run`` and ``import-tenant``: equal, status 0."""
    parser = argparse.ArgumentParser(prog="madrasa")
    archive_cli.register(parser.add_subparsers(dest="command"))
    path = tmp_path / "region.zip"
    args = parser.parse_args(["export-tenant", REGION, str(path)])
    assert args.func is archive_cli.cmd_export
    assert run_sync(archive_cli.export_to(source.settings, args.slug, Path(args.file))) == 0
    # The target's own administrator takes an id the archive does not use, so every row keeps its id and the
    # re-export matches the manifest digest for digest (a taken id of a person the archive only names would be
    # re-numbered: see test_people_only_named_are_renumbered_when_their_id_is_taken).
    free = max(p["id"] for p in _rows(_members(path), "person")) + 50
    target: Target = await new_target(root_id=free)
    before = await target.counts()
    args = parser.parse_args(["import-tenant", str(path), "--dry-run"])
    assert args.dry_run is True
    assert run_sync(archive_cli.import_from(target.services.settings, path, dry_run=True)) == 0
    assert await target.counts() == before
    assert run_sync(archive_cli.import_from(target.services.settings, path, dry_run=False)) == 0
    report = await archive.compare(target.services, archive.Manifest(**_manifest_fields(path)))
    assert report.equal is True
    assert await target.sql("SELECT COUNT(*) FROM tenant WHERE slug = {}", OTHER_SCHOOL) == 0
    # The command line exports as the platform: the region's people keep their logins, nobody else's hash moved.
    await target.token(REGION_ADMIN, source.passwords[REGION_ADMIN])
    await target.token(f"director.{SCHOOL}@test.ma")
    assert await target.sql("SELECT password_hash FROM person WHERE email = {}", ADMIN) is None
    assert await target.sql("SELECT password_hash FROM person WHERE email = {}", "programme@madrasa.demo") is None
    assert await target.sql("SELECT COUNT(*) FROM person WHERE email = {}", OTHER_REGION_ADMIN) == 0
    missing = tmp_path / "nothing.zip"
    assert run_sync(archive_cli.import_from(target.services.settings, missing, dry_run=True)) == 1


def _manifest_fields(path: Path) -> dict[str, Any]:
    import msgspec

    with zipfile.ZipFile(path) as zf:
        manifest = msgspec.json.decode(zf.read("manifest.json"), type=archive.Manifest)
    return {f: getattr(manifest, f) for f in manifest.__struct_fields__}


async def test_existing_person_is_merged_by_email(source: World, new_target: Any, tmp_path: Path) -> None:
    """A teacher who already has an identity in the target keeps it; the imported rows point at it."""
    path = tmp_path / "school.zip"
    await _export(source, SCHOOL, path)
    target: Target = await new_target()
    email = f"teacher.{SCHOOL}@test.ma"
    db = target.services.db
    async with db.transaction():
        # An id the archive does not use (ids are kept, so a taken one would clash), away from the source's.
        free = max(p["id"] for p in _rows(_members(path), "person")) + 50
        row = await db.fetchrow(
            "INSERT INTO person (id, email, password_hash, full_name, locale, active, created_at) "
            "VALUES ({}, {}, {}, 'Existing', 'fr', {}, {}) RETURNING id",
            free,
            email,
            target.services.identity.hash_password("another-password-77"),
            True,
            datetime.now(UTC),
        )
    assert row is not None
    existing = int(row["id"])
    source_id = await source.sql("SELECT id FROM person WHERE email = {}", email)
    assert existing != source_id
    report = await archive.import_archive(target.services, path)
    assert [(m.email, m.archive_id, m.target_id) for m in report.merged_persons] == [(email, source_id, existing)]
    assert report.equal is True, [t for t in report.tables if t.status == "different"]
    statuses = {t.name: t.status for t in report.tables}
    assert statuses["teaching_assignment"] == "equal-after-merge" and statuses["person"] == "equal-after-merge"
    assert statuses["grade_mark"] == "equal"
    assert await target.sql("SELECT full_name FROM person WHERE id = {}", existing) == "Existing"
    assert await target.sql("SELECT COUNT(*) FROM person WHERE email = {}", email) == 1
    assert await target.sql("SELECT COUNT(*) FROM teaching_assignment WHERE person_id = {}", existing) >= 1
    assert await target.sql("SELECT COUNT(*) FROM membership WHERE person_id = {}", existing) >= 1
    await target.token(email, "another-password-77")


async def _homework(services: Services, slug: str) -> tuple[bool, str]:
    """The effective state of the homework module at a school, and what decided it."""
    services.modules.invalidate()
    services.tenants.invalidate()
    node = await services.tenants.by_slug(slug)
    assert node is not None
    async with services.db.scoped(Scope.everything(), write=False):
        state = await services.modules.state("homework", node.path, await services.tenants.programmes_of(node.id))
    return state.enabled, state.source


async def test_programme_switches_and_managers_travel_with_a_school(
    source: World, new_target: Any, tmp_path: Path
) -> None:
    """A school whose programme turns homework on keeps it on in an empty deployment; the check covers it."""
    assert await _homework(source.services, SCHOOL) == (True, "programme")
    path = tmp_path / "school.zip"
    await _export(source, SCHOOL, path)
    members = _members(path)
    programme_id = await source.sql("SELECT id FROM programme WHERE slug = 'nouveau-lycee'")
    switches = [r for r in _rows(members, "module_setting") if r["programme_id"] == programme_id]
    assert [(r["module"], r["enabled"], r["tenant_id"]) for r in switches] == [("homework", True, None)]
    managers = [r for r in _rows(members, "membership") if r["programme_id"] == programme_id]
    assert [r["role"] for r in managers] == ["programme_manager"]

    target: Target = await new_target()
    report = await archive.import_archive(target.services, path)
    assert report.equal is True, [t for t in report.tables if t.status != "equal"]
    statuses = {t.name: t.status for t in report.tables}
    assert statuses["module_setting"] == statuses["membership"] == statuses["programme"] == "equal"
    assert await _homework(target.services, SCHOOL) == (True, "programme")
    manager = await target.sql(
        "SELECT p.email FROM membership m JOIN person p ON p.id = m.person_id "
        "WHERE m.programme_id = {} AND m.role = 'programme_manager'",
        programme_id,
    )
    assert manager == "programme@madrasa.demo"
    # The equality check covers the programme's switch: turned off in the target, the school differs.
    db = target.services.db
    async with db.scoped(Scope.everything()):
        await db.execute("UPDATE module_setting SET enabled = {} WHERE programme_id = {}", False, programme_id)
    again = await archive.compare(target.services, archive.Manifest(**_manifest_fields(path)))
    assert again.equal is False
    assert {t.name for t in again.tables if t.status == "different"} == {"module_setting"}


async def test_programmes_merge_by_slug(source: World, new_target: Any, tmp_path: Path) -> None:
    """A target that already runs the programme (another id) keeps it and its switches; rows are remapped."""
    path = tmp_path / "school.zip"
    await _export(source, SCHOOL, path)
    source_programme = await source.sql("SELECT id FROM programme WHERE slug = 'nouveau-lycee'")
    target: Target = await new_target()
    db = target.services.db
    now = datetime.now(UTC)
    async with db.scoped(Scope.everything()):
        for slug in ("filler-a", "filler-b", "nouveau-lycee"):  # push the target's programme ids away
            await db.execute(
                "INSERT INTO programme (slug, name_fr, created_at) VALUES ({}, {}, {})", slug, slug.title(), now
            )
        existing = int(await db.fetchval("SELECT id FROM programme WHERE slug = 'nouveau-lycee'"))
        await db.execute(
            "INSERT INTO module_setting (module, programme_id, enabled, reason, updated_at) "
            "VALUES ('homework', {}, {}, 'target rule', {})",
            existing,
            True,
            now,
        )
    assert existing != source_programme
    report = await archive.import_archive(target.services, path)
    assert report.equal is True, [t for t in report.tables if t.status == "different"]
    statuses = {t.name: t.status for t in report.tables}
    assert statuses["programme"] == statuses["programme_school"] == statuses["module_setting"] == "equal-after-merge"
    assert await target.sql("SELECT COUNT(*) FROM programme WHERE slug = 'nouveau-lycee'") == 1
    # The archive's programme id belongs to another programme here: merged by slug, not a clash.
    assert await target.sql("SELECT slug FROM programme WHERE id = {}", source_programme) != "nouveau-lycee"
    assert (
        await target.sql("SELECT programme_id FROM programme_school WHERE tenant_id = {}", source.ids[SCHOOL])
        == existing
    )
    assert await target.sql("SELECT COUNT(*) FROM module_setting WHERE programme_id = {}", existing) == 1
    assert await target.sql("SELECT reason FROM module_setting WHERE programme_id = {}", existing) == "target rule"
    assert (
        await target.sql(
            "SELECT COUNT(*) FROM membership WHERE programme_id = {} AND role = 'programme_manager'", existing
        )
        == 1
    )
    assert await _homework(target.services, SCHOOL) == (True, "programme")


# --------------------------------------------------------------------------- refusals


async def _refused(target: Target, path: Path, status: int, *needles: str) -> dict[str, Any]:
    before = await target.counts()
    response = await _import_via_api(target, path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    text = body["detail"] + " " + " ".join(body.get("problems", []))
    for needle in needles:
        assert needle in text, text
    assert await target.counts() == before
    return body


async def test_tampered_archives_are_refused_and_nothing_is_written(
    source: World, new_target: Any, tmp_path: Path
) -> None:
    """Hash mismatch, unknown table, wrong version, truncated zip, a row of another school: 422, nothing written."""
    path = tmp_path / "school.zip"
    await _export(source, SCHOOL, path)
    target: Target = await new_target()
    members = _members(path)

    tampered = dict(members)
    marks = tampered["tables/grade_mark.jsonl"]
    tampered["tables/grade_mark.jsonl"] = marks.replace(b'"14.50"', b'"19.50"')
    assert tampered["tables/grade_mark.jsonl"] != marks
    await _refused(target, _rezip(path, tampered), 422, "tables/grade_mark.jsonl", "SHA-256")

    resealed = dict(tampered)
    _reseal(resealed, "grade_mark")  # the member's hash fixed, the table digest left as exported
    original = {t["name"]: t["sha256"] for t in json.loads(members["manifest.json"])["tables"]}
    manifest = json.loads(resealed["manifest.json"])
    for entry in manifest["tables"]:
        if entry["name"] == "grade_mark":
            entry["sha256"] = original["grade_mark"]
    resealed["manifest.json"] = json.dumps(manifest).encode()
    await _refused(target, _rezip(path, resealed), 422, "grade_mark", "digest")

    file_tampered = dict(members)
    member = next(n for n in members if n.startswith("files/") and "/bulletins/" in n)
    file_tampered[member] = members[member].replace(b"report card", b"forged card")
    assert file_tampered[member] != members[member] and len(file_tampered[member]) == len(members[member])
    await _refused(target, _rezip(path, file_tampered), 422, "SHA-256")
    file_tampered[member] = b"%PDF-1.4\n% forged\n"  # another size: refused from the zip's directory
    await _refused(target, _rezip(path, file_tampered), 422, f"{member}: 18 bytes uncompressed, the manifest declares")

    unknown = dict(members)
    manifest = json.loads(unknown["manifest.json"])
    manifest["tables"].append(
        {
            "name": "mystery",
            "member": "tables/mystery.jsonl",
            "columns": ["id"],
            "rows": 0,
            "sha256": archive.TableDigest().hexdigest(),
            "member_sha256": hashlib.sha256(b"").hexdigest(),
            "member_bytes": 0,
        }
    )
    unknown["manifest.json"] = json.dumps(manifest).encode()
    unknown["tables/mystery.jsonl"] = b""
    await _refused(target, _rezip(path, unknown), 422, "unknown table 'mystery'")

    columns = dict(members)
    manifest = json.loads(columns["manifest.json"])
    next(t for t in manifest["tables"] if t["name"] == "room")["columns"].append("colour")
    columns["manifest.json"] = json.dumps(manifest).encode()
    await _refused(target, _rezip(path, columns), 422, "table 'room': columns differ", "colour")

    twice = dict(members)
    manifest = json.loads(twice["manifest.json"])
    manifest["tables"].append(next(t for t in manifest["tables"] if t["name"] == "room"))
    twice["manifest.json"] = json.dumps(manifest).encode()
    await _refused(target, _rezip(path, twice), 422, "'room' is listed twice")

    version = dict(members)
    manifest = json.loads(version["manifest.json"])
    manifest["format_version"] = 99
    version["manifest.json"] = json.dumps(manifest).encode()
    await _refused(target, _rezip(path, version), 422, "format version 99")

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    await _refused(target, truncated, 422, "truncated or not a zip")

    outside = dict(members)
    rows = _rows(members, "grade_mark")
    rows[0]["school_id"] = source.ids[OTHER_SCHOOL]
    outside["tables/grade_mark.jsonl"] = b"".join(archive.canonical_line(r) + b"\n" for r in rows)
    _reseal(outside, "grade_mark")
    await _refused(target, _rezip(path, outside), 422, "outside")

    bad_value = dict(members)
    rows = _rows(members, "grade_mark")
    rows[0]["score"] = "a lot"
    bad_value["tables/grade_mark.jsonl"] = b"".join(archive.canonical_line(r) + b"\n" for r in rows)
    _reseal(bad_value, "grade_mark")
    await _refused(target, _rezip(path, bad_value), 422, "column score")

    # Nothing reached the target's storage either.
    for entry in json.loads(members["manifest.json"])["files"]:
        assert not await target.services.storage.exists(entry["key"], tenant_id=entry["tenant_id"])


async def _refused_directly(target: Target, path: Path, *needles: str) -> int:
    """Import ``path`` (no upload limit in the way): refused naming ``needles``, nothing written; peak bytes held."""
    before = await target.counts()
    tracemalloc.start()
    try:
        with pytest.raises(archive.ArchiveRejected) as refusal:
            await archive.import_archive(target.services, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = refusal.value.message + " " + " ".join(refusal.value.problems)
    for needle in needles:
        assert needle in text, text
    assert await target.counts() == before
    return peak


def _bomb_zip(path: Path, members: dict[str, bytes], name: str, size: int) -> Path:
    """``members`` with ``name`` replaced by ``size`` zeros, written without holding them in memory at once."""
    out = path.with_name(f"bomb-{uuid.uuid4().hex[:6]}.zip")
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            if member == name:
                with zf.open(member, "w", force_zip64=True) as handle:
                    for _ in range(size // len(zeros)):
                        handle.write(zeros)
            else:
                zf.writestr(member, data)
    return out


async def test_oversized_members_and_zip_bombs_are_refused_before_reading(
    source: World, new_target: Any, tmp_path: Path
) -> None:
    """Members larger than declared, zip bombs and overlong rows: 422 before anything is read or written."""
    path = tmp_path / "school.zip"
    manifest = await _export(source, SCHOOL, path)
    target: Target = await new_target()
    members = _members(path)
    huge = 50 << 20

    # A table member the manifest declares small, 50 MB of zeros in fact.
    declared = next(t.member_bytes for t in manifest.tables if t.name == "room")
    bomb = _bomb_zip(path, members, "tables/room.jsonl", huge)
    assert bomb.stat().st_size < 1 << 20
    peak = await _refused_directly(target, bomb, f"tables/room.jsonl: {huge} bytes", f"declares {declared}")
    assert peak < 20 << 20, peak

    # A stored file declared with its true size (and hash): refused for its compression ratio, unread.
    entry = next(f for f in manifest.files if "/bulletins/" in f.key)
    forged = json.loads(members["manifest.json"])
    for item in forged["files"]:
        if item["key"] == entry.key:
            item["size"] = huge
            item["sha256"] = hashlib.sha256(bytes(huge)).hexdigest()
    honest = dict(members, **{"manifest.json": json.dumps(forged).encode()})
    bomb = _bomb_zip(path, honest, entry.member, huge)
    peak = await _refused_directly(target, bomb, entry.member, "zip bomb")
    assert peak < 20 << 20, peak

    # The same refusal through the API, as problem details.
    body = await _refused(target, bomb, 422, "zip bomb", "nothing was read or written")
    assert body["status"] == 422

    # One row longer than the line limit (random text, so it compresses poorly and passes the ratio check).
    long_line = dict(members)
    long_line["tables/grade_mark.jsonl"] = os.urandom(archive.MAX_LINE_BYTES // 2 + 1024).hex().encode() + b"\n"
    _reseal(long_line, "grade_mark")
    peak = await _refused_directly(
        target, _rezip(path, long_line), f"tables/grade_mark.jsonl line 1 is longer than {archive.MAX_LINE_BYTES}"
    )
    assert peak < 3 * archive.MAX_LINE_BYTES, peak
    for item in manifest.files:
        assert not await target.services.storage.exists(item.key, tenant_id=item.tenant_id)


async def test_id_clash_is_refused_naming_it(source: World, new_target: Any, tmp_path: Path) -> None:
    """Ids taken in the target: 409 naming the clashes, nothing written; a second import of the same archive too."""
    path = tmp_path / "school.zip"
    await _export(source, SCHOOL, path)
    target: Target = await new_target()
    room = _rows(_members(path), "room")[0]
    db = target.services.db
    async with db.scoped(Scope.everything()):
        await db.execute(
            "INSERT INTO room (id, region_id, province_id, school_id, name, capacity) VALUES ({}, 1, 1, 1, 'X', 10)",
            room["id"],
        )
        await db.execute(
            "INSERT INTO person (id, email, full_name, locale, active, created_at) VALUES ({}, 'someone@else.test', "
            "'x', 'fr', {}, {})",
            await source.sql("SELECT id FROM person WHERE email = {}", f"director.{SCHOOL}@test.ma"),
            True,
            datetime.now(UTC),
        )
    await _refused(
        target,
        path,
        409,
        f"room id {room['id']} exists in the target",
        f"({f'director.{SCHOOL}@test.ma'}) is taken by someone@else.test",
    )

    second: Target = await new_target()
    first = await archive.import_archive(second.services, path)
    assert first.equal is True
    body = await _refused(second, path, 409, f"tenant id {source.ids[SCHOOL]} exists in the target", "grade_mark id")
    assert "tenant.slug" in " ".join(body["problems"])


async def test_people_only_named_are_renumbered_when_their_id_is_taken(
    source: World, new_target: Any, tmp_path: Path
) -> None:
    """The source's platform administrator acted in the region; a fresh deployment's own administrator holds the
    same id. The import inserts the archive's reference row (no hash, no membership) under a new id and points
    the audit row at it; the region compares equal. A taken id of someone with a membership is still refused."""
    created = await source.api(
        "POST",
        "/api/v1/tenants",
        as_=ADMIN,
        json={"parent": "casablanca-anfa", "kind": "school", "slug": "ecole-renumber-test", "name_fr": "Renumber"},
    )
    assert created.status_code == 201, created.text
    admin_id = await source.sql("SELECT id FROM person WHERE email = {}", ADMIN)
    path = tmp_path / "region.zip"
    await _export(source, REGION, path)
    members = _members(path)
    named = [r for r in _rows(members, "audit_log") if r["actor_id"] == admin_id]
    assert any(r["action"] == "tenant.create" and r["object_id"] == str(created.json()["id"]) for r in named)
    assert admin_id not in {m["person_id"] for m in _rows(members, "membership")}
    archive_ids = {p["id"] for p in _rows(members, "person")}

    target: Target = await new_target()  # fresh: its administrator takes the first id, like the source's
    root_id = await target.sql("SELECT id FROM person WHERE email = {}", TARGET_ADMIN)
    assert root_id == admin_id
    before = await target.counts()
    dry = await archive.import_archive(target.services, path, dry_run=True)
    assert [(p.email, p.archive_id, p.target_id) for p in dry.remapped_persons] == [(ADMIN, admin_id, None)]
    assert await target.counts() == before

    report = await archive.import_archive(target.services, path)
    assert report.equal is True, [t for t in report.tables if t.status == "different"]
    statuses = {t.name: t.status for t in report.tables}
    assert statuses["audit_log"] == "equal-after-merge" and statuses["person"] == "equal-after-merge"
    assert statuses["grade_mark"] == "equal" and statuses["membership"] == "equal"
    assert report.merged_persons == []
    [moved] = report.remapped_persons
    assert (moved.email, moved.archive_id) == (ADMIN, admin_id)
    assert moved.target_id is not None and moved.target_id > max(archive_ids | {root_id})
    # The audit rows name the re-numbered reference, never the target's own administrator.
    region_id = source.ids[REGION]
    assert await target.sql(
        "SELECT COUNT(*) FROM audit_log WHERE actor_id = {} AND region_id = {}", moved.target_id, region_id
    ) == len(named)
    assert (
        await target.sql("SELECT COUNT(*) FROM audit_log WHERE actor_id = {} AND region_id = {}", root_id, region_id)
        == 0
    )
    assert await target.sql("SELECT email FROM person WHERE id = {}", moved.target_id) == ADMIN
    assert await target.sql("SELECT password_hash FROM person WHERE id = {}", moved.target_id) is None
    assert await target.sql("SELECT COUNT(*) FROM membership WHERE person_id = {}", moved.target_id) == 0
    # The target's administrator is untouched and still the platform's.
    assert await target.sql("SELECT email FROM person WHERE id = {}", root_id) == TARGET_ADMIN
    assert (
        await target.sql("SELECT COUNT(*) FROM membership WHERE person_id = {} AND role = 'platform_admin'", root_id)
        == 1
    )
    await target.token(TARGET_ADMIN)
    refused = await target.client.post("/api/v1/auth/token", json={"email": ADMIN, "password": PASSWORD})
    assert refused.status_code == 401, refused.text
    # People created afterwards get ids past the imported and re-numbered ones.
    db = target.services.db
    async with db.transaction():
        row = await db.fetchrow(
            "INSERT INTO person (email, full_name, locale, active, created_at) VALUES ('later@target.test', 'L', "
            "'fr', {}, {}) RETURNING id",
            True,
            datetime.now(UTC),
        )
    assert row is not None and int(row["id"]) > moved.target_id

    # A taken id of a person with a membership in the region is a clash, named; the administrator's is not.
    director = f"director.{SCHOOL}@test.ma"
    director_id = await source.sql("SELECT id FROM person WHERE email = {}", director)
    assert director_id != admin_id
    other: Target = await new_target()
    async with other.services.db.transaction():
        await other.services.db.execute(
            "INSERT INTO person (id, email, full_name, locale, active, created_at) VALUES ({}, 'someone@else.test', "
            "'x', 'fr', {}, {})",
            director_id,
            True,
            datetime.now(UTC),
        )
    body = await _refused(other, path, 409, f"person id {director_id} ({director}) is taken by someone@else.test")
    assert not [p for p in body["problems"] if ADMIN in p or f"person id {admin_id} " in p], body["problems"]


async def test_a_failed_write_leaves_no_rows_and_no_files(source: World, new_target: Any, tmp_path: Path) -> None:
    """A row refused by the target database mid-import: everything rolls back, uploaded files are removed."""
    path = tmp_path / "school.zip"
    manifest = await _export(source, SCHOOL, path)
    target: Target = await new_target()
    owner = target.services.db.owner_engine
    if target.services.db.dialect == "postgres":
        await owner.run_ddl(
            "CREATE FUNCTION refuse_marks() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'marks refused here'; END $$"
        )
        await owner.run_ddl(
            "CREATE TRIGGER refuse_marks BEFORE INSERT ON grade_mark FOR EACH ROW EXECUTE FUNCTION refuse_marks()"
        )
        drop = "DROP TRIGGER refuse_marks ON grade_mark"
    else:
        await owner.run_ddl(
            "CREATE TRIGGER refuse_marks BEFORE INSERT ON grade_mark "
            "BEGIN SELECT RAISE(ABORT, 'marks refused here'); END"
        )
        drop = "DROP TRIGGER refuse_marks"
    before = await target.counts()
    with pytest.raises(archive.ArchiveError) as failure:
        await archive.import_archive(target.services, path)
    assert "rolled back" in failure.value.message and "marks refused here" in failure.value.message
    assert await target.counts() == before
    assert manifest.files
    for entry in manifest.files:
        assert not await target.services.storage.exists(entry.key, tenant_id=entry.tenant_id)
    await owner.run_ddl(drop)
    report = await archive.import_archive(target.services, path)
    assert report.equal is True


# --------------------------------------------------------------------------- access


async def test_who_may_export_and_import(source: World, tmp_path: Path) -> None:
    """Region admins export their own region only (403 elsewhere); only platform admins import."""
    own = await source.api("GET", f"/api/v1/archives/{SCHOOL}", as_=REGION_ADMIN)
    assert own.status_code == 200, own.text
    for slug in (OTHER_SCHOOL, OTHER_REGION):
        response = await source.api("GET", f"/api/v1/archives/{slug}", as_=REGION_ADMIN)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    director = await source.api("GET", f"/api/v1/archives/{SCHOOL}", as_=f"director.{SCHOOL}@test.ma")
    assert director.status_code == 403
    unknown = await source.api("GET", "/api/v1/archives/no-such-school", as_=ADMIN)
    assert unknown.status_code == 404
    platform = await source.api("GET", "/api/v1/archives/platform", as_=ADMIN)
    assert platform.status_code == 400
    tenants = await source.sql("SELECT COUNT(*) FROM tenant")
    for who in (REGION_ADMIN, f"director.{SCHOOL}@test.ma", f"teacher.{SCHOOL}@test.ma"):
        response = await source.api(
            "POST",
            "/api/v1/archives/import",
            as_=who,
            files={"file": ("a.zip", own.content, "application/zip")},
        )
        assert response.status_code == 403, (who, response.text)
    assert await source.sql("SELECT COUNT(*) FROM tenant") == tenants
    # The platform admin importing into the deployment the archive came from: every id clashes.
    clash = await source.api(
        "POST", "/api/v1/archives/import", as_=ADMIN, files={"file": ("a.zip", own.content, "application/zip")}
    )
    assert clash.status_code == 409, clash.text


async def test_export_as_a_job_with_progress(source: World, tmp_path: Path) -> None:
    """The job writes the same archive; the other region cannot download it; 404 for unknown jobs."""
    queue = source.services.jobs
    await queue.start()
    try:
        response = await source.api("POST", f"/api/v1/archives/{SCHOOL}/jobs", as_=REGION_ADMIN)
        assert response.status_code == 202, response.text
        started = response.json()
        info = await queue.wait(started["job_id"], seconds=120)
        assert info.status == "done", info.error
        assert info.total >= info.done > 0
        download = await source.api("GET", started["download_url"], as_=REGION_ADMIN)
        assert download.status_code == 200, download.text
        foreign = await source.api("GET", started["download_url"], as_=OTHER_REGION_ADMIN)
        assert foreign.status_code == 404
        missing = await source.api("GET", f"/api/v1/archive-jobs/{uuid.uuid4()}", as_=REGION_ADMIN)
        assert missing.status_code == 404
        refused = await source.api("POST", f"/api/v1/archives/{OTHER_SCHOOL}/jobs", as_=REGION_ADMIN)
        assert refused.status_code == 403
        # A platform administrator's export holds hashes: the region administrator may not download it.
        by_platform = await source.api("POST", f"/api/v1/archives/{SCHOOL}/jobs", as_=ADMIN)
        assert by_platform.status_code == 202, by_platform.text
        info = await queue.wait(by_platform.json()["job_id"], seconds=120)
        assert info.status == "done", info.error
        denied = await source.api("GET", by_platform.json()["download_url"], as_=REGION_ADMIN)
        assert denied.status_code == 403, denied.text
        hashed = await source.api("GET", by_platform.json()["download_url"], as_=ADMIN)
        assert hashed.status_code == 200, hashed.text
    finally:
        await queue.stop()
    path = tmp_path / "direct.zip"
    manifest = await _export(source, SCHOOL, path)
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        from_job = json.loads(zf.read("manifest.json"))
        people = [json.loads(line) for line in zf.read("tables/person.jsonl").splitlines()]
    # The region administrator's job: no password hash at all; otherwise the same rows as the operator's export.
    assert from_job["password_hashes"] is False and all(p["password_hash"] is None for p in people)
    with zipfile.ZipFile(io.BytesIO(hashed.content)) as zf:
        from_platform = json.loads(zf.read("manifest.json"))
        people = [json.loads(line) for line in zf.read("tables/person.jsonl").splitlines()]
    assert from_platform["password_hashes"] is True and any(p["password_hash"] for p in people)
    assert {t["name"]: t["sha256"] for t in from_platform["tables"]} == {t.name: t.sha256 for t in manifest.tables}
    assert {t["name"]: t["sha256"] for t in from_job["tables"] if t["name"] != "person"} == {
        t.name: t.sha256 for t in manifest.tables if t.name != "person"
    }


async def test_sqlite_archive_imports_into_postgresql(tmp_path_factory: pytest.TempPathFactory, moto: str) -> None:
    """The canonical form does not depend on the database: an embedded school moves to PostgreSQL and S3, equal."""
    world = await build_world("sqlite", tmp_path_factory.mktemp("archive-cross-source"), None)
    pg = _pg_server()
    services: Services | None = None
    try:
        await _add_grades(world)
        path = tmp_path_factory.mktemp("archive-cross") / "school.zip"
        manifest = await _export(world, SCHOOL, path)
        settings = make_settings(
            "postgres",
            tmp_path_factory.mktemp("archive-cross-target"),
            pg,
            storage_backend="s3",
            s3_endpoint=moto,
            s3_access_key="testing-access",
            s3_secret_key="testing-secret",
            s3_bucket=f"cross-{uuid.uuid4().hex[:12]}",
        )
        services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
        await services.db.start()
        await services.storage.ensure_ready()
        await migrate(services.db, services.migration_sets)
        report = await archive.import_archive(services, path)
        assert report.equal is True, [t for t in report.tables if t.status != "equal"]
        assert {t.name: t.target_sha256 for t in report.tables} == {t.name: t.sha256 for t in manifest.tables}
        async with services.db.scoped(Scope.everything(), write=False):
            score = await services.db.fetchval(
                "SELECT score FROM grade_mark WHERE school_id = {} ORDER BY id LIMIT 1", world.ids[SCHOOL]
            )
        assert str(score) == "14.50"
    finally:
        await world.client.aclose()
        await world.services.db.stop()
        if services is not None:
            await services.db.stop()
        run_sync(_drop_pg(pg))


async def test_a_column_only_the_database_knows_travels(source: World, new_target: Any, tmp_path: Path) -> None:
    """Columns come from the database catalogue, in its order: ``attendance_notice.claimed_at``, added by a later
    migration, comes after the table's first columns (before those of the migration after it) and is exported,
    imported and compared like any other column."""
    specs = await archive.table_specs(source.services)
    assert specs["attendance_notice"].columns[-4:] == ("claimed_at", "attempts", "next_attempt_at", "last_error")
    kind = dict(zip(specs["attendance_notice"].columns, specs["attendance_notice"].kinds, strict=True))["claimed_at"]
    assert kind == "ts"
    school = await source.services.tenants.by_slug(SCHOOL)
    assert school is not None
    cols = school.scope_columns()
    claimed = datetime(2026, 11, 3, 7, 45, 30, 250000, tzinfo=UTC)
    db = source.services.db
    async with db.scoped(Scope.everything()):
        notice_id = await db.fetchval(
            "INSERT INTO attendance_notice (region_id, province_id, school_id, student_id, on_date, kind, created_at, "
            "status, channels, claimed_at) VALUES ({}, {}, {}, {}, {}, 'absence', {}, 'sending', '', {}) RETURNING id",
            cols["region_id"],
            cols["province_id"],
            cols["school_id"],
            source.objects[SCHOOL]["student_id"],
            datetime(2026, 11, 3).date(),
            claimed,
            claimed,
        )
    try:
        path = tmp_path / "claimed.zip"
        manifest = await _export(source, SCHOOL, path)
        table = next(t for t in manifest.tables if t.name == "attendance_notice")
        assert "claimed_at" in table.columns
        [row] = [r for r in _rows(_members(path), "attendance_notice") if r["id"] == notice_id]
        assert row["claimed_at"] == "2026-11-03T07:45:30.250000+00:00"
        target: Target = await new_target()
        report = await archive.import_archive(target.services, path)
        assert report.equal is True, [t for t in report.tables if t.status != "equal"]
        got = await target.sql("SELECT claimed_at FROM attendance_notice WHERE id = {}", notice_id)
        assert archive.canonical_value("ts", got) == row["claimed_at"]
    finally:
        async with db.scoped(Scope.everything()):
            await db.execute("DELETE FROM attendance_notice WHERE id = {}", notice_id)
