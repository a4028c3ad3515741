"""A scratch PostgreSQL primary and its streaming replica, owned by the tests that start them.

The shared server on 5432 accepts no replication connections, and copying it would copy everyone's databases, so
:func:`streaming_pair` makes a primary of its own with ``initdb`` (on a free port in 55400-55499, as the
``postgres`` OS user) and a hot standby of it with ``pg_basebackup -R``, and stops and removes both at the end.
"""

from __future__ import annotations

import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PORTS = range(55400, 55500)


class ClusterUnavailable(Exception):
    """PostgreSQL's server programs or the ``postgres`` OS user are missing here."""


@dataclass
class Cluster:
    """One scratch server: its data folder, port and server programs."""

    data: Path
    port: int
    bindir: Path

    @property
    def admin_url(self) -> str:
        """Superuser URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        log = str(self.data / "server.log")
        _as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-o", f"-p {self.port}", "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (nothing when it is not running)."""
        if (self.data / "postmaster.pid").exists():
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_basebackup")
    if which:
        return Path(which).resolve().parent
    raise ClusterUnavailable("pg_basebackup not found")


def _as_postgres(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a server program as the ``postgres`` OS user (PostgreSQL refuses to run as root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    elif pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        raise ClusterUnavailable("a replica cluster needs root or the postgres OS user")
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise ClusterUnavailable("no free port in 55400-55499")


@contextmanager
def streaming_pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A running primary and a hot standby streaming from it; both stopped and removed afterwards."""
    bindir = _bindir()
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterUnavailable("no postgres OS user") from None
    base = Path(tempfile.mkdtemp(prefix="madrasa-replica-", dir="/tmp"))
    shutil.chown(base, "postgres")
    base.chmod(0o700)
    primary_port, replica_port = _free_ports(2)
    primary = Cluster(base / "primary", primary_port, bindir)
    replica = Cluster(base / "replica", replica_port, bindir)
    try:
        initdb = [str(bindir / "initdb"), "-D", str(primary.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        _as_postgres([*initdb, "--locale=C", "--no-sync"])
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\nwal_level = replica\n"
                "max_wal_senders = 4\nmax_connections = 60\nshared_buffers = 32MB\n"
                "fsync = off\nfull_page_writes = off\n"
            )
        primary.start()
        source = [str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        _as_postgres([*source, "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"])
        replica.start()
        yield primary, replica
    finally:
        replica.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
