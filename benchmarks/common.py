"""Helpers shared by the load benchmarks: the app's settings and server environment, sessions, people.

Not a benchmark itself. The benchmarks import it as ``benchmarks.common`` (each puts the project's root
on ``sys.path`` first).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from benchmarks.generate import PgWorld, drop_pg

#: Access tokens that outlive every run (expiry would turn the load into 401s).
TOKEN_TTL = 4 * 3600
PUPILS_PER_SCHOOL = 500


def fresh_pg(admin_url: str, name: str) -> PgWorld:
    """A :class:`PgWorld` with names of its own (``madrasa_<name>_…``), not created yet."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    return PgWorld(
        admin_url,
        f"madrasa_{name}_{suffix}",
        f"madrasa_{name}own_{suffix}",
        f"madrasa_{name}app_{suffix}",
        secrets.token_hex(12),
    )


def app_settings(pg: PgWorld, data_dir: Path, token_ttl: int = TOKEN_TTL) -> dict[str, Any]:
    """Keyword arguments of ``core.config.load_settings`` for the throw-away database (app role, fresh secret)."""
    return {
        "data_dir": str(data_dir),
        "database_url": pg.url(pg.app_role),
        "migration_database_url": pg.url(pg.owner),
        "secret_key": secrets.token_urlsafe(48),
        "log_level": "WARNING",
        "access_token_ttl": token_ttl,
    }


def server_env(settings_kw: dict[str, Any], pool_min: int, pool_max: int) -> dict[str, str]:
    """This process's environment without its ``MADRASA_*``, plus the same settings as ``MADRASA_*`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MADRASA_")}
    env.update({f"MADRASA_{key.upper()}": str(value) for key, value in settings_kw.items()})
    env["MADRASA_DB_POOL_MIN"] = str(pool_min)
    env["MADRASA_DB_POOL_MAX"] = str(pool_max)
    return env


async def migrate_and_generate(services: Any, schools: int, seed: int) -> None:
    """Migrate the database, then generate one region of ``schools`` schools of 500 pupils (app role, RLS on)."""
    from core.migrate import migrate
    from devtools.generator import generate

    await migrate(services.db, services.migration_sets)
    print(f"generating 1 region × {schools} schools × {PUPILS_PER_SCHOOL} pupils (devtools.generator) …", flush=True)
    stats = await generate(
        services.db, regions=1, schools_per_region=schools, students_per_school=PUPILS_PER_SCHOOL, seed=seed
    )
    print(f"  {stats.rows:,} rows in {stats.seconds:.1f} s", flush=True)


async def identities(owner: asyncpg.Connection, person_ids: Iterable[int]) -> dict[int, Any]:
    """``core.identity.Identity`` of each person, by id (read over the owner's connection)."""
    from core.identity import Identity

    rows = await owner.fetch(
        "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE id = ANY($1::int[])", list(person_ids)
    )
    return {r["id"]: Identity(r["id"], r["email"], r["full_name"], r["full_name_ar"], r["locale"]) for r in rows}


class SessionHolder(Protocol):
    """Someone the load acts as: a person at a school, with an API token and a browser session."""

    person_id: int
    school_id: int
    token: str
    cookie: str


async def open_sessions(services: Any, people: dict[int, Any], holders: Iterable[SessionHolder], agent: str) -> None:
    """An API token and a browser session for each holder, from the app's own ``IdentityService``.

    The same rows and signed tokens a login creates, without the argon2id verification a login costs.
    """
    for holder in holders:
        identity = people[holder.person_id]
        tokens = await services.identity.issue_tokens(identity, holder.school_id, agent, "127.0.0.1")
        holder.token = tokens["access_token"]
        holder.cookie = await services.identity.start_web_session(identity, holder.school_id, agent, "127.0.0.1")


def tear_down(servers: Iterable[Any], pg: PgWorld | None, tmp: Path) -> None:
    """Stop the servers (``request_overhead.Server``), drop the database and roles if ``pg``, remove ``tmp``."""
    for server in servers:
        server.stop()
    if pg is not None:
        try:
            asyncio.run(drop_pg(pg))
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"warning: could not drop {pg.database} / roles: {exc}", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def tree_rss_mib(pid: int) -> float:
    """``VmRSS`` of a process and of all its descendants, in MiB (Linux ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    total_kib, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(parents.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024
