"""Notification centre load benchmark on PostgreSQL: the bell's unread count, read by many guardians at once.

The script creates a throw-away database with an owner role and an application role (``LOGIN NOSUPERUSER
NOBYPASSRLS``, as ``benchmarks/generate.py`` does), migrates it and fills it with :func:`devtools.generator.generate`
(one region, ``--schools`` schools of 500 pupils, app role, RLS on). Then, as the owner, set-based: every guardian
of the region gets ``--per-person`` notifications (a third of them unread), as a year of notices would leave them.

``--sessions`` guardians get an API token from the application's own ``IdentityService`` (the rows and signed
tokens a login creates, without the argon2id cost), each checked once over HTTP (200 and the unread count the
database holds). The load: ``GET /api/v1/me/notifications/unread-count`` with ``wrk -t1 --latency`` at
``--connections`` connections, rotating over the sessions (a generated Lua script), after a warm-up; against
``madrasa serve`` (one uvicorn worker, pool 2–10).

Target (two cores, load generator on the same machine): ≥ 400 req/s with p99 ≤ 50 ms at 10 connections. The load
average and the CPU time per request of the server, of the PostgreSQL backends and of wrk are printed (other work
on the machine skews every figure). Everything is removed at the end, also on error or Ctrl-C.

The announcement to 100,000 families and the guardian's today page come with those features.

    .venv/bin/python benchmarks/notify_load.py [--schools 10] [--sessions 300] [--per-person 30] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import app_settings, fresh_pg, identities, migrate_and_generate, server_env  # noqa: E402
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg, drop_pg  # noqa: E402
from benchmarks.grades_load import Target, lua_script, run_wrk  # noqa: E402
from benchmarks.request_overhead import Server, _raise_interrupt, free_port, madrasa_command  # noqa: E402

TARGET_RPS = 400.0
TARGET_P99_MS = 50.0
POOL_MIN, POOL_MAX = 2, 10
PATH = "/api/v1/me/notifications/unread-count"

#: Every guardian of the region gets ``$1`` notifications, one in three unread (set-based, as the owner).
FILL_SQL = """
INSERT INTO notification (region_id, province_id, school_id, tenant_id, batch_id, person_id, kind, text, link,
    created_at, read_at)
SELECT t.region_id, t.province_id, t.school_id, m.tenant_id, 'bench-' || g, m.person_id, 'bench.notice',
       'Notification ' || g, '/children', now() - g * interval '1 hour',
       CASE WHEN g % 3 = 0 THEN NULL ELSE now() END
FROM (SELECT DISTINCT ON (person_id) person_id, tenant_id FROM membership WHERE role = 'parent'
      ORDER BY person_id, tenant_id) m
JOIN LATERAL (SELECT split_part(tn.path, '/', 2)::int AS region_id, split_part(tn.path, '/', 3)::int AS province_id,
                     tn.id AS school_id FROM tenant tn WHERE tn.id = m.tenant_id) t ON true
CROSS JOIN generate_series(1, $1) AS g
"""


def log(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Reader:
    """A guardian the load acts as."""

    person_id: int
    school_id: int
    unread: int
    token: str = ""
    cookie: str = ""


async def build(pg: PgWorld, args: argparse.Namespace, settings_kw: dict[str, Any]) -> tuple[list[Reader], int]:
    """Migrate, generate, fill the inboxes, open the guardians' sessions; returns them and the rows added."""
    from core.app import build_services
    from core.config import load_settings

    services = build_services(load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=4))
    await services.db.start()
    try:
        await migrate_and_generate(services, args.schools, args.seed)
        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            await owner.execute("SELECT set_config('app.platform', 'on', false)")
            status = await owner.execute(FILL_SQL, args.per_person)
            added = int(status.split()[-1])
            await owner.execute("ANALYZE")
            rows = await owner.fetch(
                "SELECT m.person_id, m.tenant_id, (SELECT COUNT(*) FROM notification n WHERE n.person_id = m.person_id "
                "AND n.read_at IS NULL) AS unread FROM (SELECT DISTINCT ON (person_id) person_id, tenant_id "
                "FROM membership WHERE role = 'parent' ORDER BY person_id, tenant_id) m "
                "ORDER BY md5(m.person_id::text) LIMIT $1",
                args.sessions,
            )
            readers = [Reader(r["person_id"], r["tenant_id"], int(r["unread"])) for r in rows]
            people = await identities(owner, [r.person_id for r in readers])
        finally:
            await owner.close()
        for reader in readers:
            tokens = await services.identity.issue_tokens(
                people[reader.person_id], reader.school_id, "notify_load", "127.0.0.1"
            )
            reader.token = tokens["access_token"]
    finally:
        await services.db.stop()
    return readers, added


def benchmark(args: argparse.Namespace) -> int:
    """Set up, verify, load, report, tear down."""
    import httpx

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    pg = fresh_pg(args.admin_url, "notifyload")
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-notifyload-"))
    server: Server | None = None
    try:
        log(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        asyncio.run(create_pg(pg))
        settings_kw = app_settings(pg, tmp / "data")
        readers, added = asyncio.run(build(pg, args, settings_kw))
        log(f"{added:,} notifications in the guardians' inboxes; {len(readers)} guardians load the unread count")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            "madrasa serve",
            [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            {**server_env(settings_kw, POOL_MIN, POOL_MAX), "MADRASA_PORT": str(port)},
            tmp / "madrasa.log",
        )
        server.wait_ok(f"{base}/readyz")
        log("verifying: each guardian's unread count answers 200 with the count the database holds …")
        with httpx.Client(base_url=base, timeout=30) as client:
            for reader in readers:
                answer = client.get(PATH, headers={"Authorization": f"Bearer {reader.token}"})
                if answer.status_code != 200 or answer.json() != {"unread": reader.unread}:
                    raise RuntimeError(f"{PATH} for {reader.person_id}: {answer.status_code} {answer.text[:300]}")
        script = tmp / "unread.lua"
        requests = [(PATH, {"Authorization": f"Bearer {r.token}"}) for r in readers]
        script.write_text(lua_script(requests))
        target = Target("unread count", server, base, requests, script)
        run_wrk(target, args.connections, args.warmup, pg.database)
        result, cpu = run_wrk(target, args.connections, args.duration, pg.database)
        p50 = f"{result.p50_ms:.1f}" if result.p50_ms is not None else "?"
        p99 = f"{result.p99_ms:.1f}" if result.p99_ms is not None else "?"
        log(
            f"unread count ({args.connections} connections over {len(readers)} sessions): {result.rps:.1f} req/s, "
            f"p50 {p50} ms, p99 {p99} ms ({result.requests} requests, {result.bad_responses} non-2xx)"
        )
        if cpu.server_us is not None:
            log(
                f"  CPU µs per request: server {cpu.server_us:.0f}, PostgreSQL {cpu.pg_us or 0:.0f}, "
                f"wrk {cpu.client_us or 0:.0f}"
            )
        met = result.rps >= TARGET_RPS and (result.p99_ms or 1e9) <= TARGET_P99_MS and not result.bad_responses
        log(
            f"  ratio to the target: {result.rps / TARGET_RPS:.2f} × {TARGET_RPS:.0f} req/s; "
            f"target ≥ {TARGET_RPS:.0f} req/s and p99 ≤ {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
        )
        log(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        return 0
    finally:
        if server is not None:
            server.stop()
        asyncio.run(drop_pg(pg))
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--per-person", type=int, default=30)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
