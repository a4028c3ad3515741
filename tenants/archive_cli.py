"""``madrasa export-tenant SLUG FILE`` and ``madrasa import-tenant FILE [--dry-run]``.

Both run with the platform scope, as the operator of the deployment: the export keeps the password
hashes of the subtree's members (as a platform administrator's does), so their logins survive. The
export is written to a temporary file next to ``FILE`` and renamed once complete, so a failed export
leaves no partial archive. The import prints its report as JSON; the exit status is 0 when the import is equal to the
source (or the dry run found nothing wrong), 1 when the archive is refused, 2 when the equality
check found differences.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from core.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the two commands to the ``madrasa`` parser."""
    parser = subparsers.add_parser("export-tenant", help="export a region, province or school to a zip archive")
    parser.add_argument("slug", help="the tenant's slug")
    parser.add_argument("file", help="the archive to write")
    parser.set_defaults(func=cmd_export)
    parser = subparsers.add_parser("import-tenant", help="import a tenant archive into this deployment")
    parser.add_argument("file", help="the archive to read")
    parser.add_argument("--dry-run", action="store_true", help="validate only, write nothing")
    parser.set_defaults(func=cmd_import)


async def _started(settings: Settings) -> Any:
    from core.app import build_services
    from core.migrate import pending

    services = build_services(settings)
    await services.db.start()
    await services.storage.ensure_ready()
    missing = await pending(services.db, services.migration_sets)
    if missing:
        await services.db.stop()
        raise SystemExit(f"pending migrations ({', '.join(a + '.' + m for a, m in missing)}): run madrasa migrate")
    return services


def _temporary_next_to(file: Path) -> str:
    fd, tmp = tempfile.mkstemp(dir=file.resolve().parent, prefix=f".{file.name}.", suffix=".part")
    os.close(fd)
    return tmp


def _is_file(file: Path) -> bool:
    return file.is_file()


async def export_to(settings: Settings, slug: str, file: Path) -> int:
    """Export ``slug`` into ``file``; returns the exit status."""
    from tenants.archive import ArchiveError, export_tenant

    services = await _started(settings)
    tmp = _temporary_next_to(file)
    try:
        manifest = await export_tenant(services, slug, Path(tmp), password_hashes=True)
        os.replace(tmp, file)
    except ArchiveError as exc:
        print(f"export refused: {exc.message}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        await services.db.stop()
    rows = sum(t.rows for t in manifest.tables)
    print(
        f"exported {manifest.tenant.kind} {slug}: {rows} rows in {len(manifest.tables)} tables, "
        f"{len(manifest.files)} files -> {file}"
    )
    for key in manifest.missing_files:
        print(f"warning: {key} is named in the database but missing from storage", file=sys.stderr)
    return 0


async def import_from(settings: Settings, file: Path, *, dry_run: bool) -> int:
    """Import ``file``; prints the report and returns the exit status."""
    from tenants.archive import ArchiveError, import_archive

    if not _is_file(file):
        print(f"import refused: no file {file}", file=sys.stderr)
        return 1
    services = await _started(settings)
    try:
        report = await import_archive(services, file, dry_run=dry_run)
    except ArchiveError as exc:
        print(f"import refused: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    finally:
        await services.db.stop()
    print(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    return 0 if report.dry_run or report.equal else 2


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """``madrasa export-tenant SLUG FILE``."""
    return asyncio.run(export_to(settings, args.slug, Path(args.file)))


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """``madrasa import-tenant FILE [--dry-run]``."""
    return asyncio.run(import_from(settings, Path(args.file), dry_run=args.dry_run))
