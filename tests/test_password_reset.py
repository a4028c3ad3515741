"""Password reset by a one-time token, delivered through a real SMTP server (aiosmtpd).

The mailed link never comes from the request's headers, and a token works once, even when several requests
use it at the same moment (on PostgreSQL each runs on its own pool connection).
"""

from __future__ import annotations

import asyncio
import re

import msgspec
import pytest

from core.identity import AuthError
from tests.conftest import PASSWORD, new_client


async def test_reset_flow_over_smtp(world, inbox):
    address = await world.add_person(f"reset.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    client = new_client(world.app, ip="10.1.0.1")
    old = (await client.post("/api/v1/auth/token", json={"email": address, "password": PASSWORD})).json()

    response = await client.post("/api/v1/auth/password-reset", json={"email": address.upper()})
    assert response.status_code == 202
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == address
    token = re.search(r"Token: (\S+)", message.get_payload()).group(1)

    weak = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert weak.status_code == 400 and weak.json()["errors"][0]["field"] == "password"

    new_password = "a-new-password-77"
    done = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
    assert done.status_code == 200
    again = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
    assert again.status_code == 400  # one-time

    # the old session ended; the old password no longer works; the new one does
    me = await client.get("/api/v1/me", headers={"authorization": f"Bearer {old['access_token']}"})
    assert me.status_code == 401
    assert (await client.post("/api/v1/auth/token", json={"email": address, "password": PASSWORD})).status_code == 401
    assert (
        await client.post("/api/v1/auth/token", json={"email": address, "password": new_password})
    ).status_code == 200
    await client.aclose()


async def test_unknown_address_gets_the_same_answer_and_no_mail(world, inbox):
    client = new_client(world.app, ip="10.1.0.2")
    response = await client.post("/api/v1/auth/password-reset", json={"email": "ghost@test.ma"})
    assert response.status_code == 202
    assert inbox.messages == []
    await client.aclose()


async def test_forged_reset_token_is_refused(world):
    client = new_client(world.app, ip="10.1.0.3")
    response = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": "x" * 43, "password": "a-new-password-77"}
    )
    assert response.status_code == 400
    assert "invalid" in response.json()["detail"]
    await client.aclose()


# -- links in mail come from the configured public URL, never from request headers ----------------

