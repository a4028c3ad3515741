"""The README's production section, followed literally on a fresh PostgreSQL database.

The role and database statements are read from the README's SQL block (names and passwords made unique
for the test), then ``madrasa migrate``, ``create-admin``, ``demo --no-serve`` and ``serve`` run as
separate processes with the environment the README lists. A database not owned by the owner role makes
``madrasa migrate`` stop with one line that says what to do, not a traceback.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, free_port, missing_service, run_sync
from tests.test_cli import MADRASA

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_sql() -> list[str]:
    """The statements of the SQL block in the README's production section."""
    text = README.read_text()
    section = text[text.index("## Production on PostgreSQL") :]
    block = re.search(r"```sql\n(.*?)```", section, re.S)
    assert block is not None, "the production section has no ```sql block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


async def _admin(statements: list[str], database: str = "postgres") -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}", timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def _drop(database: str, *roles: str) -> None:
    run_sync(
        _admin(
            [
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'",
                f"DROP DATABASE IF EXISTS {database}",
                *(f"DROP ROLE IF EXISTS {role}" for role in roles),
            ]
        )
    )


class Deployment:
    """Names and passwords of one test's roles and database, and the environment of its processes."""

    def __init__(self, tmp: Path) -> None:
        tag = secrets.token_hex(3)
        self.database, self.owner, self.app = f"madrasa_dep_{tag}", f"madrasa_owner_dep_{tag}", f"madrasa_app_dep_{tag}"
        self.owner_password, self.app_password = secrets.token_hex(8), secrets.token_hex(8)
        self.tmp = tmp
        host = PG_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
        self.app_url = f"postgresql://{self.app}:{self.app_password}@{host}/{self.database}"
        self.owner_url = f"postgresql://{self.owner}:{self.owner_password}@{host}/{self.database}"

    def statements(self) -> list[str]:
        """The README's statements with this deployment's names and passwords."""
        swaps = {
            "madrasa_owner": self.owner,
            "madrasa_app": self.app,
            "change-me-owner": self.owner_password,
            "change-me-app": self.app_password,
        }
        out = []
        for statement in readme_sql():
            for old, new in swaps.items():
                statement = statement.replace(old, new)
            out.append(re.sub(r"\bDATABASE madrasa\b", f"DATABASE {self.database}", statement))
        return out

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "MADRASA_DATABASE_URL": self.app_url,
            "MADRASA_MIGRATION_DATABASE_URL": self.owner_url,
            "MADRASA_SECRET_KEY": secrets.token_urlsafe(48),
            "MADRASA_DATA_DIR": str(self.tmp),
            "MADRASA_LOG_LEVEL": "WARNING",
        }


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    try:
        run_sync(_admin(["SELECT 1"]))
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    dep = Deployment(tmp_path)
    try:
        yield dep
    finally:
        _drop(dep.database, dep.app, dep.owner)


def run(args: list[str], env: dict[str, str], timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MADRASA, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_the_readme_production_steps_work_as_written(deployment: Deployment) -> None:
    statements = deployment.statements()
    assert any("OWNER" in s and "CREATE DATABASE" in s for s in statements)
    run_sync(_admin(statements))
    env = deployment.env()

    migrated = run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "applied core.m0001_initial" in migrated.stdout
    admin = run(["create-admin", "ops@example.ma", "--password", "a-long-admin-password-1"], env)
    assert admin.returncode == 0, admin.stderr
    demo = run(["demo", "--no-serve"], env)
    assert demo.returncode == 0, demo.stderr
    assert (deployment.tmp / "demo-accounts.json").exists()

    # The application role owns nothing and row-level security hides rows from it outside a scope.
    owner = run_sync(_fetchval(deployment.app_url, "SELECT tableowner FROM pg_tables WHERE tablename = 'student'"))
    assert owner == deployment.owner
    assert run_sync(_fetchval(deployment.app_url, "SELECT COUNT(*) FROM student")) == 0
    admin_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{deployment.database}"
    assert run_sync(_fetchval(admin_url, "SELECT COUNT(*) FROM student")) > 0

    port = free_port()
    server = subprocess.Popen(
        [MADRASA, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready")
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"email": "ops@example.ma", "password": "a-long-admin-password-1"}
        )
        assert token.status_code == 200, token.text
        login = httpx.get(f"{base}/t/lycee-ibn-batouta/login")
        assert login.status_code == 200
        cookies = login.headers.get_list("set-cookie")
        assert cookies and all("secure" in c.lower() for c in cookies)  # cookies are Secure outside debug
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_migrate_on_a_database_the_owner_does_not_own_says_what_to_do(deployment: Deployment) -> None:
    statements = [s for s in deployment.statements() if not s.startswith("CREATE DATABASE")]
    run_sync(_admin([*statements, f"CREATE DATABASE {deployment.database}"]))  # owned by the superuser
    migrated = run(["migrate"], deployment.env())
    assert migrated.returncode == 1
    assert "Traceback" not in migrated.stderr
    lines = [line for line in migrated.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, migrated.stderr
    assert "permission denied for schema public" in lines[0]
    assert f"CREATE DATABASE {deployment.database} OWNER {deployment.owner}" in lines[0]


def test_migrate_as_a_role_that_does_not_exist_says_so_in_one_line(deployment: Deployment) -> None:
    run_sync(_admin(deployment.statements()))
    env = deployment.env()
    ghost = f"{deployment.owner}_typo"
    env["MADRASA_MIGRATION_DATABASE_URL"] = env["MADRASA_MIGRATION_DATABASE_URL"].replace(deployment.owner, ghost)
    migrated = run(["migrate"], env)
    assert migrated.returncode == 1
    assert "Traceback" not in migrated.stderr
    assert "the database refused the login" in migrated.stderr and ghost in migrated.stderr
