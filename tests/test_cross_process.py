"""Two ``madrasa serve`` processes on one PostgreSQL database: a change made through one is refused by the other.

The database is made as the README says (owner and application roles, ``migrate``, ``demo``); process A
and process B then serve it. A person logs in on B, B answers (and caches what it read), the change goes
through A, and B must refuse within a second (polled): far below the caches' TTLs (5 to 30 s), so only
the invalidation message can explain it. The listener's reconnection, the Redis transport and the rate
limits shared through the database are tested on the same database.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, free_port, missing_service, run_sync
from tests.test_cli import MADRASA
from tests.test_deployment import Deployment, _admin, _drop

REDIS_URL = os.environ.get("MADRASA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
METRICS_TOKEN = secrets.token_hex(16)
#: The demo accounts' password is in ``demo-accounts.json``; each test logs in as its own accounts.
SCHOOL = "lycee-ibn-batouta"


class Server:
    """One ``madrasa serve`` process and its base URL."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [MADRASA, "serve", "--port", str(self.port)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        for _ in range(300):
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"server did not become ready: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        return httpx.get(self.base + path, headers=_bearer(token), timeout=10)

    def post(self, path: str, body: object, token: str | None = None) -> httpx.Response:
        return httpx.post(self.base + path, json=body, headers=_bearer(token), timeout=10)

    def put(self, path: str, body: object, token: str | None = None) -> httpx.Response:
        return httpx.put(self.base + path, json=body, headers=_bearer(token), timeout=10)

    def token(self, email: str, password: str) -> str:
        answer = self.post("/api/v1/auth/token", {"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def flushes(self) -> float:
        """``madrasa_cache_flushes_total`` of this process."""
        text = self.get("/metrics", METRICS_TOKEN).text
        found = re.search(r"^madrasa_cache_flushes_total (\S+)$", text, re.M)
        assert found, text[:500]
        return float(found.group(1))


def _bearer(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


class Cluster:
    """The database, its demo accounts and the environment its processes share."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.env = {
            **deployment.env(),
            "MADRASA_PASSWORD_HASH_PROFILE": "test",
            "MADRASA_METRICS_TOKEN": METRICS_TOKEN,
            "MADRASA_LOGIN_MAX_FAILURES": "3",
            "MADRASA_BULK_EXPORTS_PER_HOUR": "2",
        }
        import json

        self.passwords = {
            a["email"]: a["password"] for a in json.loads((deployment.tmp / "demo-accounts.json").read_text())
        }
        self.admin_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{deployment.database}"

    def start(self, name: str, **extra: str) -> Server:
        return Server({**self.env, **extra}, self.deployment.tmp / f"{name}.log")

    def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        async def go() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.admin_url, timeout=5)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return run_sync(go())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        run_sync(_admin(["SELECT 1"]))
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    deployment = Deployment(tmp_path_factory.mktemp("cross"))
    try:
        run_sync(_admin(deployment.statements()))
        env = {**deployment.env(), "MADRASA_PASSWORD_HASH_PROFILE": "test"}
        for args in (["migrate"], ["demo", "--no-serve"]):
            done = subprocess.run([MADRASA, *args], capture_output=True, text=True, timeout=600, env=env)
            assert done.returncode == 0, done.stderr
        yield Cluster(deployment)
    finally:
        _drop(deployment.database, deployment.app, deployment.owner)


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> Iterator[tuple[Server, Server]]:
    """Processes A and B over PostgreSQL ``LISTEN/NOTIFY`` (the default on PostgreSQL without SAQ)."""
    a = cluster.start("a")
    try:
        b = cluster.start("b")
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def refused_within(call: Callable[[], httpx.Response], refusals: set[int], seconds: float = 1.0) -> httpx.Response:
    """Poll ``call`` until it answers one of ``refusals``; fail when it still serves after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = call()
        if answer.status_code in refusals:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"still served after {seconds} s: {answer.status_code} {answer.text[:200]}")
        time.sleep(0.02)


def login(cluster: Cluster, server: Server, email: str) -> str:
    return server.token(email, cluster.passwords[email])


def test_suspending_a_tenant_through_one_process_is_refused_by_the_other(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    admin = login(cluster, a, "admin@madrasa.demo")
    province = login(cluster, b, "province.anfa@madrasa.demo")
    path = "/t/casablanca-anfa/api/v1/tenants/casablanca-anfa"
    assert b.get(path, province).status_code == 200  # B has the node cached as active now
    change = {"status": "suspended", "reason": "Cross-process check"}
    assert a.post("/api/v1/tenants/casablanca-anfa/status", change, admin).status_code == 200
    try:
        refused = refused_within(lambda: b.get(path, province), {403})
        assert "suspended" in refused.text
    finally:
        back = {"status": "active", "reason": "Check over"}
        assert a.post("/api/v1/tenants/casablanca-anfa/status", back, admin).status_code == 200
    refused_within(lambda: b.get(path, province), {200})


def test_a_role_taken_away_through_one_process_is_refused_by_the_other(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    admin = login(cluster, a, "admin@madrasa.demo")
    region = login(cluster, b, "region.rabat@madrasa.demo")
    path = "/api/v1/tenants/rabat-sale-kenitra"
    assert b.get(path, region).status_code == 200  # B has the grants cached now
    person = cluster.sql("SELECT id FROM person WHERE email = 'region.rabat@madrasa.demo'")[0]["id"]
    removal = {"role": "region_admin", "tenant": "rabat-sale-kenitra", "reason": "Left the academy"}
    answer = a.post(f"/api/v1/people/{person}/roles/remove", removal, admin)
    assert answer.status_code == 204, answer.text
    refused_within(lambda: b.get(path, region), {403, 404})
    again = a.post(f"/api/v1/people/{person}/roles/remove", removal, admin)
    assert again.status_code == 404  # nothing left to take: the removal is audited once
    audited = cluster.sql("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'membership.remove'")
    assert audited[0]["n"] == 1


def test_a_module_switched_off_through_one_process_is_refused_by_the_other(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    admin = login(cluster, a, "admin@madrasa.demo")
    teacher = login(cluster, b, "teacher@madrasa.demo")
    path = f"/t/{SCHOOL}/api/v1/attendance/today"
    assert b.get(path, teacher).status_code == 200  # B has the module settings cached now
    switch = f"/api/v1/tenants/{SCHOOL}/modules/attendance"
    assert a.put(switch, {"enabled": False, "reason": "Cross-process check"}, admin).status_code == 200
    try:
        refused_within(lambda: b.get(path, teacher), {404})
    finally:
        assert a.put(switch, {"enabled": None, "reason": "Check over"}, admin).status_code == 200
    refused_within(lambda: b.get(path, teacher), {200})


def test_a_session_logged_out_through_one_process_is_refused_by_the_other(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    token = login(cluster, b, "parent@madrasa.demo")
    assert b.get("/api/v1/me", token).status_code == 200  # B has the live session cached now
    assert a.post("/api/v1/auth/logout", None, token).status_code == 204
    refused_within(lambda: b.get("/api/v1/me", token), {401})


def _cookies(answer: httpx.Response, jar: dict[str, str]) -> dict[str, str]:
    """Keep the cookies an answer sets (by hand: they are ``Secure`` and the test speaks plain HTTP)."""
    for header in answer.headers.get_list("set-cookie"):
        name, value = header.split(";", 1)[0].split("=", 1)
        jar[name.strip()] = value.strip()
    return jar


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in jar.items()), "accept": "text/html"}


def test_a_browser_session_logged_out_through_one_process_is_refused_by_the_other(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    email = "supervisor@madrasa.demo"
    jar: dict[str, str] = {}
    form = httpx.get(f"{b.base}/t/{SCHOOL}/login", headers={"accept": "text/html"})
    csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    _cookies(form, jar)
    answer = httpx.post(
        f"{b.base}/t/{SCHOOL}/login",
        data={"email": email, "password": cluster.passwords[email], "csrf_token": csrf},
        headers=_cookie_header(jar),
    )
    assert answer.status_code in (302, 303), answer.text[:300]
    _cookies(answer, jar)
    home = httpx.get(f"{b.base}/t/{SCHOOL}/", headers=_cookie_header(jar))
    assert home.status_code == 200  # B has the live browser session cached now
    session_csrf = home.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    out = httpx.post(f"{a.base}/t/{SCHOOL}/logout", headers={**_cookie_header(jar), "x-csrf-token": session_csrf})
    assert out.status_code in (302, 303), out.text[:300]
    refused_within(lambda: httpx.get(f"{b.base}/t/{SCHOOL}/", headers=_cookie_header(jar)), {302, 303, 401})


def _listener(cluster: Cluster, server: Server) -> int | None:
    rows = cluster.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        cluster.deployment.database,
        f"madrasa-invalidation-{server.process.pid}",
    )
    return int(rows[0]["pid"]) if rows else None


def test_a_lost_listener_reconnects_empties_the_caches_and_hears_later_changes(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    admin = login(cluster, a, "admin@madrasa.demo")
    province = login(cluster, b, "province.anfa@madrasa.demo")
    path = "/t/casablanca-anfa/api/v1/tenants/casablanca-anfa"
    assert b.get(path, province).status_code == 200  # cached as active in B
    backend = _listener(cluster, b)
    assert backend is not None
    flushes = b.flushes()
    # A change no process announces (written straight into the database), then B's listener is cut off.
    cluster.sql("UPDATE tenant SET status = 'suspended' WHERE slug = 'casablanca-anfa'")
    try:
        assert cluster.sql("SELECT pg_terminate_backend($1) AS done", backend)[0]["done"]
        deadline = time.monotonic() + 10
        while (_listener(cluster, b) in (None, backend)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _listener(cluster, b) not in (None, backend), "B's listener did not reconnect"
        assert b.flushes() == flushes + 1
        # The tenant cache (10 s) was emptied on reconnection: B reads the suspension at once.
        assert b.get(path, province).status_code == 403
    finally:
        cluster.sql("UPDATE tenant SET status = 'active' WHERE slug = 'casablanca-anfa'")
        a.post("/api/v1/tenants/casablanca-anfa/status", {"status": "active", "reason": "Check over"}, admin)
    # A later change made through A still reaches B.
    token = login(cluster, b, "student@madrasa.demo")
    assert b.get("/api/v1/me", token).status_code == 200
    assert a.post("/api/v1/auth/logout", None, token).status_code == 204
    refused_within(lambda: b.get("/api/v1/me", token), {401})


def test_login_throttling_counts_failures_made_on_either_process(cluster: Cluster, pair: tuple[Server, Server]) -> None:
    a, b = pair
    wrong = {"email": "region.casa@madrasa.demo", "password": "not-the-password-1"}
    for server in (a, b, a):  # MADRASA_LOGIN_MAX_FAILURES=3, spread over both processes
        assert server.post("/api/v1/auth/token", wrong).status_code == 401
    throttled = b.post("/api/v1/auth/token", wrong)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


def test_the_bulk_export_limit_counts_exports_made_on_either_process(
    cluster: Cluster, pair: tuple[Server, Server]
) -> None:
    a, b = pair
    path = f"/t/{SCHOOL}/api/v1/attendance/stats.csv"
    tokens = {server: login(cluster, server, "director@madrasa.demo") for server in (a, b)}
    for server in (a, b):  # MADRASA_BULK_EXPORTS_PER_HOUR=2, one on each process
        answer = server.get(path, tokens[server])
        assert answer.status_code == 200, answer.text
    refused = a.get(path, tokens[a])
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_redis_pub_sub_carries_invalidations_between_processes(cluster: Cluster) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    # The channel is named after the test's own database: other deployments on this Redis never hear it.
    extra = {"MADRASA_INVALIDATION_BACKEND": "redis", "MADRASA_REDIS_URL": REDIS_URL}
    a = cluster.start("redis-a", **extra)
    try:
        b = cluster.start("redis-b", **extra)
        try:
            assert _listener(cluster, b) is None  # no PostgreSQL listener with the Redis transport
            token = login(cluster, b, "teacher@madrasa.demo")
            assert b.get("/api/v1/me", token).status_code == 200
            assert a.post("/api/v1/auth/logout", None, token).status_code == 204
            refused_within(lambda: b.get("/api/v1/me", token), {401})
        finally:
            b.stop()
    finally:
        a.stop()


def test_the_worker_listens_for_invalidations_from_start_up(cluster: Cluster) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis not reachable at {REDIS_URL}: {exc}")
    from core.invalidation_transport import redis_channel

    channel = redis_channel(cluster.deployment.app_url)
    env = {
        **cluster.env,
        "MADRASA_JOB_BACKEND": "saq",  # the worker then hears invalidations over Redis (the auto rule)
        "MADRASA_REDIS_URL": REDIS_URL,
        "MADRASA_JOB_QUEUE_NAME": f"xproc-{secrets.token_hex(4)}",
    }
    with (cluster.deployment.tmp / "worker.log").open("w") as out:
        worker = subprocess.Popen([MADRASA, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            if dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) >= 1 or worker.poll() is not None:
                break
            time.sleep(0.1)
        assert worker.poll() is None, (cluster.deployment.tmp / "worker.log").read_text()[-2000:]
        assert dict(client.pubsub_numsub(channel))[channel.encode()] == 1
    finally:
        worker.terminate()  # the worker may take half a minute to wind SAQ down
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        client.close()
