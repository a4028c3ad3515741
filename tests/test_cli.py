"""The ``madrasa`` command as an operator runs it: demo (twice), serve, create-admin."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port

MADRASA = str(Path(sys.executable).parent / "madrasa")


def run(args: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MADRASA, *args], capture_output=True, text=True, timeout=timeout, env={"PATH": "/usr/bin:/bin", **env}
    )


def test_demo_loads_once_and_serves(tmp_path):
    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    first = run(["demo", "--no-serve"], env)
    assert first.returncode == 0, first.stderr
    accounts = json.loads((tmp_path / "demo-accounts.json").read_text())
    roles = {a["role"] for a in accounts}
    assert roles == {
        "platform_admin",
        "region_admin",
        "province_admin",
        "programme_manager",
        "school_director",
        "supervisor",
        "teacher",
        "parent",
        "student",
    }
    assert all(a["email"] in first.stdout and a["password"] in first.stdout for a in accounts)

    second = run(["demo", "--no-serve"], env)
    assert second.returncode == 0 and "already loaded" in second.stdout
    assert json.loads((tmp_path / "demo-accounts.json").read_text()) == accounts  # same accounts, same passwords

    port = free_port()
    server = subprocess.Popen(
        [MADRASA, "serve", "--port", str(port)],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready")
        teacher = next(a for a in accounts if a["role"] == "teacher")
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"email": teacher["email"], "password": teacher["password"]}
        ).json()
        plugins = httpx.get(
            f"{base}/t/{teacher['tenant']}/api/v1/plugins", headers={"authorization": f"Bearer {token['access_token']}"}
        )
        assert plugins.status_code == 200
        login = httpx.get(f"{base}/t/{teacher['tenant']}/login")
        assert login.status_code == 200 and "<form" in login.text
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_demo_has_two_regions_each_with_two_schools_and_a_programme_across(tmp_path):
    import sqlite3

    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    assert run(["demo", "--no-serve"], env).returncode == 0
    db = sqlite3.connect(tmp_path / "madrasa.sqlite3")
    regions = db.execute("SELECT id FROM tenant WHERE kind = 'region'").fetchall()
    assert len(regions) >= 2
    for (region_id,) in regions:
        schools = db.execute(
            "SELECT COUNT(*) FROM tenant WHERE kind = 'school' AND path LIKE ?", (f"%/{region_id}/%",)
        ).fetchone()[0]
        assert schools >= 2
    paths = db.execute("SELECT t.path FROM programme_school ps JOIN tenant t ON t.id = ps.tenant_id").fetchall()
    spanned = len({path.split("/")[1] for (path,) in paths})  # "platform/region/province/school/"
    assert spanned == 2


def test_create_admin(tmp_path):
    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    weak = run(["create-admin", "ops@example.ma", "--password", "weak"], env)
    assert weak.returncode == 2 and "password" in weak.stderr
    done = run(["create-admin", "ops@example.ma", "--password", "a-strong-password-9"], env)
    assert done.returncode == 0, done.stderr
    again = run(["create-admin", "ops@example.ma", "--password", "another-password-9"], env)
    assert again.returncode == 0
    import sqlite3

    db = sqlite3.connect(tmp_path / "madrasa.sqlite3")
    rows = db.execute(
        "SELECT m.role FROM membership m JOIN person p ON p.id = m.person_id WHERE p.email = 'ops@example.ma'"
    ).fetchall()
    assert rows == [("platform_admin",)]


def test_migrate_plan_lists_what_would_run_and_runs_nothing(tmp_path):
    import sqlite3

    env = {"MADRASA_DATA_DIR": str(tmp_path), "MADRASA_LOG_LEVEL": "WARNING"}
    planned = run(["migrate", "--plan"], env)
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0] == "would apply core.m0001_initial"
    assert "would apply grades.m0001_grades (depends on core.m0002_school_structure)" in lines
    assert "would apply attendance.m0002_notice_claims (depends on attendance.m0001_attendance)" in lines
    db = sqlite3.connect(tmp_path / "madrasa.sqlite3")
    assert db.execute("SELECT name FROM sqlite_master").fetchall() == []  # not even the tracking table
    db.close()

    applied = run(["migrate"], env)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [line.split(" (")[0].replace("would apply", "applied") for line in lines]
    again = run(["migrate", "--plan"], env)
    assert again.returncode == 0 and again.stdout.strip() == "nothing to apply"
