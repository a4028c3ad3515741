"""Password hashing: the argon2id cost is chosen and validated, old hashes are upgraded at login, and hashing
runs in a bounded pool, so a burst of logins queues while pages are still answered."""

from __future__ import annotations

import asyncio
import threading

import msgspec
import pytest
from argon2 import PasswordHasher

from core.config import ConfigError, load_settings
from core.identity import IdentityService
from core.observability import metrics_payload
from core.passwords import RFC9106_LOW_MEMORY, PasswordPool, hash_workers, make_hasher
from tests.conftest import PASSWORD, SCHOOLS, new_client

SCHOOL = "lycee-ibn-batouta"


def test_the_default_cost_is_owasps_argon2id(tmp_path):
    settings = load_settings({}, data_dir=tmp_path)
    assert (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism) == (19456, 2, 1)
    assert make_hasher(settings).hash("x" * 12).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hash_workers(settings) >= 1


def test_the_cost_is_configurable(tmp_path):
    env = {"MADRASA_ARGON2_MEMORY_KIB": "47104", "MADRASA_ARGON2_TIME_COST": "1", "MADRASA_PASSWORD_HASH_WORKERS": "3"}
    settings = load_settings(env, data_dir=tmp_path)
    assert make_hasher(settings).hash("x" * 12).startswith("$argon2id$v=19$m=47104,t=1,p=1$")
    assert hash_workers(settings) == 3


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MADRASA_ARGON2_MEMORY_KIB": "4096"}, "MADRASA_ARGON2_MEMORY_KIB"),  # below 7 MiB
        ({"MADRASA_ARGON2_TIME_COST": "1"}, "MADRASA_ARGON2_TIME_COST"),  # 19 MiB × 1 pass: below OWASP
        ({"MADRASA_ARGON2_TIME_COST": "0"}, "MADRASA_ARGON2_TIME_COST"),
        ({"MADRASA_ARGON2_PARALLELISM": "0"}, "MADRASA_ARGON2_PARALLELISM"),
        ({"MADRASA_ARGON2_MEMORY_KIB": "lots"}, "MADRASA_ARGON2_MEMORY_KIB"),
        ({"MADRASA_PASSWORD_HASH_WORKERS": "-1"}, "MADRASA_PASSWORD_HASH_WORKERS"),
    ],
)
def test_a_weak_or_bad_cost_stops_start_up_with_one_line(tmp_path, env, variable):
    with pytest.raises(ConfigError) as info:
        load_settings(env, data_dir=tmp_path)
    message = str(info.value)
    assert message.startswith(variable + ":")
    assert "\n" not in message


async def test_a_hash_with_the_old_default_cost_is_upgraded_at_login(world):
    """A password stored with the library's former default (64 MiB, t=3, p=4) is re-hashed at today's cost."""
    email = await world.add_person(f"rehash.{world.backend}@test.ma", "teacher", SCHOOL)
    memory, passes, lanes = RFC9106_LOW_MEMORY
    old = PasswordHasher(memory_cost=memory, time_cost=passes, parallelism=lanes).hash(PASSWORD)
    assert old.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    await world.services.db.execute("UPDATE person SET password_hash = {} WHERE email = {}", old, email)
    client = new_client(world.app, ip="10.9.0.1")
    response = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    await client.aclose()
    assert response.status_code == 200, response.text
    stored = await world.services.db.fetchval("SELECT password_hash FROM person WHERE email = {}", email)
    assert stored != old
    assert not world.services.identity.passwords.needs_rehash(stored)
    assert world.services.identity.hasher.verify(stored, PASSWORD)


