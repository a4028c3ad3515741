"""Password reset by a one-time token, delivered through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re

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
