"""Remembered devices: a login may ask for a long-lived session; one's sessions are listed and ended, by their owner
only, in the API and in the portal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.config import ConfigError, load_settings
from core.devices import describe_agent
from core.identity import sha256
from core.middleware import SESSION_COOKIE
from tests.conftest import PASSWORD, new_client

SCHOOL = "lycee-ibn-batouta"
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
)


async def _token_login(world, email: str, ip: str, **extra) -> dict:
    client = new_client(world.app, ip=ip)
    response = await client.post(
        "/api/v1/auth/token",
        json={"email": email, "password": PASSWORD, **extra},
        headers={"user-agent": "madrasa-android/2.1"},
    )
    await client.aclose()
    assert response.status_code == 200, response.text
    return response.json()


def _bearer(tokens: dict) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


async def _lifetime(world, refresh_token: str) -> timedelta:
    row = await world.services.db.fetchrow(
        "SELECT created_at, expires_at FROM auth_session WHERE id = {}", refresh_token.split(".")[0]
    )
    created, expires = (v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in row.values())
    return expires - created


async def test_an_app_may_ask_to_be_remembered_and_list_and_end_its_sessions(world):
    email = await world.add_person(f"devices-api.{world.backend}@test.ma", "teacher", SCHOOL)
    remembered = await _token_login(world, email, "10.8.0.1", remember=True)
    plain = await _token_login(world, email, "10.8.0.2")
    assert await _lifetime(world, remembered["refresh_token"]) == timedelta(
        seconds=world.settings.remembered_session_ttl
    )
    assert await _lifetime(world, plain["refresh_token"]) == timedelta(seconds=world.settings.refresh_token_ttl)

    listed = await world.client.get("/api/v1/me/sessions", headers=_bearer(plain))
    assert listed.status_code == 200, listed.text
    by_id = {s["id"]: s for s in listed.json()}
    long_id, short_id = remembered["refresh_token"].split(".")[0], plain["refresh_token"].split(".")[0]
    assert set(by_id) == {long_id, short_id}
    assert by_id[long_id]["remembered"] and not by_id[short_id]["remembered"]
    assert by_id[short_id]["current"] and not by_id[long_id]["current"]
    assert by_id[long_id]["device"] == "madrasa-android" and by_id[long_id]["ip"] == "10.8.0.1"

    # from the plain session, end the remembered one: its access token stops working at once
    ended = await world.client.delete(f"/api/v1/me/sessions/{long_id}", headers=_bearer(plain))
    assert ended.status_code == 204
    assert (await world.client.get("/api/v1/me", headers=_bearer(remembered))).status_code == 401
    refused = await world.client.post("/api/v1/auth/refresh", json={"refresh_token": remembered["refresh_token"]})
    assert refused.status_code == 401
    again = await world.client.delete(f"/api/v1/me/sessions/{long_id}", headers=_bearer(plain))
    assert again.status_code == 404
    assert [s["id"] for s in (await world.client.get("/api/v1/me/sessions", headers=_bearer(plain))).json()] == [
        short_id
    ]


async def test_nobody_ends_or_sees_someone_elses_session(world):
    owner = await world.add_person(f"devices-owner.{world.backend}@test.ma", "parent", SCHOOL)
    other = await world.add_person(f"devices-other.{world.backend}@test.ma", "parent", SCHOOL)
    mine = await _token_login(world, owner, "10.8.1.1", remember=True)
    theirs = await _token_login(world, other, "10.8.1.2")
    my_id = mine["refresh_token"].split(".")[0]
    listed = await world.client.get("/api/v1/me/sessions", headers=_bearer(theirs))
    assert my_id not in {s["id"] for s in listed.json()}
    refused = await world.client.delete(f"/api/v1/me/sessions/{my_id}", headers=_bearer(theirs))
    assert refused.status_code == 404
    assert (await world.client.get("/api/v1/me", headers=_bearer(mine))).status_code == 200
    # the portal's form refuses it the same way
    client = new_client(world.app, ip="10.8.1.3")
    _, csrf = await _form_login(world, client, other)
    page = await client.post(
        f"/t/{SCHOOL}/my-devices", data={"csrf_token": csrf, "session_id": my_id}, headers={"accept": "text/html"}
    )
    await client.aclose()
    assert page.status_code == 404
    assert "No such session" in page.text or "Session inconnue" in page.text
    assert (await world.client.get("/api/v1/me", headers=_bearer(mine))).status_code == 200


async def _form_login(world, client, email: str, *, remember: bool = False) -> tuple[str, str]:
    """Log in through the school's portal form as a phone's browser; returns the session's id and CSRF token."""
    form = await client.get(f"/t/{SCHOOL}/login", headers={"accept": "text/html"})
    assert 'name="remember"' in form.text
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    data = {"email": email, "password": PASSWORD, "csrf_token": token}
    if remember:
        data["remember"] = "on"
    response = await client.post(f"/t/{SCHOOL}/login", data=data, headers={"user-agent": PHONE})
    assert response.status_code == 302, response.text
    ttl = world.settings.remembered_session_ttl if remember else world.settings.session_ttl
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert f"Max-Age={ttl}" in session_cookie
    row = await world.services.db.fetchrow(
        "SELECT id, csrf_token FROM auth_session WHERE secret_hash = {}", sha256(response.cookies[SESSION_COOKIE])
    )
    return row["id"], row["csrf_token"]


