"""Login throttling as OWASP advises: per (account, address) pair with growing delays, known devices, the
connection's address only, a NAT-sized per-address slowdown, and alerts on bursts (both backends)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, timedelta
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn

from core import cli
from core.identity import DEVICE_COOKIE
from core.middleware import LOCALE_COOKIE, SESSION_COOKIE
from core.observability import REGISTRY, JsonFormatter
from tests.conftest import PASSWORD, form_login, new_client

TEACHER = "teacher.lycee-ibn-batouta@test.ma"
LOGIN = "/t/lycee-ibn-batouta/login"


@pytest.fixture
def tune(world, monkeypatch):
    """Change the identity service's throttling settings for one test."""

    def apply(**changes: Any) -> None:
        identity = world.services.identity
        monkeypatch.setattr(identity, "settings", msgspec.structs.replace(identity.settings, **changes))

    return apply


async def login(client: httpx.AsyncClient, email: str, password: str, **extra: Any) -> httpx.Response:
    return await client.post("/api/v1/auth/token", json={"email": email, "password": password, **extra})


async def account(world, name: str) -> str:
    return await world.add_person(f"{name}.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")


async def age(world, email: str, seconds: int) -> None:
    """Move an account's failures ``seconds`` into the past, as if its clients had waited that long."""
    db = world.services.db
    for row in await db.fetch("SELECT id, at FROM login_attempt WHERE email = {}", email):
        at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=UTC)
        await db.execute("UPDATE login_attempt SET at = {} WHERE id = {}", at - timedelta(seconds=seconds), row["id"])


def served(app: Any, settings: Any) -> Any:
    """The app as ``madrasa serve`` runs it: uvicorn's proxy handling from the settings, then the app."""
    config = uvicorn.Config(app, log_config=None, **cli.proxy_options(settings))
    config.load()
    return config.loaded_app


def peer(app: Any, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url="https://testserver")


def bursts(kind: str) -> float:
    return REGISTRY.get_sample_value("madrasa_login_bursts_total", {"kind": kind}) or 0.0


async def test_the_owner_on_a_known_device_logs_in_after_fifty_failures_from_elsewhere(world, tune):
    tune(login_delay_seconds=60)
    email = await account(world, "owner")
    nat = "198.51.100.10"  # the school's NAT: the owner and whoever fails there share it
    owner = new_client(world.app, ip=nat)
    first = await login(owner, email, PASSWORD)
    assert first.status_code == 200
    device = first.json()["device"]
    assert device
    for i in range(40):
        stranger = new_client(world.app, ip=f"203.0.113.{i + 1}")
        assert (await login(stranger, email, f"guess-{i}-x")).status_code == 401
        await stranger.aclose()
    neighbour = new_client(world.app, ip=nat)
    statuses = [(await login(neighbour, email, f"guess-{i}-y")).status_code for i in range(10)]
    assert statuses == [401] * 5 + [429] * 5  # the NAT's unknown devices wait for this account
    assert (await login(neighbour, email, PASSWORD)).status_code == 429
    # the owner's device does not: its own failures are none
    again = await login(owner, email, PASSWORD, device=device)
    assert again.status_code == 200, again.text
    assert again.json()["device"] and again.json()["device"] != device
    # a new device elsewhere is another pair: not locked either
    laptop = new_client(world.app, ip="192.0.2.10")
    assert (await login(laptop, email, PASSWORD)).status_code == 200
    # a device value of another account does not count for this one
    other = await login(laptop, TEACHER, PASSWORD)
    assert (await login(neighbour, email, PASSWORD, device=other.json()["device"])).status_code == 429
    for client in (owner, neighbour, laptop):
        await client.aclose()


async def test_a_known_browser_logs_in_through_the_form_while_its_address_waits(world, tune):
    tune(login_delay_seconds=60)
    email = await account(world, "browser")
    nat = "198.51.100.11"
    browser = new_client(world.app, ip=nat)
    first = await form_login(browser, LOGIN, email, PASSWORD)
    assert first.status_code == 302
    cookie = next(h for h in first.headers.get_list("set-cookie") if h.startswith(DEVICE_COOKIE + "="))
    assert "httponly" in cookie.lower() and "secure" in cookie.lower() and "samesite=lax" in cookie.lower()
    browser.cookies.delete(SESSION_COOKIE)
    attacker = new_client(world.app, ip=nat)
    for i in range(6):
        await login(attacker, email, f"guess-{i}-z")
    assert (await login(attacker, email, PASSWORD)).status_code == 429
    again = await form_login(browser, LOGIN, email, PASSWORD)
    assert again.status_code == 302 and again.headers["location"].endswith("/")
    fresh = new_client(world.app, ip=nat)
    assert (await form_login(fresh, LOGIN, email, PASSWORD)).status_code == 429
    for client in (browser, attacker, fresh):
        await client.aclose()


