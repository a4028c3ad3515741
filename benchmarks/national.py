"""National-scale benchmark on PostgreSQL: one large region (1.2 million pupils, 36 million marks).

Casablanca-Settat holds about 1.2 million pupils. The script creates a throw-away database with an
owner role and an application role (``LOGIN NOSUPERUSER NOBYPASSRLS``, as ``benchmarks/generate.py``
does), migrates it, and measures:

* **generation**: :func:`devtools.generator.generate` as the application role (RLS on), in a process of
  its own (``benchmarks/generate.py --child``) whose resident memory (its process tree's ``VmRSS``) is
  sampled every ``--rss-every`` seconds; then, set-based as the owner, the sheets, assessments and marks
  of ``benchmarks/semester_close.py`` (``data_sql``: ``--marks-per-pupil`` marks per pupil, 36 million by
  default), every sheet published, ``VACUUM ANALYZE`` (``grades_load.add_marks``), the secondary indexes
  of ``grade_mark`` dropped before and built again after (a bulk load). Rows per second of each part and
  of the whole (target ≥ 50,000), and the memory samples (flat: the peak of the run's second half at most
  25 % above the first half's, which holds the start-up);
* **semester close**: :func:`plugins.grades.close.compute_results` for every school of the region (the
  application role, ``Scope.everything()``), one timed first close (results emptied and a checkpoint
  taken before, untimed), target ≤ 120 s; checked against ``semester_close.hand_written`` run the same
  way just after (rows compared with ``EXCEPT ALL`` both ways and aggregates:
  ``semester_close.snapshot`` and ``differing_rows``);
* **results-day read mix**: the term is then closed for every school (``grade_term_close``), one real
  report card (French, rendered by ``plugins.grades.bulletins``) is stored for each of ``--sessions``
  guardians' children (the same PDF under each child's own key and row), and ``madrasa serve`` (one
  uvicorn worker, asyncpg pool 2..10) is loaded by ``wrk`` as ``benchmarks/grades_load.py`` does (its
  Lua rotation, its CPU meter), over a list in which 9 requests in 10 read published marks
  (``/api/v1/me/pupils/{id}/marks``) or averages (``…/results``) in turn and 1 in 10 downloads a report
  card (``/api/v1/grades/bulletins/{id}``), at each ``--connections`` level: req/s and p99; before it,
  ``--probe`` sequential requests of each kind alone (latency and database CPU per request);
* **size**: ``pg_database_size``, the largest tables, and the disk of the server's data directory.

``--cache`` adds the read mix with the shared results cache in Redis, then with every read sending back its
``ETag`` (``If-None-Match``: 304 answers); ``--replica`` adds it with one streaming read replica made for the run
(:mod:`benchmarks.national_modes`). Each set-up is a ``madrasa serve`` of its own, loaded the same way.

    .venv/bin/python benchmarks/national.py [--pupils 1200000] [--marks-per-pupil 30] [--connections 10,50]
        [--duration 10] [--warmup 2] [--sessions 500] [--probe 40] [--rss-every 10] [--seed 1] [--keep]
        [--skip-generate DBNAME] [--cache] [--replica]

``--keep`` keeps the database and its roles (their names are printed); ``--skip-generate DBNAME`` runs
the close, the reads and the sizes again on a kept database (new passwords are set on its two roles).
The database and roles, made or reused, are dropped at the end unless ``--keep``, also on error or
Ctrl-C. Below 1.2 million pupils the report adds the figures projected linearly to 1.2 million,
labelled as projections. Exit status 0 unless something crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import signal
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

from benchmarks.common import (  # noqa: E402
    PUPILS_PER_SCHOOL,
    app_settings,
    fresh_pg,
    identities,
    open_sessions,
    tree_rss_mib,
)
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, child_env, create_pg, drop_pg  # noqa: E402
from benchmarks.grades_load import (  # noqa: E402
    add_marks,
    loadavg,
    pick_guardians,
)
from benchmarks.national_modes import (  # noqa: E402
    Replica,
    cache_prefix,
    drop_cache_keys,
    modes,
    on_port,
    replica_caught_up,
    replica_commits,
    serve_mode,
    standby,
)
from benchmarks.national_report import (  # noqa: E402
    FULL_PUPILS,
    Close,
    Generation,
    Mix,
    MixRun,
    log,
    report,
    size_text,
)
from benchmarks.request_overhead import _raise_interrupt  # noqa: E402

MAX_ASSESSMENTS = 3
GENERATE_SCRIPT = ROOT / "benchmarks" / "generate.py"


# --------------------------------------------------------------------------- pure helpers


def sheet_shape(marks_per_pupil: int, subjects_available: int) -> tuple[int, int]:
    """``(subjects per class, assessments per subject)`` giving ``marks_per_pupil`` marks to each pupil.

    As many assessments as possible (at most 3: two CCs and the exam), over at most ``subjects_available``
    subjects; :class:`ValueError` when no such split exists.
    """
    if marks_per_pupil < 1:
        raise ValueError("--marks-per-pupil must be at least 1")
    for assessments in range(MAX_ASSESSMENTS, 0, -1):
        subjects, rest = divmod(marks_per_pupil, assessments)
        if not rest and subjects <= subjects_available:
            return subjects, assessments
    raise ValueError(
        f"--marks-per-pupil {marks_per_pupil}: not a number of subjects (at most {subjects_available}) "
        f"times 1 to {MAX_ASSESSMENTS} assessments"
    )


def schools_for(pupils: int) -> tuple[int, int]:
    """``(schools, pupils per school)`` for a region of ``pupils`` pupils, in schools of 500."""
    if pupils < 1:
        raise ValueError("--pupils must be at least 1")
    if pupils < PUPILS_PER_SCHOOL:
        return 1, pupils
    return pupils // PUPILS_PER_SCHOOL, PUPILS_PER_SCHOOL


def roles_of(database: str) -> tuple[str, str]:
    """The owner and application roles of a database made by this script (``madrasa_national_<suffix>``)."""
    prefix = "madrasa_national_"
    if not database.startswith(prefix) or not database[len(prefix) :].replace("_", "").isalnum():
        raise ValueError(f"{database!r} was not made by this script (expected madrasa_national_<suffix>)")
    suffix = database[len(prefix) :]
    return f"madrasa_nationalown_{suffix}", f"madrasa_nationalapp_{suffix}"


# --------------------------------------------------------------------------- generation


def run_generator(pg: PgWorld, data_dir: str, schools: int, per_school: int, seed: int, every: float) -> Generation:
    """Migrate, then ``generate.py --child`` in its own process, its RSS sampled every ``every`` seconds."""
    env = child_env(pg, data_dir)
    subprocess.run([sys.executable, str(GENERATE_SCRIPT), "--migrate-only"], env=env, check=True, cwd=ROOT)
    gen = Generation()
    out_file = Path(data_dir) / "generator.json"
    with out_file.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(GENERATE_SCRIPT), "--child", str(schools), str(per_school), str(seed)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stdin=subprocess.DEVNULL,
        )
        began = time.perf_counter()
        next_log = began
        try:
            while proc.poll() is None:
                now = time.perf_counter()
                rss = tree_rss_mib(proc.pid)
                if rss:
                    gen.rss.append((now - began, rss))
                    if now >= next_log:
                        log(f"  generator: {now - began:6.0f} s, RSS {rss:7.1f} MiB")
                        next_log = now + every
                time.sleep(min(0.5, every))
        finally:
            if proc.poll() is None:  # interrupted: the generator goes too (this process's child, by its id)
                proc.terminate()
                proc.wait(30)
    if proc.returncode:
        raise RuntimeError(f"the generator exited with {proc.returncode}")
    result = json.loads(out_file.read_text().strip().splitlines()[-1])
    gen.generator_rows = int(result["rows"])
    gen.generator_seconds = float(result["seconds"])
    gen.generator_counts = dict(result["counts"])
    gen.maxrss_mib = result["maxrss_kib"] / 1024
    return gen


async def add_all_marks(pg: PgWorld, gen: Generation, marks_per_pupil: int) -> None:
    """The sheets, assessments and marks, set-based as the owner; every sheet published; ``ANALYZE``."""
    from benchmarks.semester_close import data_sql
    from core.school import reference

    subjects, assessments = sheet_shape(marks_per_pupil, len(reference.SUBJECTS))
    owner = await asyncpg.connect(pg.url(pg.owner))
    try:
        await owner.execute("SELECT set_config('app.platform', 'on', false)")
        before = await _rows(owner)
        log(f"sheets, assessments and marks ({subjects} subjects × {assessments} assessments, set-based, owner) …")
        began = time.perf_counter()
        # A bulk load: the marks' secondary indexes are built once after the rows rather than row by row.
        indexes = await owner.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.schemaname = 'public' AND i.tablename = 'grade_mark' AND NOT x.indisprimary"
        )
        for row in indexes:
            await owner.execute(f'DROP INDEX "{row["indexname"]}"')
        await owner.execute("SET maintenance_work_mem = '1GB'")
        await add_marks(owner, 0, data_sql(subjects, assessments))
        gen.marks_insert_seconds = time.perf_counter() - began
        for row in indexes:
            await owner.execute(row["indexdef"])
        await owner.execute("ANALYZE grade_mark")
        gen.marks_seconds = time.perf_counter() - began
        gen.marks_rows = await _rows(owner) - before
    finally:
        await owner.close()
    log(
        f"  {gen.marks_rows:,} rows in {gen.marks_seconds:.1f} s (rows, publish and ANALYZE "
        f"{gen.marks_insert_seconds:.1f} s; {len(indexes)} indexes of grade_mark rebuilt after)"
    )


async def _rows(owner: asyncpg.Connection) -> int:
    return int(
        await owner.fetchval(
            "SELECT (SELECT count(*) FROM grade_policy) + (SELECT count(*) FROM subject_coefficient) "
            "+ (SELECT count(*) FROM grade_sheet) + (SELECT count(*) FROM grade_assessment) "
            "+ (SELECT count(*) FROM grade_mark)"
        )
    )


# --------------------------------------------------------------------------- the close


async def semester_close(pg: PgWorld, settings_kw: dict[str, Any]) -> Close:
    """One timed first close by the app and one by the hand-written statement; their rows compared."""
    from benchmarks.semester_close import (
        FACTS_SQL,
        SNAPSHOT_COLUMNS,
        differing_rows,
        hand_written,
        prepare_run,
        snapshot,
    )
    from core.app import build_services
    from core.config import load_settings
    from core.scope import Scope
    from plugins.grades.close import compute_results

    owner = await asyncpg.connect(pg.url(pg.owner))
    try:
        await owner.execute("SELECT set_config('app.platform', 'on', false)")
        facts = dict(await owner.fetchrow(FACTS_SQL))
        term_id = int(await owner.fetchval("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1"))
        school_ids = [int(r["id"]) for r in await owner.fetch("SELECT id FROM tenant WHERE kind = 'school'")]
    finally:
        await owner.close()
    log(f"semester close of {len(school_ids)} schools, {facts['marks']:,} marks …")
    admin = await asyncpg.connect(pg.admin_db_url())
    services = build_services(load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=2))
    db = services.db
    await db.start()
    try:
        # The app first (the figure with the target), then the hand-written statement; the rows left for the
        # reads are the hand-written statement's, compared equal to the app's just below.
        await prepare_run(pg)
        began = time.perf_counter()
        async with db.scoped(Scope.everything()):
            stats = await compute_results(db, school_ids=school_ids, term_id=term_id)
        app_seconds = time.perf_counter() - began
        log(f"  app          {app_seconds:.1f} s")
        app = await snapshot(admin, "app")
        await prepare_run(pg)
        hand_seconds = await hand_written(pg.url(pg.app_role), term_id, school_ids)
        log(f"  hand-written {hand_seconds:.1f} s")
        hand = await snapshot(admin, "hand")
        differing = await differing_rows(admin)
        for table in SNAPSHOT_COLUMNS:
            for label in ("app", "hand"):
                await admin.execute(f"DROP TABLE IF EXISTS bench_{label}_{table}")
        # Results day: the term is closed for every school (what close_term records before computing).
        await admin.execute(
            "INSERT INTO grade_term_close (region_id, province_id, school_id, term_id, closed_at) "
            "SELECT DISTINCT c.region_id, c.province_id, c.school_id, $1::int, now() FROM school_class c "
            "WHERE NOT EXISTS (SELECT 1 FROM grade_term_close k WHERE k.school_id = c.school_id AND k.term_id = $1)",
            term_id,
        )
        await admin.execute("VACUUM ANALYZE grade_subject_result, grade_general_result, grade_class_stats")
        version = str(await admin.fetchval("SHOW server_version"))
    finally:
        await db.stop()
        await admin.close()
    return Close(app_seconds, hand_seconds, differing, app == hand, stats, facts, version)


# --------------------------------------------------------------------------- the read mix


async def prepare_mix(pg: PgWorld, settings_kw: dict[str, Any], sessions: int) -> Mix:
    """Guardians with their sessions, and one stored report card for each one's child."""
    from core.app import build_services
    from core.config import load_settings
    from core.scope import Scope
    from core.storage import build_key
    from plugins.grades.bulletins.data import gather_bulletins
    from plugins.grades.bulletins.pdf import render_bulletin

    services = build_services(load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=2))
    await services.db.start()
    owner = await asyncpg.connect(pg.url(pg.owner))
    began = time.perf_counter()
    try:
        await owner.execute("SELECT set_config('app.platform', 'on', false)")
        guardians = await pick_guardians(owner, sessions)
        if not guardians:
            raise RuntimeError("no guardian to load with")
        people = await identities(owner, [g.person_id for g in guardians])
        await open_sessions(services, people, guardians, "national")
        term_id = int(await owner.fetchval("SELECT id FROM term WHERE tenant_id IS NULL ORDER BY number LIMIT 1"))
        first = guardians[0]
        class_id = int(
            await owner.fetchval(
                "SELECT class_id FROM enrolment WHERE student_id = $1 AND ends_on IS NULL", first.student_id
            )
        )
        async with services.db.scoped(Scope.everything(), write=False):
            data = await gather_bulletins(services.db, Scope.everything(), class_id, term_id)
        sample = next(d for d in data if d.student_id == first.student_id)
        pdf = await asyncio.to_thread(render_bulletin, sample, "fr")
        pupils = await owner.fetch(
            "SELECT s.id, s.national_code, e.class_id, c.region_id, c.province_id, c.school_id "
            "FROM student s JOIN enrolment e ON e.student_id = s.id AND e.ends_on IS NULL "
            "JOIN school_class c ON c.id = e.class_id WHERE s.id = ANY($1::int[])",
            [g.student_id for g in guardians],
        )
        bulletin_ids: dict[int, int] = {}
        for p in pupils:
            key = build_key(p["school_id"], "bulletins", f"{p['national_code']}-S1-fr.pdf")
            await services.storage.put(key, pdf, "application/pdf", tenant_id=p["school_id"])
            bulletin_ids[p["id"]] = int(
                await owner.fetchval(
                    "INSERT INTO grade_bulletin (region_id, province_id, school_id, term_id, student_id, class_id, "
                    "storage_key, locale, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'fr', now()) RETURNING id",
                    p["region_id"],
                    p["province_id"],
                    p["school_id"],
                    term_id,
                    p["id"],
                    p["class_id"],
                    key,
                )
            )
    finally:
        await owner.close()
        await services.db.stop()
    return Mix(guardians, bulletin_ids, len(pdf), time.perf_counter() - began)