async def test_the_portal_remembers_a_device_and_logs_devices_out(world):
    email = await world.add_person(f"devices-web.{world.backend}@test.ma", "parent", SCHOOL)
    phone = new_client(world.app, ip="10.8.2.1")
    phone_id, _ = await _form_login(world, phone, email, remember=True)
    laptop = new_client(world.app, ip="10.8.2.2")
    laptop_id, csrf = await _form_login(world, laptop, email)

    page = await laptop.get(f"/t/{SCHOOL}/my-devices", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert f'data-session="{phone_id}"' in page.text and f'data-session="{laptop_id}"' in page.text
    assert "Chrome, Android" in page.text
    assert f'data-session="{laptop_id}" aria-current="true"' in page.text  # this browser is marked
    assert f'data-session="{phone_id}" aria-current' not in page.text
    home = await laptop.get(f"/t/{SCHOOL}/", headers={"accept": "text/html"})
    assert f'href="/t/{SCHOOL}/my-devices"' in home.text

    # the laptop logs the phone out: the phone's next request is a stranger's
    ended = await laptop.post(f"/t/{SCHOOL}/my-devices", data={"csrf_token": csrf, "session_id": phone_id})
    assert ended.status_code in (302, 303)
    assert ended.headers["location"] == f"/t/{SCHOOL}/my-devices"
    gone = await phone.get(f"/t/{SCHOOL}/my-devices", headers={"accept": "text/html"})
    assert gone.status_code in (302, 303, 401)
    page = await laptop.get(f"/t/{SCHOOL}/my-devices", headers={"accept": "text/html"})
    assert f'data-session="{phone_id}"' not in page.text

    # without the CSRF token nothing is ended
    forged = await laptop.post(f"/t/{SCHOOL}/my-devices", data={"session_id": laptop_id})
    assert forged.status_code == 403
    # ending one's own session logs this browser out
    out = await laptop.post(f"/t/{SCHOOL}/my-devices", data={"csrf_token": csrf, "session_id": laptop_id})
    assert out.headers["location"] == f"/t/{SCHOOL}/login"
    revoked = await world.services.db.fetchval("SELECT revoked_at FROM auth_session WHERE id = {}", laptop_id)
    assert revoked is not None
    await phone.aclose()
    await laptop.aclose()


async def test_log_out_every_other_device(world):
    email = await world.add_person(f"devices-all.{world.backend}@test.ma", "parent", SCHOOL)
    others = [await _token_login(world, email, f"10.8.3.{n}", remember=True) for n in range(3)]
    client = new_client(world.app, ip="10.8.3.9")
    _, csrf = await _form_login(world, client, email)
    done = await client.post(f"/t/{SCHOOL}/my-devices", data={"csrf_token": csrf, "all_others": "1"})
    assert done.status_code in (302, 303)
    for tokens in others:
        assert (await world.client.get("/api/v1/me", headers=_bearer(tokens))).status_code == 401
    now = datetime.now(UTC)
    live = await world.services.db.fetchval(
        "SELECT COUNT(*) FROM auth_session s JOIN person p ON p.id = s.person_id WHERE p.email = {} "
        "AND s.revoked_at IS NULL AND s.expires_at > {}",
        email,
        now,
    )
    assert live == 1
    assert (await client.get(f"/t/{SCHOOL}/my-devices", headers={"accept": "text/html"})).status_code == 200
    await client.aclose()


def test_a_remembered_session_is_not_shorter_than_a_plain_one(tmp_path):
    with pytest.raises(ConfigError, match=r"^MADRASA_REMEMBERED_SESSION_TTL: "):
        load_settings({"MADRASA_REMEMBERED_SESSION_TTL": "3600"}, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (PHONE, "Chrome, Android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox, Windows"),
        ("madrasa-android/2.1 (okhttp)", "madrasa-android"),
        ("", ""),
    ],
)
def test_devices_are_named_from_their_user_agent(agent, shown):
    assert describe_agent(agent) == shown
