"""``madrasa backup`` and ``madrasa restore``: the database and every stored file, with a manifest.

A backup is a folder (or the same folder packed in a ``.tar`` file)::

    manifest.json        format, madrasa version, date, dialect, migrations applied, rows per table,
                         and the size and SHA-256 of every other member
    database.dump        PostgreSQL: ``pg_dump --format=custom`` as the owner role
    database.sqlite3     SQLite: a copy made with sqlite3's online backup API
    files/t/<tenant>/…   every object of the storage backend (fs or S3), under its key

PostgreSQL is dumped through the owner URL (``MADRASA_MIGRATION_DATABASE_URL``, else
``MADRASA_DATABASE_URL``) with row-level security on and the platform flag set, so no row is hidden;
the password travels in the environment, not on the command line. Files are copied after the
database, so every file the dump refers to is there.

:func:`restore` reads the whole archive and checks every checksum before it writes anything, refuses a
target that already holds tables or files unless ``force`` (then the archive replaces them), restores
the database (``pg_restore`` as the owner, then the application role's grants) and the files, and
reports what it restored, table by table.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.db import postgres_config
from core.migrate import TRACKING_TABLE, grant_app_role
from core.scope import Scope
from core.sql import SQL, ident
from core.storage import StorageError, check_key, tenant_of

if TYPE_CHECKING:
    from core.config import Settings
    from core.services import Services

log = logging.getLogger("madrasa.backup")

FORMAT = 1
MANIFEST = "manifest.json"
PG_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite3"
FILES = "files"
_CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or a restore that cannot go on; the message says why (nothing was restored)."""


# --------------------------------------------------------------------------- helpers


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _version() -> str:
    try:
        return metadata.version("madrasa")
    except metadata.PackageNotFoundError:
        return "unknown"


def _owner_url(services: Services) -> str:
    settings = services.settings
    return settings.migration_database_url or settings.database_url


def _pg_env(url: str) -> dict[str, str]:
    """libpq's environment for a URL (the password is not put on a command line), RLS showing every row."""
    config = postgres_config(url)
    env = {
        **os.environ,
        "PGHOST": str(config["host"]),
        "PGPORT": str(config["port"]),
        "PGDATABASE": str(config["database"]),
        "PGUSER": str(config["user"]),
        "PGOPTIONS": "-c app.platform=on",
    }
    if "password" in config:
        env["PGPASSWORD"] = str(config["password"])
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} not found: install the PostgreSQL client programs") from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-2000:]}")


async def tables_and_counts(services: Services) -> dict[str, int]:
    """Rows per table of the database, every tenant included (platform scope)."""
    db = services.db
    if db.dialect == "postgres":
        listing = "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    else:
        listing = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    counts: dict[str, int] = {}
    async with db.scoped(Scope.everything(), write=False):
        for row in await db.fetch(listing):
            name = str(row["name"])
            counts[name] = int(await db.fetchval(SQL("SELECT COUNT(*) FROM {}", ident(name))) or 0)
    return counts


async def applied_migrations(services: Services) -> list[str]:
    """``app.name`` of every migration applied, in order of name (empty when the database is empty)."""
    counts = await tables_and_counts(services)
    if TRACKING_TABLE not in counts:
        return []
    async with services.db.scoped(Scope.everything(), write=False):
        rows = await services.db.fetch(SQL("SELECT app, name FROM {} ORDER BY app, name", ident(TRACKING_TABLE)))
    return [f"{r['app']}.{r['name']}" for r in rows]


