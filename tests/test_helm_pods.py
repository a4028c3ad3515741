"""The chart's pods, run as processes on a real PostgreSQL: the rendered environment is the one that works.

The migration Job's environment (its settings, the secret key, the application role's URL and the owner's)
runs ``madrasa migrate`` on a database made as the README says; then the web Deployment's environment, which
holds no owner credentials, serves ``madrasa serve``, and the probes the chart renders answer 200 there, as
does the metrics port. The Secrets' values are the test database's; the paths the image provides
(``/var/lib/madrasa``) and the ports are moved to this machine's.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, free_port, missing_service, run_sync
from tests.test_cli import MADRASA
from tests.test_deployment import Deployment, _admin, _drop
from tests.test_helm_chart import RELEASE, manifests, one

#: One pod on this machine: files on the data folder (the chart wants a shared claim for that), jobs in process.
VALUES = {
    "config": {"storage": {"backend": "fs"}, "logLevel": "WARNING"},
    "volumes": {"data": {"existingClaim": "madrasa-data"}},
    "worker": {"enabled": False},
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


def pod_environment(docs: list[dict[str, Any]], spec: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment: the ConfigMap it loads, its plain variables, its Secrets' values."""
    container = spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item["value"] if "value" in item else secrets[item["name"]]
    return env


def on_this_machine(env: dict[str, str], tmp: Path) -> dict[str, str]:
    """The environment with the image's paths moved under ``tmp`` (the rest as rendered)."""
    assert env["MADRASA_DATA_DIR"] == "/var/lib/madrasa" and env["MADRASA_FONT_CACHE"].startswith("/tmp/")
    return {**env, "PATH": "/usr/bin:/bin", "MADRASA_DATA_DIR": str(tmp / "data"), "MADRASA_FONT_CACHE": str(tmp)}


def test_the_rendered_job_migrates_and_the_rendered_web_pod_serves(deployment: Deployment) -> None:
    run_sync(_admin(deployment.statements()))
    secrets = {
        "MADRASA_SECRET_KEY": "k" * 48,
        "MADRASA_DATABASE_URL": deployment.app_url,
        "MADRASA_MIGRATION_DATABASE_URL": deployment.owner_url,
    }
    docs = manifests(VALUES)
    job = one(docs, "Job", f"{RELEASE}-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"]
    migrated = subprocess.run(
        [MADRASA, *job["containers"][0]["args"]],
        env=on_this_machine(pod_environment(docs, job, secrets), deployment.tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "applied core.m0001_initial" in migrated.stdout

    web = one(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    container = web["containers"][0]
    env = on_this_machine(pod_environment(docs, web, secrets), deployment.tmp)
    assert "MADRASA_MIGRATION_DATABASE_URL" not in env
    port, metrics_port = free_port(), free_port()
    env.update(MADRASA_HOST="127.0.0.1", MADRASA_PORT=str(port), MADRASA_METRICS_PORT=str(metrics_port))
    server = subprocess.Popen(
        [MADRASA, *container["args"]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        startup = container["startupProbe"]["httpGet"]["path"]
        for _ in range(300):
            if server.poll() is not None:
                raise AssertionError(f"madrasa serve stopped: {server.stderr.read() if server.stderr else ''}")
            try:
                if httpx.get(base + startup, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the startup probe never passed")
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            answer = httpx.get(base + container[kind]["httpGet"]["path"], timeout=5)
            assert answer.status_code == 200, f"{kind}: {answer.status_code} {answer.text}"
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert metrics.status_code == 200 and "madrasa_http_requests_total" in metrics.text
        # the application port keeps /metrics to itself without a token (the chart sets none by default)
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