async def test_a_known_device_is_throttled_by_its_own_failures(world, tune):
    tune(login_delay_seconds=60)
    email = await account(world, "clumsy")
    phone = new_client(world.app, ip="198.51.100.12")
    device = (await login(phone, email, PASSWORD)).json()["device"]
    for i in range(5):
        assert (await login(phone, email, f"typo-{i}-x", device=device)).status_code == 401
    waiting = await login(phone, email, PASSWORD, device=device)
    assert waiting.status_code == 429 and 55 <= int(waiting.headers["retry-after"]) <= 60
    nonce = device.split(".")[0]
    assert (
        await world.services.db.fetchval(
            "SELECT COUNT(*) FROM login_attempt WHERE email = {} AND device = {}", email, nonce
        )
        == 5
    )
    await phone.aclose()


async def test_a_rotating_forwarded_for_from_an_untrusted_peer_is_one_address(world, tune):
    tune(login_delay_seconds=60)
    email = await account(world, "rotating")
    app = served(world.app, world.settings)  # no trusted proxies: uvicorn ignores the header
    client = peer(app, "198.51.100.20")
    for i in range(5):
        forged = {"x-forwarded-for": f"203.0.113.{100 + i}"}
        wrong = await client.post("/api/v1/auth/token", json={"email": email, "password": "nope-1"}, headers=forged)
        assert wrong.status_code == 401
    blocked = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": PASSWORD}, headers={"x-forwarded-for": "203.0.113.200"}
    )
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    ips = await world.services.db.fetch("SELECT DISTINCT ip FROM login_attempt WHERE email = {}", email)
    assert [r["ip"] for r in ips] == ["198.51.100.20"]
    # behind a trusted proxy, uvicorn puts the forwarded address in the ASGI client, and that is what counts
    trusting = msgspec.structs.replace(world.settings, trusted_proxies=("198.51.100.21",))
    proxy = peer(served(world.app, trusting), "198.51.100.21")
    forwarded = await proxy.post(
        "/api/v1/auth/token", json={"email": email, "password": "nope-2"}, headers={"x-forwarded-for": "192.0.2.77"}
    )
    assert forwarded.status_code == 401
    ips = await world.services.db.fetch("SELECT DISTINCT ip FROM login_attempt WHERE email = {} ORDER BY ip", email)
    assert [r["ip"] for r in ips] == ["192.0.2.77", "198.51.100.20"]
    await client.aclose()
    await proxy.aclose()


async def test_failures_of_one_pair_slow_that_pair_with_a_growing_retry_after(world, tune):
    tune(login_delay_seconds=60, login_max_delay_seconds=200)
    email = await account(world, "pair")
    client = new_client(world.app, ip="198.51.100.30")
    for i in range(5):
        assert (await login(client, email, f"wrong-{i}-x")).status_code == 401
    waits = []
    for step in range(3):
        blocked = await login(client, email, PASSWORD)  # even the right password waits
        assert blocked.status_code == 429
        assert blocked.headers["content-type"].startswith("application/problem+json")
        waits.append(int(blocked.headers["retry-after"]))
        await age(world, email, waits[-1] + 1)
        if step < 2:
            assert (await login(client, email, "wrong-again-1")).status_code == 401
    assert 55 <= waits[0] <= 60 and 115 <= waits[1] <= 120 and 195 <= waits[2] <= 200  # doubling, capped
    # the same account from another address was never held back, and after the wait the owner gets in
    elsewhere = new_client(world.app, ip="198.51.100.31")
    assert (await login(elsewhere, email, PASSWORD)).status_code == 200
    assert (await login(client, email, PASSWORD)).status_code == 200
    assert await world.services.db.fetchval("SELECT COUNT(*) FROM login_attempt WHERE email = {}", email) == 0
    await client.aclose()
    await elsewhere.aclose()


