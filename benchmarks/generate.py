"""Generator benchmark on PostgreSQL: rows per second and peak memory at two sizes.

For each size the script creates a throw-away database with an owner role and an application
role (``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``tests/conftest.py`` and
``benchmarks/request_overhead.py`` do), migrates it as the owner, then runs
:func:`devtools.generator.generate` as the application role (row-level security applies) in a
subprocess of its own, so the peak resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``, read
inside the child) belongs to that run alone. After each run it checks the data with the admin
connection (pupils, enrolments, timetable clashes) and drops the database and roles.

Sizes are ``SCHOOLSxPUPILS`` in one region: by default ``100x500`` (50,000 pupils) and
``200x500`` (100,000 pupils, the headline figure). Targets: ≥ 20,000 rows/s on the large size,
and a peak memory that stays flat as the size grows (the ratio large/small is printed).

    .venv/bin/python benchmarks/generate.py [--small 100x500] [--large 200x500] [--seed 1]

Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_ADMIN_URL = os.environ.get("MADRASA_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_ROWS_PER_SECOND = 20_000
#: Peak memory counts as flat when the large run needs at most this much more than the small one.
FLAT_RATIO = 1.25


@dataclass
class PgWorld:
    """A throw-away database with an owner role and a plain application role."""

    admin_url: str
    database: str
    owner: str
    app_role: str
    password: str

    def url(self, role: str) -> str:
        """URL of the new database for a role."""
        parts = urlsplit(self.admin_url)
        netloc = f"{role}:{self.password}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
        return urlunsplit(("postgresql", netloc, f"/{self.database}", "", ""))

    def admin_db_url(self) -> str:
        """The admin URL pointed at the new database."""
        return self.admin_url.rsplit("/", 1)[0] + f"/{self.database}"


async def create_pg(pg: PgWorld) -> str:
    """Create the roles and the database; returns the server version."""
    admin = await asyncpg.connect(pg.admin_url, timeout=5)
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        for role in (pg.owner, pg.app_role):
            await admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{pg.password}'")
        await admin.execute(f"CREATE DATABASE {pg.database} OWNER {pg.owner}")
    finally:
        await admin.close()
    db_admin = await asyncpg.connect(pg.admin_db_url(), timeout=5)
    try:
        await db_admin.execute(f"ALTER SCHEMA public OWNER TO {pg.owner}")
    finally:
        await db_admin.close()
    return version


async def drop_pg(pg: PgWorld) -> None:
    """Drop the database and both roles (whatever of them exists)."""
    admin = await asyncpg.connect(pg.admin_url, timeout=5)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", pg.database)
        await admin.execute(f"DROP DATABASE IF EXISTS {pg.database}")
        await admin.execute(f"DROP ROLE IF EXISTS {pg.app_role}")
        await admin.execute(f"DROP ROLE IF EXISTS {pg.owner}")
    finally:
        await admin.close()


def child_env(pg: PgWorld, data_dir: str) -> dict[str, str]:
    """The MADRASA_* environment of a run: app role for the data, owner for migrations."""
    return {
        **os.environ,
        "MADRASA_DATA_DIR": data_dir,
        "MADRASA_DATABASE_URL": pg.url(pg.app_role),
        "MADRASA_MIGRATION_DATABASE_URL": pg.url(pg.owner),
        "MADRASA_SECRET_KEY": secrets.token_hex(32),
        "MADRASA_LOG_LEVEL": "WARNING",
    }


# --------------------------------------------------------------------------- inside the child


async def _migrate_only() -> None:
    from core.app import build_services
    from core.config import load_settings
    from core.migrate import migrate

    services = build_services(load_settings())
    await services.db.start()
    try:
        await migrate(services.db, services.migration_sets)
    finally:
        await services.db.stop()


async def _child(schools: int, pupils: int, seed: int) -> dict[str, Any]:
    from core.app import build_services
    from core.config import load_settings
    from devtools.generator import generate

    services = build_services(load_settings())
    await services.db.start()
    try:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not sys.stderr.isatty():
                return
            elapsed = time.perf_counter() - started
            print(f"\r  {done}/{total} schools, {elapsed:.0f} s", end="", file=sys.stderr, flush=True)

        stats = await generate(
            services.db,
            regions=1,
            schools_per_region=schools,
            students_per_school=pupils,
            seed=seed,
            progress=progress,
        )
        if sys.stderr.isatty():
            print(file=sys.stderr)
    finally:
        await services.db.stop()
    return {
        "counts": stats.counts,
        "rows": stats.rows,
        "seconds": stats.seconds,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


# --------------------------------------------------------------------------- the parent


CHECKS = {
    "pupils": "SELECT COUNT(*) FROM student",
    "pupils not enrolled exactly once": (
        "SELECT COUNT(*) FROM student s WHERE (SELECT COUNT(*) FROM enrolment e WHERE e.student_id = s.id "
        "AND e.ends_on IS NULL) <> 1"
    ),
    "classes outside 30-45": (
        "SELECT COUNT(*) FROM (SELECT class_id, COUNT(*) AS n FROM enrolment GROUP BY class_id) c "
        "WHERE n < 30 OR n > 45"
    ),
    "guardians with children in 2+ schools": (
        "SELECT COUNT(*) FROM (SELECT person_id FROM guardianship GROUP BY person_id "
        "HAVING COUNT(DISTINCT school_id) > 1) g"
    ),
    "timetable clashes (teacher, class or room)": " + ".join(
        f"(SELECT COUNT(*) FROM timetable_slot a JOIN timetable_slot b ON a.{col} = b.{col} AND a.id < b.id "
        "AND a.weekday = b.weekday AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at)"
        for col in ("teacher_id", "class_id", "room_id")
    ).join(("SELECT ", "")),
}


async def check(pg: PgWorld) -> dict[str, int]:
    """Sanity checks on what was written (admin connection: sees every row)."""
    conn = await asyncpg.connect(pg.admin_db_url(), timeout=5)
    try:
        return {name: int(await conn.fetchval(sql)) for name, sql in CHECKS.items()}
    finally:
        await conn.close()


def run_size(admin_url: str, schools: int, pupils: int, seed: int) -> tuple[dict[str, Any], dict[str, int], str]:
    """Create a database, migrate it, generate in a subprocess, check, drop."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    pg = PgWorld(
        admin_url,
        f"madrasa_genbench_{suffix}",
        f"madrasa_genown_{suffix}",
        f"madrasa_genapp_{suffix}",
        secrets.token_hex(12),
    )
    version = asyncio.run(create_pg(pg))
    try:
        with tempfile.TemporaryDirectory(prefix="madrasa-genbench-") as data_dir:
            env = child_env(pg, data_dir)
            me = str(Path(__file__).resolve())
            subprocess.run([sys.executable, me, "--migrate-only"], env=env, check=True, cwd=ROOT)
            out = subprocess.run(
                [sys.executable, me, "--child", str(schools), str(pupils), str(seed)],
                env=env,
                check=True,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
        checks = asyncio.run(check(pg))
    finally:
        asyncio.run(drop_pg(pg))
    return result, checks, version


def parse_size(text: str) -> tuple[int, int]:
    """``"200x500"`` → (200 schools, 500 pupils per school)."""
    schools, _, pupils = text.lower().partition("x")
    return int(schools), int(pupils)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", default="100x500", help="SCHOOLSxPUPILS of the small run (default 100x500)")
    parser.add_argument("--large", default="200x500", help="SCHOOLSxPUPILS of the large run (default 200x500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--migrate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.migrate_only:
        asyncio.run(_migrate_only())
        return 0
    if args.child:
        schools, pupils, seed = args.child
        print(json.dumps(asyncio.run(_child(schools, pupils, seed))))
        return 0

    sizes = [("small", *parse_size(args.small)), ("large", *parse_size(args.large))]
    results: list[tuple[str, int, int, dict[str, Any], dict[str, int]]] = []
    version = "?"
    for label, schools, pupils in sizes:
        print(f"{label}: 1 region × {schools} schools × {pupils} pupils …", flush=True)
        result, checks, version = run_size(args.admin_url, schools, pupils, args.seed)
        results.append((label, schools, pupils, result, checks))

    print()
    print(f"madrasa generate on PostgreSQL {version}, as the application role (RLS on), {os.cpu_count()} cores;")
    print("one region; fresh database per size; generator in its own process (peak RSS = ru_maxrss of that process)")
    print()
    header = (
        f"{'size':<6} {'schools':>7} {'pupils':>8} {'rows written':>13} {'seconds':>8} {'rows/s':>9} "
        f"{'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for label, schools, pupils, result, _ in results:
        rate = result["rows"] / result["seconds"]
        print(
            f"{label:<6} {schools:>7} {schools * pupils:>8,} {result['rows']:>13,} {result['seconds']:>8.1f} "
            f"{rate:>9,.0f} {result['maxrss_kib'] / 1024:>13.1f}"
        )
    print()
    large = results[-1][3]
    print("rows per table (large run):")
    for table, n in sorted(large["counts"].items()):
        print(f"  {table:<20} {n:>10,}")
    print()
    print("checks (admin connection):")
    for label, _, _, _, checks in results:
        print(f"  {label}: " + "; ".join(f"{name}: {n:,}" for name, n in checks.items()))
    print()
    rate = large["rows"] / large["seconds"]
    small_rss, large_rss = results[0][3]["maxrss_kib"], large["maxrss_kib"]
    ratio = large_rss / small_rss
    verdict = "met" if rate >= TARGET_ROWS_PER_SECOND else "not met"
    print(f"rows/s ≥ {TARGET_ROWS_PER_SECOND:,} (large run): {rate:,.0f} → {verdict}")
    print(
        f"peak memory flat: ratio big/small = {ratio:.2f} ({large_rss / 1024:.1f} / {small_rss / 1024:.1f} MiB) → "
        f"{'met' if ratio <= FLAT_RATIO else 'not met'} (flat: ≤ {FLAT_RATIO:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
