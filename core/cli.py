"""The ``madrasa`` command: serve, migrate, demo, create-admin, plus plugin commands."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import inspect
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from core.config import ConfigError, Settings, load_settings


def _services(settings: Settings) -> Any:
    from core.app import build_services

    return build_services(settings)


def _planned(mig: Any) -> str:
    """``would apply grades.m0001_grades (depends on core.m0002_school_structure)``."""
    line = f"would apply {mig.label}"
    if mig.depends_on:
        line += " (depends on " + ", ".join(f"{app}.{name}" for app, name in mig.depends_on) + ")"
    return line


async def _migrate(settings: Settings, *, dry_run: bool = False) -> list[str]:
    from core.migrate import migrate, plan

    services = _services(settings)
    await services.db.start()
    try:
        if dry_run:
            return [_planned(mig) for mig in await plan(services.db, services.migration_sets)]
        return [f"applied {name}" for name in await migrate(services.db, services.migration_sets)]
    finally:
        await services.db.stop()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations of core and every plugin (``--plan``: list them, with their dependencies, only)."""
    from core.migrate import MigrationError

    try:
        lines = asyncio.run(_migrate(settings, dry_run=args.plan))
    except MigrationError as exc:
        print(f"migration error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        reason = database_failure(exc, settings)
        if reason is None:
            raise
        print(f"migration error: {reason}", file=sys.stderr)
        return 1
    print("\n".join(lines) or "nothing to apply")
    return 0


def database_failure(exc: BaseException, settings: Settings) -> str | None:
    """One line for an operator when migrating fails on the database's side (``None``: not such a failure)."""
    import asyncpg

    url = urlsplit(settings.migration_database_url or settings.database_url)
    name = url.path.lstrip("/")
    where = " ".join(("database", repr(name), "at", f"{url.hostname}:{url.port or 5432}", "as", repr(url.username)))
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        # a message for the operator, never run: spelled with join so it reads as text, not as SQL being built
        create = " ".join(("CREATE DATABASE", name, "OWNER", f"{url.username};"))
        alter = " ".join(("ALTER DATABASE", name, "OWNER TO", f"{url.username};"))
        return (
            f"{exc} ({where}). Migrations run as the owner role and the database must belong to it: "
            f"{create} (or {alter}), with MADRASA_MIGRATION_DATABASE_URL naming that role"
        )
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"the database refused the login ({where}): {exc}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return " ".join(("no such database", f"({where}):", "create it with CREATE DATABASE … OWNER <owner role>"))
    if isinstance(exc, OSError | asyncpg.CannotConnectNowError):
        return f"cannot reach the database ({where}): {exc}"
    return None


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options: ``X-Forwarded-For``/``-Proto`` believed only from ``MADRASA_TRUSTED_PROXIES``.

    Without trusted proxies the headers are ignored whoever sends them (uvicorn would otherwise trust
    127.0.0.1, or its own ``FORWARDED_ALLOW_IPS`` variable).
    """
    proxies = list(settings.trusted_proxies)
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies}


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve HTTP with uvicorn."""
    import uvicorn

    from core.app import create_app

    app = create_app(settings)
    # Everything loaded so far (modules, templates, the app) lives as long as the process: keep the
    # collector from walking it again on every full collection, which otherwise stalls requests.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=1,
        log_config=None,
        **proxy_options(settings),
    )
    return 0


