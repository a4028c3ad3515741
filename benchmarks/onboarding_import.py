"""Onboarding import benchmark on PostgreSQL: pupils and guardians from CSV, validation included.

For each size the script creates a throw-away database with an owner role and an application role
(``benchmarks/generate.py``'s :class:`PgWorld`), migrates it as the owner, and in a subprocess of
its own (so the peak resident set size belongs to that run alone) creates a region with a province
and 50 schools, writes a pupils CSV (each pupil with one or two guardians, every guardian new), and
goes through the two service calls the API makes, as the application role (row-level security on):
``upload`` (store the file in parts; read it as a stream, check every cell, stage with ``COPY``, check
duplicates, codes across the platform and guardians set-based — for a large file this is
``run_validation``, which the preview job the upload queues runs) and ``run_commit`` (read the
stored file back part by part, validate it again, then write pupils, guardians, links and parent
memberships with ``INSERT … SELECT`` in one transaction). It then checks the counts and drops the
database.

Sizes: ``20000`` pupils (30,000 guardians) and ``100000`` pupils (150,000 guardians, the headline
figure). Rows are pupils + guardians. Target: ≥ 10,000 rows/s on the large size, upload and commit
together, and a peak memory that stays flat as the file grows (the ratio large/small is printed).

    .venv/bin/python benchmarks/onboarding_import.py [--small 20000] [--large 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DEFAULT_ADMIN_URL, FLAT_RATIO, PgWorld, child_env, create_pg, drop_pg  # noqa: E402

TARGET_ROWS_PER_SECOND = 10_000
SCHOOLS = 50


def write_file(path: Path, pupils: int) -> int:
    """A pupils CSV: even pupils have two guardians, odd ones one; returns the number of guardians."""
    guardians = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "school",
                "national_code",
                "last_name",
                "first_name",
                "last_name_ar",
                "first_name_ar",
                "birth_date",
                "gender",
                "guardian1_email",
                "guardian1_name",
                "guardian1_relation",
                "guardian2_email",
                "guardian2_name",
                "guardian2_relation",
            ]
        )
        for n in range(pupils):
            two = n % 2 == 0
            guardians += 2 if two else 1
            out.writerow(
                [
                    f"BN{n % SCHOOLS:04d}",
                    f"B{n:09d}",
                    f"Nom{n}",
                    f"Prenom{n}",
                    "العلوي",
                    "أمين",
                    f"{2008 + n % 8}-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "FM"[n % 2],
                    f"mere{n}@bench.madrasa.test",
                    f"Mère {n}",
                    "mère",
                    f"pere{n}@bench.madrasa.test" if two else "",
                    f"Père {n}" if two else "",
                    "père" if two else "",
                ]
            )
    return guardians


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


async def _child(pupils: int, data_dir: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    from core.app import build_services
    from core.config import load_settings
    from core.scope import Scope
    from tenants.onboarding import Actor, get_batch, run_commit, run_validation, upload

    services = build_services(load_settings())
    db = services.db
    await db.start()
    try:
        now = datetime.now(UTC)
        async with db.scoped(Scope.everything()):
            platform = await db.fetchrow("SELECT id, path FROM tenant WHERE kind = 'platform'")
            if platform is None:
                platform = await db.fetchrow(
                    "INSERT INTO tenant (kind, parent_id, path, slug, name_fr, status, default_locale, created_at) "
                    "VALUES ('platform', NULL, '', 'platform', 'Plateforme', 'active', 'fr', {}) RETURNING id",
                    now,
                )
                await db.execute("UPDATE tenant SET path = {} WHERE id = {}", f"{platform['id']}/", platform["id"])
            parent_path = f"{platform['id']}/"
            ids = {}
            for kind, slug, code in [("region", "bench-region", "99"), ("province", "bench-province", "999")]:
                row = await db.fetchrow(
                    "INSERT INTO tenant (kind, parent_id, path, slug, code, name_fr, status, default_locale, "
                    "created_at) VALUES ({}, {}, '', {}, {}, {}, 'active', 'fr', {}) RETURNING id",
                    kind,
                    int(parent_path.rstrip("/").split("/")[-1]),
                    slug,
                    code,
                    slug,
                    now,
                )
                parent_path = f"{parent_path}{row['id']}/"
                ids[kind] = row["id"]
                await db.execute("UPDATE tenant SET path = {} WHERE id = {}", parent_path, row["id"])
            for n in range(SCHOOLS):
                row = await db.fetchrow(
                    "INSERT INTO tenant (kind, parent_id, path, slug, code, name_fr, status, default_locale, "
                    "created_at) VALUES ('school', {}, '', {}, {}, {}, 'active', 'fr', {}) RETURNING id",
                    ids["province"],
                    f"bench-school-{n}",
                    f"BN{n:04d}",
                    f"École {n}",
                    now,
                )
                await db.execute("UPDATE tenant SET path = {} WHERE id = {}", f"{parent_path}{row['id']}/", row["id"])
        services.tenants.invalidate()
        region = await services.tenants.by_id(ids["region"])
        assert region is not None
        path = Path(data_dir) / f"pupils-{pupils}.csv"
        guardians = write_file(path, pupils)
        actor = Actor(services, Scope(frozenset({region.id})), None, region)
        wall, cpu = time.perf_counter(), time.process_time()
        with path.open("rb") as stream:
            batch = await upload(actor, "students", path.name, stream)
        if batch.status == "validating":  # a large file: the job the upload queued runs this
            await run_validation(actor, batch.id)
            batch = await get_batch(actor, batch.id)
        if batch.status != "ready":
            raise SystemExit(f"upload refused: {batch.report.errors[:5]}")
        upload_wall = time.perf_counter() - wall
        report = await run_commit(actor, batch.id)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if not report.ok:
            raise SystemExit(f"commit refused: {report.errors[:5]}")
    finally:
        await db.stop()
    return {
        "pupils": pupils,
        "guardians": guardians,
        "created": report.created,
        "seconds": wall,
        "upload_seconds": upload_wall,
        "cpu_seconds": cpu,
        "file_bytes": path.stat().st_size,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


# --------------------------------------------------------------------------- the parent


async def counts(pg: PgWorld) -> dict[str, int]:
    """What the import wrote (admin connection: sees every row)."""
    conn = await asyncpg.connect(pg.admin_db_url(), timeout=5)
    try:
        return {
            "student": int(await conn.fetchval("SELECT COUNT(*) FROM student")),
            "guardian persons": int(
                await conn.fetchval("SELECT COUNT(*) FROM person WHERE email LIKE '%@bench.madrasa.test'")
            ),
            "guardianship": int(await conn.fetchval("SELECT COUNT(*) FROM guardianship")),
            "parent memberships": int(await conn.fetchval("SELECT COUNT(*) FROM membership WHERE role = 'parent'")),
        }
    finally:
        await conn.close()


def run_size(admin_url: str, pupils: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Create a database, migrate it, import in a subprocess, count, drop."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    pg = PgWorld(
        admin_url,
        f"madrasa_onbbench_{suffix}",
        f"madrasa_onbown_{suffix}",
        f"madrasa_onbapp_{suffix}",
        secrets.token_hex(12),
    )
    asyncio.run(create_pg(pg))
    try:
        with tempfile.TemporaryDirectory(prefix="madrasa-onbbench-") as data_dir:
            env = child_env(pg, data_dir)
            me = str(Path(__file__).resolve())
            subprocess.run([sys.executable, me, "--migrate-only"], env=env, check=True, cwd=ROOT)
            out = subprocess.run(
                [sys.executable, me, "--child", str(pupils), data_dir],
                env=env,
                check=True,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
        written = asyncio.run(counts(pg))
    finally:
        asyncio.run(drop_pg(pg))
    return result, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--migrate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.migrate_only:
        asyncio.run(_migrate_only())
        return 0
    if args.child:
        print(json.dumps(asyncio.run(_child(int(args.child[0]), args.child[1]))))
        return 0
    results = []
    for pupils in (args.small, args.large):
        result, written = run_size(args.admin_url, pupils)
        rows = result["pupils"] + result["guardians"]
        rate = rows / result["seconds"]
        results.append((result, rate))
        print(
            f"{pupils:>7} pupils + {result['guardians']:>7} guardians ({result['file_bytes'] / 2**20:.1f} MiB CSV): "
            f"upload {result['upload_seconds']:.1f} s + commit {result['seconds'] - result['upload_seconds']:.1f} s "
            f"= {result['seconds']:.1f} s, {rate:,.0f} rows/s, client CPU {result['cpu_seconds']:.1f} s "
            f"({1e6 * result['cpu_seconds'] / rows:.1f} µs/row), peak RSS {result['maxrss_kib'] / 1024:.0f} MiB"
        )
        print(f"         written: {written}")
        expected = {"student": pupils, "guardian persons": result["guardians"], "guardianship": result["guardians"]}
        if any(written[k] != v for k, v in expected.items()):
            print(f"         MISMATCH: expected {expected}")
    (small, _), (large, large_rate) = results
    ratio = large["maxrss_kib"] / small["maxrss_kib"]
    verdict = "met" if large_rate >= TARGET_ROWS_PER_SECOND else "NOT met"
    print(
        f"target ≥ {TARGET_ROWS_PER_SECOND:,} rows/s (upload + commit) on {args.large} pupils: "
        f"{large_rate:,.0f} rows/s ({verdict})"
    )
    flat = "flat" if ratio <= FLAT_RATIO else "NOT flat"
    print(f"peak RSS large/small: {ratio:.2f} (≤ {FLAT_RATIO} counts as flat: {flat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