async def test_the_standard_profile_upgrades_to_owasps_cost(world):
    """The same through a service at the production profile: the new hash carries m=19456, t=2, p=1."""
    email = await world.add_person(f"rehash-std.{world.backend}@test.ma", "teacher", SCHOOL)
    memory, passes, lanes = RFC9106_LOW_MEMORY
    old = PasswordHasher(memory_cost=memory, time_cost=passes, parallelism=lanes).hash(PASSWORD)
    await world.services.db.execute("UPDATE person SET password_hash = {} WHERE email = {}", old, email)
    standard = msgspec.structs.replace(world.settings, password_hash_profile="standard")
    identity = IdentityService(world.services.db, standard)
    assert (await identity.authenticate(email, PASSWORD, "10.9.0.2")).email == email
    stored = await world.services.db.fetchval("SELECT password_hash FROM person WHERE email = {}", email)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # a wrong password changes nothing
    with pytest.raises(Exception, match="Wrong e-mail or password"):
        await identity.authenticate(email, "not-the-password-1", "10.9.0.2")
    assert await world.services.db.fetchval("SELECT password_hash FROM person WHERE email = {}", email) == stored


class GatedHasher(PasswordHasher):
    """A real argon2id hasher whose verifications wait for a gate to open (to hold logins mid-hash)."""

    def __init__(self, gate: threading.Event, **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        if not self.gate.wait(30):
            raise TimeoutError("the gate never opened")
        return super().verify(hash, password)


def _gauges() -> dict[str, float]:
    """``madrasa_password_hashes{state}`` as ``/metrics`` renders it."""
    body = metrics_payload()[0].decode()
    values = {"running": 0.0, "waiting": 0.0}
    for state in values:
        line = next(x for x in body.splitlines() if x.startswith(f'madrasa_password_hashes{{state="{state}"}}'))
        values[state] = float(line.rsplit(" ", 1)[1])
    return values


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached: {what}")


async def test_the_pool_runs_at_most_its_workers_at_once():
    gate = threading.Event()
    pool = PasswordPool(GatedHasher(gate, memory_cost=1024, time_cost=1, parallelism=1), workers=2)
    stored = PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash("secret-password-1")
    before = _gauges()
    tasks = [asyncio.create_task(pool.verify(stored, "secret-password-1")) for _ in range(6)]
    await _until(lambda: pool.statistics().running == 2 and pool.statistics().waiting == 4, "2 running, 4 waiting")
    await asyncio.sleep(0.05)  # nothing more starts while the gate is shut
    assert pool.statistics().running == 2
    now = _gauges()  # what /metrics shows
    assert (now["running"] - before["running"], now["waiting"] - before["waiting"]) == (2, 4)
    gate.set()
    assert await asyncio.gather(*tasks) == [True] * 6
    stats = pool.statistics()
    assert (stats.running, stats.waiting, stats.peak_running, stats.workers) == (0, 0, 2, 2)
    assert _gauges() == before


async def test_a_page_is_answered_while_logins_wait_for_the_pool(world, monkeypatch):
    """Logins beyond the pool's workers queue; meanwhile the event loop still serves other requests."""
    viewer = f"director.{SCHOOL}@test.ma"
    await world.web_session(viewer)  # logged in before the pool is gated
    gate = threading.Event()
    identity = world.services.identity
    pool = PasswordPool(GatedHasher(gate, memory_cost=1024, time_cost=1, parallelism=1), workers=2)
    monkeypatch.setattr(identity, "passwords", pool)
    accounts = [f"{role}.{school}@test.ma" for school in SCHOOLS[:3] for role in ("director", "teacher")][:5]
    clients = [new_client(world.app, ip=f"10.9.1.{n}") for n in range(len(accounts))]
    logins = [
        asyncio.create_task(client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD}))
        for client, email in zip(clients, accounts, strict=True)
    ]
    try:
        await _until(lambda: pool.statistics().running == 2 and pool.statistics().waiting == 3, "logins queued")
        page = await world.api("GET", "/", as_=viewer, tenant=SCHOOL)
        assert page.status_code == 200
        ready = await world.client.get("/readyz")
        assert ready.status_code == 200
        assert not any(task.done() for task in logins)  # the logins were still hashing or queued meanwhile
    finally:
        gate.set()
        answers = await asyncio.gather(*logins)
        for client in clients:
            await client.aclose()
    assert [a.status_code for a in answers] == [200] * len(accounts)
    assert pool.statistics().peak_running == 2
