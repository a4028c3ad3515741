"""Login benchmark on PostgreSQL: logins per second at 10 and 50 connections, and a page served meanwhile.

The script creates a throw-away database with an owner role and an application role, migrates it and
generates one school (``devtools.generator``: 500 pupils, their guardians with parent memberships). ``--accounts``
guardians get a password; another guardian gets a browser session (``IdentityService.start_web_session``).

For each argon2id cost, ``madrasa serve`` is started with it (``MADRASA_ARGON2_*``; the accounts' hashes are
made at that cost first, so no login re-hashes), then, for each ``--connections`` level, a load process
(``--load-client``, asyncio, keep-alive HTTP/1.1) runs two loads at once for ``--duration`` seconds after a
warm-up:

* logins: that many connections in a closed loop, each ``POST /t/<school>/api/v1/auth/token`` with the next
  account's e-mail and password (200 expected);
* a page: one more connection, ``GET /t/<school>/`` (the parent's home page) with the session cookie
  (200 expected), a request every 1/``--page-rate`` seconds (20/s by default; 0: a closed loop), or as soon
  as the previous answer is in when it took longer.

Costs: the configured default (OWASP's argon2id guidance, 19 MiB, t=2, p=1) and, as the baseline, the
library's former default (RFC 9106's second profile, 64 MiB, t=3, p=4), measured in the same run. The
password-hash pool has its default size (the CPU count) unless ``--hash-workers`` is given. It prints
logins/s, p50 and p99 of the logins, p99 of the page, the ratios to the targets (≥ 40 logins/s; page p99
≤ 100 ms) and the ratio to the baseline; also the time of one hash in this process at each cost. The
load average is printed first: other work on the machine slows every figure. Everything created is
removed at the end, also on error or Ctrl-C. Exit status 0 unless something broke.

    .venv/bin/python benchmarks/login.py [--accounts 200] [--duration 15] [--warmup 3] [--connections 10,50]
        [--hash-workers N] [--page-rate 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import app_settings, fresh_pg, server_env, tear_down  # noqa: E402
from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg  # noqa: E402
from benchmarks.request_overhead import (  # noqa: E402
    Server,
    _raise_interrupt,
    _read_response,
    free_port,
    madrasa_command,
)

PASSWORD = "results-day-2026"
TARGET_LOGINS = 40.0
TARGET_PAGE_P99_MS = 100.0
#: (label, memory KiB, passes, lanes): the configured default, then the former one as the baseline.
COSTS = (("OWASP 19 MiB t=2 p=1 (default)", 19456, 2, 1), ("baseline: 64 MiB t=3 p=4 (former)", 65536, 3, 4))


# --------------------------------------------------------------------------- the load process


def _percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None


async def _client(host: str, port: int, requests: Any, deadline: float, record: Any, interval: float = 0.0) -> int:
    """One keep-alive connection sending ``next(requests)`` until ``deadline``, a request every ``interval``
    seconds at most (0: as soon as the previous answer is in); returns its errors."""
    loop = asyncio.get_running_loop()
    errors = 0
    while loop.time() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            errors += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while loop.time() < deadline:
                started = time.perf_counter()
                writer.write(next(requests))
                status, close = await _read_response(reader)
                elapsed = time.perf_counter() - started
                record(status, elapsed)
                if close:
                    break
                if interval > elapsed:
                    await asyncio.sleep(interval - elapsed)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            errors += 1
        finally:
            writer.close()
    return errors


def _login_requests(host: str, port: int, school: str, emails: list[str]) -> Any:
    """An endless cycle of login requests over the accounts."""
    n = 0
    while True:
        body = json.dumps({"email": emails[n % len(emails)], "password": PASSWORD, "tenant": school}).encode()
        head = (
            f"POST /t/{school}/api/v1/auth/token HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        n += 1
        yield head.encode("latin-1") + body


async def run_load(
    base: str, spec: dict[str, Any], duration: float, warmup: float, connections: int, page_rate: float
) -> dict:
    """Logins on ``connections`` connections and one page connection (``page_rate`` requests/s at most) at once;
    the figures of the measured part."""
    host, port = base.removeprefix("http://").split(":")
    page = (
        f"GET /t/{spec['school']}/ HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/html\r\n"
        f"Cookie: {spec['cookie_name']}={spec['cookie']}\r\n\r\n"
    ).encode("latin-1")
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    deadline = measure_from + duration
    logins: list[float] = []
    pages: list[float] = []
    bad: dict[str, int] = {"login": 0, "page": 0}
    every: dict[str, int] = {"login": 0, "page": 0}  # warm-up included

    def recorder(kind: str, into: list[float]) -> Any:
        def record(status: int, seconds: float) -> None:
            every[kind] += 1
            if loop.time() < measure_from:
                return
            if status != 200:
                bad[kind] += 1
            into.append(seconds)

        return record

    def pages_forever() -> Any:
        while True:
            yield page

    requests = _login_requests(host, int(port), spec["school"], spec["emails"])
    tasks = [_client(host, int(port), requests, deadline, recorder("login", logins)) for _ in range(connections)]
    interval = 1 / page_rate if page_rate > 0 else 0.0
    tasks.append(_client(host, int(port), pages_forever(), deadline, recorder("page", pages), interval))
    errors = await asyncio.gather(*tasks)
    return {
        "logins_per_s": len(logins) / duration,
        "logins": len(logins),
        "login_p50_ms": _percentile(logins, 0.50),
        "login_p99_ms": _percentile(logins, 0.99),
        "pages": len(pages),
        "page_p50_ms": _percentile(pages, 0.50),
        "page_p99_ms": _percentile(pages, 0.99),
        "bad_logins": bad["login"],
        "bad_pages": bad["page"],
        "errors": sum(errors),
        "all_logins": every["login"],
        "all_pages": every["page"],
    }


def load_client(args: argparse.Namespace) -> int:
    """Entry point of the ``--load-client`` subprocess: print the run's figures as JSON."""
    spec = json.loads(Path(args.spec).read_text())
    print(
        json.dumps(
            asyncio.run(
                run_load(args.load_client, spec, args.duration, args.warmup, int(args.connections), args.page_rate)
            )
        )
    )
    return 0