HOSTILE = {"host": "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "http"}
PUBLIC = "https://madrasa.example.ma"


@pytest.fixture
def public_url(world):
    """The world's services see ``MADRASA_PUBLIC_URL=https://madrasa.example.ma`` for one test."""
    previous = world.services.settings
    world.services.settings = msgspec.structs.replace(previous, public_url=PUBLIC)
    yield PUBLIC
    world.services.settings = previous


def last_mail(world, to: str):
    mail = world.services.mailer.sent[-1]
    assert mail.to == to
    return mail, re.search(r"Token: (\S+)", mail.body).group(1)


async def test_reset_link_ignores_a_hostile_host_and_forwarded_headers(world, public_url):
    address = await world.add_person(f"poison.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    client = new_client(world.app, ip="10.1.0.4")
    response = await client.post("/api/v1/auth/password-reset", json={"email": address}, headers=HOSTILE)
    assert response.status_code == 202
    mail, token = last_mail(world, address)
    assert mail.link == f"{PUBLIC}/password-reset/{token}"
    assert f"\n{PUBLIC}/password-reset/{token}\n" in mail.body
    assert "evil" not in mail.body and "http://" not in mail.body
    # under a tenant's prefix the link opens that tenant's branded page, still on the public URL
    response = await client.post(
        "/t/lycee-ibn-batouta/api/v1/auth/password-reset", json={"email": address}, headers=HOSTILE
    )
    assert response.status_code == 202
    mail, token = last_mail(world, address)
    assert mail.link == f"{PUBLIC}/t/lycee-ibn-batouta/password-reset/{token}" and "evil" not in mail.body
    await client.aclose()


async def test_reset_link_uses_the_tenants_registered_domain(world, public_url):
    address = await world.add_person(f"domain.{world.backend}@test.ma", "teacher", "college-al-khawarizmi")
    school = world.ids["college-al-khawarizmi"]
    await world.services.db.execute(
        "INSERT INTO tenant_domain (tenant_id, host) VALUES ({}, {})", school, f"khawarizmi-{world.backend}.example.ma"
    )
    try:
        client = new_client(world.app, ip="10.1.0.5")
        response = await client.post(
            "/t/college-al-khawarizmi/api/v1/auth/password-reset", json={"email": address}, headers=HOSTILE
        )
        assert response.status_code == 202
        mail, token = last_mail(world, address)
        assert mail.link == f"https://khawarizmi-{world.backend}.example.ma/password-reset/{token}"
        await client.aclose()
    finally:
        await world.services.db.execute("DELETE FROM tenant_domain WHERE tenant_id = {}", school)
        world.services.tenants.invalidate()


async def test_invitation_link_ignores_a_hostile_host(world, public_url):
    address = f"invited.poison.{world.backend}@test.ma"
    response = await world.api(
        "POST",
        "/api/v1/onboarding/invitations",
        as_="region.casa@madrasa.demo",
        tenant="casablanca-settat",
        headers=HOSTILE,
        json={"school": "college-al-khawarizmi", "email": address, "full_name": "Invited Director", "locale": "fr"},
    )
    assert response.status_code == 201, response.text
    mail, token = last_mail(world, address)
    assert mail.link == f"{PUBLIC}/t/college-al-khawarizmi/onboarding/invitations/{token}"
    assert mail.link in mail.body and "evil" not in mail.body


# -- a token works once, even under concurrency -----------------------------------------------------


async def reset_token(world, address: str, ip: str) -> str:
    client = new_client(world.app, ip=ip)
    response = await client.post("/api/v1/auth/password-reset", json={"email": address})
    await client.aclose()
    assert response.status_code == 202
    return last_mail(world, address)[1]


async def test_concurrent_confirmations_with_one_token_succeed_once(world):
    address = await world.add_person(f"race.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    token = await reset_token(world, address, "10.1.0.6")
    clients = [new_client(world.app, ip=f"10.1.1.{i}") for i in range(5)]
    passwords = [f"raced-password-{i}0" for i in range(5)]
    answers = await asyncio.gather(
        *(
            c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": p})
            for c, p in zip(clients, passwords, strict=True)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 400, 400, 400, 400], [a.text for a in answers]
    assert all("invalid, expired or already used" in a.json()["detail"] for a in answers if a.status_code == 400)
    winner = passwords[[a.status_code for a in answers].index(200)]
    logins = [
        (await clients[0].post("/api/v1/auth/token", json={"email": address, "password": p})).status_code
        for p in passwords
    ]
    assert logins == [200 if p == winner else 401 for p in passwords]
    for c in clients:
        await c.aclose()


async def test_concurrent_service_calls_claim_the_token_once(world):
    """The same race straight on the service: each call runs on its own pool connection on PostgreSQL."""
    address = await world.add_person(f"race.svc.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    _, token = await world.services.identity.start_password_reset(address)
    results = await asyncio.gather(
        *(world.services.identity.finish_password_reset(token, f"service-race-{i}0") for i in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, int) for r in results) == 1
    refused = [r for r in results if not isinstance(r, int)]
    assert len(refused) == 4 and all(isinstance(r, AuthError) and r.status == 400 for r in refused)


async def test_a_reset_voids_the_accounts_other_reset_tokens(world):
    address = await world.add_person(f"void.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    earlier = await reset_token(world, address, "10.1.0.7")
    later = await reset_token(world, address, "10.1.0.7")
    client = new_client(world.app, ip="10.1.0.7")
    done = await client.post("/api/v1/auth/password-reset/confirm", json={"token": later, "password": "later-pass-42"})
    assert done.status_code == 200
    stale = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": earlier, "password": "earlier-pass-42"}
    )
    assert stale.status_code == 400 and "invalid" in stale.json()["detail"]
    ok = await client.post("/api/v1/auth/token", json={"email": address, "password": "later-pass-42"})
    assert ok.status_code == 200
    await client.aclose()


async def test_a_weak_password_does_not_use_up_the_token(world):
    address = await world.add_person(f"weak.{world.backend}@test.ma", "teacher", "lycee-ibn-batouta")
    token = await reset_token(world, address, "10.1.0.8")
    client = new_client(world.app, ip="10.1.0.8")
    weak = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "weakweakweak"})
    assert weak.status_code == 400
    assert await world.services.identity.reset_token_is_live(token)
    await client.aclose()


async def invite(world, address: str) -> str:
    response = await world.api(
        "POST",
        "/api/v1/onboarding/invitations",
        as_="region.casa@madrasa.demo",
        tenant="casablanca-settat",
        json={"school": "college-al-khawarizmi", "email": address, "full_name": "Raced Director", "locale": "fr"},
    )
    assert response.status_code == 201, response.text
    return last_mail(world, address)[1]


async def test_concurrent_invitation_accepts_succeed_once(world):
    address = f"invited.race.{world.backend}@test.ma"
    token = await invite(world, address)
    clients = [new_client(world.app, ip=f"10.1.2.{i}") for i in range(5)]
    answers = await asyncio.gather(
        *(
            c.post("/api/v1/onboarding/invitations/accept", json={"token": token, "password": f"invited-race-{i}0"})
            for i, c in enumerate(clients)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 400, 400, 400, 400], [a.text for a in answers]
    for c in clients:
        await c.aclose()


async def test_an_accepted_invitation_voids_the_persons_other_links(world):
    address = f"invited.twice.{world.backend}@test.ma"
    first = await invite(world, address)
    second = await invite(world, address)
    _, reset = await world.services.identity.start_password_reset(address)
    client = new_client(world.app, ip="10.1.0.9")
    accepted = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": second, "password": "invited-twice-42"}
    )
    assert accepted.status_code == 200, accepted.text
    stale = await client.post(
        "/api/v1/onboarding/invitations/accept", json={"token": first, "password": "invited-stale-42"}
    )
    assert stale.status_code == 400
    assert not await world.services.identity.reset_token_is_live(reset)
    login = await client.post("/api/v1/auth/token", json={"email": address, "password": "invited-twice-42"})
    assert login.status_code == 200
    await client.aclose()
