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
from core.mail import OutboxMailer
from core.migrate import migrate
from core.scope import Scope
from core.services import Services
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
        return {t: int(await self.sql(f'SELECT COUNT(*) FROM "{t}"')) for t in COUNTED}

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
        yield world
    finally:
        await world.client.aclose()
        await world.services.db.stop()
        if pg is not None:
            run_sync(_drop_pg(pg))


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

    async def make() -> Target:
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
            row = await db.fetchrow(
                "INSERT INTO person (email, password_hash, full_name, full_name_ar, locale, active, created_at) "
                "VALUES ({}, {}, 'Root', '', 'fr', {}, {}) RETURNING id",
                TARGET_ADMIN,
                services.identity.hash_password(PASSWORD),
                True,
                datetime.now(UTC),
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
    return await archive.export_tenant(world.services, slug, path)


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
    checked = 0
    for table in manifest.tables:
        for row in _rows(members, table.name):
            if "region_id" in row and "school_id" in row:
                assert row["region_id"] == region_id, (table.name, row)
                checked += 1
            if "tenant_id" in row and table.name not in ("tenant",):
                assert row["tenant_id"] in nodes, (table.name, row)
            for column in ("region_id", "province_id", "school_id", "tenant_id"):
                assert row.get(column) not in other_nodes, (table.name, row)
    assert checked > 50
    people = {p["email"] for p in _rows(members, "person")}
    assert REGION_ADMIN in people
    assert OTHER_REGION_ADMIN not in people and f"director.{OTHER_SCHOOL}@test.ma" not in people
    assert all(f.tenant_id in nodes for f in manifest.files)
    assert not any(name.startswith(f"files/t/{n}/") for n in other_nodes for name in members)


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
    target: Target = await new_target()
    before = await target.counts()
    args = parser.parse_args(["import-tenant", str(path), "--dry-run"])
    assert args.dry_run is True
    assert run_sync(archive_cli.import_from(target.services.settings, path, dry_run=True)) == 0
    assert await target.counts() == before
    assert run_sync(archive_cli.import_from(target.services.settings, path, dry_run=False)) == 0
    report = await archive.compare(target.services, archive.Manifest(**_manifest_fields(path)))
    assert report.equal is True
    assert await target.sql("SELECT COUNT(*) FROM tenant WHERE slug = {}", OTHER_SCHOOL) == 0
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
        for n in range(3):  # push the target's person ids away from the source's
            await db.execute(
                "INSERT INTO person (email, full_name, locale, active, created_at) VALUES ({}, 'x', 'fr', {}, {})",
                f"filler{n}-{uuid.uuid4().hex[:6]}@target.test",
                True,
                datetime.now(UTC),
            )
        row = await db.fetchrow(
            "INSERT INTO person (email, password_hash, full_name, locale, active, created_at) "
            "VALUES ({}, {}, 'Existing', 'fr', {}, {}) RETURNING id",
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
    file_tampered[member] = b"%PDF-1.4\n% forged\n"
    await _refused(target, _rezip(path, file_tampered), 422, "SHA-256")

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
    finally:
        await queue.stop()
    path = tmp_path / "direct.zip"
    manifest = await _export(source, SCHOOL, path)
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        from_job = json.loads(zf.read("manifest.json"))
    assert {t["name"]: t["sha256"] for t in from_job["tables"]} == {t.name: t.sha256 for t in manifest.tables}


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