# --------------------------------------------------------------------------- set-up


@dataclass
class Prepared:
    """What the loads need: the school, the accounts, a session cookie and the database's version."""

    school: str
    emails: list[str]
    cookie: str
    version: str


async def prepare(pg: PgWorld, settings_kw: dict[str, Any], accounts: int, seed: int) -> Prepared:
    """Migrate, generate one school, pick the accounts and open the viewer's browser session."""
    from core.app import build_services
    from core.config import load_settings
    from core.identity import Identity
    from core.migrate import migrate
    from devtools.generator import generate

    settings = load_settings({}, **settings_kw, db_pool_min=1, db_pool_max=4)
    services = build_services(settings)
    await services.db.start()
    try:
        await migrate(services.db, services.migration_sets)
        print("generating 1 school × 500 pupils with their guardians (devtools.generator) …", flush=True)
        stats = await generate(services.db, regions=1, schools_per_region=1, students_per_school=500, seed=seed)
        print(f"  {stats.rows:,} rows in {stats.seconds:.1f} s", flush=True)
        owner = await asyncpg.connect(pg.url(pg.owner))
        try:
            rows = await owner.fetch(
                "SELECT p.id, p.email, p.full_name, p.full_name_ar, p.locale, t.id AS school_id, t.slug "
                "FROM membership m JOIN person p ON p.id = m.person_id JOIN tenant t ON t.id = m.tenant_id "
                "WHERE m.role = 'parent' ORDER BY p.id LIMIT $1",
                accounts + 1,
            )
        finally:
            await owner.close()
        if len(rows) < accounts + 1:
            raise RuntimeError(f"only {len(rows)} guardians generated, {accounts + 1} wanted")
        viewer = rows[-1]
        identity = Identity(viewer["id"], viewer["email"], viewer["full_name"], viewer["full_name_ar"], "fr")
        cookie = await services.identity.start_web_session(identity, viewer["school_id"], "login-bench", "127.0.0.1")
        version = str(await services.db.fetchval("SHOW server_version"))
    finally:
        await services.db.stop()
    return Prepared(rows[0]["slug"], [r["email"] for r in rows[:accounts]], cookie, version)


async def set_passwords(pg: PgWorld, emails: list[str], hashed: str) -> None:
    """Give every account the same password, hashed at the cost under test (as the owner)."""
    owner = await asyncpg.connect(pg.url(pg.owner))
    try:
        await owner.execute("UPDATE person SET password_hash = $1 WHERE email = ANY($2::text[])", hashed, emails)
    finally:
        await owner.close()


