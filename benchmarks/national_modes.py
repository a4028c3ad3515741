"""The national benchmark's results-day read mix: the requests, the server set-ups it loads (without a cache,
with the shared cache and browsers revalidating with ``If-None-Match``, with one streaming read replica), and
the loading itself.

* **no cache**: ``MADRASA_CACHE_URL=none``: every read goes to the database.
* **shared cache**: ``MADRASA_CACHE_URL=redis://…`` with a prefix of the run's own (its keys are deleted at the
  end): the families' published marks and averages are kept in Redis, keyed by the school's publication
  version (``docs/operations.md``, "Results day").
* **cache + 304**: the same server, and every read carries the ``ETag`` its first answer gave, as a browser or
  the app does on a second visit: the answer is ``304 Not Modified`` after the access check and the version
  lookup.
* **replica**: ``MADRASA_REPLICA_URLS`` names a hot standby of the benchmark's server, made with
  ``pg_basebackup -R`` of the whole cluster (as the ``postgres`` OS user, on a free port in 55400-55499, under
  ``/tmp``), and removed at the end. The server must accept replication connections from 127.0.0.1
  (``host replication all 127.0.0.1/32 trust`` in ``pg_hba.conf``); when it refuses, the mode is reported as
  not measured with the reason. The replica's own CPU is not in the "pg µs" column (that meter reads the
  primary's backends).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks.common import server_env
from benchmarks.generate import PgWorld
from benchmarks.grades_load import POOL_MAX, POOL_MIN, Target, backend_cpu, check_all, lua_script, run_wrk
from benchmarks.national_report import READS_PER_DOWNLOAD, Mix, MixRun, log
from benchmarks.request_overhead import Server, free_port, madrasa_command

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Mode:
    """One server set-up: its label, its extra environment, and whether reads carry ``If-None-Match``."""

    label: str
    env: dict[str, str] = field(default_factory=dict)
    revalidate: bool = False


def modes(cache: bool, replica_url: str | None, prefix: str) -> list[Mode]:
    """The set-ups to load, in order: always without a cache; the cache ones with ``cache``; the replica one
    when a replica runs (``replica_url``: the application role's URL on it)."""
    out = [Mode("no cache", {"MADRASA_CACHE_URL": "none"})]
    if cache:
        shared = {"MADRASA_CACHE_URL": REDIS_URL, "MADRASA_CACHE_PREFIX": prefix}
        out += [Mode("shared cache", shared), Mode("shared cache + 304", shared, revalidate=True)]
    if replica_url:
        out.append(Mode("replica, no cache", {"MADRASA_CACHE_URL": "none", "MADRASA_REPLICA_URLS": replica_url}))
    return out


def on_port(url: str, port: int) -> str:
    """``url`` with its port replaced (the same role, password and database on another server)."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    hostname = host.rsplit(":", 1)[0]
    netloc = f"{userinfo}@{hostname}:{port}" if userinfo else f"{hostname}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def with_etags(requests: list[tuple[str, dict[str, str]]], etags: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The same requests, each read that answered with an ``ETag`` now sending it back (``If-None-Match``)."""
    out = []
    for path, headers in requests:
        tag = etags.get(path)
        out.append((path, {**headers, "If-None-Match": tag} if tag else headers))
    return out


async def fetch_etags(base: str, requests: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
    """The ``ETag`` of each distinct path that gives one (a GET each, 200 expected)."""
    import httpx

    tags: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for path, headers in dict(requests).items():
            response = await client.get(path, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
            if "etag" in response.headers:
                tags[path] = response.headers["etag"]
    return tags


async def drop_cache_keys(prefix: str) -> int:
    """Delete the run's keys from Redis; returns how many."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


def cache_prefix() -> str:
    """A Redis key prefix of this run's own."""
    return f"madrasa-national-{secrets.token_hex(4)}:"


@dataclass
class Replica:
    """A running hot standby of the benchmark's server, or the reason there is none."""

    port: int | None = None
    reason: str = ""


@contextlib.contextmanager
def standby(admin_url: str) -> Iterator[Replica]:
    """A hot standby of the server behind ``admin_url`` (``pg_basebackup -R``), stopped and removed afterwards;
    ``Replica.port`` is ``None`` and ``reason`` says why when one cannot be made here."""
    from tests.replica_cluster import Cluster, ClusterUnavailable, _as_postgres, _bindir, _free_ports

    parts = urlsplit(admin_url)
    base: Path | None = None
    replica: Cluster | None = None
    try:
        try:
            bindir = _bindir()
            (port,) = _free_ports(1)
        except ClusterUnavailable as exc:
            yield Replica(reason=str(exc))
            return
        base = Path(tempfile.mkdtemp(prefix="madrasa-national-replica-", dir="/tmp"))
        shutil.chown(base, "postgres")
        base.chmod(0o700)
        replica = Cluster(base / "data", port, bindir)
        source = [str(bindir / "pg_basebackup"), "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
        done = _as_postgres(
            [*source, "-U", parts.username or "postgres", "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"],
            check=False,
        )
        if done.returncode != 0:
            yield Replica(reason=f"pg_basebackup refused: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
            return
        # A Debian cluster keeps its configuration outside the data folder: give the copy its own.
        (replica.data / "postgresql.conf").write_text(
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{base}'\n"
            "hot_standby = on\nmax_connections = 100\nshared_buffers = 128MB\n"
        )
        (replica.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        (replica.data / "pg_ident.conf").write_text("")
        for path in (replica.data / "postgresql.conf", replica.data / "pg_hba.conf", replica.data / "pg_ident.conf"):
            shutil.chown(path, "postgres")
        replica.start()
        yield Replica(port=port)
    finally:
        if replica is not None:
            replica.stop("immediate")
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- loading the mix


def mix_requests(
    reads: Sequence[tuple[str, dict[str, str]]],
    downloads: Sequence[tuple[str, dict[str, str]]],
    reads_per_download: int = READS_PER_DOWNLOAD,
) -> list[tuple[str, dict[str, str]]]:
    """One list for wrk to rotate over: ``reads_per_download`` reads, then one download, and again.

    Every read and every download appears; the list is as long as needed for that, and the two kinds
    keep their proportion over the whole list (reads and downloads are reused in turn).
    """
    if not reads or not downloads or reads_per_download < 1:
        raise ValueError("a mix needs reads, downloads and at least one read per download")
    blocks = max(len(downloads), -(-len(reads) // reads_per_download))
    out: list[tuple[str, dict[str, str]]] = []
    for block in range(blocks):
        for k in range(reads_per_download):
            out.append(reads[(block * reads_per_download + k) % len(reads)])
        out.append(downloads[block % len(downloads)])
    return out


async def each_kind(
    base: str, kinds: dict[str, list[tuple[str, dict[str, str]]]], database: str, count: int
) -> list[tuple[str, float, float]]:
    """``(kind, mean ms, database CPU µs)`` per request of each kind, over ``count`` sequential requests."""
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for kind, requests in kinds.items():
            before = backend_cpu(database)
            began = time.perf_counter()
            for i in range(count):
                path, headers = requests[i % len(requests)]
                response = await client.get(path, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{kind} {path}: {response.status_code} {response.text[:200]}")
            seconds = time.perf_counter() - began
            after = backend_cpu(database)
            pg = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in after.items())
            out.append((kind, seconds * 1000 / count, pg * 1e6 / count))
    return out


def mix_lists(mix: Mix) -> tuple[list[tuple[str, dict[str, str]]], list[tuple[str, dict[str, str]]]]:
    """The reads (marks and averages in turn, per guardian) and the report-card downloads of the mix."""
    reads: list[tuple[str, dict[str, str]]] = []
    for g in mix.guardians:
        auth = {"Authorization": f"Bearer {g.token}"}
        base_path = f"/t/{g.slug}/api/v1/me/pupils/{g.student_id}"
        reads += [(f"{base_path}/marks", auth), (f"{base_path}/results", auth)]
    downloads = [
        (
            f"/t/{g.slug}/api/v1/grades/bulletins/{mix.bulletin_ids[g.student_id]}",
            {"Authorization": f"Bearer {g.token}"},
        )
        for g in mix.guardians
        if g.student_id in mix.bulletin_ids
    ]
    return reads, downloads


def load_mix(
    base: str,
    server: Server,
    mix: Mix,
    database: str,
    mode: Mode,
    args: argparse.Namespace,
    tmp: Path,
    first: bool,
) -> list[MixRun]:
    """wrk over the 90/10 mix at each level (warm-up first) against one server set-up; the first set-up also
    checks every request once (200) and times each kind alone."""
    reads, downloads = mix_lists(mix)
    if first:
        log(f"checking every request once over HTTP ({len(reads)} reads, {len(downloads)} downloads) …")
        asyncio.run(check_all([(base + p, "mix", h) for p, h in [*reads, *downloads]]))
        kinds = {"marks": reads[0::2], "averages": reads[1::2], "report card": downloads}
        mix.kinds = asyncio.run(each_kind(base, kinds, database, args.probe))
    if mode.revalidate:
        reads = with_etags(reads, asyncio.run(fetch_etags(base, reads)))
    requests = mix_requests(reads, downloads)
    script = tmp / f"mix-{len(list(tmp.glob('mix-*.lua')))}.lua"
    script.write_text(lua_script(requests))
    target = Target("results day", server, base, requests, script)
    runs = []
    for level in args.levels:
        if args.warmup > 0:
            run_wrk(target, level, args.warmup, database)
        result, cpu = run_wrk(target, level, args.duration, database)
        bad = f"  [{result.bad_responses} non-2xx/3xx, {result.errors} socket errors]" if result.bad_responses else ""
        log(f"  {mode.label:<22} c={level:<3} {result.rps:8.1f} req/s  p99 {result.p99_ms or 0:8.2f} ms{bad}")
        runs.append(MixRun(mode.label, level, result, cpu))
    return runs


async def replica_caught_up(admin_url: str, replica_port: int, seconds: float = 300.0) -> float:
    """Wait until the replica has replayed what the primary had written when called; returns the seconds."""
    began = time.perf_counter()
    primary = await asyncpg.connect(admin_url)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    finally:
        await primary.close()
    replica = await asyncpg.connect(on_port(admin_url, replica_port))
    try:
        while time.perf_counter() - began < seconds:
            if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
                return time.perf_counter() - began
            await asyncio.sleep(0.5)
    finally:
        await replica.close()
    raise RuntimeError(f"the replica did not catch up within {seconds:.0f} s")


async def replica_commits(admin_url: str, port: int, database: str) -> int:
    """Transactions the replica has committed in ``database`` so far (``pg_stat_database``)."""
    replica = await asyncpg.connect(on_port(admin_url, port))
    try:
        return int(await replica.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", database) or 0)
    finally:
        await replica.close()


def serve_mode(
    pg: PgWorld, settings_kw: dict[str, Any], mode: Mode, mix: Mix, args: argparse.Namespace, tmp: Path, first: bool
) -> list[MixRun]:
    """Start ``madrasa serve`` with the set-up's settings, load it, stop it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**server_env(settings_kw, POOL_MIN, POOL_MAX), "MADRASA_PORT": str(port), **mode.env}
    server = Server(
        "madrasa serve",
        [*madrasa_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp / f"madrasa-{port}.log",
    )
    try:
        server.wait_ok(f"{base}/readyz")
        return load_mix(base, server, mix, pg.database, mode, args, tmp, first)
    finally:
        server.stop()
