"""The server set-ups the national benchmark loads with its results-day mix: without a cache, with the shared
cache (and browsers revalidating with ``If-None-Match``), and with one streaming read replica.

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

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