@contextlib.contextmanager
def _folder_of(path: Path, *, reading: bool) -> Iterator[Path]:
    """The archive's folder: ``path`` itself, or a temporary one for a ``.tar`` file (packed or unpacked)."""
    if (reading and not path.is_file()) or (not reading and path.suffix != ".tar"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="madrasa-backup-") as tmp:
        folder = Path(tmp) / "backup"
        if reading:
            try:
                with tarfile.open(path) as tar:
                    tar.extractall(folder, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise BackupError(f"{path} is not a readable backup archive: {exc}") from None
            yield folder
        else:
            folder.mkdir()
            yield folder
            with tarfile.open(path, "w") as tar:
                tar.add(folder, arcname=".")


# --------------------------------------------------------------------------- backup


async def backup(services: Services, target: Path) -> dict[str, Any]:
    """Write a backup of the database and the stored files to ``target`` (an empty or new folder, or a
    ``.tar`` file that does not exist yet); returns the manifest."""
    target = Path(target)
    if target.suffix == ".tar" and target.exists():
        raise BackupError(f"{target} exists already: choose a new file")
    if target.suffix != ".tar" and target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: choose a new or empty folder")
    with _folder_of(target, reading=False) as folder:
        folder.mkdir(parents=True, exist_ok=True)
        migrations = await applied_migrations(services)
        counts = await tables_and_counts(services)
        database = await _dump_database(services, folder)
        files = await _copy_files(services, folder)
        manifest = {
            "format": FORMAT,
            "madrasa_version": _version(),
            "created_at": datetime.now(UTC).isoformat(),
            "dialect": services.db.dialect,
            "storage_backend": services.settings.storage_backend,
            "database": database,
            "migrations": migrations,
            "tables": counts,
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        _owner_only(folder)
    if target.is_file():
        target.chmod(0o600)
    return manifest


def _owner_only(folder: Path) -> None:
    """A backup holds every person's data and password hashes: readable by its owner only."""
    folder.chmod(0o700)
    for path in folder.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


async def _dump_database(services: Services, folder: Path) -> dict[str, Any]:
    if services.db.dialect == "postgres":
        out = folder / PG_DUMP
        url = _owner_url(services)
        command = ["pg_dump", "--format=custom", "--enable-row-security", "--no-owner", f"--file={out}"]
        await asyncio.to_thread(_run, command, _pg_env(url))
        app_role = postgres_config(services.settings.database_url)["user"]
    else:
        out = folder / SQLITE_COPY
        await asyncio.to_thread(_sqlite_copy, services.settings.sqlite_path, out)
        app_role = None
    return {"file": out.name, "size": out.stat().st_size, "sha256": sha256_of(out), "app_role": app_role}


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy an SQLite database with the online backup API (consistent while the application writes)."""
    if not source.exists():
        raise BackupError(f"no SQLite database at {source}")
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


async def _copy_files(services: Services, folder: Path) -> list[dict[str, Any]]:
    storage = services.storage
    files = []
    for key in await storage.keys():
        tenant_id = tenant_of(key)
        info = await storage.stat(key, tenant_id=tenant_id)
        data = await storage.get(key, tenant_id=tenant_id)
        path = folder / FILES / key
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)
        files.append(
            {
                "key": key,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "content_type": info.content_type,
            }
        )
    return files


# --------------------------------------------------------------------------- restore


async def restore(services: Services, source: Path, *, force: bool = False) -> dict[str, Any]:
    """Restore a backup into the database and storage of ``services``; returns what was restored.

    Everything is checked before anything is written: the manifest, the dialect, every checksum, and that
    the target holds no table and no file (unless ``force``: the backup then replaces them).
    """
    source = Path(source)
    if not source.exists():
        raise BackupError(f"{source}: no such backup")
    with _folder_of(source, reading=True) as folder:
        manifest = _read_manifest(folder)
        if manifest["dialect"] != services.db.dialect:
            raise BackupError(f"the backup is of a {manifest['dialect']} database; the target is {services.db.dialect}")
        files = await asyncio.to_thread(_verified_files, folder, manifest)
        tables = await tables_and_counts(services)
        keys = await services.storage.keys()
        if (tables or keys) and not force:
            raise BackupError(
                f"the target is not empty ({len(tables)} tables, {len(keys)} stored files): "
                "restore into an empty database and storage, or pass --force to replace them"
            )
        await _restore_database(services, folder, manifest, replace=bool(tables))
        for entry in manifest["files"]:
            key = entry["key"]
            data = await asyncio.to_thread(files[key].read_bytes)
            await services.storage.put(key, data, entry["content_type"], tenant_id=tenant_of(key))
        for key in sorted(set(keys) - set(files)):
            await services.storage.delete(key, tenant_id=tenant_of(key))
    counts = await tables_and_counts(services)
    differences = {
        name: (expected, counts.get(name))
        for name, expected in manifest["tables"].items()
        if counts.get(name) != expected
    }
    return {
        "created_at": manifest["created_at"],
        "madrasa_version": manifest["madrasa_version"],
        "migrations": await applied_migrations(services),
        "tables": counts,
        "files": len(files),
        "bytes": sum(int(entry["size"]) for entry in manifest["files"]),
        "differences": differences,
    }


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"no {MANIFEST} in {folder}: not a madrasa backup") from None
    except (ValueError, OSError) as exc:
        raise BackupError(f"{MANIFEST} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format') if isinstance(manifest, dict) else '?'}")
    for field in ("dialect", "database", "tables", "files", "migrations", "created_at"):
        if field not in manifest:
            raise BackupError(f"{MANIFEST} has no {field!r}")
    return manifest


def _verified_files(folder: Path, manifest: dict[str, Any]) -> dict[str, Path]:
    """Check the database file and every stored file against the manifest (read in chunks); returns the path of
    each stored file of the archive by key."""
    problems = []
    database = folder / Path(manifest["database"]["file"]).name
    if not database.is_file():
        problems.append(f"{database.name} is missing")
    elif sha256_of(database) != manifest["database"]["sha256"]:
        problems.append(f"{database.name}: checksum mismatch")
    found: dict[str, Path] = {}
    for entry in manifest["files"]:
        key = str(entry["key"])
        path = folder / FILES / key
        try:
            check_key(key, tenant_of(key))
            if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
                problems.append(f"{key}: checksum mismatch")
        except FileNotFoundError:
            problems.append(f"{key} is missing")
        except Exception as exc:
            problems.append(f"{key}: {exc}")
        found[key] = path
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BackupError(f"the backup is damaged, nothing was restored: {shown}")
    return found


async def _restore_database(services: Services, folder: Path, manifest: dict[str, Any], *, replace: bool) -> None:
    db = services.db
    if db.dialect == "sqlite":
        await db.stop()
        await asyncio.to_thread(_sqlite_restore, folder / SQLITE_COPY, services.settings.sqlite_path)
        return
    app_role = postgres_config(services.settings.database_url)["user"]
    same_roles = manifest["database"].get("app_role") == app_role
    command = ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction"]
    if not same_roles:
        command.append("--no-acl")
    if replace:
        command += ["--clean", "--if-exists"]
    command += [f"--dbname={postgres_config(_owner_url(services))['database']}", str(folder / PG_DUMP)]
    await db.stop()  # pooled connections planned statements for the tables being replaced
    await asyncio.to_thread(_run, command, _pg_env(_owner_url(services)))
    await db.start()
    if not same_roles:
        quiet = logging.getLogger("madrasa.migrate")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # every table is "missing" its grants after --no-acl: no warning each
        try:
            await grant_app_role(db)
        finally:
            quiet.setLevel(level)


def _sqlite_restore(copy: Path, target: Path) -> None:
    """Replace the SQLite database at ``target`` by the backup's copy (sqlite3's backup API, in place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(copy)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def describe(result: dict[str, Any]) -> list[str]:
    """The lines ``madrasa restore`` prints: what was restored, table by table."""
    lines = [
        f"restored the backup of {result['created_at']} (madrasa {result['madrasa_version']})",
        f"database: {len(result['tables'])} tables, {sum(result['tables'].values())} rows, "
        f"{len(result['migrations'])} migrations applied",
    ]
    lines += [f"  {name}: {count} rows" for name, count in sorted(result["tables"].items())]
    lines.append(f"files: {result['files']} ({result['bytes']} bytes)")
    for name, (expected, found) in sorted(result["differences"].items()):
        lines.append(f"warning: {name} has {found} rows, the manifest counted {expected} before the dump")
    return lines


def remove_partial(target: Path, *, keep_folder: bool) -> None:
    """Remove what a failed backup left at ``target`` (its contents only, with ``keep_folder``)."""
    if not target.is_dir():
        target.unlink(missing_ok=True)
    elif not keep_folder:
        shutil.rmtree(target, ignore_errors=True)
    else:
        for child in target.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the commands


def run_backup(settings: Settings, target: Path | str) -> int:
    """``madrasa backup TARGET``: prints what was saved; 1 (and nothing left behind) on failure."""
    from core.app import build_services

    target = Path(target)
    existed = target.exists()
    empty_folder = target.is_dir() and not any(target.iterdir())

    async def run() -> dict[str, Any]:
        services = build_services(settings)
        await services.db.start()
        try:
            return await backup(services, target)
        finally:
            await services.db.stop()

    try:
        manifest = asyncio.run(run())
    except (BackupError, StorageError) as exc:
        if not existed or empty_folder:
            remove_partial(target, keep_folder=existed)
        print(f"backup error: {exc}", file=sys.stderr)
        return 1
    rows = sum(manifest["tables"].values())
    size = sum(f["size"] for f in manifest["files"])
    print(f"backup written to {target}")
    print(f"database ({manifest['dialect']}): {len(manifest['tables'])} tables, {rows} rows")
    print(f"files: {len(manifest['files'])} ({size} bytes)")
    return 0


def run_restore(settings: Settings, source: Path | str, *, force: bool = False) -> int:
    """``madrasa restore SOURCE [--force]``: prints what was restored; 1 with the reason when refused."""
    from core.app import build_services

    async def run() -> dict[str, Any]:
        services = build_services(settings)
        await services.db.start()
        await services.storage.ensure_ready()
        try:
            return await restore(services, Path(source), force=force)
        finally:
            await services.db.stop()

    try:
        result = asyncio.run(run())
    except (BackupError, StorageError) as exc:
        print(f"restore error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(describe(result)))
    return 0