async def test_concurrent_attempts_count_each_other(world, tune):
    """Each attempt is stored before it is checked: a burst of parallel guesses gets the free failures only."""
    tune(login_delay_seconds=60)
    email = await account(world, "parallel")
    clients = [new_client(world.app, ip="198.51.100.35") for _ in range(20)]
    answers = await asyncio.gather(*(login(c, email, f"guess-{i}-p") for i, c in enumerate(clients)))
    assert sorted(r.status_code for r in answers) == [401] * 5 + [429] * 15
    assert await world.services.db.fetchval("SELECT COUNT(*) FROM login_attempt WHERE email = {}", email) == 5
    for client in clients:
        await client.aclose()


async def test_an_address_past_its_ceiling_is_slowed_not_locked(world, tune):
    tune(login_address_ceiling=10)
    phone = new_client(world.app, ip="192.0.2.40")
    device = (await login(phone, TEACHER, PASSWORD)).json()["device"]
    await phone.aclose()
    nat = new_client(world.app, ip="198.51.100.40")
    for i in range(10):
        assert (await login(nat, f"spray{i}.{world.backend}@test.ma", "wrong-password-1")).status_code == 401
    slowed = await login(nat, TEACHER, PASSWORD)
    assert slowed.status_code == 429 and 0 < int(slowed.headers["retry-after"]) <= 360  # one per 3600 s / 10
    assert (await login(nat, TEACHER, PASSWORD, device=device)).status_code == 200  # a known device goes on
    other = new_client(world.app, ip="198.51.100.41")
    assert (await login(other, TEACHER, PASSWORD)).status_code == 200
    for i in range(10):
        await age(world, f"spray{i}.{world.backend}@test.ma", 361)
    assert (await login(nat, TEACHER, PASSWORD)).status_code == 200  # spaced, not locked out
    await nat.aclose()
    await other.aclose()


@pytest.mark.parametrize(
    ("locale", "text"), [("fr", "réessayez dans 60 secondes"), ("ar", "أعد المحاولة بعد 60 ثانية")]
)
async def test_the_login_forms_429_has_retry_after_and_a_translated_message(world, tune, locale, text):
    tune(login_delay_seconds=60)
    email = await account(world, f"form-{locale}")
    browser = new_client(world.app, ip={"fr": "198.51.100.51", "ar": "198.51.100.52"}[locale])
    browser.cookies.set(LOCALE_COOKIE, locale)
    for _ in range(5):
        assert (await form_login(browser, LOGIN, email, "wrong-password-1")).status_code == 401
    blocked = await form_login(browser, LOGIN, email, PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "60"
    assert text in blocked.text and 'role="alert"' in blocked.text
    await browser.aclose()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_bursts_are_logged_and_counted(world, tune):
    tune(login_address_ceiling=6, login_alert_failures=4)
    records = _Records()
    logger = logging.getLogger("madrasa.identity")
    logger.addHandler(records)
    before = {kind: bursts(kind) for kind in ("address", "account")}
    try:
        target = f"target.{world.backend}@test.ma"
        for i in range(6):  # one account from many addresses: it alerts at its fourth failure, once
            client = new_client(world.app, ip=f"192.0.2.{100 + i}")
            assert (await login(client, target, "wrong-password-1")).status_code == 401
            await client.aclose()
        assert bursts("account") == before["account"] + 1 and bursts("address") == before["address"]
        sprayer = new_client(world.app, ip="198.51.100.60")
        for i in range(8):  # one address trying many accounts: it alerts at its ceiling, once
            await login(sprayer, f"burst{i}.{world.backend}@test.ma", "wrong-password-1")
        await sprayer.aclose()
        assert bursts("address") == before["address"] + 1 and bursts("account") == before["account"] + 1
    finally:
        logger.removeHandler(records)
    lines = [json.loads(JsonFormatter().format(r)) for r in records.records]
    alerts = [line for line in lines if line.get("event") == "login_burst"]
    assert [(a["level"], a["kind"], a["failures"]) for a in alerts] == [
        ("WARNING", "account", 4),
        ("WARNING", "address", 6),
    ]
    assert alerts[0]["account"] == target and alerts[1]["ip"] == "198.51.100.60"
    bearer = {"authorization": f"Bearer {world.settings.metrics_token}"}
    metrics = await world.client.get("/metrics", headers=bearer)
    assert 'madrasa_login_bursts_total{kind="address"}' in metrics.text