# --------------------------------------------------------------------------- sizes


async def sizes(pg: PgWorld) -> dict[str, Any]:
    """``pg_database_size``, the ten largest tables (with indexes), and the data directory's disk."""
    admin = await asyncpg.connect(pg.admin_db_url())
    try:
        database = int(await admin.fetchval("SELECT pg_database_size(current_database())"))
        tables = await admin.fetch(
            "SELECT c.relname, pg_total_relation_size(c.oid) AS total, pg_relation_size(c.oid) AS heap "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY total DESC LIMIT 10"
        )
        data_dir = str(await admin.fetchval("SHOW data_directory"))
    finally:
        await admin.close()
    disk = shutil.disk_usage(data_dir)
    return {"database": database, "tables": [tuple(r) for r in tables], "disk": disk, "data_dir": data_dir}


# --------------------------------------------------------------------------- the run


def benchmark(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    schools, per_school = schools_for(args.pupils)
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-national-"))
    if args.skip_generate:
        owner_role, app_role = roles_of(args.skip_generate)
        pg = PgWorld(args.admin_url, args.skip_generate, owner_role, app_role, secrets.token_hex(12))
    else:
        pg = fresh_pg(args.admin_url, "national")
    keep = args.keep
    started = time.perf_counter()
    created = False
    try:
        log(f"load average at start: {loadavg()}")
        if args.skip_generate:
            asyncio.run(_reset_passwords(pg))
            gen = None
        else:
            created = True
            asyncio.run(create_pg(pg))
            log(f"database {pg.database} (owner {pg.owner}, app role {pg.app_role})")
            log(f"generating 1 region × {schools} schools × {per_school} pupils (devtools.generator, app role) …")
            gen = run_generator(pg, str(tmp), schools, per_school, args.seed, args.rss_every)
            log(f"  {gen.generator_rows:,} rows in {gen.generator_seconds:.1f} s")
            asyncio.run(add_all_marks(pg, gen, args.marks_per_pupil))
            generated = asyncio.run(sizes(pg))
            log(
                f"  generation {gen.generator_rows + gen.marks_rows:,} rows in "
                f"{gen.generator_seconds + gen.marks_seconds:.1f} s; database {size_text(generated['database'])}"
            )
        settings_kw = app_settings(pg, tmp / "data")
        close = asyncio.run(semester_close(pg, settings_kw))
        log(f"sessions and report cards for {args.sessions} guardians …")
        mix = asyncio.run(prepare_mix(pg, settings_kw, args.sessions))
        busy = loadavg()
        log(f"load average before the runs: {busy}")
        prefix = cache_prefix()
        with standby(args.admin_url) if args.replica else contextlib.nullcontext(Replica()) as replica:
            if replica.port is not None:
                waited = asyncio.run(replica_caught_up(args.admin_url, replica.port))
                log(f"read replica on port {replica.port} (pg_basebackup -R), caught up in {waited:.1f} s")
            elif args.replica:
                log(f"read replica: not measured: {replica.reason}")
            replica_url = on_port(pg.url(pg.app_role), replica.port) if replica.port else None
            runs: list[MixRun] = []
            before = asyncio.run(replica_commits(args.admin_url, replica.port, pg.database)) if replica.port else 0
            try:
                for number, mode in enumerate(modes(args.cache, replica_url, prefix)):
                    runs += serve_mode(pg, settings_kw, mode, mix, args, tmp, first=number == 0)
            finally:
                if args.cache:
                    asyncio.run(drop_cache_keys(prefix))
            if replica.port:
                served = asyncio.run(replica_commits(args.admin_url, replica.port, pg.database)) - before
                log(f"transactions the replica served during the runs: {served:,}")
        not_measured = {"with one read replica": replica.reason} if args.replica and replica.port is None else {}
        size = asyncio.run(sizes(pg))
        report(
            args, schools, per_school, gen, close, mix, runs, size, busy, time.perf_counter() - started, not_measured
        )
        if keep:
            log(f"kept: database {pg.database}, roles {pg.owner} and {pg.app_role} (--skip-generate {pg.database})")
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        if (created or args.skip_generate) and not keep:
            try:
                asyncio.run(drop_pg(pg))
            except (OSError, asyncpg.PostgresError) as exc:
                print(f"warning: could not drop {pg.database} / roles: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


async def _reset_passwords(pg: PgWorld) -> None:
    admin = await asyncpg.connect(pg.admin_url, timeout=5)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", pg.database):
            raise RuntimeError(f"no database {pg.database}")
        for role in (pg.owner, pg.app_role):
            await admin.execute(f"ALTER ROLE {role} PASSWORD '{pg.password}'")
    finally:
        await admin.close()


def _levels(text: str) -> list[int]:
    levels = [int(x) for x in text.split(",") if x.strip()]
    if not levels or any(n < 1 for n in levels):
        raise argparse.ArgumentTypeError("connections: a comma-separated list of positive numbers, e.g. 10,50")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pupils", type=int, default=FULL_PUPILS, help="pupils in the region (default 1200000)")
    parser.add_argument("--marks-per-pupil", type=int, default=30, help="marks per pupil (default 30)")
    parser.add_argument("--connections", type=_levels, default=[10, 50], dest="levels", help="default 10,50")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each run (default 2)")
    parser.add_argument("--sessions", type=int, default=500, help="distinct guardians in the mix (default 500)")
    parser.add_argument(
        "--probe", type=int, default=40, help="sequential requests of each kind alone, before the mix (default 40)"
    )
    parser.add_argument("--rss-every", type=float, default=10.0, help="seconds between RSS lines (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL superuser URL")
    parser.add_argument("--keep", action="store_true", help="keep the database and roles for re-runs")
    parser.add_argument("--skip-generate", metavar="DBNAME", help="re-run on a database kept by --keep")
    parser.add_argument("--cache", action="store_true", help="also with the shared cache, and with If-None-Match")
    parser.add_argument("--replica", action="store_true", help="also with one streaming read replica")
    args = parser.parse_args(argv)
    try:
        from core.school import reference

        schools_for(args.pupils)
        sheet_shape(args.marks_per_pupil, len(reference.SUBJECTS))
        if args.skip_generate:
            roles_of(args.skip_generate)
    except ValueError as exc:
        parser.error(str(exc))
    if args.duration <= 0 or args.sessions < 1 or args.rss_every <= 0 or args.probe < 1:
        parser.error("--duration and --rss-every > 0, --sessions and --probe ≥ 1 please")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
