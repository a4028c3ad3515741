"""The portal's password-reset pages: the login page's link, the request form, and the mailed link's form."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.identity import sha256
from tests.conftest import PASSWORD, form_login, new_client

SCHOOL = "lycee-ibn-batouta"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def csrf_of(html: str) -> str:
    return html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


async def mailed_token(world, address: str) -> str:
    _, token = await world.services.identity.start_password_reset(address)
    return token


async def password_hash(world, address: str) -> str:
    return await world.services.db.fetchval("SELECT password_hash FROM person WHERE email = {}", address)


async def test_login_page_links_to_the_reset_request(world):
    client = new_client(world.app, ip="10.2.0.1")
    login = await client.get(f"/t/{SCHOOL}/login?lang=fr")
    assert login.status_code == 200
    assert f'href="/t/{SCHOOL}/password-reset"' in login.text and "Mot de passe oublié ?" in login.text
    form = await client.get(f"/t/{SCHOOL}/password-reset?lang=ar")
    assert form.status_code == 200 and 'name="email"' in form.text and csrf_of(form.text)
    assert "نسيت كلمة المرور؟" in form.text
    await client.aclose()


async def test_reset_request_answers_the_same_whether_or_not_the_account_exists(world):
    address = await world.add_person(f"page.ask.{world.backend}@test.ma", "teacher", SCHOOL)
    client = new_client(world.app, ip="10.2.0.2")
    before = len(world.services.mailer.sent)
    answers = []
    for email in (address, f"ghost.{world.backend}@test.ma"):
        form = await client.get(f"/t/{SCHOOL}/password-reset?lang=en")
        answers.append(
            await client.post(
                f"/t/{SCHOOL}/password-reset?lang=en", data={"email": email, "csrf_token": csrf_of(form.text)}
            )
        )
    assert [a.status_code for a in answers] == [200, 200]
    neutral = "If the address has an account, a reset link has been sent."
    assert all(neutral in a.text for a in answers)
    assert answers[0].text.replace(address, "X") == answers[1].text.replace(f"ghost.{world.backend}@test.ma", "X")
    sent = world.services.mailer.sent[before:]
    assert [m.to for m in sent] == [address]
    assert re.search(rf"/t/{SCHOOL}/password-reset/\S+$", sent[0].link)
    await client.aclose()


async def test_reset_request_needs_its_csrf_token_and_an_address(world):
    client = new_client(world.app, ip="10.2.0.3")
    before = len(world.services.mailer.sent)
    bare = await client.post(f"/t/{SCHOOL}/password-reset", data={"email": "teacher.lycee-ibn-batouta@test.ma"})
    assert bare.status_code == 403 and 'role="alert"' in bare.text
    form = await client.get(f"/t/{SCHOOL}/password-reset")
    empty = await client.post(f"/t/{SCHOOL}/password-reset", data={"email": "nope", "csrf_token": csrf_of(form.text)})
    assert empty.status_code == 400 and 'id="email-error"' in empty.text
    assert len(world.services.mailer.sent) == before
    await client.aclose()


async def test_reset_page_sets_the_password_and_sends_to_the_login(world):
    address = await world.add_person(f"page.reset.{world.backend}@test.ma", "teacher", SCHOOL)
    token = await mailed_token(world, address)
    client = new_client(world.app, ip="10.2.0.4")
    form = await client.get(f"/t/{SCHOOL}/password-reset/{token}?lang=fr")
    assert form.status_code == 200
    assert 'name="password"' in form.text and 'name="confirm"' in form.text and csrf_of(form.text)
    assert form.headers["referrer-policy"] == "no-referrer"
    done = await client.post(
        f"/t/{SCHOOL}/password-reset/{token}",
        data={"password": "page-new-pass-42", "confirm": "page-new-pass-42", "csrf_token": csrf_of(form.text)},
    )
    assert done.status_code == 302 and done.headers["location"] == f"/t/{SCHOOL}/login?reset=done"
    login = await client.get(done.headers["location"] + "&lang=fr")
    assert 'class="notice"' in login.text and "Votre mot de passe a été changé" in login.text
    assert (await form_login(client, f"/t/{SCHOOL}/login", address, PASSWORD)).status_code == 401
    assert (await form_login(client, f"/t/{SCHOOL}/login", address, "page-new-pass-42")).status_code == 302
    used = await client.get(f"/t/{SCHOOL}/password-reset/{token}?lang=fr")
    assert used.status_code == 404 and "invalide, expiré ou déjà utilisé" in used.text
    await client.aclose()


async def test_reset_page_refuses_mismatch_weak_expired_and_forged_without_changing_anything(world):
    address = await world.add_person(f"page.refuse.{world.backend}@test.ma", "teacher", SCHOOL)
    token = await mailed_token(world, address)
    stored = await password_hash(world, address)
    client = new_client(world.app, ip="10.2.0.5")
    csrf = csrf_of((await client.get(f"/t/{SCHOOL}/password-reset/{token}")).text)
    url = f"/t/{SCHOOL}/password-reset/{token}"

    differ = await client.post(url, data={"password": "mismatch-42-a", "confirm": "mismatch-42-b", "csrf_token": csrf})
    assert differ.status_code == 400 and 'id="confirm-error"' in differ.text
    weak = await client.post(url, data={"password": "weakweakweak", "confirm": "weakweakweak", "csrf_token": csrf})
    assert weak.status_code == 400 and 'id="password-error"' in weak.text and 'aria-invalid="true"' in weak.text
    no_csrf = await client.post(url, data={"password": "strong-pass-42", "confirm": "strong-pass-42"})
    assert no_csrf.status_code == 403
    assert await password_hash(world, address) == stored
    assert await world.services.identity.reset_token_is_live(token)

    await world.services.db.execute(
        "UPDATE password_reset SET expires_at = {} WHERE token_hash = {}", LONG_AGO, sha256(token)
    )
    strong = {"password": "strong-pass-42", "confirm": "strong-pass-42", "csrf_token": csrf}
    expired = await client.post(url + "?lang=en", data=strong)
    assert expired.status_code == 400 and "This reset link is invalid, expired or already used." in expired.text
    forged = await client.post(
        f"/t/{SCHOOL}/password-reset/{'z' * 43}",
        data=strong,
    )
    assert forged.status_code == 400
    assert await password_hash(world, address) == stored
    assert (await form_login(client, f"/t/{SCHOOL}/login", address, PASSWORD)).status_code == 302
    await client.aclose()


async def test_a_logged_in_visitor_can_use_the_reset_page(world):
    """With a session, the form carries the session's CSRF token (the middleware checks it) and the cookie goes."""
    address = await world.add_person(f"page.session.{world.backend}@test.ma", "teacher", SCHOOL)
    client = new_client(world.app, ip="10.2.0.6")
    assert (await form_login(client, f"/t/{SCHOOL}/login", address, PASSWORD)).status_code == 302
    token = await mailed_token(world, address)
    form = await client.get(f"/t/{SCHOOL}/password-reset/{token}")
    done = await client.post(
        f"/t/{SCHOOL}/password-reset/{token}",
        data={"password": "session-pass-42", "confirm": "session-pass-42", "csrf_token": csrf_of(form.text)},
    )
    assert done.status_code == 302
    home = await client.get(f"/t/{SCHOOL}/")
    assert home.status_code == 302 and home.headers["location"].endswith("/login")
    await client.aclose()


async def test_a_throttled_reset_request_says_when_to_retry(world):
    """The request page's 429 carries ``Retry-After``, as the login form's and the API's do."""
    address = await world.add_person(f"page.slow.{world.backend}@test.ma", "teacher", SCHOOL)
    client = new_client(world.app, ip="10.2.0.9")
    for _ in range(world.settings.login_max_failures + 1):
        await client.post("/api/v1/auth/token", json={"email": address, "password": "wrong-password-1"})
    form = await client.get(f"/t/{SCHOOL}/password-reset?lang=fr")
    answer = await client.post(
        f"/t/{SCHOOL}/password-reset?lang=fr", data={"email": address, "csrf_token": csrf_of(form.text)}
    )
    assert answer.status_code == 429, answer.status_code
    assert int(answer.headers["retry-after"]) > 0
    await client.aclose()
