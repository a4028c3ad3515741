"""Request-overhead benchmark on PostgreSQL: madrasa's tenant-scoped file-info API against a bare handler.

Both sides serve ``GET …/files/<id>/info`` for one stored file, reading one row inside a transaction
that first sets ``app.scope``/``app.platform`` (row-level security), from the same database, as the
same kind of role, behind the same uvicorn set-up (one worker, same event loop and HTTP parser, no
access log), and are loaded by the same client (``wrk``, else a Python load generator) in alternating runs.

* madrasa: ``madrasa serve``; bearer token of the demo teacher of ``lycee-ibn-batouta``.
* baseline: a bare Litestar app defined in this file (``--baseline-server PORT DSN``), asyncpg pool.

The script creates a throw-away database and two roles, loads the demo, uploads a file, measures,
prints requests/s and ``ratio = madrasa / baseline`` (target ≥ 0.5), then drops everything (also
on error or Ctrl-C). It exits 0 whatever the ratio; non-zero only when something broke.

    .venv/bin/python benchmarks/request_overhead.py [--duration 10] [--connections 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DEFAULT_ADMIN_URL, PgWorld, create_pg, drop_pg  # noqa: E402

SCHOOL = "lycee-ibn-batouta"
TARGET = 0.5
#: The app's default pool bounds (core/config.py); both servers get the same ones.
POOL_MIN, POOL_MAX = 2, 10
PDF = b"%PDF-1.4\n% request-overhead benchmark\n"
SET_SCOPE_SQL = "SELECT set_config('app.scope', $1, true), set_config('app.platform', $2, true)"


# --------------------------------------------------------------------------- the baseline server


def baseline_sql() -> str:
    """``core.api.platform.FILE_INFO_SQL`` (same columns) with ``WHERE id = $1`` only."""
    from core.api.platform import FILE_INFO_SQL
    from core.sql import SQL

    text, _ = SQL("{} WHERE id = {}", FILE_INFO_SQL, 0).compile("postgres")
    return text


def build_baseline_app(dsn: str, scope: str, pool_min: int, pool_max: int) -> Any:
    """A bare Litestar app with one handler running the app's SQL through an asyncpg pool.

    Same as madrasa: app role (RLS applies), pool bounds, a transaction that first runs the
    very ``set_config`` statement of ``core.db.Database.scoped``, then the SELECT with the same
    columns, a JSON body. Left out on purpose (this is the overhead being measured): no
    authentication (no token check, no session lookup), no tenant resolution from the path,
    no module switch or permission check, no grants/scope computation, no app-layer scope
    filter in the WHERE clause (RLS alone restricts rows), no middleware (request id, metrics,
    tenant prefix), no Piccolo layer, no DI ``ctx``, no response struct.
    """
    from litestar import Litestar, get
    from litestar.exceptions import NotFoundException

    sql = baseline_sql()
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            dsn, min_size=pool_min, max_size=pool_max, max_inactive_connection_lifetime=300
        )
        try:
            yield
        finally:
            await state["pool"].close()

    @get("/api/v1/files/{file_id:int}/info")
    async def file_info(file_id: int) -> dict[str, Any]:
        """The row as JSON, or 404."""
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.execute(SET_SCOPE_SQL, scope, "")
            row = await conn.fetchrow(sql, file_id)
        if row is None:
            raise NotFoundException("No such file.")
        return dict(row)

    return Litestar(
        route_handlers=[file_info], lifespan=[lifespan], openapi_config=None, debug=False, logging_config=None
    )


def serve_baseline(port: int, dsn: str, scope: str) -> int:
    """Serve the baseline exactly as ``core/cli.py:cmd_serve`` serves madrasa."""
    import uvicorn

    from core.config import load_settings
    from core.observability import configure_logging

    settings = load_settings()  # the same MADRASA_* environment as the app: log level, pool bounds
    configure_logging(settings.log_level, settings.log_json)
    app = build_baseline_app(dsn, scope, settings.db_pool_min, settings.db_pool_max)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_config=None, proxy_headers=True)
    return 0


# --------------------------------------------------------------------------- load generation


@dataclass
class LoadResult:
    """One load run."""

    rps: float
    requests: int
    p50_ms: float | None
    p99_ms: float | None
    bad_responses: int
    errors: int
    #: Server CPU time (user + system) per request, in microseconds; ``None`` where /proc is missing.
    cpu_us: float | None = None


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Figures from ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s*([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    p50 = re.search(r"^\s*50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", output, re.M)
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        p50_ms=_ms(p50.group(1)) if p50 else None,
        p99_ms=_ms(p99.group(1)) if p99 else None,
        bad_responses=int(bad.group(1)) if bad else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns its status and whether the server closes."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close"


async def python_load(url: str, duration: float, connections: int, headers: Sequence[str]) -> dict[str, Any]:
    """A keep-alive HTTP/1.1 load generator: ``connections`` clients in a closed loop for ``duration``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = "".join([f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n", *(f"{h}\r\n" for h in headers), "\r\n"])
    payload = request.encode("latin-1")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration

    async def client() -> None:
        nonlocal errors
        while loop.time() < deadline:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                errors += 1
                await asyncio.sleep(0.01)
                continue
            try:
                while loop.time() < deadline:
                    start = time.perf_counter()
                    writer.write(payload)
                    status, close = await _read_response(reader)
                    latencies.append(time.perf_counter() - start)
                    statuses[status] += 1
                    if close:
                        break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                errors += 1
            finally:
                writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else None

    return {
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "bad_responses": sum(n for s, n in statuses.items() if not 200 <= s < 400),
        "errors": errors,
    }


def run_load_client(url: str, duration: float, connections: int, headers: Sequence[str]) -> int:
    """Entry point of the ``--load-client`` subprocess: print the run's figures as JSON."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(python_load(url, duration, connections, headers))))
    return 0


class Loader:
    """Runs one load run against a URL, with ``wrk`` or the Python load generator, in a subprocess."""

    def __init__(self, kind: str, connections: int) -> None:
        self.kind = kind
        self.connections = connections

    @property
    def label(self) -> str:
        """How the load is generated, for the report."""
        if self.kind == "wrk":
            return f"wrk -t1 -c{self.connections} --latency"
        return f"Python asyncio load generator, {self.connections} keep-alive connections"

    def run(self, url: str, duration: float, headers: Sequence[str]) -> LoadResult:
        """Load ``url`` for ``duration`` seconds."""
        if self.kind == "wrk":
            cmd = ["wrk", "-t1", f"-c{self.connections}", f"-d{max(1, round(duration))}s", "--latency"]
            for header in headers:
                cmd += ["-H", header]
            out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=duration + 60)
            return parse_wrk(out.stdout)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load-client",
            url,
            "--duration",
            str(duration),
            "--connections",
            str(self.connections),
        ]
        for header in headers:
            cmd += ["--header", header]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60)
        return LoadResult(**json.loads(out.stdout))


def find_loader(preference: str, connections: int) -> tuple[Loader, str]:
    """``wrk`` if present or installable with apt, else the Python generator; plus a note."""
    if preference == "python":
        return Loader("python", connections), "python load generator (--loader python)"
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        print("wrk not found: apt-get install -y wrk …", flush=True)
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
    if shutil.which("wrk"):
        return Loader("wrk", connections), "wrk"
    if preference == "wrk":
        raise RuntimeError("wrk is not installed and could not be installed with apt-get")
    return Loader("python", connections), "wrk unavailable: python load generator"


# --------------------------------------------------------------------------- PostgreSQL set-up


async def file_scope(pg: PgWorld, file_id: int) -> tuple[str, int]:
    """The school's node id (the teacher's scope, as ``app.scope`` text) and the file's school id."""
    conn = await asyncpg.connect(pg.admin_db_url(), timeout=5)
    try:
        school = await conn.fetchval("SELECT id FROM tenant WHERE slug = $1", SCHOOL)
        file_school = await conn.fetchval("SELECT school_id FROM stored_file WHERE id = $1", file_id)
    finally:
        await conn.close()
    return str(school), int(file_school)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess in its own session, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, lines: int = 30) -> str:
        """The end of the server's output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ok(self, url: str, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        """Poll ``url`` until it answers 200; fail with the server's output if it dies or times out."""
        import httpx

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                response = httpx.get(url, headers=headers, timeout=5)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready at {url} after {timeout:.0f} s ({last}):\n{self.tail()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (Linux ``/proc``)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s (this process only, by its id)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def madrasa_command() -> list[str]:
    """The ``madrasa`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "madrasa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "core.cli"]


def _raise_interrupt(signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------- the benchmark


def login(client: Any, email: str, password: str) -> str:
    """An access token for a demo account, scoped to the school."""
    response = client.post("/api/v1/auth/token", json={"email": email, "password": password, "tenant": SCHOOL})
    if response.status_code != 200:
        raise RuntimeError(f"login as {email}: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


def _same_row(app_body: dict[str, Any], base_body: dict[str, Any]) -> list[str]:
    """Fields on which the two answers disagree."""
    diffs = []
    for key in ("id", "filename", "content_type", "size", "category", "created_at"):
        a, b = app_body.get(key), base_body.get(key)
        if key == "created_at" and isinstance(a, str) and isinstance(b, str):
            a, b = datetime.fromisoformat(a.replace("Z", "+00:00")), datetime.fromisoformat(b.replace("Z", "+00:00"))
        if a != b:
            diffs.append(f"{key}: madrasa {a!r} vs baseline {b!r}")
    return diffs


def _fmt(result: LoadResult) -> str:
    lat = ""
    if result.p50_ms is not None and result.p99_ms is not None:
        lat = f"   p50 {result.p50_ms:6.2f} ms   p99 {result.p99_ms:6.2f} ms"
    cpu = f"   server CPU {result.cpu_us:5.0f} µs/req" if result.cpu_us is not None else ""
    return f"{result.rps:8.1f} req/s{lat}{cpu}   ({result.requests} requests)"


def benchmark(args: argparse.Namespace) -> int:
    """Set up, verify, load both servers alternately, report, tear down."""
    import httpx

    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    pg = PgWorld(
        args.admin_url,
        f"madrasa_bench_{suffix}",
        f"madrasa_bench_owner_{suffix}",
        f"madrasa_bench_app_{suffix}",
        secrets.token_hex(12),
    )
    servers: list[Server] = []
    tmp = Path(tempfile.mkdtemp(prefix="madrasa-bench-"))
    pg_touched = False
    try:
        loader, loader_note = find_loader(args.loader, args.connections)
        pg_touched = True
        pg_version = asyncio.run(create_pg(pg))
        data_dir = tmp / "data"
        total_seconds = args.rounds * 2 * (args.duration + args.warmup) + 600
        env = {k: v for k, v in os.environ.items() if not k.startswith("MADRASA_")}
        env.update(
            {
                "MADRASA_DATABASE_URL": pg.url(pg.app_role),
                "MADRASA_MIGRATION_DATABASE_URL": pg.url(pg.owner),
                "MADRASA_SECRET_KEY": secrets.token_urlsafe(48),
                "MADRASA_DATA_DIR": str(data_dir),
                "MADRASA_LOG_LEVEL": "WARNING",
                "MADRASA_DB_POOL_MIN": str(POOL_MIN),
                "MADRASA_DB_POOL_MAX": str(POOL_MAX),
                # Long enough that the token outlives every run (expiry would turn the load into 401s).
                "MADRASA_ACCESS_TOKEN_TTL": str(max(900, int(total_seconds))),
            }
        )
        print(f"PostgreSQL {pg_version}: database {pg.database}; loading the demo …", flush=True)
        demo = subprocess.run([*madrasa_command(), "demo", "--no-serve"], env=env, capture_output=True, text=True)
        if demo.returncode != 0:
            raise RuntimeError(f"madrasa demo failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr}")
        accounts = json.loads((data_dir / "demo-accounts.json").read_text())

        def account(role: str) -> dict[str, str]:
            return next(a for a in accounts if a["role"] == role and a["tenant"] == SCHOOL)

        app_port = free_port()
        app_base = f"http://127.0.0.1:{app_port}"
        app_env = {**env, "MADRASA_PORT": str(app_port)}
        servers.append(
            Server(
                "madrasa serve",
                [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(app_port)],
                app_env,
                tmp / "madrasa.log",
            )
        )
        servers[-1].wait_ok(f"{app_base}/readyz")

        with httpx.Client(base_url=app_base, timeout=30) as client:
            # The teacher reads a file they uploaded (files are read by their uploader, addressees and managers).
            teacher = account("teacher")
            token = login(client, teacher["email"], teacher["password"])
            upload = client.post(
                f"/t/{SCHOOL}/api/v1/files",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("benchmark.pdf", PDF, "application/pdf")},
            )
            if upload.status_code != 201:
                raise RuntimeError(f"upload: {upload.status_code} {upload.text}")
            file_id = int(upload.json()["id"])
            auth = f"Authorization: Bearer {token}"
            app_path = f"/t/{SCHOOL}/api/v1/files/{file_id}/info"
            check = client.get(app_path, headers={"Authorization": f"Bearer {token}"})
            if check.status_code != 200 or check.json().get("id") != file_id:
                raise RuntimeError(f"GET {app_path} as the teacher: {check.status_code} {check.text}")
            app_body = check.json()

        scope, file_school = asyncio.run(file_scope(pg, file_id))
        if scope != str(file_school):
            raise RuntimeError(f"file {file_id} belongs to school {file_school}, expected {scope}")
        base_port = free_port()
        base_base = f"http://127.0.0.1:{base_port}"
        base_path = f"/api/v1/files/{file_id}/info"
        servers.append(
            Server(
                "baseline",
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--baseline-server",
                    str(base_port),
                    pg.url(pg.app_role),
                    "--scope",
                    scope,
                ],
                env,
                tmp / "baseline.log",
            )
        )
        servers[-1].wait_ok(base_base + base_path)
        base_body = httpx.get(base_base + base_path, timeout=10).json()
        diffs = _same_row(app_body, base_body)
        if diffs:
            raise RuntimeError("madrasa and the baseline return different rows: " + "; ".join(diffs))

        targets = {"madrasa": (app_base + app_path, servers[0]), "baseline": (base_base + base_path, servers[1])}
        results: dict[str, list[LoadResult]] = {"madrasa": [], "baseline": []}
        print(
            f"file {file_id} verified on both (200, same row); load: {loader_note}; "
            f"{args.rounds} rounds × {args.warmup:g} s warm-up + {args.duration:g} s each, alternating",
            flush=True,
        )
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        for round_no in range(1, args.rounds + 1):
            for name, (url, server) in targets.items():
                if args.warmup > 0:
                    loader.run(url, args.warmup, [auth])
                cpu_before = server.cpu_seconds()
                result = loader.run(url, args.duration, [auth])
                cpu_after = server.cpu_seconds()
                if cpu_before is not None and cpu_after is not None and result.requests:
                    result.cpu_us = (cpu_after - cpu_before) / result.requests * 1e6
                if server.proc.poll() is not None:
                    raise RuntimeError(f"{server.name} died under load:\n{server.tail()}")
                results[name].append(result)
                print(f"  round {round_no} {name:<8} {_fmt(result)}", flush=True)
        # A broken request path must not pass for a fast one.
        with httpx.Client(timeout=10) as client:
            after = client.get(app_base + app_path, headers={"Authorization": f"Bearer {token}"})
        if after.status_code != 200:
            raise RuntimeError(f"after the load GET {app_path}: {after.status_code} {after.text}")

        report(results, args, loader.label, pg_version, app_path, base_path, busy)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for server in reversed(servers):
            server.stop()
        if pg_touched:
            try:
                asyncio.run(drop_pg(pg))
            except (OSError, asyncpg.PostgresError) as exc:
                print(f"warning: could not drop {pg.database} / roles: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


def report(
    results: dict[str, list[LoadResult]],
    args: argparse.Namespace,
    load_label: str,
    pg_version: str,
    app_path: str,
    base_path: str,
    busy: float | None,
) -> None:
    """Print the summary: best run of each side, its latency, the ratio and the target."""
    best = {name: max(runs, key=lambda r: r.rps) for name, runs in results.items()}
    median = {name: statistics.median(r.rps for r in runs) for name, runs in results.items()}
    invalid = [
        f"{name}: {r.bad_responses} non-2xx, {r.errors} socket errors"
        for name, runs in results.items()
        for r in runs
        if r.bad_responses or r.errors
    ]
    ratio = best["madrasa"].rps / best["baseline"].rps if best["baseline"].rps else float("nan")
    median_ratio = median["madrasa"] / median["baseline"] if median["baseline"] else float("nan")
    print()
    print("request overhead (PostgreSQL " + pg_version + ")")
    print(f"  load:     {load_label}, {args.duration:g} s per run, {args.rounds} alternating rounds, best run shown")
    print(f"  servers:  uvicorn, 1 worker each, asyncpg pool {POOL_MIN}..{POOL_MAX}, log level WARNING, no access log")
    print(f"  madrasa   GET {app_path}  (teacher bearer token, RLS + scope filter)")
    print(f"            {_fmt(best['madrasa'])}")
    print(f"  baseline  GET {base_path}  (bare Litestar + asyncpg, same set_config + SELECT in a transaction)")
    print(f"            {_fmt(best['baseline'])}")
    print(f"  ratio = madrasa / baseline = {ratio:.2f}   (median of rounds: {median_ratio:.2f})")
    print(f"  target ≥ {TARGET}: {'met' if ratio >= TARGET else 'NOT met'}")
    cpu = {name: [r.cpu_us for r in runs if r.cpu_us is not None] for name, runs in results.items()}
    if cpu["madrasa"] and cpu["baseline"]:
        app_cpu, base_cpu = min(cpu["madrasa"]), min(cpu["baseline"])
        print(
            f"  server CPU per request: madrasa {app_cpu:.0f} µs, baseline {base_cpu:.0f} µs "
            f"(baseline / madrasa = {base_cpu / app_cpu:.2f}; less sensitive to other load on the machine)"
        )
    if busy is not None and busy > 1.0:
        cores = os.cpu_count() or 1
        print(f"  note: load average {busy:.2f} on {cores} cores before the runs; other work skews the figures")
    if invalid:
        print("  WARNING, bad answers under load (figures unreliable): " + "; ".join(invalid))


def main(argv: list[str] | None = None) -> int:
    """Dispatch: the benchmark (default), ``--baseline-server`` or the internal ``--load-client``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=10, help="concurrent connections (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side (default 2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each run (default 2)")
    parser.add_argument(
        "--loader",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator (default: wrk, installed with apt-get if missing, else python)",
    )
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL superuser URL")
    parser.add_argument("--baseline-server", nargs=2, metavar=("PORT", "DSN"), help=argparse.SUPPRESS)
    parser.add_argument("--scope", default="", help=argparse.SUPPRESS)
    parser.add_argument("--load-client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        port, dsn = args.baseline_server
        return serve_baseline(int(port), dsn, args.scope)
    if args.load_client:
        return run_load_client(args.load_client, args.duration, args.connections, args.header)
    if args.duration <= 0 or args.connections < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--duration, --warmup ≥ 0 and --connections, --rounds ≥ 1 please")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
