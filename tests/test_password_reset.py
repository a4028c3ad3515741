"""Password reset by a one-time token, delivered through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from core.mail import SmtpMailer
from tests.conftest import PASSWORD, free_port, new_client


class Inbox:
    """Collects messages received by the SMTP server."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def mail_through_smtp(world, smtp):
    inbox, port = smtp
    previous = world.services.mailer
    world.services.mailer = SmtpMailer("127.0.0.1", port, "no-reply@madrasa.test")
    inbox.messages.clear()
    yield inbox
    world.services.mailer = previous


async def test_reset_flow_over_smtp(world, mail_through_smtp):
    inbox = mail_through_smtp
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


async def test_unknown_address_gets_the_same_answer_and_no_mail(world, mail_through_smtp):
    client = new_client(world.app, ip="10.1.0.2")
    response = await client.post("/api/v1/auth/password-reset", json={"email": "ghost@test.ma"})
    assert response.status_code == 202
    assert mail_through_smtp.messages == []
    await client.aclose()


async def test_forged_reset_token_is_refused(world):
    client = new_client(world.app, ip="10.1.0.3")
    response = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": "x" * 43, "password": "a-new-password-77"}
    )
    assert response.status_code == 400
    assert "invalid" in response.json()["detail"]
    await client.aclose()
