"""Backup and restore: a seeded region backed up, restored into a fresh database and a fresh storage location, and
compared table by table (row counts and a hash of every row, read as the owner with every tenant visible) and file
by file (bytes), on SQLite and PostgreSQL; the restored deployment backed up again and restored once more.

Restore refuses a target that is not empty and an archive whose checksums do not match, and writes nothing then.
The fresh PostgreSQL databases are created on the shared server for the test and dropped afterwards; the S3 storage
is moto's server over HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.app import build_plugin_host, build_services
from core.backup import FILES, BackupError, backup, describe, restore, tables_and_counts
from core.cli import main
from core.scope import Scope
from core.services import Services
from core.storage import tenant_of
from tests import test_attendance as base
from tests.conftest import PgServer, make_settings, run_sync
from tests.doubles import OutboxMailer
from tests.test_attendance import A, Setup, delivered
from tests.test_storage import moto_endpoint  # noqa: F401 - the session's moto server

# The attendance tests' pinned school day and running job queue (a register and its notice are part of the seed).
school_day = base.school_day

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


# --------------------------------------------------------------------------- snapshots


async def database_snapshot(settings: Any) -> dict[str, tuple[int, str]]:
    """``{table: (rows, sha256 of the sorted rows)}``, read as the owner role with every tenant's rows visible."""
    snapshot: dict[str, tuple[int, str]] = {}
    if settings.dialect == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as conn:
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            for name in names:
                rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
                snapshot[name] = _digest(rows)
        return snapshot
    conn = await asyncpg.connect(settings.migration_database_url)
    try:
        await conn.execute("SET app.platform = 'on'")  # the owner is subject to FORCE ROW LEVEL SECURITY too
        names = [
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for name in sorted(names):
            rows = [tuple(r.values()) for r in await conn.fetch(f'SELECT * FROM "{name}"')]
            snapshot[name] = _digest(rows)
    finally:
        await conn.close()
    return snapshot


def _digest(rows: list[tuple[Any, ...]]) -> tuple[int, str]:
    lines = sorted(repr(tuple(_plain(v) for v in row)) for row in rows)
    return len(rows), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def files_snapshot(services: Services) -> dict[str, bytes]:
    return {key: await services.storage.get(key, tenant_id=tenant_of(key)) for key in await services.storage.keys()}


# --------------------------------------------------------------------------- fresh targets


@pytest.fixture
async def fresh(world, tmp_path: Path, moto_endpoint: str) -> AsyncIterator[Callable[..., Awaitable[Services]]]:  # noqa: F811
    """Make a fresh deployment of the world's kind: an empty database (PostgreSQL: created on the shared server
    for the test, dropped after it) and an empty storage (``s3``: a new bucket on moto; ``fs``: a new folder)."""
    made: list[tuple[Services, str | None]] = []

    async def make(storage: str) -> Services:
        folder = tmp_path / f"target-{len(made)}"
        overrides: dict[str, Any] = {"storage_root": folder / "files"}
        if storage == "s3":
            overrides |= {
                "storage_backend": "s3",
                "s3_endpoint": moto_endpoint,
                "s3_access_key": "testing-access",
                "s3_secret_key": "testing-secret",
                "s3_bucket": f"restore-{uuid.uuid4().hex[:12]}",
            }
        name = None
        pg = world.pg
        if world.backend == "postgres":
            name = f"madrasa_restore_{secrets.token_hex(6)}"
            pg = await create_database(world.pg, name)
        settings = make_settings(world.backend, folder, pg, **overrides)
        services = build_services(settings, plugins=build_plugin_host(settings), mailer=OutboxMailer())
        await services.db.start()
        await services.storage.ensure_ready()
        made.append((services, name))
        return services

    try:
        yield make
    finally:
        for services, name in made:
            await services.db.stop()
            if name is not None:
                await drop_database(world.pg, name)


async def create_database(pg: PgServer, name: str) -> PgServer:
    """An empty database on the shared server, owned by the world's owner role (as for a new installation)."""
    admin = await asyncpg.connect(pg.admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} OWNER {pg.owner}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(pg.admin_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        await conn.execute(f"ALTER SCHEMA public OWNER TO {pg.owner}")
    finally:
        await conn.close()
    return dataclasses.replace(pg, database=name)


async def drop_database(pg: PgServer, name: str) -> None:
    admin = await asyncpg.connect(pg.admin_url)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        await admin.close()


async def seed(world) -> None:
    """More than the demo: a register with an absence and a late pupil (marks, notice, delivery), a grade, and a
    binary file."""
    s = await Setup(world).build()
    register = [
        {"student_id": s.pupils[0], "status": "absent"},
        {"student_id": s.pupils[1], "status": "late", "minutes": 10},
    ]
    assert (await s.take(register)).status_code == 200
    await delivered(world)
    teacher, assessment = f"teacher.{A}@test.ma", world.objects[A]["assessment_id"]
    grid = await world.api("GET", f"/api/v1/grades/assessments/{assessment}/marks", as_=teacher, tenant=A)
    assert grid.status_code == 200, grid.text
    response = await world.api(
        "PUT",
        f"/api/v1/grades/assessments/{assessment}/marks",
        as_=teacher,
        tenant=A,
        json={"marks": [{"student_id": world.objects[A]["student_id"], "score": "14.5"}]},
        headers={"if-match": grid.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    response = await world.api(
        "POST",
        "/api/v1/files",
        as_=f"director.{A}@test.ma",
        tenant=A,
        files={"file": ("photo.png", PNG, "image/png")},
    )
    assert response.status_code == 201, response.text


# --------------------------------------------------------------------------- tests


async def test_a_seeded_region_survives_backup_and_restore_table_by_table_and_file_by_file(world, fresh, tmp_path):
    await seed(world)
    source_tables = await database_snapshot(world.settings)
    source_files = await files_snapshot(world.services)
    assert source_tables["attendance_mark"][0] >= 2 and source_tables["grade_mark"][0] >= 1
    assert any(data == PNG for data in source_files.values()) and len(source_files) >= 5

    manifest = await backup(world.services, tmp_path / "first")
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "first").rglob("*") if p.is_file()}
    assert modes == {0o600} and (tmp_path / "first").stat().st_mode & 0o777 == 0o700
    assert manifest["dialect"] == world.backend and len(manifest["files"]) == len(source_files)
    assert "attendance.m0003_notice_retries" in manifest["migrations"]
    assert {name: count for name, (count, _) in source_tables.items()} == manifest["tables"]

    # Into an empty database and a new S3 bucket.
    target = await fresh("s3")
    result = await restore(target, tmp_path / "first")
    assert result["differences"] == {} and result["files"] == len(source_files)
    assert result["migrations"] == manifest["migrations"]
    assert await database_snapshot(target.settings) == source_tables
    assert await files_snapshot(target) == source_files
    lines = describe(result)
    assert lines[0].startswith("restored the backup of") and f"files: {len(source_files)} (" in lines[-1]

    # The restored deployment works: the application role reads a tenant's rows under RLS and can write.
    school = await target.tenants.by_slug(A)
    async with target.db.scoped(Scope(frozenset({school.id}))):
        marks = await target.db.fetchval("SELECT COUNT(*) FROM attendance_mark WHERE school_id = {}", school.id)
        assert marks == await world.sql("SELECT COUNT(*) FROM attendance_mark WHERE school_id = {}", school.id)

    # Backed up again from S3 into a .tar file, and restored into yet another database and a file-system storage.
    second = await backup(target, tmp_path / "second.tar")
    assert len(second["files"]) == len(source_files)
    again = await fresh("fs")
    await restore(again, tmp_path / "second.tar")
    assert await database_snapshot(again.settings) == source_tables
    assert await files_snapshot(again) == source_files


async def test_restore_refuses_a_target_that_is_not_empty_and_writes_nothing(world, fresh, tmp_path):
    await backup(world.services, tmp_path / "backup")
    before_counts = await tables_and_counts(world.services)
    before_keys = await world.services.storage.keys()
    with pytest.raises(BackupError, match=r"the target is not empty .*--force"):
        await restore(world.services, tmp_path / "backup")
    assert await tables_and_counts(world.services) == before_counts
    assert await world.services.storage.keys() == before_keys

    # Storage alone holding a file is enough to refuse; the database stays empty.
    target = await fresh("fs")
    key = f"t/{world.ids[A]}/uploads/{uuid.uuid4().hex}/left-over.txt"
    await target.storage.put(key, b"left over", "text/plain", tenant_id=world.ids[A])
    with pytest.raises(BackupError, match=r"\(0 tables, 1 stored files\)"):
        await restore(target, tmp_path / "backup")
    assert await tables_and_counts(target) == {} and await target.storage.keys() == [key]

    # With --force the backup replaces what was there: the left-over file is gone; a second forced restore
    # replaces the tables the first one made.
    await restore(target, tmp_path / "backup", force=True)
    assert key not in await target.storage.keys()
    assert await tables_and_counts(target) == before_counts
    async with target.db.scoped(Scope.everything()):
        await target.db.execute("DELETE FROM attendance_reason WHERE tenant_id IS NULL")
    with pytest.raises(BackupError, match="not empty"):
        await restore(target, tmp_path / "backup")
    result = await restore(target, tmp_path / "backup", force=True)
    assert result["tables"] == before_counts and result["differences"] == {}


@pytest.mark.parametrize("damage", ["file", "database"])
async def test_a_damaged_archive_is_refused_before_anything_is_written(world, fresh, tmp_path, damage):
    folder = tmp_path / "backup"
    manifest = await backup(world.services, folder)
    if damage == "file":
        victim = folder / FILES / manifest["files"][0]["key"]
        name = manifest["files"][0]["key"]
    else:
        victim = folder / manifest["database"]["file"]
        name = manifest["database"]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    target = await fresh("fs")
    with pytest.raises(BackupError, match="damaged, nothing was restored") as caught:
        await restore(target, folder)
    assert f"{name}: checksum mismatch" in str(caught.value)
    assert await tables_and_counts(target) == {} and await target.storage.keys() == []


def test_the_backup_and_restore_commands(world, tmp_path, monkeypatch, capsys):
    """``madrasa backup`` and ``madrasa restore`` through the command line (a ``.tar`` file, file-system storage)."""
    settings = world.settings
    env = {
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "MIGRATION_DATABASE_URL": settings.migration_database_url,
        "SECRET_KEY": settings.secret_key,
        "STORAGE_ROOT": str(settings.storage_path),
        "ALLOWED_PLUGINS": "example",
        "LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(f"MADRASA_{name}", value)
    archive = tmp_path / "cli.tar"
    assert main(["backup", str(archive)]) == 0
    out = capsys.readouterr().out
    assert f"backup written to {archive}" in out and "files: " in out
    assert main(["backup", str(archive)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["restore", str(archive)]) == 1  # the world itself is not empty
    assert "--force" in capsys.readouterr().err

    target = tmp_path / "target"
    monkeypatch.setenv("MADRASA_DATA_DIR", str(target))
    monkeypatch.setenv("MADRASA_STORAGE_ROOT", str(target / "files"))
    name = None
    if world.backend == "postgres":
        name = f"madrasa_restore_{secrets.token_hex(6)}"
        pg = run_sync(create_database(world.pg, name))
        monkeypatch.setenv("MADRASA_DATABASE_URL", pg.url(pg.app_role))
        monkeypatch.setenv("MADRASA_MIGRATION_DATABASE_URL", pg.url(pg.owner))
    else:
        monkeypatch.setenv("MADRASA_DATABASE_URL", f"sqlite:///{target / 'madrasa.sqlite3'}")
    try:
        assert main(["restore", str(archive)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("restored the backup of") and "  attendance_mark: " in out
        assert "warning" not in out
    finally:
        if name is not None:
            run_sync(drop_database(world.pg, name))
    assert len(list((target / "files").rglob("*.pdf"))) >= 4