def hash_timing(memory: int, passes: int, lanes: int, rounds: int = 5) -> tuple[str, float]:
    """A hash of :data:`PASSWORD` at this cost and the median time of one verification in this process (ms)."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(memory_cost=memory, time_cost=passes, parallelism=lanes)
    hashed = hasher.hash(PASSWORD)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        hasher.verify(hashed, PASSWORD)
        times.append((time.perf_counter() - started) * 1000)
    return hashed, statistics.median(times)


# --------------------------------------------------------------------------- the benchmark


def _ms(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else "       —"


def benchmark(args: argparse.Namespace) -> int:
    """Set up, serve at each cost, load at each level, report, tear down."""
    import httpx

    from core.middleware import SESSION_COOKIE

    levels = [int(x) for x in args.connections.split(",") if x.strip()]
    pg = fresh_pg(args.admin_url, "login")
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-login-bench-"))
    servers: list[Server] = []
    created = False
    results: list[tuple[str, int, dict[str, Any]]] = []
    try:
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)", flush=True)
        created = True
        asyncio.run(create_pg(pg))
        settings_kw = app_settings(pg, tmp / "data")
        prepared = asyncio.run(prepare(pg, settings_kw, args.accounts, args.seed))
        print(f"PostgreSQL {prepared.version}: {len(prepared.emails)} accounts at {prepared.school}", flush=True)
        spec = tmp / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "school": prepared.school,
                    "emails": prepared.emails,
                    "cookie": prepared.cookie,
                    "cookie_name": SESSION_COOKIE,
                }
            )
        )
        for label, memory, passes, lanes in COSTS:
            hashed, one_ms = hash_timing(memory, passes, lanes)
            print(f"\n{label}: one verification in this process {one_ms:.0f} ms (median of 5)", flush=True)
            asyncio.run(set_passwords(pg, prepared.emails, hashed))
            port = free_port()
            env = server_env(settings_kw, 2, 10)
            env.update(
                {
                    "MADRASA_PORT": str(port),
                    "MADRASA_ARGON2_MEMORY_KIB": str(memory),
                    "MADRASA_ARGON2_TIME_COST": str(passes),
                    "MADRASA_ARGON2_PARALLELISM": str(lanes),
                }
            )
            if args.hash_workers is not None:
                env["MADRASA_PASSWORD_HASH_WORKERS"] = str(args.hash_workers)
            server = Server(
                "madrasa serve",
                [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env,
                tmp / f"serve-{memory}.log",
            )
            servers.append(server)
            base = f"http://127.0.0.1:{port}"
            server.wait_ok(f"{base}/readyz")
            with httpx.Client(base_url=base, timeout=60) as client:
                check = client.post(
                    f"/t/{prepared.school}/api/v1/auth/token",
                    json={"email": prepared.emails[0], "password": PASSWORD, "tenant": prepared.school},
                )
                page = client.get(
                    f"/t/{prepared.school}/",
                    headers={"accept": "text/html", "cookie": f"{SESSION_COOKIE}={prepared.cookie}"},
                )
            if check.status_code != 200 or page.status_code != 200:
                raise RuntimeError(f"login {check.status_code} {check.text[:200]}; page {page.status_code}")
            for connections in levels:
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--load-client",
                    base,
                    "--spec",
                    str(spec),
                    "--duration",
                    str(args.duration),
                    "--warmup",
                    str(args.warmup),
                    "--connections",
                    str(connections),
                    "--page-rate",
                    str(args.page_rate),
                ]
                cpu_before = server.cpu_seconds()
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 300)
                cpu_after = server.cpu_seconds()
                if out.returncode != 0:
                    raise RuntimeError(f"load client failed ({out.returncode}):\n{out.stderr[-2000:]}")
                figures = json.loads(out.stdout)
                cpu = ""
                if cpu_before is not None and cpu_after is not None and figures["all_logins"]:
                    per_login = (cpu_after - cpu_before) / figures["all_logins"] * 1000
                    cpu = f"   server CPU {per_login:.0f} ms/login (its pages included)"
                results.append((label, connections, figures))
                print(
                    f"  {connections:3d} connections: {figures['logins_per_s']:6.1f} logins/s   "
                    f"login p50 {_ms(figures['login_p50_ms'])} ms  p99 {_ms(figures['login_p99_ms'])} ms   "
                    f"page p99 {_ms(figures['page_p99_ms'])} ms ({figures['pages']} pages)   "
                    f"non-200: {figures['bad_logins']} logins, {figures['bad_pages']} pages; "
                    f"errors {figures['errors']}{cpu}",
                    flush=True,
                )
            server.stop()
        report(results, levels)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        tear_down(servers, pg if created else None, tmp)
    return 0


def report(results: list[tuple[str, int, dict[str, Any]]], levels: list[int]) -> None:
    """Ratios to the targets, and of the default cost to the baseline, per level."""
    by = {(label, c): f for label, c, f in results}
    current, baseline = COSTS[0][0], COSTS[1][0]
    print(f"\ntargets: ≥ {TARGET_LOGINS:.0f} logins/s; page p99 ≤ {TARGET_PAGE_P99_MS:.0f} ms while logins run")
    for c in levels:
        now, before = by.get((current, c)), by.get((baseline, c))
        if now is None:
            continue
        page = now["page_p99_ms"]
        line = (
            f"  {c:3d} connections: logins/s / target = {now['logins_per_s'] / TARGET_LOGINS:.2f}; "
            f"target / page p99 = {TARGET_PAGE_P99_MS / page:.2f}"
            if page
            else f"  {c:3d} connections: logins/s / target = {now['logins_per_s'] / TARGET_LOGINS:.2f}"
        )
        if before and before["logins_per_s"]:
            line += f"; logins/s default / baseline = {now['logins_per_s'] / before['logins_per_s']:.2f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run the benchmark or, with ``--load-client``, one load."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", default="10,50")
    parser.add_argument("--hash-workers", type=int, default=None)
    parser.add_argument("--page-rate", type=float, default=20.0, help="page requests per second at most (0: no pause)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--load-client", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_client:
        return load_client(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