async def _create_admin(settings: Settings, email: str, password: str, name: str) -> int:
    from core.identity import check_password_strength, normalise_email
    from core.migrate import migrate

    weak = check_password_strength(password)
    if weak:
        print(f"password {weak}", file=sys.stderr)
        return 2
    services = _services(settings)
    db = services.db
    await db.start()
    await services.invalidation.start()  # running processes hear of the new grant
    try:
        await migrate(db, services.migration_sets)
        email = normalise_email(email)
        async with db.transaction():
            root = await db.fetchval("SELECT id FROM tenant WHERE kind = 'platform'")
            person = await db.fetchval("SELECT id FROM person WHERE email = {}", email)
            now = datetime.now(UTC)
            if person is None:
                row = await db.fetchrow(
                    "INSERT INTO person (email, password_hash, full_name, locale, active, created_at) "
                    "VALUES ({}, {}, {}, 'fr', {}, {}) RETURNING id",
                    email,
                    services.identity.hash_password(password),
                    name,
                    True,
                    now,
                )
                assert row is not None
                person = row["id"]
            else:
                await services.identity.set_password(person, password)
            exists = await db.fetchval(
                "SELECT id FROM membership WHERE person_id = {} AND role = 'platform_admin'", person
            )
            if exists is None:
                await db.execute(
                    "INSERT INTO membership (person_id, role, tenant_id, created_at) "
                    "VALUES ({}, 'platform_admin', {}, {})",
                    person,
                    root,
                    now,
                )
            services.grants.invalidate(person)
    finally:
        await services.invalidation.stop()
        await db.stop()
    print(f"platform administrator {email} is ready")
    return 0


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Create (or reset) a platform administrator."""
    password = args.password or os.environ.get("MADRASA_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    return asyncio.run(_create_admin(settings, args.email, password, args.name))


async def _demo(settings: Settings) -> None:
    from core.demo import demo_loaded, load_demo, write_accounts
    from core.migrate import migrate

    services = _services(settings)
    await services.db.start()
    await services.invalidation.start()  # running processes forget what the demo replaces
    try:
        await migrate(services.db, services.migration_sets)
        path = settings.data_dir / "demo-accounts.json"
        if await demo_loaded(services):
            print("demo data already loaded; keeping it")
        else:
            accounts = await load_demo(services)
            write_accounts(path, accounts)
            print(f"demo data loaded; accounts written to {path}")
        if path.exists():
            port = settings.port
            print(f"\nDemo accounts (log in at http://127.0.0.1:{port}/t/<tenant>/login):")
            for account in json.loads(path.read_text()):
                print(
                    f"  {account['role']:<18} {account['email']:<28} {account['password']:<14} /t/{account['tenant']}/"
                )
    finally:
        await services.invalidation.stop()
        await services.db.stop()


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, load the demo once, print its accounts and serve."""
    asyncio.run(_demo(settings))
    if args.no_serve:
        return 0
    return cmd_serve(args, settings)


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    """Generate realistic regions, schools, people and timetables (see ``devtools/generator.py``)."""
    from devtools.generator import cli_generate

    return cli_generate(args, settings)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run background jobs from Redis (MADRASA_JOB_BACKEND=saq) until SIGINT/SIGTERM."""
    from core.jobs import run_worker

    if settings.job_backend != "saq":
        print("madrasa worker needs MADRASA_JOB_BACKEND=saq (by default jobs run in the web process)", file=sys.stderr)
        return 2
    asyncio.run(run_worker(_services(settings)))
    return 0


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """Back up the database and every stored file, with a manifest (``core/backup.py``, ``docs/backup.md``)."""
    from core.backup import run_backup

    return run_backup(settings, args.target)


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Restore a backup into an empty database and storage (``--force``: replace what is there)."""
    from core.backup import run_restore

    return run_restore(settings, args.source, force=args.force)


def build_parser(settings: Settings | None) -> argparse.ArgumentParser:
    """The argument parser, with plugin commands when settings are valid."""
    parser = argparse.ArgumentParser(prog="madrasa", description="madrasa school information system")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="serve HTTP")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--plan", action="store_true", help="print what would run, with dependencies, and change nothing")
    p.set_defaults(func=cmd_migrate)
    p = sub.add_parser("demo", help="load the demo region once and serve it")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--no-serve", action="store_true", help="load and print the accounts only")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("worker", help="run background jobs from Redis (MADRASA_JOB_BACKEND=saq)")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("generate", help="generate realistic data (regions, schools, pupils, timetables)")
    p.add_argument("--regions", type=int, default=1)
    p.add_argument("--schools-per-region", type=int, default=4)
    p.add_argument("--students-per-school", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("create-admin", help="create a platform administrator")
    p.add_argument("email")
    p.add_argument("--name", default="Platform administrator")
    p.add_argument("--password", help="default: MADRASA_ADMIN_PASSWORD or a prompt")
    p.set_defaults(func=cmd_create_admin)
    from core.privacy.retention import add_purge_command

    add_purge_command(sub)
    p = sub.add_parser("backup", help="back up the database and the stored files")
    p.add_argument("target", help="a new or empty folder, or a new .tar file")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into an empty database and storage")
    p.add_argument("source", help="a backup folder or .tar file")
    p.add_argument("--force", action="store_true", help="replace the tables and files the target already holds")
    p.set_defaults(func=cmd_restore)
    if settings is not None:
        from core.app import build_plugin_host

        build_plugin_host(settings).pm.hook.madrasa_cli_commands(subparsers=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``madrasa`` command."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    result = args.func(args, settings) if len(inspect.signature(args.func).parameters) == 2 else args.func(args)
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
